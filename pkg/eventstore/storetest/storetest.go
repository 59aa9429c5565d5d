// Package storetest is the conformance suite every EventSync event store
// passes: the ClickHouse store, the embedded SQLite store and any fake.
//
// A backend's test calls Run with a function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Backend {
//			s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Expected results are computed by a small in-memory reference
// implementation of the eventstore contract (see reference.go), so every
// table case states only the filter it exercises.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
)

// Backend is the method set of an event store.
type Backend interface {
	// Insert stores one batch; re-inserting a stored seq is a no-op.
	Insert(ctx context.Context, events []event.Event) error
	// Events returns the events selected by f.
	Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error)
	// Event returns the event with an id (the lowest seq if stored twice),
	// or an error wrapping eventstore.ErrNotFound.
	Event(ctx context.Context, id string) (event.Event, error)
	// Stats counts events per tag per time bucket.
	Stats(ctx context.Context, f eventstore.StatsFilter) ([]eventstore.Count, error)
	// Ping checks that the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Run runs the conformance suite. open must return a fresh, empty backend
// for each call and arrange for it to be closed when the test ends
// (t.Cleanup). With -short the large cursor test uses fewer events.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	t.Run("Events", func(t *testing.T) { testEvents(t, open(t)) })
	t.Run("InvalidFilter", func(t *testing.T) { testInvalidFilter(t, open(t)) })
	t.Run("Event", func(t *testing.T) { testEvent(t, open(t)) })
	t.Run("Stats", func(t *testing.T) { testStats(t, open(t)) })
	t.Run("Allowed", func(t *testing.T) { testAllowed(t, open(t)) })
	t.Run("Duplicates", func(t *testing.T) { testDuplicates(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("Cursor", func(t *testing.T) { testCursor(t, open(t)) })
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
}

// base returns the time of the first generated event: a fixed instant with
// a non-zero microsecond part.
func base() time.Time {
	return time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)
}

// cmpEvents compares events field by field; Data is compared as JSON and
// times with time.Time.Equal.
func cmpEvents() cmp.Option {
	// nil and empty results are equal.
	return cmp.Options{cmp.FilterPath(func(p cmp.Path) bool { return len(p) == 1 }, cmpopts.EquateEmpty()), cmpData()}
}

func cmpData() cmp.Option {
	return cmp.Comparer(func(a, b json.RawMessage) bool { return jsonEqual(a, b) })
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return cmp.Equal(x, y)
}

// seqs returns the seqs of events, for short failure messages.
func seqs(events []event.Event) []uint64 {
	out := make([]uint64, len(events), max(len(events), 1))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

// generate returns n events with seqs first, first+step, … whose fields
// cycle through a few values so that every filter selects a mix. Event
// timestamps are not in seq order so that ByTime differs from BySeq.
func generate(first, step uint64, n int) []event.Event {
	categories := []string{"DATABASE", "NETWORK", "TEST", "TEST.unit", "AUTH"}
	codes := []string{"CONNECTION_LOST", "TIMEOUT", "STARTED"}
	sessions := []string{"sess-a", "", "sess-b", "sess-c", "", "sess-a", "sess-b"}
	sources := []string{"api", "worker", "", "cron"}
	out := make([]event.Event, n)
	for i := range out {
		seq := first + uint64(i)*step
		cat := categories[i%len(categories)]
		code := codes[(i/2)%len(codes)]
		// Spread timestamps over ~2.5 days, shuffled against seq order, with
		// repeats so that ByTime needs the seq tiebreak.
		offset := time.Duration((i*7919)%n/2) * 397 * time.Second
		ts := base().Add(offset).Add(time.Duration(i%3) * time.Microsecond)
		out[i] = event.Event{
			Seq:        seq,
			ID:         fmt.Sprintf("evt-%08d", seq),
			Subject:    "events." + cat + "." + code,
			Tag:        cat + "." + code,
			Category:   cat,
			Code:       code,
			Message:    fmt.Sprintf("event %d: ünïcødé ✓", seq),
			Timestamp:  ts,
			ReceivedAt: base().Add(time.Duration(seq) * time.Millisecond),
			SessionID:  sessions[i%len(sessions)],
			Source:     sources[(i/3)%len(sources)],
			Severity:   event.Severity(i%6 + 1),
			Producer:   "producer-" + fmt.Sprint(i%2),
			Data:       json.RawMessage(fmt.Sprintf(`{"n":%d,"tags":["a","b"],"nested":{"ok":true}}`, i)),
		}
		if i%4 == 0 {
			out[i].Data = nil
		}
	}
	return out
}

func insert(t *testing.T, b Backend, events []event.Event) {
	t.Helper()
	if err := b.Insert(t.Context(), events); err != nil {
		t.Fatalf("Insert(%d events) = %v", len(events), err)
	}
}

func testEvents(t *testing.T, b Backend) {
	all := generate(10, 3, 600)
	// Two batches, so that stores see more than one insert.
	insert(t, b, all[:250])
	insert(t, b, all[250:])
	last := all[len(all)-1].Seq
	mid := all[300].Seq

	// Filters that select nothing; every other case must select something.
	none := map[string]bool{"after through empty range": true, "after last": true, "unknown category": true, "unknown session": true}
	tests := []struct {
		name string
		f    eventstore.Filter
	}{
		{"all by seq", eventstore.Filter{Limit: 1000}},
		{"limit", eventstore.Filter{Limit: 7}},
		{"after", eventstore.Filter{After: mid, Limit: 1000}},
		{"after between seqs", eventstore.Filter{After: mid + 1, Limit: 50}},
		{"through", eventstore.Filter{Through: mid, Limit: 1000}},
		{"after through", eventstore.Filter{After: 100, Through: mid, Limit: 1000}},
		{"after through limit", eventstore.Filter{After: 100, Through: mid, Limit: 9}},
		{"after through empty range", eventstore.Filter{After: mid, Through: mid, Limit: 10}},
		{"after last", eventstore.Filter{After: last, Limit: 10}},
		{"through beyond last", eventstore.Filter{After: last - 30, Through: last + 1000, Limit: 100}},
		{"desc", eventstore.Filter{Order: eventstore.BySeqDesc, Limit: 25}},
		{"desc through", eventstore.Filter{Order: eventstore.BySeqDesc, Through: mid, Limit: 25}},
		{"desc after through", eventstore.Filter{Order: eventstore.BySeqDesc, After: mid - 60, Through: mid, Limit: 100}},
		{"by time", eventstore.Filter{Order: eventstore.ByTime, Limit: 1000}},
		{"by time limit", eventstore.Filter{Order: eventstore.ByTime, Limit: 33}},
		{"category", eventstore.Filter{Category: "DATABASE", Limit: 1000}},
		{"multi-token category", eventstore.Filter{Category: "TEST.unit", Limit: 1000}},
		{"category code", eventstore.Filter{Category: "NETWORK", Code: "TIMEOUT", Limit: 1000}},
		{"category code desc limit", eventstore.Filter{Category: "NETWORK", Code: "TIMEOUT", Order: eventstore.BySeqDesc, Limit: 5}},
		{"category by time", eventstore.Filter{Category: "AUTH", Order: eventstore.ByTime, Limit: 1000}},
		{"category after through", eventstore.Filter{Category: "DATABASE", After: 200, Through: mid, Limit: 1000}},
		{"code", eventstore.Filter{Code: "STARTED", Limit: 1000}},
		{"unknown category", eventstore.Filter{Category: "NOPE", Limit: 10}},
		{"pattern category star", eventstore.Filter{TagPattern: "DATABASE.*", Limit: 1000}},
		{"pattern star code", eventstore.Filter{TagPattern: "*.CONNECTION_LOST", Limit: 1000}},
		{"pattern star star", eventstore.Filter{TagPattern: "*.*", Limit: 1000}},
		{"pattern gt", eventstore.Filter{TagPattern: "TEST.>", Limit: 1000}},
		{"pattern gt only", eventstore.Filter{TagPattern: ">", Limit: 1000}},
		{"pattern literal", eventstore.Filter{TagPattern: "TEST.unit.TIMEOUT", Limit: 1000}},
		{"pattern three tokens", eventstore.Filter{TagPattern: "*.*.*", Limit: 1000}},
		{"pattern star gt", eventstore.Filter{TagPattern: "*.unit.>", Limit: 1000}},
		{"pattern desc", eventstore.Filter{TagPattern: "*.TIMEOUT", Order: eventstore.BySeqDesc, Limit: 10}},
		{"session by time", eventstore.Filter{SessionID: "sess-a", Order: eventstore.ByTime, Limit: 1000}},
		{"session by seq", eventstore.Filter{SessionID: "sess-b", Limit: 1000}},
		{"session desc limit", eventstore.Filter{SessionID: "sess-c", Order: eventstore.BySeqDesc, Limit: 4}},
		{"session after", eventstore.Filter{SessionID: "sess-a", After: mid, Order: eventstore.ByTime, Limit: 1000}},
		{"session category", eventstore.Filter{SessionID: "sess-b", Category: "NETWORK", Limit: 1000}},
		{"unknown session", eventstore.Filter{SessionID: "nope", Limit: 10}},
		{"source", eventstore.Filter{Source: "cron", Limit: 1000}},
		{"min severity", eventstore.Filter{MinSeverity: event.Error, Limit: 1000}},
		{"min severity critical desc", eventstore.Filter{MinSeverity: event.Critical, Order: eventstore.BySeqDesc, Limit: 20}},
		{"from", eventstore.Filter{From: base().Add(24 * time.Hour), Limit: 1000}},
		{"to", eventstore.Filter{To: base().Add(12 * time.Hour), Limit: 1000}},
		{"from to by time", eventstore.Filter{From: base().Add(6 * time.Hour), To: base().Add(30 * time.Hour), Order: eventstore.ByTime, Limit: 1000}},
		{"from exact timestamp", eventstore.Filter{From: all[17].Timestamp, To: all[17].Timestamp.Add(time.Microsecond), Limit: 1000}},
		{"from to category", eventstore.Filter{Category: "NETWORK", From: base().Add(3 * time.Hour), To: base().Add(40 * time.Hour), Order: eventstore.ByTime, Limit: 1000}},
		{"everything", eventstore.Filter{
			After: 30, Through: last - 30, Category: "TEST", Code: "TIMEOUT", TagPattern: "TEST.*",
			SessionID: "sess-a", Source: "api", MinSeverity: event.Info,
			From: base().Add(time.Hour), To: base().Add(60 * time.Hour), Order: eventstore.ByTime, Limit: 1000,
		}},
		{"source severity pattern desc", eventstore.Filter{
			Source: "worker", MinSeverity: event.Warning, TagPattern: "*.STARTED", Order: eventstore.BySeqDesc, Limit: 1000,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := reference(all, tt.f)
			if (len(want) == 0) != none[tt.name] {
				t.Fatalf("bad test case: the reference selects %d events", len(want))
			}
			got, err := b.Events(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Events(%+v) = %v", tt.f, err)
			}
			if diff := cmp.Diff(seqs(want), seqs(got)); diff != "" {
				t.Fatalf("Events(%+v) seqs mismatch (-want +got):\n%s", tt.f, diff)
			}
			if diff := cmp.Diff(want, got, cmpEvents()); diff != "" {
				t.Errorf("Events(%+v) mismatch (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

func testInvalidFilter(t *testing.T, b Backend) {
	insert(t, b, generate(1, 1, 10))
	tests := []struct {
		name string
		f    eventstore.Filter
	}{
		{"zero limit", eventstore.Filter{}},
		{"negative limit", eventstore.Filter{Limit: -1}},
		{"bad pattern", eventstore.Filter{TagPattern: "A.>.B", Limit: 10}},
		{"bad pattern chars", eventstore.Filter{TagPattern: "A'; DROP TABLE events; --", Limit: 10}},
	}
	for i, allowed := range badAllowed {
		tests = append(tests,
			struct {
				name string
				f    eventstore.Filter
			}{fmt.Sprintf("bad allowed %d", i), eventstore.Filter{Allowed: allowed, Limit: 10}},
			struct {
				name string
				f    eventstore.Filter
			}{fmt.Sprintf("bad allowed %d with category", i), eventstore.Filter{Allowed: allowed, Category: "DATABASE", Order: eventstore.BySeqDesc, Limit: 10}},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Events(t.Context(), tt.f)
			if err == nil {
				t.Fatalf("Events(%+v) = %d events, nil error; want an error", tt.f, len(got))
			}
			if errors.Is(err, eventstore.ErrUnavailable) {
				t.Errorf("Events(%+v) = %v; want an error that is not ErrUnavailable", tt.f, err)
			}
		})
	}
	_, err := b.Stats(t.Context(), eventstore.StatsFilter{From: base(), To: base().Add(time.Hour), TagPattern: "A..B"})
	if err == nil {
		t.Errorf("Stats with pattern %q = nil error; want an error", "A..B")
	}
	for _, allowed := range badAllowed {
		_, err := b.Stats(t.Context(), eventstore.StatsFilter{From: base(), To: base().Add(time.Hour), Allowed: allowed})
		if err == nil || errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("Stats with Allowed %q = %v; want an error that is not ErrUnavailable", allowed, err)
		}
	}
	_, err = b.Stats(t.Context(), eventstore.StatsFilter{From: base(), To: base().Add(time.Hour), Bucket: eventstore.Bucket(99)})
	if err == nil {
		t.Errorf("Stats with bucket 99 = nil error; want an error")
	}
}

// badAllowed are Allowed lists with an invalid pattern, which stores refuse.
var badAllowed = [][]string{
	{"A.>.B"},
	{"DATABASE.>", ""},
	{"DATABASE.>", "A'; DROP TABLE events; --"},
	{"DATABASE.>", "A..B"},
}

// testAllowed checks Filter.Allowed and StatsFilter.Allowed: a caller sees,
// pages through and counts only the events whose tags its patterns match.
func testAllowed(t *testing.T, b Backend) {
	all := generate(10, 3, 600)
	insert(t, b, all[:250])
	insert(t, b, all[250:])
	mid := all[300].Seq
	db := []string{"DATABASE.>"}

	// Filters that select nothing; every other case must select something.
	none := map[string]bool{
		"empty": true, "empty desc": true, "empty by time": true, "empty category": true,
		"empty session": true, "empty pattern": true, "empty after": true,
		"database and network pattern": true, "database and network category": true,
		"unknown tags": true,
	}
	// Filters whose Allowed does not change the result.
	unrestricting := map[string]bool{"nil": true, "everything": true, "database and database category": true}
	tests := []struct {
		name string
		f    eventstore.Filter
	}{
		{"nil", eventstore.Filter{Allowed: nil, Limit: 1000}},
		{"everything", eventstore.Filter{Allowed: []string{">"}, Limit: 1000}},
		{"empty", eventstore.Filter{Allowed: []string{}, Limit: 1000}},
		{"empty desc", eventstore.Filter{Allowed: []string{}, Order: eventstore.BySeqDesc, Limit: 10}},
		{"empty by time", eventstore.Filter{Allowed: []string{}, Order: eventstore.ByTime, Limit: 10}},
		{"empty category", eventstore.Filter{Allowed: []string{}, Category: "DATABASE", Limit: 1000}},
		{"empty session", eventstore.Filter{Allowed: []string{}, SessionID: "sess-a", Limit: 1000}},
		{"empty pattern", eventstore.Filter{Allowed: []string{}, TagPattern: ">", Limit: 1000}},
		{"empty after", eventstore.Filter{Allowed: []string{}, After: mid, Limit: 1000}},
		{"database", eventstore.Filter{Allowed: db, Limit: 1000}},
		{"database limit", eventstore.Filter{Allowed: db, Limit: 7}},
		{"database after", eventstore.Filter{Allowed: db, After: mid, Limit: 1000}},
		{"database after between seqs limit", eventstore.Filter{Allowed: db, After: mid + 1, Limit: 9}},
		{"database after through", eventstore.Filter{Allowed: db, After: 100, Through: mid, Limit: 1000}},
		{"database desc", eventstore.Filter{Allowed: db, Order: eventstore.BySeqDesc, Limit: 1000}},
		{"database desc limit", eventstore.Filter{Allowed: db, Order: eventstore.BySeqDesc, Limit: 5}},
		{"database desc through limit", eventstore.Filter{Allowed: db, Order: eventstore.BySeqDesc, Through: mid, Limit: 6}},
		{"database by time limit", eventstore.Filter{Allowed: db, Order: eventstore.ByTime, Limit: 11}},
		{"database and pattern", eventstore.Filter{Allowed: db, TagPattern: "*.TIMEOUT", Limit: 1000}},
		{"database and star pattern desc limit", eventstore.Filter{Allowed: db, TagPattern: "*.*", Order: eventstore.BySeqDesc, Limit: 8}},
		{"database and network pattern", eventstore.Filter{Allowed: db, TagPattern: "NETWORK.*", Limit: 1000}},
		{"database and database category", eventstore.Filter{Allowed: db, Category: "DATABASE", Limit: 1000}},
		{"database and network category", eventstore.Filter{Allowed: db, Category: "NETWORK", Limit: 1000}},
		{"database and code", eventstore.Filter{Allowed: db, Code: "STARTED", Limit: 1000}},
		{"database and session", eventstore.Filter{Allowed: db, SessionID: "sess-a", Order: eventstore.ByTime, Limit: 1000}},
		{"database and session desc limit", eventstore.Filter{Allowed: db, SessionID: "sess-b", Order: eventstore.BySeqDesc, Limit: 3}},
		{"database and source", eventstore.Filter{Allowed: db, Source: "cron", After: 100, Limit: 1000}},
		{"database and time", eventstore.Filter{Allowed: db, From: base().Add(6 * time.Hour), To: base().Add(30 * time.Hour), Order: eventstore.ByTime, Limit: 1000}},
		{"two patterns", eventstore.Filter{Allowed: []string{"DATABASE.>", "TEST.*"}, Limit: 1000}},
		{"two patterns desc limit", eventstore.Filter{Allowed: []string{"TEST.*", "DATABASE.>"}, Order: eventstore.BySeqDesc, Limit: 13}},
		{"two overlapping patterns", eventstore.Filter{Allowed: []string{"*.TIMEOUT", "NETWORK.>"}, Limit: 1000}},
		{"two patterns and pattern", eventstore.Filter{Allowed: []string{"AUTH.STARTED", "TEST.>"}, TagPattern: "*.*", Limit: 1000}},
		{"two patterns and category after", eventstore.Filter{Allowed: []string{"AUTH.STARTED", "TEST.>"}, Category: "AUTH", After: mid, Limit: 1000}},
		{"multi-token category", eventstore.Filter{Allowed: []string{"TEST.unit.*"}, Limit: 1000}},
		{"gt below category", eventstore.Filter{Allowed: []string{"TEST.>"}, Order: eventstore.ByTime, Limit: 1000}},
		{"literal", eventstore.Filter{Allowed: []string{"AUTH.STARTED"}, Limit: 1000}},
		{"unknown tags", eventstore.Filter{Allowed: []string{"NOPE.>", "database.*"}, Limit: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := reference(all, tt.f)
			if (len(want) == 0) != none[tt.name] {
				t.Fatalf("bad test case: the reference selects %d events", len(want))
			}
			unrestricted := tt.f
			unrestricted.Allowed = nil
			if changes := !slices.Equal(seqs(want), seqs(reference(all, unrestricted))); changes == unrestricting[tt.name] {
				t.Fatalf("bad test case: Allowed changes the result: %v; want %v", changes, !changes)
			}
			got, err := b.Events(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Events(%+v) = %v", tt.f, err)
			}
			for _, e := range got {
				if !eventstore.Allows(tt.f.Allowed, e.Tag) {
					t.Errorf("Events(%+v) returned seq %d with tag %s", tt.f, e.Seq, e.Tag)
				}
			}
			if diff := cmp.Diff(seqs(want), seqs(got)); diff != "" {
				t.Fatalf("Events(%+v) seqs mismatch (-want +got):\n%s", tt.f, diff)
			}
			if diff := cmp.Diff(want, got, cmpEvents()); diff != "" {
				t.Errorf("Events(%+v) mismatch (-want +got):\n%s", tt.f, diff)
			}
		})
	}

	// Paging with a cursor visits exactly the allowed events, in order.
	pages := []struct {
		name string
		f    eventstore.Filter // the first page; After or Through moves
	}{
		{"database", eventstore.Filter{Allowed: db, Limit: 7}},
		{"database through", eventstore.Filter{Allowed: db, Through: all[len(all)-1].Seq, Limit: 5}},
		{"database pattern", eventstore.Filter{Allowed: db, TagPattern: "*.CONNECTION_LOST", Limit: 4}},
		{"database category", eventstore.Filter{Allowed: db, Category: "DATABASE", Limit: 6}},
		{"database session", eventstore.Filter{Allowed: db, SessionID: "sess-a", Limit: 2}},
		{"database desc", eventstore.Filter{Allowed: db, Order: eventstore.BySeqDesc, Limit: 7}},
		{"two patterns", eventstore.Filter{Allowed: []string{"DATABASE.>", "*.TIMEOUT"}, Limit: 10}},
		{"two patterns desc", eventstore.Filter{Allowed: []string{"DATABASE.>", "*.TIMEOUT"}, Order: eventstore.BySeqDesc, Limit: 9}},
	}
	for _, tt := range pages {
		t.Run("pages "+tt.name, func(t *testing.T) {
			whole := tt.f
			whole.Limit = len(all)
			want := seqs(reference(all, whole))
			if len(want) <= 2*tt.f.Limit {
				t.Fatalf("bad test case: %d events fit in three pages of %d", len(want), tt.f.Limit)
			}
			got := pageThrough(t, b, tt.f, len(all))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("paging %+v seqs mismatch (-want +got):\n%s", tt.f, diff)
			}
		})
	}

	t.Run("stats", func(t *testing.T) {
		from, to := base().Add(-24*time.Hour), base().Add(96*time.Hour)
		stats := []struct {
			name  string
			f     eventstore.StatsFilter
			empty bool
		}{
			{"nil", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Day}, false},
			{"empty", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Day, Allowed: []string{}}, true},
			{"empty pattern", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Hour, TagPattern: ">", Allowed: []string{}}, true},
			{"database hour", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Hour, Allowed: db}, false},
			{"database day", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Day, Allowed: db}, false},
			{"database and pattern", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Day, TagPattern: "*.TIMEOUT", Allowed: db}, false},
			{"database and network pattern", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Day, TagPattern: "NETWORK.*", Allowed: db}, true},
			{"two patterns", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Hour, Allowed: []string{"TEST.>", "AUTH.STARTED"}}, false},
			{"two patterns and pattern", eventstore.StatsFilter{From: from, To: to, Bucket: eventstore.Minute, TagPattern: "*.*", Allowed: []string{"TEST.>", "AUTH.STARTED"}}, false},
		}
		for _, tt := range stats {
			t.Run(tt.name, func(t *testing.T) {
				want := referenceStats(all, tt.f)
				if (len(want) == 0) != tt.empty {
					t.Fatalf("bad test case: the reference counts %d groups", len(want))
				}
				unrestricted := tt.f
				unrestricted.Allowed = nil
				if tt.f.Allowed != nil && cmp.Equal(want, referenceStats(all, unrestricted)) {
					t.Fatalf("bad test case: Allowed does not change the counts")
				}
				got, err := b.Stats(t.Context(), tt.f)
				if err != nil {
					t.Fatalf("Stats(%+v) = %v", tt.f, err)
				}
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("Stats(%+v) mismatch (-want +got):\n%s", tt.f, diff)
				}
			})
		}
	})
}

