package auth

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newThrottled is the fixture's directory behind an Authenticator that
// allows 10 failures a minute per client, then a two-minute cool-down.
func newThrottled(t *testing.T, trusted ...string) (*fixture, *testClock) {
	t.Helper()
	f := newFixture(t)
	clock := &testClock{t: testNow}
	var proxies Prefixes
	for _, s := range trusted {
		if err := proxies.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	f.auth = New(f.dir, f.replay, Config{
		Now:            clock.now,
		Throttle:       ThrottleConfig{MaxFailures: 10, Window: time.Minute, CoolDown: 2 * time.Minute},
		TrustedProxies: proxies,
	})
	return f, clock
}

func (d *fakeDirectory) checks() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.checked
}

// throttledFor returns the wait of a throttled failure, or 0.
func throttledFor(err error) time.Duration {
	var ae *Error
	if errors.As(err, &ae) && errors.Is(err, ErrThrottled) {
		return ae.RetryAfter
	}
	return 0
}

func TestThrottleFailedBasic(t *testing.T) {
	f, clock := newThrottled(t)
	from := func(addr string) context.Context { return WithRemote(t.Context(), addr, nil) }
	bad, good := basicHeader("prd_a", "wrong"), basicHeader("prd_a", testPassword)

	for i := range 10 {
		_, err := f.auth.Authenticate(from("192.0.2.1:4000"), bad)
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("bad attempt %d = %v; want ErrInvalidCredentials", i+1, err)
		}
	}
	if n := f.dir.checks(); n != 10 {
		t.Fatalf("%d password checks for 10 attempts; want 10", n)
	}

	// The 11th attempt, even with the right password, waits: no bcrypt.
	for _, h := range []string{bad, good, basicHeader("prd_nobody", "x"), "Bearer " + testAPIKey} {
		start := time.Now()
		p, err := f.auth.Authenticate(from("192.0.2.1:4001"), h)
		if wait := throttledFor(err); wait != 2*time.Minute || p != nil {
			t.Fatalf("Authenticate(%q) after 10 failures = %v, %v; want ErrThrottled with RetryAfter 2m", h, p, err)
		}
		if d := time.Since(start); d > 20*time.Millisecond { // the decoy check of an unknown id alone takes ~50 ms
			t.Errorf("throttled attempt took %s; want no password check", d)
		}
		var ae *Error
		if errors.As(err, &ae) && ae.Challenge != "" {
			t.Errorf("throttled attempt has challenge %q; want none", ae.Challenge)
		}
	}
	if n := f.dir.checks(); n != 10 {
		t.Errorf("%d password checks; want still 10 (throttled attempts check nothing)", n)
	}

	// Another address is not affected.
	if p, err := f.auth.Authenticate(from("192.0.2.2:4000"), good); err != nil || p.ID != "prd_a" {
		t.Errorf("another address = %v, %v; want prd_a", p, err)
	}
	if _, err := f.auth.Authenticate(from("192.0.2.2:4000"), bad); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("another address, bad password = %v; want ErrInvalidCredentials", err)
	}

	// The wait counts down, and ends with the cool-down.
	clock.add(90 * time.Second)
	if _, err := f.auth.Authenticate(from("192.0.2.1:4000"), good); throttledFor(err) != 30*time.Second {
		t.Errorf("90s into the cool-down = %v; want a wait of 30s", err)
	}
	clock.add(30 * time.Second)
	if p, err := f.auth.Authenticate(from("192.0.2.1:4000"), good); err != nil || p.ID != "prd_a" {
		t.Errorf("after the cool-down = %v, %v; want prd_a", p, err)
	}
	// A fresh start: 10 more failures are allowed.
	for i := range 10 {
		if _, err := f.auth.Authenticate(from("192.0.2.1:4000"), bad); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("bad attempt %d after the cool-down = %v; want ErrInvalidCredentials", i+1, err)
		}
	}
	if _, err := f.auth.Authenticate(from("192.0.2.1:4000"), bad); throttledFor(err) == 0 {
		t.Errorf("11th failure after the cool-down = %v; want ErrThrottled", err)
	}
}

func TestThrottleCountsOnlyFailuresInTheWindow(t *testing.T) {
	f, clock := newThrottled(t)
	ctx := WithRemote(t.Context(), "198.51.100.7:1", nil)
	bad, good := basicHeader("prd_a", "wrong"), basicHeader("prd_a", testPassword)
	attempt := func(h string) error {
		_, err := f.auth.Authenticate(ctx, h)
		return err
	}
	// Successes do not count, nor undo failures.
	for range 9 {
		if err := attempt(bad); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("bad attempt = %v", err)
		}
		if err := attempt(good); err != nil {
			t.Fatalf("good attempt = %v", err)
		}
	}
	if err := attempt(good); err != nil {
		t.Fatalf("after 9 failures and 9 successes = %v; want success", err)
	}
	// A disabled producer with the right password is not a failure.
	for range 5 {
		if err := attempt(basicHeader("prd_off", testPassword)); !errors.Is(err, ErrDisabled) {
			t.Fatalf("disabled = %v; want ErrDisabled", err)
		}
	}
	if err := attempt(bad); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("10th failure = %v; want ErrInvalidCredentials", err)
	}
	if err := attempt(good); throttledFor(err) == 0 {
		t.Fatalf("after the 10th failure = %v; want ErrThrottled", err)
	}

	// Failures further apart than the window do not add up.
	clock.add(2 * time.Minute)
	for range 3 {
		for range 9 {
			if err := attempt(bad); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("bad attempt = %v; want ErrInvalidCredentials", err)
			}
		}
		clock.add(time.Minute)
	}
}

