package notifier

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/notifier/internal/sink"
)

// worker delivers one subscription's events on this instance: it pulls
// from the subscription's two consumers and runs up to Concurrency
// deliveries at once.
type worker struct {
	s    *Service
	spec string
	send sender
	sub  atomic.Pointer[Subscription] // the latest version seen in the bucket

	// failingSince is the unix nano time of the first failure without a
	// success since, 0 while deliveries succeed.
	failingSince atomic.Int64

	cancel   context.CancelFunc
	ccs      []jetstream.ConsumeContext
	inflight sync.WaitGroup
	done     chan struct{}
}

// errNoChannel means this instance cannot deliver a subscription's type
// (email without SMTP settings): starting its worker again cannot help.
var errNoChannel = errors.New("no channel configured for this subscription type")

// startWorker ensures the subscription's consumers and starts consuming.
func (s *Service) startWorker(ctx context.Context, sub *Subscription) (*worker, error) {
	send := s.senders[sub.Type]
	if send == nil {
		return nil, fmt.Errorf("%w: %s", errNoChannel, sub.Type)
	}
	live, redrive, err := s.ensureConsumers(ctx, sub)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &worker{s: s, spec: sub.spec(), send: send, cancel: cancel, done: make(chan struct{})}
	w.update(sub)

	msgs := make(chan pulled)
	handler := func(m jetstream.Msg) {
		select {
		case msgs <- pulled{m, time.Now()}:
		case <-wctx.Done():
			_ = m.Nak() // stopping: let another worker (or the next start) take it now
		}
	}
	// Pull no more than can be in flight, so that no message waits in this
	// process long enough for its AckWait to run out.
	pull := min(s.cfg.Concurrency, s.cfg.MaxPending)
	for _, c := range []jetstream.Consumer{live, redrive} {
		cc, err := c.Consume(handler,
			jetstream.PullMaxMessages(pull),
			jetstream.PullExpiry(5*time.Second),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				s.log.Debug("consume", "subscription", sub.ID, "err", err)
			}))
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("consume for %s: %w", sub.ID, err)
		}
		w.ccs = append(w.ccs, cc)
	}
	go w.loop(wctx, msgs)
	return w, nil
}

// update takes a new version of the subscription whose spec is unchanged.
func (w *worker) update(sub *Subscription) {
	w.sub.Store(sub)
	if sub.FailingSince.IsZero() {
		w.failingSince.Store(0)
	} else {
		w.failingSince.Store(sub.FailingSince.UnixNano())
	}
}

// stop stops pulling, hands back messages not yet started, and waits for
// deliveries in flight to settle.
func (w *worker) stop() {
	w.cancel()
	for _, cc := range w.ccs {
		cc.Drain()
	}
	for _, cc := range w.ccs {
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
			cc.Stop()
		}
	}
	if w.done != nil {
		select {
		case <-w.done:
		case <-time.After(w.s.cfg.Timeout + 5*time.Second):
		}
	}
	w.inflight.Wait()
}

// pulled is a message and when this worker received it.
type pulled struct {
	msg jetstream.Msg
	at  time.Time
}

// loop hands messages to deliveries, batching them when the subscription
// asks for it, with at most Concurrency deliveries in flight.
func (w *worker) loop(ctx context.Context, msgs <-chan pulled) {
	defer close(w.done)
	sem := make(chan struct{}, w.s.cfg.Concurrency)
	dispatch := func(batch []pulled) {
		sem <- struct{}{}
		w.inflight.Go(func() {
			defer func() { <-sem }()
			w.keepAlive(batch)
			// Deliveries in flight finish even while the worker stops.
			w.deliver(context.WithoutCancel(ctx), batch)
		})
	}
	// A batch never waits long enough for its AckWait to run out.
	size := w.sub.Load().batchSize()
	wait := min(w.sub.Load().batchWait(), (w.s.cfg.AckWait-w.s.cfg.Timeout)/2)
	if size == 1 {
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-msgs:
				dispatch([]pulled{p})
			}
		}
	}
	var batch []pulled
	timer := time.NewTimer(wait)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, p := range batch {
				_ = p.msg.Nak()
			}
			return
		case p := <-msgs:
			if len(batch) == 0 {
				timer.Reset(wait)
			}
			batch = append(batch, p)
			if len(batch) < size {
				continue
			}
			timer.Stop()
		case <-timer.C:
		}
		dispatch(batch)
		batch = nil
	}
}