// pageThrough reads every event selected by f page by page, moving After
// (ascending orders) or Through (BySeqDesc) past the last event of each
// page, as an API cursor does, and returns the seqs read. Every page must
// hold only tags f.Allowed allows. It gives up after maxPages pages.
func pageThrough(t *testing.T, b Backend, f eventstore.Filter, maxPages int) []uint64 {
	t.Helper()
	var got []uint64
	for range maxPages {
		page, err := b.Events(t.Context(), f)
		if err != nil {
			t.Fatalf("Events(%+v) = %v", f, err)
		}
		for _, e := range page {
			if !eventstore.Allows(f.Allowed, e.Tag) {
				t.Fatalf("Events(%+v) returned seq %d with tag %s", f, e.Seq, e.Tag)
			}
		}
		if len(page) > f.Limit {
			t.Fatalf("Events(%+v) = %d events; want at most %d", f, len(page), f.Limit)
		}
		if len(page) == 0 {
			return got
		}
		got = append(got, seqs(page)...)
		lastSeq := page[len(page)-1].Seq
		if f.Order == eventstore.BySeqDesc {
			if lastSeq <= 1 {
				return got
			}
			f.Through = lastSeq - 1
		} else {
			f.After = lastSeq
		}
	}
	t.Fatalf("paging %+v did not end after %d pages", f, maxPages)
	return nil
}

