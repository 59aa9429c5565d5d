// Package eventserver serves the HTTP API of the event server EventSync
// replaces (streams owned by one producer, consumer offsets with explicit
// ACK) by translating each request onto EventSync's own API:
//
//	event server                                   EventSync
//	stream                                         category
//	event name                                     code (tag STREAM.NAME)
//	payload                                        data
//	event version, system, trigger                 data._version, data._system, data._trigger
//	X-Producer-ID + Basic auth                     the producer (Basic user = producer id)
//	second writer to a stream → 423                category owned by its first writer (--claim-on-first-write)
//	X-Consumer-ID + stream + eventName             HTTP consumer es-<client>-<stream>-<eventName or all>-<consumer id>
//	POST …/events/{eventID} action=ACK             acknowledge that consumer up to the event's seq
//
// A read covers the stream's tags that the client may read (its read
// patterns), none other; a stream with no such tag is a 403. Consumer
// offsets belong to the client: the HTTP consumer's name includes the
// client's id and the consumer is the client's own, so two clients using
// the same X-Consumer-ID read and acknowledge independently, and neither
// can move the other's offset.
//
// Status codes are the event server's: 200 with the new event id, 400
// "Bad Request - <reason>", 401 for missing or wrong credentials, 404 for
// an unknown stream or event, 423 for a second writer; and 403 for a tag
// or a stream outside the client's patterns.
package eventserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/problem"
	estream "github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// Server translates the event server's API onto api, an http.Handler that
// serves EventSync's /v1 endpoints (the router the translation is mounted
// on).
type Server struct {
	api http.Handler
}

// New returns a Server that calls api for the translated requests.
func New(api http.Handler) *Server { return &Server{api: api} }

// Mount adds all of the event server's endpoints to r.
func (s *Server) Mount(r chi.Router) {
	s.MountPublish(r)
	s.MountConsume(r)
}

// MountPublish adds the publish endpoint to r; api must serve
// POST /v1/events (the ingest service mounts it).
func (s *Server) MountPublish(r chi.Router) {
	r.Post("/api/v1/streams/{stream}/events", s.publish)
}

// MountConsume adds the read and ACK endpoints to r; api must serve
// /v1/events, /v1/events/{id} and /v1/consumers (the query service mounts
// them) without a gate in front: the translated requests run as the
// principal of the original request (access.From), narrowed to what the
// event server's route allows, and a gate would authenticate them again.
func (s *Server) MountConsume(r chi.Router) {
	r.Get("/api/v1/streams/{stream}/events", s.read)
	r.Post("/api/v1/streams/{stream}/events/{eventID}", s.ack)
}

