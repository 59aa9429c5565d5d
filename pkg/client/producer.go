package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Defaults of ProducerOptions.
const (
	DefaultFlushInterval = 500 * time.Millisecond
	DefaultMaxBuffered   = 10000
)

// ProducerOptions tune a Producer. Zero fields take their defaults.
type ProducerOptions struct {
	// MaxBatch is the most events per request: MaxBatch (1,000) by
	// default and at most.
	MaxBatch int
	// FlushInterval is the longest a published event waits before it is
	// sent; DefaultFlushInterval by default.
	FlushInterval time.Duration
	// MaxBuffered is how many events may wait to be sent; Publish blocks
	// while that many wait. DefaultMaxBuffered by default.
	MaxBuffered int
	// OnError is called, from the goroutine that sent them, for every
	// request that failed. dropped lists the ids of the events given up
	// on: refused by the server (a 4xx), or still unsent when Close
	// returned. It is empty for a temporary failure (429, 5xx, network),
	// after which the events are kept and sent again on the next flush.
	OnError func(err error, dropped []string)
	// OnSent is called, from the goroutine that sent them, with the
	// server's answer for every request that stored events: one Result
	// per event, duplicates marked.
	OnSent func(sent []Result)
}

// Producer sends events in the background: Publish buffers an event and
// returns, Run sends full batches at once and the rest every FlushInterval,
// Close sends what is left. Events keep the order they were published in.
//
// Memory is bounded: at most MaxBuffered events wait, plus one batch being
// sent. While the server is unavailable the batch being sent is kept and
// tried again, so the buffer fills and Publish blocks: back-pressure
// rather than loss.
type Producer struct {
	c    *Client
	opts ProducerOptions

	queue   chan pending
	kick    chan struct{} // a full batch is waiting
	closing chan struct{} // closed by Close

	mu       sync.Mutex // guards closed and inflight.Add
	closed   bool
	inflight sync.WaitGroup // Publish calls past the closed check
	once     sync.Once

	sendMu sync.Mutex // one sender at a time, in order
	carry  []pending  // taken from queue and not sent yet; guarded by sendMu
}

// pending is an encoded event waiting to be sent.
type pending struct {
	id   string
	body []byte
}

// NewProducer returns a Producer sending through c. Start its Run.
func NewProducer(c *Client, opts ProducerOptions) *Producer {
	if opts.MaxBatch <= 0 || opts.MaxBatch > MaxBatch {
		opts.MaxBatch = MaxBatch
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = DefaultMaxBuffered
	}
	opts.MaxBatch = min(opts.MaxBatch, opts.MaxBuffered)
	return &Producer{
		c:       c,
		opts:    opts,
		queue:   make(chan pending, opts.MaxBuffered),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
}

// Publish buffers an event to be sent. Without an ID it gets one (NewID).
// It blocks while MaxBuffered events wait, until there is room, ctx is done
// or the producer is closed (ErrClosed). A nil error means the event is
// buffered, not stored: failures are reported to OnError.
func (p *Producer) Publish(ctx context.Context, e Event) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	b, err := marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.inflight.Add(1)
	p.mu.Unlock()
	defer p.inflight.Done()
	select {
	case p.queue <- pending{id: e.ID, body: b}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closing:
		return ErrClosed
	}
	if len(p.queue) >= p.opts.MaxBatch {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Run sends events until ctx is done or Close is called, and returns nil.
// Events still buffered then are sent by Close.
func (p *Producer) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.closing:
			return nil
		case <-p.kick:
			_ = p.flush(ctx, false) // reported to OnError
		case <-t.C:
			_ = p.flush(ctx, true)
		}
	}
}

// Flush sends every event buffered when it is called, and returns the
// errors of the requests that failed (also reported to OnError).
func (p *Producer) Flush(ctx context.Context) error {
	return p.flush(ctx, true)
}

// Close stops Publish (it returns ErrClosed from now on) and sends every
// event still buffered. Events it could not send before ctx was done are
// reported to OnError as dropped and counted in the error.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.once.Do(func() { close(p.closing) })
	p.inflight.Wait() // every Publish has buffered its event or given up
	err := p.flush(ctx, true)
	if err == nil {
		return nil
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	left := p.carry
	p.carry = nil
	for len(p.queue) > 0 {
		left = append(left, <-p.queue)
	}
	if len(left) == 0 {
		return fmt.Errorf("close: %w", err)
	}
	p.report(err, ids(left))
	return fmt.Errorf("close: %d events not sent: %w", len(left), err)
}