func testEvent(t *testing.T, b Backend) {
	all := generate(100, 1, 50)
	insert(t, b, all)
	// The same id stored again under a higher seq (a producer retry that
	// escaped deduplication): Event returns the lowest seq.
	dup := all[20]
	dup.Seq = 1000
	dup.Message = "the retry"
	insert(t, b, []event.Event{dup})
	// And once under a lower seq in a later batch.
	dup2 := all[30]
	dup2.Seq = 2000
	insert(t, b, []event.Event{dup2})
	low := all[30]
	low.Seq = 60
	low.Message = "the lower one"
	insert(t, b, []event.Event{low})

	tests := []struct {
		id   string
		want event.Event
	}{
		{all[0].ID, all[0]},
		{all[49].ID, all[49]},
		{all[20].ID, all[20]},
		{all[30].ID, low},
	}
	for _, tt := range tests {
		got, err := b.Event(t.Context(), tt.id)
		if err != nil {
			t.Errorf("Event(%q) = %v", tt.id, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmpEvents()); diff != "" {
			t.Errorf("Event(%q) mismatch (-want +got):\n%s", tt.id, diff)
		}
	}
	for _, id := range []string{"unknown", "", "evt-'; --"} {
		_, err := b.Event(t.Context(), id)
		if !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("Event(%q) = %v; want ErrNotFound", id, err)
		}
	}
}

