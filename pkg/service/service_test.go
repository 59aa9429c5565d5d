package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
	"github.com/eventsync/eventsync/pkg/stream"
)

// echo is a part with a few routes that exercise the middleware stack.
type echo struct {
	limit   string
	maxBody int64
	d       service.Deps
	runs    atomic.Int32
	stopped atomic.Bool
}

func (e *echo) Flags(fs *conf.Set) {
	fs.String(&e.limit, "echo-limit", "ECHO_LIMIT", "ok", "a setting of the test part")
}

func (e *echo) Validate() error {
	if e.limit != "ok" {
		return fmt.Errorf("echo limit %q: want ok", e.limit)
	}
	return nil
}

func (e *echo) Open(_ context.Context, d service.Deps) error { e.d = d; return nil }

func (e *echo) Mount(r chi.Router) {
	r.Post("/v1/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = w.Write(b)
	})
	r.Get("/v1/panic", func(http.ResponseWriter, *http.Request) { panic("a bug") })
	r.Get("/v1/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write([]byte("done"))
	})
}

func (e *echo) Run(ctx context.Context) error {
	e.runs.Add(1)
	<-ctx.Done()
	e.stopped.Store(true)
	return nil
}

func (e *echo) MaxBody() int64 { return e.maxBody }

// storeOpener opens an embedded store after failing a number of times.
type storeOpener struct {
	dir   string
	fails atomic.Int32
}

func (s *storeOpener) Flags(*conf.Set) {}

func (s *storeOpener) Open(ctx context.Context) (eventstore.Store, error) {
	if s.fails.Add(-1) >= 0 {
		return nil, errors.New("connection refused")
	}
	return sqlitestore.Open(ctx, s.dir+"/events.db")
}

func (s *storeOpener) String() string { return "embedded" }

