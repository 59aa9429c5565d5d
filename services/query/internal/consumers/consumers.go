// Package consumers serves named HTTP consumers of the EVENTS stream, for
// dashboards and workers that cannot speak NATS: a consumer reads the events
// matching its tag patterns after its acknowledged position, acknowledges
// what it has processed, and finds its position again after a restart of
// either side. Until acknowledged, the same events come back on every read
// (at-least-once).
//
// A consumer is a record in the consumers key-value bucket (see
// stream.ConsumersBucket): its owner, its tags, how it started, the
// acknowledged sequence, the last delivered sequence and its creation
// time. It belongs to the client that created it: other clients neither
// see nor touch it (see API), and its tags lie within the client's
// consume patterns. Every change
// is a compare-and-swap on the record's revision. A read creates a
// short-lived consumer on EVENTS (no acknowledgements, memory storage,
// FilterSubjects from the tags, starting at acked+1), fetches and deletes
// it: what js.OrderedConsumer creates, without its reset before every
// fetch (a long-poll makes up to three) and its unbounded retries when the
// server does not answer (a request must fail with 503 instead). A gap in
// the consumer sequence (a message lost on the way) ends the read there,
// as an ordered consumer would reset there.
//
// A durable JetStream consumer per HTTP consumer was the alternative, and
// it does not fit: a fetched message that is not acknowledged is handed out
// again only after AckWait, so a client that reads again at once gets the
// next events instead of the same ones, and one that crashed waits AckWait
// for its events; its acknowledgements are per message where an HTTP
// consumer acknowledges "everything up to N"; seeking means deleting and
// recreating it; and the server keeps its state and pending set between
// reads. The record survives restarts like a durable consumer (file
// storage) and costs the server nothing between reads.
//
// last_delivered is the highest sequence through which every matching event
// has been returned by some read. A read that reaches the end of the
// matching events moves it to the stream's last sequence, past events that
// do not match, so a client that acknowledges last_delivered after each
// read keeps its lag at zero on a stream mostly made of other tags.
package consumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Limits of consumers and reads.
const (
	MaxLimit   = 10000            // most events a read returns
	MaxWait    = 30 * time.Second // longest long-poll of a read
	MaxTags    = 32               // most tag patterns of a consumer
	MaxNameLen = 64               // longest consumer name
)

// casAttempts bounds the compare-and-swap retries of one change to a
// record; more than a few means many clients write the same consumer.
const casAttempts = 10

// readInactive is how long the server keeps a read's consumer if the read
// could not delete it (the process died mid-read).
const readInactive = time.Minute

// Errors of consumer records.
var (
	errNotFound = errors.New("consumer not found")
	errExists   = errors.New("consumer exists")
	errBusy     = errors.New("consumer changed concurrently too often")
	errBadStart = &startError{`must be "new", "all", {"since_seq": N} or {"from": "<RFC 3339 time>"}`}
)

// startError says why a start is invalid.
type startError struct{ msg string }

func (e *startError) Error() string { return e.msg }

// FieldDetail is what the API says about the bad start value.
func (e *startError) FieldDetail() string { return e.msg }

// Kinds of Start.
const (
	StartNew      = "new"
	StartAll      = "all"
	StartSinceSeq = "since_seq"
	StartFrom     = "from"
)

// Start is where a new consumer's position begins: "new" (after the
// stream's last event), "all" (before its first), {"since_seq": N} (after
// sequence N) or {"from": T} (before the first event received at or after
// T). It is part of the consumer's definition: creating a consumer again
// with another start is a conflict.
type Start struct {
	Kind     string // StartNew, StartAll, StartSinceSeq or StartFrom; empty means StartNew
	SinceSeq uint64
	From     time.Time
}

// MarshalJSON writes the start as a client gives it.
func (s Start) MarshalJSON() ([]byte, error) {
	switch s.Kind {
	case StartSinceSeq:
		return []byte(`{"since_seq":` + strconv.FormatUint(s.SinceSeq, 10) + `}`), nil
	case StartFrom:
		return []byte(`{"from":"` + s.From.UTC().Format(time.RFC3339Nano) + `"}`), nil
	case StartAll:
		return []byte(`"all"`), nil
	default:
		return []byte(`"new"`), nil
	}
}