// envelope is the event server's event.
type envelope struct {
	Event struct {
		Name    string `json:"name"`
		Version any    `json:"version,omitempty"`
	} `json:"event"`
	System  json.RawMessage `json:"system,omitempty"`
	Trigger json.RawMessage `json:"trigger,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// fail answers with the event server's status and a problem body whose
// detail is its message.
func fail(w http.ResponseWriter, status int, reason string) {
	detail := reason
	if status == http.StatusBadRequest {
		detail = "Bad Request - " + reason
	}
	problem.Write(w, problem.New(status, "event-server", detail))
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	stream := chi.URLParam(r, "stream")
	if err := subject.ValidateCategory(stream); err != nil {
		fail(w, http.StatusBadRequest, "stream "+err.Error())
		return
	}
	if pid := r.Header.Get("X-Producer-ID"); pid != "" {
		if user, _, ok := r.BasicAuth(); ok && user != pid {
			fail(w, http.StatusBadRequest, "X-Producer-ID does not match the credentials")
			return
		}
	}
	var env envelope
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	if err := dec.Decode(&env); err != nil {
		fail(w, http.StatusBadRequest, "body is not a JSON event: "+err.Error())
		return
	}
	if env.Event.Name == "" {
		fail(w, http.StatusBadRequest, "event.name is required")
		return
	}
	data, err := mergeData(env)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := json.Marshal(map[string]any{
		"category": stream,
		"code":     env.Event.Name,
		"message":  env.Event.Name,
		"source":   r.Header.Get("X-Producer-ID"),
		"data":     data,
	})
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	res := s.call(r.Context(), r, http.MethodPost, "/v1/events", body)
	switch res.Code {
	case http.StatusAccepted:
		var out struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		}
		if err := json.Unmarshal(res.Body.Bytes(), &out); err != nil || len(out.Events) != 1 {
			fail(w, http.StatusInternalServerError, "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": out.Events[0].ID})
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusLocked, http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusRequestEntityTooLarge:
		copyProblem(w, res, res.Code)
	default:
		if res.Code >= 400 && res.Code < 500 {
			fail(w, http.StatusBadRequest, detailOf(res))
			return
		}
		copyProblem(w, res, res.Code)
	}
}

// mergeData is the event's data: the payload object, with the envelope's
// version, system and trigger kept beside it.
func mergeData(env envelope) (map[string]json.RawMessage, error) {
	data := map[string]json.RawMessage{}
	if len(env.Payload) > 0 && string(env.Payload) != "null" {
		if err := json.Unmarshal(env.Payload, &data); err != nil {
			return nil, fmt.Errorf("payload must be a JSON object")
		}
	}
	for k, v := range map[string]json.RawMessage{"_system": env.System, "_trigger": env.Trigger} {
		if len(v) > 0 {
			data[k] = v
		}
	}
	if env.Event.Version != nil {
		b, _ := json.Marshal(env.Event.Version)
		data["_version"] = b
	}
	return data, nil
}

// consumerName is the HTTP consumer behind an event-server consumer of the
// client client (empty with authentication off: the name is then the one
// consumers had before they were per client). Consumer names allow 1-64
// of [A-Za-z0-9_-], so long or unusual parts are hashed.
func consumerName(client, stream, eventName, consumerID string) string {
	if eventName == "" {
		eventName = "all"
	}
	name := "es-" + stream + "-" + eventName + "-" + consumerID
	if client != "" {
		name = "es-" + client + "-" + stream + "-" + eventName + "-" + consumerID
	}
	ok := len(name) <= 64
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			ok = false
		}
	}
	if ok {
		return name
	}
	key := stream + "\x00" + eventName + "\x00" + consumerID
	if client != "" {
		key = client + "\x00" + key
	}
	h := sha256.Sum256([]byte(key))
	return "es-" + hex.EncodeToString(h[:20])
}

// readable reports whether the client of ctx may read some tag of
// pattern.
func readable(ctx context.Context, pattern string) bool {
	return len(estream.LimitPatterns([]string{pattern}, access.From(ctx).Restrict(access.Read))) > 0
}

// consumerContext returns the context of the translated consumer requests
// of a client reading tags: the client itself, allowed to consume exactly
// those tags. An admin stays an admin.
func consumerContext(ctx context.Context, tags []string) context.Context {
	p := access.From(ctx)
	if p.Admin {
		return ctx
	}
	return access.NewContext(ctx, &access.Principal{ID: p.ID, Consume: tags})
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	stream := chi.URLParam(r, "stream")
	if err := subject.ValidateCategory(stream); err != nil {
		fail(w, http.StatusBadRequest, "stream "+err.Error())
		return
	}
	cid := r.Header.Get("X-Consumer-ID")
	if cid == "" {
		fail(w, http.StatusBadRequest, "X-Consumer-ID is required")
		return
	}
	q := r.URL.Query()
	eventName := q.Get("eventName")
	pattern := stream + ".*"
	if eventName != "" {
		if err := subject.ValidateCode(eventName); err != nil {
			fail(w, http.StatusBadRequest, "eventName "+err.Error())
			return
		}
		pattern = stream + "." + eventName
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			fail(w, http.StatusBadRequest, "limit must be 1 to 10000")
			return
		}
		limit = n
	}
	p := access.From(r.Context())
	tags := estream.LimitPatterns([]string{pattern}, p.Restrict(access.Read))
	if len(tags) == 0 {
		fail(w, http.StatusForbidden, "stream "+stream+" is outside the client's read patterns")
		return
	}
	if !s.streamExists(r, stream) {
		fail(w, http.StatusNotFound, "unknown stream "+stream)
		return
	}
	name := consumerName(p.ID, stream, eventName, cid)
	ctx := consumerContext(r.Context(), tags)
	def, _ := json.Marshal(map[string]any{"tags": tags, "start": "all"})
	if res := s.call(ctx, r, http.MethodPut, "/v1/consumers/"+name, def); res.Code >= 300 {
		copyProblem(w, res, res.Code)
		return
	}
	res := s.call(ctx, r, http.MethodGet, "/v1/consumers/"+name+"/events?limit="+strconv.Itoa(limit)+"&wait=0s", nil)
	if res.Code != http.StatusOK {
		copyProblem(w, res, res.Code)
		return
	}
	var page struct {
		Events []struct {
			ID        string                     `json:"id"`
			Seq       uint64                     `json:"seq"`
			Code      string                     `json:"code"`
			Timestamp time.Time                  `json:"timestamp"`
			Data      map[string]json.RawMessage `json:"data"`
		} `json:"events"`
	}
	if err := json.Unmarshal(res.Body.Bytes(), &page); err != nil {
		fail(w, http.StatusInternalServerError, "")
		return
	}
	out := make([]map[string]any, 0, len(page.Events))
	for _, e := range page.Events {
		payload := map[string]json.RawMessage{}
		ev := map[string]any{"name": e.Code}
		item := map[string]any{"id": e.ID, "seq": e.Seq, "timestamp": e.Timestamp, "event": ev}
		for k, v := range e.Data {
			switch k {
			case "_version":
				ev["version"] = v
			case "_system":
				item["system"] = v
			case "_trigger":
				item["trigger"] = v
			default:
				payload[k] = v
			}
		}
		item["payload"] = payload
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	stream, eventID := chi.URLParam(r, "stream"), chi.URLParam(r, "eventID")
	cid := r.Header.Get("X-Consumer-ID")
	if err := r.ParseForm(); err != nil {
		fail(w, http.StatusBadRequest, "form: "+err.Error())
		return
	}
	if a := r.PostForm.Get("action"); !strings.EqualFold(a, "ACK") {
		fail(w, http.StatusBadRequest, "action must be ACK")
		return
	}
	if cid == "" {
		fail(w, http.StatusBadRequest, "X-Consumer-ID is required")
		return
	}
	if err := subject.ValidateCategory(stream); err != nil {
		fail(w, http.StatusBadRequest, "stream "+err.Error())
		return
	}
	if !readable(r.Context(), stream+".*") {
		fail(w, http.StatusForbidden, "stream "+stream+" is outside the client's read patterns")
		return
	}
	res := s.call(r.Context(), r, http.MethodGet, "/v1/events/"+url.PathEscape(eventID), nil)
	if res.Code == http.StatusNotFound {
		fail(w, http.StatusNotFound, "unknown event "+eventID)
		return
	}
	if res.Code != http.StatusOK {
		copyProblem(w, res, res.Code)
		return
	}
	var e struct {
		Seq      uint64 `json:"seq"`
		Category string `json:"category"`
		Code     string `json:"code"`
	}
	if err := json.Unmarshal(res.Body.Bytes(), &e); err != nil || e.Category != stream {
		fail(w, http.StatusNotFound, "unknown event "+eventID+" in stream "+stream)
		return
	}
	// The consumer that read it was named after the event name it asked
	// for, or none: acknowledge whichever exists.
	body, _ := json.Marshal(map[string]uint64{"seq": e.Seq})
	acked := false
	client := access.From(r.Context()).ID
	for _, name := range []string{consumerName(client, stream, e.Code, cid), consumerName(client, stream, "", cid)} {
		res := s.call(r.Context(), r, http.MethodPost, "/v1/consumers/"+name+"/ack", body)
		switch {
		case res.Code == http.StatusNotFound:
		case res.Code < 300:
			acked = true
		default:
			copyProblem(w, res, res.Code)
			return
		}
	}
	if !acked {
		fail(w, http.StatusNotFound, "consumer "+cid+" has not read stream "+stream)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": eventID, "status": "ACK"})
}

// streamExists reports whether a stream (category) has events.
func (s *Server) streamExists(r *http.Request, stream string) bool {
	res := s.call(r.Context(), r, http.MethodGet, "/v1/events?category="+url.QueryEscape(stream)+"&order=desc&limit=1", nil)
	if res.Code != http.StatusOK {
		return true // let the consumer read decide
	}
	var page struct {
		Events []json.RawMessage `json:"events"`
	}
	return json.Unmarshal(res.Body.Bytes(), &page) == nil && len(page.Events) > 0
}

// call serves one translated request of orig with ctx (orig's context, or
// one derived from it) and orig's credentials.
func (s *Server) call(ctx context.Context, orig *http.Request, method, target string, body []byte) *recorder {
	// A fresh chi route context: chi routes a request that still carries
	// the outer one as if it were in a sub-router.
	ctx = context.WithValue(ctx, chi.RouteCtxKey, nil)
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return &recorder{Code: http.StatusBadRequest, header: http.Header{}}
	}
	req.RequestURI = target
	req.Header.Set("Content-Type", "application/json")
	if a := orig.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	res := &recorder{Code: http.StatusOK, header: http.Header{}}
	s.api.ServeHTTP(res, req)
	return res
}

// recorder is the http.ResponseWriter of a translated request.
type recorder struct {
	Code        int
	Body        bytes.Buffer
	header      http.Header
	wroteHeader bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.Code, r.wroteHeader = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.Body.Write(b)
}

func detailOf(res *recorder) string {
	var p problem.Problem
	if json.Unmarshal(res.Body.Bytes(), &p) == nil && p.Detail != "" {
		if len(p.Errors) > 0 {
			return p.Errors[0].Pointer + " " + p.Errors[0].Detail
		}
		return p.Detail
	}
	return http.StatusText(res.Code)
}

// copyProblem answers with the translated request's problem under status.
func copyProblem(w http.ResponseWriter, res *recorder, status int) {
	var p problem.Problem
	if json.Unmarshal(res.Body.Bytes(), &p) != nil {
		p = *problem.New(status, "event-server", http.StatusText(status))
	}
	p.Status = status
	if v := res.Header().Get("WWW-Authenticate"); v != "" {
		p.Challenge = v
	}
	if v := res.Header().Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			p.RetryAfter = time.Duration(n) * time.Second
		}
	}
	problem.Write(w, &p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
