package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/event"
)

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name  string
		wire  string
		want  []sseMessage
		retry time.Duration
	}{
		{
			name: "server frames",
			wire: "id: 7\nevent: event\ndata: {\"seq\":7}\n\n: ping\n\nid: 8\nevent: event\ndata: {\"seq\":8}\n\n",
			want: []sseMessage{{id: "7", typ: "event", data: `{"seq":7}`}, {id: "8", typ: "event", data: `{"seq":8}`}},
		},
		{
			name: "CRLF line ends",
			wire: "id: 1\r\nevent: event\r\ndata: a\r\n\r\n",
			want: []sseMessage{{id: "1", typ: "event", data: "a"}},
		},
		{
			name: "CR line ends",
			wire: "id: 1\revent: event\rdata: a\r\r",
			want: []sseMessage{{id: "1", typ: "event", data: "a"}},
		},
		{
			name: "multi-line data joins with LF",
			wire: "data: first\ndata: second\ndata:\ndata: fourth\n\n",
			want: []sseMessage{{typ: "message", data: "first\nsecond\n\nfourth"}},
		},
		{
			name: "one space after the colon is dropped, no more",
			wire: "data:no space\n\ndata:  two spaces\n\n",
			want: []sseMessage{{typ: "message", data: "no space"}, {typ: "message", data: " two spaces"}},
		},
		{
			name: "comments and unknown fields are ignored",
			wire: ": hello\nfoo: bar\ndata: x\n:another\n\n",
			want: []sseMessage{{typ: "message", data: "x"}},
		},
		{
			name: "a field without a colon has an empty value",
			wire: "data\n\n",
			want: []sseMessage{{typ: "message", data: ""}},
		},
		{
			name: "an id without data sets the last id and dispatches nothing",
			wire: "id: 41\n\nevent: event\ndata: x\n\n",
			want: []sseMessage{{id: "41", typ: "event", data: "x"}},
		},
		{
			name: "the event type does not outlive its event",
			wire: "event: error\n\ndata: x\n\n",
			want: []sseMessage{{typ: "message", data: "x"}},
		},
		{
			name: "an id holding NUL is ignored",
			wire: "id: 3\n\nid: 4\x005\ndata: x\n\n",
			want: []sseMessage{{id: "3", typ: "message", data: "x"}},
		},
		{
			name: "a byte order mark at the start is skipped",
			wire: "\uFEFFdata: x\n\n",
			want: []sseMessage{{typ: "message", data: "x"}},
		},
		{
			name:  "retry takes digits only",
			wire:  "retry: 1500\n\nretry: 2s\n\nretry: -1\n\n",
			retry: 1500 * time.Millisecond,
		},
		{
			name: "a half event at the end is dropped",
			wire: "data: whole\n\ndata: half",
			want: []sseMessage{{typ: "message", data: "whole"}},
		},
		{
			name: "an error event",
			wire: "event: error\ndata: {\"reason\":\"slow client\"}\n\n",
			want: []sseMessage{{typ: "error", data: `{"reason":"slow client"}`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time: a CR at the end of a read must wait
			// for the next byte.
			for _, rd := range []io.Reader{strings.NewReader(tt.wire), iotest.OneByteReader(strings.NewReader(tt.wire))} {
				r := newSSEReader(rd)
				var got []sseMessage
				for {
					m, err := r.next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, m)
				}
				if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(sseMessage{})); diff != "" {
					t.Errorf("messages of %q (-want +got):\n%s", tt.wire, diff)
				}
				if r.retry != tt.retry {
					t.Errorf("retry of %q = %v; want %v", tt.wire, r.retry, tt.retry)
				}
			}
		})
	}
}

// frame formats an event the way the server does.
func frame(seq uint64) string {
	return fmt.Sprintf("id: %d\nevent: event\ndata: {\"seq\":%d,\"id\":\"e%d\",\"tag\":\"A.B\",\"category\":\"A\",\"code\":\"B\",\"message\":\"m\",\"timestamp\":\"2026-11-23T10:00:00Z\",\"received_at\":\"2026-11-23T10:00:00Z\",\"subject\":\"events.A.B\"}\n\n", seq, seq, seq)
}

