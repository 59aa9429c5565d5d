package natsembed

import (
	"strings"
	"testing"
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
