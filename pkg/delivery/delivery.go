// Package delivery defines the audit record of one delivery attempt: what
// the notifier publishes to the DELIVERIES stream for every attempt, what the
// store writes and what the query API serves.
package delivery

import (
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// Outcome is what an attempt led to.
type Outcome string

// Outcomes of an attempt.
const (
	// Delivered: the receiver accepted the delivery (2xx, or the mail
	// server accepted the message).
	Delivered Outcome = "delivered"
	// Retrying: the attempt failed and will be retried later.
	Retrying Outcome = "retrying"
	// DeadLettered: the attempt failed for good (a permanent error or the
	// retry schedule is exhausted); the event went to the dead letters.
	DeadLettered Outcome = "dead_lettered"
	// Disabled: the receiver answered 410 Gone or the subscription failed
	// for too long; the subscription was disabled.
	Disabled Outcome = "disabled"
)

// MaxResponse is the most bytes of a response body an attempt records.
const MaxResponse = 1024

// Attempt is one delivery attempt of one event to one subscription. A batch
// delivery records one Attempt per event in the batch, all with the same
// DeliveryID, status and latency.
type Attempt struct {
	// Seq is the DELIVERIES stream sequence, stamped by readers (0 in the
	// published payload). It is the cursor of attempt queries.
	Seq            uint64  `json:"seq,omitzero"`
	SubscriptionID string  `json:"subscription_id"`
	DeliveryID     string  `json:"delivery_id"` // the webhook-id header: stable across retries
	EventID        string  `json:"event_id"`
	EventSeq       uint64  `json:"event_seq"` // EVENTS stream sequence of the event
	Tag            string  `json:"tag"`
	Attempt        int     `json:"attempt"` // 1-based
	URL            string  `json:"url"`
	Outcome        Outcome `json:"outcome"`
	StatusCode     int     `json:"status_code,omitzero"` // HTTP (or SMTP) status; 0 when no response arrived
	LatencyMS      float64 `json:"latency_ms"`
	Error          string  `json:"error,omitempty"`
	// Response is at most MaxResponse bytes of the response body.
	Response string    `json:"response,omitempty"`
	Time     time.Time `json:"time"` // when the attempt started, UTC
}

// Failed reports whether the attempt did not deliver.
func (a *Attempt) Failed() bool { return a.Outcome != Delivered }

// Encode returns the JSON payload published to the DELIVERIES stream.
func Encode(a *Attempt) ([]byte, error) {
	return jsonv2.Marshal(a)
}

// Decode parses a published payload, ignoring unknown fields.
func Decode(b []byte, a *Attempt) error {
	if err := jsonv2.Unmarshal(b, a); err != nil {
		return fmt.Errorf("decode delivery attempt: %w", err)
	}
	return nil
}

// Status selects attempts by success.
type Status int

// Statuses of Filter.
const (
	Any    Status = iota
	OK            // Outcome is Delivered
	Failed        // Outcome is anything else
)

// Filter selects stored attempts. Exactly one of SubscriptionID and EventID
// is usually set; zero fields do not filter. Results are in ascending Seq.
type Filter struct {
	SubscriptionID string
	EventID        string
	Status         Status
	After          uint64 // Seq > After
	Through        uint64 // Seq <= Through; 0 means no upper bound
	Limit          int    // must be > 0
}