// UnmarshalJSON reads "new", "all", {"since_seq": N} or {"from": T}; null
// leaves the start unset.
func (s *Start) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	var name string
	if err := jsonv2.Unmarshal(b, &name); err == nil {
		if name != StartNew && name != StartAll {
			return errBadStart
		}
		*s = Start{Kind: name}
		return nil
	}
	var o struct {
		SinceSeq *uint64 `json:"since_seq"`
		From     *string `json:"from"`
	}
	if err := jsonv2.Unmarshal(b, &o, jsonv2.RejectUnknownMembers(true)); err != nil {
		return errBadStart
	}
	switch {
	case o.SinceSeq != nil && o.From == nil:
		*s = Start{Kind: StartSinceSeq, SinceSeq: *o.SinceSeq}
	case o.From != nil && o.SinceSeq == nil:
		t, err := event.ParseTime(*o.From)
		if err != nil {
			return &startError{"from " + err.Error()}
		}
		*s = Start{Kind: StartFrom, From: t}
	default:
		return errBadStart
	}
	return nil
}

// normalized returns the start with an empty kind made StartNew.
func (s Start) normalized() Start {
	if s.Kind == "" {
		s.Kind = StartNew
	}
	return s
}

// equal reports whether two starts are the same definition.
func (s Start) equal(o Start) bool {
	s, o = s.normalized(), o.normalized()
	return s.Kind == o.Kind && s.SinceSeq == o.SinceSeq && s.From.Equal(o.From)
}

// record is a consumer as the bucket keeps it.
type record struct {
	// Owner is the client that created the consumer (access.Principal.
	// Owner): its id, "admin" for the admin token, empty with
	// authentication off and on records written before consumers had
	// owners (only admins reach those then).
	Owner         string    `json:"owner,omitempty"`
	Tags          []string  `json:"tags"`
	Start         Start     `json:"start"`
	Acked         uint64    `json:"acked"`
	LastDelivered uint64    `json:"last_delivered"`
	Created       time.Time `json:"created"`
}

// sameDefinition reports whether r was created from the same tags and start.
func (r *record) sameDefinition(tags []string, start Start) bool {
	return slices.Equal(r.Tags, tags) && r.Start.equal(start)
}

// validName reports whether name can name a consumer (and so be a bucket
// key): 1–64 ASCII letters, digits, '_' and '-'.
func validName(name string) bool {
	if name == "" || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// records keeps consumers in the key-value bucket, one key per name.
type records struct {
	kv jetstream.KeyValue
}

func (s records) get(ctx context.Context, name string) (record, uint64, error) {
	var r record
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r, 0, errNotFound
	}
	if err != nil {
		return r, 0, fmt.Errorf("get consumer %s: %w", name, err)
	}
	if err := jsonv2.Unmarshal(e.Value(), &r); err != nil {
		return r, 0, fmt.Errorf("decode consumer %s: %w", name, err)
	}
	return r, e.Revision(), nil
}

func (s records) create(ctx context.Context, name string, r record) error {
	b, err := jsonv2.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode consumer %s: %w", name, err)
	}
	if _, err := s.kv.Create(ctx, name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errExists
		}
		return fmt.Errorf("create consumer %s: %w", name, err)
	}
	return nil
}

// update changes a record with fn, retrying when another writer changed it
// first. fn may refuse with an error, or return false to leave the record
// as it is. update returns the record as stored afterwards.
func (s records) update(ctx context.Context, name string, fn func(*record) (bool, error)) (record, error) {
	for range casAttempts {
		r, rev, err := s.get(ctx, name)
		if err != nil {
			return r, err
		}
		changed, err := fn(&r)
		if err != nil || !changed {
			return r, err
		}
		b, err := jsonv2.Marshal(r)
		if err != nil {
			return r, fmt.Errorf("encode consumer %s: %w", name, err)
		}
		_, err = s.kv.Update(ctx, name, b, rev)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return r, fmt.Errorf("update consumer %s: %w", name, err)
		}
	}
	return record{}, errBusy
}

// delete deletes a record if check, given the stored record, allows it.
func (s records) delete(ctx context.Context, name string, check func(*record) error) error {
	for range casAttempts {
		r, rev, err := s.get(ctx, name)
		if err != nil {
			return err
		}
		if err := check(&r); err != nil {
			return err
		}
		err = s.kv.Delete(ctx, name, jetstream.LastRevision(rev))
		if err == nil {
			return nil
		}
		if !isWrongRevision(err) {
			return fmt.Errorf("delete consumer %s: %w", name, err)
		}
	}
	return errBusy
}

