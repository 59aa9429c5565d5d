package chtest_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/eventsync/eventsync/pkg/chtest"
)

func TestWithHost(t *testing.T) {
	tests := []struct {
		dsn, addr, want string
	}{
		{"clickhouse://127.0.0.1:9000/db", "127.0.0.1:1", "clickhouse://127.0.0.1:1/db"},
		{"clickhouse://u:p@ch.example:9000/db?dial_timeout=1s", "127.0.0.1:2", "clickhouse://u:p@127.0.0.1:2/db?dial_timeout=1s"},
	}
	for _, tt := range tests {
		got, err := chtest.WithHost(tt.dsn, tt.addr)
		if err != nil || got != tt.want {
			t.Errorf("WithHost(%q, %q) = %q, %v; want %q", tt.dsn, tt.addr, got, err, tt.want)
		}
	}
	if _, err := chtest.WithHost("clickhouse://a:1,b:2/db", "c:3"); err == nil {
		t.Errorf("WithHost with two hosts = nil error; want an error")
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := chtest.WithDatabase("clickhouse://127.0.0.1:9000?compress=lz4", "x_1")
	if want := "clickhouse://127.0.0.1:9000/x_1?compress=lz4"; err != nil || got != want {
		t.Errorf("WithDatabase = %q, %v; want %q", got, err, want)
	}
}

// TestProxy checks Cut and Restore against an echo server.
func TestProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p := chtest.NewProxy(t, ln.Addr().String())

	echo := func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			c.Close()
			return nil, err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	c, err := echo()
	if err != nil {
		t.Fatalf("echo through the proxy: %v", err)
	}
	p.Cut()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read on a cut connection = nil error; want EOF or reset")
	}
	c.Close()
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("dial while cut succeeded; want refused")
	}
	p.Restore()
	c, err = echo()
	if err != nil {
		t.Fatalf("echo after Restore: %v", err)
	}
	c.Close()
}

func TestDSN(t *testing.T) {
	dsn := chtest.DSN(t)
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("ParseDSN(%q) = %v", dsn, err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		t.Fatalf("SELECT currentDatabase() = %v", err)
	}
	if db != opts.Auth.Database || len(db) != len("eventsync_test_")+12 {
		t.Errorf("currentDatabase() = %q; want %q (eventsync_test_<12 hex>)", db, opts.Auth.Database)
	}
}
