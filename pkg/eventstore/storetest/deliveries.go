package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/eventstore"
)

// AttemptBackend is the delivery audit method set of an event store.
type AttemptBackend interface {
	// InsertAttempts stores one batch; re-inserting a stored seq is a no-op.
	InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error
	// Attempts returns the attempts selected by f in ascending seq.
	Attempts(ctx context.Context, f delivery.Filter) ([]delivery.Attempt, error)
}

// RunAttempts runs the conformance suite of the delivery audit. open must
// return a fresh, empty backend for each call and arrange for it to be
// closed when the test ends (t.Cleanup).
func RunAttempts(t *testing.T, open func(t *testing.T) AttemptBackend) {
	t.Run("Attempts", func(t *testing.T) { testAttempts(t, open(t)) })
	t.Run("InvalidAttemptFilter", func(t *testing.T) { testInvalidAttemptFilter(t, open(t)) })
	t.Run("AttemptDuplicates", func(t *testing.T) { testAttemptDuplicates(t, open(t)) })
	t.Run("AttemptRoundTrip", func(t *testing.T) { testAttemptRoundTrip(t, open(t)) })
	t.Run("AttemptCursor", func(t *testing.T) { testAttemptCursor(t, open(t)) })
	t.Run("AttemptsEmpty", func(t *testing.T) { testAttemptsEmpty(t, open(t)) })
}

// generateAttempts returns n attempts with seqs first, first+step, … over
// three subscriptions and n/3 events (each event is attempted for several
// subscriptions, some several times), with every outcome. Attempt times
// are seven hours apart, so that 600 attempts span several months.
func generateAttempts(first, step uint64, n int) []delivery.Attempt {
	subs := []string{"sub-a", "sub-b", "sub-c", "sub-a", "sub-b"}
	outcomes := []delivery.Outcome{delivery.Delivered, delivery.Retrying, delivery.Delivered, delivery.DeadLettered, delivery.Delivered, delivery.Disabled, delivery.Retrying}
	out := make([]delivery.Attempt, n)
	for i := range out {
		seq := first + uint64(i)*step
		a := delivery.Attempt{
			Seq:            seq,
			SubscriptionID: subs[i%len(subs)],
			EventID:        fmt.Sprintf("evt-%d", i/3),
			EventSeq:       uint64(100 + i/3),
			Tag:            []string{"DATABASE.CONNECTION_LOST", "NETWORK.TIMEOUT"}[i/3%2],
			Attempt:        i%4 + 1,
			URL:            "https://hooks.example.com/" + subs[i%len(subs)],
			Outcome:        outcomes[i%len(outcomes)],
			LatencyMS:      float64(i%1000) + 0.25,
			Time:           base().Add(time.Duration(i) * 7 * time.Hour),
		}
		a.DeliveryID = fmt.Sprintf("msg_%s_%s", a.EventID, a.SubscriptionID)
		if a.Outcome == delivery.Delivered {
			a.StatusCode = 200 + i%3
			a.Response = `{"ok":true}`
		} else if i%2 == 0 {
			a.StatusCode = 503
			a.Response = "busy"
			a.Error = "status 503"
		} else {
			a.Error = "dial tcp 192.0.2.1:443: connect: connection refused"
		}
		out[i] = a
	}
	return out
}