// keepAlive resets the AckWait of messages that waited in this process for
// a while, so JetStream does not hand them to another instance while this
// one delivers them.
func (w *worker) keepAlive(batch []pulled) {
	limit := (w.s.cfg.AckWait - w.s.cfg.Timeout) / 2
	for _, p := range batch {
		if time.Since(p.at) > limit {
			_ = p.msg.InProgress()
		}
	}
}

// item is one message of a delivery and the event it holds.
type item struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	ev   event.Event
}

// deliver makes one attempt for a batch of messages (usually one) and
// settles every message: ack, retry later, or dead-letter.
func (w *worker) deliver(ctx context.Context, batch []pulled) {
	sub := w.sub.Load()
	items := make([]item, 0, len(batch))
	for _, p := range batch {
		it, err := decodeItem(p.msg)
		if err != nil {
			w.deadLetter(ctx, sub, it, 0, fmt.Sprintf("undecodable message: %v", err))
			continue
		}
		items = append(items, it)
	}
	items = w.allowed(ctx, sub, items)
	if len(items) == 0 {
		return
	}
	attempt := 1
	for _, it := range items {
		attempt = max(attempt, int(it.meta.NumDelivered))
	}
	now := w.s.now().UTC()
	msg, err := w.message(sub, items, now)
	if err != nil { // a stored secret that does not parse: nothing a retry fixes
		w.s.log.Error("build delivery", "subscription", sub.ID, "err", err)
		for _, it := range items {
			_ = it.msg.NakWithDelay(time.Minute)
		}
		return
	}
	sctx, cancel := context.WithTimeout(ctx, w.s.cfg.Timeout)
	start := time.Now()
	res := w.send.Send(sctx, msg)
	latency := time.Since(start)
	cancel()

	outcome, delay := w.s.decide(res, attempt)
	w.s.metrics.attempts.WithLabelValues(string(outcome)).Add(float64(len(items)))
	w.s.metrics.latency.Observe(latency.Seconds())
	w.audit(ctx, sub, msg.ID, items, attempt, res, outcome, latency, now)

	errText := ""
	if res.Err != nil {
		errText = res.Err.Error()
	}
	switch outcome {
	case delivery.Delivered:
		for _, it := range items {
			if err := it.msg.Ack(); err != nil {
				w.s.log.Warn("ack", "subscription", sub.ID, "stream_seq", it.meta.Sequence.Stream, "err", err)
			}
			w.s.metrics.lag.Observe(time.Since(it.ev.ReceivedAt).Seconds())
		}
		w.succeeded(ctx, sub.ID)
	case delivery.Retrying:
		for _, it := range items {
			_ = it.msg.NakWithDelay(delay)
		}
		w.s.log.Debug("delivery failed; retrying", "subscription", sub.ID, "attempt", attempt, "retry_in", delay, "status", res.Status, "err", errText)
		w.failed(ctx, sub.ID, now)
	case delivery.DeadLettered:
		for _, it := range items {
			w.deadLetter(ctx, sub, it, res.Status, errText)
		}
		w.s.log.Warn("delivery failed; dead-lettered", "subscription", sub.ID, "attempt", attempt, "status", res.Status, "err", errText, "events", len(items))
		w.failed(ctx, sub.ID, now)
	case delivery.Disabled:
		reason := fmt.Sprintf("the receiver answered %d Gone", res.Status)
		w.s.disable(ctx, sub.ID, reason)
		for _, it := range items {
			w.deadLetter(ctx, sub, it, res.Status, errText)
		}
	}
}

