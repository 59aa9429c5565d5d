package query_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/producer"
)

// esRead reads an event-server stream as an old client does (Basic auth,
// X-Consumer-ID) and returns the event ids and names.
func esRead(t *testing.T, g *gated, c client, path, consumer string) (ids, names []string) {
	t.Helper()
	code, b := g.do("GET", path, c.basic(), nil, "X-Consumer-ID", consumer)
	if code != http.StatusOK {
		t.Fatalf("GET %s as %s = %d %s; want 200", path, consumer, code, b)
	}
	var out struct {
		Events []struct {
			ID    string `json:"id"`
			Event struct {
				Name string `json:"name"`
			} `json:"event"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Events {
		ids, names = append(ids, e.ID), append(names, e.Event.Name)
	}
	return ids, names
}

// esAck acknowledges an event as an old client does.
func esAck(g *gated, c client, stream, id, consumer string) (int, []byte) {
	g.t.Helper()
	req := "action=ACK"
	code, b := g.do("POST", "/api/v1/streams/"+stream+"/events/"+id, c.basic(), req, "X-Consumer-ID", consumer, "Content-Type", "application/x-www-form-urlencoded")
	return code, b
}

// TestEventServerPerClient: the event server's reads cover the stream's
// tags that the client may read, with read scope alone, and its consumer
// offsets are per client: two clients with the same X-Consumer-ID read
// and acknowledge independently.
func TestEventServerPerClient(t *testing.T) {
	g := newGated(t, openSQLite(t).(eventstore.Store))
	all := g.client("reads-database", producer.Scopes{Read: []string{"DATABASE.>"}})
	ins := g.client("reads-inserts", producer.Scopes{Read: []string{"*.INSERT"}})
	ids := g.publish(mixedTags...)
	byTag := func(keep func(string) bool) []string {
		var out []string
		for i, tag := range mixedTags {
			if keep(tag) {
				out = append(out, ids[i])
			}
		}
		return out
	}
	dbIDs := byTag(isDatabase)
	insertIDs := byTag(func(t string) bool { return t == "DATABASE.INSERT" })

	if code, b := g.do("GET", "/api/v1/streams/AUTH/events", all.basic(), nil, "X-Consumer-ID", "worker"); code != http.StatusForbidden {
		t.Errorf("GET stream AUTH as a DATABASE.> reader = %d %s; want 403", code, b)
	}

	got, names := esRead(t, g, all, "/api/v1/streams/DATABASE/events", "worker")
	if !slices.Equal(got, dbIDs) || !slices.Equal(names, []string{"INSERT", "DELETE", "INSERT", "INSERT"}) {
		t.Errorf("DATABASE as a DATABASE.> reader = %v %v; want %v", got, names, dbIDs)
	}
	got, names = esRead(t, g, ins, "/api/v1/streams/DATABASE/events", "worker")
	if !slices.Equal(got, insertIDs) || slices.ContainsFunc(names, func(n string) bool { return n != "INSERT" }) {
		t.Errorf("DATABASE as a *.INSERT reader = %v %v; want %v", got, names, insertIDs)
	}

	// The first client acknowledges two events: its offset moves, the
	// other's, under the same X-Consumer-ID, does not.
	if code, b := esAck(g, all, "DATABASE", dbIDs[1], "worker"); code != http.StatusOK {
		t.Fatalf("ACK as the first client = %d %s", code, b)
	}
	if got, _ := esRead(t, g, all, "/api/v1/streams/DATABASE/events", "worker"); !slices.Equal(got, dbIDs[2:]) {
		t.Errorf("DATABASE after ACK = %v; want %v", got, dbIDs[2:])
	}
	if got, _ := esRead(t, g, ins, "/api/v1/streams/DATABASE/events", "worker"); !slices.Equal(got, insertIDs) {
		t.Errorf("DATABASE as the other client after the first's ACK = %v; want %v", got, insertIDs)
	}
	if code, b := esAck(g, ins, "DATABASE", insertIDs[0], "worker"); code != http.StatusOK {
		t.Fatalf("ACK as the second client = %d %s", code, b)
	}
	if got, _ := esRead(t, g, all, "/api/v1/streams/DATABASE/events", "worker"); !slices.Equal(got, dbIDs[2:]) {
		t.Errorf("DATABASE as the first client after the second's ACK = %v; want %v", got, dbIDs[2:])
	}
	if code, b := esAck(g, all, "AUTH", ids[0], "worker"); code != http.StatusForbidden {
		t.Errorf("ACK on stream AUTH as a DATABASE.> reader = %d %s; want 403", code, b)
	}
	// An event the client may not read in a stream it partly may:
	// unknown.
	if code, b := esAck(g, ins, "DATABASE", dbIDs[1], "worker"); code != http.StatusNotFound {
		t.Errorf("ACK of a DATABASE.DELETE event as a *.INSERT reader = %d %s; want 404", code, b)
	}

	// Two consumers, one per client, each its client's.
	l := gjson[struct {
		Consumers []consumerView `json:"consumers"`
	}](g, "GET", "/v1/consumers", admin, nil, http.StatusOK)
	owners := map[string][]string{}
	for _, c := range l.Consumers {
		if !strings.HasPrefix(c.Name, "es-") {
			t.Errorf("consumer %s; want only the event server's", c.Name)
		}
		owners[c.Owner] = c.Tags
	}
	want := map[string][]string{all.id: {"DATABASE.*"}, ins.id: {"DATABASE.INSERT"}}
	if diff := cmp.Diff(want, owners); diff != "" {
		t.Errorf("consumers' owners and tags (-want +got):\n%s", diff)
	}
}
