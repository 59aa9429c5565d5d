// Package apptest runs the all-in-one EventSync in a test, configured the
// way an operator configures it: with `eventsync run` flags.
package apptest

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/app"
)

// Fast are flags for tests that wait on the pipeline: short store batches,
// a quick retry schedule and webhook receivers on loopback.
var Fast = []string{
	"--batch-wait", "20ms",
	"--notify-allow-nets", "127.0.0.0/8,::1/128",
	"--notify-retry-schedule", "0,50ms,100ms",
}

// Running is an all-in-one running for a test.
type Running struct {
	// Base is the URL of its HTTP API.
	Base string
	// NATSURL is the client URL of its embedded NATS server.
	NATSURL string
	// DataDir holds its files.
	DataDir string
	stop    func()
}

// Stop stops it (it is also stopped when the test ends) and fails the
// test if it did not stop cleanly.
func (r *Running) Stop() { r.stop() }

// Start runs `eventsync run` with args on free loopback ports (unless args
// set --http-addr or --nats-addr), its data in a temporary directory
// (unless args set --data-dir), logging errors only (unless args set
// --log-level), with the environment in env (nil: empty). It returns once
// the all-in-one is ready.
func Start(t testing.TB, env map[string]string, args ...string) *Running {
	t.Helper()
	args = defaults(args, "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1", "--log-level", "error")
	dir := value(args, "--data-dir")
	if dir == "" {
		dir = t.TempDir()
		args = append(args, "--data-dir", dir)
	}
	var logs io.Writer = io.Discard
	if testing.Verbose() {
		logs = os.Stderr
	}
	a, err := app.Start(t.Context(), args, func(k string) string { return env[k] }, logs, "test")
	if err != nil {
		t.Fatalf("eventsync run %v: %v", args, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("eventsync run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-a.Started():
	case err := <-done:
		t.Fatalf("eventsync run stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("eventsync run not ready after 60s")
	}
	return &Running{Base: "http://" + a.HTTPAddr(), NATSURL: "nats://" + a.NATSAddr(), DataDir: dir, stop: stop}
}

// defaults appends each flag of kv (flag, value, flag, value …) that args
// does not set.
func defaults(args []string, kv ...string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(kv); i += 2 {
		if value(args, kv[i]) == "" {
			out = append(out, kv[i], kv[i+1])
		}
	}
	return out
}

// value returns the value args give the flag (as "--f v" or "--f=v").
func value(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}
