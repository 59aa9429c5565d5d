package chstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/eventstore/storetest"
)

func open(t testing.TB, dsn string) *chstore.Store {
	t.Helper()
	s, err := chstore.Open(t.Context(), dsn)
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
	storetest.Run(t, func(t *testing.T) storetest.Backend { return open(t, chtest.DSN(t)) })
}

func TestOpenTwice(t *testing.T) {
	dsn := chtest.DSN(t)
	a := open(t, dsn)
	if err := a.Insert(t.Context(), []event.Event{testEvent(1)}); err != nil {
		t.Fatalf("Insert = %v", err)
	}
	b := open(t, dsn) // the schema exists: Open must be idempotent
	got, err := b.Event(t.Context(), "id-1")
	if err != nil || got.Seq != 1 {
		t.Errorf("Event after the second Open = seq %d, %v; want seq 1", got.Seq, err)
	}
	if v := b.ServerVersion(); v == "" || v == "0.0" {
		t.Errorf("ServerVersion() = %q", v)
	}
}

func TestOpenCreatesDatabase(t *testing.T) {
	dsn := chtest.DSN(t)
	// A database name that does not exist yet on the server.
	missing, err := chtest.WithDatabase(dsn, strings.TrimPrefix(mustURL(t, dsn).Path, "/")+"_new")
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, missing)
	t.Cleanup(func() { dropDatabase(t, missing) })
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func TestOpenRejectsBadDatabaseName(t *testing.T) {
	for _, dsn := range []string{"clickhouse://127.0.0.1:1/", "clickhouse://127.0.0.1:1/a-b", "clickhouse://127.0.0.1:1/a%60b"} {
		if s, err := chstore.Open(t.Context(), dsn); err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil error; want an error", dsn)
		} else if errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("Open(%q) = %v; want a configuration error, not ErrUnavailable", dsn, err)
		}
	}
}

// TestUnavailable cuts the connection to ClickHouse and checks that every
// method reports eventstore.ErrUnavailable, then that the store recovers.
func TestUnavailable(t *testing.T) {
	dsn := chtest.DSN(t)
	proxy := chtest.NewProxy(t, mustURL(t, dsn).Host)
	pdsn := proxy.DSN(dsn)
	s := open(t, pdsn)
	ctx := t.Context()
	if err := s.Insert(ctx, []event.Event{testEvent(1), testEvent(2)}); err != nil {
		t.Fatalf("Insert = %v", err)
	}

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", s.Ping},
		{"Insert", func(ctx context.Context) error { return s.Insert(ctx, []event.Event{testEvent(3)}) }},
		{"Events", func(ctx context.Context) error {
			_, err := s.Events(ctx, eventstore.Filter{Limit: 10})
			return err
		}},
		{"Events by session", func(ctx context.Context) error {
			_, err := s.Events(ctx, eventstore.Filter{SessionID: "s", Limit: 10})
			return err
		}},
		{"Event", func(ctx context.Context) error {
			_, err := s.Event(ctx, "id-1")
			return err
		}},
		{"Stats", func(ctx context.Context) error {
			_, err := s.Stats(ctx, eventstore.StatsFilter{From: time.Unix(0, 0), To: time.Now()})
			return err
		}},
	}
	proxy.Cut()
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		start := time.Now()
		err := c.call(ctx)
		cancel()
		t.Logf("%s while down: %v", c.name, err)
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("%s while ClickHouse is down = %v; want ErrUnavailable", c.name, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%s took %v to fail", c.name, d)
		}
	}
	if s2, err := chstore.Open(ctx, pdsn); !errors.Is(err, eventstore.ErrUnavailable) {
		if err == nil {
			s2.Close()
		}
		t.Errorf("Open while ClickHouse is down = %v; want ErrUnavailable", err)
	}

	proxy.Restore()
	for _, c := range calls {
		if err := c.call(ctx); err != nil {
			t.Errorf("%s after ClickHouse is back = %v", c.name, err)
		}
	}

	// A connection cut in the middle of work (pooled connections die).
	proxy.Cut()
	proxy.Restore()
	var errs int
	for _, c := range calls {
		if err := c.call(ctx); err != nil {
			errs++
			if !errors.Is(err, eventstore.ErrUnavailable) {
				t.Errorf("%s on a connection cut earlier = %v; want nil or ErrUnavailable", c.name, err)
			}
		}
	}
	t.Logf("%d of %d calls failed after a cut and restore", errs, len(calls))
}

func testEvent(seq uint64) event.Event {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	return event.Event{
		Seq: seq, ID: fmt.Sprintf("id-%d", seq), Subject: "events.A.B", Tag: "A.B", Category: "A", Code: "B",
		Message: "m", Timestamp: ts, ReceivedAt: ts, SessionID: "s", Severity: event.Info,
	}
}

func mustURL(t testing.TB, dsn string) *url.URL {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func dropDatabase(t testing.TB, dsn string) {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := opts.Auth.Database
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
		t.Errorf("drop database %s: %v", name, err)
	}
}

// BenchmarkInsert inserts batches of 10,000 events and reports events/s.
func BenchmarkInsert(b *testing.B) {
	storetest.BenchmarkInsert(b, open(b, chtest.DSN(b)), 1)
}

// BenchmarkQueries measures typical queries over EVENTSYNC_BENCH_EVENTS
// stored events (default 200,000).
func BenchmarkQueries(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("EVENTSYNC_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	storetest.BenchmarkQueries(b, open(b, chtest.DSN(b)), n)
}
