// Package natstest runs real NATS servers with JetStream for tests, on free
// loopback ports with their data in temporary directories: one server
// (Start) or a JetStream cluster of several (StartCluster) in the test
// process, or a cluster of nats-server processes (StartProcessCluster) for
// tests that need a server to die abruptly, which an in-process server
// cannot.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/natsembed"
)

// account is the account every stream of these servers lives in: they run
// without accounts, so that is the global one.
const account = server.DEFAULT_GLOBAL_ACCOUNT

// Server is an embedded JetStream server that a test can stop and restart
// on the same port with its data intact.
type Server struct {
	t   testing.TB
	cfg natsembed.Config
	srv atomic.Pointer[server.Server] // replaced by Restart
}

// Start starts a server and shuts it down when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	cfg := natsembed.Config{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir()}
	s, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	cfg.Port = s.Addr().(*net.TCPAddr).Port
	srv := &Server{t: t, cfg: cfg}
	srv.srv.Store(s)
	t.Cleanup(srv.Shutdown)
	return srv
}

// URL is the client URL of the server. It stays the same across restarts.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
}

// Name is the server name ("" for a server started by Start).
func (s *Server) Name() string { return s.cfg.Name }

// NATS is the running server (after a Restart, the new one), for what the
// helpers here do not cover, e.g. its monitoring (Jsz, Healthz).
func (s *Server) NATS() *server.Server { return s.srv.Load() }

// Running reports whether the server is up: started and not shut down.
func (s *Server) Running() bool { return s.srv.Load().Running() }

// Shutdown stops the server; Restart brings it back. Stopping a server
// that is not running does nothing.
func (s *Server) Shutdown() {
	srv := s.srv.Load()
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Restart starts the server again on the same ports and data directory.
// It retries for a few seconds while a port is still taken (a client's
// outgoing connection may hold it for a moment).
func (s *Server) Restart() {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		srv, err := natsembed.Start(s.cfg)
		if err == nil {
			s.srv.Store(srv)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("restart nats %s: %v", s.cfg.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Connect returns a client connection to this server alone, closed when
// the test ends. It keeps reconnecting forever, as EventSync's services do.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	return connect(t, s.URL())
}

// IsStreamLeader reports whether this server leads the stream's
// replication group.
func (s *Server) IsStreamLeader(stream string) bool {
	srv := s.srv.Load()
	return srv.Running() && srv.JetStreamIsStreamLeader(account, stream)
}

// Healthy is nil when the server is up and JetStream on it is current: it
// knows the meta leader and every stream and consumer it holds a replica
// of has caught up (the server's /healthz).
func (s *Server) Healthy() error {
	srv := s.srv.Load()
	if !srv.Running() {
		return fmt.Errorf("%s is not running", s.label())
	}
	if h := srv.Healthz(nil); h.Error != "" || h.StatusCode != 200 {
		return fmt.Errorf("%s: %s (%d)", s.label(), h.Error, h.StatusCode)
	}
	return nil
}

func (s *Server) label() string {
	if s.cfg.Name != "" {
		return s.cfg.Name
	}
	return s.URL()
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// errNotYet marks a condition a wait keeps polling for.
var errNotYet = errors.New("not yet")

// waitUntil polls cond every 10 ms until it returns nil, failing the test
// with cond's last error after timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not the case after %s: %v", what, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
