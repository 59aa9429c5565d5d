package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/services/notifier/internal/netguard"
)

// slackRequest is what a slackReceiver got.
type slackRequest struct {
	Method string
	Header http.Header
	Text   string
}

// slackReceiver is a real incoming-webhook endpoint on loopback that
// records posts and answers with handle (200 "ok" when nil).
type slackReceiver struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []slackRequest
}

func newSlackReceiver(t *testing.T, handle http.HandlerFunc) *slackReceiver {
	t.Helper()
	rc := &slackReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		text, _ := p["text"].(string)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, slackRequest{Method: r.Method, Header: r.Header.Clone(), Text: text})
		rc.mu.Unlock()
		if handle != nil {
			handle(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *slackReceiver) url() string { return rc.srv.URL + "/services/T000/B000/XXXXSECRETTOKEN" }

func (rc *slackReceiver) requests() []slackRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]slackRequest(nil), rc.reqs...)
}

func TestSlackSendOne(t *testing.T) {
	rc := newSlackReceiver(t, nil)
	res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_s1", rc.url(), testEvent))
	if res.Verdict != Delivered || res.Status != 200 || res.Response != "ok" || res.Err != nil {
		t.Fatalf("Send = %+v; want delivered, 200, ok", res)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests; want 1", len(reqs))
	}
	got := reqs[0]
	if got.Method != http.MethodPost || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s with Content-Type %q; want POST with application/json", got.Method, got.Header.Get("Content-Type"))
	}
	for name := range got.Header {
		if strings.HasPrefix(strings.ToLower(name), "webhook-") {
			t.Errorf("request has signing header %s; Slack requests are not signed", name)
		}
	}
	want := "*DATABASE.CONNECTION_LOST* · error\n" +
		"lost connection to primary\n" +
		"session sess-7 · source db-1 · 2026-01-02 15:04:05 UTC · seq 42"
	if diff := cmp.Diff(want, got.Text); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
}

func TestSlackEscaping(t *testing.T) {
	rc := newSlackReceiver(t, nil)
	ev := testEvent
	ev.Tag = "APP.<B>"
	ev.Message = "<!channel> deploy & rollback <https://evil.example|click> <@U123>"
	ev.Source = "a>b"
	if res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_e", rc.url(), ev)); res.Verdict != Delivered {
		t.Fatalf("Send = %+v; want delivered", res)
	}
	text := rc.requests()[0].Text
	if strings.ContainsAny(text, "<>") {
		t.Errorf("text = %q; want no < or > left unescaped", text)
	}
	for _, want := range []string{
		"*APP.&lt;B&gt;*",
		"&lt;!channel&gt; deploy &amp; rollback &lt;https://evil.example|click&gt; &lt;@U123&gt;",
		"source a&gt;b",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text = %q; want it to contain %q", text, want)
		}
	}
}

func TestSlackBatch(t *testing.T) {
	batch := func(n int, msg string) []event.Event {
		events := make([]event.Event, n)
		for i := range events {
			events[i] = testEvent
			events[i].Seq = uint64(i + 1)
			events[i].Message = fmt.Sprintf("%s %d", msg, i+1)
		}
		return events
	}
	tests := []struct {
		name      string
		events    []event.Event
		wantLines int // event lines listed; -1: as many as fit the size limit
		wantMore  int // counted in "…and N more"; 0 for none
	}{
		{"three", batch(3, "failure"), 3, 0},
		{"twenty", batch(20, "failure"), 20, 0},
		{"twenty-five", batch(25, "failure"), 20, 5},
		{"long messages", batch(20, strings.Repeat("x", 1000)), -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newSlackReceiver(t, nil)
			if res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_b", rc.url(), tt.events...)); res.Verdict != Delivered {
				t.Fatalf("Send = %+v; want delivered", res)
			}
			text := rc.requests()[0].Text
			lines := strings.Split(text, "\n")
			if want := fmt.Sprintf("*%d events* from EventSync", len(tt.events)); lines[0] != want {
				t.Errorf("first line = %q; want %q", lines[0], want)
			}
			var listed int
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, "• *DATABASE.CONNECTION_LOST* · error · ") {
					listed++
					if n := utf8.RuneCountInString(l); n > 400 {
						t.Errorf("event line of %d characters; want a truncated message", n)
					}
				}
			}
			last := lines[len(lines)-1]
			if tt.wantLines < 0 {
				// Cut by size: what is listed and what is counted add up.
				if len(text) > slackMaxText+len(last)+1 || listed == 0 || last != fmt.Sprintf("…and %d more", len(tt.events)-listed) {
					t.Errorf("text of %d bytes lists %d events and ends %q; want at most %d bytes before the count of the rest",
						len(text), listed, last, slackMaxText)
				}
				return
			}
			if listed != tt.wantLines {
				t.Errorf("text lists %d events; want %d:\n%s", listed, tt.wantLines, text)
			}
			if tt.wantMore > 0 && last != fmt.Sprintf("…and %d more", tt.wantMore) {
				t.Errorf("last line = %q; want …and %d more", last, tt.wantMore)
			}
			if tt.wantMore == 0 && strings.Contains(last, "more") {
				t.Errorf("last line = %q; want no count of more events", last)
			}
		})
	}
}

