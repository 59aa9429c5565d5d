// Package servicetest runs an EventSync binary's run function in a test,
// as its main would: on a free loopback port, stopped (like SIGTERM) when
// the test ends.
package servicetest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// RunFunc is the signature of a binary's run function.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error

// Process is a binary running in the test.
type Process struct {
	// Base is the URL of its HTTP server, http://127.0.0.1:<port>.
	Base   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	out    *syncBuffer
}

// Start runs run with args (plus --http-addr on a free port, unless args
// set it) and env as its environment. It does not wait for readiness: see
// WaitReady.
func Start(t testing.TB, run RunFunc, env map[string]string, args ...string) *Process {
	t.Helper()
	addr := ""
	for i, a := range args {
		if a == "--http-addr" && i+1 < len(args) {
			addr = args[i+1]
		}
	}
	if addr == "" {
		addr = FreeAddr(t)
		args = append([]string{"--http-addr", addr}, args...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Process{Base: "http://" + addr, cancel: cancel, done: make(chan struct{}), out: &syncBuffer{}}
	go func() {
		defer close(p.done)
		p.err = run(ctx, args, func(k string) string { return env[k] }, p.out)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of the process:\n%s", p.Output())
		}
	})
	return p
}

// Stop cancels the process's context, as SIGTERM does, and returns what
// run returned.
func (p *Process) Stop() error {
	p.cancel()
	<-p.done
	return p.err
}

// Done is closed once run returned; Err is then what it returned.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is what run returned (call after Done).
func (p *Process) Err() error { return p.err }

// Output is what the process wrote to stdout (its JSON logs).
func (p *Process) Output() string { return p.out.String() }

// Ready reports the status and body of GET /readyz.
func (p *Process) Ready() (int, string) {
	resp, err := http.Get(p.Base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// WaitReady waits until /readyz answers 200, and fails the test if the
// process exits or is not ready within timeout.
func (p *Process) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	p.WaitUntil(t, timeout, "ready", func(code int, _ string) bool { return code == http.StatusOK })
}

// WaitUntil waits until the /readyz answer satisfies cond.
func (p *Process) WaitUntil(t testing.TB, timeout time.Duration, what string, cond func(code int, body string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			t.Fatalf("process exited before it was %s: %v", what, p.err)
		default:
		}
		code, body := p.Ready()
		if cond(code, body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process not %s after %s: /readyz = %d %q", what, timeout, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servicetest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
