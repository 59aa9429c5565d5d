package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/service/servicetest"
)

// TestWaitsForDependencies: the store started while ClickHouse is down
// stays up and not ready, naming the store on /readyz, and runs once it
// is back; a stop is clean.
func TestWaitsForDependencies(t *testing.T) {
	dsn := chtest.DSN(t)
	proxy := chtest.NewProxy(t, strings.SplitN(strings.TrimPrefix(dsn, "clickhouse://"), "/", 2)[0])
	proxy.Cut()
	ns := natstest.Start(t)
	p := servicetest.Start(t, run, map[string]string{"NATS_URL": ns.URL(), "CLICKHOUSE_URL": proxy.DSN(dsn), "LOG_LEVEL": "warn"})
	p.WaitUntil(t, 20*time.Second, "waiting for ClickHouse", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "event store clickhouse")
	})
	proxy.Restore()
	p.WaitReady(t, 30*time.Second)
	resp, err := http.Get(p.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID on /metrics")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("run = %v; want nil on a clean stop", err)
	}
}
