package notifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/pkg/webhook"
)

// Type is the channel a subscription delivers through.
type Type string

// Channels.
const (
	Webhook Type = "webhook" // signed JSON POST (Standard Webhooks)
	Slack   Type = "slack"   // Slack-compatible incoming webhook, text formatting
	Email   Type = "email"   // mail over SMTP to a mailto: URL
)

// State is whether a subscription delivers.
type State string

// States of a subscription.
const (
	Active   State = "active"
	Paused   State = "paused"   // by a user; events wait in its consumer
	Disabled State = "disabled" // by the notifier (410 Gone, failing too long); resume re-enables
)

// Limits of a subscription.
const (
	MaxTags        = 32
	MaxHeaders     = 20
	MaxBatchEvents = 1000
	MaxBatchWait   = 60_000 // ms
	defaultWait    = 1000   // ms, when a batch gives no wait
)

// Batch asks for several events per request: a JSON array of up to
// MaxEvents events, sent when that many are waiting or MaxWaitMS after the
// first of them. The rule is the same at creation and in PATCH:
//
//   - max_events is 1 to MaxBatchEvents; 1 sends every event alone, as a
//     single object, like no batching. 0 is refused: a batch object asks
//     for batching, and a missing or zero max_events is a mistake to
//     report, not a request to turn batching off.
//   - max_wait_ms is 0 to MaxBatchWait; 0 (or leaving it out) means 1000.
//   - "batch": null, or no batch at creation, means no batching; null is
//     the one way to turn batching off. A batch object in PATCH replaces
//     the stored one whole.
type Batch struct {
	MaxEvents int `json:"max_events"`
	MaxWaitMS int `json:"max_wait_ms"`
}

// checkBatch lists what b breaks of the batch rule; nil is no batching.
func checkBatch(b *Batch) []problem.FieldError {
	if b == nil {
		return nil
	}
	var errs []problem.FieldError
	if b.MaxEvents < 1 || b.MaxEvents > MaxBatchEvents {
		errs = append(errs, problem.FieldError{Pointer: "/batch/max_events", Detail: fmt.Sprintf(
			"must be from 1 to %d (use \"batch\": null for no batching)", MaxBatchEvents)})
	}
	if b.MaxWaitMS < 0 || b.MaxWaitMS > MaxBatchWait {
		errs = append(errs, problem.FieldError{Pointer: "/batch/max_wait_ms", Detail: fmt.Sprintf("must be from 0 to %d", MaxBatchWait)})
	}
	return errs
}

