package theeye

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/problem"
)

// Forward serves a request translated from orig with api, a router of
// EventSync's own endpoints without the gate: method and target, body as
// JSON (none when nil), orig's Authorization, and ctx, orig's context or
// one derived from it, which carries the client the gate authenticated
// (access.From). The session collector's reads use it too.
func Forward(ctx context.Context, api http.Handler, orig *http.Request, method, target string, body []byte) *Answer {
	// A fresh chi route context: chi routes a request that still carries
	// the outer one as if it were in a sub-router.
	ctx = context.WithValue(ctx, chi.RouteCtxKey, nil)
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return &Answer{Status: http.StatusInternalServerError, header: http.Header{}}
	}
	req.RequestURI = target
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a := orig.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	res := &Answer{Status: http.StatusOK, header: http.Header{}}
	api.ServeHTTP(res, req)
	return res
}

// Answer is the answer to a translated request; it is the
// http.ResponseWriter Forward serves it with.
type Answer struct {
	Status      int
	Body        bytes.Buffer
	header      http.Header
	wroteHeader bool
}

// Header returns the answer's header.
func (a *Answer) Header() http.Header { return a.header }

// WriteHeader records the status.
func (a *Answer) WriteHeader(code int) {
	if !a.wroteHeader {
		a.Status, a.wroteHeader = code, true
	}
}

// Write adds to the body.
func (a *Answer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.Body.Write(b)
}

// Problem returns the answer's problem with its status, challenge and
// Retry-After, each field error passed through mapErr (which names the
// old client's fields).
func (a *Answer) Problem(mapErr func(problem.FieldError) problem.FieldError) *problem.Problem {
	var p problem.Problem
	if json.Unmarshal(a.Body.Bytes(), &p) != nil || p.Status != a.Status {
		p = *problem.New(a.Status, "translated", http.StatusText(a.Status))
	}
	for i, fe := range p.Errors {
		p.Errors[i] = mapErr(fe)
	}
	p.Challenge = a.header.Get("WWW-Authenticate")
	if n, err := strconv.Atoi(a.header.Get("Retry-After")); err == nil {
		p.RetryAfter = time.Duration(n) * time.Second
	}
	return &p
}
