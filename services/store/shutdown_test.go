package store

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/stream"
)

// slowWriter is a real event store behind a delay: every event insert
// waits delay (or until its context ends) before it reaches the store.
// started receives a value when an insert begins.
type slowWriter struct {
	writer
	delay   time.Duration
	started chan struct{}
}

func newSlowWriter(w writer, delay time.Duration) *slowWriter {
	return &slowWriter{writer: w, delay: delay, started: make(chan struct{}, 1)}
}

func (w *slowWriter) Insert(ctx context.Context, events []event.Event) error {
	select {
	case w.started <- struct{}{}:
	default:
	}
	t := time.NewTimer(w.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.writer.Insert(ctx, events)
}

// waitStarted waits until an insert of w began.
func (w *slowWriter) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-w.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no insert started within 10s")
	}
}

// start runs a store service until the returned stop is called; stop
// cancels its context and returns once Run did, with how long that took.
func start(t *testing.T, js jetStream, w writer, cfg Config) (stop func() time.Duration) {
	t.Helper()
	svc, err := New(cfg, js, w, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop = func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		began := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
		return time.Since(began)
	}
	t.Cleanup(func() { stop() })
	return stop
}

// storeConsumer reads the state of the store's consumer on EVENTS.
func storeConsumer(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	info, err := consumerInfo(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func consumerInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	cons, err := js.Consumer(ctx, stream.Events, stream.StoreConsumer)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// A store stopped while it inserts a batch finishes that insert and
// acknowledges the batch before Run returns: nothing waits for the ack
// wait, and the since cursor covers the batch at once.
func TestStopFinishesTheBatchInHand(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		const n = 500
		e.publish(t, 0, n)
		w := newSlowWriter(d, 2*time.Second)
		stop := start(t, e.js, w, Config{BatchSize: 1000, BatchWait: 100 * time.Millisecond, InsertTimeout: 20 * time.Second, AckWait: 30 * time.Second})
		w.waitStarted(t)
		took := stop()

		if got := len(all(t, d)); got != n {
			t.Errorf("stored %d events when Run returned; want %d", got, n)
		}
		info := storeConsumer(t, e.js)
		if info.AckFloor.Stream != n || info.NumAckPending != 0 {
			t.Errorf("when Run returned: ack floor %d, pending %d; want %d, 0", info.AckFloor.Stream, info.NumAckPending, n)
		}
		t.Logf("stop took %s with an insert of 2s in hand", took.Round(time.Millisecond))
	})
}

// nakAdvisories is the subject of JetStream's advisories of the Naks the
// store's consumer on EVENTS receives.
const nakAdvisories = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED." + stream.Events + "." + stream.StoreConsumer

// A store whose insert outlasts the shutdown timeout Naks everything it
// holds before Run returns: JetStream redelivers it at once to the next
// store, long before the ack wait. (A Nak'ed message stays in the
// consumer's NumAckPending until it is redelivered and acknowledged; the
// Naks show in JetStream's advisories.)
func TestStopHandsBackWhatItCannotWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		const n = 500
		const ackWait = 30 * time.Second
		naks, err := e.nc.SubscribeSync(nakAdvisories)
		if err != nil {
			t.Fatal(err)
		}
		e.publish(t, 0, n)
		// Batches of 100: one is being inserted when the stop comes, the
		// others wait behind it.
		w := newSlowWriter(d, time.Minute)
		cfg := Config{BatchSize: 100, BatchWait: 100 * time.Millisecond, InsertTimeout: 20 * time.Second, AckWait: ackWait, ShutdownTimeout: time.Second}
		stop := start(t, e.js, w, cfg)
		w.waitStarted(t)
		stopped := time.Now()
		if took := stop(); took > 2*time.Second {
			t.Errorf("stop took %s; want it within the shutdown timeout of 1s", took)
		}

		info := storeConsumer(t, e.js)
		if info.NumAckPending == 0 || info.AckFloor.Stream != 0 {
			t.Fatalf("after the stop: pending %d, ack floor %d; want some pending, none acked", info.NumAckPending, info.AckFloor.Stream)
		}
		nakked := map[uint64]bool{}
		for len(nakked) < info.NumAckPending {
			m, err := naks.NextMsg(2 * time.Second)
			if err != nil {
				t.Fatalf("%d of the %d messages the store held were Nak'ed: %v", len(nakked), info.NumAckPending, err)
			}
			var adv struct {
				StreamSeq uint64 `json:"stream_seq"`
			}
			if err := json.Unmarshal(m.Data, &adv); err != nil {
				t.Fatal(err)
			}
			nakked[adv.StreamSeq] = true
		}

		// A new instance on the same durable consumer gets them at once.
		start(t, e.js, d, Config{BatchSize: 100, BatchWait: 20 * time.Millisecond, InsertTimeout: 20 * time.Second, AckWait: ackWait})
		for deadline := time.Now().Add(10 * time.Second); ; {
			info = storeConsumer(t, e.js)
			if info.AckFloor.Stream == n && info.NumAckPending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("10s after the stop: ack floor %d, pending %d; want %d, 0 (redelivered at once, not after the ack wait of %s)",
					info.AckFloor.Stream, info.NumAckPending, n, ackWait)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%d messages Nak'ed; all %d events stored and acked %s after the stop", len(nakked), n, time.Since(stopped).Round(time.Millisecond))
		waitStored(t, d, n)
	})
}

// firstSlow is a real event store whose first event insert takes delay
// longer; it counts how many times each event seq is inserted.
type firstSlow struct {
	writer
	delay time.Duration

	mu       sync.Mutex
	calls    int
	inserted map[uint64]int
}

func (w *firstSlow) Insert(ctx context.Context, events []event.Event) error {
	w.mu.Lock()
	w.calls++
	first := w.calls == 1
	w.mu.Unlock()
	if first {
		select {
		case <-time.After(w.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := w.writer.Insert(ctx, events); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range events {
		w.inserted[e.Seq]++
	}
	return nil
}

// An insert that takes several ack waits is not redelivered meanwhile,
// and neither are the messages queued behind it: the store marks what it
// holds in progress.
func TestSlowInsertIsNotRedelivered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		const n = 500
		e.publish(t, 0, n)
		w := &firstSlow{writer: d, delay: 3500 * time.Millisecond, inserted: map[uint64]int{}}
		start(t, e.js, w, Config{BatchSize: 100, BatchWait: 20 * time.Millisecond, AckWait: time.Second, InsertTimeout: 10 * time.Second})
		waitStored(t, d, n)
		for deadline := time.Now().Add(10 * time.Second); storeConsumer(t, e.js).AckFloor.Stream != n; {
			if time.Now().After(deadline) {
				t.Fatalf("ack floor %d; want %d", storeConsumer(t, e.js).AckFloor.Stream, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// A redelivery would come an ack wait after the last delivery.
		time.Sleep(1500 * time.Millisecond)

		info := storeConsumer(t, e.js)
		if info.Delivered.Consumer != n || info.NumRedelivered != 0 {
			t.Errorf("consumer made %d deliveries (%d redelivered) of %d messages; want each delivered once",
				info.Delivered.Consumer, info.NumRedelivered, n)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for seq := uint64(1); seq <= n; seq++ {
			if c := w.inserted[seq]; c != 1 {
				t.Errorf("event seq %d inserted %d times; want once", seq, c)
			}
		}
	})
}