func testStats(t *testing.T, b Backend) {
	all := generate(1, 1, 800)
	insert(t, b, all)
	tests := []struct {
		name string
		f    eventstore.StatsFilter
	}{
		{"minute", eventstore.StatsFilter{From: base(), To: base().Add(2 * time.Hour), Bucket: eventstore.Minute}},
		{"hour", eventstore.StatsFilter{From: base(), To: base().Add(72 * time.Hour), Bucket: eventstore.Hour}},
		{"day", eventstore.StatsFilter{From: base().Add(-24 * time.Hour), To: base().Add(96 * time.Hour), Bucket: eventstore.Day}},
		{"unaligned range", eventstore.StatsFilter{From: base().Add(90 * time.Minute), To: base().Add(150*time.Minute + 17*time.Second), Bucket: eventstore.Hour}},
		{"hour pattern", eventstore.StatsFilter{From: base(), To: base().Add(72 * time.Hour), Bucket: eventstore.Hour, TagPattern: "DATABASE.*"}},
		{"day pattern gt", eventstore.StatsFilter{From: base().Add(-24 * time.Hour), To: base().Add(96 * time.Hour), Bucket: eventstore.Day, TagPattern: "TEST.>"}},
		{"minute pattern star code", eventstore.StatsFilter{From: base(), To: base().Add(10 * time.Hour), Bucket: eventstore.Minute, TagPattern: "*.TIMEOUT"}},
		{"empty range", eventstore.StatsFilter{From: base().Add(-48 * time.Hour), To: base().Add(-24 * time.Hour), Bucket: eventstore.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := referenceStats(all, tt.f)
			got, err := b.Stats(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Stats(%+v) = %v", tt.f, err)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Stats(%+v) mismatch (-want +got):\n%s", tt.f, diff)
			}
			for _, c := range got {
				if c.Bucket.Location() != time.UTC {
					t.Errorf("Stats bucket %v is in %v; want UTC", c.Bucket, c.Bucket.Location())
					break
				}
			}
		})
	}
}

