package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
	"github.com/eventsync/eventsync/pkg/stream"
)

// db is a store backend as these tests use it.
type db interface {
	writer
	Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error)
	Attempts(ctx context.Context, f delivery.Filter) ([]delivery.Attempt, error)
}

// backends are the real backends: the embedded store, and ClickHouse
// (skipped locally without a server, a failure under CI). locate makes a
// fresh store for the test and returns its location (a file path or a
// ClickHouse DSN), which openAt opens, also in another process.
var backends = []struct {
	name   string
	locate func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "events.db") }},
	{"clickhouse", func(t *testing.T) string { return chtest.DSN(t) }},
}

// openAt opens the store at loc, from backends' locate.
func openAt(ctx context.Context, loc string) (interface {
	db
	Close() error
}, error) {
	if strings.HasPrefix(loc, "clickhouse://") {
		return chstore.Open(ctx, loc)
	}
	return sqlitestore.Open(ctx, loc)
}

// open opens the store at loc and closes it when the test ends.
func open(t *testing.T, loc string) db {
	t.Helper()
	s, err := openAt(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openClickHouse(t *testing.T, dsn string) *chstore.Store {
	t.Helper()
	s, err := chstore.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func forEachBackend(t *testing.T, f func(t *testing.T, d db)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, open(t, b.locate(t))) })
	}
}

type env struct {
	ns *natstest.Server
	nc *nats.Conn
	js jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ns := natstest.Start(t)
	nc := ns.Connect(t)
	js, err := stream.JetStream(nc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	return &env{ns: ns, nc: nc, js: js}
}

// publish publishes n events the way ingest does, with ids first..first+n-1.
func (e *env) publish(t *testing.T, first, n int) {
	t.Helper()
	if err := e.publishErr(first, n); err != nil {
		t.Fatal(err)
	}
}

// publishErr is publish for goroutines other than the test's.
func (e *env) publishErr(first, n int) error {
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := first; i < first+n; i++ {
		ev := event.Event{
			ID: fmt.Sprintf("ev-%d", i), Subject: "events.TEST.STORE", Tag: "TEST.STORE", Category: "TEST", Code: "STORE",
			Message: "m", Timestamp: time.Now().UTC().Truncate(time.Microsecond), Severity: event.Info,
			SessionID: fmt.Sprintf("s%d", i%7),
		}
		ev.ReceivedAt = ev.Timestamp
		b, err := event.Encode(&ev)
		if err != nil {
			return err
		}
		f, err := e.js.PublishMsgAsync(&nats.Msg{Subject: ev.Subject, Data: b}, jetstream.WithMsgID(ev.ID))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("publish ack timeout")
		}
	}
	return nil
}

// run runs a store service until the returned stop is called.
func run(t *testing.T, js jetStream, w writer, cfg Config) (stop func()) {
	t.Helper()
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 2000
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = 20 * time.Millisecond
	}
	svc, err := New(cfg, js, w, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// all reads every stored event in seq order.
func all(t *testing.T, d db) []event.Event {
	t.Helper()
	var out []event.Event
	var after uint64
	for {
		evs, err := d.Events(t.Context(), eventstore.Filter{After: after, Through: 1 << 40, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if len(evs) < 10000 {
			return out
		}
		after = evs[len(evs)-1].Seq
	}
}

// waitStored waits until n events are stored, then checks that seqs 1..n are
// each there exactly once.
func waitStored(t *testing.T, d db, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var evs []event.Event
	for {
		evs = all(t, d)
		if len(evs) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(evs) != n {
		t.Fatalf("stored %d events; want %d", len(evs), n)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("stored[%d].seq = %d; want %d (missing or doubled events)", i, e.Seq, i+1)
		}
		if want := fmt.Sprintf("ev-%d", i); e.ID != want {
			t.Fatalf("stored[%d].id = %q; want %q", i, e.ID, want)
		}
	}
}

func TestStoresEveryEventExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		run(t, e.js, d, Config{BatchSize: 5000})
		e.publish(t, 0, 12000)
		waitStored(t, d, 12000)
	})
}

// lossyWriter inserts, then reports failure for the first failures calls:
// the insert is durable but the store believes it failed and retries, as
// after a crash between insert and ack.
type lossyWriter struct {
	writer
	failures atomic.Int32
}

func (w *lossyWriter) Insert(ctx context.Context, events []event.Event) error {
	if err := w.writer.Insert(ctx, events); err != nil {
		return err
	}
	if w.failures.Add(-1) >= 0 {
		return errors.New("connection reset after insert")
	}
	return nil
}

func TestReinsertedBatchesAreNotDoubled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		w := &lossyWriter{writer: d}
		w.failures.Store(3)
		run(t, e.js, w, Config{BatchSize: 500})
		e.publish(t, 0, 3000)
		waitStored(t, d, 3000)
	})
}

