package client

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/event"
)

// call is one request a test server received.
type call struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte // decompressed
	Gzipped             bool
}

// server is a loopback HTTP server that records every request and answers
// with a scripted handler.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
}

// newServer starts a server answering with answer(n, call), n counting
// requests from 0.
func newServer(t *testing.T, answer func(n int, c call, w http.ResponseWriter)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		gz := r.Header.Get("Content-Encoding") == "gzip"
		if gz {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rd = zr
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c := call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: b, Gzipped: gz}
		s.mu.Lock()
		n := len(s.calls)
		s.calls = append(s.calls, c)
		s.mu.Unlock()
		answer(n, c, w)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) received() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

// writeProblem answers a problem+json.
func writeProblem(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// accept answers a POST /v1/events as the server does: every event
// accepted, seqs from first.
func accept(w http.ResponseWriter, body []byte, first uint64) {
	var items []struct {
		ID  string `json:"id"`
		Tag string `json:"tag"`
	}
	if err := json.Unmarshal(body, &items); err != nil {
		writeProblem(w, 400, `{"status":400,"title":"Bad Request","detail":"not an array"}`)
		return
	}
	a := ingestAnswer{Accepted: len(items)}
	for i, it := range items {
		a.Events = append(a.Events, Result{ID: it.ID, Seq: first + uint64(i), Subject: "events." + it.Tag})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(a)
}

// ids returns the ids of the events of a POST /v1/events body.
func bodyIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("body %q is not an array of events: %v", body, err)
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// newClient returns a client of s that retries fast and records its waits.
func newClient(t *testing.T, s *server, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(s.URL, append([]Option{WithRetry(4, time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, waits
}

func TestNew(t *testing.T) {
	tests := []struct {
		url     string
		opts    []Option
		wantErr bool
	}{
		{"http://127.0.0.1:8080", nil, false},
		{"https://events.example.com/base/", nil, false},
		{"localhost:8080", nil, true},
		{"ftp://example.com", nil, true},
		{"http://", nil, true},
		{"http://h", []Option{WithRetry(0, time.Second)}, true},
		{"http://h", []Option{WithJWT("prd_1", "not base64url!")}, true},
		{"http://h", []Option{WithHTTPClient(nil)}, true},
		{"http://h", []Option{WithMaxBatchBytes(0)}, true},
	}
	for _, tt := range tests {
		_, err := New(tt.url, tt.opts...)
		if (err != nil) != tt.wantErr {
			t.Errorf("New(%q, %d options) error = %v; want error %v", tt.url, len(tt.opts), err, tt.wantErr)
		}
	}
}

// A server that answers 503 twice gets the same ids on every try.
func TestSendRetriesWithTheSameIDs(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		if n < 2 {
			writeProblem(w, http.StatusServiceUnavailable, `{"status":503,"title":"Service Unavailable","detail":"jetstream"}`)
			return
		}
		accept(w, c.Body, 1)
	})
	c, waits := newClient(t, s)
	res, err := c.Send(t.Context(),
		Event{Tag: "A.B", Message: "one"},
		Event{ID: "mine", Tag: "A.B", Message: "two"},
	)
	if err != nil {
		t.Fatal(err)
	}
	calls := s.received()
	if len(calls) != 3 {
		t.Fatalf("Send made %d requests; want 3", len(calls))
	}
	first := bodyIDs(t, calls[0].Body)
	if first[0] == "" || first[1] != "mine" {
		t.Fatalf("ids sent = %q; want a generated id and %q", first, "mine")
	}
	for i, c := range calls[1:] {
		if diff := cmp.Diff(first, bodyIDs(t, c.Body)); diff != "" {
			t.Errorf("try %d sent other ids (-first +this):\n%s", i+2, diff)
		}
	}
	want := &SendResult{Accepted: 2, Events: []Result{
		{ID: first[0], Seq: 1, Subject: "events.A.B"}, {ID: "mine", Seq: 2, Subject: "events.A.B"},
	}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Send result (-want +got):\n%s", diff)
	}
	if len(*waits) != 2 {
		t.Errorf("waited %d times; want 2", len(*waits))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"seconds on 429", http.StatusTooManyRequests, "7", 7 * time.Second},
		{"seconds on 503", http.StatusServiceUnavailable, "2", 2 * time.Second},
		{"http date", http.StatusServiceUnavailable, now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"capped", http.StatusTooManyRequests, "86400", time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, c call, w http.ResponseWriter) {
				if n == 0 {
					w.Header().Set("Retry-After", tt.header)
					writeProblem(w, tt.status, `{"status":429}`)
					return
				}
				accept(w, c.Body, 1)
			})
			c, waits := newClient(t, s)
			c.now = func() time.Time { return now }
			if _, err := c.Send(t.Context(), Event{Tag: "A.B", Message: "m"}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]time.Duration{tt.want}, *waits); diff != "" {
				t.Errorf("Retry-After %q: waits (-want +got):\n%s", tt.header, diff)
			}
		})
	}
}

