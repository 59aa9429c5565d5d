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
	severity, from, to, order, since     string
	limit                                int
}

func runQuery(ctx context.Context, args []string, con Console) error {
	c := clientCommand(con, "query", "query [--tag PATTERN --category C --code C --session ID --source S --severity LEVEL --from T --to T --since SEQ --limit N --order asc|desc] [--json]", queryAbout)
	var q queryFlags
	c.fs.String(&q.tag, "tag", "", "", "tag pattern with NATS wildcards: DATABASE.*, TEST.>")
	c.fs.String(&q.category, "category", "", "", "category")
	c.fs.String(&q.code, "code", "", "", "code")
	c.fs.String(&q.session, "session", "", "", "session id")
	c.fs.String(&q.source, "source", "", "", "source")
	c.fs.String(&q.severity, "severity", "", "", "the least severity: debug, info, notice, warning, error or critical")
	c.fs.String(&q.from, "from", "", "", "events at or after this time")
	c.fs.String(&q.to, "to", "", "", "events before this time")
	c.fs.String(&q.since, "since", "", "0", "events with a seq greater than this (the cursor)")
	c.fs.Int(&q.limit, "limit", "", client.DefaultLimit, "the most events to print (0: every one; with --order desc at most 10000)")
	c.fs.String(&q.order, "order", "", "asc", "asc: oldest first from --since; desc: the newest --limit events")
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	filter, err := q.filter(time.Now())
	if err != nil {
		return c.fail(err)
	}
	p := newEventPrinter(con.Out, c.json)
	var last uint64
	n := 0
	for e, err := range cl.Events(ctx, filter) {
		if err != nil {
			p.flush()
			return c.fail(err)
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
	if !c.json {
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
		Tag: q.tag, Category: q.category, Code: q.code, SessionID: q.session, Source: q.source,
	}
	var errs []error
	var err error
	if f.Since, err = parseSeq("--since", q.since); err != nil {
		errs = append(errs, err)
	}
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
	w      io.Writer
	json   bool
	header bool       // the table's header is printed
	rows   [][]string // rows not printed yet
}

// tableChunk is how many rows are aligned together: a long listing
// streams instead of waiting for its last row.
const tableChunk = 1000

func newEventPrinter(w io.Writer, asJSON bool) *eventPrinter {
	return &eventPrinter{w: w, json: asJSON}
}

func (p *eventPrinter) print(e event.Event) error {
	if p.json {
		return printJSON(p.w, e)
	}
	if !p.header {
		p.rows, p.header = append(p.rows, []string{"SEQ", "TIME", "TAG", "SEVERITY", "MESSAGE"}), true
	}
	p.rows = append(p.rows, []string{strconv.FormatUint(e.Seq, 10), e.Timestamp.Local().Format(timeLayout), e.Tag, severityText(e.Severity), oneLine(e.Message)})
	if len(p.rows) >= tableChunk {
		return p.flush()
	}
	return nil
}

func (p *eventPrinter) flush() error {
	rows := p.rows
	p.rows = nil
	if len(rows) == 0 {
		return nil
	}
	return printRows(p.w, "", rows)
}

// printEvents prints events as a table.
func printEvents(w io.Writer, events []event.Event) error {
	p := newEventPrinter(w, false)
	for _, e := range events {
		if err := p.print(e); err != nil {
			return err
		}
	}
	return p.flush()
}

func severityText(s event.Severity) string {
	if s == 0 {
		return event.Info.String()
	}
	return s.String()
}

const sessionsAbout = `Prints the events of one session (GET /v1/sessions/{id}/events) in the
order they happened, as a table or, with --json, as JSON lines.
`

func runSessions(ctx context.Context, args []string, con Console) error {
	c := clientCommand(con, "sessions", "sessions SESSION_ID [--json]", sessionsAbout)
	pos, cl, err := c.parse(args, 1, "a session id")
	if err != nil {
		return err
	}
	events, err := cl.Session(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		for _, e := range events {
			if err := printJSON(con.Out, e); err != nil {
				return err
			}
		}
		return nil
	}
	if err := printEvents(con.Out, events); err != nil {
		return err
	}
	if len(events) == 0 {
		fmt.Fprintf(con.Out, "No events in session %s.\n", pos[0])
	}
	return nil
}

const statsAbout = `Counts events per tag per time bucket (GET /v1/stats). Without flags: the
last 24 hours by hour, every tag. Times are RFC 3339, a date (2006-01-02)
or a duration ago (15m, 24h).
`

func runStats(ctx context.Context, args []string, con Console) error {
	c := clientCommand(con, "stats", "stats [--from T --to T --bucket minute|hour|day --tag PATTERN] [--json]", statsAbout)
	var from, to, bucket, tag string
	c.fs.String(&from, "from", "", "", "count events at or after this time (default: 24h ago)")
	c.fs.String(&to, "to", "", "", "count events before this time (default: now)")
	c.fs.String(&bucket, "bucket", "", "", "minute, hour or day (default hour)")
	c.fs.String(&tag, "tag", "", "", "tag pattern with NATS wildcards: DATABASE.*, TEST.>")
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	now := time.Now()
	sf := client.StatsFilter{Bucket: bucket, Tag: tag}
	var errs []error
	if sf.From, err = parseTime("from", from, now); err != nil {
		errs = append(errs, err)
	}
	if sf.To, err = parseTime("to", to, now); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return c.fail(err)
	}
	s, err := cl.Stats(ctx, sf)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return printJSON(con.Out, s)
	}
	fmt.Fprintf(con.Out, "Events per %s from %s to %s:\n", s.Bucket, localTime(s.From), localTime(s.To))
	rows := make([][]string, 0, len(s.Counts)+1)
	var total uint64
	for _, n := range s.Counts {
		rows = append(rows, []string{localTime(n.Bucket), n.Tag, strconv.FormatUint(n.Count, 10)})
		total += n.Count
	}
	rows = append(rows, []string{"total", "", strconv.FormatUint(total, 10)})
	return printTable(con.Out, []string{"BUCKET", "TAG", "COUNT"}, rows)
}

const tailAbout = `Follows events live (GET /v1/stream, Server-Sent Events), one line per
event, colored on a terminal (set NO_COLOR to turn color off); with --json,
one JSON event a line. Without --since it shows events stored from now on;
--since 0 starts with every stored event. It reconnects by itself and
never shows an event twice. Ctrl-C ends it.
`

func runTail(ctx context.Context, args []string, con Console) error {
	c := clientCommand(con, "tail", "tail [--tag PATTERN] [--since SEQ] [--json]", tailAbout)
	var tag, since string
	c.fs.String(&tag, "tag", "", "", "tag pattern with NATS wildcards: DATABASE.*, TEST.> (default: every event)")
	c.fs.String(&since, "since", "", "", "start after this seq (0: every stored event; default: only new events)")
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	from := client.Live
	if since != "" {
		n, err := parseSeq("--since", since)
		if err != nil {
			return c.fail(err)
		}
		from = n
	}
	color := !c.json && con.color()
	for e, err := range cl.Tail(ctx, tag, from) {
		if err != nil {
			return c.fail(err)
		}
		if c.json {
			err = printJSON(con.Out, e)
		} else {
			_, err = io.WriteString(con.Out, tailLine(e, color))
		}
		if err != nil {
			return c.fail(err)
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
