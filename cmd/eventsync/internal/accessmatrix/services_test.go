package accessmatrix

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/services/ingest"
	"github.com/eventsync/eventsync/services/notifier"
	"github.com/eventsync/eventsync/services/query"
	"github.com/eventsync/eventsync/services/store"
)

// TestServices runs the matrix on the four services run separately, as
// their binaries assemble them, against one NATS server and ClickHouse.
func TestServices(t *testing.T) {
	ns := natstest.Start(t)
	dsn := chtest.DSN(t)
	programs := []service.Program{
		{Name: "ingest", Parts: []service.Part{ingest.NewPart()}},
		{Name: "store", Store: chstore.NewOpener(dsn), Parts: []service.Part{store.NewPart()}},
		{Name: "query", Store: chstore.NewOpener(dsn), Parts: []service.Part{query.NewPart()}},
		{Name: "notifier", Parts: []service.Part{notifier.NewPart()}},
	}
	getenv := func(k string) string {
		if k == "NATS_URL" {
			return ns.URL()
		}
		return env[k]
	}
	bases := map[string]string{}
	var routes []chi.Routes
	for _, p := range programs {
		p.Version, p.HTTPAddr, p.AuthDefault = "test", "127.0.0.1:0", access.AuthClients
		args := []string{"--log-level", "error"}
		if p.Name == "store" {
			args = append(args, "--batch-wait", "20ms")
		}
		if p.Name == "notifier" {
			args = append(args, "--notify-allow-nets", "127.0.0.0/8")
		}
		proc, err := service.Start(t.Context(), p, args, getenv, io.Discard)
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
		case <-time.After(60 * time.Second):
			t.Fatalf("%s not ready after 60 s", p.Name)
		}
		bases[p.Name] = "http://" + proc.HTTPAddr()
		routes = append(routes, proc.Routes())
	}
	// Where each route is served: the README's routing table.
	serviceOf := func(method, pattern string) string {
		for i, name := range []string{"ingest", "store", "query", "notifier"} {
			if routes[i].Find(chi.NewRouteContext(), method, pattern) == pattern {
				return name
			}
		}
		return "ingest"
	}
	run(t, target{base: func(method, pattern string) string { return bases[serviceOf(method, pattern)] }, routes: routes})
}
