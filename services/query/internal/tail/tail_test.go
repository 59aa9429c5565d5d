package tail

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// env is a tail served by a real HTTP server over a real JetStream.
type env struct {
	js    jetstream.JetStream
	nats  *natstest.Server
	tail  *Tail
	srv   *httptest.Server
	exits chan struct{} // one value each time a stream handler returns
	logs  *logBuffer
	ids   atomic.Int64
}

// serverOptions adjust the HTTP server of an env before it starts.
type serverOptions struct {
	writeTimeout time.Duration // the server's global WriteTimeout
	sendBuffer   int           // the kernel send buffer of each accepted connection
}

func newEnv(t *testing.T, cfg Config, o serverOptions) *env {
	t.Helper()
	ns := natstest.Start(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatalf("jetstream.New = %v", err)
	}
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatalf("stream.Ensure = %v", err)
	}
	e := &env{js: js, nats: ns, exits: make(chan struct{}, 100), logs: &logBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.tail = New(js, cfg, log)
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			e.exits <- struct{}{}
		})
	})
	e.tail.Mount(r)
	e.srv = httptest.NewUnstartedServer(r)
	e.srv.Config.WriteTimeout = o.writeTimeout
	if o.sendBuffer > 0 {
		e.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
			if tc, ok := c.(*net.TCPConn); ok && s == http.StateNew {
				_ = tc.SetWriteBuffer(o.sendBuffer)
			}
		}
	}
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// publish publishes one event of each tag and returns their seqs.
func (e *env) publish(t *testing.T, tags ...string) []uint64 {
	t.Helper()
	seqs, err := e.tryPublish(t.Context(), 0, tags...)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// tryPublish publishes one event of each tag, with a message of pad bytes.
func (e *env) tryPublish(ctx context.Context, pad int, tags ...string) ([]uint64, error) {
	var seqs []uint64
	for _, tag := range tags {
		category, code, err := subject.SplitTag(tag)
		if err != nil {
			return nil, fmt.Errorf("split %q: %w", tag, err)
		}
		subj, err := subject.Build(category, code)
		if err != nil {
			return nil, fmt.Errorf("build %q: %w", tag, err)
		}
		ev := event.Event{
			ID:        "ev-" + strconv.FormatInt(e.ids.Add(1), 10),
			Subject:   subj,
			Tag:       tag,
			Category:  category,
			Code:      code,
			Message:   strings.Repeat("m", pad),
			Timestamp: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
			Severity:  event.Info,
		}
		b, err := event.Encode(&ev)
		if err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
		ack, err := e.js.Publish(ctx, subj, b, jetstream.WithMsgID(ev.ID))
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", subj, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs, nil
}

// consumers returns how many consumers EVENTS has.
func (e *env) consumers(t *testing.T) int {
	t.Helper()
	s, err := e.js.Stream(t.Context(), stream.Events)
	if err != nil {
		t.Fatalf("Stream(%q) = %v", stream.Events, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("Info = %v", err)
	}
	return info.State.Consumers
}

// waitExit waits until a stream handler has returned.
func (e *env) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-e.exits:
	case <-t.Context().Done():
		t.Fatal("stream handler did not return")
	}
}

// open starts a stream; cancel (or the end of the test) closes it.
func (e *env) open(t *testing.T, query url.Values, lastEventID string) (*sseReader, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+Path+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s = %v", req.URL, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %s; want 200", req.URL, resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Fatalf("GET %s Content-Type = %q; want text/event-stream", req.URL, got)
	}
	return &sseReader{r: bufio.NewReader(resp.Body)}, cancel
}

// message is one Server-Sent Events message (or a block of comments).
type message struct {
	ID        string
	HasID     bool
	Event     string
	Data      string
	DataLines int
	Comments  []string
}

// sseReader parses a text/event-stream strictly: only the fields the tail
// sends are allowed.
type sseReader struct{ r *bufio.Reader }

