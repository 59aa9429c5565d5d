package apptest

import (
	"context"
	"io"
	"maps"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/services/ingest"
	"github.com/eventsync/eventsync/services/notifier"
	"github.com/eventsync/eventsync/services/query"
	"github.com/eventsync/eventsync/services/store"
)

// ServiceNames are the services StartServices runs, in start order.
var ServiceNames = []string{"ingest", "store", "query", "notifier"}

// Services are the four services run separately in a test, as their
// binaries assemble them (each service's Program).
type Services struct {
	// Base is the URL of each service's HTTP API, by name.
	Base map[string]string
	// Routes are the routes of each service's API, by name.
	Routes map[string]chi.Routes
	// NATSURL is the URL of their NATS server.
	NATSURL string
}

// StartServices runs ingest, store, query and notifier on free loopback
// ports against a NATS server in the test process and a fresh ClickHouse
// database, with env as their environment (NATS_URL and CLICKHOUSE_URL
// added), logging errors only, the store's batches short and the
// notifier's deliveries allowed to loopback. It returns once all four are
// ready; they stop when the test ends.
func StartServices(t testing.TB, env map[string]string) *Services {
	t.Helper()
	ns := natstest.Start(t)
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	env["NATS_URL"], env["CLICKHOUSE_URL"] = ns.URL(), chtest.DSN(t)
	s := &Services{Base: map[string]string{}, Routes: map[string]chi.Routes{}, NATSURL: ns.URL()}
	for _, p := range []service.Program{ingest.Program("test"), store.Program("test"), query.Program("test"), notifier.Program("test")} {
		args := []string{"--http-addr", "127.0.0.1:0", "--log-level", "error"}
		switch p.Name {
		case "store":
			args = append(args, "--batch-wait", "20ms")
		case "notifier":
			args = append(args, "--notify-allow-nets", "127.0.0.0/8,::1/128")
		}
		proc, err := service.Start(t.Context(), p, args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- proc.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", p.Name, err)
			}
		})
		select {
		case <-proc.Started():
		case err := <-done:
			t.Fatalf("%s stopped before it was ready: %v", p.Name, err)
		case <-time.After(readyWait):
			t.Fatalf("%s not ready after %s", p.Name, readyWait)
		}
		s.Base[p.Name] = "http://" + proc.HTTPAddr()
		s.Routes[p.Name] = proc.Routes()
	}
	return s
}