// echoRules are the access rules of the echo part's routes.
var echoRules = []access.Rule{
	{Method: http.MethodPost, Pattern: "/v1/echo", Scope: access.Write},
	{Method: http.MethodGet, Pattern: "/v1/panic", Scope: access.Read},
	{Method: http.MethodGet, Pattern: "/v1/slow", Scope: access.Read},
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// start starts p with args on a free port and runs it until the test ends
// (see startEnv).
func start(t *testing.T, p service.Program, args ...string) (base string, proc *service.Process, done <-chan error, stop func()) {
	t.Helper()
	return startEnv(t, p, nil, args...)
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func waitReady(t *testing.T, proc *service.Process) {
	t.Helper()
	select {
	case <-proc.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("process not ready after 30s")
	}
}

// TestWaitsForNATS: a process started while NATS is down stays up, says
// on /readyz what it waits for, answers its API with 503, and becomes
// ready once NATS is there; it never exits because of it.
func TestWaitsForNATS(t *testing.T) {
	ns := natstest.Start(t)
	ns.Shutdown()
	part := &echo{}
	base, proc, done, _ := start(t, service.Program{Parts: []service.Part{part}}, "--nats-url", ns.URL())

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body := get(t, base+"/readyz")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("GET /readyz while NATS is down = %d %q; want 503", code, body)
		}
		if strings.Contains(body, "nats "+ns.URL()+": ") { // an attempt failed and says why
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %q; want it to name nats and the error", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, h, body := get(t, base+"/v1/panic"); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "starting") {
		t.Errorf("API while starting = %d %q (Retry-After %q); want 503 with Retry-After", code, body, h.Get("Retry-After"))
	}
	if code, _, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz while waiting = %d; want 200 (alive)", code)
	}
	select {
	case err := <-done:
		t.Fatalf("process exited while NATS was down: %v", err)
	default:
	}

	ns.Restart()
	waitReady(t, proc)
	if code, _, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("GET /readyz after NATS came = %d %q; want 200", code, body)
	}
	if part.runs.Load() != 1 {
		t.Errorf("part ran %d times; want 1", part.runs.Load())
	}
	// Every stream and bucket exists, with the process's one stream config.
	for _, name := range []string{stream.Events, stream.DeadLetters, stream.Deliveries, stream.Redrive} {
		if _, err := part.d.JS.Stream(t.Context(), name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	for _, kv := range stream.Buckets(stream.Config{}) {
		if _, err := part.d.JS.KeyValue(t.Context(), kv.Bucket); err != nil {
			t.Errorf("bucket %s: %v", kv.Bucket, err)
		}
	}
}

// TestMiddleware: every route (ops, part routes, unknown paths) goes
// through the one stack.
func TestMiddleware(t *testing.T) {
	ns := natstest.Start(t)
	base, proc, _, _ := start(t, service.Program{Parts: []service.Part{&echo{maxBody: 2 << 20}}}, "--nats-url", ns.URL())
	waitReady(t, proc)

	tests := []struct {
		method, path, body string
		want               int
		problem            bool
	}{
		{"GET", "/healthz", "", 200, false},
		{"GET", "/readyz", "", 200, false},
		{"GET", "/metrics", "", 200, false},
		{"POST", "/v1/echo", "hello", 200, false},
		{"GET", "/v1/nothing", "", 404, true},
		{"DELETE", "/v1/echo", "", 405, true},
		{"GET", "/v1/panic", "", 500, true},
		// Above the default limit of 1 MiB, within the part's 2 MiB.
		{"POST", "/v1/echo", strings.Repeat("x", 1<<20+10), 200, false},
		{"POST", "/v1/echo", strings.Repeat("x", 2<<20+1), 413, true},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			req.Header.Set("X-Request-ID", "req-"+tt.method)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d %s; want %d", resp.StatusCode, b, tt.want)
			}
			if got := resp.Header.Get("X-Request-ID"); got != "req-"+tt.method {
				t.Errorf("X-Request-ID = %q; want the caller's", got)
			}
			if ct := resp.Header.Get("Content-Type"); tt.problem && ct != "application/problem+json" {
				t.Errorf("Content-Type = %q; want application/problem+json", ct)
			}
			if tt.want == 500 && strings.Contains(string(b), "a bug") {
				t.Errorf("500 body leaks the panic: %s", b)
			}
		})
	}
	// The process survived the panic.
	if code, _, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("GET /readyz after a panic = %d; want 200", code)
	}
}

