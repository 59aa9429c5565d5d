// Package chstore is EventSync's ClickHouse event store. It works on
// ClickHouse 18.16 (Debian's package, what CI runs) and on current 24.x/25.x
// servers, over the native protocol only (clickhouse-go/v2). See schema.go
// for the tables and why.
package chstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/subject"
)

// queryThreads is max_threads for reads: the server auto-detects 1 on small
// VMs, and 2 nearly halves scan-bound queries there.
const queryThreads = 2

// minWindow is the smallest seq window a cursor query reads (see Events).
const minWindow = 10_000

// Store is an event store in one ClickHouse database. It is safe for
// concurrent use.
type Store struct {
	conn    driver.Conn
	db      string // quoted database name
	version serverVersion
}

// Open connects to the ClickHouse server in dsn
// (clickhouse://[user[:password]@]host:port/database[?options], native
// protocol), creates the database if it is missing, detects the server
// version and creates the schema. It starts no goroutines; connections are
// opened on demand.
func Open(ctx context.Context, dsn string) (*Store, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse store: parse dsn: %w", err)
	}
	if opts.Protocol != clickhouse.Native {
		return nil, errors.New("open clickhouse store: only the native protocol is supported")
	}
	name := opts.Auth.Database
	if !validDatabase(name) {
		return nil, fmt.Errorf("open clickhouse store: database name %q must be 1-64 letters, digits or '_'", name)
	}
	// Connect without a database (the user's default) so that the handshake
	// works before the database exists; every statement names its table
	// with the database.
	opts.Auth.Database = ""
	if u, err := url.Parse(dsn); err == nil && !u.Query().Has("dial_timeout") {
		// The driver's default is 30 s; it also bounds waiting for a free
		// connection. Fail faster so callers can answer 503 and retry.
		opts.DialTimeout = 10 * time.Second
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse store: %w", err)
	}
	s := &Store{conn: conn, db: quoteIdent(name)}
	if err := s.init(ctx, name); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open clickhouse store %s: %w", name, err)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, name string) error {
	var v string
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return wrap("detect server version", err)
	}
	ver, err := parseVersion(v)
	if err != nil {
		return err
	}
	s.version = ver
	if err := s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.db); err != nil {
		return wrap("create database", err)
	}
	for _, stmt := range schema(s.db, ver) {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return wrap(fmt.Sprintf("create schema (server %s)", ver), err)
		}
	}
	return nil
}

// ServerVersion returns the major.minor version of the server detected at
// Open.
func (s *Store) ServerVersion() string { return s.version.String() }

// Insert stores events as one batch (one INSERT; the views copy it to the
// other tables). Re-inserting a stored seq is harmless: queries deduplicate
// by seq until merges remove the copy.
func (s *Store) Insert(ctx context.Context, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table(tableEvents)+" ("+columns+")")
	if err != nil {
		return wrap("insert: prepare batch", err)
	}
	for i := range events {
		e := &events[i]
		if err := batch.Append(
			e.Seq, e.ID, e.Subject, e.Tag, e.Category, e.Code, e.Message,
			e.Timestamp.UnixMicro(), e.ReceivedAt.UnixMicro(),
			e.SessionID, e.Source, uint8(e.Severity), e.Producer, string(e.Data),
		); err != nil {
			batch.Abort() //nolint:errcheck // the append error is the one to report
			return wrap(fmt.Sprintf("insert: append seq %d", e.Seq), err)
		}
	}
	if err := batch.Send(); err != nil {
		return wrap(fmt.Sprintf("insert %d events", len(events)), err)
	}
	return nil
}

// Events returns the events selected by f.
//
// Filters with a session id read events_by_session, filters with a category
// events_by_tag, the rest events. On events, seq-ordered queries read
// growing seq windows: an open-ended `seq > C ORDER BY seq LIMIT n` sorts
// every row after C on 18.16 (≈1 s at 5M rows) while a bounded range reads
// a few granules.
func (s *Store) Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error) {
	if f.Limit <= 0 {
		return nil, fmt.Errorf("events: limit must be > 0, got %d", f.Limit)
	}
	var order string
	switch f.Order {
	case eventstore.BySeq:
		order = "seq"
	case eventstore.BySeqDesc:
		order = "seq DESC"
	case eventstore.ByTime:
		order = "ts, seq"
	default:
		return nil, fmt.Errorf("events: unknown order %d", f.Order)
	}
	where, args, err := conditions(f)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if f.Allowed != nil && len(f.Allowed) == 0 {
		// The caller may read nothing. The condition says so too, but the
		// seq windows would still scan the whole range to find no row.
		return []event.Event{}, nil
	}
	ctx = queryContext(ctx)

	table := tableEvents
	switch {
	case f.SessionID != "":
		table = tableBySession
	case f.Category != "":
		table = tableByTag
	}
	if table != tableEvents || f.Order == eventstore.ByTime {
		if f.After > 0 {
			where = append(where, "seq > ?")
			args = append(args, f.After)
		}
		if f.Through > 0 {
			where = append(where, "seq <= ?")
			args = append(args, f.Through)
		}
		return s.query(ctx, table, where, args, order, f.Limit)
	}
	return s.windows(ctx, f, where, args, order)
}

