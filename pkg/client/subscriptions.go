package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// SubscriptionSpec is what a subscriber asks for.
type SubscriptionSpec struct {
	// URL receives the events: https://… (a signed webhook, or Slack with
	// Type "slack") or mailto:… (email).
	URL         string             `json:"url"`
	Type        string             `json:"type,omitempty"` // webhook, slack or email; empty: from the URL
	Tags        []string           `json:"tags"`           // patterns: DATABASE.*, TEST.>
	Description string             `json:"description,omitempty"`
	Headers     map[string]string  `json:"headers,omitempty"` // sent with every delivery
	Secret      string             `json:"secret,omitempty"`  // whsec_…; empty: the server makes one
	Batch       *SubscriptionBatch `json:"batch,omitempty"`
}

// SubscriptionBatch asks for several events per delivery, sent as a JSON
// array.
type SubscriptionBatch struct {
	MaxEvents int `json:"max_events"`
	MaxWaitMS int `json:"max_wait_ms"`
}

// Subscription is a subscription as the server keeps it.
type Subscription struct {
	ID           string             `json:"id"`
	Type         string             `json:"type"`
	URL          string             `json:"url"`
	Tags         []string           `json:"tags"`
	Description  string             `json:"description,omitempty"`
	Headers      map[string]string  `json:"headers,omitempty"`
	Batch        *SubscriptionBatch `json:"batch,omitempty"`
	State        string             `json:"state"`                  // active, paused or disabled
	StateReason  string             `json:"state_reason,omitempty"` // why the server disabled it
	FailingSince time.Time          `json:"failing_since,omitzero"` // deliveries fail since then
	StartSeq     uint64             `json:"start_seq"`              // the first seq it delivers
	CreatedAt    time.Time          `json:"created_at"`
	UpdatedAt    time.Time          `json:"updated_at"`
	// Secret signs deliveries. The server shows it only in the answer of
	// CreateSubscription.
	Secret string `json:"secret,omitempty"`
}

// CreateSubscription subscribes spec.URL to spec.Tags. Events published
// after it returns are delivered; the answer holds the signing secret,
// which the server never shows again.
func (c *Client) CreateSubscription(ctx context.Context, spec SubscriptionSpec) (*Subscription, error) {
	var s Subscription
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/subscriptions", body: spec}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Subscriptions lists every subscription (without secrets).
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	var out struct {
		Subscriptions []Subscription `json:"subscriptions"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/subscriptions", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Subscriptions, nil
}

// Subscription returns one subscription (without its secret).
func (c *Client) Subscription(ctx context.Context, id string) (*Subscription, error) {
	var s Subscription
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/subscriptions/" + url.PathEscape(id), idempotent: true}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// DeleteSubscription deletes a subscription and its consumers.
func (c *Client) DeleteSubscription(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/subscriptions/" + url.PathEscape(id), idempotent: true}, nil)
}

// ReplayRequest chooses the stored events to deliver again: those received
// from From (to To, when set), or without From every event after SinceSeq.
type ReplayRequest struct {
	SinceSeq uint64
	From, To time.Time
}

// Replay delivers stored events to a subscription again, through the same
// signing, retries and audit as live ones, and returns how many it queued.
func (c *Client) Replay(ctx context.Context, id string, r ReplayRequest) (queued int, err error) {
	body := map[string]any{}
	if r.From.IsZero() {
		body["since_seq"] = r.SinceSeq
	} else {
		body["from"] = r.From
		if !r.To.IsZero() {
			body["to"] = r.To
		}
	}
	var out struct {
		Queued int `json:"queued"`
	}
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/subscriptions/" + url.PathEscape(id) + "/replay", body: body}, &out)
	return out.Queued, err
}
