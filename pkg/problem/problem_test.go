package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// body is the decoded JSON of a problem response.
type body struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors"`
	Owner  string       `json:"owner"`
}

// write runs Write and returns the recorded response and its decoded body.
func write(t *testing.T, err error) (*httptest.ResponseRecorder, body, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	Write(rec, err)
	var b body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("Write(%v) body %q is not JSON: %v", err, rec.Body, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return rec, b, raw
}

func TestWrite(t *testing.T) {
	invalid := Invalid("2 events are invalid",
		FieldError{Pointer: "/0/timestamp", Detail: "is more than 1m0s in the future"},
		FieldError{Pointer: "/3/code", Detail: "is required"})
	owned := New(http.StatusLocked, "owned", "DATABASE.* belongs to another producer")
	owned.Owner = "billing"

	tests := []struct {
		name       string
		err        error
		want       body
		retryAfter string // "" means no header
	}{
		{
			name: "bad request",
			err:  BadRequest("malformed JSON: unexpected end of JSON input"),
			want: body{Type: "https://eventsync.dev/problems/malformed", Title: "Bad Request", Status: 400, Detail: "malformed JSON: unexpected end of JSON input"},
		},
		{
			name: "bad parameter",
			err:  BadParam("since", "must be a non-negative integer"),
			want: body{
				Type: "https://eventsync.dev/problems/invalid-parameter", Title: "Bad Request", Status: 400,
				Detail: "since must be a non-negative integer",
				Errors: []FieldError{{Pointer: "since", Detail: "must be a non-negative integer"}},
			},
		},
		{
			name: "validation with errors list",
			err:  invalid,
			want: body{
				Type: "https://eventsync.dev/problems/validation", Title: "Unprocessable Entity", Status: 422,
				Detail: "2 events are invalid",
				Errors: []FieldError{
					{Pointer: "/0/timestamp", Detail: "is more than 1m0s in the future"},
					{Pointer: "/3/code", Detail: "is required"},
				},
			},
		},
		{
			name: "not found",
			err:  NotFound("no subscription sub-1"),
			want: body{Type: "https://eventsync.dev/problems/not-found", Title: "Not Found", Status: 404, Detail: "no subscription sub-1"},
		},
		{
			name: "owner",
			err:  owned,
			want: body{Type: "https://eventsync.dev/problems/owned", Title: "Locked", Status: 423, Detail: "DATABASE.* belongs to another producer", Owner: "billing"},
		},
		{
			name:       "unavailable whole seconds",
			err:        Unavailable("JetStream is unavailable", 5*time.Second),
			want:       body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "JetStream is unavailable"},
			retryAfter: "5",
		},
		{
			name:       "unavailable rounds up",
			err:        Unavailable("ClickHouse is unavailable", 1500*time.Millisecond),
			want:       body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "ClickHouse is unavailable"},
			retryAfter: "2",
		},
		{
			name:       "unavailable a nanosecond is a second",
			err:        Unavailable("x", time.Nanosecond),
			want:       body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "x"},
			retryAfter: "1",
		},
		{
			name:       "unavailable just over a second",
			err:        Unavailable("x", time.Second+time.Nanosecond),
			want:       body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "x"},
			retryAfter: "2",
		},
		{
			name:       "unavailable minutes",
			err:        Unavailable("x", 2*time.Minute),
			want:       body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "x"},
			retryAfter: "120",
		},
		{
			name: "unavailable without delay",
			err:  Unavailable("x", 0),
			want: body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "x"},
		},
		{
			name: "negative delay sends no header",
			err:  Unavailable("x", -time.Second),
			want: body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "x"},
		},
		{
			name:       "rate limited with retry",
			err:        &Problem{Type: "https://eventsync.dev/problems/rate-limited", Title: "Too Many Requests", Status: 429, RetryAfter: 300 * time.Millisecond},
			want:       body{Type: "https://eventsync.dev/problems/rate-limited", Title: "Too Many Requests", Status: 429},
			retryAfter: "1",
		},
		{
			name:       "wrapped problem",
			err:        fmt.Errorf("publish events.A.B: %w", Unavailable("JetStream is unavailable", 3*time.Second)),
			want:       body{Type: "https://eventsync.dev/problems/unavailable", Title: "Service Unavailable", Status: 503, Detail: "JetStream is unavailable"},
			retryAfter: "3",
		},
		{
			name: "problem in a join",
			err:  errors.Join(errors.New("other"), NotFound("gone")),
			want: body{Type: "https://eventsync.dev/problems/not-found", Title: "Not Found", Status: 404, Detail: "gone"},
		},
		{
			name: "plain error leaks nothing",
			err:  errors.New("dial tcp 10.0.0.7:9000: connection refused; password=hunter2"),
			want: body{Type: "https://eventsync.dev/problems/internal", Title: "Internal Server Error", Status: 500},
		},
		{
			name: "wrapped plain error leaks nothing",
			err:  fmt.Errorf("open /etc/eventsync/secret: %w", fs.ErrPermission),
			want: body{Type: "https://eventsync.dev/problems/internal", Title: "Internal Server Error", Status: 500},
		},
		{
			name: "nil error",
			err:  nil,
			want: body{Type: "https://eventsync.dev/problems/internal", Title: "Internal Server Error", Status: 500},
		},
		{
			name: "typed nil problem",
			err:  (*Problem)(nil),
			want: body{Type: "https://eventsync.dev/problems/internal", Title: "Internal Server Error", Status: 500},
		},
		{
			name: "hand-built problem without status",
			err:  &Problem{Detail: "oops"},
			want: body{Type: "about:blank", Title: "Internal Server Error", Status: 500, Detail: "oops"},
		},
		{
			name: "hand-built problem with a success status",
			err:  &Problem{Type: "https://eventsync.dev/problems/x", Title: "X", Status: 200},
			want: body{Type: "https://eventsync.dev/problems/x", Title: "X", Status: 500},
		},
		{
			name: "hand-built problem without type and title",
			err:  &Problem{Status: 409},
			want: body{Type: "about:blank", Title: "Conflict", Status: 409},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, got, raw := write(t, tt.err)
			if rec.Code != tt.want.Status {
				t.Errorf("Write(%v) status = %d; want %d", tt.err, rec.Code, tt.want.Status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != ContentType {
				t.Errorf("Write(%v) Content-Type = %q; want %q", tt.err, ct, ContentType)
			}
			if ra := rec.Header().Get("Retry-After"); ra != tt.retryAfter {
				t.Errorf("Write(%v) Retry-After = %q; want %q", tt.err, ra, tt.retryAfter)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Write(%v) body mismatch (-want +got):\n%s", tt.err, diff)
			}
			// Optional members are absent, not empty; RetryAfter is a
			// header only.
			for _, k := range []string{"detail", "errors", "owner"} {
				if v, ok := raw[k]; ok && (v == "" || v == nil) {
					t.Errorf("Write(%v) body has empty %q", tt.err, k)
				}
			}
			for k := range raw {
				if !strings.Contains("type title status detail errors owner", k) {
					t.Errorf("Write(%v) body has unexpected member %q", tt.err, k)
				}
			}
		})
	}
}

