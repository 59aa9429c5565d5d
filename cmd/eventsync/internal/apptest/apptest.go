// Package apptest runs the all-in-one EventSync in a test, configured the
// way an operator configures it: with `eventsync run` flags (and, where a
// test says so, environment variables), never by setting fields, so that
// the all-in-one's internals can change without touching its tests.
package apptest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/app"
	"github.com/go-chi/chi/v5"
)

// Fast are flags for tests that wait on the pipeline: short store batches,
// a quick retry schedule and webhook receivers on loopback.
var Fast = []string{
	"--batch-wait", "20ms",
	"--notify-allow-nets", "127.0.0.0/8,::1/128",
	"--notify-retry-schedule", "0,50ms,100ms",
}

// readyWait bounds the wait for an all-in-one to be ready.
const readyWait = 60 * time.Second

// Running is an all-in-one running for a test.
type Running struct {
	// Base is the URL of its HTTP API.
	Base string
	// NATSURL is the client URL of its embedded NATS server.
	NATSURL string
	// DataDir holds its files.
	DataDir string
	// Routes are the routes of its HTTP API.
	Routes chi.Routes

	t    testing.TB // nil when started by New
	env  map[string]string
	args []string
	stop func() error
}

// Start runs `eventsync run` with args on free loopback ports (unless args
// set --http-addr or --nats-addr), its data in a temporary directory
// (unless args set --data-dir), logging errors only (unless args set
// --log-level; logs show with -v), with the environment in env (nil:
// empty). It returns once the all-in-one is ready; it stops when the test
// ends.
func Start(t testing.TB, env map[string]string, args ...string) *Running {
	t.Helper()
	if value(args, "--data-dir") == "" {
		args = append(slices.Clone(args), "--data-dir", t.TempDir())
	}
	r := &Running{t: t, env: env, args: args}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// New is Start for code without a testing.TB, such as examples: it
// returns start-up errors, and Stop removes the temporary data directory
// it made.
func New(env map[string]string, args ...string) (*Running, error) {
	r := &Running{env: env, args: args}
	var cleanup func()
	if value(args, "--data-dir") == "" {
		dir, err := os.MkdirTemp("", "eventsync-")
		if err != nil {
			return nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		r.args = append(slices.Clone(args), "--data-dir", dir)
	}
	if err := r.start(); err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, err
	}
	if cleanup != nil {
		stop := r.stop
		r.stop = func() error {
			defer cleanup()
			return stop()
		}
	}
	return r, nil
}

// Stop stops it (a test's is also stopped when the test ends) and fails
// the test if it did not stop cleanly. Stopping twice is harmless.
func (r *Running) Stop() {
	if err := r.stop(); err != nil {
		if r.t == nil {
			fmt.Fprintln(os.Stderr, "eventsync run:", err)
			return
		}
		r.t.Errorf("eventsync run: %v", err)
	}
}

// Restart stops it and starts it again with the same flags and data
// directory, on new free ports (unless the flags fix them): Base and
// NATSURL change. It is for a Running from Start: it fails the test if
// the all-in-one does not start again.
func (r *Running) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// start starts the all-in-one and waits until it is ready.
func (r *Running) start() error {
	args := defaults(r.args, "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1", "--log-level", "error")
	var logs io.Writer = io.Discard
	if testing.Testing() && testing.Verbose() {
		logs = os.Stderr
	}
	a, err := app.Start(context.Background(), args, func(k string) string { return r.env[k] }, logs, "test")
	if err != nil {
		return fmt.Errorf("eventsync run %q: %w", args, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
		})
		return stopErr
	}
	select {
	case <-a.Started():
	case err := <-done:
		cancel()
		return fmt.Errorf("eventsync run stopped before it was ready: %w", err)
	case <-time.After(readyWait):
		return errors.Join(fmt.Errorf("eventsync run not ready after %s", readyWait), r.stop())
	}
	r.Base, r.NATSURL, r.DataDir = "http://"+a.HTTPAddr(), "nats://"+a.NATSAddr(), value(args, "--data-dir")
	r.Routes = a.Routes()
	return nil
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
