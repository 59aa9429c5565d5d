// Package sqlitestore is the embedded EventSync event store: a single SQLite
// file (modernc.org/sqlite, pure Go) for single-node installs and tests. It
// keeps the same contract as the ClickHouse store (package eventstore).
package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/subject"
)

// schema is applied at every Open; every statement is idempotent.
//
// seq is the rowid (INTEGER PRIMARY KEY), so the seq cursor is a b-tree range
// scan and INSERT OR IGNORE makes re-inserts no-ops. Timestamps are integer
// microseconds since the Unix epoch (UTC). The indexes serve, in order: one
// session's events by time (partial: queries must repeat its WHERE for
// SQLite to use it); category/code queries by time; Event(id); time ranges
// and Stats (covering: every index holds the rowid, seq).
//
// deliveries is the delivery audit (see deliveries.go), keyed the same way
// by its DELIVERIES stream seq, with one index per read path: a
// subscription's attempts and an event's attempts, each in seq order.
const schema = `
CREATE TABLE IF NOT EXISTS events (
	seq         INTEGER PRIMARY KEY,
	id          TEXT    NOT NULL,
	subject     TEXT    NOT NULL,
	tag         TEXT    NOT NULL,
	category    TEXT    NOT NULL,
	code        TEXT    NOT NULL,
	message     TEXT    NOT NULL,
	ts          INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	session_id  TEXT    NOT NULL,
	source      TEXT    NOT NULL,
	severity    INTEGER NOT NULL,
	producer    TEXT    NOT NULL,
	data        BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_session ON events (session_id, ts, seq) WHERE session_id != '';
CREATE INDEX IF NOT EXISTS events_category ON events (category, code, ts, seq);
CREATE INDEX IF NOT EXISTS events_id ON events (id, seq);
CREATE INDEX IF NOT EXISTS events_ts_tag ON events (ts, tag);

CREATE TABLE IF NOT EXISTS deliveries (
	seq             INTEGER PRIMARY KEY,
	subscription_id TEXT    NOT NULL,
	delivery_id     TEXT    NOT NULL,
	event_id        TEXT    NOT NULL,
	event_seq       INTEGER NOT NULL,
	tag             TEXT    NOT NULL,
	attempt         INTEGER NOT NULL,
	url             TEXT    NOT NULL,
	outcome         TEXT    NOT NULL,
	status_code     INTEGER NOT NULL,
	latency_ms      REAL    NOT NULL,
	error           TEXT    NOT NULL,
	response        TEXT    NOT NULL,
	ts              INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_subscription ON deliveries (subscription_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event_id, seq);
`

const columns = `seq, id, subject, tag, category, code, message, ts, received_at, session_id, source, severity, producer, data`

// Store is an event store in one SQLite file. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// insert is prepared once; each Insert binds it to its transaction.
	insert *sql.Stmt
}

