package natstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/natsembed"
)

// serverPackage is the main package of nats-server: the module the test's
// own module requires decides its version, so the processes run the same
// server code as the embedded servers.
const serverPackage = "github.com/nats-io/nats-server/v2"

// ServerBinary is a nats-server executable built on first use from the
// nats-server module the calling test's module requires, with the go
// command on PATH (go test puts its own first) and the test's package
// directory as working directory. It needs no nats-server installed, only
// the module that go test has downloaded already. Build it once per test
// binary: create it in TestMain and Close it after m.Run.
type ServerBinary struct {
	once sync.Once
	dir  string
	path string
	took time.Duration
	err  error
}

// NewServerBinary returns a ServerBinary that builds nothing until its
// first Path.
func NewServerBinary() *ServerBinary { return &ServerBinary{} }

// Path builds the binary on the first call and returns its path, failing
// the test if the build fails. A build with a cold Go build cache compiles
// the whole server and takes about a minute; later ones only link.
func (b *ServerBinary) Path(t testing.TB) string {
	t.Helper()
	built := false
	b.once.Do(func() {
		built = true
		start := time.Now()
		b.path, b.dir, b.err = buildServer()
		b.took = time.Since(start)
	})
	if b.err != nil {
		t.Fatalf("natstest: %v", b.err)
	}
	if built {
		t.Logf("natstest: built nats-server in %s", b.took.Round(time.Millisecond))
	}
	return b.path
}

// Close removes the binary.
func (b *ServerBinary) Close() error {
	if b.dir == "" {
		return nil
	}
	if err := os.RemoveAll(b.dir); err != nil {
		return fmt.Errorf("remove nats-server binary: %w", err)
	}
	return nil
}

func buildServer() (path, dir string, err error) {
	dir, err = os.MkdirTemp("", "natstest-")
	if err != nil {
		return "", "", fmt.Errorf("build nats-server: %w", err)
	}
	path = filepath.Join(dir, "nats-server")
	if runtime.GOOS == "windows" {
		path += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", path, serverPackage).CombinedOutput()
	if err != nil {
		return "", dir, fmt.Errorf("go build %s: %w\n%s", serverPackage, err, out)
	}
	return path, dir, nil
}

// ProcessCluster is a JetStream cluster of nats-server processes, each on
// its own loopback client, route and monitoring ports with its own data
// directory. Unlike Cluster, a node can be killed (SIGKILL): it gets no
// chance to hand its leaderships over, as in a crash or a power loss.
type ProcessCluster struct {
	nodes []*Process
}

// Process is one nats-server process of a ProcessCluster.
type Process struct {
	t       testing.TB
	bin     string
	name    string
	conf    string // configuration file
	logPath string // stdout and stderr of every run, appended
	client  int    // client port
	monitor int    // monitoring (HTTP) port
	hc      *http.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// StartProcessCluster starts n nats-server processes forming one JetStream
// cluster named ClusterName, with nodes named eventsync-1 … eventsync-n,
// and waits until every node is healthy and the meta leader knows all n
// peers. The processes are killed when the test ends; if the test failed,
// their logs are written to the test log.
func StartProcessCluster(t testing.TB, bin *ServerBinary, n int) *ProcessCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: a cluster of %d servers", n)
	}
	path := bin.Path(t)
	var err error
	// As in StartCluster, every port is picked before the first node
	// starts; another process may take one in between, so try again with
	// fresh ports.
	for range 3 {
		var c *ProcessCluster
		if c, err = startProcessCluster(t, path, n); err == nil {
			c.WaitMetaLeader(t)
			c.WaitHealthy(t)
			return c
		}
	}
	t.Fatalf("natstest: start process cluster: %v", err)
	return nil
}

func startProcessCluster(t testing.TB, bin string, n int) (*ProcessCluster, error) {
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = natsembed.RouteURL("127.0.0.1", ports[3*i+1])
	}
	dir := t.TempDir()
	c := &ProcessCluster{}
	for i := range n {
		p := &Process{
			t: t, bin: bin, name: fmt.Sprintf("%s-%d", ClusterName, i+1),
			client: ports[3*i], monitor: ports[3*i+2],
			hc: &http.Client{Timeout: 5 * time.Second},
		}
		p.conf = filepath.Join(dir, p.name+".conf")
		p.logPath = filepath.Join(dir, p.name+".log")
		conf := processConfig(p.name, p.client, ports[3*i+1], p.monitor, filepath.Join(dir, p.name), routes)
		if err := os.WriteFile(p.conf, []byte(conf), 0o600); err != nil {
			return nil, fmt.Errorf("nats-server config: %w", err)
		}
		c.nodes = append(c.nodes, p)
	}
	t.Cleanup(func() {
		for _, p := range c.nodes {
			p.Kill()
		}
		if t.Failed() {
			for _, p := range c.nodes {
				p.dumpLog()
			}
		}
	})
	for _, p := range c.nodes {
		if err := p.start(); err != nil {
			for _, p := range c.nodes {
				p.Kill()
			}
			return nil, err
		}
	}
	for _, p := range c.nodes {
		if err := p.waitReady(); err != nil {
			for _, p := range c.nodes {
				p.Kill()
			}
			return nil, err
		}
	}
	return c, nil
}

