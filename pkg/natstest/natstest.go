// Package natstest runs a real NATS server with JetStream in the test
// process, on a free loopback port with its data in a temporary directory.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/natsembed"
)

// Server is an embedded JetStream server that a test can stop and restart
// on the same port with its data intact.
type Server struct {
	t   testing.TB
	cfg natsembed.Config
	srv *server.Server
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
	srv := &Server{t: t, cfg: cfg, srv: s}
	t.Cleanup(srv.Shutdown)
	return srv
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Shutdown stops the server; Restart brings it back.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Restart starts the server again on the same port and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	srv, err := natsembed.Start(s.cfg)
	if err != nil {
		s.t.Fatalf("restart nats: %v", err)
	}
	s.srv = srv
}

// Connect returns a client connection closed when the test ends. It keeps
// reconnecting forever, as EventSync's services do.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
