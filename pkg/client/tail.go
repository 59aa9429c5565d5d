package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
)

// maxSSELine bounds one line of an event stream: an event's data line.
const maxSSELine = 8 << 20

// Live is the since of a Tail that follows only events stored from now on.
const Live uint64 = math.MaxUint64

// Tail follows events as they are stored (GET /v1/stream, Server-Sent
// Events): those matching pattern (NATS wildcards; empty: every event)
// with a seq greater than since (0: every stored event; Live: only new
// ones), in seq order, then new ones as they come.
//
// When the stream drops or the server ends it (a slow client, a server
// shutting down), Tail connects again from the last seq it saw, waiting
// longer after each connection that brought nothing, so no event is missed
// or yielded twice. It yields an error and ends when the server refuses the
// stream (a bad pattern: 400; missing credentials: 401), or when the first
// connection fails as many times in a row as WithRetry allows; once
// connected it reconnects for as long as ctx lasts. It ends without an
// error when ctx is done.
func (c *Client) Tail(ctx context.Context, pattern string, since uint64) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		t := &tailState{last: since, live: since == Live}
		if t.live {
			t.last = 0
		}
		var failures int // connections in a row that brought no event
		for {
			progressed, err := c.tailOnce(ctx, pattern, t, yield)
			switch {
			case ctx.Err() != nil, errors.Is(err, errStopped):
				return
			case err != nil && !temporary(err):
				yield(event.Event{}, err)
				return
			}
			if progressed {
				failures = 0
			}
			failures++
			if !t.connected && err != nil && failures >= c.maxAttempts {
				yield(event.Event{}, fmt.Errorf("tail: %d tries: %w", failures, err))
				return
			}
			wait := max(t.retry, c.backoffFor(failures))
			var e *Error
			if errors.As(err, &e) && e.RetryAfter > 0 {
				wait = e.RetryAfter
			}
			if c.sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

// tailState is where a Tail is.
type tailState struct {
	last      uint64        // the last seq seen
	live      bool          // no seq seen yet, and the tail started Live
	connected bool          // a stream was opened once
	retry     time.Duration // the least wait before connecting again, as the server asked
}

// errStopped means the consumer of an iterator stopped it.
var errStopped = errors.New("iteration stopped")

// badStream is a stream that connecting again would not mend: an event
// that does not decode.
type badStream struct{ err error }

func (b *badStream) Error() string { return b.err.Error() }
func (b *badStream) Unwrap() error { return b.err }

// temporary reports whether err is worth connecting again for: a network
// error or a temporary answer.
func temporary(err error) bool {
	var e *Error
	var b *badStream
	switch {
	case errors.As(err, &b):
		return false
	case errors.As(err, &e):
		return e.Temporary()
	}
	return true
}

// tailOnce reads one connection of a stream, yielding its events and
// advancing t.last. It reports whether it yielded any event; a nil error
// means the server closed the stream without a word.
func (c *Client) tailOnce(ctx context.Context, pattern string, t *tailState, yield func(event.Event, error) bool) (progressed bool, err error) {
	q := url.Values{}
	h := http.Header{"Cache-Control": {"no-cache"}}
	if !t.live {
		q.Set("since", strconv.FormatUint(t.last, 10))
		if t.last > 0 {
			h.Set("Last-Event-ID", strconv.FormatUint(t.last, 10))
		}
	}
	if pattern != "" {
		q.Set("tag", pattern)
	}
	resp, err := c.send(ctx, request{
		method: http.MethodGet, path: "/v1/stream", query: q, header: h,
		accept: "text/event-stream", idempotent: true, once: true,
	})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode),
			Detail: "GET /v1/stream answered " + mt + ", not text/event-stream"}
	}
	t.connected = true
	rd := newSSEReader(resp.Body)
	defer func() {
		if rd.retry > 0 {
			t.retry = rd.retry
		}
	}()
	// seen moves the cursor to an id the server named, with or without an
	// event: a stream started Live names its starting point first.
	seen := func() {
		if n, err := strconv.ParseUint(rd.lastID, 10, 64); err == nil && (t.live || n > t.last) {
			t.last, t.live = n, false
		}
	}
	for {
		m, err := rd.next()
		if err != nil {
			seen()
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return progressed, err
		}
		switch m.typ {
		case "event", "message":
			var e event.Event
			if err := event.Decode([]byte(m.data), &e); err != nil {
				return progressed, &badStream{fmt.Errorf("tail: event %s: %w", m.id, err)}
			}
			if e.Seq == 0 {
				e.Seq, _ = strconv.ParseUint(m.id, 10, 64)
			}
			if !t.live && e.Seq != 0 && e.Seq <= t.last {
				continue // sent again after a reconnect
			}
			progressed = true
			if !yield(e, nil) {
				return progressed, errStopped
			}
			if e.Seq != 0 {
				t.last, t.live = e.Seq, false
			}
		case "error":
			seen()
			return progressed, streamError(m.data)
		default:
			seen()
		}
	}
}

// streamError turns the data of an error event into an *Error: a problem,
// or {"reason": "slow client"} from a server that ended the stream and may
// be connected to again (a 503).
func streamError(data string) *Error {
	var p struct {
		problem.Problem
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Title: "stream ended", Detail: data}
	}
	if p.Status == 0 {
		detail := p.Reason
		if detail == "" {
			detail = p.Detail
		}
		return &Error{Status: http.StatusServiceUnavailable, Title: "stream ended", Detail: detail}
	}
	title := p.Title
	if title == "" {
		title = http.StatusText(p.Status)
	}
	return &Error{Status: p.Status, Type: p.Type, Title: title, Detail: p.Detail, Errors: p.Errors, Owner: p.Owner}
}

// sseMessage is one dispatched Server-Sent Event.
type sseMessage struct {
	id   string // the last event id in effect
	typ  string // "message" unless an event: field named it
	data string // data: lines joined by "\n"
}

// sseReader parses a text/event-stream as the HTML Living Standard
// (9.2.6) says: lines end in CRLF, LF or CR; a blank line dispatches;
// lines starting with ':' are comments (heartbeats); "field: value" loses
// one space after the colon; data lines join with "\n"; an event with no
// data is not dispatched; a half event at the end of the stream is
// dropped.
type sseReader struct {
	sc     *bufio.Scanner
	lastID string
	retry  time.Duration // the last valid retry: field
	first  bool          // no line read yet: a BOM may come
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	sc.Split(scanSSELines)
	return &sseReader{sc: sc, first: true}
}

// next returns the next dispatched message, or io.EOF at the end of the
// stream.
func (r *sseReader) next() (sseMessage, error) {
	var data strings.Builder
	var hasData bool
	typ := ""
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if r.first {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
			r.first = false
		}
		if len(line) == 0 {
			if !hasData {
				typ = ""
				continue
			}
			if typ == "" {
				typ = "message"
			}
			return sseMessage{id: r.lastID, typ: typ, data: data.String()}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found {
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		case "retry":
			if n, err := strconv.ParseUint(string(value), 10, 32); err == nil {
				r.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseMessage{}, err
	}
	return sseMessage{}, io.EOF
}

// scanSSELines splits on CRLF, LF or CR. A CR at the end of the buffered
// data waits for the next byte, which may be its LF.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0 && atEOF && len(data) > 0:
		return len(data), data, nil
	case i < 0:
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data):
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // a CR last: read on to see whether LF follows
}
