package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// maxRequest is the largest request body.
const maxRequest = 64 << 10

// API is the HTTP API of the consumers.
type API struct {
	js      streams
	records records
	log     *slog.Logger
	now     func() time.Time
}

// New returns the API of the consumers kept in kv (the bucket
// stream.EnsureConsumers returns), reading the EVENTS stream through js.
func New(js streams, kv jetstream.KeyValue, log *slog.Logger) *API {
	return &API{js: js, records: records{kv: kv}, log: log.With("component", "consumers"), now: time.Now}
}

// Mount adds the consumer endpoints to r.
func (a *API) Mount(r chi.Router) {
	handle := func(h func(*http.Request) (httpserve.Reply, error)) http.HandlerFunc {
		return httpserve.Handle(a.log, toProblem, h)
	}
	r.Get("/v1/consumers", handle(a.list))
	r.Put("/v1/consumers/{name}", handle(a.create))
	r.Get("/v1/consumers/{name}", handle(a.get))
	r.Delete("/v1/consumers/{name}", handle(a.delete))
	r.Get("/v1/consumers/{name}/events", handle(a.events))
	r.Post("/v1/consumers/{name}/ack", handle(a.ack))
	r.Post("/v1/consumers/{name}/seek", handle(a.seek))
}

// toProblem maps the errors of the consumers and of JetStream to their
// answers; nil for an internal error.
func toProblem(r *http.Request, err error) *problem.Problem {
	switch {
	case errors.Is(err, errNotFound):
		return problem.NotFound("no consumer is named " + strconv.Quote(chi.URLParam(r, "name")))
	case errors.Is(err, errBusy):
		return conflict("the consumer was changed by other requests meanwhile; try again")
	case unavailable(err):
		return problem.Unavailable("JetStream is unavailable", time.Second)
	}
	return nil
}

// unavailable reports whether err means NATS or the EVENTS stream cannot
// be reached now.
func unavailable(err error) bool {
	if stream.Unavailable(err) {
		return true
	}
	for _, target := range []error{
		jetstream.ErrNoHeartbeat, jetstream.ErrStreamNotFound,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// conflict is a request the consumer's current state refuses (409).
func conflict(detail string, errs ...problem.FieldError) *problem.Problem {
	p := problem.New(http.StatusConflict, "conflict", detail)
	p.Errors = errs
	return p
}

// A consumer belongs to the client that created it. Another client's
// consumer is answered exactly like an unknown one (404), except by a
// create, which cannot take the name: 409, naming nothing but the name.

// own returns the record of a consumer p owns; errNotFound for one of
// another client.
func (a *API) own(ctx context.Context, p *access.Principal, name string) (record, error) {
	rec, _, err := a.records.get(ctx, name)
	if err == nil && !p.Owns(rec.Owner) {
		return record{}, errNotFound
	}
	return rec, err
}

// update is records.update of a consumer p owns.
func (a *API) update(ctx context.Context, p *access.Principal, name string, fn func(*record) (bool, error)) (record, error) {
	return a.records.update(ctx, name, func(r *record) (bool, error) {
		if !p.Owns(r.Owner) {
			return false, errNotFound
		}
		return fn(r)
	})
}

// taken is the answer to a create of a name another client's consumer has.
func taken(name string) *problem.Problem {
	return conflict(fmt.Sprintf("the name %q is taken by a consumer of another client; choose another name", name))
}

// nameParam returns the consumer name of the path, or a 400.
func nameParam(r *http.Request) (string, error) {
	name := chi.URLParam(r, "name")
	if !validName(name) {
		return "", problem.BadParam("name", fmt.Sprintf("must be 1 to %d ASCII letters, digits, '_' and '-'", MaxNameLen))
	}
	return name, nil
}

// decodeBody strictly decodes a JSON request body into v (see
// problem.DecodeJSON).
func decodeBody(r *http.Request, v any) error {
	return problem.DecodeJSON(r, v, maxRequest)
}

// createRequest is the body of PUT /v1/consumers/{name}.
type createRequest struct {
	Tags  []string `json:"tags"` // none: the client's consume patterns
	Start Start    `json:"start"`
}

// checkTags validates and normalizes a consumer's tag patterns (422); see
// subject.Normalize for what it does with duplicates and overlaps.
func checkTags(tags []string) ([]string, error) {
	if len(tags) > MaxTags {
		detail := fmt.Sprintf("must have at most %d patterns", MaxTags)
		return nil, problem.Invalid("/tags "+detail, problem.FieldError{Pointer: "/tags", Detail: detail})
	}
	out, err := subject.Normalize(tags)
	var (
		invalid subject.PatternErrors
		overlap *subject.OverlapError
		errs    []problem.FieldError
	)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, subject.ErrEmpty):
		errs = append(errs, problem.FieldError{Pointer: "/tags", Detail: "must have at least one pattern"})
	case errors.As(err, &invalid):
		for _, e := range invalid {
			errs = append(errs, problem.FieldError{Pointer: fmt.Sprintf("/tags/%d", e.Index), Detail: e.Error()})
		}
	case errors.As(err, &overlap):
		errs = append(errs, problem.FieldError{Pointer: "/tags", Detail: overlap.Error() + "; combine them into one pattern or use two consumers"})
	default:
		return nil, err
	}
	return nil, problem.Invalid(errs[0].Pointer+" "+errs[0].Detail, errs...)
}

