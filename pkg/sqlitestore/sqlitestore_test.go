package sqlitestore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/eventstore/storetest"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
)

func open(t testing.TB) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend { return open(t) })
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := t.Context()
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	e := event.Event{Seq: 7, ID: "a", Tag: "A.B", Category: "A", Code: "B", Timestamp: time.Unix(1, 0).UTC(), ReceivedAt: time.Unix(2, 0).UTC(), Severity: event.Info}
	if err := s.Insert(ctx, []event.Event{e}); err != nil {
		t.Fatalf("Insert = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	s, err = sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatalf("second Open = %v", err)
	}
	defer s.Close()
	got, err := s.Event(ctx, "a")
	if err != nil || got.Seq != 7 {
		t.Errorf("Event(%q) after reopen = seq %d, %v; want seq 7", "a", got.Seq, err)
	}
}

func TestCanceledContextIsUnavailable(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithTimeout(t.Context(), -time.Second)
	defer cancel()
	_, err := s.Events(ctx, eventstore.Filter{Limit: 1})
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Events with an expired deadline = %v; want ErrUnavailable", err)
	}
}

// BenchmarkInsert inserts batches of 10,000 events and reports events/s.
func BenchmarkInsert(b *testing.B) {
	storetest.BenchmarkInsert(b, open(b), 1)
}

// BenchmarkQueries measures typical queries over EVENTSYNC_BENCH_EVENTS
// stored events (default 200,000).
func BenchmarkQueries(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("EVENTSYNC_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	storetest.BenchmarkQueries(b, open(b), n)
}
