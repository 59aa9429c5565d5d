// Package httpserve runs EventSync's HTTP servers with timeouts and size
// limits set and a graceful shutdown, serves the operational endpoints
// every service has (/healthz, /readyz and /metrics), and provides the
// middleware every route runs behind (Stack): request ids, recovery, access
// logs, CORS and body limits.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults of Options.
const (
	// DefaultReadHeaderTimeout cuts off clients that send their headers
	// slowly (slowloris) before they tie up a connection for long.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds a request from the end of its headers to
	// the end of its response. No EventSync response streams; a handler
	// that ever does must lift its deadline with
	// http.ResponseController.SetWriteDeadline.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout closes keep-alive connections left unused.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultShutdownTimeout is how long Run waits for requests in flight.
	DefaultShutdownTimeout = 10 * time.Second
)

// Options are the limits of a Server. A zero field takes its default.
type Options struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	ShutdownTimeout   time.Duration
}

// withDefaults returns o with its zero fields set to the defaults.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&o.ReadTimeout, DefaultReadTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return o
}

// Server is an HTTP server with a Run method.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	shutdown time.Duration
}

// Listen binds addr now, so that callers know the port before Run (and a
// busy port fails start-up rather than a goroutine later). The server has
// the default limits of Options.
func Listen(addr string, h http.Handler, shutdownTimeout time.Duration) (*Server, error) {
	return ListenWith(addr, h, Options{ShutdownTimeout: shutdownTimeout})
}

// ListenWith is Listen with the limits in o.
func ListenWith(addr string, h http.Handler, o Options) (*Server, error) {
	o = o.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: o.ReadHeaderTimeout,
			ReadTimeout:       o.ReadTimeout,
			WriteTimeout:      o.WriteTimeout,
			IdleTimeout:       o.IdleTimeout,
			MaxHeaderBytes:    o.MaxHeaderBytes,
		},
		ln:       ln,
		shutdown: o.ShutdownTimeout,
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close releases the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }

// Run serves until ctx is done, then stops accepting requests and waits up
// to the shutdown timeout for the ones in flight.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Readiness is the state /readyz reports: ready once start-up finished and
// every check passes, not ready again once shutdown began. Until then it
// says what the process is waiting for.
type Readiness struct {
	ready   atomic.Bool
	waiting atomic.Pointer[string]
	checks  []func(context.Context) error
}

// NewReadiness returns a Readiness that is not ready yet.
func NewReadiness(checks ...func(context.Context) error) *Readiness {
	return &Readiness{checks: checks}
}

// Set marks the process ready or not.
func (r *Readiness) Set(ready bool) { r.ready.Store(ready) }

// Waiting records what start-up is waiting for ("nats: no servers
// available"); /readyz names it while the process is not ready.
func (r *Readiness) Waiting(what string) { r.waiting.Store(&what) }

// AddCheck adds a check that must pass for the process to be ready. Call
// it before the process is marked ready.
func (r *Readiness) AddCheck(c func(context.Context) error) { r.checks = append(r.checks, c) }

// Check returns nil when the process is ready.
func (r *Readiness) Check(ctx context.Context) error {
	if !r.ready.Load() {
		if w := r.waiting.Load(); w != nil && *w != "" {
			return errors.New("starting: " + *w)
		}
		return errors.New("not started or shutting down")
	}
	for _, c := range r.checks {
		if err := c(ctx); err != nil {
			return err
		}
	}
	return nil
}

// MountHealth adds /healthz and /readyz to r.
func MountHealth(r chi.Router, ready *Readiness) {
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready.Check(req.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

// MountMetrics adds /metrics to r.
func MountMetrics(r chi.Router, reg *prometheus.Registry) {
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}

// NewRegistry returns a metrics registry holding the Go runtime and process
// collectors; each command adds its own metrics to it.
func NewRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register runtime metrics: %w", err)
		}
	}
	return reg, nil
}
