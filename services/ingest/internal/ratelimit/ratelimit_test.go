package ratelimit_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
)

// limiter is what Limiter and Shared both do.
type limiter interface {
	Allow(key string, r ratelimit.Rate, n int) (ok bool, retryAfter time.Duration)
}

// implementation makes a limiter with the given default and options.
type implementation struct {
	name string
	new  func(t *testing.T, def ratelimit.Rate, opts ...ratelimit.Option) limiter
}

// implementations are the in-memory Limiter and a lone Shared on a real
// JetStream bucket: one instance of Shared must answer as Limiter does.
// The server, started on first use, lasts as long as the test t.
func implementations(parent *testing.T) []implementation {
	var (
		once sync.Once
		js   jetstream.JetStream
		n    atomic.Int64
	)
	return []implementation{
		{"memory", func(_ *testing.T, def ratelimit.Rate, opts ...ratelimit.Option) limiter {
			return ratelimit.New(def, opts...)
		}},
		{"shared", func(t *testing.T, def ratelimit.Rate, opts ...ratelimit.Option) limiter {
			once.Do(func() { js = newJetStream(parent, natstest.Start(parent)) })
			// A bucket of its own for every limiter.
			cfg := stream.RateLimitConfig(stream.Config{})
			cfg.Bucket += strconv.FormatInt(n.Add(1), 10)
			kv, err := js.CreateKeyValue(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return ratelimit.NewShared(kv, def, opts...)
		}},
	}
}

// newJetStream connects to ns.
func newJetStream(t *testing.T, ns *natstest.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// step is one call of Allow at the clock's time after advancing it.
type step struct {
	advance time.Duration
	key     string
	rate    ratelimit.Rate
	n       int
	ok      bool
	retry   time.Duration
}

func TestAllow(t *testing.T) {
	def := ratelimit.Rate{PerSecond: 10, Burst: 5}
	tests := []struct {
		name  string
		def   ratelimit.Rate
		steps []step
	}{
		{
			name: "burst then refill",
			def:  def,
			steps: []step{
				{key: "a", n: 1, ok: true},
				{key: "a", n: 4, ok: true},
				{key: "a", n: 1, retry: 100 * time.Millisecond},
				{advance: 50 * time.Millisecond, key: "a", n: 1, retry: 50 * time.Millisecond},
				{advance: 50 * time.Millisecond, key: "a", n: 1, ok: true},
				{key: "a", n: 1, retry: 100 * time.Millisecond},
			},
		},
		{
			name: "a batch costs one token per event",
			def:  ratelimit.Rate{PerSecond: 100, Burst: 500},
			steps: []step{
				{key: "a", n: 500, ok: true},
				{key: "a", n: 1, retry: 10 * time.Millisecond},
				{advance: time.Second, key: "a", n: 101, retry: 10 * time.Millisecond},
				{key: "a", n: 100, ok: true},
			},
		},
		{
			name: "a denied request takes no tokens",
			def:  def,
			steps: []step{
				{key: "a", n: 3, ok: true},
				{key: "a", n: 3, retry: 100 * time.Millisecond},
				{key: "a", n: 2, ok: true},
			},
		},
		{
			name: "a batch above the burst passes on a full bucket and leaves debt",
			def:  def,
			steps: []step{
				{key: "a", n: 50, ok: true},
				// 5 - 50 = -45 tokens: 46 to refill for one event.
				{key: "a", n: 1, retry: 4600 * time.Millisecond},
				{advance: 4600 * time.Millisecond, key: "a", n: 1, ok: true},
			},
		},
		{
			name: "a batch above the burst waits for a full bucket",
			def:  def,
			steps: []step{
				{key: "a", n: 3, ok: true},
				{key: "a", n: 50, retry: 300 * time.Millisecond},
				{advance: 300 * time.Millisecond, key: "a", n: 50, ok: true},
			},
		},
		{
			name: "keys have their own buckets",
			def:  def,
			steps: []step{
				{key: "a", n: 5, ok: true},
				{key: "a", n: 1, retry: 100 * time.Millisecond},
				{key: "b", n: 5, ok: true},
			},
		},
		{
			name: "a key's rate overrides the default field by field",
			def:  def,
			steps: []step{
				{key: "a", rate: ratelimit.Rate{Burst: 20}, n: 20, ok: true},
				{key: "a", rate: ratelimit.Rate{Burst: 20}, n: 1, retry: 100 * time.Millisecond},
				{key: "b", rate: ratelimit.Rate{PerSecond: 1}, n: 5, ok: true},
				{key: "b", rate: ratelimit.Rate{PerSecond: 1}, n: 1, retry: time.Second},
			},
		},
		{
			name: "a negative rate is unlimited",
			def:  def,
			steps: []step{
				{key: "a", rate: ratelimit.Rate{PerSecond: -1}, n: 1000, ok: true},
				{key: "a", rate: ratelimit.Rate{PerSecond: -1}, n: 1000, ok: true},
			},
		},
		{
			name: "an unlimited default",
			def:  ratelimit.Rate{},
			steps: []step{
				{key: "a", n: 1000000, ok: true},
				{key: "a", n: 1000000, ok: true},
				{key: "b", rate: ratelimit.Rate{PerSecond: 1, Burst: 1}, n: 1, ok: true},
				{key: "b", rate: ratelimit.Rate{PerSecond: 1, Burst: 1}, n: 1, retry: time.Second},
			},
		},
		{
			name: "a zero default burst is one second of events",
			def:  ratelimit.Rate{PerSecond: 2.5},
			steps: []step{
				{key: "a", n: 3, ok: true},
				{key: "a", n: 1, retry: 400 * time.Millisecond},
			},
		},
		{
			name: "a changed rate applies at once and keeps the tokens",
			def:  def,
			steps: []step{
				{key: "a", rate: ratelimit.Rate{PerSecond: 1, Burst: 1}, n: 1, ok: true},
				{key: "a", rate: ratelimit.Rate{PerSecond: 1, Burst: 1}, n: 1, retry: time.Second},
				{key: "a", rate: ratelimit.Rate{PerSecond: 100, Burst: 1}, n: 1, retry: 10 * time.Millisecond},
				{advance: 10 * time.Millisecond, key: "a", rate: ratelimit.Rate{PerSecond: 100, Burst: 1}, n: 1, ok: true},
				// A larger burst fills up over time, not at once.
				{key: "a", rate: ratelimit.Rate{PerSecond: 100, Burst: 50}, n: 10, retry: 100 * time.Millisecond},
				{advance: time.Second, key: "a", rate: ratelimit.Rate{PerSecond: 100, Burst: 50}, n: 50, ok: true},
				// Back to unlimited and then limited again: a fresh bucket.
				{key: "a", rate: ratelimit.Rate{PerSecond: -1}, n: 1, ok: true},
				{key: "a", rate: ratelimit.Rate{PerSecond: 1, Burst: 3}, n: 3, ok: true},
			},
		},
		{
			name: "a smaller burst caps the tokens held",
			def:  def,
			steps: []step{
				{key: "a", rate: ratelimit.Rate{PerSecond: 1, Burst: 100}, n: 1, ok: true},
				{key: "a", rate: ratelimit.Rate{PerSecond: 1, Burst: 2}, n: 2, ok: true},
				{key: "a", rate: ratelimit.Rate{PerSecond: 1, Burst: 2}, n: 1, retry: time.Second},
			},
		},
		{
			name: "no events cost nothing",
			def:  def,
			steps: []step{
				{key: "a", n: 5, ok: true},
				{key: "a", n: 0, ok: true},
			},
		},
	}
	for _, impl := range implementations(t) {
		for _, tt := range tests {
			t.Run(impl.name+"/"+tt.name, func(t *testing.T) {
				c := newClock()
				l := impl.new(t, tt.def, ratelimit.WithClock(c.now))
				for i, s := range tt.steps {
					c.advance(s.advance)
					ok, retry := l.Allow(s.key, s.rate, s.n)
					if ok != s.ok || retry != s.retry {
						t.Fatalf("step %d: Allow(%q, %+v, %d) = %v, %v; want %v, %v", i, s.key, s.rate, s.n, ok, retry, s.ok, s.retry)
					}
				}
			})
		}
	}
}

func TestAllowEvictsIdleBuckets(t *testing.T) {
	c := newClock()
	l := ratelimit.New(ratelimit.Rate{PerSecond: 10, Burst: 5}, ratelimit.WithClock(c.now), ratelimit.WithIdle(time.Minute))
	l.Allow("full", ratelimit.Rate{}, 5)
	// One token in 1,000 s: still refilling when the idle time is over.
	l.Allow("in-debt", ratelimit.Rate{PerSecond: 0.001, Burst: 1}, 1)
	l.Allow("recent", ratelimit.Rate{}, 1)
	if got := l.Len(); got != 3 {
		t.Fatalf("Len() = %d; want 3", got)
	}
	c.advance(30 * time.Second)
	l.Allow("recent", ratelimit.Rate{}, 1)
	c.advance(30 * time.Second)
	l.Allow("other", ratelimit.Rate{}, 1)
	// "full" is idle and full: dropped. "in-debt" is idle but not full,
	// "recent" was used 30 s ago.
	if got := l.Len(); got != 3 {
		t.Fatalf("after the idle time, Len() = %d; want 3 (full dropped, in-debt, recent and other kept)", got)
	}
	// A dropped bucket comes back full.
	if ok, retry := l.Allow("full", ratelimit.Rate{}, 5); !ok {
		t.Fatalf("Allow(full, 5) after eviction = false, %v; want true", retry)
	}
	// The in-debt bucket kept its debt.
	if ok, _ := l.Allow("in-debt", ratelimit.Rate{PerSecond: 0.001, Burst: 1}, 1); ok {
		t.Fatalf("Allow(in-debt, 1) after the idle time = true; want false (bucket not refilled)")
	}
}

func TestAllowConcurrent(t *testing.T) {
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			c := newClock()
			l := impl.new(t, ratelimit.Rate{PerSecond: 1, Burst: 500}, ratelimit.WithClock(c.now))
			var passed atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 100 {
						if ok, _ := l.Allow("a", ratelimit.Rate{}, 1); ok {
							passed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := passed.Load(); got != 500 {
				t.Errorf("%d of 800 concurrent Allow(a, 1) passed; want 500 (the burst)", got)
			}
		})
	}
}