func (s *sseReader) next() (message, error) {
	var m message
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				err = io.ErrUnexpectedEOF
			}
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				return m, nil
			}
			continue
		}
		seen = true
		if c, ok := strings.CutPrefix(line, ":"); ok {
			m.Comments = append(m.Comments, strings.TrimPrefix(c, " "))
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.ID, m.HasID = value, true
		case "event":
			m.Event = value
		case "data":
			if m.DataLines > 0 {
				m.Data += "\n"
			}
			m.Data += value
			m.DataLines++
		default:
			return m, fmt.Errorf("unexpected field %q", line)
		}
	}
}

// nextEvent returns the next event, skipping heartbeats and id-only
// messages.
func (s *sseReader) nextEvent(t *testing.T) event.Event {
	t.Helper()
	for {
		m, err := s.next()
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if m.Event == "" && m.Data == "" {
			continue
		}
		return checkEvent(t, m)
	}
}

// checkEvent checks that m carries one stored event whose seq is m's id.
func checkEvent(t *testing.T, m message) event.Event {
	t.Helper()
	if m.Event != "event" {
		t.Fatalf("message %+v; want event: event", m)
	}
	if m.DataLines != 1 {
		t.Fatalf("message %+v has %d data lines; want 1", m, m.DataLines)
	}
	var e event.Event
	if err := event.Decode([]byte(m.Data), &e); err != nil {
		t.Fatalf("decode data %q: %v", m.Data, err)
	}
	if id := strconv.FormatUint(e.Seq, 10); !m.HasID || m.ID != id {
		t.Fatalf("message id %q (set %v) for event seq %d; want %q", m.ID, m.HasID, e.Seq, id)
	}
	return e
}

