package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/stream"
)

// batcher runs one durable consumer: it decodes messages into records of
// type T, inserts them in batches and acknowledges each message only after
// the insert holding it succeeded. Events and delivery attempts each have
// one.
//
// What happens to a message the store holds (default ack wait 10 s,
// shutdown timeout 20 s):
//
//	situation                       what JetStream sees                          redelivered
//	queued, or its insert runs      InProgress once untouched for AckWait/3      never while held
//	  or is retried                   (3.3 s; checked every AckWait/6)
//	written                         Ack (the batch's last one confirmed)         never
//	undecodable                     published to the DLQ, then Term              never
//	graceful stop                   no new pull requests (the open one ends      at once (Nak), for
//	                                  within 1 s); what is held is written and     what was not written
//	                                  acked within the shutdown timeout less       in time
//	                                  1/10 (at most 1 s), the rest Nak'ed
//	store killed, or acks lost      nothing more                                 AckWait after the last
//	  (NATS restart)                                                               InProgress: ≤ 10 s
type batcher[T any] struct {
	cfg        Config
	js         jetStream
	log        *slog.Logger
	stream     string                   // the stream consumed
	consumer   jetstream.ConsumerConfig // a durable consumer on it
	deadLetter string                   // DLQ subject of undecodable messages
	decode     func(jetstream.Msg) (T, error)
	insert     func(context.Context, []T) error // idempotent on the stream seq
}

// fetchWait is how long one pull request stays open on the server. It
// bounds how long the intake takes to stop.
const fetchWait = time.Second

// ackConfirmTimeout bounds the wait for the server to confirm a batch's
// acks.
const ackConfirmTimeout = 5 * time.Second

// run consumes until ctx is done. On the way out it stops pulling at once,
// writes and acknowledges what it holds within the shutdown budget, Naks
// what is still unwritten then (JetStream redelivers it at once) and
// returns nil.
func (b *batcher[T]) run(ctx context.Context) error {
	cons, err := b.createConsumer(ctx)
	if err != nil {
		return nil // stopped before it started
	}
	in := newInbox()
	// Writes and acks run on wctx, which ends only the stop budget after
	// ctx, so that a stop never cancels the insert in hand.
	wctx, cancel := afterGrace(ctx, b.cfg.stopBudget())
	defer cancel()
	intake := make(chan struct{})
	go func() {
		defer close(intake)
		b.fetch(ctx, cons, in)
	}()
	kctx, stopKeepAlive := context.WithCancel(context.Background())
	keptAlive := make(chan struct{})
	go func() {
		defer close(keptAlive)
		b.keepAlive(kctx, in)
	}()

	written := true
	for written && ctx.Err() == nil {
		written = b.write(wctx, in, b.next(ctx, in))
	}
	if written {
		// The last pull request ends within fetchWait; what it brings is
		// written too.
		select {
		case <-intake:
		case <-wctx.Done():
		}
		for written && in.len() > 0 {
			written = b.write(wctx, in, in.take(b.cfg.BatchSize))
		}
	}
	b.handBack(in) // from here on, what the last request brings is Nak'ed
	<-intake
	stopKeepAlive()
	<-keptAlive
	return nil
}