// create is PUT /v1/consumers/{name}: 201 when created, 200 when it exists
// with the same definition, 409 when with another or when another client's
// consumer has the name. Its tags must lie within the client's consume
// patterns (403); without tags it takes them all.
func (a *API) create(r *http.Request) (httpserve.Reply, error) {
	name, err := nameParam(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	var in createRequest
	if err := decodeBody(r, &in); err != nil {
		return httpserve.Reply{}, err
	}
	p := access.From(r.Context())
	if len(in.Tags) == 0 {
		in.Tags = p.Patterns(access.Consume)
	}
	tags, err := checkTags(in.Tags)
	if err != nil {
		return httpserve.Reply{}, err
	}
	for _, t := range tags {
		if !p.Covers(access.Consume, t) {
			return httpserve.Reply{}, access.Forbidden(fmt.Sprintf("tag pattern %q is outside the client's consume patterns", t))
		}
	}
	start := in.Start.normalized()
	if start.Kind == StartFrom && start.From.After(a.now()) {
		return httpserve.Reply{}, problem.Invalid("/start/from must not be in the future", problem.FieldError{Pointer: "/start/from", Detail: "must not be in the future"})
	}

	ctx := r.Context()
	rec, _, err := a.records.get(ctx, name)
	switch {
	case err == nil:
		return a.existing(ctx, p, name, rec, tags, start)
	case !errors.Is(err, errNotFound):
		return httpserve.Reply{}, err
	}
	st, b, err := events(ctx, a.js)
	if err != nil {
		return httpserve.Reply{}, err
	}
	if start.Kind == StartSinceSeq && start.SinceSeq > b.last {
		detail := fmt.Sprintf("since_seq %d is after the stream's last sequence %d", start.SinceSeq, b.last)
		return httpserve.Reply{}, conflict(detail, problem.FieldError{Pointer: "/start/since_seq", Detail: detail})
	}
	pos, err := a.initialPosition(ctx, st, b, start)
	if err != nil {
		return httpserve.Reply{}, err
	}
	rec = record{Owner: p.Owner(), Tags: tags, Start: start, Acked: pos, LastDelivered: pos, Created: a.now().UTC()}
	if err := a.records.create(ctx, name, rec); err != nil {
		if !errors.Is(err, errExists) {
			return httpserve.Reply{}, err
		}
		// Created by another request meanwhile.
		if rec, _, err = a.records.get(ctx, name); err != nil {
			return httpserve.Reply{}, err
		}
		return a.existing(ctx, p, name, rec, tags, start)
	}
	a.log.Info("consumer created", "consumer", name, "owner", rec.Owner, "tags", tags, "stream_seq", pos)
	c, err := a.describe(ctx, st, b, name, rec)
	if err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Status: http.StatusCreated, Body: c}, nil
}

// existing answers a create of a consumer that exists.
func (a *API) existing(ctx context.Context, p *access.Principal, name string, rec record, tags []string, start Start) (httpserve.Reply, error) {
	if !p.Owns(rec.Owner) {
		return httpserve.Reply{}, taken(name)
	}
	if !rec.sameDefinition(tags, start) {
		def, _ := jsonv2.Marshal(createRequest{Tags: rec.Tags, Start: rec.Start})
		return httpserve.Reply{}, conflict(fmt.Sprintf("consumer %q exists with another definition: %s; delete it first to change it", name, def))
	}
	c, err := a.describeOne(ctx, name, rec)
	if err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Status: http.StatusOK, Body: c}, nil
}

// describeOne describes one consumer.
func (a *API) describeOne(ctx context.Context, name string, rec record) (Consumer, error) {
	st, b, err := events(ctx, a.js)
	if err != nil {
		return Consumer{}, err
	}
	return a.describe(ctx, st, b, name, rec)
}

func (a *API) get(r *http.Request) (httpserve.Reply, error) {
	name, err := nameParam(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	rec, err := a.own(r.Context(), access.From(r.Context()), name)
	if err != nil {
		return httpserve.Reply{}, err
	}
	c, err := a.describeOne(r.Context(), name, rec)
	if err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Status: http.StatusOK, Body: c}, nil
}

// List is the answer of GET /v1/consumers.
type List struct {
	Consumers []Consumer `json:"consumers"`
}

// list shows the client's own consumers (an admin's: all).
func (a *API) list(r *http.Request) (httpserve.Reply, error) {
	ctx := r.Context()
	p := access.From(ctx)
	names, err := a.records.names(ctx)
	if err != nil {
		return httpserve.Reply{}, err
	}
	st, b, err := events(ctx, a.js)
	if err != nil {
		return httpserve.Reply{}, err
	}
	out := List{Consumers: make([]Consumer, 0, len(names))}
	for _, name := range names {
		rec, _, err := a.records.get(ctx, name)
		if errors.Is(err, errNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return httpserve.Reply{}, err
		}
		if !p.Owns(rec.Owner) {
			continue
		}
		c, err := a.describe(ctx, st, b, name, rec)
		if err != nil {
			return httpserve.Reply{}, err
		}
		out.Consumers = append(out.Consumers, c)
	}
	return httpserve.Reply{Status: http.StatusOK, Body: out}, nil
}

