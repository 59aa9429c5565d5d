package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/service/servicetest"
)

// TestBadSettings: every bad setting is reported before anything
// connects, all of them at once, as an error (main prints it and exits 1).
func TestBadSettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"allow nets", map[string]string{"NOTIFY_ALLOW_NETS": "notacidr"}, []string{"notify allow nets"}},
		{"timeout above ack wait", map[string]string{"NOTIFY_TIMEOUT": "1m", "NOTIFY_ACK_WAIT": "30s"}, []string{"must exceed the attempt timeout"}},
		{"smtp addr", map[string]string{"SMTP_ADDR": "no-port"}, []string{"smtp addr"}},
		{"smtp tls with email off", map[string]string{"SMTP_TLS": "bogus"}, []string{`smtp tls "bogus"`}},
		{"all at once", map[string]string{"NOTIFY_ALLOW_NETS": "x", "SMTP_TLS": "y", "SHUTDOWN_TIMEOUT": "-1s"},
			[]string{"notify allow nets", "smtp tls", "shutdown timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// NATS is not there: the settings must fail first.
			tt.env["NATS_URL"] = "nats://127.0.0.1:1"
			err := run(t.Context(), []string{"--http-addr", "127.0.0.1:0"}, func(k string) string { return tt.env[k] }, io.Discard)
			if err == nil {
				t.Fatal("run succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run error = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestServes: the notifier starts through the shared assembly, with
// clients authenticating by default: its API and ops endpoints answer the
// admin token with request ids, requests without credentials with 401,
// unknown paths with problem+json.
func TestServes(t *testing.T) {
	ns := natstest.Start(t)
	const admin = "test-admin-token"
	p := servicetest.Start(t, run, map[string]string{"NATS_URL": ns.URL(), "LOG_LEVEL": "warn", "ADMIN_TOKEN": admin})
	p.WaitReady(t, 20*time.Second)
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{"/v1/subscriptions", admin, 200},
		{"/metrics", admin, 200},
		{"/v1/nothing", admin, 404},
		{"/v1/subscriptions", "", 401},
		{"/metrics", "", 401},
	} {
		req, err := http.NewRequest("GET", p.Base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want || resp.Header.Get("X-Request-ID") == "" {
			t.Errorf("GET %s (token %q) = %d (request id %q); want %d with a request id", tt.path, tt.token, resp.StatusCode, resp.Header.Get("X-Request-ID"), tt.want)
		}
	}
	if err := p.Stop(); err != nil {
		t.Errorf("run = %v; want nil on a clean stop", err)
	}
}
