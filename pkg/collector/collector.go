// Package collector serves the reads of the session collector, the event
// service EventSync replaces, by translating each onto EventSync's query
// API. The collector's documentation is lost: these routes are EventSync's
// reconstruction of its three queries, at addresses that meet none of
// EventSync's own:
//
//	GET /sessions/{session_id}/events   the events of a session, by time  → GET /v1/sessions/{session_id}/events
//	GET /categories/{category}/events   the events of a category          → GET /v1/events?category=<token>
//	GET /events/range                   the events in a time range        → GET /v1/events?from=&to=
//
// The time range comes as the collector's did, in a JSON body on the GET,
// {"start_time": "…", "end_time": "…"}, or as query parameters of the
// same names (both ways at once must agree); the category read takes them
// too. Times are RFC 3339 or "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC, and
// both ends are included. Every read takes limit (1–10000, default 1000);
// the category and range reads also since, the cursor of EventSync's
// reads: an answer holds at most limit events, sorted by timestamp, and
// next_since continues after them (in the order events arrived) until an
// answer holds fewer than limit.
//
// Events come back as their senders wrote them (see theeye.Restore):
// {"session_id", "category", "name", "data", "timestamp"}, the category
// and name as sent (from data._category and data._name, which the
// translation of The Eye's intake keeps), data without the keys it added.
// Events sent to EventSync directly read as category = category and name
// = code. A client reads only the events of its read patterns (a category
// outside them is a 403), as on EventSync's own reads.
package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/pkg/theeye"
)

// The collector's routes.
const (
	SessionRoute  = "/sessions/{session_id}/events"
	CategoryRoute = "/categories/{category}/events"
	RangeRoute    = "/events/range"
)

// Limits of a read.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
	maxBody      = 64 << 10 // the time range's JSON body
)

// Server translates the collector's reads onto api, a router of the query
// service's endpoints without the gate (the original request has passed
// it; its client, in the request's context, narrows the reads).
type Server struct {
	api http.Handler
}

// New returns a Server reading through api.
func New(api http.Handler) *Server { return &Server{api: api} }

// Mount adds the collector's reads to r.
func (s *Server) Mount(r chi.Router) {
	r.Get(SessionRoute, s.session)
	r.Get(CategoryRoute, s.category)
	r.Get(RangeRoute, s.timeRange)
}

// SessionPage is the answer of the session read.
type SessionPage struct {
	SessionID string            `json:"session_id"`
	Events    []theeye.Original `json:"events"`
}

// Page is the answer of the category and time range reads.
type Page struct {
	Category  string            `json:"category,omitempty"`
	StartTime *time.Time        `json:"start_time,omitempty"`
	EndTime   *time.Time        `json:"end_time,omitempty"`
	Events    []theeye.Original `json:"events"`
	NextSince uint64            `json:"next_since"`
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, false)
	if err != nil {
		problem.Write(w, err)
		return
	}
	sid := pathParam(r, "session_id")
	var page struct {
		Events []event.Event `json:"events"`
	}
	if err := s.read(r, "/v1/sessions/"+url.PathEscape(sid)+"/events?"+q.values.Encode(), &page); err != nil {
		problem.Write(w, err)
		return
	}
	writeJSON(w, SessionPage{SessionID: sid, Events: restore(page.Events, nil)})
}

func (s *Server) category(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, true)
	if err != nil {
		problem.Write(w, err)
		return
	}
	category := pathParam(r, "category")
	q.values.Set("category", subject.MapCategory(category))
	var page struct {
		Events    []event.Event `json:"events"`
		NextSince uint64        `json:"next_since"`
	}
	if err := s.read(r, "/v1/events?"+q.values.Encode(), &page); err != nil {
		problem.Write(w, err)
		return
	}
	// Tokens are not one to one ("a b" and "a_20b" share a_20b): keep
	// the events of the category asked for.
	same := func(o theeye.Original) bool { return o.Category == category }
	writeJSON(w, Page{Category: category, StartTime: q.start, EndTime: q.end, Events: restore(page.Events, same), NextSince: page.NextSince})
}

func (s *Server) timeRange(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, true)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if q.start == nil || q.end == nil {
		var errs []problem.FieldError
		for _, f := range []struct {
			name string
			t    *time.Time
		}{{"start_time", q.start}, {"end_time", q.end}} {
			if f.t == nil {
				errs = append(errs, problem.FieldError{Pointer: f.name, Detail: "is required (in the JSON body or as a parameter)"})
			}
		}
		p := problem.BadRequest("a time range needs start_time and end_time")
		p.Errors = errs
		problem.Write(w, p)
		return
	}
	var page struct {
		Events    []event.Event `json:"events"`
		NextSince uint64        `json:"next_since"`
	}
	if err := s.read(r, "/v1/events?"+q.values.Encode(), &page); err != nil {
		problem.Write(w, err)
		return
	}
	writeJSON(w, Page{StartTime: q.start, EndTime: q.end, Events: restore(page.Events, nil), NextSince: page.NextSince})
}