// Open opens (creating if needed) the SQLite database at path in WAL mode
// with a busy timeout, and creates the schema.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: empty path")
	}
	// The regexp function is registered on a driver of our own rather than
	// on the package-level one, which would be process-global state.
	drv := &sqlite.Driver{}
	cache := &regexpCache{m: map[string]*regexp.Regexp{}}
	if err := drv.RegisterDeterministicScalarFunction("regexp", 2, cache.match); err != nil {
		return nil, fmt.Errorf("open sqlite store: register regexp: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// 64 MiB of page cache per connection: with the default 2 MiB the four
	// indexes stop fitting at a few hundred thousand events and inserts
	// slow to half.
	q.Add("_pragma", "cache_size(-65536)")
	// Checkpoint every ~40 MiB of WAL instead of 4 MiB: a 10k-event batch
	// writes several MiB, so the default checkpoints after nearly every
	// commit and index pages rewritten by consecutive batches are copied
	// again each time.
	q.Add("_pragma", "wal_autocheckpoint(10000)")
	q.Set("_txlock", "immediate")
	db := sql.OpenDB(connector{drv: drv, dsn: "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()})
	// One writer at a time is all SQLite allows; readers proceed in parallel
	// under WAL.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)

	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: create schema: %w", path, err)
	}
	ins, err := db.PrepareContext(ctx, `INSERT OR IGNORE INTO events (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: prepare insert: %w", path, err)
	}
	return &Store{db: db, insert: ins}, nil
}

// connector opens connections with a driver of our own.
type connector struct {
	drv *sqlite.Driver
	dsn string
}

// Connect implements driver.Connector.
func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.drv.Open(c.dsn)
}

// Driver implements driver.Connector.
func (c connector) Driver() driver.Driver { return c.drv }

// regexpCache backs the SQL function regexp(pattern, text), which SQLite
// also calls for "text REGEXP pattern". Patterns come from subject.Regexp,
// so there are few distinct ones.
type regexpCache struct {
	mu sync.Mutex
	m  map[string]*regexp.Regexp
}

func (c *regexpCache) match(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	pattern, ok := args[0].(string)
	if !ok {
		return nil, errors.New("regexp: pattern must be text")
	}
	var text string
	switch v := args[1].(type) {
	case string:
		text = v
	case []byte:
		text = string(v)
	case nil:
		return false, nil
	default:
		return nil, errors.New("regexp: value must be text")
	}
	c.mu.Lock()
	re, ok := c.m[pattern]
	if !ok {
		var err error
		if re, err = regexp.Compile(pattern); err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("regexp: %w", err)
		}
		if len(c.m) > 1000 {
			clear(c.m)
		}
		c.m[pattern] = re
	}
	c.mu.Unlock()
	return re.MatchString(text), nil
}

// Insert stores events in one transaction. Events whose seq is already
// stored are ignored.
func (s *Store) Insert(ctx context.Context, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("insert: begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt := tx.StmtContext(ctx, s.insert)
	for i := range events {
		e := &events[i]
		if e.Seq > 1<<63-1 {
			return fmt.Errorf("insert: seq %d does not fit in a signed 64-bit integer", e.Seq)
		}
		data := []byte(e.Data)
		if data == nil {
			data = []byte{}
		}
		if _, err := stmt.ExecContext(ctx,
			int64(e.Seq), e.ID, e.Subject, e.Tag, e.Category, e.Code, e.Message,
			e.Timestamp.UnixMicro(), e.ReceivedAt.UnixMicro(),
			e.SessionID, e.Source, int64(e.Severity), e.Producer, data,
		); err != nil {
			return wrap(fmt.Sprintf("insert seq %d", e.Seq), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("insert: commit", err)
	}
	return nil
}

// Events returns the events selected by f.
func (s *Store) Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error) {
	if f.Limit <= 0 {
		return nil, fmt.Errorf("events: limit must be > 0, got %d", f.Limit)
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.After > 0 {
		add("seq > ?", clampSeq(f.After))
	}
	if f.Through > 0 {
		add("seq <= ?", clampSeq(f.Through))
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
			return nil, fmt.Errorf("events: tag pattern %q: %w", f.TagPattern, err)
		}
		add("tag REGEXP ?", re)
	}
	if f.Allowed != nil {
		cond, condArgs, err := eventstore.AllowedCondition(f.Allowed, "tag REGEXP ?")
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		where = append(where, cond)
		args = append(args, condArgs...)
	}
	if f.SessionID != "" {
		// "session_id != ''" lets SQLite use the partial index.
		where = append(where, "session_id != ''")
		add("session_id = ?", f.SessionID)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.MinSeverity > 0 {
		add("severity >= ?", int64(f.MinSeverity))
	}
	if !f.From.IsZero() {
		add("ts >= ?", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("ts < ?", f.To.UnixMicro())
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
	q := `SELECT ` + columns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY ` + order + ` LIMIT ?`
	args = append(args, f.Limit)

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("events", err)
	}
	defer rows.Close()
	out := make([]event.Event, 0, min(f.Limit, 1024))
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return nil, wrap("events", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("events", err)
	}
	return out, nil
}

// Event returns the event with id; if the id was stored under several seqs,
// the one with the lowest seq.
func (s *Store) Event(ctx context.Context, id string) (event.Event, error) {
	if id == "" {
		return event.Event{}, fmt.Errorf("event with empty id: %w", eventstore.ErrNotFound)
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM events WHERE id = ? ORDER BY seq LIMIT 1`, id)
	e, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return event.Event{}, fmt.Errorf("event %q: %w", id, eventstore.ErrNotFound)
	}
	if err != nil {
		return event.Event{}, wrap(fmt.Sprintf("event %q", id), err)
	}
	return e, nil
}

// Stats counts events per tag per bucket in [f.From, f.To), ordered by
// bucket then tag.
func (s *Store) Stats(ctx context.Context, f eventstore.StatsFilter) ([]eventstore.Count, error) {
	width, err := bucketMicros(f.Bucket)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	// Patterns are matched once per group (HAVING), not once per row.
	q := `SELECT (ts - ((ts % ?) + ?) % ?) AS bucket, tag, count(*) FROM events WHERE ts >= ? AND ts < ? GROUP BY bucket, tag`
	args := []any{width, width, width, f.From.UnixMicro(), f.To.UnixMicro()}
	var having []string
	if f.TagPattern != "" {
		re, err := subject.Regexp(f.TagPattern)
		if err != nil {
			return nil, fmt.Errorf("stats: tag pattern %q: %w", f.TagPattern, err)
		}
		having = append(having, `tag REGEXP ?`)
		args = append(args, re)
	}
	if f.Allowed != nil {
		cond, condArgs, err := eventstore.AllowedCondition(f.Allowed, "tag REGEXP ?")
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		having = append(having, cond)
		args = append(args, condArgs...)
	}
	if len(having) > 0 {
		q += ` HAVING ` + strings.Join(having, " AND ")
	}
	q += ` ORDER BY bucket, tag`
	rows, err := s.db.QueryContext(ctx, q, args...)
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
			return nil, wrap("stats", err)
		}
		c.Bucket = time.UnixMicro(bucket).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("stats", err)
	}
	return out, nil
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1 FROM sqlite_master LIMIT 1`).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return wrap("ping", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.insert.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

// bucketMicros returns the width of a bucket in microseconds.
func bucketMicros(b eventstore.Bucket) (int64, error) {
	switch b {
	case eventstore.Minute:
		return int64(time.Minute / time.Microsecond), nil
	case eventstore.Hour:
		return int64(time.Hour / time.Microsecond), nil
	case eventstore.Day:
		return int64(24 * time.Hour / time.Microsecond), nil
	}
	return 0, fmt.Errorf("unknown bucket %d", b)
}

// clampSeq maps a seq to SQLite's signed 64-bit integers.
func clampSeq(seq uint64) int64 {
	if seq > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(seq)
}

type scanner interface {
	Scan(dest ...any) error
}

func scan(r scanner) (event.Event, error) {
	var (
		e        event.Event
		seq      int64
		ts, recv int64
		severity int64
		data     []byte
	)
	if err := r.Scan(&seq, &e.ID, &e.Subject, &e.Tag, &e.Category, &e.Code, &e.Message,
		&ts, &recv, &e.SessionID, &e.Source, &severity, &e.Producer, &data); err != nil {
		return event.Event{}, err
	}
	e.Seq = uint64(seq)
	e.Timestamp = time.UnixMicro(ts).UTC()
	e.ReceivedAt = time.UnixMicro(recv).UTC()
	e.Severity = event.Severity(severity)
	if len(data) > 0 {
		e.Data = json.RawMessage(data)
	}
	return e, nil
}

// wrap adds context to err and marks it eventstore.ErrUnavailable when the
// database could not be reached: it stayed locked past the busy timeout,
// the disk is full or failing, or the context's deadline passed.
func wrap(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, eventstore.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL:
			return true
		}
	}
	return false
}
