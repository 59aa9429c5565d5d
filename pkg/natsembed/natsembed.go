// Package natsembed runs a NATS server with JetStream inside the EventSync
// process: the all-in-one binary and the tests use it.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config places an embedded server.
type Config struct {
	Host     string // listen host, e.g. 127.0.0.1
	Port     int    // client port; -1 picks a free one
	StoreDir string // JetStream data directory
	// Name is the server name. Every node of a JetStream cluster needs its
	// own, the same across restarts: JetStream derives the node's identity
	// in the cluster from it.
	Name string
	// Cluster, when set, makes the server one node of a JetStream cluster.
	Cluster *Cluster
	// Sync is how often JetStream flushes its files to disk: 0 keeps the
	// server's default (2 minutes), SyncAlways flushes every write. A
	// publish is acknowledged once written, not once flushed: a crash of
	// the host (power, kernel), unlike a crash of the process, loses what
	// was written since the last flush.
	Sync time.Duration
	// Users, when set, are the only clients the server accepts: every
	// connection, in-process ones included, logs in as one of them; there
	// is no anonymous access (no no_auth_user). A user with nil
	// Permissions may publish and subscribe to anything; a password may be
	// a bcrypt hash, which the server checks itself. Empty: the server
	// accepts anonymous connections. Reload replaces them while the server
	// runs.
	Users []*server.User
}

// SyncAlways as Config.Sync flushes every write to disk before it is
// acknowledged.
const SyncAlways time.Duration = -1

// ParseSync parses a sync setting: "always", or a duration ("2m"; "0" or
// "" for the server's default).
func ParseSync(s string) (time.Duration, error) {
	switch strings.TrimSpace(s) {
	case "always":
		return SyncAlways, nil
	case "", "0":
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("sync interval %q: want always or a positive duration", s)
	}
	return d, nil
}

// Cluster joins an embedded server to a JetStream cluster.
type Cluster struct {
	Name string // cluster name, the same on every node
	Host string // route listen host, e.g. 127.0.0.1
	Port int    // route listen port; -1 picks a free one
	// Routes are the route URLs (nats-route://host:port) of every node of
	// the cluster; a node's own URL may be among them and is ignored. A new
	// cluster sizes its JetStream meta group from their number, so list
	// all nodes, not just one seed.
	Routes []string
}

// Start starts the server and waits until it accepts connections.
func Start(c Config) (*server.Server, error) {
	opts, err := c.options()
	if err != nil {
		return nil, err
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

// Reload gives s, started by Start with c apart from its users, the users
// of c; the users are the one setting that changes while a server runs.
// Clients whose user is gone or whose password no longer matches are
// disconnected; the others get their user's new permissions.
func Reload(s *server.Server, c Config) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	if err := s.ReloadOptions(opts); err != nil {
		return fmt.Errorf("nats server: reload users: %w", err)
	}
	return nil
}

// options are the server options of c.
func (c Config) options() (*server.Options, error) {
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
	switch {
	case c.Sync == SyncAlways:
		opts.SyncAlways = true
	case c.Sync > 0:
		opts.SyncInterval = c.Sync
	}
	if c.Cluster != nil {
		if err := c.validateCluster(); err != nil {
			return nil, err
		}
		opts.Cluster = server.ClusterOpts{Name: c.Cluster.Name, Host: c.Cluster.Host, Port: c.Cluster.Port}
		opts.Routes = server.RoutesFromStr(strings.Join(c.Cluster.Routes, ","))
	}
	// Copies: the server assigns accounts to the users it is given, and
	// the caller's values stay the caller's.
	for _, u := range c.Users {
		cu := *u
		opts.Users = append(opts.Users, &cu)
	}
	return opts, nil
}

// validateCluster checks what a clustered JetStream server needs.
func (c Config) validateCluster() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("a clustered server needs a server name"))
	}
	if c.Cluster.Name == "" {
		errs = append(errs, errors.New("a clustered server needs a cluster name"))
	}
	if len(c.Cluster.Routes) == 0 {
		errs = append(errs, errors.New("a clustered server needs the routes of the cluster's nodes"))
	}
	for _, r := range c.Cluster.Routes {
		if !strings.HasPrefix(r, "nats-route://") && !strings.HasPrefix(r, "nats://") {
			errs = append(errs, fmt.Errorf("route %q: want nats-route://host:port", r))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nats server %q: %w", c.Name, err)
	}
	return nil
}

// RouteURL is the route URL of a cluster node listening on host:port.
func RouteURL(host string, port int) string {
	return "nats-route://" + net.JoinHostPort(host, strconv.Itoa(port))
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
