package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventserver"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/natsembed"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest"
	"github.com/eventsync/eventsync/services/notifier"
	"github.com/eventsync/eventsync/services/query"
	"github.com/eventsync/eventsync/services/store"
)

// config is the configuration of the all-in-one process.
type config struct {
	HTTPAddr      string
	NATSAddr      string
	DataDir       string
	ClickHouseURL string
	LogLevel      string
	Stream        stream.Config
	Ingest        ingest.Config
	Guard         ingest.GuardConfig
	Insecure      bool
	Store         store.Config
	Notifier      notifier.Config
}

func (c *config) flags(fs *conf.Set) {
	fs.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8080", "HTTP listen address (ingest, query, subscriptions, /healthz, /readyz, /metrics)")
	fs.String(&c.NATSAddr, "nats-addr", "NATS_ADDR", "127.0.0.1:4222", "listen address of the embedded NATS server, for NATS producers")
	fs.String(&c.DataDir, "data-dir", "DATA_DIR", "./data", "where JetStream and the embedded store keep their files")
	fs.String(&c.ClickHouseURL, "clickhouse-url", "CLICKHOUSE_URL", "", "ClickHouse DSN, e.g. clickhouse://127.0.0.1:9000/eventsync; empty: embedded store in the data dir")
	fs.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	c.Stream.Flags(fs)
	c.Ingest.Flags(fs)
	// Auth defaults to none while everything listens on loopback (see
	// checkExposure); browsers on any origin may send, like a dev server.
	c.Guard.Flags(fs, "", "*")
	fs.Bool(&c.Insecure, "insecure", "INSECURE", false, "allow listening on a non-loopback address without producer authentication")
	c.Store.Flags(fs)
	c.Notifier.Flags(fs)
}

// backend is an event store: ClickHouse or the embedded one.
type backend interface {
	Insert(ctx context.Context, events []event.Event) error
	Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error)
	Event(ctx context.Context, id string) (event.Event, error)
	Stats(ctx context.Context, f eventstore.StatsFilter) ([]eventstore.Count, error)
	InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error
	Attempts(ctx context.Context, f delivery.Filter) ([]delivery.Attempt, error)
	Ping(ctx context.Context) error
	Close() error
}

func runAll(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var cfg config
	fs := conf.New("eventsync run", getenv, stdout)
	cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := conf.NewLogger(stdout, cfg.LogLevel)
	if err != nil {
		return err
	}
	a, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "EventSync %s is running\n  HTTP   http://%s  (POST /v1/events, GET /v1/events, /v1/subscriptions)\n  NATS   nats://%s  (request eventsync.ingest)\n  store  %s\n  data   %s\nPress Ctrl-C to stop.\n",
		version, a.HTTPAddr(), a.NATSAddr(), a.storeName, cfg.DataDir)
	return a.Run(ctx)
}

// app is a started all-in-one EventSync.
type app struct {
	cfg       config
	log       *slog.Logger
	ns        *server.Server
	nc        *nats.Conn
	db        backend
	storeName string
	ready     *httpserve.Readiness
	srv       *httpserve.Server
	ingest    *ingest.Service
	store     *store.Service
	notifier  *notifier.Service
	guard     *ingest.Guard
	live      *query.Live
}