func TestBackoffGrows(t *testing.T) {
	c := &Client{backoff: 100 * time.Millisecond}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 20: MaxBackoff} {
		for range 50 {
			if got := c.backoffFor(attempt); got < want/2 || got > want {
				t.Fatalf("backoffFor(%d) = %v; want within [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
}

// Other 4xx answers are not retried; their problem is an *Error whose
// pointers index the events given to Send, across batches.
func TestSendErrors(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		if n == 0 {
			accept(w, c.Body, 1)
			return
		}
		writeProblem(w, http.StatusUnprocessableEntity, `{"type":"https://eventsync.dev/problems/validation","title":"Unprocessable Entity","status":422,
			"detail":"1 rule(s) broken; nothing was published","errors":[{"pointer":"/3/timestamp","detail":"is more than 1m0s in the future"},{"pointer":"/12","detail":"must be a JSON object"}]}`)
	})
	c, _ := newClient(t, s)
	events := make([]Event, 1500)
	for i := range events {
		events[i] = Event{Tag: "A.B", Message: "m"}
	}
	res, err := c.Send(t.Context(), events...)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Send error = %v; want an *Error", err)
	}
	want := &Error{
		Status: 422, Type: "https://eventsync.dev/problems/validation", Title: "Unprocessable Entity",
		Detail: "1 rule(s) broken; nothing was published",
		Errors: []FieldError{{Pointer: "/1003/timestamp", Detail: "is more than 1m0s in the future"}, {Pointer: "/1012", Detail: "must be a JSON object"}},
	}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if n := len(s.received()); n != 2 {
		t.Errorf("Send made %d requests; want 2 (a 422 is not retried)", n)
	}
	if len(res.Events) != 1000 || res.Accepted != 1000 {
		t.Errorf("result holds %d events (%d accepted); want the first batch of 1000", len(res.Events), res.Accepted)
	}
	if !strings.Contains(err.Error(), "send events 1000 to 1499 of 1500") || !strings.Contains(err.Error(), "/1003/timestamp is more than 1m0s in the future") {
		t.Errorf("error text %q does not name the batch and the pointer", err)
	}
}