// Skipped is the outcome of an event that was not sent because the client
// owning the subscription may no longer receive it: the client was
// deleted or disabled, or its subscribe patterns no longer cover the
// event's tag. The attempt's error says which; the event is acknowledged,
// not retried.
const Skipped delivery.Outcome = "skipped"

// allowed returns the items the subscription's owner may still receive
// and settles the others: each is audited as Skipped with the reason and
// acknowledged. Subscriptions without an owner (created with
// authentication off, or before subscriptions had owners) and those of
// the admin token are not checked: only admins can see them.
func (w *worker) allowed(ctx context.Context, sub *Subscription, items []item) []item {
	if w.s.clients == nil || sub.Owner == "" || sub.Owner == access.AdminID {
		return items
	}
	select {
	case <-w.s.clients.Ready():
	case <-time.After(w.s.cfg.Timeout):
		// The registry has not loaded yet (the process is starting): an
		// unknown owner would look deleted. Try again shortly.
		for _, it := range items {
			_ = it.msg.NakWithDelay(time.Second)
		}
		return nil
	}
	var p *access.Principal
	reason := ""
	switch c, ok := w.s.clients.Get(sub.Owner); {
	case !ok:
		reason = fmt.Sprintf("the subscription's owner %s no longer exists", sub.Owner)
	case !c.Enabled:
		reason = fmt.Sprintf("the subscription's owner %s is disabled", sub.Owner)
	default:
		p = access.FromProducer(c)
	}
	keep := items[:0]
	for _, it := range items {
		why := reason
		if why == "" && !p.Allows(access.Subscribe, it.ev.Tag) {
			why = fmt.Sprintf("the subscription's owner %s may no longer subscribe to %s", sub.Owner, it.ev.Tag)
		}
		if why == "" {
			keep = append(keep, it)
			continue
		}
		now := w.s.now().UTC()
		w.s.metrics.attempts.WithLabelValues(string(Skipped)).Inc()
		w.audit(ctx, sub, deliveryID(sub.ID, []string{it.ev.ID}), []item{it}, int(it.meta.NumDelivered),
			sink.Result{Err: errors.New(why)}, Skipped, 0, now)
		if err := it.msg.Ack(); err != nil {
			w.s.log.Warn("ack", "subscription", sub.ID, "stream_seq", it.meta.Sequence.Stream, "err", err)
		}
		w.s.log.Debug("delivery skipped", "subscription", sub.ID, "event_id", it.ev.ID, "reason", why)
	}
	return keep
}

// decide turns an attempt's result into its outcome and, for a retry, the
// wait before the next attempt: the schedule's wait with jitter, or the
// receiver's Retry-After when longer, up to the schedule's longest wait.
func (s *Service) decide(res sink.Result, attempt int) (delivery.Outcome, time.Duration) {
	switch res.Verdict {
	case sink.Delivered:
		return delivery.Delivered, 0
	case sink.Gone:
		return delivery.Disabled, 0
	case sink.Reject:
		return delivery.DeadLettered, 0
	}
	if attempt >= s.cfg.Schedule.Attempts() {
		return delivery.DeadLettered, 0
	}
	d := jitter(s.cfg.Schedule[attempt])
	if res.RetryAfter > d {
		d = min(res.RetryAfter, s.cfg.Schedule.cap())
	}
	return delivery.Retrying, d
}

// jitter spreads d by ±20 % so that retries of many events do not arrive
// at a recovering receiver at once.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// decodeItem decodes a message of EVENTS (the event as published) or of
// REDRIVE (the event as stored, with its seq).
func decodeItem(m jetstream.Msg) (item, error) {
	it := item{msg: m}
	meta, err := m.Metadata()
	if err != nil {
		return it, fmt.Errorf("metadata: %w", err)
	}
	it.meta = meta
	if meta.Stream == stream.Redrive {
		err = event.Decode(m.Data(), &it.ev)
	} else {
		it.ev, err = stream.DecodeEvent(m)
	}
	return it, err
}

