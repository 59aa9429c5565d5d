package chstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/eventsync/eventsync/pkg/eventstore"
)

func TestWrapUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"eof", fmt.Errorf("read: %w", io.EOF), true},
		{"unexpected eof", io.ErrUnexpectedEOF, true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"closed conn", net.ErrClosed, true},
		{"deadline", context.DeadlineExceeded, true},
		{"acquire timeout", clickhouse.ErrAcquireConnTimeout, true},
		{"server timeout", &clickhouse.Exception{Code: 159, Message: "Timeout exceeded"}, true},
		{"too many parts", &clickhouse.Exception{Code: 252, Message: "Too many parts"}, true},
		{"canceled", context.Canceled, false},
		{"syntax error", &clickhouse.Exception{Code: 62, Message: "Syntax error"}, false},
		{"unknown table", &clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}, false},
		{"other", errors.New("converting String to uint8 is unsupported"), false},
	}
	for _, tt := range tests {
		err := wrap("op", tt.err)
		if got := errors.Is(err, eventstore.ErrUnavailable); got != tt.want {
			t.Errorf("errors.Is(wrap(%s), ErrUnavailable) = %v; want %v (%v)", tt.name, got, tt.want, err)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("wrap(%s) = %v; does not wrap the cause", tt.name, err)
		}
	}
}

func TestSchemaLowCardinality(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"18.16.1", false},
		{"19.17.4.11", true},
		{"24.8.4.13", true},
		{"25.3.1.2703", true},
	}
	for _, tt := range tests {
		v, err := parseVersion(tt.version)
		if err != nil {
			t.Fatalf("parseVersion(%q) = %v", tt.version, err)
		}
		var got bool
		for _, stmt := range schema("`db`", v) {
			if strings.Contains(stmt, "LowCardinality(String)") {
				got = true
			}
		}
		if got != tt.want {
			t.Errorf("schema for %s uses LowCardinality = %v; want %v", tt.version, got, tt.want)
		}
	}
	for _, bad := range []string{"", "x.y", "18"} {
		if _, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) = nil error; want an error", bad)
		}
	}
}
