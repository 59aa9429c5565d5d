// Package tail serves the live tail of EventSync events as Server-Sent
// Events: GET /v1/stream sends the stored events after a cursor, then every
// new event as it is published, read from JetStream by one ordered consumer
// so that history and live events are one gapless sequence.
//
// Each stream holds a bounded number of events for its client: the
// consumer prefetches at most Config.Buffer events and a queue of the same
// size sits between it and the HTTP writer. A full queue holds the consumer
// back, so a client replaying history is served at its own pace and the
// backlog stays in JetStream. A client that accepts nothing for
// Config.WriteTimeout (it stopped reading) is a slow client: its stream
// ends and its consumer is deleted.
package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Path is where Mount serves the stream.
const Path = "/v1/stream"

// Defaults of Config.
const (
	// DefaultHeartbeat is shorter than the idle timeouts of common proxies
	// and load balancers (often 30–60 s).
	DefaultHeartbeat = 15 * time.Second
	// DefaultBuffer is how many events may wait for one client.
	DefaultBuffer = 256
	// DefaultWriteTimeout is how long a client may take to accept one
	// write before it counts as slow.
	DefaultWriteTimeout = 10 * time.Second
)

// finalWriteTimeout bounds the last message to a client the stream is
// leaving (the error event): it is sent only if the client still reads.
const finalWriteTimeout = time.Second

// deleteTimeout bounds deleting a finished stream's consumer.
const deleteTimeout = 5 * time.Second

// Reasons a stream ends, sent to the client in the data of the final
// "error" event and logged.
const (
	ReasonSlowClient   = "slow client"
	ReasonShuttingDown = "shutting down"
	ReasonUnavailable  = "stream unavailable"
)

// reasonClientGone is logged when the client closed the stream.
const reasonClientGone = "client gone"

// Config tunes the streams. A zero field takes its default.
type Config struct {
	// Heartbeat is how long a stream may stay silent before a ": ping"
	// comment is sent, which keeps proxies from closing idle streams.
	Heartbeat time.Duration
	// Buffer is how many events the consumer prefetches and how many
	// more may wait in the queue to the client.
	Buffer int
	// WriteTimeout bounds each write to a client; a client that takes
	// longer is slow and disconnected. It replaces the server's own
	// WriteTimeout for streams, which would cut every stream after a
	// while.
	WriteTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	return c
}

// consumers is JetStream as the tail uses it: one ordered consumer per
// stream, deleted when the stream ends (jetstream.JetStream has both).
type consumers interface {
	OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error)
	DeleteConsumer(ctx context.Context, stream, consumer string) error
}

// Tail serves live tails of the EVENTS stream.
type Tail struct {
	js  consumers
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	closing bool
	quit    chan struct{} // closed when Run's context is done
	active  sync.WaitGroup
}

// New returns a Tail reading events with js.
func New(js consumers, cfg Config, log *slog.Logger) *Tail {
	return &Tail{js: js, cfg: cfg.withDefaults(), log: log.With("component", "tail"), quit: make(chan struct{})}
}

// Mount adds GET /v1/stream to r.
func (t *Tail) Mount(r chi.Router) {
	r.Get(Path, t.ServeHTTP)
}

// Run blocks until ctx is done, then ends every open stream (each client
// gets a final "error" event with the reason "shutting down") and waits for
// them to finish. http.Server.Shutdown waits for handlers but does not
// cancel them, so without Run a server shutting down waits for its streams
// until its shutdown timeout.
func (t *Tail) Run(ctx context.Context) error {
	<-ctx.Done()
	t.mu.Lock()
	if !t.closing {
		t.closing = true
		close(t.quit)
	}
	t.mu.Unlock()
	t.active.Wait()
	return nil
}

// enter registers a stream unless the tail is shutting down.
func (t *Tail) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.active.Add(1)
	return true
}

// start is where a stream begins.
type start struct {
	filters []string // filter subjects of the consumer
	// allowed are the tags the client may read (nil: all); the pump
	// drops any other event, in case the filters are wider.
	allowed []string
	after   uint64 // the last seq the client has; the stream sends seqs after it
	now     bool   // no cursor: only events published from now on
}

// parseStart reads the tag pattern and the cursor of a request. The cursor
// is the larger of the since parameter and the Last-Event-ID header: a
// browser's EventSource reconnects to the same URL (with its original
// since) and names the last event it received in Last-Event-ID, which is
// always later; taking the larger one never sends an event twice. With
// neither, the stream starts at the events published from now on.
func parseStart(r *http.Request) (start, error) {
	s := start{now: true}
	q := r.URL.Query()
	var requested []string
	if tag := q.Get("tag"); tag != "" {
		if err := subject.ValidatePattern(tag); err != nil {
			return s, problem.BadParam("tag", err.Error())
		}
		requested = []string{tag}
	}
	var err error
	if s.filters, s.allowed, err = filters(requested, access.From(r.Context()).Restrict(access.Read)); err != nil {
		return s, err
	}
	for _, c := range []struct{ name, value string }{
		{"since", q.Get("since")},
		{"Last-Event-ID", r.Header.Get("Last-Event-ID")},
	} {
		if c.value == "" {
			continue
		}
		n, err := strconv.ParseUint(c.value, 10, 64)
		if err != nil || n == math.MaxUint64 {
			return s, problem.BadParam(c.name, "must be a stream sequence (an integer from 0)")
		}
		s.now = false
		s.after = max(s.after, n)
	}
	return s, nil
}