func TestErrorFromAnswer(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        Error
		text        string
	}{
		{
			name: "problem with owner", status: 423, contentType: "application/problem+json",
			body:   `{"type":"https://eventsync.dev/problems/owned","title":"Locked","status":423,"detail":"BILLING belongs to another producer","owner":"prd_1","errors":[{"pointer":"/0/category","detail":"is owned by another producer"}]}`,
			header: map[string]string{"X-Request-ID": "req-1"},
			want: Error{Status: 423, Type: "https://eventsync.dev/problems/owned", Title: "Locked", Detail: "BILLING belongs to another producer", Owner: "prd_1",
				Errors: []FieldError{{Pointer: "/0/category", Detail: "is owned by another producer"}}, RequestID: "req-1"},
			text: "423 Locked: BILLING belongs to another producer [/0/category is owned by another producer]",
		},
		{
			name: "proxy text", status: 502, contentType: "text/plain", body: "upstream connect error\n",
			want: Error{Status: 502, Title: "Bad Gateway", Detail: "upstream connect error"},
			text: "502 Bad Gateway: upstream connect error",
		},
		{
			name: "odd problem body", status: 404, contentType: "application/problem+json", body: "{",
			want: Error{Status: 404, Title: "Not Found"},
			text: "404 Not Found",
		},
		{
			name: "retry after", status: 429, contentType: "application/problem+json", body: `{"status":429,"title":"Too Many Requests","detail":"slow down"}`,
			header: map[string]string{"Retry-After": "3"},
			want:   Error{Status: 429, Title: "Too Many Requests", Detail: "slow down", RetryAfter: 3 * time.Second},
			text:   "429 Too Many Requests: slow down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", tt.contentType)
			for k, v := range tt.header {
				rec.Header().Set(k, v)
			}
			rec.WriteHeader(tt.status)
			rec.WriteString(tt.body)
			got := readError(rec.Result(), time.Now())
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("readError (-want +got):\n%s", diff)
			}
			if got.Error() != tt.text {
				t.Errorf("Error() = %q; want %q", got.Error(), tt.text)
			}
		})
	}
}

