package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Replays copy events into the REDRIVE stream on the subscription's own
// subject; the subscription's redrive consumer delivers them through the
// same signing, retry, dead-letter and audit path as live events. The copy
// holds the event as stored (with its seq), so a replayed delivery has the
// same body and webhook-id as the original. A replay copies only events
// matching the subscription's tag patterns, and every copy passes the
// owner check at delivery like a live event: a client cannot replay its
// way to tags it may no longer subscribe to.

// replayRequest is the body of POST /v1/subscriptions/{id}/replay: a time
// range (when EventSync received the events) or a sequence cursor.
type replayRequest struct {
	From     *time.Time `json:"from"`
	To       *time.Time `json:"to"`
	SinceSeq *uint64    `json:"since_seq"`
}

// replayed is the answer of a replay: how many events were queued.
type replayed struct {
	Queued  int `json:"queued"`
	Skipped int `json:"skipped,omitzero"`
}

func (s *Service) replay(r *http.Request) (response, error) {
	var in replayRequest
	if err := decodeBody(r, &in); err != nil {
		return response{}, err
	}
	switch {
	case in.SinceSeq != nil && (in.From != nil || in.To != nil):
		return response{}, problem.Invalid("give either since_seq or from/to, not both", problem.FieldError{Pointer: "/since_seq", Detail: "cannot be combined with from/to"})
	case in.SinceSeq == nil && in.From == nil:
		return response{}, problem.Invalid("give since_seq or from (and optionally to)", problem.FieldError{Pointer: "/from", Detail: "is required without since_seq"})
	case in.From != nil && in.To != nil && !in.From.Before(*in.To):
		return response{}, problem.Invalid("from must be before to", problem.FieldError{Pointer: "/to", Detail: "must be after from"})
	}
	sub, _, err := s.subs.get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return response{}, err
	}
	if err := owned(r.Context(), sub); err != nil {
		return response{}, err
	}
	// Events published after the request are delivered live.
	_, last, err := s.lastSeq(r.Context(), stream.Events)
	if err != nil {
		return response{}, err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subject.Filters(sub.Tags)}
	if in.SinceSeq != nil {
		if *in.SinceSeq >= last {
			return response{http.StatusAccepted, replayed{}}, nil
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *in.SinceSeq+1
	} else {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, in.From
	}
	cons, err := s.js.OrderedConsumer(r.Context(), stream.Events, cfg)
	if err != nil {
		return response{}, fmt.Errorf("replay consumer: %w", err)
	}
	var n int
	err = s.copyAll(r.Context(), cons, last, func(c *copier, m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
		if in.To != nil && !meta.Timestamp.Before(*in.To) {
			return false, nil
		}
		e, err := stream.DecodeEvent(m)
		if err != nil {
			return true, nil // undecodable events were dead-lettered by the store
		}
		body, err := event.Encode(&e)
		if err != nil {
			return true, nil
		}
		n++
		return true, c.queue(sub.ID, body, e.Seq)
	})
	if err != nil {
		return response{}, err
	}
	s.log.Info("replay queued", "subscription", sub.ID, "events", n)
	return response{http.StatusAccepted, replayed{Queued: n}}, nil
}

// redriveDeadLetters moves a subscription's dead letters (or every
// subscription's, without the parameter) back to delivery. Each dead letter
// is deleted once its copy is queued; dead letters of deleted subscriptions
// are skipped and kept.
func (s *Service) redriveDeadLetters(r *http.Request) (response, error) {
	ctx := r.Context()
	id := r.URL.Query().Get("subscription")
	filter := stream.AllNotifyDeadLetters
	if id != "" {
		if _, _, err := s.subs.get(ctx, id); err != nil {
			if errors.Is(err, errNotFound) {
				return response{}, problem.BadParam("subscription", "must be the id of an existing subscription")
			}
			return response{}, err
		}
		filter = stream.NotifyDeadLetterFilter(id)
	}
	st, last, err := s.lastSeq(ctx, stream.DeadLetters)
	if err != nil {
		return response{}, err
	}
	cons, err := s.js.OrderedConsumer(ctx, stream.DeadLetters, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return response{}, fmt.Errorf("dead letter consumer: %w", err)
	}
	exists := map[string]bool{}
	var res replayed
	var queued []uint64 // DLQ sequences to delete once their copies are stored
	err = s.copyAll(ctx, cons, last, func(c *copier, m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
		sid, _, valid := stream.ParseNotifyDeadLetter(m.Subject())
		if !valid {
			res.Skipped++
			return true, nil
		}
		ok, seen := exists[sid]
		if !seen {
			_, _, err := s.subs.get(ctx, sid)
			if err != nil && !errors.Is(err, errNotFound) {
				return false, err
			}
			ok = err == nil
			exists[sid] = ok
		}
		if !ok {
			res.Skipped++
			return true, nil
		}
		var e event.Event
		if err := event.Decode(m.Data(), &e); err != nil {
			res.Skipped++
			return true, nil
		}
		res.Queued++
		queued = append(queued, meta.Sequence.Stream)
		return true, c.queue(sid, m.Data(), e.Seq)
	})
	if err != nil {
		return response{}, err
	}
	for _, seq := range queued {
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			s.log.Warn("delete re-driven dead letter", "stream_seq", seq, "err", err)
		}
	}
	s.log.Info("dead letters re-driven", "subscription", id, "events", res.Queued, "skipped", res.Skipped)
	return response{http.StatusAccepted, res}, nil
}

// lastSeq returns a stream and its last sequence.
func (s *Service) lastSeq(ctx context.Context, name string) (jetstream.Stream, uint64, error) {
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s info: %w", name, err)
	}
	return st, info.State.LastSeq, nil
}

// copier publishes copies to REDRIVE and tracks their acks.
type copier struct {
	js      jetStream
	futures []jetstream.PubAckFuture
}

// queue publishes one stored event to a subscription's redrive subject.
func (c *copier) queue(subID string, body []byte, seq uint64) error {
	m := nats.NewMsg(stream.RedriveSubject(subID))
	m.Data = body
	m.Header.Set(stream.HeaderStreamSeq, fmt.Sprint(seq))
	f, err := c.js.PublishMsgAsync(m, jetstream.WithExpectStream(stream.Redrive))
	if err != nil {
		return fmt.Errorf("queue for %s: %w", subID, err)
	}
	c.futures = append(c.futures, f)
	if len(c.futures) >= 4096 {
		return c.wait()
	}
	return nil
}

// wait waits for every queued copy to be acknowledged.
func (c *copier) wait() error {
	for _, f := range c.futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("queue copy: %w", err)
		}
	}
	c.futures = c.futures[:0]
	return nil
}

// copyAll reads cons up to stream sequence last, calling fn for each
// message until fn returns false, then waits until every copy is stored.
func (s *Service) copyAll(ctx context.Context, cons jetstream.Consumer, last uint64, fn func(*copier, jetstream.Msg, *jetstream.MsgMetadata) (bool, error)) error {
	c := &copier{js: s.js}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("replay fetch: %w", err)
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			if done {
				continue
			}
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("replay metadata: %w", err)
			}
			if meta.Sequence.Stream > last {
				done = true
				continue
			}
			more, err := fn(c, m, meta)
			if err != nil {
				return err
			}
			done = !more || meta.NumPending == 0 || meta.Sequence.Stream == last
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("replay fetch: %w", err)
		}
		if done || n == 0 || ctx.Err() != nil {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.wait()
}
