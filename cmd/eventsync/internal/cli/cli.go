// Package cli is the EventSync command-line client: send, tail, query,
// sessions, stats, subs, consumers and producers, each talking to a
// running EventSync through its HTTP API (package client).
package cli

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

// Console is what a client command reads and writes, and what it knows of
// its environment.
type Console struct {
	In       io.Reader // where send reads events from; nil: nothing
	Out, Err io.Writer
	Getenv   func(string) string
}

// terminal reports whether w is a terminal.
func terminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// color reports whether to color what goes to stdout: only on a terminal,
// and never when NO_COLOR is set (https://no-color.org).
func (c Console) color() bool {
	return c.Getenv("NO_COLOR") == "" && terminal(c.Out)
}

// progress reports whether to draw progress bars: on stderr, when both
// stdout and stderr are terminals.
func (c Console) progress() bool {
	return terminal(c.Out) && terminal(c.Err)
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
func command(name, synopsis, about string, con Console) (*conf.Set, *apiFlags) {
	fs := conf.New("eventsync "+name, con.Getenv, con.Out)
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

// Has reports whether cmd names a client command.
func Has(cmd string) bool {
	switch cmd {
	case "send", "tail", "query", "sessions", "stats", "subs", "consumers", "producers":
		return true
	}
	return false
}

// Run runs the client command cmd with its arguments.
func Run(ctx context.Context, cmd string, args []string, con Console) error {
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
	case "producers":
		return runProducers(ctx, args, con.Getenv, con.Out)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// Usage describes the client commands, for the usage of eventsync.
const Usage = `Client commands, against a running EventSync:
  eventsync send --tag CATEGORY.CODE --message TEXT [--session ID --source S --severity LEVEL
                 --data JSON --id ID --timestamp T --category C --code C]
  eventsync send [--file PATH]      events from a file or stdin: JSON array, object or NDJSON
  eventsync tail [--tag PATTERN] [--since SEQ]                 follow events live (Ctrl-C ends)
  eventsync query [--tag PATTERN --category C --code C --session ID --source S --severity LEVEL
                  --from T --to T --since SEQ --limit N --order asc|desc]
  eventsync sessions SESSION_ID     the events of one session
  eventsync stats [--from T --to T --bucket minute|hour|day --tag PATTERN]
  eventsync subs list | get ID | delete ID
  eventsync subs create --url URL --tags PATTERNS [--type webhook|slack|email --description TEXT
                        --header 'Name: value' --secret S --batch-events N --batch-wait D]
  eventsync subs replay ID (--since-seq N | --from T [--to T])
  eventsync consumers list | get NAME | delete NAME
  eventsync consumers create NAME --tags PATTERNS [--start new|all|SEQ|TIME]
  eventsync consumers next NAME [--limit N --wait D --ack]
  eventsync consumers ack NAME SEQ | seek NAME SEQ
  eventsync producers <cmd>         create, list, change and rotate producers (admin API)

Every client command takes:
  --server URL      base URL of the HTTP API [$EVENTSYNC_SERVER] (default http://127.0.0.1:8080)
  --token T         producer credential: an API key esk_… (Bearer) or id:password (Basic) [$EVENTSYNC_TOKEN]
  --admin-token T   admin token, for the admin endpoints [$EVENTSYNC_ADMIN_TOKEN]
  --json            print JSON instead of text (events as one JSON object a line)
Times (T) are RFC 3339, a date (2006-01-02) or a duration ago (15m, 24h). Tag patterns use
NATS wildcards: * is one token, > the rest (DATABASE.*, TEST.>). Tables and colors are for
people; a progress bar shows on a terminal only; NO_COLOR turns color off.
`
