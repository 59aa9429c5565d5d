// Package ratelimit keeps one token bucket per key (a producer id) so that
// each producer may send events at its own rate. A request costs one token
// per event it carries.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultIdle is how long a bucket may go unused before it may be dropped.
const DefaultIdle = 10 * time.Minute

// Rate is a token bucket: PerSecond events per second on average, Burst at
// once.
//
// In the rate given to Allow, a zero field takes the Limiter's default and
// a negative PerSecond means unlimited. In the default, PerSecond <= 0 means
// unlimited, and a zero Burst is one second's worth of events (at least 1).
type Rate struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock makes the Limiter read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(l *Limiter) { l.now = now }
}

// WithIdle sets how long an unused, full bucket is kept; default
// DefaultIdle.
func WithIdle(d time.Duration) Option {
	return func(l *Limiter) {
		if d > 0 {
			l.idle = d
		}
	}
}

// Limiter holds a token bucket per key. It is safe for concurrent use.
type Limiter struct {
	def  Rate
	idle time.Duration
	now  func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// bucket is one key's token bucket and the rate it was built for.
type bucket struct {
	lim      *rate.Limiter
	rate     Rate
	lastUsed time.Time
}

// New returns a Limiter whose keys take def unless Allow is given a rate.
func New(def Rate, opts ...Option) *Limiter {
	l := &Limiter{def: def, idle: DefaultIdle, now: time.Now, buckets: make(map[string]*bucket)}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Allow takes n tokens from key's bucket, which refills at r (zero fields:
// the default). When the tokens are not there it takes none and reports
// how long to wait until they will be.
//
// A request of more events than the burst could never pass a plain token
// bucket. Here it passes when the bucket is full and leaves the bucket in
// debt by the difference, so the key's next requests wait until the debt
// has refilled: the average rate holds and no request that ingest accepts
// is refused forever.
//
// A changed rate for a key (its producer was updated) applies from this
// call on; the tokens the bucket holds are kept.
func (l *Limiter) Allow(key string, r Rate, n int) (ok bool, retryAfter time.Duration) {
	eff, unlimited := l.effective(r)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	if unlimited {
		delete(l.buckets, key)
		return true, 0
	}
	if n <= 0 {
		return true, 0
	}
	b := l.buckets[key]
	switch {
	case b == nil:
		b = &bucket{lim: rate.NewLimiter(rate.Limit(eff.PerSecond), eff.Burst), rate: eff}
		l.buckets[key] = b
	case b.rate != eff:
		b.lim.SetLimitAt(now, rate.Limit(eff.PerSecond))
		b.lim.SetBurstAt(now, eff.Burst)
		b.rate = eff
	}
	b.lastUsed = now

	need := float64(min(n, eff.Burst))
	if tokens := b.lim.TokensAt(now); tokens < need {
		return false, wait(need-tokens, eff.PerSecond)
	}
	// need tokens are there, so the first reservation is immediate; the
	// rest (only for requests larger than the burst) puts the bucket in
	// debt.
	for left := n; left > 0; {
		c := min(left, eff.Burst)
		b.lim.ReserveN(now, c)
		left -= c
	}
	return true, 0
}

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// effective fills the zero fields of r from the default and reports
// whether the result is unlimited.
func (l *Limiter) effective(r Rate) (Rate, bool) {
	if r.PerSecond < 0 {
		return Rate{}, true
	}
	if r.PerSecond == 0 {
		r.PerSecond = l.def.PerSecond
	}
	if r.Burst <= 0 {
		r.Burst = l.def.Burst
	}
	if r.PerSecond <= 0 || math.IsInf(r.PerSecond, 1) || math.IsNaN(r.PerSecond) {
		return Rate{}, true
	}
	if r.Burst <= 0 {
		r.Burst = int(min(math.Ceil(r.PerSecond), math.MaxInt32))
	}
	return r, false
}

// sweep drops the buckets unused for the idle time whose tokens have all
// refilled: a new bucket would be the same, so dropping them changes no
// answer. It runs at most once per idle period, from Allow, so memory is
// bounded by the keys active within one idle period and a refill time.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.idle {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.lastUsed) >= l.idle && b.lim.TokensAt(now) >= float64(b.rate.Burst) {
			delete(l.buckets, k)
		}
	}
}

// wait is how long refilling tokens takes at perSecond, rounded up to the
// millisecond so that a caller who waits that long finds them there.
func wait(tokens, perSecond float64) time.Duration {
	secs := tokens / perSecond
	if secs >= float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	d := time.Duration(math.Ceil(secs * float64(time.Second)))
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}
