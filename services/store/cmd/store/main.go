// Command store runs the EventSync store service: it consumes the EVENTS
// and DELIVERIES streams and writes events and delivery attempts to
// ClickHouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/sync/errgroup"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/store"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// defaultHTTPAddr is where store listens unless told otherwise; the
// healthcheck mode probes the same address.
const defaultHTTPAddr = ":8081"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "store:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck": // for container health checks: exit 0 when /readyz answers 200
			return httpserve.Healthcheck(ctx, "store", args[1:], getenv, stdout, defaultHTTPAddr)
		case "version":
			fmt.Fprintln(stdout, "store", version)
			return nil
		}
	}
	var (
		cfg                                store.Config
		sc                                 stream.Config
		natsURL, chURL, httpAddr, logLevel string
	)
	fs := conf.New("store", getenv, stdout)
	fs.String(&natsURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	fs.String(&chURL, "clickhouse-url", "CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/eventsync", "ClickHouse DSN (native protocol)")
	fs.String(&httpAddr, "http-addr", "HTTP_ADDR", defaultHTTPAddr, "HTTP listen address of /healthz, /readyz and /metrics")
	fs.String(&logLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	cfg.Flags(fs)
	fs.Stream(&sc)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := conf.NewLogger(stdout, logLevel)
	if err != nil {
		return err
	}

	nc, err := stream.Connect(natsURL, "eventsync-store")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := stream.JetStream(nc, 5*time.Second)
	if err != nil {
		return err
	}
	if err := stream.Ensure(ctx, js, sc); err != nil {
		return err
	}
	db, err := store.WaitFor(ctx, log, "clickhouse", func(ctx context.Context) (*chstore.Store, error) {
		return chstore.Open(ctx, chURL)
	})
	if err != nil {
		return err
	}
	defer db.Close()

	svc, err := store.New(cfg, js, db, log)
	if err != nil {
		return err
	}
	reg, err := httpserve.NewRegistry()
	if err != nil {
		return err
	}
	ready := httpserve.NewReadiness(stream.Connected(nc), db.Ping)
	r := chi.NewRouter()
	httpserve.MountOps(r, ready, reg)
	srv, err := httpserve.Listen(httpAddr, r, 5*time.Second)
	if err != nil {
		return err
	}
	log.Info("store running", "version", version, "http_addr", srv.Addr(), "nats_url", natsURL)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	ready.Set(true)
	<-gctx.Done()
	ready.Set(false)
	err = g.Wait()
	if derr := stream.Drain(nc, 10*time.Second); derr != nil && err == nil {
		err = derr
	}
	return err
}