// TestStartErrors: a bad setting, from any part, or a busy port is an
// error from Start (every problem at once), never a panic or a half-started
// process.
func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"part setting", []string{"--echo-limit", "bad"}, nil, []string{`echo limit "bad"`}},
		{"part setting from env", nil, map[string]string{"ECHO_LIMIT": "worse"}, []string{`echo limit "worse"`}},
		{"several at once", []string{"--echo-limit", "bad", "--log-level", "loud", "--shutdown-timeout", "0s"},
			nil, []string{"echo limit", "log level", "shutdown timeout"}},
		{"busy port", []string{"--http-addr", busy.Addr().String()}, nil, []string{"listen " + busy.Addr().String()}},
		{"stray argument", []string{"extra"}, nil, []string{"unexpected arguments: extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := service.Program{Name: "test", HTTPAddr: "127.0.0.1:0", Parts: []service.Part{&echo{}}}
			_, err := service.Start(t.Context(), p, tt.args, env(tt.env), io.Discard)
			if err == nil {
				t.Fatal("Start succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start error = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestWaitsForStore: the event store is waited for like NATS, then handed
// to the parts; /readyz checks it.
func TestWaitsForStore(t *testing.T) {
	ns := natstest.Start(t)
	opener := &storeOpener{dir: t.TempDir()}
	opener.fails.Store(3)
	part := &echo{}
	base, proc, _, _ := start(t, service.Program{Store: opener, Parts: []service.Part{part}}, "--nats-url", ns.URL())
	waitReady(t, proc)
	if part.d.Store == nil {
		t.Fatal("part got no store")
	}
	if opener.fails.Load() >= 0 {
		t.Errorf("store opened before its failures ran out")
	}
	if code, _, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d %q; want 200", code, body)
	}
}

// TestShutdown: a request in flight is finished within the
// shutdown timeout; parts are stopped and Run returns nil.
func TestShutdown(t *testing.T) {
	ns := natstest.Start(t)
	part := &echo{}
	base, proc, done, stop := start(t, service.Program{Parts: []service.Part{part}}, "--nats-url", ns.URL(), "--shutdown-timeout", "5s")
	waitReady(t, proc)
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/v1/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}()
	time.Sleep(100 * time.Millisecond) // the request is in flight
	stop()
	if g := <-got; g != "200 done" {
		t.Errorf("request in flight at shutdown got %q; want 200 done", g)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil on a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if !part.stopped.Load() {
		t.Error("part was not stopped")
	}
	if !part.d.NC.IsClosed() {
		t.Error("NATS connection still open after Run returned")
	}
}

// TestAccess: with authentication on every route but the probes needs a
// credential; /metrics needs admin scope on the API port and moves to the
// ops listener, open, with --metrics-addr.
func TestAccess(t *testing.T) {
	ns := natstest.Start(t)
	p := service.Program{Name: "test", Parts: []service.Part{&echo{}}, Rules: echoRules}
	for _, tt := range []struct {
		name    string
		metrics bool
	}{{"metrics on the API port", false}, {"metrics on the ops listener", true}} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--http-addr", "127.0.0.1:0", "--log-level", "error", "--nats-url", ns.URL(), "--auth", "clients", "--admin-token", "admin-secret"}
			if tt.metrics {
				args = append(args, "--metrics-addr", "127.0.0.1:0")
			}
			ctx, cancel := context.WithCancel(context.Background())
			proc, err := service.Start(ctx, p, args, env(nil), io.Discard)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- proc.Run(ctx) }()
			defer func() { cancel(); <-done }()
			select {
			case <-proc.Started():
			case err := <-done:
				t.Fatalf("stopped: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("not ready after 30s")
			}
			base := "http://" + proc.HTTPAddr()
			call := func(method, url, authorization string) int {
				req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
				if authorization != "" {
					req.Header.Set("Authorization", authorization)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for _, c := range []struct {
				method, url, auth string
				want              int
			}{
				{"GET", base + "/healthz", "", 200},
				{"GET", base + "/readyz", "", 200},
				{"POST", base + "/v1/echo", "", 401},
				{"POST", base + "/v1/echo", "Bearer wrong", 401},
				{"GET", base + "/v1/nowhere", "", 404},
			} {
				if got := call(c.method, c.url, c.auth); got != c.want {
					t.Errorf("%s %s (%q) = %d, want %d", c.method, c.url, c.auth, got, c.want)
				}
			}
			if tt.metrics {
				if got := call("GET", base+"/metrics", "Bearer admin-secret"); got != 404 {
					t.Errorf("/metrics on the API port = %d, want 404", got)
				}
				if got := call("GET", "http://"+proc.MetricsAddr()+"/metrics", ""); got != 200 {
					t.Errorf("/metrics on the ops listener = %d, want 200", got)
				}
			} else {
				if got := call("GET", base+"/metrics", ""); got != 401 {
					t.Errorf("/metrics without credential = %d, want 401", got)
				}
				if got := call("GET", base+"/metrics", "Bearer admin-secret"); got != 200 {
					t.Errorf("/metrics with the admin token = %d, want 200", got)
				}
				req, _ := http.NewRequest("GET", base+"/metrics", nil)
				req.Header.Set("Authorization", "Bearer admin-secret")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				// Three 401s so far: /v1/echo twice, /metrics once.
				if want := `eventsync_access_refused_total{status="401"} 3`; !strings.Contains(string(body), want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
		})
	}
}