// Subscription is a subscriber's request: events whose tags match Tags go to
// URL through the channel Type.
type Subscription struct {
	ID string `json:"id"`
	// Owner is the client that created the subscription (its id; "admin"
	// for the admin token; empty with authentication off, and on every
	// subscription created before subscriptions had owners). Only the
	// owner and admins see or change it.
	Owner       string   `json:"owner,omitempty"`
	Type        Type     `json:"type"`
	URL         string   `json:"url"`
	Tags        []string `json:"tags"`
	Description string   `json:"description,omitempty"`
	// Headers are sent with every delivery. Their values are write-only:
	// the API shows them as Masked (see masked).
	Headers map[string]string `json:"headers,omitempty"`
	Batch   *Batch            `json:"batch,omitempty"`
	State   State             `json:"state"`
	// StateReason says why the notifier disabled the subscription.
	StateReason string `json:"state_reason,omitempty"`
	// FailingSince is when deliveries started failing without a success
	// since; zero while they succeed.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// StartSeq is the first EVENTS sequence the subscription may deliver:
	// the stream's next sequence when it was created.
	StartSeq  uint64    `json:"start_seq"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Secrets sign deliveries; they are stored in the bucket (sealed when
	// a secrets key is configured: HMAC needs them, so they cannot be
	// hashed) and never served after creation or rotation.
	Secrets []Secret `json:"-"`
}

// Masked is what the API shows instead of a header value. A PATCH that
// sends it back as a header's value keeps the stored value.
const Masked = "********"

// masked returns a copy of s to show: header values replaced by Masked.
func (s *Subscription) masked() *Subscription {
	c := *s
	if s.Headers != nil {
		c.Headers = make(map[string]string, len(s.Headers))
		for k := range s.Headers {
			c.Headers[k] = Masked
		}
	}
	c.Secrets = nil
	return &c
}

// Secret is a signing secret. A rotated-out secret signs until NotAfter.
type Secret struct {
	Value    string    `json:"value"`
	NotAfter time.Time `json:"not_after,omitzero"`
}

// record is a subscription as the bucket holds it: with its secrets, and
// with the signing secrets and header values sealed for its id when a
// key is configured.
type record struct {
	*Subscription `json:",inline"`
	Secrets       []Secret `json:"secrets"`
}

// encode returns the bucket value of s, sealing its secrets and header
// values with the current key (so that every write re-seals values kept
// in clear or sealed with an old key).
func (r *repo) encode(s *Subscription) ([]byte, error) {
	c := *s
	c.Headers = nil
	if s.Headers != nil {
		c.Headers = make(map[string]string, len(s.Headers))
		for k, v := range s.Headers {
			sv, err := r.keyring.SealFor(v, s.ID)
			if err != nil {
				return nil, fmt.Errorf("seal header %s of %s: %w", k, s.ID, err)
			}
			c.Headers[k] = sv
		}
	}
	secrets := make([]Secret, len(s.Secrets))
	for i, sec := range s.Secrets {
		v, err := r.keyring.SealFor(sec.Value, s.ID)
		if err != nil {
			return nil, fmt.Errorf("seal signing secret of %s: %w", s.ID, err)
		}
		secrets[i] = Secret{Value: v, NotAfter: sec.NotAfter}
	}
	return jsonv2.Marshal(record{&c, secrets})
}

// decode reads a bucket value into s, opening sealed values (values
// written in clear before a key was configured open as they are). stale
// reports whether a value is not sealed with the current key.
func (r *repo) decode(b []byte, s *Subscription) (stale bool, err error) {
	rec := record{Subscription: s}
	if err := jsonv2.Unmarshal(b, &rec); err != nil {
		return false, fmt.Errorf("decode subscription: %w", err)
	}
	open := func(v string) (string, error) {
		stale = stale || r.keyring.NeedsReseal(v)
		return r.keyring.OpenFor(v, s.ID)
	}
	for k, v := range s.Headers {
		if s.Headers[k], err = open(v); err != nil {
			return false, fmt.Errorf("open header %s of %s: %w", k, s.ID, err)
		}
	}
	s.Secrets = rec.Secrets
	for i := range s.Secrets {
		if s.Secrets[i].Value, err = open(s.Secrets[i].Value); err != nil {
			return false, fmt.Errorf("open signing secret of %s: %w", s.ID, err)
		}
	}
	return stale, nil
}

// keys returns the signing keys in effect at now, newest first.
func (s *Subscription) keys(now time.Time) ([][]byte, error) {
	var keys [][]byte
	for i := len(s.Secrets) - 1; i >= 0; i-- {
		sec := s.Secrets[i]
		if !sec.NotAfter.IsZero() && !now.Before(sec.NotAfter) {
			continue
		}
		k, err := webhook.ParseSecret(sec.Value)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// spec is what a running worker is built from: a change restarts it.
// Everything else (URL, headers, secrets, tags) is read per delivery or
// lives in the consumer, so changing it keeps the worker delivering.
func (s *Subscription) spec() string {
	if s.Batch == nil {
		return string(s.Type)
	}
	return fmt.Sprintf("%s|%d/%d", s.Type, s.Batch.MaxEvents, s.Batch.MaxWaitMS)
}

// batchSize is how many events go into one request (1: no batching).
func (s *Subscription) batchSize() int {
	if s.Batch == nil || s.Batch.MaxEvents <= 1 {
		return 1
	}
	return s.Batch.MaxEvents
}

func (s *Subscription) batchWait() time.Duration {
	if s.Batch == nil || s.Batch.MaxWaitMS <= 0 {
		return defaultWait * time.Millisecond
	}
	return time.Duration(s.Batch.MaxWaitMS) * time.Millisecond
}

// newID returns a subscription id: sub_ and a UUIDv7 without dashes, so
// ids sort by creation and are valid in consumer names and subjects.
func newID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("subscription id: %w", err)
	}
	return "sub_" + strings.ReplaceAll(u.String(), "-", ""), nil
}

// validID reports whether id can be a subscription id (and so a bucket key,
// consumer name and subject token).
func validID(id string) bool {
	if !strings.HasPrefix(id, "sub_") || len(id) > 64 {
		return false
	}
	for _, c := range id[4:] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return len(id) > 4
}

// checkTags validates and normalizes a subscription's tag patterns; see
// subject.Normalize for what it does with duplicates and overlaps.
func checkTags(tags []string) ([]string, []problem.FieldError) {
	if len(tags) > MaxTags {
		return nil, []problem.FieldError{{Pointer: "/tags", Detail: fmt.Sprintf("must have at most %d patterns", MaxTags)}}
	}
	out, err := subject.Normalize(tags)
	var (
		invalid subject.PatternErrors
		overlap *subject.OverlapError
	)
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &invalid):
		errs := make([]problem.FieldError, len(invalid))
		for i, e := range invalid {
			errs[i] = problem.FieldError{Pointer: fmt.Sprintf("/tags/%d", e.Index), Detail: e.Error()}
		}
		return nil, errs
	case errors.As(err, &overlap):
		return nil, []problem.FieldError{{Pointer: "/tags", Detail: overlap.Error() + "; combine them into one pattern or use two subscriptions"}}
	default: // subject.ErrEmpty
		return nil, []problem.FieldError{{Pointer: "/tags", Detail: "is required: at least one tag pattern such as DATABASE.* or TEST.>"}}
	}
}

// errNotFound means no subscription has the id.
var errNotFound = errors.New("subscription not found")

// repo keeps subscriptions in the key-value bucket, one key per id.
type repo struct {
	kv      jetstream.KeyValue
	keyring *sealed.Keyring // nil: secrets and header values kept in clear
}

func (r *repo) get(ctx context.Context, id string) (*Subscription, uint64, error) {
	if !validID(id) {
		return nil, 0, errNotFound
	}
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, errNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get subscription %s: %w", id, err)
	}
	var s Subscription
	if _, err := r.decode(e.Value(), &s); err != nil {
		return nil, 0, err
	}
	return &s, e.Revision(), nil
}

func (r *repo) list(ctx context.Context) ([]*Subscription, error) {
	keys, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer keys.Stop() //nolint:errcheck // stopping a finished lister
	var subs []*Subscription
	for id := range keys.Keys() {
		s, _, err := r.get(ctx, id)
		if errors.Is(err, errNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		subs = append(subs, s)
	}
	slices.SortFunc(subs, func(a, b *Subscription) int { return strings.Compare(a.ID, b.ID) })
	return subs, nil
}

func (r *repo) create(ctx context.Context, s *Subscription) error {
	b, err := r.encode(s)
	if err != nil {
		return err
	}
	if _, err := r.kv.Create(ctx, s.ID, b); err != nil {
		return fmt.Errorf("create subscription %s: %w", s.ID, err)
	}
	return nil
}

// update applies fn to the stored subscription and writes it back if the
// bucket still holds the version read, retrying on concurrent changes.
// fn returning errUnchanged skips the write.
func (r *repo) update(ctx context.Context, id string, fn func(*Subscription) error) (*Subscription, error) {
	for range 10 {
		s, rev, err := r.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(s); errors.Is(err, errUnchanged) {
			return s, nil
		} else if err != nil {
			return nil, err
		}
		b, err := r.encode(s)
		if err != nil {
			return nil, err
		}
		_, err = r.kv.Update(ctx, id, b, rev)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("update subscription %s: %w", id, err)
		}
	}
	return nil, fmt.Errorf("update subscription %s: too many concurrent changes", id)
}

// errUnchanged tells update that fn changed nothing.
var errUnchanged = errors.New("unchanged")

// delete removes a subscription if check, given the stored one, allows it.
func (r *repo) delete(ctx context.Context, id string, check func(*Subscription) error) error {
	for range 10 {
		s, rev, err := r.get(ctx, id)
		if err != nil {
			return err
		}
		if err := check(s); err != nil {
			return err
		}
		err = r.kv.Delete(ctx, id, jetstream.LastRevision(rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // changed meanwhile: check the new version
		}
		if err != nil {
			return fmt.Errorf("delete subscription %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("delete subscription %s: too many concurrent changes", id)
}

// reseal writes a subscription again if one of its secrets or header
// values is not sealed with the current key, so that old keys can be
// dropped once every instance ran with the new one.
func (r *repo) reseal(ctx context.Context, id string) error {
	for range 10 {
		e, err := r.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get subscription %s: %w", id, err)
		}
		var s Subscription
		stale, err := r.decode(e.Value(), &s)
		if err != nil || !stale {
			return err
		}
		b, err := r.encode(&s)
		if err != nil {
			return err
		}
		_, err = r.kv.Update(ctx, id, b, e.Revision())
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if err != nil {
				return fmt.Errorf("reseal subscription %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("reseal subscription %s: too many concurrent changes", id)
}
