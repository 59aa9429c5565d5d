// Package logsync serves the HTTP API of the log-sync service EventSync
// replaces, so that its emitter and dashboard work with only the base URL
// changed, by translating each request onto EventSync's own API:
//
//	log-sync                                       EventSync
//	POST /internal/log {category, code, message}   POST /v1/events with the tag of Tag(category, code)
//	200 {"ok": true}                               202
//	400 {"error": "category and message required"} (answered here: nothing is published)
//	GET /api/logs?since=&limit=                    GET /v1/events?since=&limit=
//	[{"category", "created_at", "id", "message"}]  tag, received_at, seq, message of each event
//
// The emitter's fields are trimmed of white space; a missing, null or
// blank category or message is the log-sync 400. When the tag is not what
// the log-sync service stored (category, or category.code) — the category
// or the code had to be mapped, or a one-token category got DefaultCode —
// the category and code as sent are kept in the event's data as
// "_category" and "_code", and GET /api/logs shows them as the log-sync
// service did. created_at is RFC 3339 in UTC with microseconds
// (2026-11-23T10:00:00.123456Z).
//
// The translated requests run as the original request's client (its
// Authorization header goes with them), so authentication, tag
// permissions, category ownership, schemas, rate limits and read
// patterns apply as on EventSync's own routes. Every answer the log-sync
// service did not have — a body that is not a JSON object, a category or
// message that is not a string, 401, 403, 413, 422, 423, 429, 503 — is
// EventSync's problem+json.
package logsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
)

// Routes of the log-sync service.
const (
	PublishRoute = "/internal/log"
	ReadRoute    = "/api/logs"
)

// Required is the error of the log-sync service's 400 answer.
const Required = "category and message required"

// CreatedAtFormat is the layout of created_at: RFC 3339 in UTC with
// microseconds, the precision EventSync keeps.
const CreatedAtFormat = "2006-01-02T15:04:05.000000Z07:00"

// Server translates the log-sync service's API onto api, an http.Handler
// serving EventSync's /v1 endpoints without the gate in front (the
// original request passed it).
type Server struct {
	api http.Handler
}

// New returns a Server that calls api for the translated requests.
func New(api http.Handler) *Server { return &Server{api: api} }

// MountPublish adds POST /internal/log to r; api must serve
// POST /v1/events (the ingest service mounts it).
func (s *Server) MountPublish(r chi.Router) { r.Post(PublishRoute, s.publish) }

// MountRead adds GET /api/logs to r; api must serve GET /v1/events (the
// query service mounts it).
func (s *Server) MountRead(r chi.Router) { r.Get(ReadRoute, s.read) }

// logEvent is the emitter's body. The values are decoded by hand: null
// is missing, and another type than a string is a problem naming it.
type logEvent struct {
	Category jsontext.Value `json:"category"`
	Code     jsontext.Value `json:"code"`
	Message  jsontext.Value `json:"message"`
}

// published is the event of POST /v1/events.
type published struct {
	Category string         `json:"category"`
	Code     string         `json:"code"`
	Message  string         `json:"message"`
	Data     map[string]any `json:"data,omitempty"`
}