// processConfig is a node's configuration file: what natsembed sets for
// an embedded node, plus the monitoring port.
func processConfig(name string, client, route, monitor int, storeDir string, routes []string) string {
	quoted := make([]string, len(routes))
	for i, r := range routes {
		quoted[i] = strconv.Quote(r)
	}
	hostPort := func(p int) string { return strconv.Quote(net.JoinHostPort("127.0.0.1", strconv.Itoa(p))) }
	return fmt.Sprintf(`server_name: %s
listen: %s
http: %s
# As natsembed: events of up to 1 MiB requests, with room for headers.
max_payload: %d
jetstream {
  store_dir: %s
}
cluster {
  name: %s
  listen: %s
  routes: [%s]
}
`, strconv.Quote(name), hostPort(client), hostPort(monitor), 8<<20, strconv.Quote(storeDir),
		strconv.Quote(ClusterName), hostPort(route), strings.Join(quoted, ", "))
}

// Nodes are the cluster's processes, in start order.
func (c *ProcessCluster) Nodes() []*Process { return c.nodes }

// Node is the i-th process (from 0).
func (c *ProcessCluster) Node(i int) *Process { return c.nodes[i] }

// URLs are the client URLs of every node, running or not.
func (c *ProcessCluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, p := range c.nodes {
		urls[i] = p.URL()
	}
	return urls
}

// URL is every node's client URL, comma-separated, as nats.Connect (and
// EventSync's NATS_URL) takes them.
func (c *ProcessCluster) URL() string { return strings.Join(c.URLs(), ",") }

// Connect returns a client connection that knows every node, so it moves
// to another one when its server goes away. It is closed when the test
// ends and keeps reconnecting forever, as EventSync's services do.
func (c *ProcessCluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	return connect(t, c.URL())
}

// MetaLeader is the running node that reports itself the leader of the
// JetStream meta group, or nil while there is none.
func (c *ProcessCluster) MetaLeader() (*Process, error) {
	p, _, err := c.metaLeader()
	return p, err
}

func (c *ProcessCluster) metaLeader() (*Process, *server.MetaClusterInfo, error) {
	var errs []error
	for _, p := range c.nodes {
		if !p.Running() {
			continue
		}
		var info server.JSInfo
		if err := p.getJSON("/jsz", &info); err != nil {
			errs = append(errs, err)
			continue
		}
		if info.Meta != nil && info.Meta.Leader == p.name {
			return p, info.Meta, nil
		}
	}
	return nil, nil, errors.Join(errs...)
}

// WaitMetaLeader waits until a node leads the meta group and sees every
// other node as a current peer, so streams with replicas up to n can be
// created.
func (c *ProcessCluster) WaitMetaLeader(t testing.TB) *Process {
	t.Helper()
	var leader *Process
	waitUntil(t, WaitTimeout, "jetstream meta leader", func() error {
		p, meta, err := c.metaLeader()
		switch {
		case err != nil:
			return err
		case p == nil:
			return errors.New("no meta leader")
		}
		current := 0
		for _, r := range meta.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if current < len(c.nodes)-1 {
			return fmt.Errorf("meta leader %s sees %d of %d other peers current: %+v", p.name, current, len(c.nodes)-1, meta.Replicas)
		}
		leader = p
		return nil
	})
	return leader
}

// StreamLeader is the running node that reports itself the leader of
// stream (in the global account), or nil while there is none: during an
// election, or without a quorum. A node that leads by its own account may
// not take publishes yet while it applies what the previous leader left.
func (c *ProcessCluster) StreamLeader(stream string) (*Process, error) {
	var errs []error
	for _, p := range c.nodes {
		if !p.Running() {
			continue
		}
		leads, err := p.IsStreamLeader(stream)
		if err != nil {
			errs = append(errs, err)
		} else if leads {
			return p, nil
		}
	}
	return nil, errors.Join(errs...)
}

