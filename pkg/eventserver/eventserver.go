// Package eventserver serves the HTTP API of the event server EventSync
// replaces (streams owned by their first writer, consumer offsets with
// explicit ACK) by translating each request onto EventSync's own API:
//
//	event server                                   EventSync
//	stream                                         category
//	event name                                     code (tag STREAM.NAME)
//	payload                                        data
//	event version, system, trigger                 data._version, data._system, data._trigger
//	Basic auth                                     the client (Basic user = client id)
//	X-Producer-ID                                  the event's source
//	second writer to a stream → 423                category claimed by its first writer (FirstWriterOwns)
//	X-Consumer-ID + stream + eventName             HTTP consumer es-<client>-<stream>-<eventName>-<consumer id>
//	POST …/events/{eventID} action=ACK             acknowledge that consumer up to the event's seq
//
// Answers are the event server's, byte for byte: a JSON array of events,
// the new event's id as a JSON string, "OK", and errors as JSON strings
// ("Bad Request - <reason>", "Unauthorized", "Not Found", "Locked -
// Second writers not allowed", "Internal Server Error - <reason>"), all
// with Content-Type ContentType. EventSync's refusals the event server
// did not have keep their status with a string of the same form (see
// Status and Message). The refusals made before a handler runs (the
// access gate's) are answered so by Refusals, which wraps the gate.
//
// A read covers the stream's tags that the client may read (its read
// patterns), none other; a stream with no such tag is a 403. Consumer
// offsets belong to the client: the HTTP consumer's name includes the
// client's id and the consumer is the client's own, so two clients using
// the same X-Consumer-ID read and acknowledge independently, and neither
// can move the other's offset.
package eventserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/httpserve"
	estream "github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// maxLimit is the largest limit of a read.
const maxLimit = 10000

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
// POST /v1/events (the ingest service mounts it) and check the category
// owner when FirstWriterOwns.
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

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	stream := chi.URLParam(r, "stream")
	if err := subject.ValidateCategory(stream); err != nil {
		fail(w, http.StatusBadRequest, "stream "+err.Error())
		return
	}
	pid := r.Header.Get("X-Producer-ID")
	if pid == "" {
		fail(w, http.StatusBadRequest, "X-Producer-ID is required")
		return
	}
	var env envelope
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&env); err != nil {
		fail(w, http.StatusBadRequest, "body is not a JSON event: "+err.Error())
		return
	}
	if env.Event.Name == "" {
		fail(w, http.StatusBadRequest, "event.name is required")
		return
	}
	if err := subject.ValidateCode(env.Event.Name); err != nil {
		fail(w, http.StatusBadRequest, "event.name "+err.Error())
		return
	}
	d, err := data(env)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := json.Marshal(map[string]any{
		"category": stream,
		"code":     env.Event.Name,
		"message":  env.Event.Name,
		"source":   pid,
		"data":     json.RawMessage(d),
	})
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	res := s.call(withFirstWriterOwns(r.Context()), r, http.MethodPost, "/v1/events", body)
	if res.Status != http.StatusAccepted {
		failForwarded(w, res)
		return
	}
	var out struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	if err := json.Unmarshal(res.Body.Bytes(), &out); err != nil || len(out.Events) != 1 {
		fail(w, http.StatusInternalServerError, "unexpected answer of the event intake")
		return
	}
	b, _ := marshal(out.Events[0].ID)
	write(w, http.StatusOK, b)
}