// windows answers a seq-ordered query on events by reading the seq range
// (After, Through] in windows that start at max(2×limit, minWindow) seqs and
// double until enough rows are found or the range is exhausted.
func (s *Store) windows(ctx context.Context, f eventstore.Filter, where []string, args []any, order string) ([]event.Event, error) {
	lo, hi := f.After, f.Through
	if hi == 0 {
		var maxSeq uint64
		if err := s.conn.QueryRow(ctx, "SELECT max(seq) FROM "+s.table(tableEvents)).Scan(&maxSeq); err != nil {
			return nil, wrap("events: max seq", err)
		}
		hi = maxSeq
	}
	width := max(uint64(f.Limit)*2, minWindow)
	out := make([]event.Event, 0, min(f.Limit, 1024))
	where = append(where, "seq > ?", "seq <= ?")
	desc := f.Order == eventstore.BySeqDesc
	for lo < hi && len(out) < f.Limit {
		var from, through uint64 // this window: (from, through]
		if desc {
			through = hi
			from = lo
			if hi-lo > width {
				from = hi - width
			}
			hi = from
		} else {
			from = lo
			through = hi
			if hi-lo > width {
				through = lo + width
			}
			lo = through
		}
		page, err := s.query(ctx, tableEvents, where, append(args, from, through), order, f.Limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if width < 1<<62 {
			width *= 2
		}
	}
	return out, nil
}

// query runs one SELECT of full rows, deduplicated by seq.
func (s *Store) query(ctx context.Context, table string, where []string, args []any, order string, limit int) ([]event.Event, error) {
	q := "SELECT " + columns + " FROM " + s.table(table)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY %s LIMIT 1 BY seq LIMIT %d", order, limit)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("events", err)
	}
	defer rows.Close()
	out := make([]event.Event, 0, min(limit, 1024))
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return nil, wrap("events: scan", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("events", err)
	}
	return out, nil
}