// referenceAttempts answers f over attempts (distinct seqs) the way the
// contract says a store must: the expected result of Attempts.
func referenceAttempts(attempts []delivery.Attempt, f delivery.Filter) []delivery.Attempt {
	var out []delivery.Attempt
	for _, a := range attempts {
		switch {
		case a.Seq <= f.After,
			f.Through != 0 && a.Seq > f.Through,
			f.SubscriptionID != "" && a.SubscriptionID != f.SubscriptionID,
			f.EventID != "" && a.EventID != f.EventID,
			f.Status == delivery.OK && a.Failed(),
			f.Status == delivery.Failed && !a.Failed():
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b delivery.Attempt) int { return cmp.Compare(a.Seq, b.Seq) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// attemptSeqs returns the seqs of attempts, for short failure messages.
func attemptSeqs(attempts []delivery.Attempt) []uint64 {
	out := make([]uint64, len(attempts), max(len(attempts), 1))
	for i, a := range attempts {
		out[i] = a.Seq
	}
	return out
}

// cmpAttempts compares attempts field by field with times by Equal; nil
// and empty results are equal.
func cmpAttempts() gocmp.Option {
	return gocmp.FilterPath(func(p gocmp.Path) bool { return len(p) == 1 }, cmpopts.EquateEmpty())
}

func insertAttempts(t *testing.T, b AttemptBackend, attempts []delivery.Attempt) {
	t.Helper()
	if err := b.InsertAttempts(t.Context(), attempts); err != nil {
		t.Fatalf("InsertAttempts(%d attempts) = %v", len(attempts), err)
	}
}

func testAttempts(t *testing.T, b AttemptBackend) {
	all := generateAttempts(5, 2, 600)
	// Two batches, so that stores see more than one insert.
	insertAttempts(t, b, all[:250])
	insertAttempts(t, b, all[250:])
	mid := all[300].Seq
	last := all[len(all)-1].Seq

	// Filters that select nothing; every other case must select something.
	none := map[string]bool{
		"unknown subscription": true, "unknown event": true, "after last": true,
		"event of another subscription": true, "after through empty range": true,
		"subscription prefix is not a match": true,
	}
	tests := []struct {
		name string
		f    delivery.Filter
	}{
		{"all", delivery.Filter{Limit: 1000}},
		{"limit", delivery.Filter{Limit: 7}},
		{"after", delivery.Filter{After: mid, Limit: 1000}},
		{"after between seqs", delivery.Filter{After: mid + 1, Limit: 50}},
		{"through", delivery.Filter{Through: mid, Limit: 1000}},
		{"after through", delivery.Filter{After: 100, Through: mid, Limit: 1000}},
		{"after through empty range", delivery.Filter{After: mid, Through: mid, Limit: 10}},
		{"after last", delivery.Filter{After: last, Limit: 10}},
		{"ok", delivery.Filter{Status: delivery.OK, Limit: 1000}},
		{"failed", delivery.Filter{Status: delivery.Failed, Limit: 1000}},
		{"subscription", delivery.Filter{SubscriptionID: "sub-a", Limit: 1000}},
		{"subscription limit", delivery.Filter{SubscriptionID: "sub-b", Limit: 9}},
		{"subscription after", delivery.Filter{SubscriptionID: "sub-a", After: mid, Limit: 1000}},
		{"subscription after limit", delivery.Filter{SubscriptionID: "sub-c", After: mid, Limit: 5}},
		{"subscription through", delivery.Filter{SubscriptionID: "sub-b", After: 40, Through: mid, Limit: 1000}},
		{"subscription ok", delivery.Filter{SubscriptionID: "sub-a", Status: delivery.OK, Limit: 1000}},
		{"subscription failed", delivery.Filter{SubscriptionID: "sub-b", Status: delivery.Failed, Limit: 1000}},
		{"subscription failed after limit", delivery.Filter{SubscriptionID: "sub-c", Status: delivery.Failed, After: mid, Limit: 3}},
		{"unknown subscription", delivery.Filter{SubscriptionID: "sub-x", Limit: 10}},
		{"subscription prefix is not a match", delivery.Filter{SubscriptionID: "sub", Limit: 10}},
		{"event", delivery.Filter{EventID: "evt-7", Limit: 1000}},
		{"event limit", delivery.Filter{EventID: "evt-100", Limit: 2}},
		{"event after", delivery.Filter{EventID: "evt-150", After: all[451].Seq, Limit: 1000}},
		{"event ok", delivery.Filter{EventID: "evt-20", Status: delivery.OK, Limit: 1000}},
		{"event failed", delivery.Filter{EventID: "evt-20", Status: delivery.Failed, Limit: 1000}},
		{"unknown event", delivery.Filter{EventID: "evt-'; --", Limit: 10}},
		{"event and subscription", delivery.Filter{EventID: "evt-3", SubscriptionID: all[9].SubscriptionID, Limit: 10}},
		{"event of another subscription", delivery.Filter{EventID: "evt-3", SubscriptionID: "sub-x", Limit: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := referenceAttempts(all, tt.f)
			if (len(want) == 0) != none[tt.name] {
				t.Fatalf("bad test case: the reference selects %d attempts", len(want))
			}
			got, err := b.Attempts(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Attempts(%+v) = %v", tt.f, err)
			}
			if diff := gocmp.Diff(attemptSeqs(want), attemptSeqs(got)); diff != "" {
				t.Fatalf("Attempts(%+v) seqs mismatch (-want +got):\n%s", tt.f, diff)
			}
			if diff := gocmp.Diff(want, got, cmpAttempts()); diff != "" {
				t.Errorf("Attempts(%+v) mismatch (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

func testInvalidAttemptFilter(t *testing.T, b AttemptBackend) {
	insertAttempts(t, b, generateAttempts(1, 1, 10))
	tests := []struct {
		name string
		f    delivery.Filter
	}{
		{"zero limit", delivery.Filter{}},
		{"negative limit", delivery.Filter{SubscriptionID: "sub-a", Limit: -1}},
		{"unknown status", delivery.Filter{SubscriptionID: "sub-a", Status: delivery.Status(9), Limit: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Attempts(t.Context(), tt.f)
			if err == nil {
				t.Fatalf("Attempts(%+v) = %d attempts, nil error; want an error", tt.f, len(got))
			}
			if errors.Is(err, eventstore.ErrUnavailable) {
				t.Errorf("Attempts(%+v) = %v; want an error that is not ErrUnavailable", tt.f, err)
			}
		})
	}
}

func testAttemptDuplicates(t *testing.T, b AttemptBackend) {
	all := generateAttempts(1, 1, 300)
	insertAttempts(t, b, all[:200])
	insertAttempts(t, b, all[:200])
	insertAttempts(t, b, all[100:]) // overlaps on seqs 101..200
	insertAttempts(t, b, all[150:160])
	// A redelivered attempt whose payload differs (it cannot, but a store
	// must not count the seq twice either way).
	changed := all[42]
	changed.LatencyMS = 99999
	insertAttempts(t, b, []delivery.Attempt{changed})

	filters := []delivery.Filter{
		{Limit: 1000},
		{After: 120, Through: 180, Limit: 1000},
		{After: 120, Through: 180, Limit: 13},
		{SubscriptionID: "sub-a", Limit: 1000},
		{SubscriptionID: "sub-b", After: 150, Limit: 7},
		{SubscriptionID: "sub-c", Status: delivery.Failed, Limit: 1000},
		{EventID: "evt-50", Limit: 1000},
		{EventID: "evt-14", Limit: 1000},
		{EventID: "evt-55", Status: delivery.OK, Limit: 1000},
		{Status: delivery.OK, Limit: 1000},
	}
	for _, f := range filters {
		want := referenceAttempts(all, f)
		got, err := b.Attempts(t.Context(), f)
		if err != nil {
			t.Fatalf("Attempts(%+v) = %v", f, err)
		}
		if diff := gocmp.Diff(attemptSeqs(want), attemptSeqs(got)); diff != "" {
			t.Errorf("after duplicate inserts, Attempts(%+v) seqs mismatch (-want +got):\n%s", f, diff)
		}
	}
}

func testAttemptRoundTrip(t *testing.T, b AttemptBackend) {
	ts := time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC)
	attempts := []delivery.Attempt{
		{
			Seq:            1,
			SubscriptionID: "sub-ü/1",
			DeliveryID:     "msg_0195b2c4-7d3e-7abc-8def-0123456789ab",
			EventID:        "0195b2c4-7d3e-7abc-8def-0123456789ab",
			EventSeq:       1 << 40,
			Tag:            "PAYMENT.card-DECLINED_2",
			Attempt:        12,
			URL:            "https://hooks.example.com/in?x=1&y='2'",
			Outcome:        delivery.DeadLettered,
			StatusCode:     500,
			LatencyMS:      1234.567,
			Error:          "status 500: \"quoted\" 'single' \\ back\nnew line\ttab — 支付被拒绝 🚫",
			Response:       strings.Repeat("é", delivery.MaxResponse/2),
			Time:           ts,
		},
		{
			Seq:            1 << 41,
			SubscriptionID: "s",
			EventID:        "e",
			Outcome:        delivery.Retrying,
			Attempt:        1,
			Time:           time.Date(1999, 12, 31, 23, 59, 59, 1000, time.UTC),
		},
		{
			Seq:            3,
			SubscriptionID: "s",
			DeliveryID:     "d",
			EventID:        "e",
			EventSeq:       9,
			Tag:            "X.Y",
			Attempt:        1,
			URL:            "mailto:ops@example.com",
			Outcome:        delivery.Delivered,
			StatusCode:     250,
			LatencyMS:      0,
			Response:       "250 2.0.0 Ok: queued",
			Time:           time.Date(2025, 6, 1, 12, 0, 0, 1000, time.FixedZone("CEST", 2*3600)),
		},
		{
			Seq:            4,
			SubscriptionID: "s",
			EventID:        "e",
			Outcome:        delivery.Disabled,
			StatusCode:     410,
			Attempt:        3,
			Time:           time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		},
	}
	insertAttempts(t, b, attempts)

	want := make([]delivery.Attempt, len(attempts))
	for i, a := range attempts {
		a.Time = a.Time.UTC()
		want[i] = a
	}
	slices.SortFunc(want, func(a, b delivery.Attempt) int { return cmp.Compare(a.Seq, b.Seq) })

	for _, f := range []delivery.Filter{
		{Limit: 10},
		{SubscriptionID: "s", Limit: 10},
		{EventID: "e", Limit: 10},
	} {
		got, err := b.Attempts(t.Context(), f)
		if err != nil {
			t.Fatalf("Attempts(%+v) = %v", f, err)
		}
		w := referenceAttempts(want, f)
		if diff := gocmp.Diff(w, got, cmpAttempts()); diff != "" {
			t.Errorf("Attempts(%+v) round trip mismatch (-want +got):\n%s", f, diff)
		}
		for _, a := range got {
			if a.Time.Location() != time.UTC {
				t.Errorf("seq %d: Time in %v; want UTC", a.Seq, a.Time.Location())
			}
		}
	}
}

func testAttemptCursor(t *testing.T, b AttemptBackend) {
	n := 20_000
	if testing.Short() {
		n = 3_000
	}
	// Seqs with gaps, and one rare subscription whose attempts are far
	// apart in the stream.
	all := generateAttempts(1000, 3, n)
	for i := range all {
		if i%997 == 13 {
			all[i].SubscriptionID = "sub-rare"
		}
	}
	for start := 0; start < n; start += 5_000 {
		insertAttempts(t, b, all[start:min(start+5_000, n)])
	}
	last := all[n-1].Seq

	tests := []struct {
		name string
		f    delivery.Filter
	}{
		{"subscription", delivery.Filter{SubscriptionID: "sub-a", Through: last, Limit: 1000}},
		{"subscription failed", delivery.Filter{SubscriptionID: "sub-b", Status: delivery.Failed, Through: last, Limit: 333}},
		{"rare subscription small pages", delivery.Filter{SubscriptionID: "sub-rare", Through: last, Limit: 2}},
		{"rare subscription unbounded", delivery.Filter{SubscriptionID: "sub-rare", Limit: 1000}},
		{"everything", delivery.Filter{Through: last, Limit: 999}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			want := referenceAttempts(all, delivery.Filter{SubscriptionID: f.SubscriptionID, Status: f.Status, Limit: n})
			if len(want) == 0 {
				t.Fatal("bad test case: the reference selects no attempts")
			}
			var got []uint64
			cursor := uint64(0)
			for range n {
				f.After = cursor
				page, err := b.Attempts(t.Context(), f)
				if err != nil {
					t.Fatalf("Attempts(%+v) = %v", f, err)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, attemptSeqs(page)...)
				cursor = page[len(page)-1].Seq
			}
			if diff := gocmp.Diff(attemptSeqs(want), got); diff != "" {
				t.Errorf("paged seqs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testAttemptsEmpty(t *testing.T, b AttemptBackend) {
	ctx := t.Context()
	if err := b.InsertAttempts(ctx, nil); err != nil {
		t.Errorf("InsertAttempts(nil) = %v", err)
	}
	for _, f := range []delivery.Filter{
		{Limit: 10},
		{SubscriptionID: "sub-a", Limit: 10},
		{EventID: "evt-1", Status: delivery.Failed, Limit: 10},
		{SubscriptionID: "sub-a", After: 5, Through: 100, Limit: 10},
	} {
		got, err := b.Attempts(ctx, f)
		if err != nil || len(got) != 0 {
			t.Errorf("Attempts(%+v) on an empty store = %d attempts, %v; want none", f, len(got), err)
		}
	}
}
