// Command query runs the EventSync query service: the HTTP read API over
// events and delivery attempts stored in ClickHouse.
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
	"github.com/eventsync/eventsync/services/query"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// defaultHTTPAddr is where query listens unless told otherwise; the
// healthcheck mode probes the same address.
const defaultHTTPAddr = ":8082"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck": // for container health checks: exit 0 when /readyz answers 200
			return httpserve.Healthcheck(ctx, "query", args[1:], getenv, stdout, defaultHTTPAddr)
		case "version":
			fmt.Fprintln(stdout, "query", version)
			return nil
		}
	}
	var (
		natsURL, chURL, httpAddr, logLevel string
		shutdownTimeout                    time.Duration
	)
	fs := conf.New("query", getenv, stdout)
	fs.String(&natsURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL (for the store's committed watermarks)")
	fs.String(&chURL, "clickhouse-url", "CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/eventsync", "ClickHouse DSN (native protocol)")
	fs.String(&httpAddr, "http-addr", "HTTP_ADDR", defaultHTTPAddr, "HTTP listen address")
	fs.String(&logLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	fs.Duration(&shutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 20*time.Second, "how long to drain requests on shutdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := conf.NewLogger(stdout, logLevel)
	if err != nil {
		return err
	}

	nc, err := stream.Connect(natsURL, "eventsync-query")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := stream.JetStream(nc, 5*time.Second)
	if err != nil {
		return err
	}
	// The query service opens ClickHouse lazily from the driver's point of
	// view: if it is down, reads answer 503 until it is back.
	db, err := chstore.Open(ctx, chURL)
	if err != nil {
		return err
	}
	defer db.Close()

	reg, err := httpserve.NewRegistry()
	if err != nil {
		return err
	}
	ready := httpserve.NewReadiness(stream.Connected(nc), db.Ping)
	r := chi.NewRouter()
	httpserve.MountOps(r, ready, reg)
	deliveries := stream.NewConsumerWatermark(js, stream.Deliveries, stream.StoreDeliveriesConsumer)
	query.New(db, stream.NewWatermark(js), deliveries, log).Mount(r)
	live, err := query.NewLive(ctx, js, stream.Config{}, log)
	if err != nil {
		return err
	}
	live.Mount(r)
	srv, err := httpserve.Listen(httpAddr, r, shutdownTimeout)
	if err != nil {
		return err
	}
	log.Info("query listening", "version", version, "http_addr", srv.Addr(), "nats_url", natsURL)
	ready.Set(true)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return live.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	<-gctx.Done()
	ready.Set(false)
	return g.Wait()
}