func TestSlackTruncatesLongMessage(t *testing.T) {
	rc := newSlackReceiver(t, nil)
	ev := testEvent
	ev.Message = strings.Repeat("ä", 5000)
	if res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_l", rc.url(), ev)); res.Verdict != Delivered {
		t.Fatalf("Send = %+v; want delivered", res)
	}
	lines := strings.Split(rc.requests()[0].Text, "\n")
	msg := lines[1]
	if n := utf8.RuneCountInString(msg); n != slackMaxMessage || !strings.HasSuffix(msg, "…") {
		t.Errorf("message line of %d characters ending %q; want %d ending with …", n, msg[len(msg)-8:], slackMaxMessage)
	}
}

func TestSlackStatusClassification(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   Verdict
	}{
		{200, "ok", Delivered},
		{204, "", Delivered},
		{301, "", Reject},
		{400, "invalid_payload", Reject},
		{403, "action_prohibited", Reject},
		{404, "channel_not_found", Reject},
		{408, "", Retry},
		{410, "channel_is_archived", Gone},
		{413, "", Reject},
		{429, "rate_limited", Retry},
		{500, "rollup_error", Retry},
		{502, "", Retry},
		{503, "", Retry},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			rc := newSlackReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 301 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_c", rc.url(), testEvent))
			if res.Verdict != tt.want || res.Status != tt.status || res.Response != tt.body || (res.Err == nil) != (tt.want == Delivered) {
				t.Errorf("Send answered %d %q = %+v; want %v, status %d, response %q", tt.status, tt.body, res, tt.want, tt.status, tt.body)
			}
			if res.Err != nil && strings.Contains(res.Err.Error(), "SECRETTOKEN") {
				t.Errorf("Send error %q names the webhook's secret path", res.Err)
			}
			if n := len(rc.requests()); n != 1 {
				t.Errorf("receiver got %d requests; want 1 (redirects are not followed)", n)
			}
		})
	}
}

func TestSlackRetryAfter(t *testing.T) {
	date := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header map[string]string
		want   time.Duration
	}{
		{"seconds on 429", 429, map[string]string{"Retry-After": "120"}, 2 * time.Minute},
		{"http date on 503", 503, map[string]string{"Retry-After": date.Add(90 * time.Second).Format(http.TimeFormat), "Date": date.Format(http.TimeFormat)}, 90 * time.Second},
		{"date in the past", 503, map[string]string{"Retry-After": date.Add(-time.Minute).Format(http.TimeFormat), "Date": date.Format(http.TimeFormat)}, 0},
		{"garbage", 429, map[string]string{"Retry-After": "soon"}, 0},
		{"absent", 429, nil, 0},
		{"ignored on 500", 500, map[string]string{"Retry-After": "120"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newSlackReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
			})
			res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_r", rc.url(), testEvent))
			if res.Verdict != Retry || res.RetryAfter != tt.want {
				t.Errorf("Send answered %d %v = %v, RetryAfter %v; want retry after %v", tt.status, tt.header, res.Verdict, res.RetryAfter, tt.want)
			}
		})
	}
}

func TestSlackResponseLimit(t *testing.T) {
	rc := newSlackReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, strings.Repeat("e", 5000))
	})
	res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_r", rc.url(), testEvent))
	if res.Verdict != Reject || len(res.Response) != 1024 {
		t.Errorf("Send = %v with a response of %d bytes; want reject with 1024", res.Verdict, len(res.Response))
	}
}

func TestSlackTransportFailures(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		target := "http://" + ln.Addr().String() + "/services/XXXXSECRETTOKEN"
		ln.Close()
		res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_t", target, testEvent))
		if res.Verdict != Retry || res.Status != 0 || res.Err == nil {
			t.Errorf("Send to a closed port = %+v; want retry, status 0 and an error", res)
		}
		if res.Err != nil && strings.Contains(res.Err.Error(), "SECRETTOKEN") {
			t.Errorf("Send error %q names the webhook's secret path", res.Err)
		}
	})

	t.Run("context ends while the receiver is silent", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		rc := newSlackReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			cancel() // the request arrived: end the attempt now
			<-r.Context().Done()
		})
		res := NewSlack(nil).Send(ctx, testMessage(t, "msg_t", rc.url(), testEvent))
		if res.Verdict != Retry || res.Status != 0 || !errors.Is(res.Err, context.Canceled) {
			t.Errorf("Send with a cancelled context = %+v; want retry, status 0, context.Canceled", res)
		}
	})

	t.Run("guard refuses loopback", func(t *testing.T) {
		rc := newSlackReceiver(t, nil)
		s := NewSlack(NewHTTPClient(netguard.New(nil)))
		res := s.Send(t.Context(), testMessage(t, "msg_t", rc.url(), testEvent))
		if res.Verdict != Reject || !errors.Is(res.Err, netguard.ErrForbidden) {
			t.Errorf("Send to loopback through the guard = %+v; want reject with netguard.ErrForbidden", res)
		}
		if n := len(rc.requests()); n != 0 {
			t.Errorf("receiver got %d requests; want none", n)
		}
	})

	for _, target := range []string{"ftp://example.com/hook", "not a url", "https://", "mailto:ops@example.com"} {
		t.Run("target "+target, func(t *testing.T) {
			res := NewSlack(nil).Send(t.Context(), testMessage(t, "msg_t", target, testEvent))
			if res.Verdict != Reject || res.Err == nil {
				t.Errorf("Send(%q) = %+v; want reject with an error", target, res)
			}
		})
	}
}
