package store

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// A store that starts before its streams exist (or while a JetStream
// cluster cannot create consumers) waits for them instead of failing.
func TestStoreWaitsForItsStreams(t *testing.T) {
	ns := natstest.Start(t)
	js, err := stream.JetStream(ns.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := open(t, backends[0].locate(t))
	retrying := make(chan struct{}, 1)
	svc, err := New(Config{BatchWait: 20 * time.Millisecond}, js, d, slog.New(signalHandler{msg: "open failed; retrying", c: retrying}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-retrying:
	case err := <-done:
		t.Fatalf("Run without streams = %v; want it to wait for them", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no retry of the consumer creation within 10s")
	}
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	e := &env{ns: ns, js: js}
	e.publish(t, 0, 10)
	waitStored(t, d, 10)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
}

// signalHandler is a slog handler that signals c when a record with
// message msg is logged.
type signalHandler struct {
	msg string
	c   chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h signalHandler) WithGroup(string) slog.Handler            { return h }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.c <- struct{}{}:
		default:
		}
	}
	return nil
}
