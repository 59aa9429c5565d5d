package natsembed

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartClusterConfig(t *testing.T) {
	routes := []string{RouteURL("127.0.0.1", 1), RouteURL("127.0.0.1", 2)}
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no server name", Config{Cluster: &Cluster{Name: "c", Routes: routes}}, "server name"},
		{"no cluster name", Config{Name: "n1", Cluster: &Cluster{Routes: routes}}, "cluster name"},
		{"no routes", Config{Name: "n1", Cluster: &Cluster{Name: "c"}}, "routes"},
		{"client url as route", Config{Name: "n1", Cluster: &Cluster{Name: "c", Routes: []string{"127.0.0.1:1"}}}, "nats-route://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Host, tt.cfg.Port, tt.cfg.StoreDir = "127.0.0.1", -1, t.TempDir()
			s, err := Start(tt.cfg)
			if err == nil {
				s.Shutdown()
				t.Fatalf("Start(%+v) = nil error; want one about %q", tt.cfg, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start(%+v) = %v; want an error about %q", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestRouteURL(t *testing.T) {
	for _, tt := range []struct {
		host string
		port int
		want string
	}{
		{"127.0.0.1", 6222, "nats-route://127.0.0.1:6222"},
		{"::1", 6222, "nats-route://[::1]:6222"},
	} {
		if got := RouteURL(tt.host, tt.port); got != tt.want {
			t.Errorf("RouteURL(%q, %d) = %q; want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

func TestParseSync(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"always", SyncAlways, false},
		{"", 0, false},
		{"0", 0, false},
		{"2m", 2 * time.Minute, false},
		{"10s", 10 * time.Second, false},
		{"-1s", 0, true},
		{"sometimes", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSync(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSync(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestSyncAlways: a server told to sync always runs with it.
func TestSyncAlways(t *testing.T) {
	s, err := Start(Config{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), Sync: SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if cfg := s.JetStreamConfig(); cfg == nil || !cfg.SyncAlways {
		t.Errorf("JetStream config = %+v; want SyncAlways", cfg)
	}
}

// startUsers starts a server that accepts only the given users.
func startUsers(t *testing.T, users ...*server.User) (*server.Server, Config) {
	t.Helper()
	c := Config{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), Users: users}
	s, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s, c
}

// connect connects as user (none: anonymously) without retrying.
func connect(s *server.Server, user, password string, opts ...nats.Option) (*nats.Conn, error) {
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	return nats.Connect(s.ClientURL(), append(opts, nats.NoReconnect())...)
}

// allowed reports whether nc may publish to subj: the server answers a
// violation before the PONG of the flush. LastError keeps the last error
// of the connection; every violation is a new one.
func allowed(t *testing.T, nc *nats.Conn, subj string) bool {
	t.Helper()
	before := nc.LastError()
	if err := nc.Publish(subj, nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	err := nc.LastError()
	if err == before {
		return true
	}
	if !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("publish %s: %v", subj, err)
	}
	return false
}

func publishOnly(subjects ...string) *server.Permissions {
	return &server.Permissions{Publish: &server.SubjectPermission{Allow: subjects}, Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}}}
}

// TestUsers: with users, anonymous clients and wrong passwords are
// refused, bcrypt hashes work, and permissions hold, for in-process
// connections too.
func TestUsers(t *testing.T) {
	const hash = "$2a$04$G1bUfp0Mc1B.lmqwUgQ0jevMjE83EW6VcNn8jb/PGoTSnEP2LEk1u" // bcrypt of hashed-secret
	s, _ := startUsers(t,
		&server.User{Username: "admin", Password: "admin-secret"},
		&server.User{Username: "limited", Password: hash, Permissions: publishOnly("allowed")},
	)
	for _, tt := range []struct {
		name, user, password string
		inProcess            bool
		want                 bool
	}{
		{"anonymous", "", "", false, false},
		{"wrong password", "admin", "nope", false, false},
		{"unknown user", "nobody", "admin-secret", false, false},
		{"admin", "admin", "admin-secret", false, true},
		{"admin in process", "admin", "admin-secret", true, true},
		{"bcrypt password", "limited", "hashed-secret", false, true},
		{"the hash as password", "limited", hash, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []nats.Option
			if tt.inProcess {
				opts = append(opts, nats.InProcessServer(s))
			}
			nc, err := connect(s, tt.user, tt.password, opts...)
			if err == nil {
				nc.Close()
			}
			if got := err == nil; got != tt.want {
				t.Errorf("connect as %q = %v; want connected %t", tt.user, err, tt.want)
			}
			if err != nil && !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect as %q = %v; want an authorization violation", tt.user, err)
			}
		})
	}
	nc, err := connect(s, "limited", "hashed-secret", nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !allowed(t, nc, "allowed") {
		t.Error("limited user may not publish to its subject")
	}
	if allowed(t, nc, "events.X.Y") {
		t.Error("limited user may publish outside its permissions")
	}
}

// TestReload: Reload adds, removes and changes users of a running
// JetStream server on a random port; clients of removed users or changed
// passwords are disconnected, the others get their new permissions, and
// JetStream keeps working.
func TestReload(t *testing.T) {
	admin := func() *server.User { return &server.User{Username: "admin", Password: "admin-secret"} }
	s, c := startUsers(t, admin(), &server.User{Username: "gone", Password: "p"}, &server.User{Username: "rotated", Password: "old"},
		&server.User{Username: "narrowed", Password: "p"})

	closed := map[string]chan struct{}{}
	conns := map[string]*nats.Conn{}
	for user, password := range map[string]string{"admin": "admin-secret", "gone": "p", "rotated": "old", "narrowed": "p"} {
		ch := make(chan struct{})
		nc, err := connect(s, user, password, nats.ClosedHandler(func(*nats.Conn) { close(ch) }),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		closed[user], conns[user] = ch, nc
	}
	if !allowed(t, conns["narrowed"], "anything") {
		t.Fatal("narrowed may not publish before the reload")
	}

	c.Users = []*server.User{admin(), {Username: "rotated", Password: "new"}, {Username: "narrowed", Password: "p", Permissions: publishOnly("only")},
		{Username: "added", Password: "p"}}
	if err := Reload(s, c); err != nil {
		t.Fatalf("Reload = %v", err)
	}
	for _, user := range []string{"gone", "rotated"} {
		select {
		case <-closed[user]:
		case <-time.After(5 * time.Second):
			t.Errorf("connection of %s still open after the reload", user)
		}
	}
	for _, user := range []string{"admin", "narrowed"} {
		if conns[user].IsClosed() {
			t.Errorf("connection of %s closed by the reload", user)
		}
	}
	if allowed(t, conns["narrowed"], "anything") || !allowed(t, conns["narrowed"], "only") {
		t.Error("narrowed kept its old permissions after the reload")
	}
	for _, tt := range []struct {
		user, password string
		want           bool
	}{{"added", "p", true}, {"gone", "p", false}, {"rotated", "old", false}, {"rotated", "new", true}} {
		nc, err := connect(s, tt.user, tt.password)
		if err == nil {
			nc.Close()
		}
		if (err == nil) != tt.want {
			t.Errorf("connect as %s/%s after the reload = %v; want connected %t", tt.user, tt.password, err, tt.want)
		}
	}
	js, err := jetstream.New(conns["admin"])
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatalf("JetStream after the reload: %v", err)
	}
	if _, err := kv.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatalf("JetStream after the reload: %v", err)
	}
}
