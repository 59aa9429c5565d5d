package app_test

import (
	"net/http"
	"testing"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

// TestIdempotencyKeysPerProducer: an event id is an idempotency key within
// its producer. Another producer sending the same id first used to make
// the second one's event a "duplicate" that was never stored.
func TestIdempotencyKeysPerProducer(t *testing.T) {
	// Without --claim-on-first-write: both producers may write SHARED.
	base := apptest.Start(t, nil, "--auth", "producers", "--admin-token", "admin-secret").Base
	a := createProducer(t, base, `{"name":"a","tags":["SHARED.*"]}`)
	b := createProducer(t, base, `{"name":"b","tags":["SHARED.*"]}`)
	send := func(c credentials, message string) map[string]any {
		t.Helper()
		status, out, _ := call(t, "POST", base+"/v1/events", "Bearer "+c.apiKey, `{"tag":"SHARED.X","id":"order-1","message":"`+message+`"}`)
		if status != http.StatusAccepted {
			t.Fatalf("POST as %s = %d %v", c.id, status, out)
		}
		return out
	}
	first := send(a, "from a")
	second := send(b, "from b")
	if second["duplicates"].(float64) != 0 || second["accepted"].(float64) != 1 {
		t.Errorf("another producer's event with the same id = %v; want accepted, not a duplicate", second)
	}
	seq := func(out map[string]any) float64 { return out["events"].([]any)[0].(map[string]any)["seq"].(float64) }
	if seq(first) == seq(second) {
		t.Errorf("both events got seq %v; want two stored events", seq(first))
	}
	again := send(a, "from a, retried")
	if again["duplicates"].(float64) != 1 || seq(again) != seq(first) {
		t.Errorf("a producer's retry = %v; want a duplicate of seq %v", again, seq(first))
	}
}