// filters returns the filter subjects of a stream of the requested tag
// patterns (none: every tag) for a client that may read allowed (nil:
// every tag), and the tags its events must match.
//
// The filters are the patterns of the tags both select (stream.
// LimitPatterns): a requested pattern within the client's patterns
// stays as it is, a wider one gives way to the client's patterns inside
// it, and a partial overlap (A.* and *.X) to the one pattern of their
// common tags (A.X). A request with no tag in common with the client's
// patterns is refused. Read patterns may overlap each other (A.* and *.X),
// and JetStream refuses overlapping filters: the stream then filters on
// the requested pattern and the pump drops the events outside allowed.
// The pump checks every event in any case, so the consumer's filters
// decide what is read from JetStream, never what the client sees.
//
// A stream resumed with Last-Event-ID or since starts after that sequence
// with the same filters: it cannot reach another tag's events either.
func filters(requested, allowed []string) (filters, keep []string, err error) {
	if allowed == nil {
		if requested == nil {
			return []string{subject.All}, nil, nil
		}
		return subject.Filters(requested), nil, nil
	}
	patterns := allowed
	if requested != nil {
		if patterns = stream.LimitPatterns(requested, allowed); len(patterns) == 0 {
			return nil, nil, access.Forbidden(fmt.Sprintf("tag %q selects no tag within the client's read patterns", requested[0]))
		}
	}
	if len(patterns) == 0 {
		return nil, nil, access.Forbidden("the client may read no tag")
	}
	norm, err := subject.Normalize(patterns)
	var overlap *subject.OverlapError
	switch {
	case err == nil:
		return subject.Filters(norm), allowed, nil
	case errors.As(err, &overlap) && requested != nil:
		return subject.Filters(requested), allowed, nil
	case errors.As(err, &overlap):
		return []string{subject.All}, allowed, nil
	}
	return nil, nil, err
}

// config is the ordered consumer that delivers the stream.
func (s start) config() jetstream.OrderedConsumerConfig {
	c := jetstream.OrderedConsumerConfig{FilterSubjects: s.filters}
	switch {
	case s.now:
		c.DeliverPolicy = jetstream.DeliverNewPolicy
	case s.after == 0:
		c.DeliverPolicy = jetstream.DeliverAllPolicy
	default:
		c.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		c.OptStartSeq = s.after + 1
	}
	return c
}

// ServeHTTP streams events as text/event-stream. Each event is a message
//
//	id: <stream seq>
//	event: event
//	data: <the stored event as one line of JSON>
//
// A stream that the server ends gets a last message "event: error" with
// data {"reason": "..."}; the client may reconnect with Last-Event-ID.
// Invalid parameters are answered with a 400 problem before any stream
// starts, an unavailable JetStream with a 503.
func (t *Tail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	from, err := parseStart(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if !t.enter() {
		problem.Write(w, problem.Unavailable("the server is shutting down", time.Second))
		return
	}
	defer t.active.Done()

	cons, err := t.js.OrderedConsumer(r.Context(), stream.Events, from.config())
	if err != nil {
		t.log.Error("create stream consumer", "err", err)
		problem.Write(w, problem.Unavailable("the event stream is unavailable", time.Second))
		return
	}
	defer t.release(cons)
	it, err := cons.Messages(jetstream.PullMaxMessages(t.cfg.Buffer))
	if err != nil {
		t.log.Error("consume stream", "err", err)
		problem.Write(w, problem.Unavailable("the event stream is unavailable", time.Second))
		return
	}

	s := &session{w: w, rc: http.NewResponseController(w), timeout: t.cfg.WriteTimeout}
	p := &pump{it: it, allowed: from.allowed, frames: make(chan frame, t.cfg.Buffer), stop: make(chan struct{}), done: make(chan struct{}), log: t.log}
	go p.run()
	defer func() {
		close(p.stop)
		it.Stop()
		<-p.done
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	var hello []byte
	if from.now {
		// Name where the stream starts, so that a client reconnecting
		// before any event arrived resumes there rather than from "now"
		// again. A message with an id and no data sets the client's last
		// event id and dispatches nothing.
		if info := cons.CachedInfo(); info != nil {
			hello = frameID(info.Delivered.Stream)
		}
	}
	if err := s.write(hello); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			t.log.Error("stream cannot be flushed", "err", err)
		}
		return
	}
	reason, last := t.serve(r.Context(), s, p)
	if reason == ReasonSlowClient {
		t.log.Warn("stream closed", "reason", reason, "stream_seq", last, "subject", from.filters)
		return
	}
	t.log.Debug("stream closed", "reason", reason, "stream_seq", last, "subject", from.filters)
}

