// Package service assembles an EventSync process. The four service
// binaries (ingest, store, query, notifier) and the all-in-one `eventsync
// run` are each a Program: a list of Parts plus where NATS and the event
// store come from. Run does everything else the same way for all of them:
//
//	flags and env → config, validated before anything connects
//	→ logger → HTTP server with the one middleware stack and /healthz,
//	  /readyz, /metrics (not ready yet)
//	→ NATS (waiting with back-off while it is unreachable)
//	→ every stream and bucket from one stream configuration
//	→ the event store, if the program has one (waiting with back-off)
//	→ each part opened, mounted and run → ready
//	→ on stop: not ready, HTTP drained and parts stopped within the
//	  shutdown timeout, NATS drained, the store closed, the broker stopped.
//
// While it waits for a dependency the process stays up and /readyz says
// what it waits for; it never exits because NATS or ClickHouse is down.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Deps are the clients a process shares among its parts.
type Deps struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Stream stream.Config    // replicas and limits of every stream and bucket
	Store  eventstore.Store // nil unless the program has an event store
	// Gate authenticates every request; parts use its client registry and
	// authenticator (ingest, for NATS requests) and its tokens (query).
	Gate    *access.Gate
	Metrics *prometheus.Registry
	Log     *slog.Logger
	Ready   *httpserve.Readiness // parts may add readiness checks in Open
	// ShutdownTimeout bounds how long a part may take to finish its work
	// in hand once its Run context is done.
	ShutdownTimeout time.Duration
	Version         string
}

// A Part is one service inside a process: ingest, store, query or
// notifier. Flags and Validate run before anything connects; Open builds
// the part from the shared clients (it starts no goroutines); Mount adds
// its routes; Run blocks until ctx is done and returns nil on a clean stop.
//
// A part may also implement Ready(ctx) error, which blocks until it can
// serve (the process is not ready before), MaxBody() int64, the largest
// request body its routes accept, and WrapRouter(http.Handler)
// http.Handler, which wraps the whole router, outside the gate (an old
// API answering the gate's refusals in its own format).
type Part interface {
	Flags(fs *conf.Set)
	Validate() error
	Open(ctx context.Context, d Deps) error
	Mount(r chi.Router)
	Run(ctx context.Context) error
}

// A Broker gives a process its NATS server. Without one a program connects
// to --nats-url; the all-in-one's broker starts an embedded server.
type Broker interface {
	Flags(fs *conf.Set)
	// Start returns the URL and options to connect with.
	Start(ctx context.Context) (url string, opts []nats.Option, err error)
	// Stop stops what Start started, after the connection drained.
	Stop()
}

// A StoreOpener opens the event store a program's parts share.
type StoreOpener interface {
	Flags(fs *conf.Set)
	Open(ctx context.Context) (eventstore.Store, error)
	String() string // names the store in logs
}

// Program describes one binary.
type Program struct {
	Name     string // "ingest"; names the NATS connection and the flag set
	Version  string
	HTTPAddr string // default listen address
	// CORSOrigins is the default of --cors-origins.
	CORSOrigins string
	// AuthDefault is the default of --auth; empty: Validate settles it,
	// else clients.
	AuthDefault string
	// Rules are access rules of routes beyond access.Routes (a test's
	// parts); the binaries have none.
	Rules  []access.Rule
	Parts  []Part
	Broker Broker      // nil: a NATS server at --nats-url
	Store  StoreOpener // nil: the program has no event store
	// Flags and Validate add program-wide settings and checks (the
	// all-in-one's exposure rules); both may be nil.
	Flags    func(fs *conf.Set)
	Validate func(c *Common) error
}

