// Command notifier runs the EventSync notifier: the subscription API and
// delivery of events to webhooks, Slack and email.
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
	"github.com/eventsync/eventsync/services/notifier"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// defaultHTTPAddr is where notifier listens unless told otherwise; the
// healthcheck mode probes the same address.
const defaultHTTPAddr = ":8083"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck": // for container health checks: exit 0 when /readyz answers 200
			return httpserve.Healthcheck(ctx, "notifier", args[1:], getenv, stdout, defaultHTTPAddr)
		case "version":
			fmt.Fprintln(stdout, "notifier", version)
			return nil
		}
	}
	var (
		cfg                         notifier.Config
		natsURL, httpAddr, logLevel string
	)
	fs := conf.New("notifier", getenv, stdout)
	fs.String(&natsURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	fs.String(&httpAddr, "http-addr", "HTTP_ADDR", defaultHTTPAddr, "HTTP listen address (subscription API, /healthz, /readyz, /metrics)")
	fs.String(&logLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	cfg.Flags(fs)
	fs.Stream(&cfg.Stream)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := conf.NewLogger(stdout, logLevel)
	if err != nil {
		return err
	}

	nc, err := stream.Connect(natsURL, "eventsync-notifier")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := stream.JetStream(nc, 5*time.Second)
	if err != nil {
		return err
	}
	if err := stream.Ensure(ctx, js, cfg.Stream); err != nil {
		return err
	}
	kv, err := stream.EnsureNotify(ctx, js, cfg.Stream)
	if err != nil {
		return err
	}
	reg, err := httpserve.NewRegistry()
	if err != nil {
		return err
	}
	svc, err := notifier.New(cfg, js, kv, reg, log)
	if err != nil {
		return err
	}
	ready := httpserve.NewReadiness(stream.Connected(nc))
	r := chi.NewRouter()
	httpserve.MountOps(r, ready, reg)
	svc.Mount(r)
	srv, err := httpserve.Listen(httpAddr, r, 5*time.Second)
	if err != nil {
		return err
	}
	log.Info("notifier running", "version", version, "http_addr", srv.Addr(), "nats_url", natsURL)

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