// A tail reconnects from the last seq it saw when the stream drops or the
// server ends it, and never yields an event twice.
func TestTailReconnects(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 0:
			io.WriteString(w, ": ping\n\n"+frame(1)+frame(2)) // then the connection ends
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable) // not a stream: tried again
		case 2:
			// The server sends 2 again (it goes by since), then ends
			// the stream on purpose.
			io.WriteString(w, frame(2)+frame(3)+"event: error\ndata: {\"reason\":\"slow client\"}\n\n")
		default:
			io.WriteString(w, frame(4)+"data: half an ev")
		}
	})
	c, _ := newClient(t, s)
	var got []uint64
	for e, err := range c.Tail(t.Context(), "A.*", 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Seq)
		if e.Seq == 4 {
			break
		}
	}
	if diff := cmp.Diff([]uint64{1, 2, 3, 4}, got); diff != "" {
		t.Errorf("seqs (-want +got):\n%s", diff)
	}
	type start struct{ Query, LastEventID, Accept string }
	var starts []start
	for _, c := range s.received() {
		starts = append(starts, start{c.Query, c.Header.Get("Last-Event-ID"), c.Header.Get("Accept")})
	}
	want := []start{
		{"since=0&tag=A.%2A", "", "text/event-stream"},
		{"since=2&tag=A.%2A", "2", "text/event-stream"},
		{"since=2&tag=A.%2A", "2", "text/event-stream"},
		{"since=3&tag=A.%2A", "3", "text/event-stream"},
	}
	if diff := cmp.Diff(want, starts); diff != "" {
		t.Errorf("connections (-want +got):\n%s", diff)
	}
}

// A Live tail asks for no cursor, then resumes from the id the server
// named first.
func TestTailLive(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 0 {
			io.WriteString(w, "id: 41\n\n")
			return
		}
		io.WriteString(w, frame(42))
	})
	c, _ := newClient(t, s)
	for e, err := range c.Tail(t.Context(), "", Live) {
		if err != nil || e.Seq != 42 {
			t.Fatalf("Tail yielded %d, %v; want event 42", e.Seq, err)
		}
		break
	}
	calls := s.received()
	if q := calls[0].Query; q != "" {
		t.Errorf("first connection query = %q; want none (from now on)", q)
	}
	if q, _ := url.ParseQuery(calls[1].Query); q.Get("since") != "41" || calls[1].Header.Get("Last-Event-ID") != "41" {
		t.Errorf("second connection = %q, Last-Event-ID %q; want since 41", calls[1].Query, calls[1].Header.Get("Last-Event-ID"))
	}
}

func TestTailErrors(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter)
		status  int
		connect int // connections made
	}{
		{
			name: "bad pattern",
			answer: func(w http.ResponseWriter) {
				writeProblem(w, 400, `{"status":400,"title":"Bad Request","detail":"tag is not a pattern"}`)
			},
			status:  400,
			connect: 1,
		},
		{
			name:    "not a stream",
			answer:  func(w http.ResponseWriter) { w.Header().Set("Content-Type", "text/html"); io.WriteString(w, "<html>") },
			status:  200,
			connect: 1,
		},
		{
			name:    "unavailable from the start",
			answer:  func(w http.ResponseWriter) { writeProblem(w, 503, `{"status":503,"title":"Service Unavailable"}`) },
			status:  503,
			connect: 4, // WithRetry(4, …)
		},
		{
			name: "an event that does not decode",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "id: 1\nevent: event\ndata: {not json\n\n")
			},
			connect: 1,
		},
		{
			name: "an error event with a problem that is not temporary",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: error\ndata: {\"status\":403,\"title\":\"Forbidden\",\"detail\":\"no\"}\n\n")
			},
			status:  403,
			connect: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, c call, w http.ResponseWriter) { tt.answer(w) })
			c, _ := newClient(t, s)
			var errs []error
			for e, err := range c.Tail(t.Context(), "A.B", 0) {
				if err == nil {
					t.Fatalf("Tail yielded event %+v; want an error", e)
				}
				errs = append(errs, err)
			}
			if len(errs) != 1 || statusOf(errs[0]) != tt.status {
				t.Fatalf("Tail yielded %v; want one error with status %d", errs, tt.status)
			}
			if n := len(s.received()); n != tt.connect {
				t.Errorf("Tail connected %d times; want %d", n, tt.connect)
			}
		})
	}
}

func TestStreamError(t *testing.T) {
	tests := []struct {
		data      string
		status    int
		detail    string
		temporary bool
	}{
		{`{"reason":"slow client"}`, 503, "slow client", true},
		{`{"reason":"shutting down"}`, 503, "shutting down", true},
		{`not json`, 503, "not json", true},
		{`{"status":400,"title":"Bad Request","detail":"tag bad"}`, 400, "tag bad", false},
	}
	for _, tt := range tests {
		e := streamError(tt.data)
		if e.Status != tt.status || e.Detail != tt.detail || e.Temporary() != tt.temporary {
			t.Errorf("streamError(%q) = %d %q temporary %v; want %d %q %v", tt.data, e.Status, e.Detail, e.Temporary(), tt.status, tt.detail, tt.temporary)
		}
	}
}

// The events a tail yields decode like the query API's.
func TestTailDecodes(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, frame(5))
	})
	c, _ := newClient(t, s)
	for e, err := range c.Tail(t.Context(), "", 4) {
		if err != nil {
			t.Fatal(err)
		}
		want := event.Event{Seq: 5, ID: "e5", Tag: "A.B", Category: "A", Code: "B", Message: "m", Subject: "events.A.B",
			Timestamp: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), ReceivedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
		if diff := cmp.Diff(want, e); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
		break
	}
}