// A store that stops mid-stream (cleanly, or by losing its connection with
// batches in flight) and a new one that takes over store every event once.
func TestStoreRestartMidStream(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, d db) {
				e := newEnv(t)
				const total = 20000
				published := make(chan struct{})
				go func() {
					defer close(published)
					for i := 0; i < total; i += 1000 {
						e.publish(t, i, 1000)
					}
				}()

				// The first store has its own connection, so that a crash
				// loses its unacknowledged batches and their acks.
				nc := e.ns.Connect(t)
				js, err := jetstream.New(nc)
				if err != nil {
					t.Fatal(err)
				}
				cfg := Config{BatchSize: 1000, InsertTimeout: time.Second, AckWait: 2 * time.Second}
				stop := run(t, js, d, cfg)
				deadline := time.Now().Add(30 * time.Second)
				for len(all(t, d)) < 3000 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if crash {
					nc.Close()
				}
				stop()

				run(t, e.js, d, cfg)
				<-published
				waitStored(t, d, total)
			})
		})
	}
}

func TestClickHouseOutageHoldsTheBacklog(t *testing.T) {
	dsn := chtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := chtest.NewProxy(t, u.Host)
	direct := openClickHouse(t, dsn)
	viaProxy := openClickHouse(t, proxy.DSN(dsn))

	e := newEnv(t)
	run(t, e.js, viaProxy, Config{BatchSize: 1000, InsertTimeout: time.Second, AckWait: 3 * time.Second})
	e.publish(t, 0, 1000)
	waitStored(t, direct, 1000)

	proxy.Cut()
	e.publish(t, 1000, 4000)
	time.Sleep(2 * time.Second)
	if n := len(all(t, direct)); n != 1000 {
		t.Fatalf("stored %d events while ClickHouse was unreachable; want 1000", n)
	}
	cons, err := e.js.Consumer(t.Context(), stream.Events, stream.StoreConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 1000 {
		t.Errorf("ack floor during the outage = %d; want 1000 (nothing acknowledged that is not stored)", info.AckFloor.Stream)
	}

	proxy.Restore()
	waitStored(t, direct, 5000)
}

func TestUndecodableMessagesAreDeadLettered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		if _, err := e.js.Publish(t.Context(), "events.BAD.JSON", []byte("not json")); err != nil {
			t.Fatal(err)
		}
		// Trusted producers may publish straight to events.>: the subject
		// names the tag and missing stamps are filled in.
		raw := &nats.Msg{Subject: "events.RAW.DIRECT", Data: []byte(`{"message":"direct"}`), Header: nats.Header{}}
		raw.Header.Set(jetstream.MsgIDHeader, "direct-1")
		if _, err := e.js.PublishMsg(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
		run(t, e.js, d, Config{})

		dlq, err := e.js.Stream(t.Context(), stream.DeadLetters)
		if err != nil {
			t.Fatal(err)
		}
		var m *jetstream.RawStreamMsg
		deadline := time.Now().Add(10 * time.Second)
		for m == nil {
			m, err = dlq.GetLastMsgForSubject(t.Context(), stream.StoreDeadLetterSubject)
			if err != nil && time.Now().After(deadline) {
				t.Fatalf("no dead letter: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if string(m.Data) != "not json" || m.Header.Get(stream.HeaderStreamSeq) != "1" ||
			m.Header.Get(stream.HeaderSubject) != "events.BAD.JSON" || m.Header.Get(stream.HeaderReason) == "" {
			t.Errorf("dead letter = %q %v", m.Data, m.Header)
		}

		var got []event.Event
		for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
			got = all(t, d)
			time.Sleep(20 * time.Millisecond)
		}
		if len(got) != 1 {
			t.Fatalf("stored %d events; want only the direct one", len(got))
		}
		g := got[0]
		if g.Seq != 2 || g.ID != "direct-1" || g.Tag != "RAW.DIRECT" || g.Category != "RAW" || g.Code != "DIRECT" ||
			g.Severity != event.Info || g.Timestamp.IsZero() || g.Message != "direct" {
			t.Errorf("direct event stored as %+v", g)
		}

		// The bad message was terminated, not left to be redelivered.
		cons, err := e.js.Consumer(t.Context(), stream.Events, stream.StoreConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != 2 || info.NumAckPending != 0 {
			t.Errorf("consumer ack floor %d, pending %d; want 2, 0", info.AckFloor.Stream, info.NumAckPending)
		}
	})
}

// The ack wait is renewed while the store holds a message, so it may be
// shorter than an insert; it must leave room for the renewals.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"defaults", Config{}, false},
		{"ack wait below the insert timeout", Config{InsertTimeout: time.Minute, AckWait: time.Second}, false},
		{"ack wait below the minimum", Config{AckWait: 500 * time.Millisecond}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			if err := c.validate(); (err != nil) != tc.wantErr {
				t.Errorf("validate(%+v) = %v; want error %v", tc.cfg, err, tc.wantErr)
			}
		})
	}
	c := Config{}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{BatchSize: DefaultBatchSize, BatchWait: DefaultBatchWait, InsertTimeout: DefaultInsertTimeout,
		AckWait: 10 * time.Second, ShutdownTimeout: 20 * time.Second}
	if c != want {
		t.Errorf("validate(Config{}) set %+v; want %+v", c, want)
	}
}
