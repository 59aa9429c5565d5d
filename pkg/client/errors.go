package client

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/problem"
)

// ErrClosed is returned by a Producer's Publish after Close.
var ErrClosed = errors.New("producer is closed")

// FieldError points at one invalid part of a request: a JSON pointer into
// the body (/3/timestamp is the timestamp of the fourth event sent) or the
// name of a query parameter.
type FieldError = problem.FieldError

// Error is an error answer of the EventSync API: its status and the RFC 9457
// problem it carried. Every method of Client returns it, wrapped, for a
// non-2xx answer; get it with errors.As.
type Error struct {
	Status int          // HTTP status code
	Type   string       // problem type URI
	Title  string       // short summary, the status text
	Detail string       // what went wrong in this request
	Errors []FieldError // the fields or parameters at fault (400, 403, 422, 423)
	Owner  string       // the producer owning the category (423)
	// RetryAfter is the wait the server asked for (429, 503); zero when it
	// named none.
	RetryAfter time.Duration
	// RequestID is the X-Request-ID of the answer, which the server's logs
	// name.
	RequestID string
}

// Error returns the status, the title, the detail and the fields at fault.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Status))
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for i, fe := range e.Errors {
		if i == 0 {
			b.WriteString(" [")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(fe.Pointer + " " + fe.Detail)
	}
	if len(e.Errors) > 0 {
		b.WriteString("]")
	}
	return b.String()
}

// Temporary reports whether the request may succeed when sent again
// unchanged: rate limited, or the server or a proxy in front of it is
// unavailable.
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readError turns a non-2xx response into an *Error, reading a problem body
// when there is one. The body is drained and left for the caller to close.
func readError(resp *http.Response, now time.Time) *Error {
	e := &Error{
		Status:     resp.StatusCode,
		Title:      http.StatusText(resp.StatusCode),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now),
		RequestID:  resp.Header.Get("X-Request-ID"),
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == problem.ContentType || mt == "application/json" {
		var p problem.Problem
		// An odd body leaves the status and its text, which say enough.
		if json.Unmarshal(b, &p) == nil {
			if p.Title != "" {
				e.Title = p.Title
			}
			e.Type, e.Detail, e.Errors, e.Owner = p.Type, p.Detail, p.Errors, p.Owner
		}
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) <= 512 {
		e.Detail = s // a proxy's plain-text answer
	}
	return e
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, maxRetryAfter)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter*time.Second)
	}
	return 0
}

// maxRetryAfter (seconds) keeps a wild Retry-After from parking a caller
// for days; the request's context bounds every wait anyway.
const maxRetryAfter = 3600
