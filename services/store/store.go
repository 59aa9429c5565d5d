// Package store is the EventSync store service: durable JetStream consumers
// that write events (stream EVENTS) and delivery attempts (stream
// DELIVERIES) to the event store in batches and acknowledge each message
// only after the insert holding it succeeded.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Defaults of Config.
const (
	DefaultBatchSize       = 10000
	DefaultBatchWait       = 200 * time.Millisecond
	DefaultInsertTimeout   = 30 * time.Second
	DefaultAckWait         = 10 * time.Second
	DefaultShutdownTimeout = 20 * time.Second
)

// MinAckWait is the shortest ack wait: the store renews the ack deadline
// of every message it holds each third of the ack wait, and renewals need
// a margin over the network and the scheduler.
const MinAckWait = time.Second

// Config tunes the store service.
type Config struct {
	BatchSize     int           // messages per insert; default 10,000
	BatchWait     time.Duration // longest wait to fill a batch; default 200 ms
	InsertTimeout time.Duration // one insert attempt; default 30 s
	// AckWait is how long JetStream waits for a message the store holds
	// before redelivering it: what a killed store's messages wait. The
	// store renews it while a message waits or its insert runs, so it
	// need not exceed InsertTimeout; at least MinAckWait, default 10 s.
	AckWait time.Duration
	// ShutdownTimeout bounds the work in hand on a graceful stop: what is
	// not written and acknowledged by then (less a tenth, at most 1 s,
	// for the acks and Naks to leave) is Nak'ed, so that JetStream
	// redelivers it at once. Not a flag: the process's --shutdown-timeout.
	// Default 20 s.
	ShutdownTimeout time.Duration
}

// Flags defines the store settings on fs.
func (c *Config) Flags(fs *conf.Set) {
	fs.Int(&c.BatchSize, "batch-size", "STORE_BATCH_SIZE", DefaultBatchSize, "most events (or delivery attempts) in one insert")
	fs.Duration(&c.BatchWait, "batch-wait", "STORE_BATCH_WAIT", DefaultBatchWait, "longest wait to fill a batch before inserting it")
	fs.Duration(&c.InsertTimeout, "insert-timeout", "STORE_INSERT_TIMEOUT", DefaultInsertTimeout,
		"timeout of one insert attempt; a failed attempt is retried with back-off while the store keeps its events from redelivery (may exceed the ack wait)")
	fs.Duration(&c.AckWait, "ack-wait", "STORE_ACK_WAIT", DefaultAckWait,
		"JetStream redelivers events a store holds unacknowledged after this; a running store renews it every third of it, so it bounds how long a crashed store holds up the since cursor (at least 1s)")
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
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.AckWait < MinAckWait {
		return fmt.Errorf("ack wait %s must be at least %s", c.AckWait, MinAckWait)
	}
	return nil
}

// stopBudget is how long a graceful stop may take from the moment the
// service's context is done: the shutdown timeout less a tenth (at most
// 1 s), which is left for the last acks and Naks to reach NATS before the
// process drains its connection.
func (c Config) stopBudget() time.Duration {
	return c.ShutdownTimeout - min(c.ShutdownTimeout/10, time.Second)
}

// writer is the event store as the store service sees it. Both inserts
// must be idempotent on seq: redelivered messages are inserted again.
type writer interface {
	Insert(ctx context.Context, events []event.Event) error
	InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error
}

// jetStream is the part of JetStream the store service needs.
type jetStream interface {
	CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error)
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// DeliveriesDeadLetterSubject is where the store parks delivery attempts it
// cannot decode.
const DeliveriesDeadLetterSubject = stream.StoreDeliveriesDeadLetterSubject

// Service is the store service: one batching consumer for events and one
// for delivery attempts.
type Service struct {
	events   *batcher[event.Event]
	attempts *batcher[delivery.Attempt]
}

// New returns a store service that consumes from js and writes to w.
func New(cfg Config, js jetStream, w writer, log *slog.Logger) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if js == nil || w == nil {
		return nil, errors.New("store: jetstream and writer are required")
	}
	log = log.With("component", "store")
	return &Service{
		events: &batcher[event.Event]{
			cfg:        cfg,
			js:         js,
			log:        log.With("consumer", stream.StoreConsumer),
			stream:     stream.Events,
			consumer:   stream.StoreConsumerConfig(cfg.AckWait, 4*cfg.BatchSize),
			deadLetter: stream.StoreDeadLetterSubject,
			decode:     stream.DecodeEvent,
			insert:     w.Insert,
		},
		attempts: &batcher[delivery.Attempt]{
			cfg:        cfg,
			js:         js,
			log:        log.With("consumer", stream.StoreDeliveriesConsumer),
			stream:     stream.Deliveries,
			consumer:   stream.StoreDeliveriesConsumerConfig(cfg.AckWait, 4*cfg.BatchSize),
			deadLetter: DeliveriesDeadLetterSubject,
			decode:     decodeAttempt,
			insert:     w.InsertAttempts,
		},
	}, nil
}

// Run consumes events and delivery attempts until ctx is done or one of
// the two consumers fails. On the way out each stops fetching at once,
// writes and acknowledges what it holds within the shutdown timeout, and
// Naks what it could not write by then, so that JetStream redelivers it at
// once; Run returns nil on a clean stop.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.events.run(gctx) })
	g.Go(func() error { return s.attempts.run(gctx) })
	return g.Wait()
}

// decodeAttempt turns a message of the DELIVERIES stream into the attempt
// as stored: Seq is the stream sequence, the subject names the subscription
// (it is what consumers filter on, so it wins over the payload), and a
// missing attempt time is the time the message was stored.
func decodeAttempt(m jetstream.Msg) (delivery.Attempt, error) {
	var a delivery.Attempt
	meta, err := m.Metadata()
	if err != nil {
		return a, fmt.Errorf("metadata: %w", err)
	}
	sub, ok := stream.SubscriptionOfDelivery(m.Subject())
	if !ok {
		return a, fmt.Errorf("subject %q does not name a subscription", m.Subject())
	}
	if err := delivery.Decode(m.Data(), &a); err != nil {
		return a, err
	}
	a.Seq = meta.Sequence.Stream
	a.SubscriptionID = sub
	if a.Time.IsZero() {
		a.Time = meta.Timestamp
	}
	a.Time = a.Time.UTC().Truncate(time.Microsecond)
	return a, nil
}

// backoff is the wait before insert retry attempt n (1-based), before
// each new try of WaitFor, and before a pull request after n failed ones:
//
//	attempt  1      2      3      4      5      6      7+
//	wait     100ms  200ms  400ms  800ms  1.6s   3.2s   5s (cap)
//
// While an insert is retried, the store keeps its messages from being
// redelivered (see batcher).
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	return min(d, 5*time.Second)
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
