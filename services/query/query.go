// Package query is the EventSync query service: the HTTP API dashboards use
// to read stored events by cursor, session, tag, time range and id, counts
// per tag over time, and the delivery attempts of a subscription or an
// event.
package query

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Limits of query parameters.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
	MaxBuckets   = 10000
)

// reader is the event store as the query service sees it.
type reader interface {
	Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error)
	Event(ctx context.Context, id string) (event.Event, error)
	Stats(ctx context.Context, f eventstore.StatsFilter) ([]eventstore.Count, error)
	Attempts(ctx context.Context, f delivery.Filter) ([]delivery.Attempt, error)
}

// watermark tells up to which stream sequence every message of a stream is
// stored.
type watermark interface {
	Committed(ctx context.Context) (uint64, error)
}

// Service is the query service.
type Service struct {
	r     reader
	wm    watermark     // of EVENTS
	delWM watermark     // of DELIVERIES
	subs  subscriptions // nil: every subscription id is taken to exist
	now   func() time.Time
	log   *slog.Logger
}

// New returns a query service reading from r. Cursor reads of events stop
// at the events watermark, those of delivery attempts at the deliveries
// watermark (stream.NewWatermark and stream.NewConsumerWatermark(js,
// stream.Deliveries, stream.StoreDeliveriesConsumer)).
func New(r reader, events, deliveries watermark, log *slog.Logger) *Service {
	return &Service{r: r, wm: events, delWM: deliveries, now: time.Now, log: log.With("component", "query")}
}

// Mount adds the query endpoints to r.
func (s *Service) Mount(r chi.Router) {
	r.Get("/v1/events", s.handle(s.events))
	r.Get("/v1/events/{id}", s.handle(s.event))
	r.Get("/v1/sessions/{session_id}/events", s.handle(s.session))
	r.Get("/v1/stats", s.handle(s.stats))
	r.Get("/v1/subscriptions/{id}/deliveries", s.handle(s.subscriptionDeliveries))
	r.Get("/v1/events/{id}/deliveries", s.handle(s.eventDeliveries))
}

// handle serves a read that answers 200 with the body h returns (see
// httpserve.Handle: a body that fails to encode, an event with an invalid
// severity, is a 500, never a truncated 200).
func (s *Service) handle(h func(*http.Request) (any, error)) http.HandlerFunc {
	return httpserve.Handle(s.log, toProblem, func(r *http.Request) (httpserve.Reply, error) {
		body, err := h(r)
		return httpserve.Reply{Body: body}, err
	})
}

// Page is a page of events; NextSince is the cursor of the next page.
type Page struct {
	Events    []event.Event `json:"events"`
	NextSince uint64        `json:"next_since"`
}

func (s *Service) events(r *http.Request) (any, error) {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		return nil, err
	}
	switch q.Get("order") {
	case "", "asc":
		f.Order = eventstore.BySeq
	case "desc":
		f.Order = eventstore.BySeqDesc
	default:
		return nil, problem.BadParam("order", "must be asc or desc")
	}
	if err := limitRead(r.Context(), &f); err != nil {
		return nil, err
	}
	return s.page(r.Context(), f)
}

// page reads events after the cursor, never beyond the committed watermark,
// so that an event committed later with a smaller seq is never skipped.
func (s *Service) page(ctx context.Context, f eventstore.Filter) (*Page, error) {
	wm, err := s.wm.Committed(ctx)
	if err != nil {
		return nil, problem.Unavailable("the event stream is unavailable", time.Second)
	}
	p := &Page{Events: []event.Event{}, NextSince: f.After}
	if wm <= f.After {
		return p, nil
	}
	f.Through = wm
	evs, err := s.r.Events(ctx, f)
	if err != nil {
		return nil, err
	}
	p.Events = evs
	switch {
	case f.Order == eventstore.BySeq && len(evs) == f.Limit:
		p.NextSince = evs[len(evs)-1].Seq
	default:
		// Every match in (After, wm] was returned (or, newest first, the
		// caller asked for the latest): continue from the watermark.
		p.NextSince = wm
	}
	return p, nil
}

// event answers an event outside the caller's read patterns exactly like
// an unknown id.
func (s *Service) event(r *http.Request) (any, error) {
	id := pathParam(r, "id")
	e, err := s.r.Event(r.Context(), id)
	if err == nil && !eventstore.Allows(access.From(r.Context()).Restrict(access.Read), e.Tag) {
		err = eventstore.ErrNotFound
	}
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil, problem.NotFound("no event has id " + strconv.Quote(id))
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// pathParam returns a path parameter unescaped. chi matches routes against
// the escaped path when it differs from the default encoding (an id with a
// '/' sent as %2F) and then hands out parameters still escaped.
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

// SessionPage is the events of one session in event-time order.
type SessionPage struct {
	SessionID string        `json:"session_id"`
	Events    []event.Event `json:"events"`
}

func (s *Service) session(r *http.Request) (any, error) {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		return nil, err
	}
	if q.Has("since") {
		return nil, problem.BadParam("since", "is not supported on session reads (they are ordered by time)")
	}
	f.SessionID = pathParam(r, "session_id")
	f.Order = eventstore.ByTime
	if q.Get("limit") == "" {
		f.Limit = 1000
	}
	if err := limitRead(r.Context(), &f); err != nil {
		return nil, err
	}
	evs, err := s.r.Events(r.Context(), f)
	if err != nil {
		return nil, err
	}
	return &SessionPage{SessionID: f.SessionID, Events: evs}, nil
}

// Stats is the body of /v1/stats.
type Stats struct {
	From   time.Time          `json:"from"`
	To     time.Time          `json:"to"`
	Bucket string             `json:"bucket"`
	Counts []eventstore.Count `json:"counts"`
}

var buckets = map[string]struct {
	b eventstore.Bucket
	d time.Duration
}{
	"minute": {eventstore.Minute, time.Minute}, "1m": {eventstore.Minute, time.Minute},
	"hour": {eventstore.Hour, time.Hour}, "1h": {eventstore.Hour, time.Hour},
	"day": {eventstore.Day, 24 * time.Hour}, "1d": {eventstore.Day, 24 * time.Hour},
}

func (s *Service) stats(r *http.Request) (any, error) {
	q := r.URL.Query()
	name := q.Get("bucket")
	if name == "" {
		name = "hour"
	}
	b, ok := buckets[name]
	if !ok {
		return nil, problem.BadParam("bucket", "must be minute, hour or day")
	}
	to, err := parseTime(q, "to", s.now())
	if err != nil {
		return nil, err
	}
	from, err := parseTime(q, "from", to.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, problem.BadParam("from", "must be before to")
	}
	if to.Sub(from)/b.d > MaxBuckets {
		return nil, problem.BadParam("bucket", "makes more than 10000 buckets for this range; choose a wider bucket")
	}
	sf := eventstore.StatsFilter{From: from, To: to, Bucket: b.b, TagPattern: q.Get("tag")}
	if sf.TagPattern != "" {
		if err := subject.ValidatePattern(sf.TagPattern); err != nil {
			return nil, problem.BadParam("tag", err.Error())
		}
	}
	if err := limitStats(r.Context(), &sf); err != nil {
		return nil, err
	}
	counts, err := s.r.Stats(r.Context(), sf)
	if err != nil {
		return nil, err
	}
	if counts == nil {
		counts = []eventstore.Count{}
	}
	return &Stats{From: from, To: to, Bucket: name, Counts: counts}, nil
}
