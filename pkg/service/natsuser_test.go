package service_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventsync/eventsync/pkg/natsembed"
	"github.com/eventsync/eventsync/pkg/service"
)

// startWithUser starts a NATS server that accepts only the user svc with
// the password svc-secret-1.
func startWithUser(t *testing.T) (*server.Server, natsembed.Config) {
	t.Helper()
	c := natsembed.Config{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(),
		Users: []*server.User{{Username: "svc", Password: "svc-secret-1"}}}
	ns, err := natsembed.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns, c
}

// TestNATSUser: a program logs in to NATS with --nats-user and
// --nats-password (NATS_USER, NATS_PASSWORD) and becomes ready.
func TestNATSUser(t *testing.T) {
	ns, _ := startWithUser(t)
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flags", []string{"--nats-url", ns.ClientURL(), "--nats-user", "svc", "--nats-password", "svc-secret-1"}, nil},
		{"environment", nil, map[string]string{"NATS_URL": ns.ClientURL(), "NATS_USER": "svc", "NATS_PASSWORD": "svc-secret-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			part := &echo{}
			base, proc, _, _ := startEnv(t, service.Program{Parts: []service.Part{part}}, tt.env, tt.args...)
			waitReady(t, proc)
			if code, _, body := get(t, base+"/readyz"); code != http.StatusOK {
				t.Errorf("GET /readyz = %d %q; want 200", code, body)
			}
			if got := part.d.NC.ConnectedServerId(); got != ns.ID() {
				t.Errorf("connected to server %q; want %q", got, ns.ID())
			}
		})
	}
}

// TestNATSUserWrongPassword: a program whose NATS password is refused
// waits like for a NATS server that is down: it stays up, /readyz says
// what it waits for, and it never exits because of it. Once the server
// accepts the password (the user was created or changed after the
// program started), it becomes ready without a restart.
func TestNATSUserWrongPassword(t *testing.T) {
	ns, c := startWithUser(t)
	part := &echo{}
	base, proc, done, _ := startEnv(t, service.Program{Parts: []service.Part{part}}, nil,
		"--nats-url", ns.ClientURL(), "--nats-user", "svc", "--nats-password", "svc-secret-2")

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body := get(t, base+"/readyz")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("GET /readyz with a wrong password = %d %q; want 503", code, body)
		}
		if strings.Contains(body, "nats") && strings.Contains(strings.ToLower(body), "authorization") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %q; want it to name nats and the authorization error", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, _, body := get(t, base+"/readyz"); strings.Contains(body, "svc-secret") {
		t.Error("/readyz shows the password")
	}
	// Past the client's default of giving up after the same
	// authorization error twice.
	time.Sleep(2 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("process exited while its password was refused: %v", err)
	default:
	}
	if part.runs.Load() != 0 {
		t.Error("part ran before NATS was reachable")
	}

	c.Users = []*server.User{{Username: "svc", Password: "svc-secret-2"}}
	if err := natsembed.Reload(ns, c); err != nil {
		t.Fatal(err)
	}
	waitReady(t, proc)
	if code, _, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz once the password is accepted = %d %q; want 200", code, body)
	}
}

// startEnv starts p with args and the environment environ on a free port,
// without authentication, and runs it until the test ends.
func startEnv(t *testing.T, p service.Program, environ map[string]string, args ...string) (base string, proc *service.Process, done <-chan error, stop func()) {
	t.Helper()
	if p.Name == "" {
		p.Name = "test"
	}
	args = append([]string{"--http-addr", "127.0.0.1:0", "--log-level", "error", "--auth", "none"}, args...)
	p.Rules = echoRules
	ctx, cancel := context.WithCancel(context.Background())
	proc, err := service.Start(ctx, p, args, env(environ), io.Discard)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	errc, finished := make(chan error, 1), make(chan struct{})
	go func() { errc <- proc.Run(ctx); close(finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
			t.Error("process did not stop within 30s")
		}
	})
	return "http://" + proc.HTTPAddr(), proc, errc, cancel
}
