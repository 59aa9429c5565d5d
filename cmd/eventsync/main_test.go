package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/event"
)

// run is what main calls: it parses flags, prints where it listens and
// stops cleanly when its context ends.
func TestRunCommand(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := []string{"run", "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1", "--data-dir", t.TempDir(), "--log-level", "warn"}
	go func() { done <- run(ctx, args, func(string) string { return "" }, nil, pw, io.Discard); pw.Close() }()

	var base string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "HTTP" {
			base = f[1]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" {
		t.Fatal("run printed no HTTP address")
	}
	// Ready once the registries are loaded, a moment after the banner.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := http.Get(base + "/readyz")
		if err == nil {
			r.Body.Close()
		}
		if err == nil && r.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %v, %v; want 200 within 10s", r, err)
		}
	}
	c, err := client.New(base)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Send(t.Context(), client.Event{Tag: "CLI.RUN", Message: "m"}); err != nil || res.Accepted != 1 {
		t.Fatalf("Send = %+v, %v; want 1 accepted (202)", res, err)
	}
	var n int
	for deadline := time.Now().Add(30 * time.Second); n < 1 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p, err := c.Query(t.Context(), client.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		n = len(p.Events)
	}
	if n != 1 {
		t.Fatalf("GET /v1/events: %d events; want 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	if err := run(context.Background(), []string{"nope"}, func(string) string { return "" }, nil, io.Discard, io.Discard); err == nil {
		t.Error("run with an unknown command succeeded")
	}
}

func TestCLIHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"help"}, func(string) string { return "" }, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"send", "tail", "query", "sessions", "stats", "subs create", "subs replay", "consumers next", "consumers ack", "producers", "--server", "--token", "--admin-token", "EVENTSYNC_TOKEN"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help does not mention %q", cmd)
		}
	}
	tests := []struct {
		args  []string
		flags []string
	}{
		{[]string{"send"}, []string{"-tag", "-message", "-session", "-source", "-severity", "-data", "-file", "-server", "-token", "-json"}},
		{[]string{"tail"}, []string{"-tag", "-since", "-json", "EVENTSYNC_SERVER"}},
		{[]string{"query"}, []string{"-tag", "-category", "-code", "-session", "-source", "-severity", "-from", "-to", "-since", "-limit", "-order"}},
		{[]string{"sessions"}, []string{"-json"}},
		{[]string{"stats"}, []string{"-from", "-to", "-bucket", "-tag"}},
		{[]string{"subs"}, []string{"list", "create", "delete", "replay"}},
		{[]string{"subs", "create"}, []string{"-url", "-tags", "-type", "-header", "-secret"}},
		{[]string{"subs", "replay"}, []string{"-since-seq", "-from", "-to"}},
		{[]string{"consumers"}, []string{"list", "create", "next", "ack", "seek", "delete"}},
		{[]string{"consumers", "next"}, []string{"-limit", "-wait", "-ack"}},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(t.Context(), append([]string{"help"}, tt.args...), func(string) string { return "" }, nil, &out, &out)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("help %q = %v", tt.args, err)
		}
		for _, f := range tt.flags {
			if !strings.Contains(out.String(), f) {
				t.Errorf("help %q does not mention %q:\n%s", tt.args, f, out.String())
			}
		}
	}
}

// TestCLIBinary builds eventsync and runs it as a process against an
// in-process server: events piped to send, read back with query --json.
func TestCLIBinary(t *testing.T) {
	base := apptest.Start(t, nil, apptest.Fast...).Base
	bin := filepath.Join(t.TempDir(), "eventsync")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if out, err := exec.CommandContext(t.Context(), gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	command := func(stdin string, args ...string) (string, string, error) {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Env = append(os.Environ(), "EVENTSYNC_SERVER="+base, "NO_COLOR=1")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}

	var in strings.Builder
	for i := range 20 {
		fmt.Fprintf(&in, `{"tag":"BIN.EVENT","message":"m%d","severity":"notice"}`+"\n", i)
	}
	out, errOut, err := command(in.String(), "send")
	if err != nil || out != "Sent 20 events: 20 accepted, 0 duplicates.\n" || errOut != "" {
		t.Fatalf("eventsync send = %v, stdout %q, stderr %q; want 20 accepted and no progress bar", err, out, errOut)
	}
	var got []event.Event
	for deadline := time.Now().Add(30 * time.Second); len(got) < 20 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, errOut, err := command("", "query", "--json", "--tag", "BIN.>")
		if err != nil {
			t.Fatalf("eventsync query = %v\n%s", err, errOut)
		}
		got = decodeEvents(t, out)
	}
	if len(got) != 20 || got[0].Message != "m0" || got[19].Message != "m19" || got[0].Severity != event.Notice {
		t.Fatalf("eventsync query --json: %d events (%v); want m0…m19", len(got), got)
	}

	_, errOut, err = command("", "send", "--tag", "NODOT", "--message", "m")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(errOut, "eventsync: send: 422") {
		t.Errorf("eventsync send of a bad tag = %v, stderr %q; want exit 1 and the problem", err, errOut)
	}
}

// decodeEvents decodes the events query --json prints, one a line.
func decodeEvents(t *testing.T, out string) []event.Event {
	t.Helper()
	var events []event.Event
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e event.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("query --json printed %q: %v", out, err)
		}
		events = append(events, e)
	}
	return events
}

// eventsync help lists the producers command.
func TestHelpListsProducers(t *testing.T) {
	var buf bytes.Buffer
	if err := run(t.Context(), []string{"help"}, func(string) string { return "" }, nil, &buf, io.Discard); err != nil || !strings.Contains(buf.String(), "eventsync producers") {
		t.Errorf("eventsync help = %v, %q; want the producers command listed", err, buf.String())
	}
}
