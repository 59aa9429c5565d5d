// Package natsembed runs a NATS server with JetStream inside the EventSync
// process: the all-in-one binary and the tests use it.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config places an embedded server.
type Config struct {
	Host     string // listen host, e.g. 127.0.0.1
	Port     int    // client port; -1 picks a free one
	StoreDir string // JetStream data directory
	Name     string // server name
}

// Start starts the server and waits until it accepts connections.
func Start(c Config) (*server.Server, error) {
	opts := &server.Options{
		ServerName: c.Name,
		Host:       c.Host,
		Port:       c.Port,
		JetStream:  true,
		StoreDir:   c.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Events of up to 1 MiB requests go through the ingest request
		// path; leave room for headers.
		MaxPayload: 8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats server: not ready for connections after 10s")
	}
	return s, nil
}

// SplitAddr parses host:port for Config.
func SplitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("nats address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("nats address %q: bad port", addr)
	}
	return host, port, nil
}
