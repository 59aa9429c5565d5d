package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/event"
)

const queryAbout = `Reads stored events (GET /v1/events), oldest first from --since, and
prints them as a table (seq, time, tag, severity, message) or, with --json,
as one JSON event a line (NDJSON, which "eventsync send" reads back).
Times are RFC 3339, a date (2006-01-02) or a duration ago (15m, 24h).
`

// queryFlags are the filters of query.
type queryFlags struct {
	tag, category, code, session, source string
	severity, from, to, order            string
	since                                uint64
	limit                                int
}

func runQuery(ctx context.Context, args []string, con Console) error {
	fs, api := command("query", "query [--tag PATTERN --category C --code C --session ID --source S --severity LEVEL --from T --to T --since SEQ --limit N --order asc|desc] [--json]", queryAbout, con)
	var q queryFlags
	f := fs.FlagSet()
	f.StringVar(&q.tag, "tag", "", "tag pattern with NATS wildcards: DATABASE.*, TEST.>")
	f.StringVar(&q.category, "category", "", "category")
	f.StringVar(&q.code, "code", "", "code")
	f.StringVar(&q.session, "session", "", "session id")
	f.StringVar(&q.source, "source", "", "source")
	f.StringVar(&q.severity, "severity", "", "the least severity: debug, info, notice, warning, error or critical")
	f.StringVar(&q.from, "from", "", "events at or after this time")
	f.StringVar(&q.to, "to", "", "events before this time")
	f.Uint64Var(&q.since, "since", 0, "events with a seq greater than this (the cursor)")
	f.IntVar(&q.limit, "limit", client.DefaultLimit, "the most events to print (0: every one; with --order desc at most 10000)")
	f.StringVar(&q.order, "order", "asc", "asc: oldest first from --since; desc: the newest --limit events")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	filter, err := q.filter(time.Now())
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	p := newEventPrinter(con.Out, api.json)
	var last uint64
	n := 0
	for e, err := range c.Events(ctx, filter) {
		if err != nil {
			p.flush()
			return explain("query", err)
		}
		if err := p.print(e); err != nil {
			return err
		}
		last = max(last, e.Seq)
		if n++; q.limit > 0 && n >= q.limit {
			break
		}
	}
	if err := p.flush(); err != nil {
		return err
	}
	if !api.json {
		if n == 0 {
			fmt.Fprintln(con.Out, "No events.")
		} else if !filter.Newest {
			fmt.Fprintf(con.Out, "%s; continue with --since %d\n", plural(int64(n), "event"), last)
		}
	}
	return nil
}

// filter turns the flags into a client.Filter.
func (q *queryFlags) filter(now time.Time) (client.Filter, error) {
	f := client.Filter{
		Since: q.since, Tag: q.tag, Category: q.category, Code: q.code, SessionID: q.session, Source: q.source,
	}
	var errs []error
	if q.limit < 0 {
		errs = append(errs, fmt.Errorf("--limit %d: want 0 or more", q.limit))
	}
	f.Limit = client.MaxLimit
	if q.limit > 0 && q.limit < client.MaxLimit {
		f.Limit = q.limit
	}
	switch q.order {
	case "asc", "":
	case "desc":
		f.Newest = true
	default:
		errs = append(errs, fmt.Errorf("--order %q: want asc or desc", q.order))
	}
	if q.severity != "" {
		s, err := event.ParseSeverity(q.severity)
		if err != nil {
			errs = append(errs, fmt.Errorf("--severity: %w", err))
		}
		f.Severity = s
	}
	var err error
	if f.From, err = parseTime("from", q.from, now); err != nil {
		errs = append(errs, err)
	}
	if f.To, err = parseTime("to", q.to, now); err != nil {
		errs = append(errs, err)
	}
	return f, errors.Join(errs...)
}

// eventPrinter prints events as a table, or as JSON lines.
type eventPrinter struct {
	w    io.Writer
	json bool
	tw   *tabwriter.Writer
	rows int // rows since the table was flushed
}

// tableChunk is how many rows are aligned together: a long listing
// streams instead of waiting for its last row.
const tableChunk = 1000

func newEventPrinter(w io.Writer, asJSON bool) *eventPrinter {
	return &eventPrinter{w: w, json: asJSON}
}

func (p *eventPrinter) print(e event.Event) error {
	if p.json {
		return writeJSON(p.w, e)
	}
	if p.tw == nil {
		p.tw = tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(p.tw, "SEQ\tTIME\tTAG\tSEVERITY\tMESSAGE")
	}
	fmt.Fprintf(p.tw, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.Timestamp.Local().Format(timeLayout), e.Tag, severityText(e.Severity), oneLine(e.Message))
	if p.rows++; p.rows >= tableChunk {
		return p.flush()
	}
	return nil
}

func (p *eventPrinter) flush() error {
	p.rows = 0
	if p.tw == nil {
		return nil
	}
	if err := p.tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// timeLayout is how tables show times: RFC 3339 to the millisecond.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func severityText(s event.Severity) string {
	if s == 0 {
		return event.Info.String()
	}
	return s.String()
}

// oneLine makes text fit one line, with no control characters (which could
// drive the terminal) left in it.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

const sessionsAbout = `Prints the events of one session (GET /v1/sessions/{id}/events) in the
order they happened, as a table or, with --json, as JSON lines.
`

