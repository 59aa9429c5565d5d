package query_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
)

// consumerView is what the tests read of a consumer.
type consumerView struct {
	Name  string   `json:"name"`
	Owner string   `json:"owner"`
	Tags  []string `json:"tags"`
}

// consumerNames lists the consumers a client sees.
func consumerNames(g *gated, auth string) []string {
	g.t.Helper()
	l := gjson[struct {
		Consumers []consumerView `json:"consumers"`
	}](g, "GET", "/v1/consumers", auth, nil, http.StatusOK)
	var names []string
	for _, c := range l.Consumers {
		names = append(names, c.Name)
	}
	return names
}

// TestConsumersBelongToTheirClient: a named consumer is its creator's.
// Another client sees none of it (404 like an unknown name on every
// route), cannot take its name (409), and an admin sees them all. Tags
// must lie within the client's consume patterns and default to them.
func TestConsumersBelongToTheirClient(t *testing.T) {
	g := newGated(t, openSQLite(t).(eventstore.Store))
	alice := g.client("alice", producer.Scopes{Consume: []string{"DATABASE.>"}})
	bob := g.client("bob", producer.Scopes{Consume: []string{">"}})
	g.publish(mixedTags...)

	c := gjson[consumerView](g, "PUT", "/v1/consumers/alice-db", alice.bearer(), map[string]any{"tags": []string{"DATABASE.*"}, "start": "all"}, http.StatusCreated)
	if c.Owner != alice.id {
		t.Errorf("owner = %q; want %q", c.Owner, alice.id)
	}
	c = gjson[consumerView](g, "PUT", "/v1/consumers/alice-all", alice.bearer(), map[string]any{"start": "all"}, http.StatusCreated)
	if !cmp.Equal(c.Tags, []string{"DATABASE.>"}) {
		t.Errorf("tags of a consumer created without = %q; want the client's consume patterns [DATABASE.>]", c.Tags)
	}
	gjson[consumerView](g, "PUT", "/v1/consumers/alice-all", alice.bearer(), map[string]any{"start": "all"}, http.StatusOK)
	gjson[consumerView](g, "PUT", "/v1/consumers/bob-all", bob.bearer(), map[string]any{"start": "all"}, http.StatusCreated)

	for _, tags := range [][]string{{"AUTH.*"}, {">"}, {"DATABASE.X", "*.LOGIN"}} {
		g.problemOf("PUT", "/v1/consumers/alice-x", alice.bearer(), map[string]any{"tags": tags}, http.StatusForbidden)
	}

	// Legacy: a record written before consumers had owners.
	kv, err := g.js.KeyValue(t.Context(), stream.ConsumersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "legacy", []byte(`{"tags":["DATABASE.*"],"start":"all","acked":0,"last_delivered":0,"created":"2026-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}

	if diff := cmp.Diff([]string{"alice-all", "alice-db"}, consumerNames(g, alice.bearer())); diff != "" {
		t.Errorf("alice's list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bob-all"}, consumerNames(g, bob.bearer())); diff != "" {
		t.Errorf("bob's list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alice-all", "alice-db", "bob-all", "legacy"}, consumerNames(g, admin)); diff != "" {
		t.Errorf("admin's list (-want +got):\n%s", diff)
	}

	// Bob on alice's consumer (and anybody on the legacy one): exactly
	// the answers of a name that does not exist.
	for _, name := range []string{"alice-db", "legacy"} {
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/consumers/" + name, nil},
			{"GET", "/v1/consumers/" + name + "/events?limit=10", nil},
			{"POST", "/v1/consumers/" + name + "/ack", map[string]any{"seq": 1}},
			{"POST", "/v1/consumers/" + name + "/seek", map[string]any{"seq": 0}},
			{"DELETE", "/v1/consumers/" + name, nil},
		} {
			got := g.problemOf(r.method, r.path, bob.bearer(), r.body, http.StatusNotFound)
			unknown := g.problemOf(r.method, "/v1/consumers/nobody"+r.path[len("/v1/consumers/"+name):], bob.bearer(), r.body, http.StatusNotFound)
			if want := `no consumer is named "` + name + `"`; got != want || unknown != `no consumer is named "nobody"` {
				t.Errorf("%s %s as bob = %q (unknown: %q); want %q", r.method, r.path, got, unknown, want)
			}
		}
		want := `the name "` + name + `" is taken by a consumer of another client; choose another name`
		if d := g.problemOf("PUT", "/v1/consumers/"+name, bob.bearer(), map[string]any{"tags": []string{"DATABASE.*"}, "start": "all"}, http.StatusConflict); d != want {
			t.Errorf("PUT %s as bob detail = %q; want %q", name, d, want)
		}
	}

	// Alice reads her own; nothing of bob's moved it.
	b := gjson[struct {
		Events []struct {
			Tag string `json:"tag"`
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}](g, "GET", "/v1/consumers/alice-db/events?limit=100", alice.bearer(), nil, http.StatusOK)
	var got []string
	for _, e := range b.Events {
		got = append(got, e.Tag)
	}
	if diff := cmp.Diff(only(mixedTags, isDatabase), got); diff != "" {
		t.Errorf("alice-db events (-want +got):\n%s", diff)
	}
	gjson[map[string]any](g, "POST", "/v1/consumers/alice-db/ack", alice.bearer(), map[string]any{"seq": b.Events[0].Seq}, http.StatusOK)
	gjson[map[string]any](g, "GET", "/v1/consumers/legacy", admin, nil, http.StatusOK)
	gjson[map[string]any](g, "GET", "/v1/consumers/alice-db", admin, nil, http.StatusOK)

	// A consumer whose tags left the client's consume patterns stops
	// reading.
	if _, err := g.gate.Registry().Update(t.Context(), alice.id, func(p *producer.Producer) error {
		p.Scopes.Consume = []string{"DATABASE.INSERT"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	g.problemOf("GET", "/v1/consumers/alice-db/events?limit=1", alice.bearer(), nil, http.StatusForbidden)

	g.do("DELETE", "/v1/consumers/alice-db", alice.bearer(), nil)
	if slices.Contains(consumerNames(g, admin), "alice-db") {
		t.Errorf("alice-db still listed after alice deleted it")
	}
}