// message builds the delivery of items to sub.
func (w *worker) message(sub *Subscription, items []item, now time.Time) (*sink.Message, error) {
	keys, err := sub.keys(now)
	if err != nil {
		return nil, err
	}
	events := make([]event.Event, len(items))
	ids := make([]string, len(items))
	for i, it := range items {
		events[i], ids[i] = it.ev, it.ev.ID
	}
	var body []byte
	if len(events) == 1 && sub.batchSize() == 1 {
		body, err = event.Encode(&events[0])
	} else {
		body, err = encodeBatch(events)
	}
	if err != nil {
		return nil, err
	}
	return &sink.Message{
		ID:      deliveryID(sub.ID, ids),
		Time:    now,
		Target:  sub.URL,
		Headers: sub.Headers,
		Secrets: keys,
		Body:    body,
		Events:  events,
	}, nil
}

func encodeBatch(events []event.Event) ([]byte, error) {
	b := []byte{'['}
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		e, err := event.Encode(&events[i])
		if err != nil {
			return nil, err
		}
		b = append(b, e...)
	}
	return append(b, ']'), nil
}

// deliveryID is the webhook-id of a delivery: derived from the subscription
// and the event ids, so every retry and every replay of the same delivery
// carries the same id and receivers can deduplicate on it.
func deliveryID(subID string, eventIDs []string) string {
	h := sha256.New()
	h.Write([]byte(subID))
	for _, id := range eventIDs {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return "msg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil)[:20]))
}

// audit publishes one attempt record per event to DELIVERIES and waits for
// JetStream to store them before the messages are settled.
func (w *worker) audit(ctx context.Context, sub *Subscription, id string, items []item, attempt int, res sink.Result, outcome delivery.Outcome, latency time.Duration, at time.Time) {
	a := delivery.Attempt{
		SubscriptionID: sub.ID,
		DeliveryID:     id,
		Attempt:        attempt,
		URL:            sub.URL,
		Outcome:        outcome,
		StatusCode:     res.Status,
		LatencyMS:      float64(latency.Microseconds()) / 1000,
		Response:       res.Response,
		Time:           at,
	}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	futures := make([]jetstream.PubAckFuture, 0, len(items))
	for _, it := range items {
		a.EventID, a.EventSeq, a.Tag = it.ev.ID, it.ev.Seq, it.ev.Tag
		body, err := delivery.Encode(&a)
		if err != nil {
			w.s.log.Error("encode attempt", "subscription", sub.ID, "err", err)
			continue
		}
		m := nats.NewMsg(stream.DeliverySubject(sub.ID))
		m.Data = body
		// The consumed message's position and delivery count identify the
		// attempt, so a republished record is dropped as a duplicate.
		msgID := fmt.Sprintf("%s.%s.%d.%d", sub.ID, it.meta.Stream, it.meta.Sequence.Stream, it.meta.NumDelivered)
		f, err := w.s.js.PublishMsgAsync(m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(stream.Deliveries))
		if err != nil {
			w.s.metrics.auditErrors.Inc()
			w.s.log.Warn("publish attempt", "subscription", sub.ID, "err", err)
			continue
		}
		futures = append(futures, f)
	}
	timeout := time.After(5 * time.Second)
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			w.s.metrics.auditErrors.Inc()
			w.s.log.Warn("publish attempt", "subscription", sub.ID, "err", err)
		case <-timeout:
			w.s.metrics.auditErrors.Inc()
			w.s.log.Warn("publish attempt: no ack", "subscription", sub.ID)
			return
		case <-ctx.Done():
			return
		}
	}
}