// TestWritePlainErrorLeaksNothing checks the raw bytes, not just the
// decoded members.
func TestWritePlainErrorLeaksNothing(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, errors.New("clickhouse: password=hunter2 at 10.0.0.7"))
	for _, secret := range []string{"hunter2", "10.0.0.7", "clickhouse", "detail"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("Write(plain error) body = %s; want no %q", rec.Body, secret)
		}
	}
}

func TestWriteDoesNotModifyProblem(t *testing.T) {
	p := &Problem{Detail: "oops"}
	Write(httptest.NewRecorder(), p)
	if diff := cmp.Diff(&Problem{Detail: "oops"}, p); diff != "" {
		t.Errorf("Write changed the problem (-want +got):\n%s", diff)
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    *Problem
		want string
	}{
		{NotFound("no subscription sub-1"), "Not Found: no subscription sub-1"},
		{NotFound(""), "Not Found"},
		{Invalid("2 events are invalid"), "Unprocessable Entity: 2 events are invalid"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("(%+v).Error() = %q; want %q", tt.p, got, tt.want)
		}
	}
	var err error = fmt.Errorf("handler: %w", NotFound("x"))
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusNotFound {
		t.Errorf("errors.As(%v, *Problem) = %v; want the 404 problem", err, p)
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		p    *Problem
		want string
	}{
		{
			name: "detail",
			p:    NotFound("no subscription sub-1"),
			want: `{"type":"https://eventsync.dev/problems/not-found","title":"Not Found","status":404,"detail":"no subscription sub-1"}`,
		},
		{
			name: "errors",
			p:    Invalid("1 event is invalid", FieldError{Pointer: "/code", Detail: "is required"}),
			want: `{"type":"https://eventsync.dev/problems/validation","title":"Unprocessable Entity","status":422,"detail":"1 event is invalid","errors":[{"pointer":"/code","detail":"is required"}]}`,
		},
		{
			name: "retry after is not in the body",
			p:    Unavailable("", time.Second),
			want: `{"type":"https://eventsync.dev/problems/unavailable","title":"Service Unavailable","status":503}`,
		},
		{
			name: "owner",
			p:    &Problem{Type: "https://eventsync.dev/problems/owned", Title: "Locked", Status: 423, Owner: "billing"},
			want: `{"type":"https://eventsync.dev/problems/owned","title":"Locked","status":423,"owner":"billing"}`,
		},
		{
			name: "hand-built",
			p:    &Problem{Status: 409},
			want: `{"type":"about:blank","title":"Conflict","status":409}`,
		},
		{
			name: "nil",
			p:    nil,
			want: `{"type":"https://eventsync.dev/problems/internal","title":"Internal Server Error","status":500}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Marshal(tt.p)); got != tt.want {
				t.Errorf("Marshal(%+v) = %s; want %s", tt.p, got, tt.want)
			}
		})
	}

	// Write and Marshal agree on the body.
	p := Invalid("x", FieldError{Pointer: "/a", Detail: "b"})
	rec := httptest.NewRecorder()
	Write(rec, p)
	if got, want := strings.TrimSpace(rec.Body.String()), string(Marshal(p)); got != want {
		t.Errorf("Write body = %s; Marshal = %s; want them equal", got, want)
	}
}