// query is a read's parameters: the time range given, and the query of
// the translated request.
type query struct {
	start, end *time.Time
	values     url.Values
}

// timeRange is the JSON body of a read.
type timeRangeBody struct {
	StartTime *string `json:"start_time"`
	EndTime   *string `json:"end_time"`
}

// params reads limit, and with cursor since, and the time range from the
// query parameters and the JSON body.
func params(r *http.Request, cursor bool) (*query, error) {
	in := r.URL.Query()
	q := &query{values: url.Values{}}
	q.values.Set("limit", strconv.Itoa(DefaultLimit))
	if v := in.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return nil, problem.BadParam("limit", "must be an integer from 1 to 10000")
		}
		q.values.Set("limit", v)
	}
	if v := in.Get("since"); v != "" {
		if !cursor {
			return nil, problem.BadParam("since", "is not supported on session reads (they are ordered by time)")
		}
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return nil, problem.BadParam("since", "must be a non-negative integer")
		}
		q.values.Set("since", v)
	}
	var body timeRangeBody
	if err := readBody(r, &body); err != nil {
		return nil, err
	}
	var err error
	if q.start, err = timeParam("start_time", in, body.StartTime); err != nil {
		return nil, err
	}
	if q.end, err = timeParam("end_time", in, body.EndTime); err != nil {
		return nil, err
	}
	if q.start != nil && q.end != nil && q.end.Before(*q.start) {
		return nil, problem.BadParam("end_time", "must not be before start_time")
	}
	if q.start != nil {
		q.values.Set("from", q.start.Format(time.RFC3339Nano))
	}
	if q.end != nil {
		// EventSync's to is exclusive; the collector's end_time is not.
		// Timestamps are kept to the microsecond.
		q.values.Set("to", q.end.Add(time.Microsecond).Format(time.RFC3339Nano))
	}
	return q, nil
}

// readBody decodes the JSON body of a GET, if it has one, whatever its
// Content-Type says.
func readBody(r *http.Request, v *timeRangeBody) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || len(b) > maxBody:
		return problem.New(http.StatusRequestEntityTooLarge, "too-large", "the body must be at most "+strconv.Itoa(maxBody)+" bytes")
	case err != nil:
		return problem.BadRequest("could not read the body")
	case len(bytes.TrimSpace(b)) == 0:
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.Header.Del("Content-Type")
	return problem.DecodeJSON(r, v, maxBody)
}

// timeParam returns the time the parameter name or the body's member of
// that name gives (nil for neither), refusing two that differ.
func timeParam(name string, in url.Values, body *string) (*time.Time, error) {
	var t *time.Time
	for _, v := range []*string{nilIfEmpty(in.Get(name)), body} {
		if v == nil {
			continue
		}
		got, err := event.ParseTime(*v)
		if err != nil {
			return nil, problem.BadParam(name, err.Error())
		}
		if t != nil && !t.Equal(got) {
			return nil, problem.BadParam(name, "the body and the parameter differ")
		}
		t = &got
	}
	return t, nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// read serves the translated read target and decodes its answer into out,
// or returns its problem with EventSync's parameters named as the
// collector's.
func (s *Server) read(r *http.Request, target string, out any) error {
	res := httpserve.Forward(r.Context(), s.api, r, http.MethodGet, target, nil)
	if res.Status != http.StatusOK {
		return theeye.Problem(res, func(fe problem.FieldError) problem.FieldError {
			switch fe.Pointer {
			case "from":
				fe.Pointer = "start_time"
			case "to":
				fe.Pointer = "end_time"
			}
			return fe
		})
	}
	if err := json.Unmarshal(res.Body.Bytes(), out); err != nil {
		return err // a 500 that leaks nothing
	}
	return nil
}

// restore returns the originals of events that keep holds for (nil:
// every one), sorted by timestamp.
func restore(evs []event.Event, keep func(theeye.Original) bool) []theeye.Original {
	out := make([]theeye.Original, 0, len(evs))
	for _, e := range evs {
		if o := theeye.Restore(e); keep == nil || keep(o) {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b theeye.Original) int { return a.Timestamp.Compare(b.Timestamp) })
	return out
}

// pathParam returns a path parameter unescaped: chi matches the escaped
// path when it differs from the default encoding (a '/' sent as %2F) and
// then hands out parameters still escaped.
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
