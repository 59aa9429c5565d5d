// Package problem writes RFC 9457 problem details (application/problem+json),
// the one error format of every EventSync HTTP API.
package problem

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// ContentType is the media type of problem responses.
const ContentType = "application/problem+json"

// FieldError points at one invalid part of a request.
type FieldError struct {
	Pointer string `json:"pointer"` // JSON pointer into the body, or the parameter name
	Detail  string `json:"detail"`
}

// Problem is an RFC 9457 problem detail. It is also an error, so handlers
// can return it and have it written as is.
type Problem struct {
	Type       string        `json:"type"`
	Title      string        `json:"title"`
	Status     int           `json:"status"`
	Detail     string        `json:"detail,omitempty"`
	Errors     []FieldError  `json:"errors,omitempty"`
	Owner      string        `json:"owner,omitempty"`
	RetryAfter time.Duration `json:"-"`
	// Challenge is the WWW-Authenticate value of a 401.
	Challenge string `json:"-"`
}

// Error returns the title and the detail.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Title
	}
	return p.Title + ": " + p.Detail
}

// typeBase prefixes problem types; the fragment names the kind of problem.
const typeBase = "https://eventsync.dev/problems/"

// New returns a problem of the given status with a type named by kind.
func New(status int, kind, detail string) *Problem {
	return &Problem{Type: typeBase + kind, Title: http.StatusText(status), Status: status, Detail: detail}
}

// BadRequest is a malformed request (400).
func BadRequest(detail string) *Problem { return New(http.StatusBadRequest, "malformed", detail) }

// BadParam is an invalid query or path parameter (400) naming the parameter.
func BadParam(name, detail string) *Problem {
	p := New(http.StatusBadRequest, "invalid-parameter", name+" "+detail)
	p.Errors = []FieldError{{Pointer: name, Detail: detail}}
	return p
}

// Invalid is a well-formed request whose content breaks rules (422).
func Invalid(detail string, errs ...FieldError) *Problem {
	p := New(http.StatusUnprocessableEntity, "validation", detail)
	p.Errors = errs
	return p
}

// NotFound is a missing resource (404).
func NotFound(detail string) *Problem { return New(http.StatusNotFound, "not-found", detail) }

// Unavailable is a temporarily missing dependency (503) that clients should
// retry after the given delay.
func Unavailable(detail string, retryAfter time.Duration) *Problem {
	p := New(http.StatusServiceUnavailable, "unavailable", detail)
	p.RetryAfter = retryAfter
	return p
}

// Write writes err as a problem. A *Problem anywhere in err's chain is
// written as is; anything else becomes a 500 that leaks no internals.
func Write(w http.ResponseWriter, err error) {
	var p *Problem
	if !errors.As(err, &p) || p == nil {
		p = New(http.StatusInternalServerError, "internal", "")
	}
	p = p.normalized()
	h := w.Header()
	h.Set("Content-Type", ContentType)
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
	if p.Challenge != "" {
		h.Set("WWW-Authenticate", p.Challenge)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Marshal returns the JSON body of a problem (for transports other than HTTP).
func Marshal(p *Problem) []byte {
	if p == nil {
		p = New(http.StatusInternalServerError, "internal", "")
	}
	b, _ := json.Marshal(p.normalized()) // a Problem always encodes
	return b
}

// normalized returns p, or a copy with the members RFC 9457 needs filled
// in when p was built by hand: a status outside 400–599 (which
// http.ResponseWriter.WriteHeader would panic on or misread) becomes 500,
// an empty type "about:blank" and an empty title the status text.
func (p *Problem) normalized() *Problem {
	if p.Status >= 400 && p.Status <= 599 && p.Type != "" && p.Title != "" {
		return p
	}
	q := *p
	if q.Status < 400 || q.Status > 599 {
		q.Status = http.StatusInternalServerError
	}
	if q.Type == "" {
		q.Type = "about:blank"
	}
	if q.Title == "" {
		q.Title = http.StatusText(q.Status)
	}
	return &q
}
