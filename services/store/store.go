// Package store is the EventSync store service: a durable JetStream consumer
// that writes events to the event store in batches and acknowledges each
// message only after the insert holding it succeeded.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Defaults of Config.
const (
	DefaultBatchSize     = 10000
	DefaultBatchWait     = 200 * time.Millisecond
	DefaultInsertTimeout = 30 * time.Second
	DefaultAckWait       = 60 * time.Second
)

// Config tunes the store service.
type Config struct {
	BatchSize     int           // events per insert; default 10,000
	BatchWait     time.Duration // longest wait to fill a batch; default 200 ms
	InsertTimeout time.Duration // one insert attempt; default 30 s
	AckWait       time.Duration // JetStream redelivers after this; must exceed InsertTimeout
}

// Flags defines the store settings on fs.
func (c *Config) Flags(fs *conf.Set) {
	fs.Int(&c.BatchSize, "batch-size", "STORE_BATCH_SIZE", DefaultBatchSize, "most events in one insert")
	fs.Duration(&c.BatchWait, "batch-wait", "STORE_BATCH_WAIT", DefaultBatchWait, "longest wait to fill a batch before inserting it")
	fs.Duration(&c.InsertTimeout, "insert-timeout", "STORE_INSERT_TIMEOUT", DefaultInsertTimeout, "timeout of one insert attempt")
	fs.Duration(&c.AckWait, "ack-wait", "STORE_ACK_WAIT", DefaultAckWait, "JetStream redelivers unacknowledged events after this (must exceed the insert timeout)")
}

func (c *Config) validate() error {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchWait <= 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = DefaultInsertTimeout
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.AckWait <= c.InsertTimeout {
		return fmt.Errorf("ack wait %s must exceed the insert timeout %s", c.AckWait, c.InsertTimeout)
	}
	return nil
}

// writer is the event store as the store service sees it. Insert must be
// idempotent on seq: redelivered events are inserted again.
type writer interface {
	Insert(ctx context.Context, events []event.Event) error
}

// jetStream is the part of JetStream the store service needs.
type jetStream interface {
	CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error)
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Service is the store service.
type Service struct {
	cfg Config
	js  jetStream
	w   writer
	log *slog.Logger
}

// New returns a store service that consumes from js and writes to w.
func New(cfg Config, js jetStream, w writer, log *slog.Logger) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, js: js, w: w, log: log.With("component", "store", "consumer", stream.StoreConsumer)}, nil
}

// Run consumes until ctx is done. On the way out it stops fetching, writes
// and acknowledges the batch in hand, and returns nil.
func (s *Service) Run(ctx context.Context) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream.Events, stream.StoreConsumerConfig(s.cfg.AckWait, 4*s.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", stream.StoreConsumer, err)
	}
	msgs := make(chan jetstream.Msg, s.cfg.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m },
		jetstream.PullMaxMessages(s.cfg.BatchSize),
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Debug("consume", "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("consume %s: %w", stream.StoreConsumer, err)
	}

	batch := make([]jetstream.Msg, 0, s.cfg.BatchSize)
	timer := time.NewTimer(s.cfg.BatchWait)
	timer.Stop()
	for {
		select {
		case m := <-msgs:
			if len(batch) == 0 {
				timer.Reset(s.cfg.BatchWait)
			}
			batch = append(batch, m)
			if len(batch) < s.cfg.BatchSize {
				continue
			}
		case <-timer.C:
		case <-ctx.Done():
			// Stop fetching, then write what has arrived. The handler may
			// still be blocked on a send, so keep receiving until the
			// consumer reports it has stopped.
			cc.Drain()
			drained := time.After(s.cfg.BatchWait + 5*time.Second)
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
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.InsertTimeout)
			defer cancel()
			s.flush(flushCtx, batch)
			return nil
		}
		timer.Stop()
		s.flush(ctx, batch)
		batch = batch[:0]
	}
}

// flush writes a batch and acknowledges it. Undecodable messages go to the
// dead-letter stream. If the store is down it retries with capped backoff
// until ctx is done, keeping the messages' ack deadlines alive; whatever is
// not acknowledged then is redelivered later.
func (s *Service) flush(ctx context.Context, batch []jetstream.Msg) {
	if len(batch) == 0 {
		return
	}
	events := make([]event.Event, 0, len(batch))
	acks := make([]jetstream.Msg, 0, len(batch))
	for _, m := range batch {
		e, err := stream.DecodeEvent(m)
		if err != nil {
			s.deadLetter(ctx, m, err)
			continue
		}
		events = append(events, e)
		acks = append(acks, m)
	}
	if len(events) == 0 {
		return
	}
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
		err := s.w.Insert(ictx, events)
		cancel()
		if err == nil {
			break
		}
		d := backoff(attempt)
		s.log.Warn("insert failed; retrying", "err", err, "attempt", attempt, "events", len(events), "retry_in", d)
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
			s.log.Warn("ack", "err", err)
		}
	}
}

// backoff is the wait before insert retry attempt n (1-based):
//
//	attempt  1    2    3    4     5     6+
//	wait     100ms 200ms 400ms 800ms 1.6s 5s (cap)
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	return min(d, 5*time.Second)
}

// deadLetter parks an undecodable message on the DLQ stream with the reason,
// then terminates it so it is never redelivered. If the DLQ publish fails the
// message is left unacknowledged and comes back later.
func (s *Service) deadLetter(ctx context.Context, m jetstream.Msg, reason error) {
	var seq uint64
	if meta, err := m.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	dl := nats.NewMsg(stream.StoreDeadLetterSubject)
	dl.Data = m.Data()
	dl.Header.Set(stream.HeaderReason, reason.Error())
	dl.Header.Set(stream.HeaderSubject, m.Subject())
	dl.Header.Set(stream.HeaderStreamSeq, fmt.Sprint(seq))
	if _, err := s.js.PublishMsg(ctx, dl, jetstream.WithMsgID(fmt.Sprintf("store-%d", seq))); err != nil {
		s.log.Error("dead letter publish failed", "err", err, "stream_seq", seq)
		return
	}
	if err := m.TermWithReason(reason.Error()); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("term", "err", err, "stream_seq", seq)
	}
	s.log.Warn("dead-lettered undecodable event", "stream_seq", seq, "subject", m.Subject(), "err", reason)
}

// WaitFor calls open until it succeeds or ctx is done, backing off between
// attempts: a store service started before its database waits for it.
func WaitFor[T any](ctx context.Context, log *slog.Logger, what string, open func(context.Context) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := open(ctx)
		if err == nil {
			return v, nil
		}
		d := backoff(attempt)
		log.Warn("open failed; retrying", "what", what, "err", err, "attempt", attempt, "retry_in", d)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("open %s: %w", what, err)
		case <-time.After(d):
		}
	}
}
