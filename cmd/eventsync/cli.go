package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/conf"
	"golang.org/x/term"
)

// console is what a client command reads and writes, and what it knows of
// them.
type console struct {
	in       io.Reader
	out, err io.Writer
	getenv   func(string) string
}

// terminal reports whether w is a terminal.
func terminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// color reports whether to color what goes to stdout: only on a terminal,
// and never when NO_COLOR is set (https://no-color.org).
func (c console) color() bool {
	return c.getenv("NO_COLOR") == "" && terminal(c.out)
}

// progress reports whether to draw progress bars: on stderr, when both
// stdout and stderr are terminals.
func (c console) progress() bool {
	return terminal(c.out) && terminal(c.err)
}

// apiFlags are the flags of every command that talks to a server.
type apiFlags struct {
	server     string
	token      string
	adminToken string
	json       bool
}

func (a *apiFlags) register(fs *conf.Set) {
	fs.String(&a.server, "server", "EVENTSYNC_SERVER", "http://127.0.0.1:8080", "base URL of the EventSync HTTP API")
	fs.String(&a.token, "token", "EVENTSYNC_TOKEN", "", "producer credential: an API key (esk_…) or id:password")
	fs.String(&a.adminToken, "admin-token", "EVENTSYNC_ADMIN_TOKEN", "", "admin token of the server, sent to admin endpoints only")
	fs.Bool(&a.json, "json", "", false, "print JSON instead of text")
}

// client returns a client of the server with the credentials given.
func (a *apiFlags) client() (*client.Client, error) {
	var opts []client.Option
	switch id, password, basic := strings.Cut(a.token, ":"); {
	case a.token == "":
	case basic:
		opts = append(opts, client.WithBasic(id, password))
	default:
		opts = append(opts, client.WithAPIKey(a.token))
	}
	if a.adminToken != "" {
		opts = append(opts, client.WithAdminToken(a.adminToken))
	}
	c, err := client.New(a.server, opts...)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	return c, nil
}

// command is the flag set of one client command with its help text.
func command(name, synopsis, about string, con console) (*conf.Set, *apiFlags) {
	fs := conf.New("eventsync "+name, con.getenv, con.out)
	f := fs.FlagSet()
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage:\n  eventsync %s\n\n%s\nFlags:\n", synopsis, about)
		f.PrintDefaults()
	}
	a := &apiFlags{}
	a.register(fs)
	return fs, a
}

// parseArgs parses flags anywhere among the arguments and checks that the
// positional ones number want.
func parseArgs(fs *conf.Set, args []string, want int, what string) ([]string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != want {
		name := strings.TrimPrefix(fs.FlagSet().Name(), "eventsync ")
		if want == 0 {
			return nil, fmt.Errorf("%s takes no arguments, got %q", name, pos)
		}
		return nil, fmt.Errorf("%s takes %s (see eventsync help %s)", name, what, name)
	}
	return pos, nil
}

// problemError shows an error answer of the API in full: status, title,
// detail, and one line per field at fault.
type problemError struct {
	op string
	e  *client.Error
}

func (p *problemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s", p.op, p.e.Status, p.e.Title)
	if p.e.Detail != "" {
		b.WriteString(": " + p.e.Detail)
	}
	if p.e.Owner != "" {
		b.WriteString(" (owned by producer " + p.e.Owner + ")")
	}
	for _, fe := range p.e.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", fe.Pointer, fe.Detail)
	}
	if p.e.RequestID != "" {
		b.WriteString("\n  request id " + p.e.RequestID)
	}
	return b.String()
}

func (p *problemError) Unwrap() error { return p.e }

// explain wraps err for printing: an error answer of the API in full,
// anything else with op in front.
func explain(op string, err error) error {
	var e *client.Error
	if errors.As(err, &e) {
		return &problemError{op: op, e: e}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// parseTime reads a time flag: RFC 3339, a date (2006-01-02, UTC), or a
// duration meaning that long before now (15m, 24h).
func parseTime(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d.Abs()), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time, a date (2006-01-02) or a duration ago (15m, 24h)", name, s)
}

// parseSeq reads a stream sequence.
func parseSeq(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a stream sequence (0, 1, 2 …)", what, s)
	}
	return n, nil
}

// headerFlags collects repeated --header Name:Value flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("want Name: value, got %q", v)
	}
	h[name] = strings.TrimSpace(value)
	return nil
}

// runClient runs one of the client commands.
func runClient(ctx context.Context, cmd string, args []string, con console) error {
	switch cmd {
	case "send":
		return runSend(ctx, args, con)
	case "tail":
		return runTail(ctx, args, con)
	case "query":
		return runQuery(ctx, args, con)
	case "sessions":
		return runSessions(ctx, args, con)
	case "stats":
		return runStats(ctx, args, con)
	case "subs":
		return runSubs(ctx, args, con)
	case "consumers":
		return runConsumers(ctx, args, con)
	}
	return fmt.Errorf("unknown command %q", cmd)
}
