// Command ingest runs the EventSync ingest service: HTTP and NATS request
// intake that validates events and publishes them to JetStream.
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

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// defaultHTTPAddr is where ingest listens unless told otherwise; the
// healthcheck mode probes the same address.
const defaultHTTPAddr = ":8080"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck": // for container health checks: exit 0 when /readyz answers 200
			return httpserve.Healthcheck(ctx, "ingest", args[1:], getenv, stdout, defaultHTTPAddr)
		case "version":
			fmt.Fprintln(stdout, "ingest", version)
			return nil
		}
	}
	var (
		cfg                         ingest.Config
		gc                          ingest.GuardConfig
		sc                          stream.Config
		natsURL, httpAddr, logLevel string
		shutdownTimeout             time.Duration
	)
	fs := conf.New("ingest", getenv, stdout)
	fs.String(&natsURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	fs.String(&httpAddr, "http-addr", "HTTP_ADDR", defaultHTTPAddr, "HTTP listen address")
	fs.String(&logLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	fs.Duration(&shutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 20*time.Second, "how long to drain requests on shutdown")
	cfg.Flags(fs)
	gc.Flags(fs, ingest.AuthProducers, "")
	fs.Stream(&sc)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := conf.NewLogger(stdout, logLevel)
	if err != nil {
		return err
	}

	nc, err := stream.Connect(natsURL, "eventsync-ingest")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := stream.JetStream(nc, cfg.PublishTimeout)
	if err != nil {
		return err
	}
	if err := stream.Ensure(ctx, js, sc); err != nil {
		return err
	}

	guard, err := ingest.OpenGuard(ctx, js, gc, sc, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return guard.Run(gctx) })
	if err := guard.Ready(gctx); err != nil {
		return err
	}
	if err := guard.CheckStartable(); err != nil {
		return err
	}

	reg, err := httpserve.NewRegistry()
	if err != nil {
		return err
	}
	svc, err := ingest.New(cfg, nc, js, guard.Trust, reg, log)
	if err != nil {
		return err
	}
	ready := httpserve.NewReadiness(stream.Connected(nc))
	r := chi.NewRouter()
	r.Use(httpserve.RequestID, httpserve.CORS(gc.Origins()))
	httpserve.MountOps(r, ready, reg)
	svc.Mount(r)
	guard.Mount(r)
	srv, err := httpserve.Listen(httpAddr, r, shutdownTimeout)
	if err != nil {
		return err
	}
	log.Info("ingest listening", "version", version, "http_addr", srv.Addr(), "nats_url", natsURL, "trust", guard.Describe())

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