func runSessions(ctx context.Context, args []string, con Console) error {
	fs, api := command("sessions", "sessions SESSION_ID [--json]", sessionsAbout, con)
	pos, err := parseArgs(fs, args, 1, "a session id")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	events, err := c.Session(ctx, pos[0])
	if err != nil {
		return explain("sessions", err)
	}
	p := newEventPrinter(con.Out, api.json)
	for _, e := range events {
		if err := p.print(e); err != nil {
			return err
		}
	}
	if err := p.flush(); err != nil {
		return err
	}
	if !api.json && len(events) == 0 {
		fmt.Fprintf(con.Out, "No events in session %s.\n", pos[0])
	}
	return nil
}

const statsAbout = `Counts events per tag per time bucket (GET /v1/stats). Without flags: the
last 24 hours by hour, every tag. Times are RFC 3339, a date (2006-01-02)
or a duration ago (15m, 24h).
`

func runStats(ctx context.Context, args []string, con Console) error {
	fs, api := command("stats", "stats [--from T --to T --bucket minute|hour|day --tag PATTERN] [--json]", statsAbout, con)
	var from, to, bucket, tag string
	f := fs.FlagSet()
	f.StringVar(&from, "from", "", "count events at or after this time (default: 24h ago)")
	f.StringVar(&to, "to", "", "count events before this time (default: now)")
	f.StringVar(&bucket, "bucket", "", "minute, hour or day (default hour)")
	f.StringVar(&tag, "tag", "", "tag pattern with NATS wildcards: DATABASE.*, TEST.>")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	now := time.Now()
	sf := client.StatsFilter{Bucket: bucket, Tag: tag}
	var errs []error
	var err error
	if sf.From, err = parseTime("from", from, now); err != nil {
		errs = append(errs, err)
	}
	if sf.To, err = parseTime("to", to, now); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	s, err := c.Stats(ctx, sf)
	if err != nil {
		return explain("stats", err)
	}
	if api.json {
		return writeJSON(con.Out, s)
	}
	fmt.Fprintf(con.Out, "Events per %s from %s to %s:\n", s.Bucket, s.From.Local().Format(time.RFC3339), s.To.Local().Format(time.RFC3339))
	tw := tabwriter.NewWriter(con.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tTAG\tCOUNT")
	var total uint64
	for _, n := range s.Counts {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", n.Bucket.Local().Format(time.RFC3339), n.Tag, n.Count)
		total += n.Count
	}
	fmt.Fprintf(tw, "total\t\t%d\n", total)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

const tailAbout = `Follows events live (GET /v1/stream, Server-Sent Events), one line per
event, colored on a terminal (set NO_COLOR to turn color off); with --json,
one JSON event a line. Without --since it shows events stored from now on;
--since 0 starts with every stored event. It reconnects by itself and
never shows an event twice. Ctrl-C ends it.
`

func runTail(ctx context.Context, args []string, con Console) error {
	fs, api := command("tail", "tail [--tag PATTERN] [--since SEQ] [--json]", tailAbout, con)
	var tag, since string
	f := fs.FlagSet()
	f.StringVar(&tag, "tag", "", "tag pattern with NATS wildcards: DATABASE.*, TEST.> (default: every event)")
	f.StringVar(&since, "since", "", "start after this seq (0: every stored event; default: only new events)")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	from := client.Live
	if since != "" {
		n, err := parseSeq("--since", since)
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		from = n
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	color := !api.json && con.color()
	for e, err := range c.Tail(ctx, tag, from) {
		if err != nil {
			return explain("tail", err)
		}
		if api.json {
			err = writeJSON(con.Out, e)
		} else {
			_, err = io.WriteString(con.Out, tailLine(e, color))
		}
		if err != nil {
			return fmt.Errorf("tail: write: %w", err)
		}
	}
	return nil // ctx done: Ctrl-C
}

// ANSI styles of the tail.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiCyan   = "\x1b[36m"
)

// severityStyle is the color of each severity.
func severityStyle(s event.Severity) string {
	switch s {
	case event.Debug:
		return ansiDim
	case event.Notice:
		return ansiBlue
	case event.Warning:
		return ansiYellow
	case event.Error:
		return ansiRed
	case event.Critical:
		return ansiBold + ansiRed
	}
	return ansiCyan // info
}

// tailLine formats one event of the tail:
// 15:04:05.000 #42 WARNING  DATABASE.CONNECTION_LOST  message  session=… source=…
func tailLine(e event.Event, color bool) string {
	style := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	b.WriteString(style(ansiDim, e.Timestamp.Local().Format("15:04:05.000")))
	b.WriteString(" ")
	b.WriteString(style(ansiDim, "#"+strconv.FormatUint(e.Seq, 10)))
	b.WriteString(" ")
	b.WriteString(style(severityStyle(e.Severity), fmt.Sprintf("%-8s", strings.ToUpper(severityText(e.Severity)))))
	b.WriteString(" ")
	b.WriteString(style(ansiBold, e.Tag))
	b.WriteString("  ")
	b.WriteString(oneLine(e.Message))
	var extra []string
	if e.SessionID != "" {
		extra = append(extra, "session="+oneLine(e.SessionID))
	}
	if e.Source != "" {
		extra = append(extra, "source="+oneLine(e.Source))
	}
	if len(e.Data) > 0 && string(e.Data) != "{}" {
		extra = append(extra, "data="+oneLine(string(e.Data)))
	}
	if len(extra) > 0 {
		b.WriteString("  ")
		b.WriteString(style(ansiDim, strings.Join(extra, " ")))
	}
	b.WriteString("\n")
	return b.String()
}