// conditions returns the WHERE conditions of f other than the seq bounds.
func conditions(f eventstore.Filter) ([]string, []any, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.SessionID != "" {
		add("session_id = ?", f.SessionID)
	}
	if f.Category != "" {
		add("category = ?", f.Category)
	}
	if f.Code != "" {
		add("code = ?", f.Code)
	}
	if f.TagPattern != "" {
		re, err := subject.Regexp(f.TagPattern)
		if err != nil {
			return nil, nil, fmt.Errorf("tag pattern %q: %w", f.TagPattern, err)
		}
		add("match(tag, ?)", re)
	}
	if f.Allowed != nil {
		cond, condArgs, err := eventstore.AllowedCondition(f.Allowed, "match(tag, ?)")
		if err != nil {
			return nil, nil, err
		}
		where = append(where, cond)
		args = append(args, condArgs...)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.MinSeverity > 0 {
		add("severity >= ?", uint8(f.MinSeverity))
	}
	if !f.From.IsZero() {
		add("ts >= ?", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("ts < ?", f.To.UnixMicro())
	}
	return where, args, nil
}

// Event returns the event with id; if the id was stored under several seqs,
// the one with the lowest seq.
func (s *Store) Event(ctx context.Context, id string) (event.Event, error) {
	if id == "" {
		return event.Event{}, fmt.Errorf("event with empty id: %w", eventstore.ErrNotFound)
	}
	ctx = queryContext(ctx)
	// The scalar subquery runs first and becomes a constant, so the outer
	// query reads one granule of events by its primary key. min() of no rows
	// is 0, and no event has seq 0.
	q := "SELECT " + columns + " FROM " + s.table(tableEvents) +
		" WHERE seq = (SELECT min(seq) FROM " + s.table(tableIDs) + " WHERE id = ?) LIMIT 1"
	rows, err := s.conn.Query(ctx, q, id)
	if err != nil {
		return event.Event{}, wrap(fmt.Sprintf("event %q", id), err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return event.Event{}, wrap(fmt.Sprintf("event %q", id), err)
		}
		return event.Event{}, fmt.Errorf("event %q: %w", id, eventstore.ErrNotFound)
	}
	e, err := scan(rows)
	if err != nil {
		return event.Event{}, wrap(fmt.Sprintf("event %q: scan", id), err)
	}
	return e, nil
}

// Stats counts events per tag per bucket in [f.From, f.To), ordered by
// bucket then tag; re-inserted events count once.
func (s *Store) Stats(ctx context.Context, f eventstore.StatsFilter) ([]eventstore.Count, error) {
	var width int64
	switch f.Bucket {
	case eventstore.Minute:
		width = int64(time.Minute / time.Microsecond)
	case eventstore.Hour:
		width = int64(time.Hour / time.Microsecond)
	case eventstore.Day:
		width = int64(24 * time.Hour / time.Microsecond)
	default:
		return nil, fmt.Errorf("stats: unknown bucket %d", f.Bucket)
	}
	// Buckets are computed on the integer microseconds (floor division, also
	// for times before 1970): UTC minutes, hours and days are fixed widths of
	// Unix time, and this needs neither toStartOfInterval (not on 18.16) nor
	// a time zone. The width is cast because 18.16 types Int64 % UInt32 as
	// Int32, which overflows for hours (3.6e9 µs fits UInt32).
	q := fmt.Sprintf("SELECT ts - ((ts %% toInt64(%[1]d)) + toInt64(%[1]d)) %% toInt64(%[1]d) AS bucket, tag, uniqExact(seq) FROM %s WHERE ts >= ? AND ts < ?",
		width, s.table(tableByTag))
	args := []any{f.From.UnixMicro(), f.To.UnixMicro()}
	if f.TagPattern != "" {
		re, err := subject.Regexp(f.TagPattern)
		if err != nil {
			return nil, fmt.Errorf("stats: tag pattern %q: %w", f.TagPattern, err)
		}
		q += " AND match(tag, ?)"
		args = append(args, re)
	}
	if f.Allowed != nil {
		if len(f.Allowed) == 0 {
			return nil, nil // the caller may read nothing
		}
		cond, condArgs, err := eventstore.AllowedCondition(f.Allowed, "match(tag, ?)")
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		q += " AND " + cond
		args = append(args, condArgs...)
	}
	q += " GROUP BY bucket, tag ORDER BY bucket, tag"
	rows, err := s.conn.Query(queryContext(ctx), q, args...)
	if err != nil {
		return nil, wrap("stats", err)
	}
	defer rows.Close()
	var out []eventstore.Count
	for rows.Next() {
		var (
			bucket int64
			c      eventstore.Count
		)
		if err := rows.Scan(&bucket, &c.Tag, &c.Count); err != nil {
			return nil, wrap("stats: scan", err)
		}
		c.Bucket = time.UnixMicro(bucket).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("stats", err)
	}
	return out, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return wrap("ping", err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error {
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("close clickhouse store: %w", err)
	}
	return nil
}

func (s *Store) table(name string) string { return s.db + "." + name }

// queryContext sets the settings of read queries.
func queryContext(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_threads": queryThreads}))
}

func scan(rows driver.Rows) (event.Event, error) {
	var (
		e        event.Event
		ts, recv int64
		severity uint8
		data     string
	)
	if err := rows.Scan(&e.Seq, &e.ID, &e.Subject, &e.Tag, &e.Category, &e.Code, &e.Message,
		&ts, &recv, &e.SessionID, &e.Source, &severity, &e.Producer, &data); err != nil {
		return event.Event{}, err
	}
	e.Timestamp = time.UnixMicro(ts).UTC()
	e.ReceivedAt = time.UnixMicro(recv).UTC()
	e.Severity = event.Severity(severity)
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e, nil
}

// wrap adds context to err and marks it eventstore.ErrUnavailable when it
// means the server could not be reached or could not serve now.
func wrap(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, eventstore.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Server error codes that mean "try again later" rather than "bad query".
const (
	codeTimeoutExceeded   = 159
	codeTooManyQueries    = 202
	codeSocketTimeout     = 209
	codeNetworkError      = 210
	codeTooManyParts      = 252
	codeTooManyConcurrent = 203 // NO_FREE_CONNECTION
)

func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case codeTimeoutExceeded, codeTooManyQueries, codeSocketTimeout, codeNetworkError, codeTooManyParts, codeTooManyConcurrent:
			return true
		}
		return false
	}
	var netErr net.Error
	switch {
	case errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.Is(err, clickhouse.ErrAcquireConnNoAddress),
		errors.As(err, &netErr):
		return true
	}
	return false
}