// Common are the settings every program has.
type Common struct {
	HTTPAddr        string
	NATSURL         string // empty with a Broker
	NATSUser        string // the process's NATS user; empty: none
	NATSPassword    Secret
	LogLevel        string
	AccessLog       bool
	CORSOrigins     string
	ShutdownTimeout time.Duration
	Stream          stream.Config
	Access          access.Config
	// MetricsAddr is the listen address of /metrics alone (the ops
	// listener); empty: /metrics is on HTTPAddr and needs admin scope.
	MetricsAddr string
}

// Secret is a setting that logs redacted.
type Secret string

// LogValue keeps the secret out of logs.
func (s Secret) LogValue() slog.Value {
	if s == "" {
		return slog.StringValue("")
	}
	return slog.StringValue("[redacted]")
}

// DefaultShutdownTimeout is the default of --shutdown-timeout.
const DefaultShutdownTimeout = 20 * time.Second

func (c *Common) flags(fs *conf.Set, p *Program) {
	fs.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", p.HTTPAddr, "HTTP listen address (API, /healthz, /readyz, and /metrics unless --metrics-addr is set)")
	fs.String(&c.MetricsAddr, "metrics-addr", "METRICS_ADDR", "", "listen address of an ops listener serving /metrics (and /healthz, /readyz) without credentials; empty: /metrics is on --http-addr and needs admin scope")
	if p.Broker == nil {
		fs.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL; several, comma-separated, for a cluster")
		fs.String(&c.NATSUser, "nats-user", "NATS_USER", "", "NATS user of this service (each service has its own, with least permissions); empty: none")
		fs.String((*string)(&c.NATSPassword), "nats-password", "NATS_PASSWORD", "", "password of the NATS user")
	}
	fs.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	fs.Bool(&c.AccessLog, "access-log", "ACCESS_LOG", true, "log every HTTP request at info level")
	fs.String(&c.CORSOrigins, "cors-origins", "CORS_ORIGINS", p.CORSOrigins, "origins browser apps may call the API from, comma-separated; * for any; empty: none")
	fs.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, "how long to finish requests and work in hand on shutdown")
	c.Stream.Flags(fs)
	c.Access.Flags(fs, p.AuthDefault)
}

