package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/logsync"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/services/query"
)

// store is what the tests need of a real event store: the query service's
// reader plus Insert and InsertAttempts to seed it and Close to break it.
type store interface {
	reader
	Insert(ctx context.Context, events []event.Event) error
	InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error
	Close() error
}

// backend opens a fresh, empty store that is closed when the test ends.
type backend struct {
	name string
	open func(t *testing.T) store
}

// backends are the real stores every HTTP-level test runs against. The
// ClickHouse one skips without EVENTSYNC_TEST_CLICKHOUSE_URL (and fails
// under CI=true): see package chtest.
var backends = []backend{
	{"sqlite", openSQLite},
	{"clickhouse", openClickHouse},
}

func openClickHouse(t *testing.T) store {
	t.Helper()
	s, err := chstore.Open(t.Context(), chtest.DSN(t))
	if err != nil {
		t.Fatalf("chstore.Open = %v", err)
	}
	// Registered after chtest's cleanup, so it runs before the database
	// is dropped.
	t.Cleanup(func() { s.Close() })
	return s
}

func openSQLite(t *testing.T) store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("sqlitestore.Open = %v", err)
	}
	// Close is idempotent for *sql.DB, so tests may close the store early.
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, st store)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

// fakeWatermark is a watermark whose committed seq or error the test sets.
type fakeWatermark struct {
	mu  sync.Mutex
	seq uint64
	err error
}

func (w *fakeWatermark) Committed(context.Context) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.err
}

func (w *fakeWatermark) set(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq, w.err = seq, nil
}

func (w *fakeWatermark) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

// failingReader is a reader whose every call returns err.
type failingReader struct{ err error }

func (f failingReader) Events(context.Context, eventstore.Filter) ([]event.Event, error) {
	return nil, f.err
}

func (f failingReader) Event(context.Context, string) (event.Event, error) {
	return event.Event{}, f.err
}

func (f failingReader) Stats(context.Context, eventstore.StatsFilter) ([]eventstore.Count, error) {
	return nil, f.err
}

func (f failingReader) Attempts(context.Context, delivery.Filter) ([]delivery.Attempt, error) {
	return nil, f.err
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is the query service over real HTTP.
type server struct {
	t    *testing.T
	url  string
	wm   *fakeWatermark // of events
	dwm  *fakeWatermark // of delivery attempts
	logs *syncBuffer
}

// reader mirrors the query service's unexported reader interface.
type reader interface {
	Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error)
	Event(ctx context.Context, id string) (event.Event, error)
	Stats(ctx context.Context, f eventstore.StatsFilter) ([]eventstore.Count, error)
	Attempts(ctx context.Context, f delivery.Filter) ([]delivery.Attempt, error)
}

// serve starts the query service over r with both watermarks at wm.
func serve(t *testing.T, r reader, wm uint64) *server {
	t.Helper()
	s := &server{t: t, wm: &fakeWatermark{seq: wm}, dwm: &fakeWatermark{seq: wm}, logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(s.logs, t.Output()), nil))
	router := chi.NewRouter()
	query.New(r, s.wm, s.dwm, log).Mount(router)
	// As the query part mounts it (there on a router without the gate).
	logsync.New(router).MountRead(router)
	ts := httptest.NewServer(router)
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

// seed inserts events into st and serves it with the watermark at the
// highest seq.
func seed(t *testing.T, st store, events ...event.Event) *server {
	t.Helper()
	insert(t, st, events...)
	var wm uint64
	for _, e := range events {
		wm = max(wm, e.Seq)
	}
	return serve(t, st, wm)
}

func insert(t *testing.T, st store, events ...event.Event) {
	t.Helper()
	if err := st.Insert(t.Context(), events); err != nil {
		t.Fatalf("Insert(%d events) = %v", len(events), err)
	}
}