// WaitStreamLeader waits until stream has a leader and returns it.
func (c *ProcessCluster) WaitStreamLeader(t testing.TB, stream string) *Process {
	t.Helper()
	var leader *Process
	waitUntil(t, WaitTimeout, "leader of stream "+stream, func() error {
		p, err := c.StreamLeader(stream)
		if err == nil && p == nil {
			err = errNotYet
		}
		leader = p
		return err
	})
	return leader
}

// WaitHealthy waits until every running node is healthy (see
// Process.Healthy): after a restart, that node has caught up on every
// stream and consumer it holds a replica of.
func (c *ProcessCluster) WaitHealthy(t testing.TB) {
	t.Helper()
	waitUntil(t, WaitTimeout, "cluster healthy", func() error {
		var errs []error
		for _, p := range c.nodes {
			if p.Running() {
				errs = append(errs, p.Healthy())
			}
		}
		return errors.Join(errs...)
	})
}

// Name is the server name, eventsync-1 … eventsync-n.
func (p *Process) Name() string { return p.name }

// URL is the client URL of the node. It stays the same across restarts.
func (p *Process) URL() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.client))
}

// MonitorURL is the base URL of the node's monitoring endpoints (/varz,
// /jsz, /healthz …). It stays the same across restarts.
func (p *Process) MonitorURL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.monitor))
}

// Connect returns a client connection to this node alone, closed when the
// test ends. It keeps reconnecting forever, as EventSync's services do.
func (p *Process) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	return connect(t, p.URL())
}

// Running reports whether the process is started and has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill kills the process with SIGKILL (on Windows, TerminateProcess) and
// waits until it has exited: its connections are closed by then, and
// nothing it did not write to disk survives. Killing a node that is not
// running does nothing.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	// An error means the process has exited already.
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the node again on the same ports and data directory and
// waits until it accepts connections. It retries for a few seconds while a
// port is still taken.
func (p *Process) Restart() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("natstest: restart %s: still running", p.name)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := p.start()
		if err == nil {
			if err = p.waitReady(); err == nil {
				return
			}
			p.Kill()
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("natstest: restart %s: %v", p.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// IsStreamLeader reports whether this node says it leads the replication
// group of stream (in the global account), as its /jsz tells.
func (p *Process) IsStreamLeader(stream string) (bool, error) {
	var info server.JSInfo
	if err := p.getJSON("/jsz?acc="+account+"&streams=true&stream-leader-only=true", &info); err != nil {
		return false, err
	}
	for _, a := range info.AccountDetails {
		for _, s := range a.Streams {
			if s.Name == stream && s.Cluster != nil && s.Cluster.Leader == p.name {
				return true, nil
			}
		}
	}
	return false, nil
}

// Healthy is nil when the node is up and JetStream on it is current: it
// knows the meta leader and every stream and consumer it holds a replica
// of has caught up (its /healthz answers 200).
func (p *Process) Healthy() error {
	if !p.Running() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.healthz("")
}

func (p *Process) healthz(query string) error {
	resp, err := p.hc.Get(p.MonitorURL() + "/healthz" + query)
	if err != nil {
		return fmt.Errorf("%s: healthz: %w", p.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: healthz: %w", p.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: healthz: %d %s", p.name, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

func (p *Process) getJSON(path string, v any) error {
	resp, err := p.hc.Get(p.MonitorURL() + path)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", p.name, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", p.name, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: %s: %w", p.name, path, err)
	}
	return nil
}

// start starts the process, its output appended to its log file.
func (p *Process) start() error {
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: log: %w", p.name, err)
	}
	// The child writes to the file itself: no pipe ties it to the test
	// binary, which go test would otherwise wait on.
	cmd := exec.Command(p.bin, "-c", p.conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: start nats-server: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed, or failed and the log tells why
		log.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// waitReady waits until the node accepts client connections and its
// monitoring answers with JetStream enabled, or fails with the end of its
// log if it exits first.
func (p *Process) waitReady() error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting:\n%s", p.name, p.logTail(4<<10))
		default:
		}
		err := p.healthz("?js-enabled-only=true")
		if err == nil {
			var conn net.Conn
			if conn, err = net.DialTimeout("tcp", strings.TrimPrefix(p.URL(), "nats://"), time.Second); err == nil {
				conn.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 10s: %w\n%s", p.name, err, p.logTail(4<<10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logTail is up to the last n bytes of the node's log.
func (p *Process) logTail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return err.Error()
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// dumpLog writes the end of the node's log to the test log.
func (p *Process) dumpLog() {
	p.t.Logf("natstest: log of %s (last 64 KiB):\n%s", p.name, p.logTail(64<<10))
}
