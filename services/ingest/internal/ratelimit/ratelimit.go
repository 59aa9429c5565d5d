// Package ratelimit limits how fast each producer may send events: a token
// bucket per key (a producer id), refilled at the producer's rate up to its
// burst, one token per event.
//
// Limiter holds the buckets in memory: the limit of one process. Shared
// keeps the same buckets in a JetStream key-value bucket that every ingest
// instance settles in, so that a producer's limit holds across instances:
// N replicas no longer allow N times its rate.
//
// # How Shared works
//
// Each instance decides every request on its own view of the producer's
// bucket, in memory, exactly as Limiter does: no network round trip. Once
// it has admitted a lease's worth of events since it last settled (the
// producer's rate × 50 ms, divided among the instances seen writing that
// bucket in the last second), it settles them with a compare-and-swap (KV
// Update on the revision it last saw). When the swap finds that another
// instance wrote in between, it reads the bucket, charges its unsettled
// events to it, decides the request in hand again on that state (refusing
// it if the shared bucket cannot pay for it) and writes.
//
// So: one round trip per lease, not per event (for a producer at its limit
// on N instances, about 20 × N writes a second in all; fewer below it),
// and none for a refused request. An instance alone on a bucket decides exactly as
// Limiter does, since nobody else changes its view; the state also
// outlives a restart. Across instances, each admits at most its lease
// ahead of the shared bucket; what was admitted ahead is owed (the bucket
// goes below zero) and paid back by waiting. So the rate holds, and over
// any period at most rate × period + burst + the leases are admitted:
// rate × 50 ms more once the instances have seen each other write, up to
// that per instance before. How the load is spread over the instances does
// not matter: a producer whose requests all reach one instance gets its
// whole rate there. An instance whose clock is behind another's counts no
// refill before the time that other wrote: skewed clocks can cost
// admissions (skew × rate), never add any.
//
// Not taken: dividing each producer's rate by the number of live instances
// needs no shared state but is right only when every producer's load is
// spread evenly; behind a Kubernetes Service, which balances connections
// rather than requests, a producer on one keep-alive connection would get
// rate/N. A shared counter charged per request is exact but costs a round
// trip per request. Leases paid for in advance strand the tokens an
// instance holds when a producer's traffic moves elsewhere, and make a
// lone instance decide differently from Limiter. Settling after the fact
// keeps a lone instance's answers unchanged, and an owed token costs no
// more than waiting for it.
//
// # When NATS is unavailable
//
// Shared fails open to per-instance limits. When the bucket does not
// answer within the timeout (250 ms), the instance goes on deciding on its
// own view, as Limiter would: every producer still limited to its rate,
// but per instance. It tries the bucket again a second later and forgives
// what it admitted meanwhile (a lone instance keeps its exact count).
// Failing closed would refuse every rate-limited producer while the bucket
// cannot be written, for instance during the few seconds of an election of
// its leader, although events could still be published; and when NATS is
// down altogether, ingest cannot publish and answers 503 anyway.
package ratelimit

import (
	"log/slog"
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

// Defaults of Shared.
const (
	// DefaultLease is how long a producer's rate takes to earn the events
	// an instance may admit before it settles them in the shared bucket
	// (divided among the instances writing that bucket).
	DefaultLease = 50 * time.Millisecond
	// DefaultTimeout bounds each operation on the shared bucket.
	DefaultTimeout = 250 * time.Millisecond
)

// Option configures a Limiter or a Shared.
type Option func(*options)

// options are the settings of both limiters; Limiter uses now and idle.
type options struct {
	now     func() time.Time
	idle    time.Duration
	lease   time.Duration
	timeout time.Duration
	log     *slog.Logger
}

func newOptions(opts []Option) options {
	o := options{now: time.Now, idle: DefaultIdle, lease: DefaultLease, timeout: DefaultTimeout, log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithClock makes the limiter read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithIdle sets how long an unused bucket is kept in memory; default
// DefaultIdle. Limiter drops only full buckets; Shared drops settled ones
// (the shared bucket keeps their state).
func WithIdle(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.idle = d
		}
	}
}

// WithLease sets the lease time of Shared; default DefaultLease.
func WithLease(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lease = d
		}
	}
}

// WithTimeout bounds each operation of Shared on the shared bucket;
// default DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithLogger makes Shared log when it falls back to per-instance limits
// and when it shares them again.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
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
	o := newOptions(opts)
	return &Limiter{def: def, idle: o.idle, now: o.now, buckets: make(map[string]*bucket)}
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
	eff, unlimited := effective(l.def, r)
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

// effective fills the zero fields of r from the default def and reports
// whether the result is unlimited.
func effective(def, r Rate) (Rate, bool) {
	if r.PerSecond < 0 {
		return Rate{}, true
	}
	if r.PerSecond == 0 {
		r.PerSecond = def.PerSecond
	}
	if r.Burst <= 0 {
		r.Burst = def.Burst
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