// get performs GET path and returns the status, headers and body.
func (s *server) get(path string) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), http.MethodGet, s.url+path, nil)
	if err != nil {
		s.t.Fatalf("NewRequest(%q) = %v", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s = %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, body
}

// getJSON performs GET path, requires a 200 JSON answer and decodes it.
func getJSON[T any](s *server, path string) T {
	s.t.Helper()
	var v T
	status, h, body := s.get(path)
	if status != http.StatusOK {
		s.t.Fatalf("GET %s = %d %s; want 200", path, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		s.t.Fatalf("GET %s: Content-Type = %q; want application/json", path, ct)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		s.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
	return v
}

// getProblem performs GET path, requires a problem answer with status want
// and decodes it.
func getProblem(s *server, path string, want int) (*problem.Problem, http.Header, string) {
	s.t.Helper()
	status, h, body := s.get(path)
	if status != want {
		s.t.Fatalf("GET %s = %d %s; want %d", path, status, body, want)
	}
	if ct := h.Get("Content-Type"); ct != problem.ContentType {
		s.t.Errorf("GET %s: Content-Type = %q; want %q", path, ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		s.t.Fatalf("GET %s: decode problem %s: %v", path, body, err)
	}
	if p.Status != want {
		s.t.Errorf("GET %s: problem status = %d; want %d", path, p.Status, want)
	}
	return &p, h, string(body)
}

// getLogs fetches GET /api/logs with query and checks that the answer is
// a JSON array (never null) of the log-sync service's entries.
func getLogs(s *server, query string) []logsync.Entry {
	s.t.Helper()
	path := "/api/logs?" + query
	status, h, body := s.get(path)
	if status != http.StatusOK {
		s.t.Fatalf("GET %s = %d %s; want 200", path, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("GET %s: Content-Type = %q; want application/json", path, ct)
	}
	if !bytes.HasPrefix(body, []byte("[")) {
		s.t.Fatalf("GET %s = %s; want a JSON array", path, body)
	}
	var out []logsync.Entry
	if err := json.Unmarshal(body, &out); err != nil {
		s.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
	return out
}

// logIDs returns the ids of log-sync entries in order.
func logIDs(entries []logsync.Entry) []uint64 {
	out := make([]uint64, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

// seqs returns the seqs of events in order.
func seqs(events []event.Event) []uint64 {
	out := make([]uint64, 0, len(events))
	for _, e := range events {
		out = append(out, e.Seq)
	}
	return out
}

// t0 is the time the fixtures are laid out from.
var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// mkEvent builds a stored event with a tag of CATEGORY.CODE.
func mkEvent(seq uint64, tag, session, source string, sev event.Severity, ts time.Time) event.Event {
	i := strings.LastIndexByte(tag, '.')
	return event.Event{
		Seq:        seq,
		ID:         fmt.Sprintf("ev-%d", seq),
		Subject:    subject.Filter(tag),
		Tag:        tag,
		Category:   tag[:i],
		Code:       tag[i+1:],
		Message:    fmt.Sprintf("event %d", seq),
		Timestamp:  ts,
		ReceivedAt: ts.Add(time.Second),
		SessionID:  session,
		Source:     source,
		Severity:   sev,
		Producer:   "test",
		Data:       json.RawMessage(fmt.Sprintf(`{"n":%d}`, seq)),
	}
}

// numbered returns events with seqs from..through, one a second from t0,
// tagged A.X.
func numbered(from, through uint64) []event.Event {
	var out []event.Event
	for seq := from; seq <= through; seq++ {
		out = append(out, mkEvent(seq, "A.X", "", "", event.Info, t0.Add(time.Duration(seq)*time.Second)))
	}
	return out
}

// pageOf is the decoded body of /v1/events.
type pageOf struct {
	Events    []event.Event `json:"events"`
	NextSince *uint64       `json:"next_since"`
}

// getPage fetches a page and checks it is JSON with next_since and a
// non-null events array.
func getPage(s *server, path string) ([]uint64, uint64) {
	s.t.Helper()
	status, h, body := s.get(path)
	if status != http.StatusOK {
		s.t.Fatalf("GET %s = %d %s; want 200", path, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("GET %s: Content-Type = %q; want application/json", path, ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		s.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
	if string(raw["events"]) == "null" {
		s.t.Errorf("GET %s: events = null; want an array", path)
	}
	var p pageOf
	if err := json.Unmarshal(body, &p); err != nil {
		s.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
	if p.NextSince == nil {
		s.t.Fatalf("GET %s = %s; want next_since", path, body)
	}
	return seqs(p.Events), *p.NextSince
}
