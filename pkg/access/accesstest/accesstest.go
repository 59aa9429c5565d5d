// Package accesstest runs an access gate in a test the way a process runs
// it: opened on a real JetStream, its registry kept current until the test
// ends, and routers with the gate as their last middleware.
package accesstest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Start opens a gate on js with cfg, runs it until the test ends and
// returns it once its client registry is loaded.
func Start(t testing.TB, js jetstream.JetStream, cfg access.Config) *access.Gate {
	t.Helper()
	gate, err := access.Open(t.Context(), js, cfg, stream.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open access gate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gate.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("access gate Run: %v", err)
		}
	})
	if err := gate.Ready(t.Context()); err != nil {
		t.Fatalf("access gate not ready: %v", err)
	}
	return gate
}

// Router returns a router whose every route is guarded by gate, as a
// process's router is: mount the routes under test on it.
func Router(gate *access.Gate) chi.Router {
	r := chi.NewRouter()
	r.Use(gate.Middleware(r))
	return r
}
