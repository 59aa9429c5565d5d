package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/stream"
)

// attemptAt is the attempt with index i as the notifier would publish it
// (Seq 0): subscriptions sub-0..sub-2, three attempts per event.
func attemptAt(i int) delivery.Attempt {
	a := delivery.Attempt{
		SubscriptionID: fmt.Sprintf("sub-%d", i%3),
		EventID:        fmt.Sprintf("ev-%d", i/3),
		EventSeq:       uint64(i/3 + 1),
		Tag:            "TEST.STORE",
		Attempt:        i%2 + 1,
		URL:            "https://hooks.example.com/in",
		Outcome:        delivery.Delivered,
		StatusCode:     200,
		LatencyMS:      12.5,
		Time:           time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
	}
	if i%4 == 1 {
		a.Outcome, a.StatusCode, a.Error = delivery.Retrying, 503, "status 503"
	}
	a.DeliveryID = "msg_" + a.EventID + "_" + a.SubscriptionID
	return a
}

// publishAttempts publishes attempts first..first+n-1 to DELIVERIES the way
// the notifier does, with a Nats-Msg-Id.
func (e *env) publishAttempts(t *testing.T, first, n int) {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := first; i < first+n; i++ {
		a := attemptAt(i)
		b, err := delivery.Encode(&a)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: stream.DeliverySubject(a.SubscriptionID), Data: b}
		f, err := e.js.PublishMsgAsync(m, jetstream.WithMsgID(fmt.Sprintf("attempt-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("publish ack timeout")
		}
	}
}

// allAttempts reads every stored attempt in seq order.
func allAttempts(t *testing.T, d db) []delivery.Attempt {
	t.Helper()
	var out []delivery.Attempt
	var after uint64
	for {
		page, err := d.Attempts(t.Context(), delivery.Filter{After: after, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 10000 {
			return out
		}
		after = page[len(page)-1].Seq
	}
}

// waitAttempts waits until n attempts are stored, then checks that seqs
// 1..n are each there exactly once, as published.
func waitAttempts(t *testing.T, d db, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got []delivery.Attempt
	for {
		got = allAttempts(t, d)
		if len(got) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(got) != n {
		t.Fatalf("stored %d attempts; want %d", len(got), n)
	}
	for i, a := range got {
		want := attemptAt(i)
		want.Seq = uint64(i + 1)
		if diff := cmp.Diff(want, a); diff != "" {
			t.Fatalf("stored[%d] mismatch (missing or doubled attempts) (-want +got):\n%s", i, diff)
		}
	}
}

// waitAckFloor waits until the ack floor of the store-deliveries consumer,
// as the query service reads it, reaches want.
func waitAckFloor(t *testing.T, js jetstream.JetStream, want uint64) {
	t.Helper()
	wm := stream.NewConsumerWatermark(js, stream.Deliveries, stream.StoreDeliveriesConsumer)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := wm.Committed(t.Context())
		if err != nil {
			t.Fatalf("Committed = %v", err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack floor of %s = %d; want %d", stream.StoreDeliveriesConsumer, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStoresEveryAttemptExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		run(t, e.js, d, Config{BatchSize: 1000})
		// Events and attempts at the same time: the service runs both
		// consumers.
		e.publish(t, 0, 3000)
		e.publishAttempts(t, 0, 5000)
		waitAttempts(t, d, 5000)
		waitStored(t, d, 3000)
		waitAckFloor(t, e.js, 5000)
	})
}

// lossyAttempts inserts attempts, then reports failure for the first
// failures calls, as after a crash between insert and ack.
type lossyAttempts struct {
	writer
	failures atomic.Int32
}

func (w *lossyAttempts) InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error {
	if err := w.writer.InsertAttempts(ctx, attempts); err != nil {
		return err
	}
	if w.failures.Add(-1) >= 0 {
		return errors.New("connection reset after insert")
	}
	return nil
}

func TestReinsertedAttemptBatchesAreNotDoubled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		w := &lossyAttempts{writer: d}
		w.failures.Store(3)
		run(t, e.js, w, Config{BatchSize: 500})
		e.publishAttempts(t, 0, 3000)
		waitAttempts(t, d, 3000)
		waitAckFloor(t, e.js, 3000)
	})
}

// A store that loses its connection with attempt batches in flight leaves
// them unacknowledged; JetStream redelivers them to the next store, which
// stores every attempt once.
func TestRedeliveredAttemptsAreNotDoubled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		const total = 10000
		published := make(chan struct{})
		go func() {
			defer close(published)
			for i := 0; i < total; i += 1000 {
				e.publishAttempts(t, i, 1000)
			}
		}()

		nc := e.ns.Connect(t)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{BatchSize: 500, InsertTimeout: time.Second, AckWait: 2 * time.Second}
		stop := run(t, js, d, cfg)
		deadline := time.Now().Add(30 * time.Second)
		for len(allAttempts(t, d)) < 2000 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		nc.Close() // acks in flight are lost: those attempts are redelivered
		stop()

		run(t, e.js, d, cfg)
		<-published
		waitAttempts(t, d, total)
		waitAckFloor(t, e.js, total)
	})
}

func TestUndecodableAttemptsAreDeadLettered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d db) {
		e := newEnv(t)
		ctx := t.Context()
		if _, err := e.js.Publish(ctx, stream.DeliverySubject("sub-1"), []byte("not json")); err != nil {
			t.Fatal(err)
		}
		// The subject names the subscription, whatever the payload says;
		// a missing time is the time JetStream stored the message.
		if _, err := e.js.Publish(ctx, stream.DeliverySubject("sub-2"), []byte(`{"subscription_id":"sub-9","event_id":"ev-1","outcome":"delivered","attempt":1,"seq":77}`)); err != nil {
			t.Fatal(err)
		}
		run(t, e.js, d, Config{})

		dlq, err := e.js.Stream(ctx, stream.DeadLetters)
		if err != nil {
			t.Fatal(err)
		}
		var m *jetstream.RawStreamMsg
		deadline := time.Now().Add(10 * time.Second)
		for m == nil {
			m, err = dlq.GetLastMsgForSubject(ctx, DeliveriesDeadLetterSubject)
			if err != nil && time.Now().After(deadline) {
				t.Fatalf("no dead letter on %s: %v", DeliveriesDeadLetterSubject, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if string(m.Data) != "not json" || m.Header.Get(stream.HeaderStreamSeq) != "1" ||
			m.Header.Get(stream.HeaderSubject) != "deliveries.sub-1" || m.Header.Get(stream.HeaderReason) == "" {
			t.Errorf("dead letter = %q %v", m.Data, m.Header)
		}

		waitAckFloor(t, e.js, 2)
		got := allAttempts(t, d)
		if len(got) != 1 {
			t.Fatalf("stored %d attempts; want only the valid one", len(got))
		}
		g := got[0]
		if g.Seq != 2 || g.SubscriptionID != "sub-2" || g.EventID != "ev-1" || g.Outcome != delivery.Delivered ||
			g.Time.IsZero() || g.Time.Location() != time.UTC {
			t.Errorf("attempt stored as %+v", g)
		}
		cons, err := e.js.Consumer(ctx, stream.Deliveries, stream.StoreDeliveriesConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending != 0 {
			t.Errorf("consumer pending %d; want 0 (the bad message terminated)", info.NumAckPending)
		}
	})
}

func TestNewRequiresWriterAndJetStream(t *testing.T) {
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Error("New(Config{}, nil, nil) succeeded; want an error")
	}
}