// isWrongRevision reports whether a conditional write lost to another
// writer.
func isWrongRevision(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// names returns the names of every consumer, sorted.
func (s records) names(ctx context.Context) ([]string, error) {
	l, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	defer l.Stop()
	var names []string
	for k := range l.Keys() {
		names = append(names, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// streams finds the EVENTS stream; reads create and delete short-lived
// consumers on it.
type streams interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
}

// bounds are the stream's first and last sequences when a request began.
type bounds struct {
	first, last uint64
}

// floor is the lowest position that still means something: just before
// the first event the stream holds.
func (b bounds) floor() uint64 {
	if b.first == 0 {
		return 0
	}
	return min(b.first-1, b.last)
}

// events returns the EVENTS stream and its bounds.
func events(ctx context.Context, js streams) (jetstream.Stream, bounds, error) {
	st, err := js.Stream(ctx, stream.Events)
	if err != nil {
		return nil, bounds{}, fmt.Errorf("stream %s: %w", stream.Events, err)
	}
	s := st.CachedInfo().State
	return st, bounds{first: s.FirstSeq, last: s.LastSeq}, nil
}

// reader is one short-lived consumer on EVENTS.
type reader struct {
	st   jetstream.Stream
	cons jetstream.Consumer
}

// openReader creates a consumer of the events matching tags from sequence
// from on (or from time at, when not zero); with headersOnly it skips the
// payloads. Close it.
func openReader(ctx context.Context, st jetstream.Stream, tags []string, from uint64, at time.Time, headersOnly bool) (*reader, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(from, 1),
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: readInactive,
		Replicas:          1,
		MemoryStorage:     true,
		HeadersOnly:       headersOnly,
	}
	if !at.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &at
	}
	if f := subject.Filters(tags); len(f) == 1 {
		cfg.FilterSubject = f[0]
	} else {
		cfg.FilterSubjects = f
	}
	cons, err := st.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create read consumer: %w", err)
	}
	return &reader{st: st, cons: cons}, nil
}

// pending is how many matching events the consumer had to deliver when it
// was created.
func (r *reader) pending() uint64 { return r.cons.CachedInfo().NumPending }

// release closes a reader, logging a failure: the server deletes the
// consumer itself after readInactive.
func (a *API) release(ctx context.Context, rd *reader, name string) {
	if err := rd.close(ctx); err != nil {
		a.log.Warn("delete read consumer", "consumer", name, "err", err)
	}
}

// close deletes the consumer, even when the request was cancelled.
func (r *reader) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := r.st.DeleteConsumer(ctx, r.cons.CachedInfo().Name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete read consumer: %w", err)
	}
	return nil
}

// message is a delivered message and its metadata.
type message struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
}

// fetch returns up to n messages available now.
func (r *reader) fetch(n int) ([]message, error) {
	b, err := r.cons.FetchNoWait(n)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return collect(b)
}

// next waits until ctx is done for one message; none is not an error.
func (r *reader) next(ctx context.Context) ([]message, error) {
	b, err := r.cons.Fetch(1, jetstream.FetchContext(ctx))
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, jetstream.ErrInvalidOption) {
			return nil, nil // the deadline passed before the pull was sent
		}
		return nil, fmt.Errorf("fetch: %w", err)
	}
	ms, err := collect(b)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return ms, nil
	}
	return ms, err
}

func collect(b jetstream.MessageBatch) ([]message, error) {
	var ms []message
	for m := range b.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			return ms, fmt.Errorf("metadata: %w", err)
		}
		ms = append(ms, message{m, meta})
	}
	if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return ms, fmt.Errorf("fetch: %w", err)
	}
	return ms, nil
}

// Batch is the answer of a read: the events and the consumer's position
// after it.
type Batch struct {
	Events        []event.Event `json:"events"`
	Acked         uint64        `json:"acked"`
	LastDelivered uint64        `json:"last_delivered"`
}

