package natsembed

import (
	"strings"
	"testing"
	"time"
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
