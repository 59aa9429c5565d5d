package producer

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start opens a registry on srv, runs it until the test ends and waits
// until it has loaded the buckets.
func start(t *testing.T, srv *natstest.Server, opts ...Option) *Registry {
	t.Helper()
	js, err := stream.JetStream(srv.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(t.Context(), js, stream.Config{}, append([]Option{WithBcryptCost(bcrypt.MinCost)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run before ready: %v", err)
	}
	return r
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func create(t *testing.T, r *Registry, s Spec) (Producer, Secrets) {
	t.Helper()
	p, sec, err := r.Create(t.Context(), s)
	if err != nil {
		t.Fatalf("Create(%+v) = %v", s, err)
	}
	return p, sec
}

var (
	idRE        = regexp.MustCompile(`^prd_[0-9a-f]{32}$`)
	apiKeyRE    = regexp.MustCompile(`^esk_[A-Za-z0-9_-]{43}$`)
	secret32RE  = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	passwordRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)
	bcryptHashR = regexp.MustCompile(`^\$2a\$`)
)

func TestCreate(t *testing.T) {
	srv := natstest.Start(t)
	r := start(t, srv)
	p, sec := create(t, r, Spec{Name: "billing", Rate: Rate{PerSecond: 100, Burst: 200}})

	for _, c := range []struct {
		what string
		re   *regexp.Regexp
		v    string
	}{
		{"id", idRE, p.ID},
		{"password", passwordRE, sec.Password},
		{"api key", apiKeyRE, sec.APIKey},
		{"jwt secret", secret32RE, sec.JWTSecret},
		{"password hash", bcryptHashR, p.Credentials.PasswordHash},
	} {
		if !c.re.MatchString(c.v) {
			t.Errorf("%s = %q; want %s", c.what, c.v, c.re)
		}
	}
	if diff := cmp.Diff([]string{">"}, p.Tags); diff != "" {
		t.Errorf("default tags (-want +got):\n%s", diff)
	}
	if !p.Enabled || p.CreatedAt.IsZero() {
		t.Errorf("Create = enabled %v, created %v; want enabled, a creation time", p.Enabled, p.CreatedAt)
	}
	if len(p.Credentials.APIKeys) != 1 || p.Credentials.APIKeys[0].SHA256 != HashKey(sec.APIKey) || p.Credentials.APIKeys[0].Prefix != sec.APIKey[:12] {
		t.Errorf("stored API keys = %+v; want the hash and prefix of %q", p.Credentials.APIKeys, sec.APIKey[:12])
	}
	if p.Credentials.JWTSecret != sec.JWTSecret {
		t.Errorf("stored JWT secret differs from the returned one")
	}

	for name, lookup := range map[string]func() (*Producer, bool){
		"Get":      func() (*Producer, bool) { return r.Get(p.ID) },
		"ByName":   func() (*Producer, bool) { return r.ByName("BILLING") },
		"ByAPIKey": func() (*Producer, bool) { return r.ByAPIKey(HashKey(sec.APIKey)) },
	} {
		got, ok := lookup()
		if !ok {
			t.Errorf("%s found nothing", name)
			continue
		}
		if diff := cmp.Diff(p, *got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if got := r.List(); len(got) != 1 || got[0].ID != p.ID {
		t.Errorf("List = %v; want [%s]", got, p.ID)
	}

	// The stored value holds no clear password or API key.
	e, err := bucket(t, srv, stream.ProducersBucket).Get(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{sec.Password, sec.APIKey} {
		if strings.Contains(string(e.Value()), s) {
			t.Errorf("the stored producer holds a clear secret")
		}
	}
	var stored Producer
	if err := json.Unmarshal(e.Value(), &stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, stored); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}

	// Another instance loads it at start-up.
	if _, ok := start(t, srv).ByAPIKey(HashKey(sec.APIKey)); !ok {
		t.Errorf("a new registry does not find the producer by its API key")
	}
}

// bucket opens a bucket of srv directly.
func bucket(t *testing.T, srv *natstest.Server, name string) jetstream.KeyValue {
	t.Helper()
	js, err := stream.JetStream(srv.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestCreateInvalid(t *testing.T) {
	r := start(t, natstest.Start(t))
	long := strings.Repeat("a", MaxNameLen+1)
	tests := []struct {
		name string
		spec Spec
		want []string // pointers
	}{
		{"empty name", Spec{}, []string{"/name"}},
		{"name with a space", Spec{Name: "my producer"}, []string{"/name"}},
		{"name starting with a dash", Spec{Name: "-x"}, []string{"/name"}},
		{"name too long", Spec{Name: long}, []string{"/name"}},
		{"bad patterns", Spec{Name: "a", Tags: []string{"A.>", "A.>.B", "a b"}}, []string{"/tags/1", "/tags/2"}},
		{"negative burst", Spec{Name: "a", Rate: Rate{PerSecond: 1, Burst: -1}}, []string{"/rate/burst"}},
		{"bad category", Spec{Name: "a", Owns: []string{"BILLING", "A..B"}}, []string{"/owns/1"}},
		{"category twice", Spec{Name: "a", Owns: []string{"BILLING", "BILLING"}}, []string{"/owns/1"}},
		{"category outside the tags", Spec{Name: "a", Tags: []string{"ORDERS.>"}, Owns: []string{"BILLING"}}, []string{"/owns/0"}},
		{"everything", Spec{Name: "", Tags: []string{""}, Rate: Rate{Burst: -5}}, []string{"/name", "/tags/0", "/rate/burst"}},
		{"bad scope patterns", Spec{Name: "a", Scopes: Scopes{Read: []string{"A.>", "A..B"}, Subscribe: []string{""}, Consume: []string{"X.>.Y"}}},
			[]string{"/scopes/read/1", "/scopes/subscribe/0", "/scopes/consume/0"}},
		{"too many read patterns", Spec{Name: "a", Scopes: Scopes{Read: slices.Repeat([]string{"A.*"}, MaxPatterns+1)}}, []string{"/scopes/read"}},
		{"owns without write scope", Spec{Name: "a", Scopes: Scopes{Read: []string{">"}}, Owns: []string{"BILLING"}}, []string{"/owns/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.Create(t.Context(), tt.spec)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Create(%+v) = %v; want a *ValidationError", tt.spec, err)
			}
			var got []string
			for _, fe := range ve.Errors {
				got = append(got, fe.Pointer)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Create(%+v) pointers (-want +got):\n%s\n%v", tt.spec, diff, err)
			}
		})
	}
	if got := r.List(); len(got) != 0 {
		t.Errorf("List = %d producers after invalid creates; want none", len(got))
	}
}

func TestCreateValid(t *testing.T) {
	r := start(t, natstest.Start(t))
	tests := []struct {
		spec Spec
		want Producer // the fields compared
	}{
		{Spec{Name: "a"}, Producer{Name: "a", Tags: []string{">"}}},
		{Spec{Name: "b-2_x", Tags: []string{"BILLING.>", "*.LOGIN"}}, Producer{Name: "b-2_x", Tags: []string{"BILLING.>", "*.LOGIN"}}},
		{Spec{Name: "c", Tags: []string{"BILLING.*"}, Owns: []string{"BILLING"}}, Producer{Name: "c", Tags: []string{"BILLING.*"}, Owns: []string{"BILLING"}}},
		{Spec{Name: "d", Tags: []string{"*.*"}, Owns: []string{"ORDERS"}}, Producer{Name: "d", Tags: []string{"*.*"}, Owns: []string{"ORDERS"}}},
		{Spec{Name: "e", Rate: Rate{PerSecond: -3}}, Producer{Name: "e", Tags: []string{">"}, Rate: Rate{PerSecond: -1}}},
		{Spec{Name: " f ", Rate: Rate{PerSecond: 2.5, Burst: 10}}, Producer{Name: "f", Tags: []string{">"}, Rate: Rate{PerSecond: 2.5, Burst: 10}}},
		// A client given other scopes writes only the tags it is given.
		{Spec{Name: "reader", Scopes: Scopes{Read: []string{"BILLING.>"}}}, Producer{Name: "reader", Scopes: Scopes{Read: []string{"BILLING.>"}}}},
		{Spec{Name: "admin", Scopes: Scopes{Admin: true}}, Producer{Name: "admin", Scopes: Scopes{Admin: true}}},
		{Spec{Name: "both", Tags: []string{"A.*"}, Scopes: Scopes{Subscribe: []string{"A.>"}, Consume: []string{">"}}},
			Producer{Name: "both", Tags: []string{"A.*"}, Scopes: Scopes{Subscribe: []string{"A.>"}, Consume: []string{">"}}}},
	}
	for _, tt := range tests {
		p, _ := create(t, r, tt.spec)
		got := Producer{Name: p.Name, Tags: p.Tags, Scopes: p.Scopes, Owns: p.Owns, Rate: p.Rate}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Create(%+v) (-want +got):\n%s", tt.spec, diff)
		}
	}
}

func TestNamesAreUnique(t *testing.T) {
	srv := natstest.Start(t)
	a, b := start(t, srv), start(t, srv)
	p, _ := create(t, a, Spec{Name: "billing"})

	for _, name := range []string{"billing", "BILLING"} {
		if _, _, err := a.Create(t.Context(), Spec{Name: name}); !errors.Is(err, ErrNameTaken) {
			t.Errorf("Create(%q) on the same instance = %v; want ErrNameTaken", name, err)
		}
	}
	// The other instance is decided by the reservation even before its
	// index has the producer.
	if _, _, err := b.Create(t.Context(), Spec{Name: "Billing"}); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Create(Billing) on another instance = %v; want ErrNameTaken", err)
	}
	eventually(t, "both instances list one producer", func() bool { return len(a.List()) == 1 && len(b.List()) == 1 })

	if err := a.Delete(t.Context(), p.ID); err != nil {
		t.Fatal(err)
	}
	create(t, b, Spec{Name: "billing"})
}

// Concurrent creates of one name on two instances: exactly one wins, and
// the loser leaves nothing behind.
func TestConcurrentCreate(t *testing.T) {
	srv := natstest.Start(t)
	regs := []*Registry{start(t, srv), start(t, srv)}
	const n = 6
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, err := regs[i%2].Create(t.Context(), Spec{Name: "race"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrNameTaken):
			t.Errorf("Create = %v; want nil or ErrNameTaken", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creates of one name succeeded; want 1", won)
	}
	for _, r := range regs {
		eventually(t, "one producer left", func() bool { return len(r.List()) == 1 })
	}
}

func TestUpdate(t *testing.T) {
	srv := natstest.Start(t)
	a, b := start(t, srv), start(t, srv)
	p, _ := create(t, a, Spec{Name: "billing", Tags: []string{"BILLING.>"}})
	other, _ := create(t, a, Spec{Name: "orders"})

	got, err := a.Update(t.Context(), p.ID, func(p *Producer) error {
		p.Tags = []string{"BILLING.>", "INVOICE.*"}
		p.Rate = Rate{PerSecond: 5, Burst: 10}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"BILLING.>", "INVOICE.*"}, got.Tags); diff != "" {
		t.Errorf("Update tags (-want +got):\n%s", diff)
	}
	eventually(t, "the other instance sees the new rate", func() bool {
		q, ok := b.Get(p.ID)
		return ok && q.Rate == Rate{PerSecond: 5, Burst: 10}
	})

	t.Run("rename to a taken name", func(t *testing.T) {
		_, err := a.Update(t.Context(), p.ID, func(p *Producer) error { p.Name = "Orders"; return nil })
		if !errors.Is(err, ErrNameTaken) {
			t.Fatalf("Update(name Orders) = %v; want ErrNameTaken", err)
		}
		if q, _ := a.Get(p.ID); q.Name != "billing" {
			t.Errorf("name after a refused rename = %q; want billing", q.Name)
		}
	})
	t.Run("rename frees the old name", func(t *testing.T) {
		if _, err := a.Update(t.Context(), p.ID, func(p *Producer) error { p.Name = "payments"; return nil }); err != nil {
			t.Fatal(err)
		}
		if q, ok := a.ByName("payments"); !ok || q.ID != p.ID {
			t.Errorf("ByName(payments) = %v, %v; want %s", q, ok, p.ID)
		}
		if _, err := a.Update(t.Context(), other.ID, func(p *Producer) error { p.Name = "billing"; return nil }); err != nil {
			t.Errorf("rename to the freed name billing = %v", err)
		}
		if _, _, err := b.Create(t.Context(), Spec{Name: "payments"}); !errors.Is(err, ErrNameTaken) {
			t.Errorf("Create(payments) on another instance = %v; want ErrNameTaken", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := a.Update(t.Context(), p.ID, func(p *Producer) error { p.Tags = []string{"A.>.B"}; return nil })
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Errors[0].Pointer != "/tags/0" {
			t.Errorf("Update(bad tag) = %v; want a *ValidationError at /tags/0", err)
		}
		_, err = a.Update(t.Context(), p.ID, func(p *Producer) error { p.ID = "prd_other"; return nil })
		if !errors.As(err, &ve) || ve.Errors[0].Pointer != "/id" {
			t.Errorf("Update(id) = %v; want a *ValidationError at /id", err)
		}
	})
	t.Run("scopes", func(t *testing.T) {
		want := Scopes{Read: []string{"BILLING.>"}, Consume: []string{"BILLING.*"}}
		got, err := a.Update(t.Context(), p.ID, func(p *Producer) error { p.Scopes = want; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got.Scopes); diff != "" {
			t.Errorf("Update scopes (-want +got):\n%s", diff)
		}
		eventually(t, "the other instance sees the scopes", func() bool {
			q, ok := b.Get(p.ID)
			return ok && cmp.Equal(q.Scopes, want)
		})
		_, err = a.Update(t.Context(), p.ID, func(p *Producer) error { p.Scopes.Subscribe = []string{"A.>.B"}; return nil })
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Errors[0].Pointer != "/scopes/subscribe/0" {
			t.Errorf("Update(bad subscribe pattern) = %v; want a *ValidationError at /scopes/subscribe/0", err)
		}
	})
	t.Run("fn error", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := a.Update(t.Context(), p.ID, func(*Producer) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("Update = %v; want %v", err, boom)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		for _, id := range []string{"prd_0123456789abcdef0123456789abcdef", "nope", "prd_*", ""} {
			if _, err := a.Update(t.Context(), id, func(*Producer) error { return nil }); !errors.Is(err, ErrNotFound) {
				t.Errorf("Update(%q) = %v; want ErrNotFound", id, err)
			}
		}
	})
}

// Updates racing on two instances are all applied: compare-and-swap
// retries instead of overwriting.
func TestConcurrentUpdates(t *testing.T) {
	srv := natstest.Start(t)
	regs := []*Registry{start(t, srv), start(t, srv)}
	p, _ := create(t, regs[0], Spec{Name: "counter"})
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := regs[i%2].Update(t.Context(), p.ID, func(p *Producer) error {
				p.Rate.Burst++
				return nil
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	for _, r := range regs {
		eventually(t, "every increment applied", func() bool {
			q, _ := r.Get(p.ID)
			return q.Rate.Burst == n
		})
	}
}

func TestEnableDisable(t *testing.T) {
	srv := natstest.Start(t)
	a, b := start(t, srv), start(t, srv)
	p, _ := create(t, a, Spec{Name: "billing"})
	for _, enabled := range []bool{false, true} {
		got, err := a.SetEnabled(t.Context(), p.ID, enabled)
		if err != nil || got.Enabled != enabled {
			t.Fatalf("SetEnabled(%v) = %v, %v", enabled, got.Enabled, err)
		}
		eventually(t, "the other instance sees it", func() bool {
			q, ok := b.Get(p.ID)
			return ok && q.Enabled == enabled
		})
	}
	if _, err := a.SetEnabled(t.Context(), "prd_0123456789abcdef0123456789abcdef", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetEnabled(unknown) = %v; want ErrNotFound", err)
	}
}

func TestRotate(t *testing.T) {
	srv := natstest.Start(t)
	a, b := start(t, srv), start(t, srv)
	p, sec := create(t, a, Spec{Name: "billing"})
	eventually(t, "the other instance has the producer", func() bool { _, ok := b.Get(p.ID); return ok })

	t.Run("password", func(t *testing.T) {
		if !a.CheckPassword(&p, sec.Password) {
			t.Fatal("CheckPassword(created password) = false")
		}
		got, s, err := a.Rotate(t.Context(), p.ID, CredentialPassword)
		if err != nil {
			t.Fatal(err)
		}
		if !passwordRE.MatchString(s.Password) || s.APIKey != "" || s.JWTSecret != "" {
			t.Errorf("Rotate(password) secrets = password %q, others set %v", s.Password, s.APIKey+s.JWTSecret != "")
		}
		// The cached success of the old password does not survive.
		if a.CheckPassword(&got, sec.Password) {
			t.Error("CheckPassword(old password) = true after rotation")
		}
		if !a.CheckPassword(&got, s.Password) {
			t.Error("CheckPassword(new password) = false")
		}
		eventually(t, "the other instance checks the new password", func() bool {
			q, _ := b.Get(p.ID)
			return b.CheckPassword(q, s.Password) && !b.CheckPassword(q, sec.Password)
		})
	})
	t.Run("api key", func(t *testing.T) {
		_, s, err := a.Rotate(t.Context(), p.ID, CredentialAPIKey)
		if err != nil {
			t.Fatal(err)
		}
		if !apiKeyRE.MatchString(s.APIKey) || s.APIKey == sec.APIKey {
			t.Errorf("Rotate(api_key) = %q; want a new key", s.APIKey)
		}
		for _, r := range []*Registry{a, b} {
			eventually(t, "only the new key works", func() bool {
				_, old := r.ByAPIKey(HashKey(sec.APIKey))
				q, cur := r.ByAPIKey(HashKey(s.APIKey))
				return !old && cur && q.ID == p.ID && len(q.Credentials.APIKeys) == 1
			})
		}
	})
	t.Run("jwt secret", func(t *testing.T) {
		got, s, err := a.Rotate(t.Context(), p.ID, CredentialJWTSecret)
		if err != nil {
			t.Fatal(err)
		}
		if !secret32RE.MatchString(s.JWTSecret) || s.JWTSecret == sec.JWTSecret || got.Credentials.JWTSecret != s.JWTSecret {
			t.Errorf("Rotate(jwt_secret) = %q, stored %q; want a new secret, stored", s.JWTSecret, got.Credentials.JWTSecret)
		}
	})
	t.Run("unknown credential", func(t *testing.T) {
		var ve *ValidationError
		if _, _, err := a.Rotate(t.Context(), p.ID, "token"); !errors.As(err, &ve) || ve.Errors[0].Pointer != "/credential" {
			t.Errorf("Rotate(token) = %v; want a *ValidationError at /credential", err)
		}
	})
	t.Run("unknown producer", func(t *testing.T) {
		if _, _, err := a.Rotate(t.Context(), "prd_0123456789abcdef0123456789abcdef", CredentialPassword); !errors.Is(err, ErrNotFound) {
			t.Errorf("Rotate(unknown) = %v; want ErrNotFound", err)
		}
	})
}

func TestCheckPassword(t *testing.T) {
	r := start(t, natstest.Start(t))
	p, sec := create(t, r, Spec{Name: "billing"})
	tests := []struct {
		name     string
		p        *Producer
		password string
		want     bool
	}{
		{"right", &p, sec.Password, true},
		{"right again (cached)", &p, sec.Password, true},
		{"wrong", &p, sec.Password + "x", false},
		{"empty", &p, "", false},
		{"no producer", nil, sec.Password, false},
		{"no hash", &Producer{ID: p.ID}, sec.Password, false},
		{"other producer's id", &Producer{ID: "prd_0123456789abcdef0123456789abcdef", Credentials: Credentials{PasswordHash: "$2a$04$invalid"}}, sec.Password, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.CheckPassword(tt.p, tt.password); got != tt.want {
				t.Errorf("CheckPassword(%q) = %v; want %v", tt.password, got, tt.want)
			}
		})
	}
}

func TestTouchLastSeen(t *testing.T) {
	srv := natstest.Start(t)
	clk := &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	a := start(t, srv, WithClock(clk.now))
	b := start(t, srv, WithClock(clk.now))
	p, _ := create(t, a, Spec{Name: "billing"})
	kv := bucket(t, srv, stream.ProducersBucket)
	revision := func() uint64 {
		t.Helper()
		e, err := kv.Get(t.Context(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}

	if err := a.TouchLastSeen(t.Context(), p.ID); err != nil {
		t.Fatal(err)
	}
	q, _ := a.Get(p.ID)
	if !q.LastSeen.Equal(clk.now()) {
		t.Errorf("LastSeen = %v; want %v", q.LastSeen, clk.now())
	}
	eventually(t, "the other instance sees LastSeen", func() bool {
		q, ok := b.Get(p.ID)
		return ok && q.LastSeen.Equal(clk.now())
	})
	rev := revision()
	clk.add(59 * time.Second)
	for _, r := range []*Registry{a, b} {
		if err := r.TouchLastSeen(t.Context(), p.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got := revision(); got != rev {
		t.Errorf("revision after touches within the minute = %d; want %d (no write)", got, rev)
	}
	clk.add(2 * time.Second)
	if err := b.TouchLastSeen(t.Context(), p.ID); err != nil {
		t.Fatal(err)
	}
	if got := revision(); got != rev+1 {
		t.Errorf("revision after a touch a minute later = %d; want %d", got, rev+1)
	}
	if err := a.TouchLastSeen(t.Context(), "prd_0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TouchLastSeen(unknown) = %v; want ErrNotFound", err)
	}
}

func TestDelete(t *testing.T) {
	srv := natstest.Start(t)
	a, b := start(t, srv), start(t, srv)
	p, sec := create(t, a, Spec{Name: "billing", Tags: []string{"BILLING.>"}, Owns: []string{"BILLING"}})
	if _, err := a.Claim(t.Context(), "BILLING.EU", p.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other instance has the producer", func() bool { _, ok := b.ByAPIKey(HashKey(sec.APIKey)); return ok })

	if err := a.Delete(t.Context(), p.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Registry{a, b} {
		eventually(t, "the producer and its claims are gone", func() bool {
			_, byID := r.Get(p.ID)
			_, byKey := r.ByAPIKey(HashKey(sec.APIKey))
			_, byName := r.ByName("billing")
			_, owned := r.Owner("BILLING")
			_, ownedEU := r.Owner("BILLING.EU")
			return !byID && !byKey && !byName && !owned && !ownedEU
		})
	}
	if err := a.Delete(t.Context(), p.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete twice = %v; want ErrNotFound", err)
	}
	q, _ := create(t, b, Spec{Name: "billing", Owns: []string{"BILLING"}})
	if owner, _ := b.Owner("BILLING"); owner != q.ID {
		t.Errorf("Owner(BILLING) after re-creation = %q; want %q", owner, q.ID)
	}
}

// A reservation left behind by a producer that is gone (a clean-up that
// failed) does not block the name.
func TestStaleNameReservation(t *testing.T) {
	srv := natstest.Start(t)
	r := start(t, srv)
	kv := bucket(t, srv, stream.ProducersBucket)
	if _, err := kv.Create(t.Context(), namePrefix+"billing", []byte("prd_0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	p, _ := create(t, r, Spec{Name: "Billing"})
	e, err := kv.Get(t.Context(), namePrefix+"billing")
	if err != nil || string(e.Value()) != p.ID {
		t.Errorf("reservation = %v, %v; want %s", e, err, p.ID)
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := &ValidationError{Errors: []FieldError{{Pointer: "/name", Detail: "must not be empty"}, {Pointer: "/tags/0", Detail: "bad"}}}
	want := "invalid producer: /name must not be empty; /tags/0 bad"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}
