package app

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/eventsync/eventsync/pkg/access"
)

func TestExposureChecks(t *testing.T) {
	tests := []struct {
		name               string
		httpAddr, natsAddr string
		auth               string
		insecure           bool
		wantAuth           string
		wantErr            bool
	}{
		{"loopback defaults to no auth", "127.0.0.1:8080", "127.0.0.1:4222", "", false, access.AuthNone, false},
		{"public defaults to producers", ":8080", "127.0.0.1:4222", "", false, access.AuthClients, false},
		{"public without auth refused", "0.0.0.0:8080", "127.0.0.1:4222", access.AuthNone, false, access.AuthNone, true},
		{"public without auth, insecure", "0.0.0.0:8080", "127.0.0.1:4222", access.AuthNone, true, access.AuthNone, false},
		{"public nats defaults to producers", "127.0.0.1:8080", "0.0.0.0:4222", "", false, access.AuthClients, false},
		{"public nats without auth refused", "127.0.0.1:8080", "0.0.0.0:4222", access.AuthNone, false, access.AuthNone, true},
		{"public nats without auth, insecure", "127.0.0.1:8080", "0.0.0.0:4222", access.AuthNone, true, access.AuthNone, false},
		{"public nats with producers", "127.0.0.1:8080", "0.0.0.0:4222", access.AuthClients, false, access.AuthClients, false},
		{"localhost is loopback", "localhost:8080", "[::1]:4222", "", false, access.AuthNone, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := access.Config{Auth: tt.auth}
			err := checkExposure(tt.httpAddr, tt.natsAddr, &g, tt.insecure)
			if (err != nil) != tt.wantErr || g.Auth != tt.wantAuth {
				t.Errorf("checkExposure(%s, %s) = %v, auth %q; want error %v, auth %q", tt.httpAddr, tt.natsAddr, err, g.Auth, tt.wantErr, tt.wantAuth)
			}
		})
	}
}

// TestStartErrors: every start-up error is returned (main prints it and
// exits 1); `eventsync run` used to panic in its cleanup on these.
func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"allow nets", map[string]string{"NOTIFY_ALLOW_NETS": "notacidr"}, nil, "notify allow nets"},
		{"notify timeout above its ack wait", map[string]string{"NOTIFY_TIMEOUT": "1m"}, nil, "must exceed the attempt timeout"},
		{"smtp addr", map[string]string{"SMTP_ADDR": "nohost"}, nil, "smtp addr"},
		{"smtp tls", map[string]string{"SMTP_TLS": "sometimes"}, nil, `smtp tls "sometimes"`},
		{"http port in use", nil, []string{"--http-addr", busy.Addr().String()}, "listen " + busy.Addr().String()},
		{"nats sync", map[string]string{"NATS_SYNC": "often"}, nil, "sync interval"},
		{"public without auth", nil, []string{"--http-addr", "0.0.0.0:0", "--auth", "none"}, "refusing to serve HTTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1", "--data-dir", t.TempDir()}, tt.args...)
			err := Main(context.Background(), args, func(k string) string { return tt.env[k] }, io.Discard, "test")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("eventsync run = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
