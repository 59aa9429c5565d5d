// Package chtest gives tests a fresh ClickHouse database on a real server and
// a TCP proxy that simulates ClickHouse outages.
//
// The server is named by EVENTSYNC_TEST_CLICKHOUSE_URL (for example
// clickhouse://127.0.0.1:9000). Without it tests skip locally and fail under
// CI=true. `bash .ci/clickhouse.sh <dir> <port>` starts a throwaway server.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// EnvURL is the environment variable naming the test ClickHouse server.
const EnvURL = "EVENTSYNC_TEST_CLICKHOUSE_URL"

// ServerURL returns the test server's URL from EnvURL. When it is unset the
// test is skipped with instructions, or fails when CI=true: in CI a missing
// ClickHouse must never silently skip its tests.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u != "" {
		return u
	}
	const msg = EnvURL + " is not set: set it to a ClickHouse server's native URL " +
		"(e.g. clickhouse://127.0.0.1:19000 after `bash .ci/clickhouse.sh /tmp/ch 19000`), or run bash .ci/run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
	return ""
}

// DSN creates a database with a random name (eventsync_test_<hex>) on the
// test server and returns the server URL with that database as its path.
// The database is dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("chtest: random database name: %v", err)
	}
	name := "eventsync_test_" + hex.EncodeToString(b[:])

	dsn, err := WithDatabase(server, name)
	if err != nil {
		t.Fatalf("chtest: %s: %v", EnvURL, err)
	}
	admin, err := WithDatabase(server, "default")
	if err != nil {
		t.Fatalf("chtest: %s: %v", EnvURL, err)
	}
	exec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("EVENTSYNC_TEST_KEEP_DB") != "" {
			t.Logf("chtest: keeping database %s", name)
			return
		}
		exec(t, admin, "DROP DATABASE IF EXISTS "+name)
	})
	return dsn
}

// WithDatabase returns dsn with its database (the URL path) replaced.
func WithDatabase(dsn, database string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse clickhouse url: %w", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("clickhouse url %q has no host", u.Redacted())
	}
	u.Path = "/" + database
	u.RawPath = ""
	return u.String(), nil
}

// WithHost returns dsn with its host:port replaced by addr, keeping the
// database, credentials and options. Use it to send a store's traffic
// through a Proxy.
func WithHost(dsn, addr string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse clickhouse url: %w", err)
	}
	if strings.Contains(u.Host, ",") {
		return "", fmt.Errorf("clickhouse url %q names several hosts", u.Redacted())
	}
	u.Host = addr
	return u.String(), nil
}

func exec(t testing.TB, dsn, query string) {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("chtest: parse %s: %v", EnvURL, err)
	}
	opts.DialTimeout = 10 * time.Second
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("chtest: open %s: %v", EnvURL, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, query); err != nil {
		t.Fatalf("chtest: %s: %v", query, err)
	}
}