func since(n string) url.Values { return url.Values{"since": {n}} }

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestHistoryThenLive(t *testing.T) {
	const stored, live = 100, 400
	tests := []struct {
		since string
		first uint64
	}{
		{"0", 1},
		{"37", 38},
	}
	for _, tt := range tests {
		t.Run("since="+tt.since, func(t *testing.T) {
			e := newEnv(t, Config{}, serverOptions{})
			for range stored {
				e.publish(t, "APP.STORED")
			}
			// Live events are published while the stream replays the
			// stored ones and switches over.
			var wg sync.WaitGroup
			wg.Go(func() {
				for range live {
					if _, err := e.tryPublish(t.Context(), 0, "APP.LIVE"); err != nil {
						t.Error(err)
						return
					}
				}
			})
			rd, _ := e.open(t, since(tt.since), "")
			var got []uint64
			for len(got) < stored+live-int(tt.first)+1 && !t.Failed() {
				ev := rd.nextEvent(t)
				got = append(got, ev.Seq)
				wantTag := "APP.LIVE"
				if ev.Seq <= stored {
					wantTag = "APP.STORED"
				}
				if ev.Tag != wantTag {
					t.Errorf("event %d tag = %q; want %q", ev.Seq, ev.Tag, wantTag)
				}
			}
			wg.Wait()
			if diff := cmp.Diff(seqRange(tt.first, stored+live), got); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResume(t *testing.T) {
	tests := []struct {
		name        string
		query       url.Values
		lastEventID string
		first       uint64
	}{
		{"since", since("5"), "", 6},
		{"last event id", nil, "4", 5},
		{"last event id later than since", since("2"), "6", 7},
		{"since later than last event id", since("8"), "3", 9},
		{"after the last event", since("10"), "", 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, serverOptions{})
			for range 10 {
				e.publish(t, "APP.X")
			}
			rd, _ := e.open(t, tt.query, tt.lastEventID)
			e.publish(t, "APP.X") // 11
			if got := rd.nextEvent(t).Seq; got != tt.first {
				t.Errorf("first seq = %d; want %d", got, tt.first)
			}
		})
	}
}

// TestReconnect reconnects as a browser does: same URL, Last-Event-ID set
// to the id of the last message received.
func TestReconnect(t *testing.T) {
	e := newEnv(t, Config{}, serverOptions{})
	for range 10 {
		e.publish(t, "APP.X")
	}
	rd, cancel := e.open(t, since("0"), "")
	var last string
	for range 4 {
		last = strconv.FormatUint(rd.nextEvent(t).Seq, 10)
	}
	cancel()
	e.waitExit(t)

	rd, _ = e.open(t, since("0"), last)
	var got []uint64
	for range 6 {
		got = append(got, rd.nextEvent(t).Seq)
	}
	if diff := cmp.Diff(seqRange(5, 10), got); diff != "" {
		t.Errorf("seqs after reconnecting with Last-Event-ID %s (-want +got):\n%s", last, diff)
	}
}

// TestStartsNow: without a cursor the stream starts at the events published
// from now on, and names where it starts so that a client that reconnects
// before any event arrived misses none.
func TestStartsNow(t *testing.T) {
	e := newEnv(t, Config{}, serverOptions{})
	for range 3 {
		e.publish(t, "APP.X")
	}
	rd, cancel := e.open(t, nil, "")
	m, err := rd.next()
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	if diff := cmp.Diff(message{ID: "3", HasID: true}, m); diff != "" {
		t.Fatalf("first message (-want +got):\n%s", diff)
	}
	e.publish(t, "APP.X")
	if got := rd.nextEvent(t).Seq; got != 4 {
		t.Errorf("first event seq = %d; want 4", got)
	}
	cancel()
	e.waitExit(t)

	e.publish(t, "APP.X", "APP.X") // while no client is connected
	rd, _ = e.open(t, nil, "4")
	var got []uint64
	for range 2 {
		got = append(got, rd.nextEvent(t).Seq)
	}
	if diff := cmp.Diff([]uint64{5, 6}, got); diff != "" {
		t.Errorf("seqs after reconnecting (-want +got):\n%s", diff)
	}
}

func TestTagFilter(t *testing.T) {
	stored := []string{
		"DATABASE.ERROR",       // 1
		"AUTH.LOGIN",           // 2
		"DATABASE.SLOW",        // 3
		"DATABASE.REPLICA.LAG", // 4
		"AUTH.LOGOUT",          // 5
		"DATABASE.ERROR",       // 6
		"PAY.ERROR",            // 7
	}
	tests := []struct {
		tag string
		// want are the stored events the stream sends; then it sends
		// sentinel (seq 8), published after it started, and nothing
		// stored in between.
		want     []uint64
		sentinel string
	}{
		{"DATABASE.*", []uint64{1, 3, 6}, "DATABASE.END"},
		{"DATABASE.>", []uint64{1, 3, 4, 6}, "DATABASE.REPLICA.END"},
		{"*.ERROR", []uint64{1, 6, 7}, "END.ERROR"},
		{"AUTH.LOGIN", []uint64{2}, "AUTH.LOGIN"},
		{"DATABASE.REPLICA.*", []uint64{4}, "DATABASE.REPLICA.END"},
		{"", seqRange(1, 7), "END.END"},
	}
	for _, tt := range tests {
		t.Run("tag="+tt.tag, func(t *testing.T) {
			e := newEnv(t, Config{}, serverOptions{})
			e.publish(t, stored...)
			q := since("0")
			if tt.tag != "" {
				q.Set("tag", tt.tag)
			}
			rd, _ := e.open(t, q, "")
			e.publish(t, tt.sentinel)
			type seqTag struct {
				Seq uint64
				Tag string
			}
			var got, want []seqTag
			for _, s := range tt.want {
				want = append(want, seqTag{s, stored[s-1]})
			}
			want = append(want, seqTag{8, tt.sentinel})
			for range want {
				ev := rd.nextEvent(t)
				got = append(got, seqTag{ev.Seq, ev.Tag})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events of tag=%q (-want +got):\n%s", tt.tag, diff)
			}
		})
	}
}

// TestPayloads: a message published straight to events.> that is not an
// event is skipped; one spread over several lines is sent on one.
func TestPayloads(t *testing.T) {
	e := newEnv(t, Config{}, serverOptions{})
	if _, err := e.js.Publish(t.Context(), "events.APP.BAD", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	pretty := "{\n  \"id\": \"pretty-1\",\n  \"message\": \"two\\nlines\",\n  \"data\": {\n    \"a\": [1,\n 2]\n  }\n}\n"
	if _, err := e.js.Publish(t.Context(), "events.APP.PRETTY", []byte(pretty)); err != nil {
		t.Fatal(err)
	}
	rd, _ := e.open(t, since("0"), "")
	ev := rd.nextEvent(t) // checks one data line
	if ev.Seq != 2 || ev.ID != "pretty-1" || ev.Tag != "APP.PRETTY" || ev.Message != "two\nlines" {
		t.Errorf("event = seq %d id %q tag %q message %q; want 2, pretty-1, APP.PRETTY, \"two\\nlines\"", ev.Seq, ev.ID, ev.Tag, ev.Message)
	}
	if got, want := string(ev.Data), `{"a":[1,2]}`; got != want {
		t.Errorf("event data = %s; want %s", got, want)
	}
}

// TestSlowClient: a client that stops reading is disconnected, its handler
// returns and its consumer is deleted, however many events wait for it.
func TestSlowClient(t *testing.T) {
	cfg := Config{Buffer: 4, WriteTimeout: 100 * time.Millisecond, Heartbeat: time.Hour}
	e := newEnv(t, cfg, serverOptions{sendBuffer: 4096})
	// 2 MB: far more than the socket buffers on both sides hold.
	for range 500 {
		if _, err := e.tryPublish(t.Context(), 4000, "APP.BIG"); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET "+Path+"?since=0 HTTP/1.1\r\nHost: tail\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing until the handler has returned.
	e.waitExit(t)
	if n := e.consumers(t); n != 0 {
		t.Errorf("EVENTS has %d consumers after the slow client was dropped; want 0", n)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"reason":"slow client"`) {
		t.Errorf("logs = %s; want a stream closed for a slow client", logs)
	}
	// The server closed the connection: reading ends.
	if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Errorf("read from dropped connection = %v; want EOF or reset", err)
	}
}

// isReset reports whether err is a connection reset, which is how a
// connection closed with unread data ends.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestClientGone(t *testing.T) {
	e := newEnv(t, Config{}, serverOptions{})
	e.publish(t, "APP.X", "APP.X")
	rd, cancel := e.open(t, since("0"), "")
	rd.nextEvent(t)
	if n := e.consumers(t); n != 1 {
		t.Errorf("EVENTS has %d consumers during a stream; want 1", n)
	}
	cancel()
	e.waitExit(t)
	if n := e.consumers(t); n != 0 {
		t.Errorf("EVENTS has %d consumers after the client left; want 0", n)
	}
}

// TestHeartbeat: an idle stream gets heartbeats, and outlives the server's
// WriteTimeout.
func TestHeartbeat(t *testing.T) {
	const heartbeat = 10 * time.Millisecond
	// Ten heartbeats take at least 10 × heartbeat: well past the server's
	// WriteTimeout, which the stream must lift.
	e := newEnv(t, Config{Heartbeat: heartbeat}, serverOptions{writeTimeout: 3 * heartbeat})
	rd, _ := e.open(t, nil, "")
	m, err := rd.next()
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	if diff := cmp.Diff(message{ID: "0", HasID: true}, m); diff != "" {
		t.Errorf("first message (-want +got):\n%s", diff)
	}
	for i := range 10 {
		m, err := rd.next()
		if err != nil {
			t.Fatalf("read heartbeat %d: %v", i, err)
		}
		if diff := cmp.Diff(message{Comments: []string{"ping"}}, m); diff != "" {
			t.Fatalf("heartbeat %d (-want +got):\n%s", i, diff)
		}
	}
	e.publish(t, "APP.X")
	if got := rd.nextEvent(t).Seq; got != 1 {
		t.Errorf("event after heartbeats has seq %d; want 1", got)
	}
}

func TestBadRequest(t *testing.T) {
	tests := []struct {
		name        string
		query       string
		lastEventID string
		param       string
	}{
		{"empty tag token", "tag=DATABASE..ERROR", "", "tag"},
		{"wildcard before the end", "tag=DATABASE.%3E.X", "", "tag"},
		{"bad tag character", "tag=DATA%20BASE.*", "", "tag"},
		{"since not a number", "since=abc", "", "since"},
		{"negative since", "since=-1", "", "since"},
		{"since too large", "since=18446744073709551615", "", "since"},
		{"since past uint64", "since=18446744073709551616", "", "since"},
		{"bad Last-Event-ID", "since=3", "x7", "Last-Event-ID"},
	}
	e := newEnv(t, Config{}, serverOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+Path+"?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.lastEventID != "" {
				req.Header.Set("Last-Event-ID", tt.lastEventID)
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET ?%s = %d; want 400", tt.query, resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != problem.ContentType {
				t.Errorf("GET ?%s Content-Type = %q; want %q", tt.query, got, problem.ContentType)
			}
			var p problem.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("decode problem: %v", err)
			}
			if len(p.Errors) != 1 || p.Errors[0].Pointer != tt.param {
				t.Errorf("GET ?%s errors = %+v; want one naming %q", tt.query, p.Errors, tt.param)
			}
		})
	}
	if n := e.consumers(t); n != 0 {
		t.Errorf("EVENTS has %d consumers after bad requests; want 0", n)
	}
}

// TestShutdown: Run ends open streams with an error event and waits for
// them; later requests are refused.
func TestShutdown(t *testing.T) {
	e := newEnv(t, Config{}, serverOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- e.tail.Run(ctx) }()
	e.publish(t, "APP.X")
	rd, _ := e.open(t, since("0"), "")
	rd.nextEvent(t)

	cancel()
	m, err := rd.next()
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	if diff := cmp.Diff(message{Event: "error", Data: `{"reason":"shutting down"}`, DataLines: 1}, m); diff != "" {
		t.Errorf("last message (-want +got):\n%s", diff)
	}
	if m, err := rd.next(); err != io.EOF {
		t.Errorf("after the error event: %+v, %v; want EOF", m, err)
	}
	if err := <-ran; err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	e.waitExit(t)
	if n := e.consumers(t); n != 0 {
		t.Errorf("EVENTS has %d consumers after shutdown; want 0", n)
	}

	resp, err := e.srv.Client().Get(e.srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET after shutdown = %d; want 503", resp.StatusCode)
	}
}

// TestNATSRestart: the stream continues without a gap across a restart of
// the NATS server.
func TestNATSRestart(t *testing.T) {
	e := newEnv(t, Config{}, serverOptions{})
	e.publish(t, "APP.X", "APP.X")
	rd, _ := e.open(t, since("0"), "")
	got := []uint64{rd.nextEvent(t).Seq, rd.nextEvent(t).Seq}
	e.nats.Shutdown()
	e.nats.Restart()
	// Publishing fails until the client has reconnected.
	for {
		if _, err := e.tryPublish(t.Context(), 0, "APP.X"); err == nil {
			break
		}
		if t.Context().Err() != nil {
			t.Fatal("could not publish after restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.publish(t, "APP.X")
	got = append(got, rd.nextEvent(t).Seq, rd.nextEvent(t).Seq)
	if diff := cmp.Diff(seqRange(1, 4), got); diff != "" {
		t.Errorf("seqs across a NATS restart (-want +got):\n%s", diff)
	}
}