func TestThrottleConcurrentAttempts(t *testing.T) {
	f, _ := newThrottled(t)
	ctx := WithRemote(t.Context(), "203.0.113.5:9", nil)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		throttled int
	)
	for range 40 {
		wg.Go(func() {
			_, err := f.auth.Authenticate(ctx, basicHeader("prd_a", "wrong"))
			if throttledFor(err) > 0 {
				mu.Lock()
				throttled++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := f.dir.checks(); n > 10 || throttled != 40-n {
		t.Errorf("40 concurrent bad attempts: %d password checks, %d throttled; want at most 10 checks, the rest throttled", n, throttled)
	}
}

// X-Forwarded-For names the client only when the peer is a trusted proxy,
// and then the right-most address that is not a trusted proxy.
func TestThrottleForwardedFor(t *testing.T) {
	bad := basicHeader("prd_a", "wrong")
	fail10 := func(t *testing.T, a *Authenticator, remote string, xff func(i int) []string) {
		t.Helper()
		for i := range 10 {
			if _, err := a.Authenticate(WithRemote(t.Context(), remote, xff(i)), bad); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("bad attempt %d = %v; want ErrInvalidCredentials", i+1, err)
			}
		}
	}
	spoofed := func(i int) []string { return []string{netip.AddrFrom4([4]byte{100, 64, 0, byte(i)}).String()} }

	t.Run("no trusted proxy: the header is ignored", func(t *testing.T) {
		f, _ := newThrottled(t)
		fail10(t, f.auth, "10.0.0.1:5000", spoofed)
		_, err := f.auth.Authenticate(WithRemote(t.Context(), "10.0.0.1:5001", []string{"192.0.2.99"}), bad)
		if throttledFor(err) == 0 {
			t.Errorf("a fresh X-Forwarded-For from a throttled peer = %v; want ErrThrottled", err)
		}
	})
	t.Run("trusted proxy: each forwarded client is counted apart", func(t *testing.T) {
		f, _ := newThrottled(t, "10.0.0.0/8")
		fail10(t, f.auth, "10.0.0.1:5000", func(int) []string { return []string{"192.0.2.1"} })
		_, err := f.auth.Authenticate(WithRemote(t.Context(), "10.0.0.2:5000", []string{"192.0.2.1"}), bad)
		if throttledFor(err) == 0 {
			t.Errorf("the throttled client through another proxy = %v; want ErrThrottled", err)
		}
		_, err = f.auth.Authenticate(WithRemote(t.Context(), "10.0.0.1:5000", []string{"192.0.2.2"}), bad)
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("another client through the same proxy = %v; want ErrInvalidCredentials", err)
		}
	})
	t.Run("trusted proxy: addresses the client wrote are not believed", func(t *testing.T) {
		f, _ := newThrottled(t, "10.0.0.0/8")
		fail10(t, f.auth, "10.0.0.1:5000", func(i int) []string { return []string{spoofed(i)[0] + ", 192.0.2.1"} })
		_, err := f.auth.Authenticate(WithRemote(t.Context(), "10.0.0.1:5000", []string{"192.0.2.1"}), bad)
		if throttledFor(err) == 0 {
			t.Errorf("the client without its spoofed prefix = %v; want ErrThrottled", err)
		}
	})
}

func TestClientAddr(t *testing.T) {
	var trusted Prefixes
	if err := trusted.Set("10.0.0.0/8, 192.0.2.7, 2001:db8:ffff::/48"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		remote  string
		xff     []string
		trusted Prefixes
		want    string
	}{
		{"192.0.2.1:80", nil, nil, "192.0.2.1"},
		{"192.0.2.1:80", []string{"198.51.100.1"}, nil, "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", nil, nil, "192.0.2.1"},
		{"192.0.2.1", nil, nil, "192.0.2.1"},
		{"[2001:db8:1:2:aaaa::1]:80", nil, nil, "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", nil, nil, "fe80::/64"},
		{"10.1.2.3:80", []string{"198.51.100.1"}, nil, "10.1.2.3"},
		{"10.1.2.3:80", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"10.1.2.3:80", []string{"203.0.113.9, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"10.1.2.3:80", []string{"203.0.113.9", "198.51.100.1, 192.0.2.7"}, trusted, "198.51.100.1"},
		{"10.1.2.3:80", []string{"198.51.100.1,10.9.9.9", "10.0.0.5"}, trusted, "198.51.100.1"},
		{"10.1.2.3:80", []string{"[2001:db8:5::1]:1234"}, trusted, "2001:db8:5::/64"},
		{"10.1.2.3:80", []string{"198.51.100.1:4711"}, trusted, "198.51.100.1"},
		{"10.1.2.3:80", []string{"10.0.0.5, 10.0.0.6"}, trusted, "10.0.0.5"},     // all trusted: the left-most
		{"10.1.2.3:80", []string{"198.51.100.1, unknown"}, trusted, "10.1.2.3"},  // not an address: its proxy answers for it
		{"10.1.2.3:80", []string{""}, trusted, "10.1.2.3"},                       // an empty header: the peer
		{"[2001:db8:ffff::1]:80", []string{"192.0.2.50"}, trusted, "192.0.2.50"}, // an IPv6 proxy
		{"192.0.2.7:80", []string{"198.51.100.1"}, trusted, "198.51.100.1"},      // a single trusted address
		{"192.0.2.8:80", []string{"198.51.100.1"}, trusted, "192.0.2.8"},         // its neighbour is not trusted
	}
	for _, tt := range tests {
		got, ok := clientAddr(tt.remote, tt.xff, tt.trusted)
		if !ok || got != tt.want {
			t.Errorf("clientAddr(%q, %q) = %q, %t; want %q", tt.remote, tt.xff, got, ok, tt.want)
		}
	}
	for _, remote := range []string{"", "@", "pipe"} {
		if got, ok := clientAddr(remote, []string{"198.51.100.1"}, trusted); ok {
			t.Errorf("clientAddr(%q) = %q; want no address", remote, got)
		}
	}
}

// Without a client address (the NATS request path) attempts are counted
// per claimed producer id; ids nobody has share one count, so inventing
// ids earns no extra attempts.
func TestThrottleWithoutAddress(t *testing.T) {
	f, _ := newThrottled(t)
	ctx := t.Context()
	for i := range 10 {
		if _, err := f.auth.Authenticate(ctx, basicHeader("prd_a", "wrong")); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("bad attempt %d = %v", i+1, err)
		}
	}
	if _, err := f.auth.Authenticate(ctx, basicHeader("prd_a", testPassword)); throttledFor(err) == 0 {
		t.Errorf("prd_a after 10 failures = %v; want ErrThrottled", err)
	}
	if p, err := f.auth.Authenticate(ctx, basicHeader("prd_colon", colonPassword)); err != nil || p.ID != "prd_colon" {
		t.Errorf("another producer = %v, %v; want prd_colon", p, err)
	}
	if p, err := f.auth.Authenticate(ctx, "Bearer "+testAPIKey); err != nil || p.ID != "prd_a" {
		t.Errorf("prd_a's API key = %v, %v; want prd_a (bearer checks cost no bcrypt)", p, err)
	}
	checks := f.dir.checks()
	for i := range 10 {
		id := "prd_nobody" + string(rune('a'+i))
		if _, err := f.auth.Authenticate(ctx, basicHeader(id, "x")); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("unknown id %s = %v", id, err)
		}
	}
	if _, err := f.auth.Authenticate(ctx, basicHeader("prd_nobodyz", "x")); throttledFor(err) == 0 {
		t.Errorf("11th unknown id = %v; want ErrThrottled", err)
	}
	if n := f.dir.checks() - checks; n != 10 {
		t.Errorf("%d password checks for 11 unknown ids; want 10", n)
	}
}

// Memory is bounded: beyond MaxClients, the client seen least recently is
// forgotten, cool-down and all.
func TestThrottleIsBounded(t *testing.T) {
	clock := &testClock{t: testNow}
	th := newThrottle(ThrottleConfig{MaxFailures: 2, Window: time.Minute, CoolDown: time.Minute, MaxClients: 3}, clock.now)
	fail := func(key string) time.Duration {
		if wait := th.admit(key); wait > 0 {
			return wait
		}
		th.done(key, true)
		return 0
	}
	fail("a")
	fail("a")
	if fail("a") == 0 {
		t.Fatal("a is not throttled after 2 failures")
	}
	fail("b")
	fail("c")
	if fail("a") == 0 {
		t.Fatal("a is not throttled while there is room")
	}
	fail("d") // evicts b, the least recently seen
	if n := th.len(); n != 3 {
		t.Errorf("%d clients remembered; want 3", n)
	}
	fail("e") // evicts c
	fail("f") // evicts a
	if wait := fail("a"); wait != 0 {
		t.Errorf("a after being forgotten waits %s; want 0", wait)
	}
	// Successful clients leave no record behind.
	for _, k := range []string{"g", "h", "i", "j"} {
		if wait := th.admit(k); wait > 0 {
			t.Fatalf("admit(%s) = %s", k, wait)
		}
		th.done(k, false)
		if _, ok := th.clients[k]; ok {
			t.Errorf("%s is remembered after its success", k)
		}
	}
}

func TestPrefixesSet(t *testing.T) {
	var p Prefixes
	if err := p.Set(" 10.0.0.0/8 ,192.0.2.7,, 2001:db8::/32 "); err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1/8"} {
		var q Prefixes
		if err := q.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil; want an error", bad)
		}
	}
	if err := p.Set(""); err != nil || len(p) != 0 {
		t.Errorf("Set(\"\") = %v, %v; want none", p, err)
	}
}