func testDuplicates(t *testing.T, b Backend) {
	all := generate(1, 1, 300)
	batchA := all[:200]
	batchB := all[100:] // overlaps A on seqs 101..200
	insert(t, b, batchA)
	insert(t, b, batchA)
	insert(t, b, batchB)
	insert(t, b, all[150:160]) // a small re-delivered slice

	filters := []eventstore.Filter{
		{Limit: 1000},
		{Order: eventstore.BySeqDesc, Limit: 1000},
		{Order: eventstore.ByTime, Limit: 1000},
		{After: 120, Through: 180, Limit: 1000},
		{After: 120, Through: 180, Limit: 13},
		{SessionID: "sess-a", Order: eventstore.ByTime, Limit: 1000},
		{Category: "NETWORK", Limit: 1000},
		{Category: "NETWORK", Code: "TIMEOUT", Order: eventstore.ByTime, Limit: 1000},
		{TagPattern: "*.STARTED", Limit: 1000},
		{From: base(), To: base().Add(10 * time.Hour), Order: eventstore.ByTime, Limit: 1000},
		{Source: "api", Limit: 1000},
		{Allowed: []string{"NETWORK.*", "AUTH.>"}, Limit: 1000},
		{Allowed: []string{"NETWORK.*"}, Category: "NETWORK", Order: eventstore.ByTime, Limit: 1000},
	}
	for _, f := range filters {
		want := reference(all, f)
		got, err := b.Events(t.Context(), f)
		if err != nil {
			t.Fatalf("Events(%+v) = %v", f, err)
		}
		if diff := cmp.Diff(seqs(want), seqs(got)); diff != "" {
			t.Errorf("after duplicate inserts, Events(%+v) seqs mismatch (-want +got):\n%s", f, diff)
		}
	}
	for _, bucket := range []eventstore.Bucket{eventstore.Minute, eventstore.Hour, eventstore.Day} {
		f := eventstore.StatsFilter{From: base().Add(-24 * time.Hour), To: base().Add(96 * time.Hour), Bucket: bucket}
		got, err := b.Stats(t.Context(), f)
		if err != nil {
			t.Fatalf("Stats(%+v) = %v", f, err)
		}
		if diff := cmp.Diff(referenceStats(all, f), got); diff != "" {
			t.Errorf("after duplicate inserts, Stats(%+v) mismatch (-want +got):\n%s", f, diff)
		}
	}
	got, err := b.Event(t.Context(), all[150].ID)
	if err != nil || got.Seq != all[150].Seq {
		t.Errorf("Event(%q) = seq %d, %v; want seq %d", all[150].ID, got.Seq, err, all[150].Seq)
	}
}

