package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
)

// Start is where a new consumer's position begins. The zero value is
// StartNew.
type Start struct {
	kind string // "", "all", "since_seq" or "from"
	seq  uint64
	from time.Time
}

// StartNew starts a consumer after the stream's last event: it reads only
// events stored from now on.
func StartNew() Start { return Start{} }

// StartAll starts a consumer before the stream's first event.
func StartAll() Start { return Start{kind: "all"} }

// StartAfter starts a consumer after the event with stream sequence seq.
func StartAfter(seq uint64) Start { return Start{kind: "since_seq", seq: seq} }

// StartAt starts a consumer before the first event received at or after t.
func StartAt(t time.Time) Start { return Start{kind: "from", from: t} }

// String returns the start as the API writes it.
func (s Start) String() string {
	b, _ := s.MarshalJSON() // a Start always encodes
	return string(b)
}

// MarshalJSON writes "new", "all", {"since_seq": N} or {"from": T}.
func (s Start) MarshalJSON() ([]byte, error) {
	switch s.kind {
	case "all":
		return []byte(`"all"`), nil
	case "since_seq":
		return []byte(`{"since_seq":` + strconv.FormatUint(s.seq, 10) + `}`), nil
	case "from":
		return []byte(`{"from":"` + s.from.UTC().Format(time.RFC3339Nano) + `"}`), nil
	}
	return []byte(`"new"`), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Start) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		switch name {
		case "new":
			*s = StartNew()
		case "all":
			*s = StartAll()
		default:
			return errors.New(`start: want "new", "all", {"since_seq": N} or {"from": T}`)
		}
		return nil
	}
	var o struct {
		SinceSeq *uint64   `json:"since_seq"`
		From     time.Time `json:"from"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	if o.SinceSeq != nil {
		*s = StartAfter(*o.SinceSeq)
	} else {
		*s = StartAt(o.From)
	}
	return nil
}

// Consumer is a named consumer of stored events: it reads the events
// matching its tags after its acknowledged position, and finds that
// position again after restarts of either side.
type Consumer struct {
	Name    string    `json:"name"`
	Tags    []string  `json:"tags"`
	Start   Start     `json:"start"`
	Created time.Time `json:"created"`
	// Acked is the seq through which the consumer has acknowledged.
	Acked uint64 `json:"acked"`
	// LastDelivered is the seq through which every matching event has
	// been returned by some read.
	LastDelivered uint64 `json:"last_delivered"`
	// Pending counts the matching events after Acked.
	Pending uint64 `json:"pending"`
	Lag     Lag    `json:"lag"`
}

// Lag is how far a consumer is behind the stream.
type Lag struct {
	Events     uint64  `json:"events"`      // events of the stream, matching or not, after Acked
	AgeSeconds float64 `json:"age_seconds"` // age of the oldest matching event not acknowledged
}

// Batch is what a read of a consumer returns: events in seq order, and
// its position. Acknowledge LastDelivered once the events are processed:
// it is past the events that did not match too.
type Batch struct {
	Events        []event.Event `json:"events"`
	Acked         uint64        `json:"acked"`
	LastDelivered uint64        `json:"last_delivered"`
}

// Position is a consumer's position after an acknowledgement or a seek.
type Position struct {
	Acked         uint64 `json:"acked"`
	LastDelivered uint64 `json:"last_delivered"`
}

// consumerPath is the path of a consumer; names are 1–64 of [A-Za-z0-9_-].
func consumerPath(name string) string { return "/v1/consumers/" + url.PathEscape(name) }

// CreateConsumer creates the consumer name reading the events that match
// tags (patterns with NATS wildcards) from start. Creating it again with the
// same definition returns it as it is; with another it is a 409 *Error.
func (c *Client) CreateConsumer(ctx context.Context, name string, tags []string, start Start) (*Consumer, error) {
	body := struct {
		Tags  []string `json:"tags"`
		Start Start    `json:"start"`
	}{tags, start}
	var out Consumer
	if err := c.do(ctx, request{method: http.MethodPut, path: consumerPath(name), body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Consumer returns one consumer with its pending count and lag.
func (c *Client) Consumer(ctx context.Context, name string) (*Consumer, error) {
	var out Consumer
	if err := c.do(ctx, request{method: http.MethodGet, path: consumerPath(name), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Consumers lists every consumer.
func (c *Client) Consumers(ctx context.Context) ([]Consumer, error) {
	var out struct {
		Consumers []Consumer `json:"consumers"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/consumers", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Consumers, nil
}

// DeleteConsumer deletes a consumer and its position.
func (c *Client) DeleteConsumer(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: consumerPath(name), idempotent: true}, nil)
}

// Next reads up to limit events (zero: DefaultLimit) after the consumer's
// acknowledged position, waiting up to wait (at most 30 s) for the first
// one when there is none yet. Until acknowledged, the same events come back
// on every read: at least once.
func (c *Client) Next(ctx context.Context, name string, limit int, wait time.Duration) (*Batch, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}, "wait": {wait.String()}}
	var out Batch
	if err := c.do(ctx, request{method: http.MethodGet, path: consumerPath(name) + "/events", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Ack records that the consumer has processed every event through seq
// (from its acknowledged position to the last delivered one).
func (c *Client) Ack(ctx context.Context, name string, seq uint64) (*Position, error) {
	return c.position(ctx, consumerPath(name)+"/ack", seq)
}

// Seek moves the consumer's position to seq, forwards or back: the events
// after it are delivered (again).
func (c *Client) Seek(ctx context.Context, name string, seq uint64) (*Position, error) {
	return c.position(ctx, consumerPath(name)+"/seek", seq)
}

func (c *Client) position(ctx context.Context, path string, seq uint64) (*Position, error) {
	body := struct {
		Seq uint64 `json:"seq"`
	}{seq}
	var out Position
	// Both set the position to seq: sending them twice is harmless.
	if err := c.do(ctx, request{method: http.MethodPost, path: path, body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