// Network errors are retried for requests that are safe to repeat only.
func TestNetworkErrors(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		if n%2 == 0 { // every other request loses its connection
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if c.Path == "/v1/events" {
			accept(w, c.Body, 1)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"sub_1"}`)
	})
	c, _ := newClient(t, s)
	if _, err := c.Send(t.Context(), Event{Tag: "A.B", Message: "m"}); err != nil {
		t.Errorf("Send after a dropped connection: %v; want it retried", err)
	}
	_, err := c.CreateSubscription(t.Context(), SubscriptionSpec{URL: "https://example.com", Tags: []string{"A.>"}})
	var e *Error
	if err == nil || errors.As(err, &e) {
		t.Errorf("CreateSubscription on a dropped connection = %v; want the network error, not retried", err)
	}
	if n := len(s.received()); n != 3 {
		t.Errorf("server got %d requests; want 3 (2 sends, 1 create)", n)
	}
}

// When the context ends during a backoff, the error names both.
func TestRetryStopsWithContext(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		writeProblem(w, http.StatusServiceUnavailable, `{"status":503,"title":"Service Unavailable"}`)
	})
	c, err := New(s.URL, WithRetry(10, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	c.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, err = c.Send(ctx, Event{Tag: "A.B", Message: "m"})
	var e *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &e) || e.Status != 503 {
		t.Errorf("Send = %v; want context.Canceled wrapping the last 503", err)
	}
}

func TestBatching(t *testing.T) {
	tests := []struct {
		name     string
		events   int
		message  int // bytes per message
		maxBytes int
		want     []int // events per request
	}{
		{"one", 1, 1, DefaultMaxBatchBytes, []int{1}},
		{"by count", 2500, 1, DefaultMaxBatchBytes, []int{1000, 1000, 500}},
		{"by size", 10, 1000, 3500, []int{3, 3, 3, 1}},
		{"an event over the limit goes alone", 3, 5000, 3500, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, c call, w http.ResponseWriter) { accept(w, c.Body, 1) })
			c, _ := newClient(t, s, WithMaxBatchBytes(tt.maxBytes))
			events := make([]Event, tt.events)
			for i := range events {
				events[i] = Event{ID: fmt.Sprintf("e%04d", i), Tag: "A.B", Message: strings.Repeat("m", tt.message)}
			}
			res, err := c.Send(t.Context(), events...)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			var sent []string
			for _, call := range s.received() {
				ids := bodyIDs(t, call.Body)
				got = append(got, len(ids))
				sent = append(sent, ids...)
				if len(ids) > 1 && len(call.Body) > tt.maxBytes {
					t.Errorf("a body of %d events has %d bytes; want at most %d", len(ids), len(call.Body), tt.maxBytes)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events per request (-want +got):\n%s", diff)
			}
			for i, id := range sent {
				if id != events[i].ID || res.Events[i].ID != id {
					t.Fatalf("event %d sent as %q, answered as %q; want %q (order kept)", i, id, res.Events[i].ID, events[i].ID)
				}
			}
		})
	}
}

func TestGzip(t *testing.T) {
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name    string
		opts    []Option
		message string
		want    bool
	}{
		{"large body", nil, big, true},
		{"small body", nil, "m", false},
		{"off", []Option{WithGzip(false)}, big, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, c call, w http.ResponseWriter) { accept(w, c.Body, 1) })
			c, _ := newClient(t, s, tt.opts...)
			if _, err := c.Send(t.Context(), Event{ID: "e1", Tag: "A.B", Message: tt.message}); err != nil {
				t.Fatal(err)
			}
			got := s.received()[0]
			if got.Gzipped != tt.want {
				t.Errorf("gzipped = %v; want %v", got.Gzipped, tt.want)
			}
			if ids := bodyIDs(t, got.Body); len(ids) != 1 || ids[0] != "e1" {
				t.Errorf("server read ids %q; want [e1]", ids)
			}
		})
	}
}

func TestEventEncoding(t *testing.T) {
	ts := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
	tests := []struct {
		name string
		in   Event
		want string
	}{
		{"minimal", Event{ID: "e", Tag: "A.B", Message: "m"}, `{"id":"e","tag":"A.B","message":"m"}`},
		{
			"everything",
			Event{ID: "e", Category: "TEST.NETWORK", Code: "TIMEOUT", Message: "m", Timestamp: ts, SessionID: "s", Source: "svc", Severity: event.Warning, Data: map[string]any{"k": 1}},
			`{"id":"e","category":"TEST.NETWORK","code":"TIMEOUT","message":"m","timestamp":"2026-11-23T10:00:00.123456Z","session_id":"s","source":"svc","severity":"warning","data":{"k":1}}`,
		},
		{"raw data", Event{ID: "e", Tag: "A.B", Message: "m", Data: json.RawMessage(`{"x":[1,2]}`)}, `{"id":"e","tag":"A.B","message":"m","data":{"x":[1,2]}}`},
		{"empty data object kept", Event{ID: "e", Tag: "A.B", Message: "m", Data: map[string]any{}}, `{"id":"e","tag":"A.B","message":"m","data":{}}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if string(b) != tt.want {
			t.Errorf("%s: Marshal = %s; want %s", tt.name, b, tt.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	secret := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	tests := []struct {
		name  string
		opts  []Option
		check func(t *testing.T, send, admin string)
	}{
		{"none", nil, func(t *testing.T, send, admin string) {
			if send != "" || admin != "" {
				t.Errorf("Authorization = %q, %q; want none", send, admin)
			}
		}},
		{"basic", []Option{WithBasic("prd_1", "pw:with:colons")}, func(t *testing.T, send, _ string) {
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte("prd_1:pw:with:colons"))
			if send != want {
				t.Errorf("Authorization = %q; want %q", send, want)
			}
		}},
		{"api key", []Option{WithAPIKey("esk_abc"), WithAdminToken("adm")}, func(t *testing.T, send, admin string) {
			if send != "Bearer esk_abc" || admin != "Bearer adm" {
				t.Errorf("Authorization = %q (send), %q (admin); want the key and the admin token", send, admin)
			}
		}},
		{"jwt", []Option{WithJWT("prd_1", secret+"==")}, func(t *testing.T, send, _ string) {
			raw, ok := strings.CutPrefix(send, "Bearer ")
			if !ok {
				t.Fatalf("Authorization = %q; want a Bearer token", send)
			}
			var c jwt.MapClaims
			_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt()).
				ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return []byte("0123456789abcdef0123456789abcdef"), nil })
			if err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if c["sub"] != "prd_1" || c["gty"] != "client-credentials" || c["jti"] == "" || c["exp"].(float64)-c["iat"].(float64) != 300 {
				t.Errorf("claims = %v; want sub prd_1, gty client-credentials, a jti, exp = iat + 5m", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, c call, w http.ResponseWriter) {
				if c.Path == "/v1/events" {
					accept(w, c.Body, 1)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"producers":[]}`)
			})
			c, _ := newClient(t, s, tt.opts...)
			if _, err := c.Send(t.Context(), Event{Tag: "A.B", Message: "m"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Producers(t.Context()); err != nil {
				t.Fatal(err)
			}
			calls := s.received()
			tt.check(t, calls[0].Header.Get("Authorization"), calls[1].Header.Get("Authorization"))
		})
	}
}

// Every try carries a fresh token: the server accepts each jti once.
func TestJWTFreshPerTry(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		if n < 2 {
			writeProblem(w, http.StatusServiceUnavailable, `{"status":503}`)
			return
		}
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s, WithJWT("prd_1", base64.RawURLEncoding.EncodeToString([]byte("k"))))
	if _, err := c.Send(t.Context(), Event{Tag: "A.B", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, call := range s.received() {
		var claims jwt.MapClaims
		if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimPrefix(call.Header.Get("Authorization"), "Bearer "), &claims); err != nil {
			t.Fatal(err)
		}
		jti := claims["jti"].(string)
		if seen[jti] {
			t.Errorf("jti %s sent twice", jti)
		}
		seen[jti] = true
	}
}

func TestFilterValues(t *testing.T) {
	from := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		f    Filter
		want string
	}{
		{Filter{}, ""},
		{Filter{Since: 42, Limit: 1000}, "limit=1000&since=42"},
		{Filter{Tag: "TEST.>", Severity: event.Warning, Newest: true}, "order=desc&severity=warning&tag=TEST.%3E"},
		{
			Filter{Category: "AUTH", Code: "INVALID_TOKEN", SessionID: "s 1", Source: "svc", From: from, To: from.Add(24 * time.Hour)},
			"category=AUTH&code=INVALID_TOKEN&from=2026-11-23T00%3A00%3A00Z&session_id=s+1&source=svc&to=2026-11-24T00%3A00%3A00Z",
		},
	}
	for _, tt := range tests {
		if got := tt.f.values().Encode(); got != tt.want {
			t.Errorf("%+v.values() = %q; want %q", tt.f, got, tt.want)
		}
	}
}

// Events follows next_since until a page comes back short.
func TestEventsIterator(t *testing.T) {
	const total = 7
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		q, _ := url.ParseQuery(c.Query)
		since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
		p := Page{Events: []event.Event{}, NextSince: total}
		for seq := since + 1; seq <= total && len(p.Events) < 3; seq++ {
			p.Events = append(p.Events, event.Event{Seq: seq, ID: fmt.Sprint(seq), Tag: "A.B", Category: "A", Code: "B", Message: "m", Severity: event.Info})
		}
		if len(p.Events) == 3 {
			p.NextSince = p.Events[2].Seq
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	})
	c, _ := newClient(t, s)
	var got []uint64
	for e, err := range c.Events(t.Context(), Filter{Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Seq)
	}
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5, 6, 7}, got); diff != "" {
		t.Errorf("seqs (-want +got):\n%s", diff)
	}
	var queries []string
	for _, c := range s.received() {
		queries = append(queries, c.Query)
	}
	if diff := cmp.Diff([]string{"limit=3", "limit=3&since=3", "limit=3&since=6"}, queries); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}

	// Stopping early makes no further request.
	before := len(s.received())
	for range c.Events(t.Context(), Filter{Limit: 3}) {
		break
	}
	if n := len(s.received()) - before; n != 1 {
		t.Errorf("a loop that breaks at once made %d requests; want 1", n)
	}
}

func TestEventsIteratorError(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		writeProblem(w, 400, `{"status":400,"title":"Bad Request","detail":"tag bad","errors":[{"pointer":"tag","detail":"bad"}]}`)
	})
	c, _ := newClient(t, s)
	var errs int
	for _, err := range c.Events(t.Context(), Filter{Tag: "A..B"}) {
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 {
			t.Errorf("Events yielded %v; want a 400 *Error", err)
		}
		errs++
	}
	if errs != 1 {
		t.Errorf("Events yielded %d errors; want 1, then the end", errs)
	}
}

// Requests name their resources with escaped path parameters.
func TestPaths(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case c.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(c.Path, "/replay"):
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"queued":17}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	})
	c, _ := newClient(t, s)
	ctx := t.Context()
	from := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	calls := []func() error{
		func() error { _, err := c.Event(ctx, "order/42 created"); return err },
		func() error { _, err := c.Session(ctx, "s-1"); return err },
		func() error { _, err := c.Stats(ctx, StatsFilter{Bucket: "minute", Tag: "DATABASE.>"}); return err },
		func() error { _, err := c.Subscription(ctx, "sub_1"); return err },
		func() error { return c.DeleteSubscription(ctx, "sub_1") },
		func() error {
			n, err := c.Replay(ctx, "sub_1", ReplayRequest{SinceSeq: 1000})
			if n != 17 {
				return fmt.Errorf("queued %d; want 17", n)
			}
			return err
		},
		func() error {
			_, err := c.Replay(ctx, "sub_1", ReplayRequest{From: from, To: from.Add(time.Hour)})
			return err
		},
		func() error {
			_, err := c.CreateConsumer(ctx, "billing-worker", []string{"BILLING.>"}, StartAfter(41))
			return err
		},
		func() error { _, err := c.Next(ctx, "billing-worker", 0, 5*time.Second); return err },
		func() error { _, err := c.Ack(ctx, "billing-worker", 42); return err },
		func() error { _, err := c.Seek(ctx, "billing-worker", 7); return err },
		func() error { return c.DeleteConsumer(ctx, "billing-worker") },
	}
	for i, f := range calls {
		if err := f(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	var got []string
	for _, c := range s.received() {
		line := c.Method + " " + c.Path
		if c.Query != "" {
			line += "?" + c.Query
		}
		if len(c.Body) > 0 {
			line += " " + string(c.Body)
		}
		got = append(got, line)
	}
	want := []string{
		"GET /v1/events/order%2F42%20created",
		"GET /v1/sessions/s-1/events?limit=10000",
		"GET /v1/stats?bucket=minute&tag=DATABASE.%3E",
		"GET /v1/subscriptions/sub_1",
		"DELETE /v1/subscriptions/sub_1",
		`POST /v1/subscriptions/sub_1/replay {"since_seq":1000}`,
		`POST /v1/subscriptions/sub_1/replay {"from":"2026-11-23T08:00:00Z","to":"2026-11-23T09:00:00Z"}`,
		`PUT /v1/consumers/billing-worker {"tags":["BILLING.>"],"start":{"since_seq":41}}`,
		"GET /v1/consumers/billing-worker/events?limit=100&wait=5s",
		`POST /v1/consumers/billing-worker/ack {"seq":42}`,
		`POST /v1/consumers/billing-worker/seek {"seq":7}`,
		"DELETE /v1/consumers/billing-worker",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestStartJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 8, 0, 0, 500, time.UTC)
	tests := []struct {
		s    Start
		want string
	}{
		{Start{}, `"new"`},
		{StartNew(), `"new"`},
		{StartAll(), `"all"`},
		{StartAfter(0), `{"since_seq":0}`},
		{StartAfter(42), `{"since_seq":42}`},
		{StartAt(at), `{"from":"2026-11-23T08:00:00.0000005Z"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.s)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.s, b, err, tt.want)
			continue
		}
		var back Start
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("Unmarshal(%s): %v", b, err)
			continue
		}
		if !back.from.Equal(tt.s.from) || back.kind != tt.s.kind || back.seq != tt.s.seq {
			t.Errorf("Unmarshal(%s) = %+v; want %+v", b, back, tt.s)
		}
	}
	var s Start
	if err := json.Unmarshal([]byte(`"soon"`), &s); err == nil {
		t.Errorf(`Unmarshal("soon") = nil error; want an error`)
	}
}