func (c *Common) validate() error {
	var errs []error
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout must be positive, got %s", c.ShutdownTimeout))
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Origins returns the CORS origins as a list.
func (c Common) Origins() []string {
	var out []string
	for o := range strings.SplitSeq(c.CORSOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// Run parses args and the environment, starts the program and runs it
// until ctx is done. Help goes to stdout and ends in flag.ErrHelp.
func Run(ctx context.Context, p Program, args []string, getenv func(string) string, stdout io.Writer) error {
	proc, err := Start(ctx, p, args, getenv, stdout)
	if err != nil {
		return err
	}
	return proc.Run(ctx)
}

// Process is a started program: its HTTP server listens, nothing else
// runs until Run.
type Process struct {
	p       Program
	common  Common
	log     *slog.Logger
	reg     *prometheus.Registry
	ready   *httpserve.Readiness
	handler atomic.Pointer[http.Handler]
	srv     *httpserve.Server
	ops     *httpserve.Server // /metrics without credentials; nil without --metrics-addr
	started chan struct{}     // closed once every part runs and is ready
	routes  chi.Routes        // the API's routes; set before started is closed
}

// Start parses the settings, validates all of them (every problem at
// once), and binds the HTTP port, so that a bad setting or a busy port is
// an error before anything else starts.
func Start(ctx context.Context, p Program, args []string, getenv func(string) string, stdout io.Writer) (*Process, error) {
	var c Common
	fs := conf.New(p.Name, getenv, stdout)
	c.flags(fs, &p)
	if p.Flags != nil {
		p.Flags(fs)
	}
	if p.Broker != nil {
		p.Broker.Flags(fs)
	}
	if p.Store != nil {
		p.Store.Flags(fs)
	}
	for _, part := range p.Parts {
		part.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if rest := fs.FlagSet().Args(); len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))
	}
	errs := []error{c.validate()}
	if p.Validate != nil {
		errs = append(errs, p.Validate(&c))
	}
	if c.Access.Auth == "" {
		c.Access.Auth = access.AuthClients // nobody settled it: the safe way
	}
	errs = append(errs, c.Access.Validate())
	for _, part := range p.Parts {
		errs = append(errs, part.Validate())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log, err := conf.NewLogger(stdout, c.LogLevel)
	if err != nil {
		return nil, err
	}
	reg, err := httpserve.NewRegistry()
	if err != nil {
		return nil, err
	}
	proc := &Process{p: p, common: c, log: log, reg: reg, ready: httpserve.NewReadiness(), started: make(chan struct{})}
	proc.ready.Waiting("nats")
	// Until the gate is open, only the probes answer.
	starting := proc.router(nil)
	starting.HandleFunc("/*", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.Unavailable("EventSync is starting; see /readyz", time.Second))
	})
	proc.setHandler(starting)
	proc.srv, err = httpserve.Listen(c.HTTPAddr, http.HandlerFunc(proc.serveHTTP), c.ShutdownTimeout)
	if err != nil {
		return nil, err
	}
	if c.MetricsAddr != "" {
		ops := chi.NewRouter()
		httpserve.MountHealth(ops, proc.ready)
		httpserve.MountMetrics(ops, reg)
		if proc.ops, err = httpserve.Listen(c.MetricsAddr, ops, c.ShutdownTimeout); err != nil {
			_ = proc.srv.Close()
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
	}
	return proc, nil
}

// MetricsAddr is where the ops listener serves /metrics; empty without
// --metrics-addr.
func (p *Process) MetricsAddr() string {
	if p.ops == nil {
		return ""
	}
	return p.ops.Addr()
}

// HTTPAddr is where the HTTP server listens.
func (p *Process) HTTPAddr() string { return p.srv.Addr() }

// Common returns the settings every program has, as parsed.
func (p *Process) Common() Common { return p.common }

// Log is the process's logger.
func (p *Process) Log() *slog.Logger { return p.log }

// Started is closed once every part runs and the process is ready.
func (p *Process) Started() <-chan struct{} { return p.started }

// Routes are the routes of the API, once Started is closed (for tests
// that walk them).
func (p *Process) Routes() chi.Routes { return p.routes }

func (p *Process) serveHTTP(w http.ResponseWriter, r *http.Request) {
	(*p.handler.Load()).ServeHTTP(w, r)
}

func (p *Process) setHandler(h http.Handler) { p.handler.Store(&h) }

// router returns a router behind the middleware stack and the gate with
// the ops endpoints mounted. Without a gate (while starting) it has the
// probes only.
func (p *Process) router(gate *access.Gate) chi.Router {
	maxBody := int64(httpserve.DefaultMaxBody)
	for _, part := range p.p.Parts {
		if m, ok := part.(interface{ MaxBody() int64 }); ok {
			maxBody = max(maxBody, m.MaxBody())
		}
	}
	o := httpserve.StackOptions{Log: p.log, AccessLog: p.common.AccessLog, MaxBody: maxBody, Origins: p.common.Origins()}
	if gate != nil {
		o.Guard = gate.Middleware
	}
	r := httpserve.NewRouter(o)
	httpserve.MountHealth(r, p.ready)
	if gate == nil {
		return r
	}
	if p.ops == nil {
		httpserve.MountMetrics(r, p.reg)
	}
	return r
}

// Run connects, opens and runs every part until ctx is done, then shuts
// down in order. It returns the first fatal error, or nil on a clean stop.
func (p *Process) Run(ctx context.Context) error {
	log := p.log
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// HTTP has its own context so that it stops only after readiness
	// went off.
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- p.srv.Run(httpCtx) }()
	if p.ops != nil {
		go func() { _ = p.ops.Run(httpCtx) }() // a scrape lost on shutdown is harmless
	}

	g, gctx := errgroup.WithContext(ctx)
	// What connect opened, for the shutdown to close: set once, read after
	// the parts stopped or the shutdown timeout passed.
	type opened struct {
		d       Deps
		cleanup func()
	}
	var open atomic.Pointer[opened]
	g.Go(func() error {
		d, cleanup, err := p.connect(gctx)
		open.Store(&opened{d, cleanup})
		if err != nil || gctx.Err() != nil {
			return err
		}
		r := p.router(d.Gate)
		var h http.Handler = r
		for _, part := range p.p.Parts {
			part.Mount(r)
			if w, ok := part.(interface {
				WrapRouter(http.Handler) http.Handler
			}); ok {
				h = w.WrapRouter(h)
			}
		}
		p.setHandler(h)
		p.routes = r
		g.Go(func() error { return d.Gate.Run(gctx) })
		for _, part := range p.p.Parts {
			g.Go(func() error { return part.Run(gctx) })
		}
		if err := d.Gate.Ready(gctx); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, part := range p.p.Parts {
			if w, ok := part.(interface{ Ready(context.Context) error }); ok {
				if err := w.Ready(gctx); err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		}
		p.ready.Set(true)
		close(p.started)
		log.Info("ready", "name", p.p.Name, "version", p.p.Version, "http_addr", p.HTTPAddr())
		return nil
	})

	var httpErr error
	httpStopped := false
	select {
	case <-gctx.Done():
	case httpErr = <-httpDone:
		httpStopped = true
	}
	// Shutdown: readiness off, then intake stops (HTTP drains within the
	// shutdown timeout while the parts finish their work in hand), then
	// NATS drains, then the store closes and the broker stops.
	// The whole shutdown fits in the shutdown timeout: what is not done by
	// then is cut off (JetStream redelivers what was not acknowledged).
	deadline := time.Now().Add(p.common.ShutdownTimeout)
	p.ready.Set(false)
	stopHTTP()
	cancel()
	if !httpStopped {
		httpErr = <-httpDone
	}
	partsDone := make(chan error, 1)
	go func() { partsDone <- g.Wait() }()
	var partsErr error
	select {
	case partsErr = <-partsDone:
	case <-time.After(time.Until(deadline)):
		partsErr = fmt.Errorf("parts still running after the shutdown timeout %s", p.common.ShutdownTimeout)
	}
	err := errors.Join(partsErr, httpErr)
	o := open.Load()
	if o == nil {
		return err // still connecting: nothing to close yet
	}
	d := o.d
	if d.NC != nil {
		// A connection that is not up has nothing to drain.
		if d.NC.Status() != nats.CONNECTED {
			d.NC.Close()
		} else if derr := stream.Drain(d.NC, max(time.Until(deadline), minDrain)); derr != nil {
			log.Warn("drain nats", "err", derr)
			d.NC.Close()
		}
	}
	o.cleanup()
	log.Info("stopped", "name", p.p.Name)
	return err
}

// connect brings up what the parts share: NATS, the streams and buckets,
// the event store; then it opens every part. Each dependency is waited
// for with back-off while /readyz names it. cleanup closes what was
// opened, in reverse order, after NATS drained.
func (p *Process) connect(ctx context.Context) (d Deps, cleanup func(), err error) {
	var closers []func()
	cleanup = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			if d.NC != nil {
				d.NC.Close()
			}
			cleanup()
			cleanup = func() {}
			d = Deps{}
		}
	}()
	url, opts := p.common.NATSURL, []nats.Option(nil)
	if p.common.NATSUser != "" {
		// A refused password is retried like an unreachable server: the
		// operator may be fixing the user on the server side.
		opts = append(opts, nats.UserInfo(p.common.NATSUser, string(p.common.NATSPassword)), nats.IgnoreAuthErrorAbort())
	}
	if p.p.Broker != nil {
		url, opts, err = p.p.Broker.Start(ctx)
		if err != nil {
			return d, cleanup, err
		}
		closers = append(closers, p.p.Broker.Stop)
	}
	nc, err := stream.Connect(url, "eventsync-"+strings.ReplaceAll(p.p.Name, " ", "-"), opts...)
	if err != nil {
		return d, cleanup, err
	}
	js, err := stream.JetStream(nc, publishTimeout)
	if err != nil {
		nc.Close()
		return d, cleanup, err
	}
	d = Deps{NC: nc, JS: js, Stream: p.common.Stream, Metrics: p.reg, Log: p.log, Ready: p.ready,
		ShutdownTimeout: p.common.ShutdownTimeout, Version: p.p.Version}
	p.ready.AddCheck(stream.Connected(nc))
	if err := p.wait(ctx, "nats "+redactURL(url), func(ctx context.Context) error {
		err := stream.EnsureAll(ctx, js, p.common.Stream)
		if err != nil && nc.Status() != nats.CONNECTED {
			if last := nc.LastError(); last != nil {
				err = fmt.Errorf("%w (nats connection: %v)", err, last)
			}
		}
		return err
	}); err != nil || ctx.Err() != nil {
		return d, cleanup, err
	}
	if p.p.Store != nil {
		if err := p.wait(ctx, "event store "+p.p.Store.String(), func(ctx context.Context) (err error) {
			d.Store, err = p.p.Store.Open(ctx)
			return err
		}); err != nil || ctx.Err() != nil {
			return d, cleanup, err
		}
		closers = append(closers, func() {
			if err := d.Store.Close(); err != nil {
				p.log.Warn("close event store", "err", err)
			}
		})
		p.ready.AddCheck(d.Store.Ping)
	}
	p.ready.Waiting("clients")
	if d.Gate, err = access.Open(ctx, js, p.common.Access, p.common.Stream, p.log); err != nil {
		return d, cleanup, err
	}
	d.Gate.AddRules(p.p.Rules...)
	if err := d.Gate.Register(p.reg); err != nil {
		return d, cleanup, err
	}
	p.log.Info("access", "component", "access", "access", d.Gate.Describe())
	for _, part := range p.p.Parts {
		p.ready.Waiting(fmt.Sprintf("opening %T", part))
		if err := part.Open(ctx, d); err != nil {
			return d, cleanup, err
		}
	}
	p.ready.Waiting("parts to be ready")
	return d, cleanup, nil
}