// Entry is one event as GET /api/logs answers it. The fields are in the
// log-sync service's order (it sorted keys).
type Entry struct {
	Category  string `json:"category"`
	CreatedAt string `json:"created_at"`
	ID        uint64 `json:"id"`
	Message   string `json:"message"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	ev, err := decode(body)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if ev.Category == "" || ev.Message == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": Required})
		return
	}
	b, err := jsonv2.Marshal(ev, jsonv2.Deterministic(true))
	if err != nil {
		problem.Write(w, err)
		return
	}
	res := s.call(r, http.MethodPost, "/v1/events", b)
	if res.Status != http.StatusAccepted {
		res.Relay(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// decode reads the emitter's body into the event to publish. An empty
// body and null are an object without fields.
func decode(body []byte) (*published, error) {
	var in logEvent
	if t := bytes.TrimSpace(body); len(t) > 0 && string(t) != "null" {
		if err := jsonv2.Unmarshal(body, &in); err != nil {
			return nil, malformed(err)
		}
	}
	category, err := str(in.Category, "category", false)
	if err != nil {
		return nil, err
	}
	code, err := str(in.Code, "code", true)
	if err != nil {
		return nil, err
	}
	message, err := str(in.Message, "message", false)
	if err != nil {
		return nil, err
	}
	ev := &published{Message: message}
	if category == "" {
		return ev, nil
	}
	tag := Tag(category, code)
	i := strings.LastIndexByte(tag, '.')
	ev.Category, ev.Code = tag[:i], tag[i+1:]
	if tag != display(category, code) {
		ev.Data = map[string]any{"_category": category}
		if code != "" {
			ev.Data["_code"] = code
		}
	}
	return ev, nil
}

// malformed is the problem of a body jsonv2 could not decode.
func malformed(err error) error {
	var syn *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.BadRequest("the body is not valid JSON: it ends early")
	case errors.As(err, &syn):
		return problem.BadRequest(fmt.Sprintf("the body is not valid JSON: %v (offset %d)", syn.Err, syn.ByteOffset))
	}
	return problem.BadRequest("the body must be one JSON object")
}

// str returns a field's trimmed string; "" when it is missing or null. A
// number is taken as its JSON text where number is true (codes such as
// 504).
func str(v jsontext.Value, name string, number bool) (string, error) {
	switch {
	case len(v) == 0 || v.Kind() == 'n':
		return "", nil
	case v.Kind() == '"':
		var s string
		if err := jsonv2.Unmarshal(v, &s); err != nil {
			return "", malformed(err)
		}
		return strings.TrimSpace(s), nil
	case number && v.Kind() == '0':
		return string(v), nil
	}
	detail := "must be a string"
	if number {
		detail = "must be a string or a number"
	}
	return "", problem.Invalid("/"+name+" "+detail, problem.FieldError{Pointer: "/" + name, Detail: detail})
}

// readBody reads a request body; the server's stack bounds it.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, problem.New(http.StatusRequestEntityTooLarge, "too-large", "the body is larger than the limit of "+byteSize(mbe.Limit))
	case err != nil:
		return nil, problem.BadRequest("reading the body: " + err.Error())
	}
	return b, nil
}

// byteSize writes a limit as ingest does: 1 MiB, 64 KiB, 1000 bytes.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// page is what logsync reads of GET /v1/events.
type page struct {
	Events []struct {
		Seq        uint64         `json:"seq"`
		Tag        string         `json:"tag"`
		Message    string         `json:"message"`
		ReceivedAt time.Time      `json:"received_at"`
		Data       jsontext.Value `json:"data"`
	} `json:"events"`
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	q, fwd := r.URL.Query(), url.Values{}
	for _, name := range []string{"since", "limit"} {
		if q.Has(name) {
			fwd.Set(name, q.Get(name))
		}
	}
	target := "/v1/events"
	if len(fwd) > 0 {
		target += "?" + fwd.Encode()
	}
	res := s.call(r, http.MethodGet, target, nil)
	if res.Status != http.StatusOK {
		res.Relay(w)
		return
	}
	var p page
	if err := jsonv2.Unmarshal(res.Body.Bytes(), &p); err != nil {
		problem.Write(w, nil) // a 500 that leaks nothing
		return
	}
	out := make([]Entry, 0, len(p.Events))
	for _, e := range p.Events {
		out = append(out, Entry{
			Category:  categoryOf(e.Tag, e.Data),
			CreatedAt: e.ReceivedAt.UTC().Format(CreatedAtFormat),
			ID:        e.Seq,
			Message:   e.Message,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// categoryOf is the category the dashboard shows for an event: the one
// the emitter sent when it is kept in data (and still gives the event's
// tag: another client may have set _category), else the tag.
func categoryOf(tag string, data jsontext.Value) string {
	if len(data) == 0 {
		return tag
	}
	var kept struct {
		Category *string `json:"_category"`
		Code     *string `json:"_code"`
	}
	if jsonv2.Unmarshal(data, &kept) != nil || kept.Category == nil {
		return tag
	}
	code := ""
	if kept.Code != nil {
		code = *kept.Code
	}
	if *kept.Category == "" || Tag(*kept.Category, code) != tag {
		return tag
	}
	return display(*kept.Category, code)
}

// call serves one translated request of orig on api, as orig's client
// and with its credentials.
func (s *Server) call(orig *http.Request, method, target string, body []byte) *httpserve.Answer {
	return httpserve.Forward(orig.Context(), s.api, orig, method, target, body)
}

// writeJSON answers like the log-sync service (Flask's jsonify): compact
// JSON and a newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