// start brings up everything but the long-running loops; Run runs them.
// On error, whatever was started is stopped again.
func start(ctx context.Context, cfg config, log *slog.Logger) (a *app, err error) {
	if err := checkExposure(&cfg); err != nil {
		return nil, err
	}
	a = &app{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	host, port, err := natsembed.SplitAddr(cfg.NATSAddr)
	if err != nil {
		return nil, err
	}
	a.ns, err = natsembed.Start(natsembed.Config{Host: host, Port: port, StoreDir: filepath.Join(cfg.DataDir, "nats"), Name: "eventsync"})
	if err != nil {
		return nil, err
	}
	a.nc, err = stream.Connect(a.ns.ClientURL(), "eventsync", nats.InProcessServer(a.ns))
	if err != nil {
		return nil, err
	}
	js, err := stream.JetStream(a.nc, cfg.Ingest.PublishTimeout)
	if err != nil {
		return nil, err
	}
	if err := stream.Ensure(ctx, js, cfg.Stream); err != nil {
		return nil, err
	}
	kv, err := stream.EnsureNotify(ctx, js, cfg.Stream)
	if err != nil {
		return nil, err
	}
	if cfg.ClickHouseURL != "" {
		a.storeName = "clickhouse " + cfg.ClickHouseURL
		a.db, err = store.WaitFor(ctx, log, "clickhouse", func(ctx context.Context) (backend, error) {
			return chstore.Open(ctx, cfg.ClickHouseURL)
		})
	} else {
		path := filepath.Join(cfg.DataDir, "events.db")
		a.storeName = "embedded " + path
		a.db, err = sqlitestore.Open(ctx, path)
	}
	if err != nil {
		return nil, err
	}

	reg, err := httpserve.NewRegistry()
	if err != nil {
		return nil, err
	}
	if a.guard, err = ingest.OpenGuard(ctx, js, cfg.Guard, cfg.Stream, log); err != nil {
		return nil, err
	}
	if a.ingest, err = ingest.New(cfg.Ingest, a.nc, js, a.guard.Trust, reg, log); err != nil {
		return nil, err
	}
	if a.store, err = store.New(cfg.Store, js, a.db, log); err != nil {
		return nil, err
	}
	cfg.Notifier.Stream = cfg.Stream
	if a.notifier, err = notifier.New(cfg.Notifier, js, kv, reg, log); err != nil {
		return nil, err
	}
	a.ready = httpserve.NewReadiness(stream.Connected(a.nc), a.db.Ping)
	r := chi.NewRouter()
	r.Use(httpserve.RequestID, httpserve.CORS(cfg.Guard.Origins()))
	httpserve.MountOps(r, a.ready, reg)
	a.ingest.Mount(r)
	a.guard.Mount(r)
	// The replaced event server's API, translated onto the routes above.
	eventserver.New(r).Mount(r)
	a.notifier.Mount(r)
	query.New(a.db, stream.NewWatermark(js), stream.NewConsumerWatermark(js, stream.Deliveries, stream.StoreDeliveriesConsumer), log).Mount(r)
	if a.live, err = query.NewLive(ctx, js, cfg.Stream, log); err != nil {
		return nil, err
	}
	a.live.Mount(r)
	if a.srv, err = httpserve.Listen(cfg.HTTPAddr, r, 10*time.Second); err != nil {
		return nil, err
	}
	return a, nil
}

// HTTPAddr is where the HTTP API listens.
func (a *app) HTTPAddr() string { return a.srv.Addr() }

// NATSAddr is where the embedded NATS server listens.
func (a *app) NATSAddr() string { return a.ns.Addr().(*net.TCPAddr).String() }

// Run runs until ctx is done, then shuts down in order: readiness off,
// intake stopped, in-flight batches stored and acknowledged, NATS drained,
// the store closed, the NATS server stopped.
func (a *app) Run(ctx context.Context) error {
	defer a.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.srv.Run(gctx) })
	g.Go(func() error { return a.guard.Run(gctx) })
	g.Go(func() error { return a.live.Run(gctx) })
	g.Go(func() error { return a.ingest.Run(gctx) })
	g.Go(func() error { return a.store.Run(gctx) })
	g.Go(func() error { return a.notifier.Run(gctx) })
	// Ready once the registries are loaded; refuse to run with auth on
	// and no way to authenticate.
	err := a.guard.Ready(gctx)
	if err == nil {
		err = a.guard.CheckStartable()
	}
	if err != nil && gctx.Err() == nil {
		cancel()
		_ = g.Wait()
		return err
	}
	a.ready.Set(true)
	<-gctx.Done()
	a.ready.Set(false)
	return g.Wait()
}

func (a *app) close() {
	if a.nc != nil {
		if err := stream.Drain(a.nc, 10*time.Second); err != nil {
			a.log.Warn("drain nats", "err", err)
		}
	}
	if a.db != nil {
		if err := a.db.Close(); err != nil {
			a.log.Warn("close store", "err", err)
		}
	}
	if a.ns != nil {
		a.ns.Shutdown()
		a.ns.WaitForShutdown()
	}
}

// checkExposure settles the auth mode of the all-in-one: none by default
// while HTTP and NATS listen on loopback only, producers otherwise. Without
// authentication, or with the embedded NATS server (which has no
// authentication of its own) reachable from other machines, it refuses a
// non-loopback address unless told --insecure.
func checkExposure(cfg *config) error {
	httpLocal, natsLocal := loopback(cfg.HTTPAddr), loopback(cfg.NATSAddr)
	if cfg.Guard.Auth == "" {
		cfg.Guard.Auth = ingest.AuthProducers
		if httpLocal {
			cfg.Guard.Auth = ingest.AuthNone
		}
	}
	if cfg.Insecure {
		return nil
	}
	if !httpLocal && cfg.Guard.Auth == ingest.AuthNone {
		return fmt.Errorf("refusing to serve HTTP on %s without authentication: use --auth=producers with ADMIN_TOKEN, a loopback address, or --insecure", cfg.HTTPAddr)
	}
	if !natsLocal {
		return fmt.Errorf("refusing to serve the embedded NATS server on %s: it has no authentication; use a loopback address or --insecure", cfg.NATSAddr)
	}
	return nil
}

// loopback reports whether a listen address binds to loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