// minDrain is the least time the NATS connection gets to drain on
// shutdown, even when the parts used up the shutdown timeout: its
// pending acknowledgements are worth a moment.
const minDrain = time.Second

// publishTimeout bounds the JetStream context's asynchronous publishes;
// ingest waits for its acks with its own --publish-timeout.
const publishTimeout = 30 * time.Second

// attemptTimeout bounds one attempt to reach a dependency: a JetStream
// request to a server that is not there waits this long.
const attemptTimeout = 5 * time.Second

// wait calls try until it succeeds or ctx is done, backing off between
// attempts and telling /readyz what it waits for:
//
//	attempt  1      2      3      4      5     6+
//	wait     250ms  500ms  1s     2s     4s    5s (cap)
func (p *Process) wait(ctx context.Context, what string, try func(context.Context) error) error {
	p.ready.Waiting(what)
	for attempt := 1; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := try(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil // stopped while waiting: not an error
		}
		d := min(250*time.Millisecond<<min(attempt-1, 5), 5*time.Second)
		p.ready.Waiting(what + ": " + err.Error())
		p.log.Warn("waiting for a dependency", "what", what, "err", err, "attempt", attempt, "retry_in", d)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// redactURL drops credentials from a NATS URL list for logs.
func redactURL(url string) string {
	parts := strings.Split(url, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if s := strings.Index(u, "://"); s >= 0 && s < at {
				parts[i] = u[:s+3] + "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