// serve writes events, heartbeats and the final error event until the
// stream ends, and returns why it ended and the last seq it wrote.
func (t *Tail) serve(ctx context.Context, s *session, p *pump) (reason string, last uint64) {
	hb := time.NewTimer(t.cfg.Heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return reasonClientGone, last
		case <-t.quit:
			s.final(ReasonShuttingDown)
			return ReasonShuttingDown, last
		case <-p.done:
			// The consumer failed: the events it queued before are valid.
			for len(p.frames) > 0 {
				f := <-p.frames
				if err := s.write(f.b); err != nil {
					return s.failed(err), last
				}
				last = f.seq
			}
			s.final(ReasonUnavailable)
			return ReasonUnavailable, last
		case <-hb.C:
			if err := s.write(ping); err != nil {
				return s.failed(err), last
			}
		case f := <-p.frames:
			if err := s.write(f.b); err != nil {
				return s.failed(err), last
			}
			last = f.seq
		}
		hb.Reset(t.cfg.Heartbeat)
	}
}

// release deletes the stream's consumer rather than leaving it to expire:
// every stream has its own.
func (t *Tail) release(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	if err := t.js.DeleteConsumer(ctx, stream.Events, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.log.Warn("delete stream consumer", "consumer", info.Name, "err", err)
	}
}

// ping is the heartbeat: an SSE comment, which clients ignore.
var ping = []byte(": ping\n\n")

// session writes to one client, each write bounded by its own deadline.
type session struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// write sends b and flushes it. The deadline is armed before each write;
// it replaces the server's WriteTimeout, which was set once for the whole
// request.
func (s *session) write(b []byte) error {
	if err := s.deadline(s.timeout); err != nil {
		return err
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// deadline arms the write deadline. A writer that cannot take deadlines
// leaves the server's WriteTimeout in force: the stream then ends after
// it and the client reconnects with Last-Event-ID.
func (s *session) deadline(d time.Duration) error {
	err := s.rc.SetWriteDeadline(time.Now().Add(d))
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// failed handles a failed write and returns why the stream ends: a write
// that timed out means the client stopped reading; it is told so if it
// still can be. Any other failure means the client is gone.
func (s *session) failed(err error) string {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return reasonClientGone
	}
	s.final(ReasonSlowClient)
	return ReasonSlowClient
}

// final sends the error event that ends a stream, if the client still
// takes it within finalWriteTimeout. After a write timed out, the
// connection is broken and this fails at once.
func (s *session) final(reason string) {
	if err := s.deadline(min(s.timeout, finalWriteTimeout)); err != nil {
		return
	}
	if _, err := s.w.Write(frameError(reason)); err != nil {
		return
	}
	_ = s.rc.Flush()
}

// pump moves events from the consumer into the bounded queue of one
// client, waiting while the queue is full.
type pump struct {
	it      jetstream.MessagesContext
	allowed []string // tags the client may read; nil: all
	frames  chan frame
	stop    chan struct{} // closed when the stream ends
	done    chan struct{} // closed when run returns
	log     *slog.Logger
}

// run returns when the consumer stops (the stream ended, or it failed) or
// the stream ends while it waits for room in the queue.
func (p *pump) run() {
	defer close(p.done)
	for {
		m, err := p.it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				p.log.Warn("read stream", "err", err)
			}
			return
		}
		e, err := stream.DecodeEvent(m)
		if err != nil {
			// The store dead-letters such a message; the tail skips it.
			p.log.Warn("skip undecodable event", "subject", m.Subject(), "err", err)
			continue
		}
		if !eventstore.Allows(p.allowed, e.Tag) {
			continue
		}
		f, err := frameEvent(&e)
		if err != nil {
			p.log.Warn("skip unencodable event", "subject", m.Subject(), "err", err)
			continue
		}
		select {
		case p.frames <- f:
		case <-p.stop:
			return
		}
	}
}

// frame is one event, formatted.
type frame struct {
	seq uint64
	b   []byte
}

// frameEvent formats an event of the EVENTS stream as an SSE message.
func frameEvent(e *event.Event) (frame, error) {
	data, err := event.Encode(e)
	if err != nil {
		return frame{}, err
	}
	// A data line ends at a line break: JSON may hold them only as
	// whitespace, so compacting removes every one.
	if bytes.ContainsAny(data, "\r\n") {
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return frame{}, err
		}
		data = c.Bytes()
	}
	b := make([]byte, 0, len(data)+48)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, "\nevent: event\ndata: "...)
	b = append(b, data...)
	return frame{seq: e.Seq, b: append(b, "\n\n"...)}, nil
}

// frameID is a message that only sets the client's last event id.
func frameID(seq uint64) []byte {
	return []byte("id: " + strconv.FormatUint(seq, 10) + "\n\n")
}

// frameError is the last message of a stream the server ends.
func frameError(reason string) []byte {
	data, _ := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason}) // a struct of one string always encodes
	return append(append([]byte("event: error\ndata: "), data...), "\n\n"...)
}
