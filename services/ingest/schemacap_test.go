package ingest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
)

// TestSchemaErrorsBounded: a batch whose every event breaks its category's
// schema lists the first 100 errors and counts the rest, like the event
// parser's errors, instead of growing the answer with the batch.
func TestSchemaErrorsBounded(t *testing.T) {
	h, gate := newGatedHarness(t, Config{}, func(g *access.Gate) Trust {
		return Trust{
			Auth:    g.Authenticator(),
			Clients: g.Registry(),
			Schemas: fakeSchemas{},
			Limits:  ratelimit.New(ratelimit.Rate{}),
		}
	})
	_, b := createClient(t, gate, producer.Spec{Name: "billing", Tags: []string{"BILLING.>"}})
	events := make([]string, 1000)
	for i := range events {
		events[i] = `{"tag":"BILLING.CHARGED","message":"m","data":{"total":1}}`
	}
	req, _ := http.NewRequest("POST", h.url+"/v1/events", strings.NewReader("["+strings.Join(events, ",")+"]"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", b)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p problem.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d; want 422", resp.StatusCode)
	}
	if len(p.Errors) != 100 || p.Errors[99].Pointer != "/99/data" {
		t.Errorf("errors: %d listed, last %+v; want the first 100", len(p.Errors), p.Errors[len(p.Errors)-1])
	}
	if want := "1000 schema rule(s) broken; the first 100 are listed"; !strings.Contains(p.Detail, want) {
		t.Errorf("detail = %q; want it to contain %q", p.Detail, want)
	}
}