// read returns up to limit events matching the consumer's tags after its
// acknowledged position, waiting up to wait for the first when none is
// there, and moves last_delivered past what it returned.
func (a *API) read(ctx context.Context, name string, limit int, wait time.Duration) (*Batch, error) {
	p := access.From(ctx)
	rec, err := a.own(ctx, p, name)
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(rec.Tags, func(t string) bool { return !p.Covers(access.Consume, t) }); i >= 0 {
		return nil, access.Forbidden(fmt.Sprintf("consumer %q reads %q, which is no longer within the client's consume patterns; delete it and create it again", name, rec.Tags[i]))
	}
	st, b, err := events(ctx, a.js)
	if err != nil {
		return nil, err
	}
	rd, err := openReader(ctx, st, rec.Tags, rec.Acked+1, time.Time{}, false)
	if err != nil {
		return nil, err
	}
	defer a.release(ctx, rd, name)

	var ms []message
	switch {
	case rd.pending() > 0:
		ms, err = rd.fetch(limit)
	case wait > 0:
		wctx, cancel := context.WithTimeout(ctx, wait)
		ms, err = rd.next(wctx)
		cancel()
		if err == nil && len(ms) == 1 && limit > 1 && ms[0].meta.NumPending > 0 {
			var more []message
			more, err = rd.fetch(limit - 1)
			ms = append(ms, more...)
		}
	}
	if err != nil {
		return nil, err
	}

	// Keep the messages up to the first gap in the consumer sequence
	// (a message lost on the way); the next read starts again from the
	// acknowledged position anyway.
	complete := true
	for i, m := range ms {
		if m.meta.Sequence.Consumer != uint64(i+1) {
			ms, complete = ms[:i], false
			break
		}
	}
	// horizon: every matching event up to it was delivered by this read.
	var horizon uint64
	switch {
	case len(ms) > 0:
		last := ms[len(ms)-1].meta
		horizon = last.Sequence.Stream
		if complete && last.NumPending == 0 {
			horizon = max(horizon, b.last)
		}
	case complete && rd.pending() == 0:
		horizon = b.last
	}

	out := &Batch{Events: make([]event.Event, 0, len(ms))}
	for _, m := range ms {
		if m.meta.Sequence.Stream <= rec.Acked {
			continue // the stream was reset below the position
		}
		e, err := stream.DecodeEvent(m.msg)
		if err != nil {
			// The store dead-letters such messages; a consumer skips them.
			a.log.Warn("skip undecodable event", "consumer", name, "stream_seq", m.meta.Sequence.Stream, "err", err)
			continue
		}
		out.Events = append(out.Events, e)
	}

	after, err := a.update(ctx, p, name, func(r *record) (bool, error) {
		// Only a record that still continues from where this read began:
		// not one deleted and created again, nor one sought back.
		if !r.Created.Equal(rec.Created) || r.Acked < rec.Acked || horizon <= r.LastDelivered {
			return false, nil
		}
		r.LastDelivered = horizon
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out.Acked, out.LastDelivered = after.Acked, after.LastDelivered
	return out, nil
}

// initialPosition resolves where a new consumer starts.
func (a *API) initialPosition(ctx context.Context, st jetstream.Stream, b bounds, s Start) (uint64, error) {
	switch s.Kind {
	case StartAll:
		return b.floor(), nil
	case StartSinceSeq:
		return max(s.SinceSeq, b.floor()), nil
	case StartFrom:
		rd, err := openReader(ctx, st, []string{">"}, 0, s.From, true)
		if err != nil {
			return 0, err
		}
		defer a.release(ctx, rd, "")
		if rd.pending() == 0 {
			return b.last, nil
		}
		ms, err := rd.fetch(1)
		if err != nil {
			return 0, err
		}
		if len(ms) == 0 {
			return b.last, nil
		}
		return ms[0].meta.Sequence.Stream - 1, nil
	default:
		return b.last, nil
	}
}

// Lag is how far a consumer is behind the stream.
type Lag struct {
	// Events is how many events of the stream, matching or not, follow
	// the acknowledged position.
	Events uint64 `json:"events"`
	// AgeSeconds is the age of the oldest matching event not acknowledged
	// yet, 0 when none is pending.
	AgeSeconds float64 `json:"age_seconds"`
}

// Consumer is a consumer as the API shows it.
type Consumer struct {
	Name          string    `json:"name"`
	Owner         string    `json:"owner,omitempty"`
	Tags          []string  `json:"tags"`
	Start         Start     `json:"start"`
	Created       time.Time `json:"created"`
	Acked         uint64    `json:"acked"`
	LastDelivered uint64    `json:"last_delivered"`
	// Pending is how many matching events follow the acknowledged position.
	Pending uint64 `json:"pending"`
	Lag     Lag    `json:"lag"`
}

// describe returns a consumer with its pending count and lag.
func (a *API) describe(ctx context.Context, st jetstream.Stream, b bounds, name string, rec record) (Consumer, error) {
	c := Consumer{
		Name: name, Owner: rec.Owner, Tags: rec.Tags, Start: rec.Start.normalized(), Created: rec.Created,
		Acked: rec.Acked, LastDelivered: rec.LastDelivered,
	}
	if pos := max(rec.Acked, b.floor()); b.last > pos {
		c.Lag.Events = b.last - pos
	}
	rd, err := openReader(ctx, st, rec.Tags, rec.Acked+1, time.Time{}, true)
	if err != nil {
		return c, err
	}
	defer a.release(ctx, rd, name)
	if c.Pending = rd.pending(); c.Pending == 0 {
		return c, nil
	}
	ms, err := rd.fetch(1)
	if err != nil {
		return c, err
	}
	if len(ms) > 0 {
		if age := a.now().Sub(ms[0].meta.Timestamp); age > 0 {
			c.Lag.AgeSeconds = float64(age.Round(time.Millisecond)) / float64(time.Second)
		}
	}
	return c, nil
}
