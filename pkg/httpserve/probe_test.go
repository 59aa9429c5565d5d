package httpserve_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/httpserve"
)

func TestReadyURL(t *testing.T) {
	tests := []struct {
		addr    string
		want    string
		wantErr bool
	}{
		{addr: ":8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: "0.0.0.0:8081", want: "http://127.0.0.1:8081/readyz"},
		{addr: "[::]:8082", want: "http://127.0.0.1:8082/readyz"},
		{addr: "127.0.0.1:8083", want: "http://127.0.0.1:8083/readyz"},
		{addr: "10.1.2.3:9000", want: "http://10.1.2.3:9000/readyz"},
		{addr: "[::1]:8080", want: "http://[::1]:8080/readyz"},
		{addr: "localhost:8080", want: "http://localhost:8080/readyz"},
		{addr: "8080", wantErr: true},
		{addr: ":0", wantErr: true},
		{addr: "127.0.0.1:", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := httpserve.ReadyURL(tt.addr)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ReadyURL(%q) = %q, %v; want %q, error %v", tt.addr, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// opsServer serves the operational endpoints on loopback with ready as
// their readiness, and returns the server's address.
func opsServer(t *testing.T, ready *httpserve.Readiness) string {
	t.Helper()
	reg, err := httpserve.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	httpserve.MountHealth(r, ready)
	httpserve.MountMetrics(r, reg)
	return serve(t, r, httpserve.Options{})
}

func TestProbeReadiness(t *testing.T) {
	down := errors.New("nats connection is CLOSED")
	tests := []struct {
		name    string
		ready   bool
		check   error
		wantErr string // "" means no error
	}{
		{name: "ready", ready: true},
		{name: "starting", ready: false, wantErr: "503 Service Unavailable: not ready: not started or shutting down"},
		{name: "check fails", ready: true, check: down, wantErr: "503 Service Unavailable: not ready: nats connection is CLOSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := httpserve.NewReadiness(func(context.Context) error { return tt.check })
			ready.Set(tt.ready)
			url := "http://" + opsServer(t, ready) + "/readyz"
			err := httpserve.Probe(context.Background(), url)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Probe(%q) = %v; want nil", url, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Probe(%q) = %v; want an error containing %q", url, err, tt.wantErr)
			}
		})
	}
}

func TestProbeAnswers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string // "" means no error
		notWant string // the error must not contain it
	}{
		{
			name:    "ok",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ready\n") },
		},
		{
			name:    "no content is not ready",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
			wantErr: "/readyz: 204 No Content",
		},
		{
			name: "redirect is not followed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					_, _ = io.WriteString(w, "ready\n")
					return
				}
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			wantErr: "302 Found",
		},
		{
			name: "long body is cut",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, strings.Repeat("x", 10000))
			},
			wantErr: "500 Internal Server Error: " + strings.Repeat("x", 512),
			notWant: strings.Repeat("x", 513),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			err := httpserve.Probe(context.Background(), srv.URL+"/readyz")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Probe(%q) = %v; want nil", srv.URL, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Probe(%q) = %v; want an error containing %q", srv.URL, err, tt.wantErr)
			case tt.notWant != "" && err != nil && strings.Contains(err.Error(), tt.notWant):
				t.Errorf("Probe(%q) = %v; want an error without %q", srv.URL, err, tt.notWant)
			}
		})
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestProbeNothingListening(t *testing.T) {
	url := "http://" + closedAddr(t) + "/readyz"
	if err := httpserve.Probe(context.Background(), url); err == nil {
		t.Errorf("Probe(%q) = nil; want an error", url)
	}
}

func TestHealthcheck(t *testing.T) {
	ready := httpserve.NewReadiness()
	ready.Set(true)
	up := opsServer(t, ready)
	down := closedAddr(t)
	_, upPort, err := net.SplitHostPort(up)
	if err != nil {
		t.Fatal(err)
	}
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		def     string
		wantErr bool
	}{
		{name: "default address", def: up},
		{name: "wildcard default address", def: ":" + upPort},
		{name: "HTTP_ADDR wins over the default", env: map[string]string{"HTTP_ADDR": up}, def: down},
		{name: "flag wins over HTTP_ADDR", args: []string{"-http-addr", up}, env: map[string]string{"HTTP_ADDR": down}, def: down},
		{name: "URL argument", args: []string{"http://" + up + "/readyz"}, def: down},
		{name: "URL of a liveness endpoint", args: []string{"http://" + up + "/healthz"}, def: down},
		{name: "nothing listening", def: down, wantErr: true},
		{name: "no answer in time", args: []string{"-timeout", "1ms", hang.URL}, def: up, wantErr: true},
		{name: "unknown path", args: []string{"http://" + up + "/nothing"}, def: up, wantErr: true},
		{name: "two URLs", args: []string{"http://" + up + "/readyz", "http://" + up + "/healthz"}, def: up, wantErr: true},
		{name: "no port", def: "127.0.0.1", wantErr: true},
		{name: "unknown flag", args: []string{"-port", "1"}, def: up, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			err := httpserve.Healthcheck(context.Background(), "test", tt.args, getenv, io.Discard, tt.def)
			if (err != nil) != tt.wantErr {
				t.Errorf("Healthcheck(%q) with default %q, env %v = %v; want error %v", tt.args, tt.def, tt.env, err, tt.wantErr)
			}
		})
	}
}

func TestHealthcheckHelp(t *testing.T) {
	var out strings.Builder
	err := httpserve.Healthcheck(context.Background(), "ingest", []string{"-h"}, func(string) string { return "" }, &out, ":8080")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Healthcheck(-h) = %v; want flag.ErrHelp", err)
	}
	for _, want := range []string{"ingest healthcheck", "-http-addr", "[$HTTP_ADDR]", "-timeout"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Healthcheck(-h) printed %q; want it to contain %q", out.String(), want)
		}
	}
}
