package ratelimit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// retryShared is how long Shared decides on its own after the shared
	// bucket failed to answer, before it tries the bucket again.
	retryShared = time.Second
	// writersWindow is how long an instance seen writing a bucket counts
	// among the instances its lease is divided by.
	writersWindow = time.Second
	// maxSwaps bounds the compare-and-swap attempts of one settlement;
	// after them the events stay unsettled until the next one.
	maxSwaps = 4
	// flushEvery is how often Run settles events admitted and not yet
	// settled, and drops idle buckets.
	flushEvery = time.Second
)

// errBusy is a settlement that lost every compare-and-swap to other
// instances: the bucket answers, the events stay unsettled for now.
var errBusy = errors.New("shared bucket busy")

// store is the shared bucket, a jetstream.KeyValue.
type store interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

// Shared is a Limiter whose buckets every ingest instance shares through a
// key-value bucket (see the package comment). It is safe for concurrent
// use; Run settles what a request left unsettled and forgets idle buckets.
type Shared struct {
	kv   store
	def  Rate
	opts options
	id   string // this instance, in the states it writes
	seq  atomic.Uint64

	mu        sync.Mutex
	views     map[string]*view
	downUntil time.Time // until then, decide without the shared bucket
	down      bool      // the last operation on the shared bucket failed
}

// view is this instance's view of one shared bucket.
type view struct {
	mu      sync.Mutex
	rate    Rate
	fresh   bool      // no tokens counted yet: full at the first rate
	tokens  float64   // at time at; below zero: owed
	at      time.Time // this instance's clock
	pending float64   // tokens taken and not yet settled
	rev     uint64    // revision of the shared state the view is based on; 0: none stored
	stamp   time.Time // time of the stored state; another instance's clock may be ahead
	reset   bool      // the key went unlimited: the next settlement replaces the shared state
	// lost are the writes since the last one known to have landed that
	// failed without an answer (seq → the tokens they settled): such a
	// write may still land, for instance sent from the client's buffer
	// when it reconnects.
	lost     map[uint64]float64
	writers  map[string]time.Time
	lastUsed time.Time
	gone     bool // dropped from Shared.views
}

// state is a bucket as stored: Tokens at At (Unix nanoseconds), refilling
// at PerSecond up to Burst, written by the instance By in its write Seq.
type state struct {
	Tokens    float64 `json:"tokens"`
	At        int64   `json:"at"`
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
	By        string  `json:"by"`
	Seq       uint64  `json:"seq"`
}

// NewShared returns a Shared that keeps its buckets in kv, the bucket
// stream.RateLimitConfig describes; keys take def unless Allow is given a
// rate. It starts no goroutines: Run does.
func NewShared(kv store, def Rate, opts ...Option) *Shared {
	return &Shared{kv: kv, def: def, opts: newOptions(opts), id: rand.Text(), views: make(map[string]*view)}
}

// Allow takes n tokens from key's bucket, which refills at r (zero fields:
// the default), and reports how long to wait when they are not there. Its
// answers are Limiter.Allow's on the bucket as this instance sees it; see
// the package comment for when that view meets the shared bucket.
func (s *Shared) Allow(key string, r Rate, n int) (ok bool, retryAfter time.Duration) {
	eff, unlimited := effective(s.def, r)
	if unlimited {
		s.unlimit(key)
		return true, 0
	}
	if n <= 0 {
		return true, 0
	}
	v := s.view(key)
	defer v.mu.Unlock()
	now := s.opts.now()
	v.setRate(now, eff)
	v.lastUsed = now

	// As Limiter: a request above the burst passes on a full bucket and
	// leaves it owing the difference.
	need := float64(min(n, eff.Burst))
	if t := v.tokensAt(now); t < need {
		return false, wait(need-t, eff.PerSecond)
	}
	v.take(now, float64(n))
	if s.alone(now) {
		return true, 0
	}
	v.pending += float64(n)
	if v.pending < v.lease(now, s.opts.lease) {
		return true, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.timeout)
	defer cancel()
	ok, err := s.settle(ctx, v, kvKey(key), now, float64(n), need)
	if err != nil {
		s.fail(now, err)
	}
	if !ok {
		return false, wait(need-v.tokensAt(now), eff.PerSecond)
	}
	return true, 0
}

