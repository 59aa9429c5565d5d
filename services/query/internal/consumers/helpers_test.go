package consumers

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
)

// env is a real NATS server with the EVENTS stream and the consumers
// bucket, and the API served over real HTTP.
type env struct {
	t     *testing.T
	ns    *natstest.Server
	js    jetstream.JetStream
	clock *clock
	url   string
}

// clock is the API's clock: the real time until a test sets it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now()
	}
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ns: natstest.Start(t)}
	e.serve()
	if err := stream.Ensure(t.Context(), e.js, stream.Config{}); err != nil {
		t.Fatalf("stream.Ensure = %v", err)
	}
	return e
}

// serve connects to the server again and serves a new API instance,
// as a restarted query service would.
func (e *env) serve() {
	t := e.t
	t.Helper()
	// A short timeout for API requests keeps the test of a NATS outage short.
	js, err := jetstream.New(e.ns.Connect(t), jetstream.WithDefaultTimeout(2*time.Second))
	if err != nil {
		t.Fatalf("jetstream.New = %v", err)
	}
	kv, err := stream.EnsureConsumers(t.Context(), js, stream.Config{})
	if err != nil {
		t.Fatalf("stream.EnsureConsumers = %v", err)
	}
	e.js, e.clock = js, &clock{}
	api := New(js, kv, slog.New(slog.DiscardHandler))
	api.now = e.clock.Now
	r := chi.NewRouter()
	api.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	e.url = srv.URL
}

// publish stores an event with the tag and returns its stream sequence.
func (e *env) publish(tag string) uint64 {
	e.t.Helper()
	b, err := event.Encode(&event.Event{Message: "event of " + tag})
	if err != nil {
		e.t.Fatalf("event.Encode = %v", err)
	}
	ack, err := e.js.Publish(e.t.Context(), "events."+tag, b)
	if err != nil {
		e.t.Fatalf("publish %s: %v", tag, err)
	}
	return ack.Sequence
}

// call sends a request with body (a string is sent as is, anything else as
// JSON) and decodes a JSON answer into out. It returns the status and the
// raw answer.
func (e *env) call(method, path string, body, out any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return res.StatusCode, raw
}

// mustCall is call that fails the test unless the status is want.
func (e *env) mustCall(method, path string, body, out any, want int) {
	e.t.Helper()
	if code, raw := e.call(method, path, body, out); code != want {
		e.t.Fatalf("%s %s = %d %s; want %d", method, path, code, raw, want)
	}
}

// create creates a consumer and returns it.
func (e *env) create(name string, tags []string, start any) Consumer {
	e.t.Helper()
	var c Consumer
	e.mustCall("PUT", "/v1/consumers/"+name, map[string]any{"tags": tags, "start": start}, &c, http.StatusCreated)
	return c
}

// read reads a consumer's events without waiting.
func (e *env) read(name string, limit int) Batch {
	e.t.Helper()
	return e.readWait(name, limit, "")
}

func (e *env) readWait(name string, limit int, wait string) Batch {
	e.t.Helper()
	var b Batch
	path := "/v1/consumers/" + name + "/events?limit=" + strconv.Itoa(limit)
	if wait != "" {
		path += "&wait=" + wait
	}
	e.mustCall("GET", path, nil, &b, http.StatusOK)
	return b
}

func (e *env) ack(name string, seq uint64) Position {
	e.t.Helper()
	var p Position
	e.mustCall("POST", "/v1/consumers/"+name+"/ack", map[string]any{"seq": seq}, &p, http.StatusOK)
	return p
}

func (e *env) get(name string) Consumer {
	e.t.Helper()
	var c Consumer
	e.mustCall("GET", "/v1/consumers/"+name, nil, &c, http.StatusOK)
	return c
}

// readers returns how many consumers EVENTS has (reads leave none).
func (e *env) readers() int {
	e.t.Helper()
	st, err := e.js.Stream(e.t.Context(), stream.Events)
	if err != nil {
		e.t.Fatalf("stream: %v", err)
	}
	return st.CachedInfo().State.Consumers
}

// decodeProblem parses a problem+json answer.
func decodeProblem(t *testing.T, raw []byte) problem.Problem {
	t.Helper()
	var p problem.Problem
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("decode problem %s: %v", raw, err)
	}
	return p
}

// seqs returns the sequences of a batch's events.
func seqs(b Batch) []uint64 {
	out := []uint64{}
	for _, e := range b.Events {
		out = append(out, e.Seq)
	}
	return out
}
