package notifier

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/stream"
)

// A worker that cannot start because its consumers cannot be created (in
// a JetStream cluster: during a leader election) is started again later
// instead of leaving the subscription undelivered on this instance.
func TestWorkerStartIsRetried(t *testing.T) {
	e := newBareEnv(t)
	failed := make(chan struct{}, 1)
	log := slog.New(signalHandler{msg: "start subscription worker failed; retrying", c: failed})
	svc, err := New(e.cfg, e.js, e.kv, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	r := chi.NewRouter()
	svc.Mount(r)
	e.api = httptest.NewServer(r)
	t.Cleanup(e.api.Close)

	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"A.*"}})
	rc.secret = s.Secret
	eventually(t, 5*time.Second, "worker started", func() bool { return svc.running() == 1 })
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/pause", nil, nil); code != http.StatusOK {
		t.Fatalf("pause = %d", code)
	}
	eventually(t, 5*time.Second, "worker stopped", func() bool { return svc.running() == 0 })

	// Without its stream the subscription's consumers cannot be created,
	// so resuming cannot start the worker.
	if err := e.js.DeleteStream(t.Context(), stream.Events); err != nil {
		t.Fatal(err)
	}
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/resume", nil, nil); code != http.StatusOK {
		t.Fatalf("resume = %d", code)
	}
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker start did not fail without the EVENTS stream")
	}

	// Once the stream is back the worker starts by itself and delivers.
	if err := stream.Ensure(t.Context(), e.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	ev := e.publish("A.X")
	if got := rc.wait(1, 15*time.Second); got[0].ID != ev.ID {
		t.Errorf("delivered %s; want %s", got[0].ID, ev.ID)
	}
}

func TestRestartWait(t *testing.T) {
	for _, tt := range []struct {
		attempt int
		want    time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {100, 30 * time.Second},
	} {
		if got := restartWait(tt.attempt); got != tt.want {
			t.Errorf("restartWait(%d) = %s; want %s", tt.attempt, got, tt.want)
		}
	}
}

// signalHandler is a slog handler that signals c when a record with
// message msg is logged, and drops every record.
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
