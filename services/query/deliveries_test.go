package query_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/services/query"
)

// mkAttempt builds a stored attempt.
func mkAttempt(seq uint64, sub, eventID string, outcome delivery.Outcome) delivery.Attempt {
	a := delivery.Attempt{
		Seq:            seq,
		SubscriptionID: sub,
		DeliveryID:     "msg_" + eventID + "_" + sub,
		EventID:        eventID,
		EventSeq:       seq * 10,
		Tag:            "DATABASE.CONNECTION_LOST",
		Attempt:        1,
		URL:            "https://hooks.example.com/" + sub,
		Outcome:        outcome,
		StatusCode:     200,
		LatencyMS:      3.5,
		Response:       `{"ok":true}`,
		Time:           t0.Add(time.Duration(seq) * time.Second),
	}
	if outcome != delivery.Delivered {
		a.StatusCode, a.Error, a.Response = 503, "status 503", "busy"
	}
	return a
}

// attemptFixtures are eight attempts of two subscriptions and three events,
// with every outcome.
func attemptFixtures() []delivery.Attempt {
	return []delivery.Attempt{
		mkAttempt(1, "sub-a", "ev-1", delivery.Retrying),
		mkAttempt(2, "sub-b", "ev-1", delivery.Delivered),
		mkAttempt(3, "sub-a", "ev-1", delivery.Delivered),
		mkAttempt(4, "sub-a", "ev-2", delivery.DeadLettered),
		mkAttempt(5, "sub-b", "ev-2", delivery.Delivered),
		mkAttempt(6, "sub-a", "ev/3", delivery.Delivered),
		mkAttempt(7, "sub-b", "ev/3", delivery.Disabled),
		mkAttempt(8, "sub-a", "ev-4", delivery.Retrying),
	}
}

// seedAttempts inserts attempts into st and serves it with the deliveries
// watermark at the highest seq.
func seedAttempts(t *testing.T, st store, attempts ...delivery.Attempt) *server {
	t.Helper()
	if err := st.InsertAttempts(t.Context(), attempts); err != nil {
		t.Fatalf("InsertAttempts(%d attempts) = %v", len(attempts), err)
	}
	var wm uint64
	for _, a := range attempts {
		wm = max(wm, a.Seq)
	}
	return serve(t, st, wm)
}

