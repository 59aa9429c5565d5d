// Package ingest accepts events over HTTP and NATS requests, validates them
// and publishes them to JetStream. It answers 202 only once JetStream has
// acknowledged every event of a request.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Defaults of Config.
const (
	DefaultMaxBody         = 1 << 20
	DefaultPublishTimeout  = 5 * time.Second
	DefaultRequestWorkers  = 256
	DefaultShutdownTimeout = 20 * time.Second
)

// Config tunes the ingest service.
type Config struct {
	Limits         event.Limits
	MaxBody        int64         // bytes of a request body; default 1 MiB
	PublishTimeout time.Duration // how long to wait for JetStream acks; default 5 s
	RequestWorkers int           // NATS requests handled at once; default 256
	Version        string        // reported by the NATS micro service
	// ShutdownTimeout bounds how long Run waits for NATS requests in
	// flight on shutdown; default 20 s.
	ShutdownTimeout time.Duration
}

// publisher is the part of JetStream ingest needs.
type publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Service is the ingest service.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	pub     publisher
	parser  *event.Parser
	trust   Trust
	metrics *metrics
	log     *slog.Logger
}

// New returns an ingest service publishing with pub; nc serves the NATS
// request path; trust says what is checked before publishing.
func New(cfg Config, nc *nats.Conn, pub publisher, trust Trust, reg prometheus.Registerer, log *slog.Logger) (*Service, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.RequestWorkers <= 0 {
		cfg.RequestWorkers = DefaultRequestWorkers
	}
	if cfg.Version == "" {
		cfg.Version = "0.0.0"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg:     cfg,
		nc:      nc,
		pub:     pub,
		parser:  event.NewParser(cfg.Limits, nil),
		trust:   trust,
		metrics: m,
		log:     log.With("component", "ingest"),
	}, nil
}

// Result is what ingest answers for one event.
type Result struct {
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Subject   string `json:"subject"`
	Duplicate bool   `json:"duplicate"`
}

// Response is the body of a 202 answer. Accepted counts the events stored
// by this request, Duplicates those that were already stored (same id
// inside the dedupe window); OK is always true (kept for clients that
// check it).
type Response struct {
	OK         bool     `json:"ok"`
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Events     []Result `json:"events"`
}

// errUnavailable is returned when JetStream did not acknowledge in time.
var errUnavailable = errors.New("jetstream did not acknowledge the publish")

// retryAfter is what 503 answers tell clients to wait.
const retryAfter = time.Second

// publish sends every event to JetStream asynchronously, then waits for all
// acks: a batch costs one round trip, not one per event. It fails if any
// ack is missing, so a 202 always means every event is durable.
func (s *Service) publish(ctx context.Context, events []event.Event) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, len(events))
	for i := range events {
		e := &events[i]
		data, err := event.Encode(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		msg := &nats.Msg{Subject: e.Subject, Data: data, Header: nats.Header{}}
		futures[i], err = s.pub.PublishMsgAsync(msg, jetstream.WithMsgID(dedupeKey(e)), jetstream.WithExpectStream(stream.Events))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUnavailable, e.Subject, err)
		}
	}
	resp := &Response{OK: true, Events: make([]Result, len(events))}
	for i, f := range futures {
		var ack *jetstream.PubAck
		select {
		case ack = <-f.Ok():
		case err := <-f.Err():
			return nil, fmt.Errorf("%w: %s: %w", errUnavailable, events[i].Subject, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errUnavailable, ctx.Err())
		}
		resp.Events[i] = Result{ID: events[i].ID, Seq: ack.Sequence, Subject: events[i].Subject, Duplicate: ack.Duplicate}
		if ack.Duplicate {
			resp.Duplicates++
		} else {
			resp.Accepted++
		}
	}
	s.metrics.publish.Observe(time.Since(start).Seconds())
	s.metrics.accepted.Add(float64(resp.Accepted))
	s.metrics.duplicates.Add(float64(resp.Duplicates))
	return resp, nil
}

// dedupeKey is the JetStream message id of an event: its id within its
// producer. Ids are the producers' own idempotency keys, so one producer
// cannot make another's event a "duplicate" by sending its id first. With
// authentication off there is one trust domain and the id alone is the key.
func dedupeKey(e *event.Event) string {
	if e.Producer == "" {
		return e.ID
	}
	return e.Producer + "/" + e.ID
}

// request is one ingest request, from HTTP or NATS.
type request struct {
	producer *producer.Producer // nil with auth off
	body     []byte
	format   event.Format
	dryRun   bool // validate and check, but do not publish
}

// Checked is the answer of a dry run: the request would be accepted.
type Checked struct {
	OK     bool `json:"ok"`
	Events int  `json:"events"`
}

// ingest parses, checks and publishes one authenticated request. Errors are
// problems ready to answer. A dry run answers *Checked instead of
// *Response.
func (s *Service) ingest(ctx context.Context, req request) (any, error) {
	events, batch, err := s.parser.ParseBody(req.body, req.format)
	if err == nil {
		err = s.admit(ctx, req.producer, events, batch)
	}
	if err != nil {
		return nil, s.reject(err)
	}
	if req.dryRun {
		return &Checked{OK: true, Events: len(events)}, nil
	}
	resp, err := s.publish(ctx, events)
	if err != nil {
		s.log.Warn("publish failed", "err", err, "events", len(events))
		return nil, s.reject(err)
	}
	return resp, nil
}

// reject maps an ingest error to its problem and counts it by reason.
func (s *Service) reject(err error) error {
	p := toProblem(err)
	if p == nil {
		s.metrics.rejected.WithLabelValues("internal").Inc()
		return err
	}
	s.metrics.rejected.WithLabelValues(reasons[p.Status]).Inc()
	return p
}

// reasons label rejected requests in metrics.
var reasons = map[int]string{
	http.StatusBadRequest:            "malformed",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "invalid",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusUnauthorized:          "unauthenticated",
	http.StatusForbidden:             "forbidden",
	http.StatusLocked:                "owned",
	http.StatusTooManyRequests:       "rate_limited",
}

// Flags defines the ingest settings on fs.
func (c *Config) Flags(fs *conf.Set) {
	fs.Int64(&c.MaxBody, "max-body", "INGEST_MAX_BODY", DefaultMaxBody, "largest accepted request body in bytes (larger: 413)")
	fs.Int(&c.Limits.MaxMessage, "max-message", "INGEST_MAX_MESSAGE", event.DefaultMaxMessage, "largest event message in bytes")
	fs.Int(&c.Limits.MaxBatch, "max-batch", "INGEST_MAX_BATCH", event.DefaultMaxBatch, "most events in one request")
	fs.Duration(&c.Limits.ClockSkew, "clock-skew", "INGEST_CLOCK_SKEW", event.DefaultClockSkew, "how far in the future an event timestamp may be")
	fs.Duration(&c.PublishTimeout, "publish-timeout", "INGEST_PUBLISH_TIMEOUT", DefaultPublishTimeout, "how long to wait for JetStream acks before answering 503")
}
