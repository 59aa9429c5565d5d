package cli

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/conf"
)

// command is one client command being run: its flags, the server it talks
// to, and where it prints. Every command is built the same way: define
// flags on fs, parse, get a client, call it, print with its console, and
// return errors through fail.
type command struct {
	name  string // "subs create"
	fs    *conf.Set
	con   Console
	admin bool // talks to the admin API: needs the admin token

	server, token, adminToken string
	json                      bool
}

// newCommand returns the command name (its help shows synopsis and
// about) with the flags of every command that talks to a server: --server,
// --token, --admin-token and --json.
func newCommand(con Console, name, synopsis, about string) *command {
	c := &command{name: name, fs: conf.New("eventsync "+name, con.Getenv, con.Out), con: con}
	f := c.fs.FlagSet()
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage:\n  eventsync %s\n\n%s\nFlags:\n", synopsis, about)
		f.PrintDefaults()
	}
	c.fs.String(&c.server, "server", "EVENTSYNC_SERVER", "http://127.0.0.1:8080", "base URL of the EventSync HTTP API")
	return c
}

// clientCommand is a command of the producer and reader API.
func clientCommand(con Console, name, synopsis, about string) *command {
	c := newCommand(con, name, synopsis, about)
	c.fs.String(&c.token, "token", "EVENTSYNC_TOKEN", "", "producer credential: an API key (esk_…) or id:password")
	c.fs.String(&c.adminToken, "admin-token", "EVENTSYNC_ADMIN_TOKEN", "", "admin token of the server, sent to admin endpoints only")
	c.fs.Bool(&c.json, "json", "", false, "print JSON instead of text")
	return c
}

// adminCommand is a command of the admin API, which only the admin token
// opens.
func adminCommand(con Console, name, synopsis, about string) *command {
	c := newCommand(con, name, synopsis, about)
	c.admin = true
	c.fs.String(&c.adminToken, "admin-token", "EVENTSYNC_ADMIN_TOKEN", "", "admin token of the EventSync server (its ADMIN_TOKEN)")
	c.fs.Bool(&c.json, "json", "", false, "print the API's JSON instead of text")
	return c
}

// parse parses flags anywhere among the arguments (`get ID --json`, which
// flag.Parse alone does not allow), checks that the positional ones number
// want (what names them in the error) and returns them with a client of
// the server, with the credentials given.
func (c *command) parse(args []string, want int, what string) ([]string, *client.Client, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, c.fail(err)
		}
		rest := c.fs.FlagSet().Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) == want:
	case want == 0:
		return nil, nil, fmt.Errorf("%s takes no arguments, got %q", c.name, pos)
	default:
		return nil, nil, fmt.Errorf("%s takes %s (see eventsync help %s)", c.name, what, c.name)
	}
	cl, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	return pos, cl, nil
}

// given reports which flags the command line set.
func (c *command) given() map[string]bool {
	set := map[string]bool{}
	c.fs.FlagSet().Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// adminTimeout bounds each request of an admin command; the others may
// hold a request open (tail, next) and are bounded by their context.
const adminTimeout = 30 * time.Second

// client returns a client of the server with the credentials given.
func (c *command) client() (*client.Client, error) {
	var opts []client.Option
	switch id, password, basic := strings.Cut(c.token, ":"); {
	case c.token == "":
	case basic:
		opts = append(opts, client.WithBasic(id, password))
	default:
		opts = append(opts, client.WithAPIKey(c.token))
	}
	switch {
	case c.adminToken != "":
		opts = append(opts, client.WithAdminToken(c.adminToken))
	case c.admin:
		return nil, c.fail(errors.New("no admin token: set --admin-token or $EVENTSYNC_ADMIN_TOKEN"))
	}
	if c.admin {
		opts = append(opts, client.WithHTTPClient(&http.Client{Timeout: adminTimeout}))
	}
	cl, err := client.New(c.server, opts...)
	if err != nil {
		return nil, c.fail(fmt.Errorf("--server: %w", err))
	}
	return cl, nil
}

// fail returns err as the command's error: an error answer of the API in
// full (see problemError), anything else with the command's name in front.
func (c *command) fail(err error) error {
	return c.failAs(c.name, err)
}

// failAs is fail naming the step that failed: "consumers next: ack".
func (c *command) failAs(op string, err error) error {
	var e *client.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		p := &problemError{op: op, e: e}
		if e.Status == http.StatusNotFound && e.Type == "" { // no problem+json: something else answered
			api := "EventSync API"
			if c.admin {
				api = "admin API"
			}
			p.hint = fmt.Sprintf("no %s at %s (is it an EventSync server?)", api, c.server)
		}
		return p
	}
	return fmt.Errorf("%s: %w", op, err)
}

// problemError shows an error answer of the API in full: status, title,
// detail, and one line per field at fault.
type problemError struct {
	op   string
	e    *client.Error
	hint string // replaces the detail of an answer that is no problem
}

func (p *problemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s", p.op, p.e.Status, p.e.Title)
	if d := cmp.Or(p.hint, p.e.Detail); d != "" {
		b.WriteString(": " + d)
	}
	if p.e.Owner != "" {
		b.WriteString(" (owned by producer " + p.e.Owner + ")")
	}
	for _, fe := range p.e.Errors {
		fmt.Fprintf(&b, "\n  %s %s", fe.Pointer, fe.Detail)
	}
	if p.e.RequestID != "" {
		b.WriteString("\n  request id " + p.e.RequestID)
	}
	return b.String()
}

func (p *problemError) Unwrap() error { return p.e }

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

// listFlag is a flag of several values: repeated (--tags 'A.*' --tags
// 'B.>'), comma-separated (--tags 'A.*,B.>') or both. Empty items are
// dropped, so that an empty value (--owns "") gives an empty list.
type listFlag struct {
	items []string
	given bool // set on the command line, even to an empty list
}

func (l *listFlag) String() string { return strings.Join(l.items, ",") }

func (l *listFlag) Set(v string) error {
	if !l.given {
		l.items, l.given = []string{}, true
	}
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			l.items = append(l.items, item)
		}
	}
	return nil
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