func testRoundTrip(t *testing.T, b Backend) {
	ts := time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC)
	events := []event.Event{
		{
			Seq:        1,
			ID:         "0195b2c4-7d3e-7abc-8def-0123456789ab",
			Subject:    "events.PAYMENT.card-DECLINED_2",
			Tag:        "PAYMENT.card-DECLINED_2",
			Category:   "PAYMENT",
			Code:       "card-DECLINED_2",
			Message:    "Zahlung abgelehnt — 支付被拒绝 🚫 \"quoted\" 'single' \\ back\nnew line\ttab",
			Timestamp:  ts,
			ReceivedAt: ts.Add(1234567 * time.Microsecond),
			SessionID:  "sess-ü-1",
			Source:     "checkout/api",
			Severity:   event.Critical,
			Producer:   "shop-1",
			Data:       json.RawMessage(`{"amount":12.5,"currency":"EUR","items":[{"sku":"A-1","qty":2}],"note":"ünïcødé","nil":null,"big":12345678901234567890}`),
		},
		{
			Seq:        1 << 40,
			ID:         "e2",
			Subject:    "events.A.B.C",
			Tag:        "A.B.C",
			Category:   "A.B",
			Code:       "C",
			Message:    "",
			Timestamp:  time.Date(1999, 12, 31, 23, 59, 59, 1000, time.UTC),
			ReceivedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			Severity:   event.Debug,
			Data:       json.RawMessage(`{}`),
		},
		{
			Seq:        3,
			ID:         "e3",
			Subject:    "events.X.Y",
			Tag:        "X.Y",
			Category:   "X",
			Code:       "Y",
			Message:    "no data, non-UTC input",
			Timestamp:  time.Date(2025, 6, 1, 12, 0, 0, 1000, time.FixedZone("CEST", 2*3600)),
			ReceivedAt: time.Date(2025, 6, 1, 12, 0, 1, 0, time.FixedZone("CEST", 2*3600)),
			Severity:   event.Warning,
		},
	}
	insert(t, b, events)

	want := make([]event.Event, len(events))
	for i, e := range events {
		e.Timestamp = e.Timestamp.UTC()
		e.ReceivedAt = e.ReceivedAt.UTC()
		want[i] = e
	}
	want[1], want[2] = want[2], want[1] // seq order

	got, err := b.Events(t.Context(), eventstore.Filter{Limit: 10})
	if err != nil {
		t.Fatalf("Events = %v", err)
	}
	if diff := cmp.Diff(want, got, cmpEvents()); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	for _, e := range got {
		if e.Timestamp.Location() != time.UTC || e.ReceivedAt.Location() != time.UTC {
			t.Errorf("seq %d: Timestamp in %v, ReceivedAt in %v; want UTC", e.Seq, e.Timestamp.Location(), e.ReceivedAt.Location())
		}
		if !e.Timestamp.Equal(e.Timestamp.Truncate(time.Microsecond)) {
			t.Errorf("seq %d: Timestamp %v has sub-microsecond precision", e.Seq, e.Timestamp)
		}
	}
	if len(got) == len(want) && string(got[0].Data) != string(want[0].Data) {
		t.Errorf("Data = %s; want the bytes stored: %s", got[0].Data, want[0].Data)
	}
	one, err := b.Event(t.Context(), events[0].ID)
	if err != nil {
		t.Fatalf("Event(%q) = %v", events[0].ID, err)
	}
	if diff := cmp.Diff(want[0], one, cmpEvents()); diff != "" {
		t.Errorf("Event(%q) mismatch (-want +got):\n%s", events[0].ID, diff)
	}
}

