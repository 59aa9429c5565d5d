// Package stream holds every JetStream stream and consumer definition of
// EventSync in one place, and the connection settings its services share.
package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/subject"
)

// Names of streams, consumers and service subjects.
const (
	// Events is the stream of every accepted event, subjects events.>.
	Events = "EVENTS"
	// DeadLetters is the stream of messages a consumer gave up on, subjects dlq.>.
	DeadLetters = "DLQ"
	// StoreConsumer is the durable consumer that writes events to the store.
	StoreConsumer = "store"
	// IngestSubject is the NATS request subject of the ingest service.
	IngestSubject = "eventsync.ingest"
)

// Defaults of Config.
const (
	DefaultMaxAge     = 7 * 24 * time.Hour
	DefaultDuplicates = 10 * time.Minute
)

// Config sizes the EVENTS stream.
type Config struct {
	MaxAge     time.Duration // how long events are kept; default 7 days
	MaxBytes   int64         // size limit; 0 or less means unlimited
	Duplicates time.Duration // dedupe window for Nats-Msg-Id; default 10 minutes
	Replicas   int           // 1 on a laptop, 3 in a cluster
}

// EventsConfig returns the configuration of the EVENTS stream.
//
// Discard is New: a full stream refuses new events (ingest answers 503)
// rather than silently deleting ones no consumer has read yet.
func EventsConfig(c Config) jetstream.StreamConfig {
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Duplicates <= 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        Events,
		Description: "EventSync events, one subject per tag",
		Subjects:    []string{subject.All},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      c.MaxAge,
		MaxBytes:    c.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
	}
}

// DeadLettersConfig returns the configuration of the DLQ stream. Dead
// letters are kept for 30 days.
func DeadLettersConfig(replicas int) jetstream.StreamConfig {
	if replicas <= 0 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        DeadLetters,
		Description: "EventSync dead letters: messages a consumer could not process",
		Subjects:    []string{"dlq.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    replicas,
	}
}

// StoreDeadLetterSubject is where the store consumer parks messages it
// cannot decode.
const StoreDeadLetterSubject = "dlq.store"

// Headers set on dead letters.
const (
	HeaderReason    = "EventSync-Reason"
	HeaderStreamSeq = "EventSync-Stream-Seq"
	HeaderSubject   = "EventSync-Subject"
)

// Ensure creates or updates the EVENTS, DLQ and DELIVERIES streams. It is idempotent, so
// every service calls it at start-up and whichever starts first creates them.
func Ensure(ctx context.Context, js jetstream.StreamManager, c Config) error {
	if _, err := js.CreateOrUpdateStream(ctx, EventsConfig(c)); err != nil {
		return fmt.Errorf("ensure stream %s: %w", Events, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, DeadLettersConfig(c.Replicas)); err != nil {
		return fmt.Errorf("ensure stream %s: %w", DeadLetters, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, DeliveriesConfig(c)); err != nil {
		return fmt.Errorf("ensure stream %s: %w", Deliveries, err)
	}
	return nil
}

// StoreConsumerConfig returns the durable consumer of the store service.
// AckWait must exceed the store's insert timeout; MaxAckPending bounds how
// many events can be in flight between JetStream and the store.
func StoreConsumerConfig(ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       StoreConsumer,
		Description:   "writes events to the event store",
		FilterSubject: subject.All,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Watermark reads a durable consumer's ack floor: every message of its
// stream with a sequence at or below it has been processed (for the store's
// consumers: is in the store). It is 0 when the consumer does not exist yet.
type Watermark struct {
	js       jetstream.StreamConsumerManager
	stream   string
	consumer string
}

// NewWatermark returns the Watermark of the store consumer on EVENTS: the
// highest event sequence at or below which every event is stored.
func NewWatermark(js jetstream.StreamConsumerManager) *Watermark {
	return NewConsumerWatermark(js, Events, StoreConsumer)
}

// NewConsumerWatermark returns a Watermark reading the ack floor of the
// durable consumer on stream, e.g. (Deliveries, StoreDeliveriesConsumer) for
// the stored delivery attempts.
func NewConsumerWatermark(js jetstream.StreamConsumerManager, stream, consumer string) *Watermark {
	return &Watermark{js: js, stream: stream, consumer: consumer}
}

// Committed returns the highest stream sequence at or below which every
// message has been acknowledged by the consumer.
func (w *Watermark) Committed(ctx context.Context) (uint64, error) {
	c, err := w.js.Consumer(ctx, w.stream, w.consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("consumer %s on %s: %w", w.consumer, w.stream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s on %s info: %w", w.consumer, w.stream, err)
	}
	return info.AckFloor.Stream, nil
}

// Connect connects to NATS with the reconnect behaviour services need: keep
// retrying forever, also when the first attempt fails. url may list several
// servers, comma-separated. While disconnected, nats.go buffers publishes
// (8 MiB by default); ingest still answers 503 when their acks do not arrive
// within its publish timeout, and a retry with the same ids is deduplicated.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
}

// JetStream returns the JetStream context services share: asynchronous
// publishes time out after publishTimeout so that no ack is awaited forever.
func JetStream(nc *nats.Conn, publishTimeout time.Duration) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncTimeout(publishTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// Connected is a readiness check: nil while nc is connected to NATS.
func Connected(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", s)
		}
		return nil
	}
}

// Drain drains nc (pending publishes and acks are flushed, subscriptions
// finish their messages) and waits up to timeout for it to close. nc.Drain
// alone returns at once; closing the connection right after it would cut
// the drain short.
func Drain(nc *nats.Conn, timeout time.Duration) error {
	if err := nc.Drain(); err != nil {
		return fmt.Errorf("drain nats: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() {
		if time.Now().After(deadline) {
			return fmt.Errorf("drain nats: not closed after %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