// flush sends the events buffered now in batches: every one, or (all
// false) only full batches. It stops at the first temporary failure,
// keeping the events, so that order holds and a down server is not
// hammered.
func (p *Producer) flush(ctx context.Context, all bool) error {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	n := len(p.queue) // only holders of sendMu receive, so n are there
	var errs []error
	for {
		need := p.opts.MaxBatch - len(p.carry)
		if !all && n < need {
			// Not a full batch: the events stay queued, where Publish
			// counts them to kick the next flush.
			return errors.Join(errs...)
		}
		for range min(need, n) {
			p.carry = append(p.carry, <-p.queue)
			n--
		}
		if len(p.carry) == 0 {
			return errors.Join(errs...)
		}
		keep, err := p.send(ctx, p.carry)
		if err != nil {
			errs = append(errs, err)
		}
		if keep {
			return errors.Join(errs...)
		}
		p.carry = p.carry[:0]
	}
}

// send sends items in requests that fit the body limit. keep reports a
// temporary failure: carry then holds what was not sent, to be sent again.
// Items the server refused are dropped and reported.
func (p *Producer) send(ctx context.Context, items []pending) (keep bool, err error) {
	var errs []error
	bodies := make([][]byte, len(items))
	for i, it := range items {
		bodies[i] = it.body
	}
	for lo := 0; lo < len(items); {
		hi := p.c.batchEnd(bodies, lo, p.opts.MaxBatch)
		kept, err := p.post(ctx, items[lo:hi])
		if err != nil {
			errs = append(errs, err)
		}
		if len(kept) > 0 {
			p.carry = append(slices.Clone(kept), items[hi:]...)
			return true, errors.Join(errs...)
		}
		lo = hi
	}
	return false, errors.Join(errs...)
}

// post sends one request and returns the items to keep for another try
// (after a temporary failure). The server refuses a request whole, naming
// the items at fault (400, 403, 422, 423 with pointers /N/…): those are
// dropped and the others sent again. A request too large (413) is sent in
// halves.
func (p *Producer) post(ctx context.Context, items []pending) (kept []pending, err error) {
	bodies := make([][]byte, len(items))
	for i, it := range items {
		bodies[i] = it.body
	}
	a, err := p.c.sendBatch(ctx, bodies, 0)
	if err == nil {
		if p.opts.OnSent != nil {
			p.opts.OnSent(a.Events)
		}
		return nil, nil
	}
	var e *Error
	if ctx.Err() != nil || !errors.As(err, &e) || e.Temporary() {
		if ctx.Err() == nil {
			p.report(err, nil)
		}
		return items, err
	}
	if e.Status == http.StatusRequestEntityTooLarge && len(items) > 1 {
		half := len(items) / 2
		kept, err1 := p.post(ctx, items[:half])
		if len(kept) > 0 {
			return append(slices.Clone(kept), items[half:]...), err1
		}
		kept, err2 := p.post(ctx, items[half:])
		return kept, errors.Join(err1, err2)
	}
	bad := refused(e, len(items))
	if len(bad) == 0 || len(bad) == len(items) {
		p.report(err, ids(items))
		return nil, err
	}
	var rest []pending
	var dropped []string
	for i, it := range items {
		if bad[i] {
			dropped = append(dropped, it.id)
		} else {
			rest = append(rest, it)
		}
	}
	p.report(err, dropped)
	kept, err2 := p.post(ctx, rest)
	return kept, errors.Join(fmt.Errorf("%d events refused: %w", len(dropped), err), err2)
}

// refused returns the items of a batch of n that e names.
func refused(e *Error, n int) map[int]bool {
	bad := map[int]bool{}
	for _, fe := range e.Errors {
		i, ok := itemIndex(fe.Pointer)
		if !ok || i >= n {
			return nil // a problem with the request as a whole
		}
		bad[i] = true
	}
	return bad
}

func (p *Producer) report(err error, dropped []string) {
	if p.opts.OnError != nil {
		p.opts.OnError(err, dropped)
	}
}

func ids(items []pending) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out
}
