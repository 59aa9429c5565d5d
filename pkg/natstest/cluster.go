package natstest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/natsembed"
)

// ClusterName is the name of the clusters StartCluster forms.
const ClusterName = "eventsync"

// WaitTimeout bounds the waits of Cluster: forming, elections, catching up.
const WaitTimeout = 30 * time.Second

// Cluster is a JetStream cluster of embedded servers in the test process,
// each on its own loopback client and route ports with its own data
// directory. Nodes can be shut down and restarted one by one.
type Cluster struct {
	t     testing.TB
	nodes []*Server
}

// StartCluster starts n servers forming one JetStream cluster, waits until
// it has a meta leader that knows all n peers, and shuts the servers down
// when the test ends. Nodes are named eventsync-1 … eventsync-n.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: a cluster of %d servers", n)
	}
	var err error
	// Route ports must be known before the first node starts (every node
	// lists all of them), so they are picked up front; another process may
	// take one in between, so try again with fresh ports.
	for range 3 {
		var c *Cluster
		if c, err = startCluster(t, n); err == nil {
			c.WaitMetaLeader(t)
			return c
		}
	}
	t.Fatalf("natstest: start cluster: %v", err)
	return nil
}

func startCluster(t testing.TB, n int) (*Cluster, error) {
	routePorts, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = natsembed.RouteURL("127.0.0.1", p)
	}
	c := &Cluster{t: t}
	for i := range n {
		cfg := natsembed.Config{
			Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), Name: fmt.Sprintf("%s-%d", ClusterName, i+1),
			Cluster: &natsembed.Cluster{Name: ClusterName, Host: "127.0.0.1", Port: routePorts[i], Routes: routes},
		}
		srv, err := natsembed.Start(cfg)
		if err != nil {
			for _, s := range c.nodes {
				s.Shutdown()
			}
			return nil, err
		}
		cfg.Port = srv.Addr().(*net.TCPAddr).Port
		s := &Server{t: t, cfg: cfg}
		s.srv.Store(srv)
		t.Cleanup(s.Shutdown)
		c.nodes = append(c.nodes, s)
	}
	return c, nil
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// Nodes are the cluster's servers, in start order.
func (c *Cluster) Nodes() []*Server { return c.nodes }

// Node is the i-th server (from 0).
func (c *Cluster) Node(i int) *Server { return c.nodes[i] }

// URLs are the client URLs of every node, running or not.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		urls[i] = s.URL()
	}
	return urls
}

// URL is every node's client URL, comma-separated, as nats.Connect (and
// EventSync's NATS_URL) takes them.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// Connect returns a client connection that knows every node, so it moves
// to another one when its server goes away. It is closed when the test
// ends and keeps reconnecting forever, as EventSync's services do.
func (c *Cluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	return connect(t, c.URL())
}

// MetaLeader is the running node leading the JetStream meta group, or nil
// while there is none.
func (c *Cluster) MetaLeader() *Server {
	for _, s := range c.nodes {
		if srv := s.NATS(); srv.Running() && srv.JetStreamIsLeader() {
			return s
		}
	}
	return nil
}

// WaitMetaLeader waits until the cluster has a meta leader that knows
// every node as a peer, so streams with replicas up to n can be created.
func (c *Cluster) WaitMetaLeader(t testing.TB) *Server {
	t.Helper()
	var leader *Server
	waitUntil(t, WaitTimeout, "jetstream meta leader", func() error {
		if leader = c.MetaLeader(); leader == nil {
			return errors.New("no meta leader")
		}
		if peers := leader.NATS().JetStreamClusterPeers(); len(peers) < len(c.nodes) {
			return fmt.Errorf("meta leader %s knows %d of %d peers: %v", leader.Name(), len(peers), len(c.nodes), peers)
		}
		return nil
	})
	return leader
}

// StreamLeader is the running node leading stream, or nil while there is
// none (during an election, or without a quorum).
func (c *Cluster) StreamLeader(stream string) *Server {
	for _, s := range c.nodes {
		if s.IsStreamLeader(stream) {
			return s
		}
	}
	return nil
}

// WaitStreamLeader waits until stream has a leader and returns it.
func (c *Cluster) WaitStreamLeader(t testing.TB, stream string) *Server {
	t.Helper()
	var leader *Server
	waitUntil(t, WaitTimeout, "leader of stream "+stream, func() error {
		if leader = c.StreamLeader(stream); leader == nil {
			return errNotYet
		}
		return nil
	})
	return leader
}

// WaitHealthy waits until every running node is healthy (see
// Server.Healthy): after a restart, that node has caught up on every
// stream and consumer it holds a replica of.
func (c *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	waitUntil(t, WaitTimeout, "cluster healthy", func() error {
		var errs []error
		for _, s := range c.nodes {
			if s.Running() {
				errs = append(errs, s.Healthy())
			}
		}
		return errors.Join(errs...)
	})
}