// Run settles, once a second, what requests admitted below their lease,
// so that other instances see it, and forgets buckets unused for the idle
// time (their state stays in the shared bucket). It returns nil when ctx
// is done.
func (s *Shared) Run(ctx context.Context) error {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.flush(ctx)
		}
	}
}

// Len returns the number of buckets held in memory.
func (s *Shared) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.views)
}

// flush is one round of Run.
func (s *Shared) flush(ctx context.Context) {
	s.mu.Lock()
	keys := make(map[string]*view, len(s.views))
	for k, v := range s.views {
		keys[k] = v
	}
	s.mu.Unlock()
	for key, v := range keys {
		v.mu.Lock()
		now := s.opts.now()
		if v.pending > 0 && !s.alone(now) {
			sctx, cancel := context.WithTimeout(ctx, s.opts.timeout)
			_, err := s.settle(sctx, v, kvKey(key), now, 0, 0)
			cancel()
			if err != nil && ctx.Err() == nil {
				s.fail(now, err)
			}
		}
		if v.pending == 0 && now.Sub(v.lastUsed) >= s.opts.idle {
			v.gone = true
		}
		gone := v.gone
		v.mu.Unlock()
		if gone {
			s.mu.Lock()
			if s.views[key] == v {
				delete(s.views, key)
			}
			s.mu.Unlock()
		}
	}
}

// view returns key's view, locked.
func (s *Shared) view(key string) *view {
	for {
		s.mu.Lock()
		v := s.views[key]
		if v == nil {
			v = &view{fresh: true, writers: make(map[string]time.Time), lost: make(map[uint64]float64)}
			s.views[key] = v
		}
		s.mu.Unlock()
		v.mu.Lock()
		if !v.gone {
			return v
		}
		v.mu.Unlock()
	}
}

// unlimit starts key's bucket afresh, as Limiter does when a key turns
// unlimited: full at its next rate, replacing the shared state when it is
// next settled.
func (s *Shared) unlimit(key string) {
	s.mu.Lock()
	v := s.views[key]
	s.mu.Unlock()
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fresh, v.reset, v.pending = true, true, 0
}

// settle writes the view's state with a compare-and-swap on the revision
// it is based on. When another instance wrote in between, it reads that
// state, charges the pending tokens to it, and tries again. The request in
// hand (n tokens, needing need) was admitted on the old view; it is undone
// and ok is false when the shared state cannot pay for it.
func (s *Shared) settle(ctx context.Context, v *view, key string, now time.Time, n, need float64) (ok bool, err error) {
	ok = true
	for range maxSwaps {
		err := s.write(ctx, v, key)
		if err == nil {
			s.up()
			return ok, nil
		}
		if !conflict(err) {
			return ok, fmt.Errorf("write %s: %w", key, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			e, err = nil, nil
		}
		if err != nil {
			return ok, fmt.Errorf("read %s: %w", key, err)
		}
		v.load(e, now, s.id)
		if ok && n > 0 && v.tokensAt(now)+n < need {
			v.pending -= n
			v.tokens = min(v.tokens+n, float64(v.rate.Burst))
			ok = false
			if v.pending <= 0 {
				v.pending = 0
				return ok, nil
			}
		}
	}
	return ok, errBusy
}

// write stores the view's state on its revision; on success the view is
// settled and based on the new revision.
func (s *Shared) write(ctx context.Context, v *view, key string) error {
	stamp := v.at
	if v.stamp.After(stamp) {
		// Another instance's clock is ahead: store the tokens as of its
		// time, without the refill in between, so no instance counts it.
		stamp = v.stamp
	}
	seq := s.seq.Add(1)
	b, err := json.Marshal(state{Tokens: v.tokens, At: stamp.UnixNano(), PerSecond: v.rate.PerSecond, Burst: v.rate.Burst, By: s.id, Seq: seq})
	if err != nil {
		return err
	}
	var rev uint64
	if v.rev == 0 {
		rev, err = s.kv.Create(ctx, key, b)
	} else {
		rev, err = s.kv.Update(ctx, key, b, v.rev)
	}
	switch {
	case conflict(err):
		return err
	case err != nil:
		v.lost[seq] = v.pending
		return err
	}
	// Writes still in flight expect the revision this one replaced: they
	// cannot land any more.
	clear(v.lost)
	v.rev, v.stamp, v.pending, v.reset = rev, stamp, 0, false
	return nil
}

// alone reports whether decisions are taken without the shared bucket.
func (s *Shared) alone(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.downUntil)
}