// getDeliveries fetches a page of attempts and checks it is JSON with
// next_since and a non-null deliveries array.
func getDeliveries(s *server, path string) ([]delivery.Attempt, uint64) {
	s.t.Helper()
	status, h, body := s.get(path)
	if status != http.StatusOK {
		s.t.Fatalf("GET %s = %d %s; want 200", path, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("GET %s: Content-Type = %q; want application/json", path, ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		s.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
	if d, ok := raw["deliveries"]; !ok || string(d) == "null" {
		s.t.Errorf("GET %s = %s; want a deliveries array", path, body)
	}
	var p struct {
		Deliveries []delivery.Attempt `json:"deliveries"`
		NextSince  *uint64            `json:"next_since"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		s.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
	if p.NextSince == nil {
		s.t.Fatalf("GET %s = %s; want next_since", path, body)
	}
	return p.Deliveries, *p.NextSince
}

func attemptSeqs(attempts []delivery.Attempt) []uint64 {
	out := make([]uint64, 0, len(attempts))
	for _, a := range attempts {
		out = append(out, a.Seq)
	}
	return out
}

func TestDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		s := seedAttempts(t, st, attemptFixtures()...)
		s.dwm.set(10) // later attempts will have seqs > 10
		tests := []struct {
			path     string
			want     []uint64
			wantNext uint64
		}{
			{"/v1/subscriptions/sub-a/deliveries", []uint64{1, 3, 4, 6, 8}, 10},
			{"/v1/subscriptions/sub-a/deliveries?status=all", []uint64{1, 3, 4, 6, 8}, 10},
			{"/v1/subscriptions/sub-a/deliveries?status=delivered", []uint64{3, 6}, 10},
			{"/v1/subscriptions/sub-a/deliveries?status=failed", []uint64{1, 4, 8}, 10},
			{"/v1/subscriptions/sub-a/deliveries?since=3", []uint64{4, 6, 8}, 10},
			{"/v1/subscriptions/sub-a/deliveries?limit=2", []uint64{1, 3}, 3}, // full page: continue after it
			{"/v1/subscriptions/sub-a/deliveries?limit=2&since=3", []uint64{4, 6}, 6},
			{"/v1/subscriptions/sub-a/deliveries?limit=2&since=6", []uint64{8}, 10},
			{"/v1/subscriptions/sub-a/deliveries?status=failed&since=1&limit=1", []uint64{4}, 4},
			{"/v1/subscriptions/sub-b/deliveries?status=failed", []uint64{7}, 10},
			{"/v1/subscriptions/nobody/deliveries", nil, 10},
			{"/v1/subscriptions/sub-a/deliveries?since=10", nil, 10},
			{"/v1/subscriptions/sub-a/deliveries?since=12", nil, 12}, // a cursor ahead of the watermark stays put
			{"/v1/events/ev-1/deliveries", []uint64{1, 2, 3}, 10},
			{"/v1/events/ev-1/deliveries?status=failed", []uint64{1}, 10},
			{"/v1/events/ev-1/deliveries?status=delivered&limit=1", []uint64{2}, 2},
			{"/v1/events/ev-2/deliveries?since=4", []uint64{5}, 10},
			{"/v1/events/ev%2F3/deliveries", []uint64{6, 7}, 10},
			{"/v1/events/unknown/deliveries", nil, 10},
		}
		for _, tt := range tests {
			got, next := getDeliveries(s, tt.path)
			if diff := cmp.Diff(tt.want, attemptSeqs(got), equateEmpty); diff != "" || next != tt.wantNext {
				t.Errorf("GET %s = %v, next_since %d; want %v, %d", tt.path, attemptSeqs(got), next, tt.want, tt.wantNext)
			}
		}
	})
}

func TestDeliveriesBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		want := attemptFixtures()
		s := seedAttempts(t, st, want...)
		got, next := getDeliveries(s, "/v1/subscriptions/sub-b/deliveries")
		if diff := cmp.Diff([]delivery.Attempt{want[1], want[4], want[6]}, got); diff != "" || next != 8 {
			t.Errorf("GET /v1/subscriptions/sub-b/deliveries: next_since %d, deliveries mismatch (-want +got):\n%s", next, diff)
		}
		_, _, body := s.get("/v1/events/ev-2/deliveries?status=failed")
		wantBody := `{"deliveries":[{"seq":4,"subscription_id":"sub-a","delivery_id":"msg_ev-2_sub-a","event_id":"ev-2",` +
			`"event_seq":40,"tag":"DATABASE.CONNECTION_LOST","attempt":1,"url":"https://hooks.example.com/sub-a",` +
			`"outcome":"dead_lettered","status_code":503,"latency_ms":3.5,"error":"status 503","response":"busy",` +
			`"time":"2025-03-01T10:00:04Z"}],"next_since":8}`
		if string(body) != wantBody {
			t.Errorf("GET /v1/events/ev-2/deliveries?status=failed =\n%s\nwant\n%s", body, wantBody)
		}
	})
}

// Following next_since reads every attempt of a subscription once, also
// while more are stored between pages.
func TestDeliveriesPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		var first []delivery.Attempt
		for seq := uint64(1); seq <= 2500; seq++ {
			first = append(first, mkAttempt(seq, fmt.Sprintf("sub-%d", seq%2), fmt.Sprintf("ev-%d", seq), delivery.Delivered))
		}
		s := seedAttempts(t, st, first...)
		var (
			got   []uint64
			since uint64
			grown bool
		)
		for range 100 {
			page, next := getDeliveries(s, fmt.Sprintf("/v1/subscriptions/sub-1/deliveries?limit=400&since=%d", since))
			got = append(got, attemptSeqs(page)...)
			if next == since {
				break
			}
			since = next
			if since == 2500 && !grown {
				// More attempts arrive; the watermark moves on.
				more := []delivery.Attempt{mkAttempt(2501, "sub-1", "ev-x", delivery.Retrying), mkAttempt(2502, "sub-0", "ev-x", delivery.Delivered)}
				if err := st.InsertAttempts(t.Context(), more); err != nil {
					t.Fatal(err)
				}
				s.dwm.set(2502)
				grown = true
			}
		}
		var want []uint64
		for seq := uint64(1); seq <= 2501; seq += 2 {
			want = append(want, seq)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("seqs read by following next_since (-want +got):\n%s", diff)
		}
	})
}

func TestDeliveriesWatermarkCapsResults(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		all := attemptFixtures()
		// 3 is not stored yet: the watermark (2) says everything through
		// 2 is, so nothing may be served past it, or a cursor would skip 3.
		s := seedAttempts(t, st, all[0], all[1], all[3], all[4])
		s.dwm.set(2)
		s.wm.set(100) // the events watermark does not matter here
		check := func(path string, wantSeqs []uint64, wantNext uint64) {
			t.Helper()
			got, next := getDeliveries(s, path)
			if diff := cmp.Diff(wantSeqs, attemptSeqs(got), equateEmpty); diff != "" || next != wantNext {
				t.Errorf("GET %s = %v, next_since %d; want %v, %d", path, attemptSeqs(got), next, wantSeqs, wantNext)
			}
		}
		check("/v1/subscriptions/sub-a/deliveries", []uint64{1}, 2)
		check("/v1/events/ev-2/deliveries", nil, 2)
		check("/v1/subscriptions/sub-a/deliveries?since=2", nil, 2)

		if err := st.InsertAttempts(t.Context(), all[2:3]); err != nil {
			t.Fatal(err)
		}
		s.dwm.set(5)
		check("/v1/subscriptions/sub-a/deliveries?since=2", []uint64{3, 4}, 5)
		check("/v1/events/ev-2/deliveries", []uint64{4, 5}, 5)

		s.dwm.set(0)
		check("/v1/subscriptions/sub-a/deliveries", nil, 0)
	})
}

func TestDeliveriesWatermarkUnavailable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		s := seedAttempts(t, st, attemptFixtures()...)
		s.dwm.fail(errors.New("nats: consumer info: secret-host:4222 timeout"))
		for _, path := range []string{"/v1/subscriptions/sub-a/deliveries", "/v1/events/ev-1/deliveries?status=failed"} {
			_, h, body := getProblem(s, path, http.StatusServiceUnavailable)
			if got := h.Get("Retry-After"); got != "1" {
				t.Errorf("GET %s: Retry-After = %q; want %q", path, got, "1")
			}
			if strings.Contains(body, "secret-host") {
				t.Errorf("GET %s = %s; leaks the watermark error", path, body)
			}
		}
		// Event reads use their own watermark.
		if status, _, body := s.get("/v1/events"); status != http.StatusOK {
			t.Errorf("GET /v1/events with the deliveries watermark failing = %d %s; want 200", status, body)
		}
	})
}

func TestDeliveriesLimitBounds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		var attempts []delivery.Attempt
		for seq := uint64(1); seq <= query.MaxLimit+50; seq++ {
			attempts = append(attempts, mkAttempt(seq, "sub-a", "ev-1", delivery.Delivered))
		}
		s := seedAttempts(t, st, attempts...)
		tests := []struct {
			query    string
			wantLen  int
			wantNext uint64
		}{
			{"", query.DefaultLimit, query.DefaultLimit},
			{"limit=1", 1, 1},
			{"limit=10000", query.MaxLimit, query.MaxLimit},
			{"limit=10000&since=9000", 1050, query.MaxLimit + 50},
		}
		for _, tt := range tests {
			for _, path := range []string{"/v1/subscriptions/sub-a/deliveries?", "/v1/events/ev-1/deliveries?"} {
				path += tt.query
				got, next := getDeliveries(s, path)
				if len(got) != tt.wantLen || next != tt.wantNext {
					t.Errorf("GET %s = %d attempts, next_since %d; want %d, %d", path, len(got), next, tt.wantLen, tt.wantNext)
				}
			}
		}
	})
}

func TestDeliveriesEmptyPathID(t *testing.T) {
	s := serve(t, failingReader{errors.New("must not be called")}, 10)
	for _, path := range []string{"/v1/subscriptions//deliveries", "/v1/events//deliveries"} {
		status, _, body := s.get(path)
		if status != http.StatusNotFound {
			t.Errorf("GET %s = %d %s; want 404", path, status, body)
		}
	}
}