// fetch pulls messages into in until ctx is done, one pull request at a
// time. Each request ends on the server's side (full, or after fetchWait),
// never by unsubscribing: the server may go on sending to a subscription
// that is being removed, and what it sent then would wait out the ack
// wait. After ctx is done the request in flight runs to its end.
func (b *batcher[T]) fetch(ctx context.Context, cons jetstream.Consumer, in *inbox) {
	for failures := 0; ctx.Err() == nil; {
		batch, err := cons.Fetch(b.cfg.BatchSize, jetstream.FetchMaxWait(fetchWait))
		if err == nil {
			for m := range batch.Messages() {
				in.push(m)
			}
			err = batch.Error()
		}
		if err == nil {
			failures = 0
			continue
		}
		failures++
		d := backoff(failures)
		b.log.Debug("fetch failed; retrying", "err", err, "attempt", failures, "retry_in", d)
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// next waits for a batch: BatchSize messages, or those that arrived within
// BatchWait of the first. When ctx is done it returns at once what it has.
func (b *batcher[T]) next(ctx context.Context, in *inbox) []jetstream.Msg {
	for in.len() == 0 {
		select {
		case <-in.ready:
		case <-ctx.Done():
			return nil
		}
	}
	timer := time.NewTimer(b.cfg.BatchWait)
	defer timer.Stop()
	for in.len() < b.cfg.BatchSize {
		select {
		case <-in.ready:
		case <-timer.C:
			return in.take(b.cfg.BatchSize)
		case <-ctx.Done():
			return in.take(b.cfg.BatchSize)
		}
	}
	return in.take(b.cfg.BatchSize)
}

// write flushes batch and, once it is settled, lets go of it. It reports
// false when ctx ended first: the batch is still held, to be handed back.
func (b *batcher[T]) write(ctx context.Context, in *inbox, batch []jetstream.Msg) bool {
	if !b.flush(ctx, batch) {
		return false
	}
	in.release()
	return true
}

// handBack Naks every message still held, and any the consumer delivers
// later, so that JetStream redelivers them at once instead of after the
// ack wait.
func (b *batcher[T]) handBack(in *inbox) {
	msgs := in.close()
	if len(msgs) == 0 {
		return
	}
	var failed int
	var last error
	for _, m := range msgs {
		if err := m.Nak(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			failed++
			last = err
		}
	}
	b.log.Warn("handing back unwritten messages", "messages", len(msgs), "shutdown_timeout", b.cfg.ShutdownTimeout)
	if failed > 0 {
		b.log.Warn("nak failed", "err", last, "messages", failed)
	}
}

// keepAlive marks the messages the store holds as in progress, so that
// JetStream does not redeliver them while they wait for a batch or while
// their insert runs or is retried: a message untouched for AckWait/3 gets
// an InProgress, checked every AckWait/6, so none goes untouched for more
// than half the ack wait. In the normal flow messages are acked sooner and
// none is sent.
func (b *batcher[T]) keepAlive(ctx context.Context, in *inbox) {
	every := b.cfg.AckWait / 3
	tick := time.NewTicker(every / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			var failed int
			var last error
			for _, m := range in.stale(now, every) {
				if err := m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
					failed++
					last = err
				}
			}
			if failed > 0 {
				b.log.Warn("in progress failed", "err", last, "messages", failed)
			}
		}
	}
}

// createConsumer creates or updates the durable consumer, retrying with
// capped backoff until ctx is done: in a JetStream cluster the call fails
// while the meta group elects a leader or lacks a quorum (and before
// another service created the stream), and the store waits that out
// instead of exiting. It returns an error only once ctx is done.
func (b *batcher[T]) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	return WaitFor(ctx, b.log, "consumer "+b.consumer.Durable, func(ctx context.Context) (jetstream.Consumer, error) {
		return b.js.CreateOrUpdateConsumer(ctx, b.stream, b.consumer)
	})
}

// flush writes a batch and acknowledges it. Undecodable messages go to the
// dead-letter stream. If the store is down it retries with capped backoff
// (see backoff) until ctx is done, while keepAlive holds off redelivery.
// It reports false if ctx ended before the insert succeeded: nothing of
// the batch but its dead letters is settled then.
func (b *batcher[T]) flush(ctx context.Context, batch []jetstream.Msg) bool {
	if len(batch) == 0 {
		return true
	}
	records := make([]T, 0, len(batch))
	acks := make([]jetstream.Msg, 0, len(batch))
	for _, m := range batch {
		r, err := b.decode(m)
		if err != nil {
			b.park(ctx, m, err)
			continue
		}
		records = append(records, r)
		acks = append(acks, m)
	}
	if len(records) == 0 {
		return true
	}
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, b.cfg.InsertTimeout)
		err := b.insert(ictx, records)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			b.log.Warn("insert cut off by the shutdown timeout", "err", err, "attempt", attempt, "messages", len(records))
			return false
		}
		d := backoff(attempt)
		b.log.Warn("insert failed; retrying", "err", err, "attempt", attempt, "messages", len(records), "retry_in", d)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
		}
	}
	b.ack(ctx, acks)
	return true
}

