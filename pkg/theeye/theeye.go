// Package theeye serves the intake of The Eye, the event service EventSync
// replaces, by translating each request onto EventSync's own API. The
// Eye's applications post
//
//	POST /events/
//	Authorization: Bearer <JWT: HS256 with the client's secret_key; jti, gty, sub = client id, iat, exp>
//	{"session_id": "…", "category": "page interaction", "name": "click", "data": {…}, "timestamp": "…"}
//
// and expect 202 with an empty body, CORS from any origin, and a 4xx for
// a timestamp in the future. The body becomes POST /v1/events (see
// Translate for the mapping; an array of such events is a batch, all or
// nothing), sent with the request's own Authorization and run as the
// client the gate authenticated: an Eye client is an EventSync producer
// imported with its client id and secret_key (POST /v1/producers with
// "id" and "jwt_secret"), so its tokens, their jti replay check and its
// tag patterns, ownership, rate and schemas apply as to any producer.
//
// Answers: 202 with an empty body when EventSync accepted the events
// (duplicates of an event already stored included: the natural key is the
// event's id); otherwise EventSync's problem+json with its status, its
// pointers naming The Eye's fields (/name for the code, /data for what
// went under data._data).
//
// The route answers CORS requests from any origin, preflights and
// refusals included, whatever --cors-origins says for the rest of the API
// (see CORS, which the ingest service wraps its handler with).
package theeye

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
)

// Route is where The Eye's applications post their events.
const Route = "/events/"

// ingester serves EventSync's POST /v1/events; ingest's Service.
type ingester interface {
	Mount(r chi.Router)
}

// Server translates The Eye's intake onto POST /v1/events.
type Server struct {
	api     http.Handler
	maxBody int64
}

// New returns a Server that publishes through ing's POST /v1/events,
// mounted on a router of its own without the gate: the original request
// has passed it, and its client, in the request's context, is who the
// events are written as (checking a JWT twice would refuse its jti as a
// replay). maxBody bounds a request body (ingest's --max-body).
func New(ing ingester, maxBody int64) *Server {
	api := chi.NewRouter()
	ing.Mount(api)
	return &Server{api: api, maxBody: maxBody}
}

// Mount adds POST /events/ to r, and OPTIONS /events/ for the preflights
// CORS lets through (see CORS).
func (s *Server) Mount(r chi.Router) {
	r.Post(Route, s.publish)
	r.Options(Route, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "OPTIONS, POST")
		w.WriteHeader(http.StatusNoContent)
	})
}

// CORS lets pages from any origin call Route, whatever --cors-origins
// says for the rest of the API. It wraps the process's whole handler,
// outside its middleware and the gate, so that it adds its headers to
// every answer of the route: preflights (then answered by the process's
// own CORS handler, or by the route's OPTIONS when the process has none),
// 202s, and the gate's refusals (a 401 a page cannot read is a network
// error to it). Other paths pass untouched.
func CORS(next http.Handler) http.Handler {
	anyOrigin := cors.Handler(cors.Options{
		AllowedOrigins:     []string{"*"},
		AllowedMethods:     []string{http.MethodPost},
		AllowedHeaders:     []string{"*"},
		ExposedHeaders:     []string{"X-Request-ID", "Retry-After", "WWW-Authenticate"},
		MaxAge:             600,
		OptionsPassthrough: true,
	})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Route {
			anyOrigin.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// body is the request body: one event or an array of them.
type body struct {
	events []Event
	batch  bool
}

// UnmarshalJSONFrom decodes one event object or an array of them.
func (b *body) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '[' {
		b.batch = true
		return jsonv2.UnmarshalDecode(dec, &b.events, jsonv2.RejectUnknownMembers(true))
	}
	b.events = make([]Event, 1)
	return jsonv2.UnmarshalDecode(dec, &b.events[0], jsonv2.RejectUnknownMembers(true))
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	// The Eye took its JSON whatever the Content-Type said: so does this.
	r.Header.Del("Content-Type")
	var in body
	if err := problem.DecodeJSON(r, &in, s.maxBody); err != nil {
		problem.Write(w, err)
		return
	}
	var (
		out []byte
		err error
	)
	if in.batch {
		ts := make([]Translated, len(in.events))
		for i, e := range in.events {
			ts[i] = Translate(e)
		}
		out, err = json.Marshal(ts)
	} else {
		out, err = json.Marshal(Translate(in.events[0]))
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	res := httpserve.Forward(r.Context(), s.api, r, http.MethodPost, "/v1/events", out)
	if res.Status == http.StatusAccepted {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	problem.Write(w, Problem(res, func(fe problem.FieldError) problem.FieldError {
		return problem.FieldError{Pointer: Pointer(fe.Pointer), Detail: strings.TrimSuffix(fe.Detail, " (or give tag)")}
	}))
}

// Pointer maps a pointer into a translated event (or batch) onto the
// event The Eye's application sent: /code is /name, and what went under
// data._data was data.
func Pointer(ptr string) string {
	head, field := "", ptr
	// A batch's pointers start with the item's index.
	if rest, ok := strings.CutPrefix(ptr, "/"); ok {
		if i := strings.IndexByte(rest, '/'); i > 0 && isIndex(rest[:i]) {
			head, field = ptr[:i+1], rest[i:]
		}
	}
	switch {
	case field == "/code":
		field = "/name"
	case field == "/data/"+KeyData || strings.HasPrefix(field, "/data/"+KeyData+"/"):
		field = "/data" + strings.TrimPrefix(field, "/data/"+KeyData)
	}
	return head + field
}

func isIndex(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
