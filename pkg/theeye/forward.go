package theeye

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
)

// Problem returns the problem of a forwarded request's answer (see
// httpserve.Forward) with its status, challenge and Retry-After, each
// field error passed through mapErr (which names the old client's
// fields). The session collector's reads use it too.
func Problem(a *httpserve.Answer, mapErr func(problem.FieldError) problem.FieldError) *problem.Problem {
	var p problem.Problem
	if json.Unmarshal(a.Body.Bytes(), &p) != nil || p.Status != a.Status {
		p = *problem.New(a.Status, "translated", http.StatusText(a.Status))
	}
	for i, fe := range p.Errors {
		p.Errors[i] = mapErr(fe)
	}
	p.Challenge = a.Header().Get("WWW-Authenticate")
	if n, err := strconv.Atoi(a.Header().Get("Retry-After")); err == nil {
		p.RetryAfter = time.Duration(n) * time.Second
	}
	return &p
}
