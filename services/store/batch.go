package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/stream"
)

// batcher runs one durable consumer: it decodes messages into records of
// type T, inserts them in batches and acknowledges each message only after
// the insert holding it succeeded. Events and delivery attempts each have
// one.
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

// run consumes until ctx is done. On the way out it stops fetching, writes
// and acknowledges the batch in hand, and returns nil.
func (b *batcher[T]) run(ctx context.Context) error {
	name := b.consumer.Durable
	cons, err := b.createConsumer(ctx)
	if err != nil {
		return nil // stopped before it started
	}
	msgs := make(chan jetstream.Msg, b.cfg.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m },
		jetstream.PullMaxMessages(b.cfg.BatchSize),
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			b.log.Debug("consume", "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("consume %s: %w", name, err)
	}

	batch := make([]jetstream.Msg, 0, b.cfg.BatchSize)
	timer := time.NewTimer(b.cfg.BatchWait)
	timer.Stop()
	for {
		select {
		case m := <-msgs:
			if len(batch) == 0 {
				timer.Reset(b.cfg.BatchWait)
			}
			batch = append(batch, m)
			if len(batch) < b.cfg.BatchSize {
				continue
			}
		case <-timer.C:
		case <-ctx.Done():
			// Stop fetching, then write what has arrived. The handler may
			// still be blocked on a send, so keep receiving until the
			// consumer reports it has stopped.
			cc.Drain()
			drained := time.After(b.cfg.BatchWait + 5*time.Second)
			for done := false; !done; {
				select {
				case m := <-msgs:
					batch = append(batch, m)
				case <-cc.Closed():
					done = true
				case <-drained:
					cc.Stop() // what is still buffered is redelivered later
					done = true
				}
			}
			for len(msgs) > 0 {
				batch = append(batch, <-msgs)
			}
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.InsertTimeout)
			defer cancel()
			b.flush(flushCtx, batch)
			return nil
		}
		timer.Stop()
		b.flush(ctx, batch)
		batch = batch[:0]
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
// until ctx is done, keeping the messages' ack deadlines alive; whatever is
// not acknowledged then is redelivered later.
func (b *batcher[T]) flush(ctx context.Context, batch []jetstream.Msg) {
	if len(batch) == 0 {
		return
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
		return
	}
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, b.cfg.InsertTimeout)
		err := b.insert(ictx, records)
		cancel()
		if err == nil {
			break
		}
		d := backoff(attempt)
		b.log.Warn("insert failed; retrying", "err", err, "attempt", attempt, "messages", len(records), "retry_in", d)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		for _, m := range acks {
			_ = m.InProgress() // resets AckWait so JetStream does not redeliver while we retry
		}
	}
	for _, m := range acks {
		if err := m.Ack(); err != nil {
			// The insert is durable; an ack lost here means a redelivery,
			// which the idempotent insert absorbs.
			b.log.Warn("ack", "err", err)
		}
	}
}

// park puts an undecodable message on the DLQ stream with the reason, then
// terminates it so it is never redelivered. If the DLQ publish fails the
// message is left unacknowledged and comes back later.
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
