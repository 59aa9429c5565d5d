package ingest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
)

// TestGuardsShareRateLimits: two ingest instances, each with its own NATS
// connection, draw a producer's events from one bucket. (How closely the
// limit holds under load is tested in package ratelimit.)
func TestGuardsShareRateLimits(t *testing.T) {
	ns := natstest.Start(t)
	open := func() *Guard {
		js, err := stream.JetStream(ns.Connect(t), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		gate, err := access.Open(t.Context(), js, access.Config{Auth: access.AuthNone}, stream.Config{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		g, err := OpenGuard(t.Context(), js, gate, GuardConfig{RatePerSecond: 1000}, stream.Config{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	first, second := open(), open()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()

	// A token in 1,000 s: nothing refills while the test runs.
	slow := ratelimit.Rate{PerSecond: 0.001, Burst: 5}
	if ok, retry := first.Trust.Limits.Allow("prd_a", slow, 5); !ok {
		t.Fatalf("first instance: Allow(prd_a, 5) = false, %v; want true (a full bucket)", retry)
	}
	if ok, _ := second.Trust.Limits.Allow("prd_a", slow, 1); ok {
		t.Errorf("second instance: Allow(prd_a, 1) = true after the first took the burst; want false")
	}
	if ok, _ := first.Trust.Limits.Allow("prd_a", slow, 1); ok {
		t.Errorf("first instance: Allow(prd_a, 1) = true on an empty bucket; want false")
	}
	if ok, retry := second.Trust.Limits.Allow("prd_b", slow, 5); !ok {
		t.Errorf("second instance: Allow(prd_b, 5) = false, %v; want true (another producer's bucket)", retry)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Guard.Run = %v; want nil when stopped", err)
	}
}