func testCursor(t *testing.T, b Backend) {
	n := 50_000
	if testing.Short() {
		n = 5_000
	}
	// Seqs with gaps: 1000, 1007, 1014, … so that seq ranges are wider than
	// the number of events in them.
	all := generate(1000, 7, n)
	for i := range all {
		if i%2500 == 1234 {
			all[i].Source = "rare"
		}
	}
	for start := 0; start < n; start += 10_000 {
		insert(t, b, all[start:min(start+10_000, n)])
	}
	last := all[n-1].Seq
	ctx := t.Context()

	t.Run("ascending pages", func(t *testing.T) {
		var got []uint64
		cursor := uint64(0)
		for range n {
			page, err := b.Events(ctx, eventstore.Filter{After: cursor, Through: last, Limit: 1000})
			if err != nil {
				t.Fatalf("Events(After: %d) = %v", cursor, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, seqs(page)...)
			cursor = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(seqs(all), got); diff != "" {
			t.Errorf("paged seqs mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("allowed pages", func(t *testing.T) {
		allowed := []string{"NETWORK.*", "TEST.unit.>"}
		var want []uint64
		for _, e := range all {
			if e.Category == "NETWORK" || e.Category == "TEST.unit" {
				want = append(want, e.Seq)
			}
		}
		got := pageThrough(t, b, eventstore.Filter{Allowed: allowed, Limit: 1000}, n)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paged seqs mismatch (-want +got):\n%s", diff)
		}
		slices.Reverse(want)
		got = pageThrough(t, b, eventstore.Filter{Allowed: allowed, Through: last, Order: eventstore.BySeqDesc, Limit: 777}, n)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("descending paged seqs mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("descending pages", func(t *testing.T) {
		var got []uint64
		through := last
		for range n {
			page, err := b.Events(ctx, eventstore.Filter{Through: through, Order: eventstore.BySeqDesc, Limit: 999})
			if err != nil {
				t.Fatalf("Events(Through: %d, desc) = %v", through, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, seqs(page)...)
			through = page[len(page)-1].Seq - 1
		}
		want := seqs(all)
		for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
			want[i], want[j] = want[j], want[i]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paged seqs mismatch (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name string
		f    eventstore.Filter
	}{
		{"sparse match over the whole range", eventstore.Filter{Source: "rare", Through: last, Limit: 100}},
		{"sparse match unbounded", eventstore.Filter{Source: "rare", Limit: 100}},
		{"sparse match desc", eventstore.Filter{Source: "rare", Order: eventstore.BySeqDesc, Limit: 3}},
		{"sparse match after", eventstore.Filter{Source: "rare", After: all[n/2].Seq, Through: last, Limit: 100}},
		{"no match", eventstore.Filter{Source: "none", Through: last, Limit: 10}},
		{"large limit", eventstore.Filter{After: all[100].Seq, Through: last, Limit: 20_000}},
		{"unbounded after", eventstore.Filter{After: all[n-50].Seq, Limit: 1000}},
		{"tiny window", eventstore.Filter{After: all[n/3].Seq, Through: all[n/3+2].Seq, Limit: 1000}},
		// Every rare event is an AUTH event: the allowed ones are sparse,
		// and with DATABASE.> no event in the whole range is.
		{"allowed sparse", eventstore.Filter{Allowed: []string{"AUTH.>"}, Source: "rare", Through: last, Limit: 100}},
		{"allowed sparse desc", eventstore.Filter{Allowed: []string{"AUTH.>"}, Source: "rare", Order: eventstore.BySeqDesc, Limit: 3}},
		{"allowed none of sparse", eventstore.Filter{Allowed: []string{"DATABASE.>"}, Source: "rare", Limit: 100}},
		{"allowed none", eventstore.Filter{Allowed: []string{"NOPE.>"}, Through: last, Limit: 10}},
		{"allowed large limit", eventstore.Filter{Allowed: []string{"DATABASE.>", "TEST.>"}, After: all[100].Seq, Limit: 20_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Events(ctx, tt.f)
			if err != nil {
				t.Fatalf("Events(%+v) = %v", tt.f, err)
			}
			if diff := cmp.Diff(seqs(reference(all, tt.f)), seqs(got)); diff != "" {
				t.Errorf("Events(%+v) seqs mismatch (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

func testEmpty(t *testing.T, b Backend) {
	ctx := t.Context()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v", err)
	}
	if err := b.Insert(ctx, nil); err != nil {
		t.Errorf("Insert(nil) = %v", err)
	}
	got, err := b.Events(ctx, eventstore.Filter{Limit: 10})
	if err != nil || len(got) != 0 {
		t.Errorf("Events on an empty store = %d events, %v; want none", len(got), err)
	}
	got, err = b.Events(ctx, eventstore.Filter{Order: eventstore.BySeqDesc, Limit: 10})
	if err != nil || len(got) != 0 {
		t.Errorf("Events(desc) on an empty store = %d events, %v; want none", len(got), err)
	}
	got, err = b.Events(ctx, eventstore.Filter{Allowed: []string{"A.>"}, Order: eventstore.BySeqDesc, Limit: 10})
	if err != nil || len(got) != 0 {
		t.Errorf("Events(allowed, desc) on an empty store = %d events, %v; want none", len(got), err)
	}
	stats, err := b.Stats(ctx, eventstore.StatsFilter{From: base(), To: base().Add(time.Hour)})
	if err != nil || len(stats) != 0 {
		t.Errorf("Stats on an empty store = %v, %v; want none", stats, err)
	}
	if _, err := b.Event(ctx, "x"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Event on an empty store = %v; want ErrNotFound", err)
	}
}
