package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
)

// Limits of reads, as the server enforces them.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Filter selects stored events. Zero fields select everything.
type Filter struct {
	Since     uint64 // events with a greater seq (the cursor)
	Limit     int    // events per page, 1 to MaxLimit; zero: DefaultLimit
	Category  string
	Code      string
	Tag       string // a pattern with NATS wildcards: DATABASE.*, TEST.>
	SessionID string
	Source    string
	Severity  event.Severity // the least severity
	From, To  time.Time      // event time range, From inclusive, To exclusive
	// Newest asks for the newest events first (order=desc): the latest
	// Limit events, one page.
	Newest bool
}

func (f Filter) values() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Since > 0 {
		q.Set("since", strconv.FormatUint(f.Since, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	set("category", f.Category)
	set("code", f.Code)
	set("tag", f.Tag)
	set("session_id", f.SessionID)
	set("source", f.Source)
	if f.Severity != 0 {
		q.Set("severity", f.Severity.String())
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.UTC().Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.UTC().Format(time.RFC3339Nano))
	}
	if f.Newest {
		q.Set("order", "desc")
	}
	return q
}

// Page is one page of events in seq order. NextSince is the cursor of the
// next page: pass it as Filter.Since.
type Page struct {
	Events    []event.Event `json:"events"`
	NextSince uint64        `json:"next_since"`
}

// Query reads one page of stored events (GET /v1/events). It returns only
// events the store has committed, so a poller that follows NextSince never
// misses one.
func (c *Client) Query(ctx context.Context, f Filter) (*Page, error) {
	var p Page
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/events", query: f.values(), idempotent: true}, &p)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// Events iterates over every stored event that f selects, page by page in
// seq order, from f.Since until it has caught up with what is stored now.
// An error ends the iteration after it is yielded. With f.Newest it yields
// the one page of newest events.
func (c *Client) Events(ctx context.Context, f Filter) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		limit := f.Limit
		if limit <= 0 {
			limit = DefaultLimit
		}
		for {
			p, err := c.Query(ctx, f)
			if err != nil {
				yield(event.Event{}, err)
				return
			}
			for _, e := range p.Events {
				if !yield(e, nil) {
					return
				}
			}
			// A short page means everything up to the server's
			// watermark was returned.
			if f.Newest || len(p.Events) < limit || p.NextSince <= f.Since {
				return
			}
			f.Since = p.NextSince
		}
	}
}

// Session returns the events of one session in event-time order (then by
// seq), at most MaxLimit of them.
func (c *Client) Session(ctx context.Context, sessionID string) ([]event.Event, error) {
	var p struct {
		Events []event.Event `json:"events"`
	}
	q := url.Values{"limit": {strconv.Itoa(MaxLimit)}}
	err := c.do(ctx, request{
		method: http.MethodGet, path: "/v1/sessions/" + url.PathEscape(sessionID) + "/events", query: q, idempotent: true,
	}, &p)
	if err != nil {
		return nil, err
	}
	return p.Events, nil
}

// Event returns one stored event by id. An unknown id is an *Error with
// Status 404.
func (c *Client) Event(ctx context.Context, id string) (*event.Event, error) {
	var e event.Event
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/events/" + url.PathEscape(id), idempotent: true}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// StatsFilter selects the counts of Stats. Zero fields take the server's
// defaults: the last 24 hours by hour, every tag.
type StatsFilter struct {
	From, To time.Time
	Bucket   string // minute, hour or day
	Tag      string // a pattern with NATS wildcards
}

// Stats counts events per tag per time bucket.
type Stats struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Bucket string    `json:"bucket"`
	Counts []Count   `json:"counts"`
}

// Count is the number of events of one tag in one bucket.
type Count struct {
	Bucket time.Time `json:"bucket"` // its start
	Tag    string    `json:"tag"`
	Count  uint64    `json:"count"`
}

// Stats returns counts of events per tag per bucket (GET /v1/stats).
func (c *Client) Stats(ctx context.Context, f StatsFilter) (*Stats, error) {
	q := url.Values{}
	if !f.From.IsZero() {
		q.Set("from", f.From.UTC().Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.UTC().Format(time.RFC3339Nano))
	}
	if f.Bucket != "" {
		q.Set("bucket", f.Bucket)
	}
	if f.Tag != "" {
		q.Set("tag", f.Tag)
	}
	var s Stats
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/stats", query: q, idempotent: true}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
