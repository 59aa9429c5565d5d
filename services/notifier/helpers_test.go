package notifier

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/webhook"
)

// testSchedule retries quickly so that tests see several attempts.
var testSchedule = Schedule{0, 50 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// env is a notifier on an in-process JetStream, with its API on a real
// HTTP server.
type env struct {
	t   *testing.T
	ns  *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	api *httptest.Server
	svc *Service
	cfg Config
	// opts are given to every notifier the env starts; gate, when set,
	// guards the API like in a running service.
	opts []Option
	gate *access.Gate
}

func testConfig() Config {
	return Config{
		Timeout:   2 * time.Second,
		AckWait:   5 * time.Second,
		Schedule:  testSchedule,
		AllowNets: "127.0.0.0/8,::1/128", // the receivers are httptest servers
	}
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ns := natstest.Start(t)
	e := &env{t: t, ns: ns, cfg: cfg}
	e.connect()
	e.svc = e.start(cfg)
	return e
}

// newBareEnv is an env without a running notifier.
func newBareEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ns: natstest.Start(t), cfg: testConfig()}
	e.connect()
	return e
}

func (e *env) connect() {
	e.t.Helper()
	e.nc = e.ns.Connect(e.t)
	js, err := stream.JetStream(e.nc, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := stream.Ensure(e.t.Context(), js, stream.Config{}); err != nil {
		e.t.Fatal(err)
	}
	kv, err := stream.EnsureNotify(e.t.Context(), js, stream.Config{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.js, e.kv = js, kv
}

// start runs a notifier instance until the test ends (or its stop func is
// called) and serves its API; the first instance's API is e.api.
func (e *env) start(cfg Config) *Service {
	svc, stop := e.startStoppable(cfg)
	e.t.Cleanup(stop)
	return svc
}

func (e *env) startStoppable(cfg Config) (*Service, func()) {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := New(cfg, e.js, e.kv, prometheus.NewRegistry(), log, e.opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	if e.api == nil {
		r := chi.NewRouter()
		if e.gate != nil {
			r.Use(e.gate.Middleware(r))
		}
		svc.Mount(r)
		e.api = httptest.NewServer(r)
		e.t.Cleanup(e.api.Close)
	}
	var once sync.Once
	return svc, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run = %v", err)
			}
		})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// call makes an API request and decodes a JSON answer into out (if not nil).
func (e *env) call(method, path string, body any, out any) int {
	e.t.Helper()
	return e.callAs("", method, path, body, out)
}

// callAs is call with a bearer token (none when empty).
func (e *env) callAs(token, method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := jsonv2.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.api.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := jsonv2.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

// subscribe creates a subscription and returns it with its secret.
func (e *env) subscribe(body map[string]any) withSecret {
	e.t.Helper()
	var out withSecret
	out.Subscription = &Subscription{}
	if code := e.call("POST", "/v1/subscriptions", body, &out); code != http.StatusCreated {
		e.t.Fatalf("POST /v1/subscriptions %v = %d; want 201", body, code)
	}
	return out
}

// publish publishes an event the way ingest does and returns it.
func (e *env) publish(tag string) event.Event {
	e.t.Helper()
	cat, code := splitTestTag(tag)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := event.Event{
		ID: uuid.Must(uuid.NewV7()).String(), Subject: "events." + tag, Tag: tag, Category: cat, Code: code,
		Message: "something happened", Timestamp: now, ReceivedAt: now, Severity: event.Error,
	}
	b, err := event.Encode(&ev)
	if err != nil {
		e.t.Fatal(err)
	}
	ack, err := e.js.Publish(e.t.Context(), ev.Subject, b, jetstream.WithMsgID(ev.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	ev.Seq = ack.Sequence
	return ev
}

func splitTestTag(tag string) (string, string) {
	i := bytes.LastIndexByte([]byte(tag), '.')
	return tag[:i], tag[i+1:]
}

// receiver is a webhook endpoint that verifies signatures and records
// what it accepted, deduplicating by webhook-id like a careful receiver.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string // set after subscribing

	mu       sync.Mutex
	status   func(n int) int // status for the nth request (1-based); nil: 200
	requests int
	bad      int              // requests whose signature did not verify
	seen     map[string]int   // webhook-id → accepted deliveries
	events   []event.Event    // accepted, deduplicated events in arrival order
	arrivals []time.Time      // when each request arrived
	bodies   [][]event.Event  // batches as received
	headers  []http.Header    // request headers
	got      chan event.Event // every newly accepted event
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, seen: map[string]int{}, got: make(chan event.Event, 100000)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.arrivals = append(rc.arrivals, time.Now())
	rc.headers = append(rc.headers, r.Header.Clone())
	script, secret := rc.status, rc.secret
	rc.mu.Unlock()
	status := http.StatusOK
	if script != nil {
		status = script(n)
	}

	if secret != "" {
		if err := webhook.Verify(secret, r.Header, body); err != nil {
			rc.mu.Lock()
			rc.bad++
			rc.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	if status/100 != 2 {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, "scripted failure", status)
		return
	}
	var events []event.Event
	if len(body) > 0 && body[0] == '[' {
		if err := jsonv2.Unmarshal(body, &events); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		var ev event.Event
		if err := jsonv2.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		events = []event.Event{ev}
	}
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, events)
	rc.seen[id]++
	fresh := rc.seen[id] == 1
	if fresh {
		rc.events = append(rc.events, events...)
	}
	rc.mu.Unlock()
	if fresh {
		for _, ev := range events {
			rc.got <- ev
		}
	}
	w.WriteHeader(status)
}

func (rc *receiver) script(f func(n int) int) {
	rc.mu.Lock()
	rc.status = f
	rc.mu.Unlock()
}

// wait waits until n new events arrived and returns them.
func (rc *receiver) wait(n int, timeout time.Duration) []event.Event {
	rc.t.Helper()
	var out []event.Event
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case ev := <-rc.got:
			out = append(out, ev)
		case <-deadline:
			rc.t.Fatalf("received %d of %d events within %s", len(out), n, timeout)
		}
	}
	return out
}

// quiet asserts that no further event arrives within d.
func (rc *receiver) quiet(d time.Duration) {
	rc.t.Helper()
	select {
	case ev := <-rc.got:
		rc.t.Fatalf("unexpected delivery of %s (%s)", ev.ID, ev.Tag)
	case <-time.After(d):
	}
}

func (rc *receiver) snapshot() (requests, bad int, seen map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen = map[string]int{}
	for k, v := range rc.seen {
		seen[k] = v
	}
	return rc.requests, rc.bad, seen
}

// ids returns the sorted ids of events.
func ids(events []event.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	slices.Sort(out)
	return out
}

// attempts reads every delivery attempt record of a subscription from the
// DELIVERIES stream.
func (e *env) attempts(subID string) []delivery.Attempt {
	e.t.Helper()
	cons, err := e.js.OrderedConsumer(e.t.Context(), stream.Deliveries, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.DeliverySubject(subID)},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []delivery.Attempt
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var a delivery.Attempt
			if err := delivery.Decode(m.Data(), &a); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, a)
		}
		if n == 0 {
			return out
		}
	}
}

// deadLetters reads a subscription's dead letters.
func (e *env) deadLetters(subID string) []*nats.Msg {
	e.t.Helper()
	var out []*nats.Msg
	cons, err := e.js.OrderedConsumer(e.t.Context(), stream.DeadLetters, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.NotifyDeadLetterFilter(subID)},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	for m := range batch.Messages() {
		out = append(out, &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()})
	}
	return out
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) getSub(id string) Subscription {
	e.t.Helper()
	var s Subscription
	if code := e.call("GET", "/v1/subscriptions/"+id, nil, &s); code != http.StatusOK {
		e.t.Fatalf("GET subscription %s = %d", id, code)
	}
	return s
}