// consumerName is the HTTP consumer behind an event-server consumer of the
// client client (empty with authentication off: the name is then the one
// consumers had before they were per client). Consumer names allow 1-64
// of [A-Za-z0-9_-], so long or unusual parts are hashed. An empty
// eventName ("all") names the consumers of reads without one, which
// earlier versions allowed: an ACK still finds them.
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
	q := r.URL.Query()
	eventName := q.Get("eventName")
	if eventName == "" {
		fail(w, http.StatusBadRequest, "eventName is required")
		return
	}
	if err := subject.ValidateCode(eventName); err != nil {
		fail(w, http.StatusBadRequest, "eventName "+err.Error())
		return
	}
	if q.Get("limit") == "" {
		fail(w, http.StatusBadRequest, "limit is required")
		return
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > maxLimit {
		fail(w, http.StatusBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(maxLimit))
		return
	}
	cid := r.Header.Get("X-Consumer-ID")
	if cid == "" {
		fail(w, http.StatusBadRequest, "X-Consumer-ID is required")
		return
	}
	p := access.From(r.Context())
	tags := estream.LimitPatterns([]string{stream + "." + eventName}, p.Restrict(access.Read))
	if len(tags) == 0 {
		fail(w, http.StatusForbidden, "events "+eventName+" of stream "+stream+" are outside the client's read patterns")
		return
	}
	if exists, res := s.streamExists(r, stream); res != nil {
		failForwarded(w, res)
		return
	} else if !exists {
		fail(w, http.StatusNotFound, "")
		return
	}
	name := consumerName(p.ID, stream, eventName, cid)
	ctx := consumerContext(r.Context(), tags)
	def, _ := json.Marshal(map[string]any{"tags": tags, "start": "all"})
	if res := s.call(ctx, r, http.MethodPut, "/v1/consumers/"+name, def); res.Status >= 300 {
		failForwarded(w, res)
		return
	}
	res := s.call(ctx, r, http.MethodGet, "/v1/consumers/"+name+"/events?limit="+strconv.Itoa(limit)+"&wait=0s", nil)
	if res.Status != http.StatusOK {
		failForwarded(w, res)
		return
	}
	var page struct {
		Events []stored `json:"events"`
	}
	if err := json.Unmarshal(res.Body.Bytes(), &page); err != nil {
		fail(w, http.StatusInternalServerError, "unexpected answer of the consumer")
		return
	}
	out := make([]outEvent, 0, len(page.Events))
	for _, e := range page.Events {
		out = append(out, render(e))
	}
	b, err := marshal(out)
	if err != nil {
		fail(w, http.StatusInternalServerError, "an event could not be encoded")
		return
	}
	write(w, http.StatusOK, b)
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	stream, eventID := chi.URLParam(r, "stream"), chi.URLParam(r, "eventID")
	if err := r.ParseForm(); err != nil {
		fail(w, http.StatusBadRequest, "form: "+err.Error())
		return
	}
	if a := r.PostForm.Get("action"); !strings.EqualFold(a, "ACK") {
		fail(w, http.StatusBadRequest, "action must be ACK")
		return
	}
	cid := r.Header.Get("X-Consumer-ID")
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
	if res.Status != http.StatusOK {
		failForwarded(w, res)
		return
	}
	var e struct {
		Seq      uint64 `json:"seq"`
		Category string `json:"category"`
		Code     string `json:"code"`
	}
	if err := json.Unmarshal(res.Body.Bytes(), &e); err != nil || e.Category != stream {
		fail(w, http.StatusNotFound, "") // an event of another stream
		return
	}
	// The consumer that read it was named after the event name it asked
	// for, or, before eventName was required, none: acknowledge whichever
	// exists.
	body, _ := json.Marshal(map[string]uint64{"seq": e.Seq})
	acked := false
	client := access.From(r.Context()).ID
	for _, name := range []string{consumerName(client, stream, e.Code, cid), consumerName(client, stream, "", cid)} {
		res := s.call(r.Context(), r, http.MethodPost, "/v1/consumers/"+name+"/ack", body)
		switch {
		case res.Status == http.StatusNotFound:
		case res.Status < 300:
			acked = true
		default:
			failForwarded(w, res)
			return
		}
	}
	if !acked {
		fail(w, http.StatusNotFound, "") // the consumer has not read the stream
		return
	}
	writeString(w, http.StatusOK, answerOK)
}

// streamExists reports whether a stream (category) has events the client
// may read; a refusal of the store is returned instead.
func (s *Server) streamExists(r *http.Request, stream string) (bool, *httpserve.Answer) {
	res := s.call(r.Context(), r, http.MethodGet, "/v1/events?category="+url.QueryEscape(stream)+"&order=desc&limit=1", nil)
	if res.Status != http.StatusOK {
		return false, res
	}
	var page struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(res.Body.Bytes(), &page); err != nil {
		return false, &httpserve.Answer{Status: http.StatusInternalServerError}
	}
	return len(page.Events) > 0, nil
}

// call serves one translated request of orig with ctx (orig's context, or
// one derived from it) and orig's credentials.
func (s *Server) call(ctx context.Context, orig *http.Request, method, target string, body []byte) *httpserve.Answer {
	return httpserve.Forward(ctx, s.api, orig, method, target, body)
}

// failForwarded answers the translated request's refusal as the event server's.
func failForwarded(w http.ResponseWriter, a *httpserve.Answer) {
	failWith(w, parseProblem(a.Status, a.Body.Bytes()), a.Header())
}
