package httpserve

import (
	"bytes"
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/problem"
)

// Forward serves a request that an old API's translation makes of the
// request orig, on api (a router of EventSync's own endpoints; usually
// without the gate, which orig passed, so that credentials are checked
// once: a JWT's jti would be a replay the second time). ctx is orig's
// context or one derived from it: it carries the client the gate
// authenticated. From orig, when not nil, the request takes the
// Authorization header and the remote address. A non-nil body is sent as
// JSON.
func Forward(ctx context.Context, api http.Handler, orig *http.Request, method, target string, body []byte) *Answer {
	// A fresh chi route context: chi routes a request that still carries
	// the outer one as if it were in a sub-router.
	ctx = context.WithValue(ctx, chi.RouteCtxKey, nil)
	a := &Answer{Status: http.StatusOK}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		problem.Write(a, err)
		return a
	}
	req.RequestURI = target
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if orig != nil {
		req.RemoteAddr = orig.RemoteAddr
		if v := orig.Header.Get("Authorization"); v != "" {
			req.Header.Set("Authorization", v)
		}
	}
	api.ServeHTTP(a, req)
	return a
}

// Answer is what a forwarded request was answered; it is the
// http.ResponseWriter Forward serves the request with. The zero Answer is
// an empty 0 answer: set Status.
type Answer struct {
	Status int
	Body   bytes.Buffer
	header http.Header
	wrote  bool
}

// Header returns the answer's header.
func (a *Answer) Header() http.Header {
	if a.header == nil {
		a.header = http.Header{}
	}
	return a.header
}

// WriteHeader records the status.
func (a *Answer) WriteHeader(code int) {
	if !a.wrote {
		a.Status, a.wrote = code, true
	}
}

// Write adds to the body.
func (a *Answer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.Body.Write(b)
}

// Relay answers w with the answer as it is: header, status and body.
func (a *Answer) Relay(w http.ResponseWriter) {
	for k, v := range a.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body.Bytes())
}