// fail decides without the shared bucket for a while after it did not
// answer. A settlement that only lost its swaps changes nothing.
func (s *Shared) fail(now time.Time, err error) {
	if errors.Is(err, errBusy) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downUntil = now.Add(retryShared)
	if !s.down {
		s.down = true
		s.opts.log.Warn("rate limits are per instance until the rate-limit bucket answers", "err", err)
	}
}

// up notes a successful settlement.
func (s *Shared) up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.down = false
		s.opts.log.Info("rate limits are shared across instances again")
	}
}

// setRate starts a fresh view, or applies a changed rate from now on as
// Limiter does: tokens refilled at the old rate until now, capped at the
// new burst from then on.
func (v *view) setRate(now time.Time, eff Rate) {
	switch {
	case v.fresh:
		v.rate, v.tokens, v.at, v.fresh = eff, float64(eff.Burst), now, false
	case v.rate != eff:
		v.tokens, v.at, v.rate = v.tokensAt(now), now, eff
	}
}

// tokensAt is the tokens the view holds at now: golang.org/x/time/rate's
// arithmetic, so that a lone instance answers as Limiter does.
func (v *view) tokensAt(now time.Time) float64 {
	elapsed := max(now.Sub(v.at), 0)
	return min(v.tokens+elapsed.Seconds()*v.rate.PerSecond, float64(v.rate.Burst))
}

// take removes n tokens at now; the bucket may owe them.
func (v *view) take(now time.Time, n float64) {
	v.tokens, v.at = v.tokensAt(now)-n, now
}

// lease is how many tokens the instance may take before it settles: d's
// worth of the rate, divided among the instances writing the bucket, at
// most the burst.
func (v *view) lease(now time.Time, d time.Duration) float64 {
	n := 1
	for id, seen := range v.writers {
		if now.Sub(seen) < writersWindow {
			n++
		} else {
			delete(v.writers, id)
		}
	}
	return min(d.Seconds()*v.rate.PerSecond/float64(n), float64(v.rate.Burst))
}

// load bases the view on the stored entry e (nil: no state stored, a full
// bucket) with the pending tokens charged to it. A view that was reset
// keeps its own tokens and only takes the revision.
func (v *view) load(e jetstream.KeyValueEntry, now time.Time, self string) {
	v.rev = 0
	if e != nil {
		v.rev = e.Revision()
	}
	if v.reset {
		return
	}
	shared := float64(v.rate.Burst)
	var st state
	if e != nil && json.Unmarshal(e.Value(), &st) == nil && st.PerSecond > 0 && st.Burst > 0 {
		at := time.Unix(0, st.At)
		shared = st.Tokens
		if d := now.Sub(at); d > 0 {
			shared = min(shared+d.Seconds()*st.PerSecond, float64(st.Burst))
		}
		v.stamp = at
		switch settled, ok := v.lost[st.Seq]; {
		case st.By != self:
			v.writers[st.By] = now
		case ok:
			// A write that failed without an answer landed after all.
			v.pending = max(v.pending-settled, 0)
			clear(v.lost)
		}
	}
	v.tokens, v.at = min(shared-v.pending, float64(v.rate.Burst)), now
}

// conflict reports whether err is a compare-and-swap that lost: another
// instance wrote first.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// kvKey is key as a key of the shared bucket: itself when it is a valid
// one (producer ids are), else a hash of it.
func kvKey(key string) string {
	valid := key != "" && key[0] != '.' && key[len(key)-1] != '.'
	for i := 0; valid && i < len(key); i++ {
		c := key[i]
		valid = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '/' || c == '=' || c == '.' && key[i-1] != '.'
	}
	if valid {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256_" + hex.EncodeToString(sum[:])
}
