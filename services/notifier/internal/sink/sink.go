// Package sink holds the channels the notifier delivers through (webhooks,
// Slack-compatible incoming webhooks, email over SMTP) and the contract they
// share: a Message in, a Result out that says whether to retry.
//
// Adding a channel means writing a type with
//
//	Send(ctx context.Context, m *Message) Result
//
// that classifies every failure as Retry, Reject or Gone, and registering it
// for its subscription type in the notifier.
package sink

import (
	"time"

	"github.com/eventsync/eventsync/pkg/event"
)

// Message is one delivery: one event, or a batch of events, to one target.
type Message struct {
	ID      string            // webhook-id: the same on every retry of this delivery
	Time    time.Time         // when this attempt is made (webhook-timestamp)
	Target  string            // https://… for webhooks and Slack, mailto:… for email
	Headers map[string]string // the subscriber's extra request headers (webhooks)
	Secrets [][]byte          // signing keys, newest first; more than one while a secret rotates
	Body    []byte            // JSON: the stored event, or an array of them for a batch
	Events  []event.Event     // the same events decoded, for channels that format text
}

// Verdict is what the notifier does after an attempt.
type Verdict int

// Verdicts of an attempt.
const (
	// Delivered: done, acknowledge.
	Delivered Verdict = iota
	// Retry: a transient failure (timeout, connection error, 408, 429, 5xx,
	// SMTP 4xx); try again later by the retry schedule.
	Retry
	// Reject: a permanent failure (other 4xx, SMTP 5xx); no retry, the
	// events go to the dead letters at once.
	Reject
	// Gone: the target says it is gone for good (HTTP 410); disable the
	// subscription.
	Gone
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Reject:
		return "reject"
	case Gone:
		return "gone"
	}
	return "unknown"
}

// Result is the outcome of one attempt.
type Result struct {
	Verdict    Verdict
	Status     int           // HTTP or SMTP status code; 0 when no response arrived
	RetryAfter time.Duration // the receiver's Retry-After (429, 503); 0 when absent
	Response   string        // at most 1 KiB of the response body, for the audit
	Err        error         // why the attempt failed; nil when delivered
}
