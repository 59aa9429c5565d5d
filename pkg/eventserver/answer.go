package eventserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/eventsync/eventsync/pkg/problem"
)

// ContentType is the Content-Type of every answer of the event server,
// errors included.
const ContentType = "application/json; charset=utf-8"

// The event server's fixed answers.
const (
	answerOK           = "OK"
	answerUnauthorized = "Unauthorized"
	answerNotFound     = "Not Found"
	answerLocked       = "Locked - Second writers not allowed"
)

// Status is the status the event server answers for a refusal of
// EventSync with status: its own codes (400, 401, 404, 423, 500) where the
// event server has one, and where it has none the refusals an old client
// can act on kept as they are (403, 405, 429, 503). Every other client
// error is a malformed request (400: 413, 415, 422 …) and every other
// server error a 500.
func Status(status int) int {
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusNotFound,
		status == http.StatusMethodNotAllowed, status == http.StatusLocked, status == http.StatusTooManyRequests,
		status == http.StatusServiceUnavailable:
		return status
	case status >= 400 && status < 500:
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// Message is the event server's JSON string for a refusal of status (one
// Status returns) for reason: "Bad Request - <reason>", "Unauthorized",
// "Not Found", "Locked - Second writers not allowed", "Internal Server
// Error - <reason>", and for the statuses the event server did not have
// the same form, "<status text> - <reason>" ("Forbidden - …", "Service
// Unavailable - …"), but "Too Many Requests" alone (its Retry-After says
// when to come back).
func Message(status int, reason string) string {
	switch status {
	case http.StatusUnauthorized:
		return answerUnauthorized
	case http.StatusNotFound:
		return answerNotFound
	case http.StatusLocked:
		return answerLocked
	case http.StatusTooManyRequests:
		return http.StatusText(status) // Retry-After says when
	case http.StatusInternalServerError:
		if reason == "" {
			reason = "the request could not be completed"
		}
	}
	if reason == "" {
		return http.StatusText(status)
	}
	return http.StatusText(status) + " - " + reason
}

// marshal encodes v as JSON without escaping <, > and & (the reasons of
// "Bad Request - <reason>" keep their characters) and without a trailing
// newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// write answers status with body, an encoded JSON value.
func write(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeString answers status with s as a JSON string.
func writeString(w http.ResponseWriter, status int, s string) {
	b, _ := marshal(s) // a string always encodes
	write(w, status, b)
}

// fail answers a refusal with the event server's status and message.
func fail(w http.ResponseWriter, status int, reason string) {
	status = Status(status)
	writeString(w, status, Message(status, reason))
}

// failWith answers the refusal p of EventSync (a translated request's,
// or one from in front of the handler) as the event server does, keeping
// the headers an old client can act on: Retry-After of a 429 or a 503,
// WWW-Authenticate of a 401, Allow of a 405.
func failWith(w http.ResponseWriter, p *problem.Problem, h http.Header) {
	for _, k := range []string{"Retry-After", "WWW-Authenticate", "Allow"} {
		if v := h.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	fail(w, p.Status, reasonOf(p))
}

// reasonOf is the reason of a problem: its detail, or where it lists
// field errors the first of them.
func reasonOf(p *problem.Problem) string {
	if len(p.Errors) > 0 {
		e := p.Errors[0]
		return strings.TrimSpace(strings.TrimPrefix(e.Pointer, "/") + " " + e.Detail)
	}
	return p.Detail
}

// parseProblem reads an answer of status with body as a problem; a body
// that is not one gives a problem with no detail.
func parseProblem(status int, body []byte) *problem.Problem {
	var p problem.Problem
	if json.Unmarshal(body, &p) != nil {
		p = problem.Problem{}
	}
	p.Status = status
	return &p
}

// Refusals returns next with the refusals that reach the event server's
// routes before its handlers — the access gate's 401, 403, 429 and 503,
// the router's 405, a body limit's 413, all application/problem+json —
// answered as the event server answers (Status and Message, with
// Content-Type ContentType). It must wrap the gate: install it outside
// it, around the router. Other paths and the handlers' own answers pass
// unchanged.
func Refusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isRoute(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		rw := &refusalWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// isRoute reports whether path is one of the event server's:
// /api/v1/streams/{stream}/events or /api/v1/streams/{stream}/events/{id}.
func isRoute(path string) bool {
	rest, ok := strings.CutPrefix(path, "/api/v1/streams/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return (len(parts) == 2 || len(parts) == 3) && parts[0] != "" && parts[1] == "events" && (len(parts) == 2 || parts[2] != "")
}

// refusalWriter holds back a problem+json answer and writes it, once the
// handler returned, as the event server's refusal.
type refusalWriter struct {
	http.ResponseWriter
	status  int
	problem bool // the answer is a problem, held back in body
	body    bytes.Buffer
	wrote   bool
}

func (rw *refusalWriter) WriteHeader(code int) {
	if rw.wrote {
		return
	}
	rw.wrote = true
	if code >= 400 && strings.HasPrefix(rw.Header().Get("Content-Type"), problem.ContentType) {
		rw.status, rw.problem = code, true
		return
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *refusalWriter) Write(b []byte) (int, error) {
	if !rw.wrote {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.problem {
		return rw.body.Write(b)
	}
	return rw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (rw *refusalWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// finish writes a held-back problem as the event server's refusal.
func (rw *refusalWriter) finish() {
	if !rw.problem {
		return
	}
	h := rw.Header()
	held := h.Clone()
	for _, k := range []string{"Content-Length", "Retry-After", "WWW-Authenticate", "Allow"} {
		h.Del(k)
	}
	failWith(rw.ResponseWriter, parseProblem(rw.status, rw.body.Bytes()), held)
}

type firstWriterKey struct{}

// withFirstWriterOwns marks ctx as a publish of the event server's API.
func withFirstWriterOwns(ctx context.Context) context.Context {
	return context.WithValue(ctx, firstWriterKey{}, true)
}

// FirstWriterOwns reports whether ctx is a publish the event server's
// translation makes: the stream (its category) belongs to its first
// writer, as it did on the event server, whether or not ingest runs with
// --claim-on-first-write. Only the translation sets it, in the context
// of the request it serves in-process: no header or parameter of a
// client can.
func FirstWriterOwns(ctx context.Context) bool {
	v, _ := ctx.Value(firstWriterKey{}).(bool)
	return v
}
