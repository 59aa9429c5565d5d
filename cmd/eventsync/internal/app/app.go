// Package app is the all-in-one EventSync, `eventsync run`: the ingest,
// store, query and notifier parts in one process (see package service)
// around an embedded NATS server with JetStream, storing events in
// ClickHouse when a DSN is given and in an embedded store otherwise. It
// has no wiring of its own beyond those two choices, refusing to expose an
// unauthenticated port, and, with producer authentication, the embedded
// server's users: EventSync's own and one per enabled producer.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
	"github.com/eventsync/eventsync/services/ingest"
	"github.com/eventsync/eventsync/services/notifier"
	"github.com/eventsync/eventsync/services/query"
	"github.com/eventsync/eventsync/services/store"
	"github.com/go-chi/chi/v5"
)

// DefaultHTTPAddr is where the all-in-one listens unless told otherwise.
const DefaultHTTPAddr = "127.0.0.1:8080"

// App is a started all-in-one: its HTTP port is bound; Run runs it.
type App struct {
	proc   *service.Process
	broker *broker
	store  *storeOpener
}

// settings are the all-in-one's own settings; the rest belong to the
// parts and to package service.
type settings struct {
	dataDir  string
	insecure bool
}

// program returns the all-in-one as a service.Program.
func program(version string) (service.Program, *broker, *storeOpener) {
	var s settings
	in := ingest.NewPart()
	b := &broker{settings: &s, log: slog.New(slog.DiscardHandler)}
	st := &storeOpener{settings: &s}
	return service.Program{
		Name:        "eventsync run",
		Version:     version,
		HTTPAddr:    DefaultHTTPAddr,
		CORSOrigins: "*", // browsers on any origin may call it, like a dev server
		Broker:      b,
		Store:       st,
		Parts:       []service.Part{in, newUserSync(b), store.NewPart(), query.NewPart(), notifier.NewPart()},
		Flags: func(fs *conf.Set) {
			fs.String(&s.dataDir, "data-dir", "DATA_DIR", "./data", "where JetStream and the embedded store keep their files")
			fs.Bool(&s.insecure, "insecure", "INSECURE", false, "allow listening on a non-loopback address (HTTP or NATS) without producer authentication")
		},
		// AuthDefault is empty: checkExposure settles it.
		Validate: func(c *service.Common) error {
			err := checkExposure(c.HTTPAddr, b.addr, &c.Access, s.insecure)
			b.auth = c.Access.Auth
			return errors.Join(err, b.validate(), s.secretsKey(&c.Access))
		},
	}, b, st
}

// SecretsKeyFile is where the all-in-one keeps the key sealing the secrets
// in its buckets when authentication is on and --secrets-key is not set:
// made on first start, mode 0600, in the data directory.
const SecretsKeyFile = "secrets-key"

// secretsKey gives the all-in-one a secrets key from the data
// directory when authentication is on and none is set.
func (s *settings) secretsKey(a *access.Config) error {
	if !a.On() || a.SecretsKey != "" {
		return nil
	}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	k, err := secretFile(filepath.Join(s.dataDir, SecretsKeyFile), "secrets key")
	if err != nil {
		return err
	}
	a.SecretsKey = k
	return a.Validate()
}

// Start parses args and the environment, checks every setting and binds
// the HTTP port; nothing else starts before Run.
func Start(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, version string) (*App, error) {
	p, b, st := program(version)
	proc, err := service.Start(ctx, p, args, getenv, stdout)
	if err != nil {
		return nil, err
	}
	b.log = proc.Log().With("component", "nats")
	return &App{proc: proc, broker: b, store: st}, nil
}

// Run runs until ctx is done, then shuts down in order (see package
// service) and stops the embedded NATS server.
func (a *App) Run(ctx context.Context) error { return a.proc.Run(ctx) }

// HTTPAddr is where the HTTP API listens.
func (a *App) HTTPAddr() string { return a.proc.HTTPAddr() }

// NATSAddr is where the embedded NATS server listens (once started).
func (a *App) NATSAddr() string { return a.broker.listenAddr() }

// Started is closed once every part runs and the process is ready.
func (a *App) Started() <-chan struct{} { return a.proc.Started() }

// Routes are the routes of the HTTP API, once Started is closed.
func (a *App) Routes() chi.Routes { return a.proc.Routes() }

// Main is `eventsync run`: it starts the all-in-one, prints where it
// listens once it is ready, and runs until ctx is done.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, version string) error {
	a, err := Start(ctx, args, getenv, stdout, version)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-a.Started():
			fmt.Fprintf(stdout, "EventSync %s is running\n  HTTP   http://%s  (POST /v1/events, GET /v1/events, /v1/subscriptions)\n  NATS   nats://%s  (request eventsync.ingest; %s)\n  store  %s\n  data   %s\nPress Ctrl-C to stop.\n",
				version, a.HTTPAddr(), a.NATSAddr(), a.broker.access(), a.store, a.store.settings.dataDir)
		case <-ctx.Done():
		}
	}()
	return a.Run(ctx)
}

// Healthcheck is `eventsync healthcheck`: it probes /readyz on the address
// `eventsync run` listens on with the same environment.
func Healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	p, _, _ := program("")
	return service.Healthcheck(ctx, p, args, getenv, stdout)
}

// storeOpener opens ClickHouse when --clickhouse-url is set, else the
// embedded store in the data directory.
type storeOpener struct {
	settings *settings
	ch       chstore.Opener
}

func (s *storeOpener) Flags(fs *conf.Set) {
	fs.String(&s.ch.DSN, "clickhouse-url", "CLICKHOUSE_URL", "", "ClickHouse DSN, e.g. clickhouse://127.0.0.1:9000/eventsync; empty: embedded store in the data dir")
}

func (s *storeOpener) Open(ctx context.Context) (eventstore.Store, error) {
	if s.ch.DSN != "" {
		return s.ch.Open(ctx)
	}
	return sqlitestore.Open(ctx, s.path())
}

func (s *storeOpener) path() string { return filepath.Join(s.settings.dataDir, "events.db") }

func (s *storeOpener) String() string {
	if s.ch.DSN != "" {
		return s.ch.String()
	}
	return "embedded " + s.path()
}

// checkExposure settles the auth mode of the all-in-one: none by default
// while HTTP and NATS listen on loopback only, producers otherwise. With
// producers the embedded NATS server requires a user too; without
// authentication both are open, so it refuses a non-loopback address for
// either unless told --insecure.
func checkExposure(httpAddr, natsAddr string, g *access.Config, insecure bool) error {
	httpLocal, natsLocal := loopback(httpAddr), loopback(natsAddr)
	if g.Auth == "" {
		g.Auth = access.AuthClients
		if httpLocal && natsLocal {
			g.Auth = access.AuthNone
		}
	}
	if insecure || g.Auth != access.AuthNone {
		return nil
	}
	var errs []error
	if !httpLocal {
		errs = append(errs, fmt.Errorf("refusing to serve HTTP on %s without authentication: use --auth=clients with ADMIN_TOKEN, a loopback address, or --insecure", httpAddr))
	}
	if !natsLocal {
		errs = append(errs, fmt.Errorf("refusing to serve the embedded NATS server on %s without authentication: use --auth=clients with ADMIN_TOKEN, a loopback address, or --insecure", natsAddr))
	}
	return errors.Join(errs...)
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