func (a *API) delete(r *http.Request) (httpserve.Reply, error) {
	name, err := nameParam(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	p := access.From(r.Context())
	err = a.records.delete(r.Context(), name, func(rec *record) error {
		if !p.Owns(rec.Owner) {
			return errNotFound
		}
		return nil
	})
	if err != nil {
		return httpserve.Reply{}, err
	}
	a.log.Info("consumer deleted", "consumer", name)
	return httpserve.Reply{Status: http.StatusNoContent}, nil
}

// events is GET /v1/consumers/{name}/events?limit=N&wait=D.
func (a *API) events(r *http.Request) (httpserve.Reply, error) {
	name, err := nameParam(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > MaxLimit {
		return httpserve.Reply{}, problem.BadParam("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxLimit))
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		return httpserve.Reply{}, err
	}
	b, err := a.read(r.Context(), name, limit, wait)
	if err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Status: http.StatusOK, Body: b}, nil
}

// parseWait reads the long-poll duration: a Go duration ("5s", "500ms")
// or whole seconds, from 0 to MaxWait; empty means 0.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		d, err = time.Duration(n)*time.Second, nerr
	}
	if err != nil || d < 0 || d > MaxWait {
		return 0, problem.BadParam("wait", fmt.Sprintf("must be a duration from 0s to %s, e.g. 5s", MaxWait))
	}
	return d, nil
}

// seqRequest is the body of the ack and seek requests.
type seqRequest struct {
	Seq *uint64 `json:"seq"`
}

// seq decodes a seqRequest and returns its required seq.
func decodeSeq(r *http.Request) (uint64, error) {
	var in seqRequest
	if err := decodeBody(r, &in); err != nil {
		return 0, err
	}
	if in.Seq == nil {
		return 0, problem.Invalid("/seq is required", problem.FieldError{Pointer: "/seq", Detail: "is required"})
	}
	return *in.Seq, nil
}

// Position is a consumer's position after an acknowledgement or a seek.
type Position struct {
	Acked         uint64 `json:"acked"`
	LastDelivered uint64 `json:"last_delivered"`
}

// ack is POST /v1/consumers/{name}/ack: everything up to seq is processed.
func (a *API) ack(r *http.Request) (httpserve.Reply, error) {
	name, err := nameParam(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	seq, err := decodeSeq(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	rec, err := a.update(r.Context(), access.From(r.Context()), name, func(rec *record) (bool, error) {
		if seq < rec.Acked || seq > rec.LastDelivered {
			detail := fmt.Sprintf("seq %d was not delivered to consumer %q since its last acknowledgement: acknowledge a seq from %d to %d (from acked to last delivered)", seq, name, rec.Acked, rec.LastDelivered)
			return false, conflict(detail, problem.FieldError{Pointer: "/seq", Detail: fmt.Sprintf("must be from %d to %d", rec.Acked, rec.LastDelivered)})
		}
		if seq == rec.Acked {
			return false, nil
		}
		rec.Acked = seq
		return true, nil
	})
	if err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Status: http.StatusOK, Body: Position{Acked: rec.Acked, LastDelivered: rec.LastDelivered}}, nil
}

// seek is POST /v1/consumers/{name}/seek: an administrator moves the
// position, forwards or back, within the stream's range; the events after
// it are delivered (again).
func (a *API) seek(r *http.Request) (httpserve.Reply, error) {
	name, err := nameParam(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	seq, err := decodeSeq(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	ctx := r.Context()
	p := access.From(ctx)
	if _, err := a.own(ctx, p, name); err != nil {
		return httpserve.Reply{}, err
	}
	_, b, err := events(ctx, a.js)
	if err != nil {
		return httpserve.Reply{}, err
	}
	if seq < b.floor() || seq > b.last {
		detail := fmt.Sprintf("seq %d is outside the stream: seek to a seq from %d to %d", seq, b.floor(), b.last)
		return httpserve.Reply{}, conflict(detail, problem.FieldError{Pointer: "/seq", Detail: fmt.Sprintf("must be from %d to %d", b.floor(), b.last)})
	}
	rec, err := a.update(ctx, p, name, func(rec *record) (bool, error) {
		if rec.Acked == seq && rec.LastDelivered == seq {
			return false, nil
		}
		rec.Acked, rec.LastDelivered = seq, seq
		return true, nil
	})
	if err != nil {
		return httpserve.Reply{}, err
	}
	a.log.Info("consumer sought", "consumer", name, "stream_seq", seq)
	return httpserve.Reply{Status: http.StatusOK, Body: Position{Acked: rec.Acked, LastDelivered: rec.LastDelivered}}, nil
}
