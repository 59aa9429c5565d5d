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

// esRead reads an event-server stream's events of one name as an old
// client does (Basic auth, X-Consumer-ID) and returns their ids and
// names.
func esRead(t *testing.T, g *gated, c client, stream, eventName, consumer string) (ids, names []string) {
	t.Helper()
	path := "/api/v1/streams/" + stream + "/events?eventName=" + eventName + "&limit=100"
	code, b := g.do("GET", path, c.basic(), nil, "X-Consumer-ID", consumer)
	if code != http.StatusOK {
		t.Fatalf("GET %s as %s = %d %s; want 200", path, consumer, code, b)
	}
	var out []struct {
		EventID string `json:"eventId"`
		Event   struct {
			Name string `json:"name"`
		} `json:"event"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET %s = %s; want a JSON array of events: %v", path, b, err)
	}
	for _, e := range out {
		ids, names = append(ids, e.EventID), append(names, e.Event.Name)
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
	byTag := func(tag string) []string {
		var out []string
		for i, t := range mixedTags {
			if t == tag {
				out = append(out, ids[i])
			}
		}
		return out
	}
	insertIDs, deleteIDs := byTag("DATABASE.INSERT"), byTag("DATABASE.DELETE")

	if code, b := g.do("GET", "/api/v1/streams/AUTH/events?eventName=LOGIN&limit=100", all.basic(), nil, "X-Consumer-ID", "worker"); code != http.StatusForbidden {
		t.Errorf("GET stream AUTH as a DATABASE.> reader = %d %s; want 403", code, b)
	}
	if code, b := g.do("GET", "/api/v1/streams/DATABASE/events?eventName=DELETE&limit=100", ins.basic(), nil, "X-Consumer-ID", "worker"); code != http.StatusForbidden {
		t.Errorf("GET DATABASE DELETE events as a *.INSERT reader = %d %s; want 403", code, b)
	}

	got, names := esRead(t, g, all, "DATABASE", "INSERT", "worker")
	if !slices.Equal(got, insertIDs) || slices.ContainsFunc(names, func(n string) bool { return n != "INSERT" }) {
		t.Errorf("DATABASE INSERT as a DATABASE.> reader = %v %v; want %v", got, names, insertIDs)
	}
	if got, names := esRead(t, g, all, "DATABASE", "DELETE", "worker"); !slices.Equal(got, deleteIDs) || !slices.Equal(names, []string{"DELETE"}) {
		t.Errorf("DATABASE DELETE as a DATABASE.> reader = %v %v; want %v", got, names, deleteIDs)
	}
	if got, _ := esRead(t, g, ins, "DATABASE", "INSERT", "worker"); !slices.Equal(got, insertIDs) {
		t.Errorf("DATABASE INSERT as a *.INSERT reader = %v; want %v", got, insertIDs)
	}

	// The first client acknowledges two events: its offset moves, the
	// other's, under the same X-Consumer-ID, does not.
	if code, b := esAck(g, all, "DATABASE", insertIDs[1], "worker"); code != http.StatusOK || string(b) != `"OK"` {
		t.Fatalf("ACK as the first client = %d %s; want 200 \"OK\"", code, b)
	}
	if got, _ := esRead(t, g, all, "DATABASE", "INSERT", "worker"); !slices.Equal(got, insertIDs[2:]) {
		t.Errorf("DATABASE INSERT after ACK = %v; want %v", got, insertIDs[2:])
	}
	if got, _ := esRead(t, g, ins, "DATABASE", "INSERT", "worker"); !slices.Equal(got, insertIDs) {
		t.Errorf("DATABASE INSERT as the other client after the first's ACK = %v; want %v", got, insertIDs)
	}
	if code, b := esAck(g, ins, "DATABASE", insertIDs[0], "worker"); code != http.StatusOK {
		t.Fatalf("ACK as the second client = %d %s", code, b)
	}
	if got, _ := esRead(t, g, all, "DATABASE", "INSERT", "worker"); !slices.Equal(got, insertIDs[2:]) {
		t.Errorf("DATABASE INSERT as the first client after the second's ACK = %v; want %v", got, insertIDs[2:])
	}
	if code, b := esAck(g, all, "AUTH", ids[0], "worker"); code != http.StatusForbidden {
		t.Errorf("ACK on stream AUTH as a DATABASE.> reader = %d %s; want 403", code, b)
	}
	// An event the client may not read in a stream it partly may:
	// unknown.
	if code, b := esAck(g, ins, "DATABASE", deleteIDs[0], "worker"); code != http.StatusNotFound || string(b) != `"Not Found"` {
		t.Errorf("ACK of a DATABASE.DELETE event as a *.INSERT reader = %d %s; want 404 \"Not Found\"", code, b)
	}

	// One consumer per client and event name, each its client's.
	l := gjson[struct {
		Consumers []consumerView `json:"consumers"`
	}](g, "GET", "/v1/consumers", admin, nil, http.StatusOK)
	var consumers []string
	for _, c := range l.Consumers {
		if !strings.HasPrefix(c.Name, "es-") {
			t.Errorf("consumer %s; want only the event server's", c.Name)
		}
		consumers = append(consumers, c.Owner+" "+strings.Join(c.Tags, ","))
	}
	slices.Sort(consumers)
	want := []string{all.id + " DATABASE.DELETE", all.id + " DATABASE.INSERT", ins.id + " DATABASE.INSERT"}
	slices.Sort(want)
	if diff := cmp.Diff(want, consumers); diff != "" {
		t.Errorf("consumers' owners and tags (-want +got):\n%s", diff)
	}
}