// ack acknowledges a written batch. The server confirms the last ack, and
// processes one connection's acks in order: once ack returns, the
// consumer's ack floor (the query service's since cursor) covers the
// batch, also on a stop, before the connection drains. An ack lost anyway
// means a redelivery, which the idempotent insert absorbs.
func (b *batcher[T]) ack(ctx context.Context, acks []jetstream.Msg) {
	var failed int
	var last error
	for _, m := range acks[:len(acks)-1] {
		if err := m.Ack(); err != nil {
			failed++
			last = err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, ackConfirmTimeout)
	defer cancel()
	if err := acks[len(acks)-1].DoubleAck(cctx); err != nil {
		failed++
		last = err
	}
	if failed > 0 {
		b.log.Warn("ack failed", "err", last, "messages", failed)
	}
}

// park puts an undecodable message on the DLQ stream with the reason, then
// terminates it so it is never redelivered. If the DLQ publish fails the
// message is left unacknowledged and comes back after the ack wait.
func (b *batcher[T]) park(ctx context.Context, m jetstream.Msg, reason error) {
	var seq uint64
	if meta, err := m.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	dl := nats.NewMsg(b.deadLetter)
	dl.Data = m.Data()
	dl.Header.Set(stream.HeaderReason, reason.Error())
	dl.Header.Set(stream.HeaderSubject, m.Subject())
	dl.Header.Set(stream.HeaderStreamSeq, fmt.Sprint(seq))
	// The id is unique per consumer and seq, so that a dead letter
	// published twice (the Term was lost) is stored once.
	if _, err := b.js.PublishMsg(ctx, dl, jetstream.WithMsgID(fmt.Sprintf("%s-%d", b.consumer.Durable, seq))); err != nil {
		b.log.Error("dead letter publish failed", "err", err, "stream_seq", seq)
		return
	}
	if err := m.TermWithReason(reason.Error()); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		b.log.Warn("term", "err", err, "stream_seq", seq)
	}
	b.log.Warn("dead-lettered undecodable message", "stream_seq", seq, "subject", m.Subject(), "err", reason)
}

// afterGrace returns a context that ends grace after ctx ends (or when
// cancel is called), and carries ctx's values.
func afterGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-gctx.Done():
		}
		cancel()
	})
	return gctx, func() {
		stop()
		cancel()
	}
}

// inbox holds the messages JetStream delivered to the store until they
// are settled: first queued for a batch, then in the batch being written.
// Pulling never waits for the writes, so that every delivered message is
// within keepAlive's reach; the consumer's MaxAckPending bounds how many
// there are.
type inbox struct {
	mu      sync.Mutex
	queue   []held
	writing []held
	closed  bool
	ready   chan struct{} // holds a value after the queue grew
}

// held is a message and when it was delivered or last marked in progress.
type held struct {
	m       jetstream.Msg
	touched time.Time
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

// push queues m; once the inbox is closed it Naks m instead.
func (in *inbox) push(m jetstream.Msg) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		_ = m.Nak()
		return
	}
	in.queue = append(in.queue, held{m: m, touched: time.Now()})
	in.mu.Unlock()
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// len is the number of queued messages.
func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.queue)
}

// take moves up to n queued messages into the batch being written and
// returns them.
func (in *inbox) take(n int) []jetstream.Msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	n = min(n, len(in.queue))
	in.writing = append(in.writing[:0], in.queue[:n]...)
	clear(in.queue[:n])
	in.queue = in.queue[n:]
	msgs := make([]jetstream.Msg, n)
	for i, h := range in.writing {
		msgs[i] = h.m
	}
	return msgs
}

// release lets go of the batch being written: it is settled.
func (in *inbox) release() {
	in.mu.Lock()
	defer in.mu.Unlock()
	clear(in.writing)
	in.writing = in.writing[:0]
}

// stale returns the held messages untouched for at least age and marks
// them touched at now.
func (in *inbox) stale(now time.Time, age time.Duration) []jetstream.Msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	var msgs []jetstream.Msg
	for _, hs := range [][]held{in.writing, in.queue} {
		for i := range hs {
			if now.Sub(hs[i].touched) >= age {
				hs[i].touched = now
				msgs = append(msgs, hs[i].m)
			}
		}
	}
	return msgs
}

// close returns every message still held and makes push Nak from now on.
func (in *inbox) close() []jetstream.Msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	msgs := make([]jetstream.Msg, 0, len(in.writing)+len(in.queue))
	for _, hs := range [][]held{in.writing, in.queue} {
		for _, h := range hs {
			msgs = append(msgs, h.m)
		}
	}
	in.writing, in.queue = nil, nil
	return msgs
}
