package ratelimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
)

// openBucket connects to ns as an ingest instance does, with a connection
// of its own, and opens the ratelimit bucket.
func openBucket(t *testing.T, ns *natstest.Server) jetstream.KeyValue {
	t.Helper()
	kv, err := stream.EnsureRateLimit(t.Context(), newJetStream(t, ns), stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestSharedHoldsAcrossInstances drives one producer limited to 200
// events/s (burst 200) as hard as it goes through several instances for 5
// seconds and counts what they admit together: the rate × the time plus
// the burst, within 10 %, however the requests are spread. Per-instance
// buckets would admit that once per instance.
//
// Time is a clock shared by the instances and moved by the test in steps
// of 10 ms. At each step every instance that gets requests is sent them
// from two goroutines until it refuses one, so machine speed changes who
// wins a race, never how much time passes; the instances and NATS are real.
func TestSharedHoldsAcrossInstances(t *testing.T) {
	const (
		perSecond = 200
		burst     = 200
		step      = 10 * time.Millisecond
		duration  = 5 * time.Second
	)
	always := func(int, int) bool { return true }
	tests := []struct {
		name      string
		instances int
		gets      func(step, instance int) bool // whether the instance gets requests at the step
		batch     int                           // events per request; 0: 1 to 40 at random
	}{
		// An HTTP load balancer spreading requests, or the NATS queue
		// group of the request path.
		{name: "two instances, requests spread evenly", instances: 2, gets: always, batch: 1},
		{name: "two instances, batches of 1 to 40 events", instances: 2, gets: always},
		{name: "three instances", instances: 3, gets: always, batch: 1},
		// One keep-alive connection behind a Service that balances
		// connections: one instance sees all of the producer's requests.
		{name: "all requests to one instance", instances: 2, gets: func(_, i int) bool { return i == 0 }, batch: 1},
		{name: "the second instance gets requests one step in ten", instances: 2, gets: func(s, i int) bool { return i == 0 || s%10 == 0 }, batch: 1},
	}
	ns := natstest.Start(t)
	for ti, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			limiters := make([]*ratelimit.Shared, tt.instances)
			for i := range limiters {
				// A generous timeout: a slow answer of the bucket would make
				// an instance decide alone, which is not what this tests.
				limiters[i] = ratelimit.NewShared(openBucket(t, ns), ratelimit.Rate{PerSecond: perSecond, Burst: burst},
					ratelimit.WithClock(c.now), ratelimit.WithTimeout(time.Minute))
			}
			key := "prd_" + string(rune('a'+ti))
			var (
				admitted    atomic.Int64
				perInstance [3]atomic.Int64
			)
			for s := range int(duration / step) {
				c.advance(step)
				var wg sync.WaitGroup
				for i, l := range limiters {
					if !tt.gets(s, i) {
						continue
					}
					for g := range 2 {
						wg.Go(func() {
							rnd := rand.New(rand.NewPCG(uint64(s), uint64(i*2+g)))
							// Bounded, so that a limiter that never refuses fails
							// the test instead of hanging it.
							for range 10 * burst {
								n := tt.batch
								if n == 0 {
									n = 1 + rnd.IntN(40)
								}
								if ok, _ := l.Allow(key, ratelimit.Rate{}, n); !ok {
									return
								}
								admitted.Add(int64(n))
								perInstance[i].Add(int64(n))
							}
						})
					}
				}
				wg.Wait()
			}
			want := perSecond*duration.Seconds() + burst
			got := float64(admitted.Load())
			t.Logf("admitted %.0f events in %v (instances: %d, %d, %d); rate × time + burst = %.0f (%+.1f %%)",
				got, duration, perInstance[0].Load(), perInstance[1].Load(), perInstance[2].Load(), want, 100*(got-want)/want)
			if math.Abs(got-want) > 0.1*want {
				t.Errorf("%d instances admitted %.0f events in %v at %d/s, burst %d; want %.0f ± 10 %%", tt.instances, got, duration, perSecond, burst, want)
			}
		})
	}
}

// TestSharedFailsOpenToPerInstanceLimits: while the bucket does not
// answer, an instance goes on limiting each producer on its own, and it
// shares its count again once the bucket is back.
func TestSharedFailsOpenToPerInstanceLimits(t *testing.T) {
	ns := natstest.Start(t)
	nc := ns.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := stream.EnsureRateLimit(t.Context(), js, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	c := newClock()
	def := ratelimit.Rate{PerSecond: 10, Burst: 5}
	l := ratelimit.NewShared(kv, def, ratelimit.WithClock(c.now), ratelimit.WithTimeout(time.Second),
		ratelimit.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	allow := func(what string, n int, want bool) {
		t.Helper()
		if ok, retry := l.Allow("prd_a", ratelimit.Rate{}, n); ok != want {
			t.Fatalf("%s: Allow(prd_a, %d) = %v, %v; want %v", what, n, ok, retry, want)
		}
	}
	allow("shared", 5, true)
	allow("shared, bucket empty", 1, false)

	ns.Shutdown()
	waitFor(t, "the connection to notice", func() bool { return !nc.IsConnected() })
	c.advance(time.Second)
	allow("NATS down", 1, true)
	allow("NATS down", 4, true)
	allow("NATS down, the instance's bucket empty", 1, false)
	if !strings.Contains(logs.String(), "rate limits are per instance") {
		t.Errorf("log = %s; want a warning that rate limits are per instance", logs.String())
	}

	ns.Restart()
	waitFor(t, "the bucket to answer", func() bool {
		_, err := kv.Get(t.Context(), "prd_a")
		return err == nil
	})
	c.advance(time.Second)
	allow("NATS back", 5, true)
	if !strings.Contains(logs.String(), "rate limits are shared across instances again") {
		t.Errorf("log = %s; want a note that rate limits are shared again", logs.String())
	}
	// Another instance sees what this one settled: nothing left.
	other := ratelimit.NewShared(openBucket(t, ns), def, ratelimit.WithClock(c.now), ratelimit.WithTimeout(time.Minute))
	if ok, _ := other.Allow("prd_a", ratelimit.Rate{}, 1); ok {
		t.Errorf("another instance: Allow(prd_a, 1) = true after the first took the burst; want false")
	}
}

// TestSharedForgetsIdleBuckets: Run drops a bucket unused for the idle
// time from memory and loses nothing, since its state is in the shared
// bucket.
func TestSharedForgetsIdleBuckets(t *testing.T) {
	ns := natstest.Start(t)
	c := newClock()
	r := ratelimit.Rate{PerSecond: 0.001, Burst: 5} // a token in 1,000 s
	l := ratelimit.NewShared(openBucket(t, ns), ratelimit.Rate{}, ratelimit.WithClock(c.now), ratelimit.WithIdle(time.Minute), ratelimit.WithTimeout(time.Minute))
	if ok, _ := l.Allow("prd_a", r, 5); !ok {
		t.Fatal("Allow(prd_a, 5) = false on a full bucket")
	}
	c.advance(time.Minute)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- l.Run(ctx) }()
	waitFor(t, "Run to drop the idle bucket", func() bool { return l.Len() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v; want nil after cancel", err)
	}
	if ok, _ := l.Allow("prd_a", r, 1); ok {
		t.Errorf("Allow(prd_a, 1) after the bucket was dropped = true; want false (the shared bucket is still empty)")
	}
}

// waitFor polls cond until it holds, for at most 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