// deadLetter parks an event the notifier gave up on in the DLQ stream
// (subject dlq.notify.<subscription>.<tag>) and terminates the message once
// the dead letter is stored; if that publish fails, the message comes back
// later instead.
func (w *worker) deadLetter(ctx context.Context, sub *Subscription, it item, status int, reason string) {
	tag := it.ev.Tag
	if tag == "" {
		tag = "UNKNOWN.UNDECODABLE"
	}
	dl := nats.NewMsg(stream.NotifyDeadLetterSubject(sub.ID, tag))
	var seq uint64
	if it.meta != nil {
		seq = it.meta.Sequence.Stream
	}
	if body, err := event.Encode(&it.ev); err == nil && it.ev.ID != "" {
		dl.Data = body
	} else {
		dl.Data = it.msg.Data()
	}
	dl.Header.Set(stream.HeaderReason, reason)
	dl.Header.Set(stream.HeaderStatus, strconv.Itoa(status))
	dl.Header.Set(stream.HeaderSubscription, sub.ID)
	dl.Header.Set(stream.HeaderSubject, it.ev.Subject)
	dl.Header.Set(stream.HeaderStreamSeq, strconv.FormatUint(it.ev.Seq, 10))
	streamName := ""
	if it.meta != nil {
		streamName = it.meta.Stream
	}
	msgID := fmt.Sprintf("notify.%s.%s.%d", sub.ID, streamName, seq)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.s.js.PublishMsg(pctx, dl, jetstream.WithMsgID(msgID)); err != nil {
		w.s.log.Error("dead letter publish failed", "subscription", sub.ID, "stream_seq", seq, "err", err)
		_ = it.msg.NakWithDelay(time.Minute)
		return
	}
	w.s.metrics.deadLetters.Inc()
	if err := it.msg.TermWithReason(reason); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		w.s.log.Warn("term", "subscription", sub.ID, "stream_seq", seq, "err", err)
	}
}

// failed records a failed attempt: the first failure after a success marks
// the subscription failing; failing for DisableAfter disables it.
func (w *worker) failed(ctx context.Context, id string, now time.Time) {
	since := w.failingSince.Load()
	if since == 0 {
		if !w.failingSince.CompareAndSwap(0, now.UnixNano()) {
			return
		}
		_, err := w.s.subs.update(ctx, id, func(s *Subscription) error {
			if !s.FailingSince.IsZero() {
				return errUnchanged
			}
			s.FailingSince = now
			return nil
		})
		if err != nil && !errors.Is(err, errNotFound) {
			w.s.log.Warn("mark subscription failing", "subscription", id, "err", err)
		}
		return
	}
	start := time.Unix(0, since)
	if now.Sub(start) >= w.s.cfg.DisableAfter && w.failingSince.CompareAndSwap(since, -1) {
		w.s.disable(ctx, id, fmt.Sprintf("deliveries failed continuously since %s", start.UTC().Format(time.RFC3339)))
	}
}

// succeeded records a delivered attempt, clearing the failing mark.
func (w *worker) succeeded(ctx context.Context, id string) {
	since := w.failingSince.Load()
	if since == 0 || !w.failingSince.CompareAndSwap(since, 0) {
		return
	}
	_, err := w.s.subs.update(ctx, id, func(s *Subscription) error {
		if s.FailingSince.IsZero() {
			return errUnchanged
		}
		s.FailingSince = time.Time{}
		return nil
	})
	if err != nil && !errors.Is(err, errNotFound) {
		w.s.log.Warn("clear subscription failing", "subscription", id, "err", err)
	}
}

// disable marks a subscription disabled with a reason; every instance's
// watch then stops its worker.
func (s *Service) disable(ctx context.Context, id, reason string) {
	_, err := s.subs.update(ctx, id, func(sub *Subscription) error {
		if sub.State != Active {
			return errUnchanged
		}
		sub.State, sub.StateReason, sub.UpdatedAt = Disabled, reason, s.now().UTC()
		return nil
	})
	if err != nil && !errors.Is(err, errNotFound) {
		s.log.Error("disable subscription", "subscription", id, "err", err)
		return
	}
	s.log.Warn("subscription disabled", "subscription", id, "reason", reason)
}
