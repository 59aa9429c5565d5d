package producer

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
)

// keyring parses a current key and old keys or fails the test.
func keyring(t *testing.T, current, old string) *sealed.Keyring {
	t.Helper()
	k, err := sealed.ParseKeys(current, old)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// errorLog collects what a registry tells its error handler.
type errorLog struct {
	mu   sync.Mutex
	errs map[string]error
}

func (l *errorLog) option() Option {
	return WithErrorHandler(func(id string, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.errs == nil {
			l.errs = map[string]error{}
		}
		l.errs[id] = err
	})
}

func (l *errorLog) get(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs[id]
}

// storedSecret returns the raw value and the jwt_secret of producer id as
// the bucket holds them.
func storedSecret(t *testing.T, kv jetstream.KeyValue, id string) (raw, secret string) {
	t.Helper()
	e, err := kv.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var p Producer
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		t.Fatal(err)
	}
	return string(e.Value()), p.Credentials.JWTSecret
}

func TestSecretsSealedAtRest(t *testing.T) {
	key := sealed.GenerateKey()
	srv := natstest.Start(t)
	r := start(t, srv, WithKeyring(keyring(t, key, "")))
	kv := bucket(t, srv, stream.ProducersBucket)
	p, sec := create(t, r, Spec{Name: "billing"})

	raw, stored := storedSecret(t, kv, p.ID)
	if strings.Contains(raw, sec.JWTSecret) || !sealed.IsSealed(stored) {
		t.Fatalf("stored jwt_secret = %q; want it sealed, the clear secret nowhere in the value", stored)
	}
	if got, err := keyring(t, key, "").OpenFor(stored, p.ID); err != nil || got != sec.JWTSecret {
		t.Errorf("OpenFor(stored, %s) = %q, %v; want the secret", p.ID, got, err)
	}
	if _, err := keyring(t, key, "").OpenFor(stored, "prd_other"); err == nil {
		t.Errorf("the stored secret opens for another producer id; want it bound to %s", p.ID)
	}
	// Memory holds it in clear, on this instance and on another with the
	// same key.
	if got, _ := r.Get(p.ID); got.Credentials.JWTSecret != sec.JWTSecret || p.Credentials.JWTSecret != sec.JWTSecret {
		t.Errorf("in memory the JWT secret is not the clear one")
	}
	other := start(t, srv, WithKeyring(keyring(t, key, "")))
	if got, ok := other.Get(p.ID); !ok || got.Credentials.JWTSecret != sec.JWTSecret {
		t.Errorf("another instance with the key: Get = %v; want the clear secret", ok)
	}

	// Every write seals: a rotation, and a change that keeps the secret.
	_, rot, err := r.Rotate(t.Context(), p.ID, CredentialJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	if raw, stored := storedSecret(t, kv, p.ID); strings.Contains(raw, rot.JWTSecret) || !sealed.IsSealed(stored) {
		t.Errorf("after rotation, stored jwt_secret = %q; want it sealed", stored)
	}
	if _, err := r.SetEnabled(t.Context(), p.ID, false); err != nil {
		t.Fatal(err)
	}
	if raw, stored := storedSecret(t, kv, p.ID); strings.Contains(raw, rot.JWTSecret) || !sealed.IsSealed(stored) {
		t.Errorf("after a change, stored jwt_secret = %q; want it sealed", stored)
	}
	if got, _ := r.Get(p.ID); got.Credentials.JWTSecret != rot.JWTSecret {
		t.Errorf("after a change, the JWT secret in memory is not the rotated one")
	}
}

// Without a key the secret is stored in clear, as before keys existed.
func TestSecretsClearWithoutKey(t *testing.T) {
	srv := natstest.Start(t)
	r := start(t, srv)
	p, sec := create(t, r, Spec{Name: "billing"})
	if _, stored := storedSecret(t, bucket(t, srv, stream.ProducersBucket), p.ID); stored != sec.JWTSecret {
		t.Errorf("stored jwt_secret = %q; want the clear secret", stored)
	}
}

// Configuring a key on a registry written in clear, then rotating keys:
// Reseal seals with the current key what it did not seal. Loading alone
// writes nothing (the services that only read the registry load it).
func TestSecretsResealed(t *testing.T) {
	srv := natstest.Start(t)
	p, sec := create(t, start(t, srv), Spec{Name: "billing"})
	q, _ := create(t, start(t, srv), Spec{Name: "orders"})
	kv := bucket(t, srv, stream.ProducersBucket)

	first, second := sealed.GenerateKey(), sealed.GenerateKey()
	steps := []struct {
		name     string
		current  string
		old      string
		resealed int
	}{
		{"clear to the first key", first, "", 2},
		{"first key to the second", second, first, 2},
		{"already sealed with the current key", second, "", 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var errs errorLog
			k := keyring(t, st.current, st.old)
			_, before := storedSecret(t, kv, p.ID)
			r := start(t, srv, WithKeyring(k), errs.option())
			if got, ok := r.Get(p.ID); !ok || got.Credentials.JWTSecret != sec.JWTSecret {
				t.Fatalf("Get(%s) = %v; want the original clear secret before any re-seal", p.ID, ok)
			}
			if _, after := storedSecret(t, kv, p.ID); after != before {
				t.Errorf("loading rewrote the stored secret; want only Reseal to")
			}
			n, err := r.Reseal(t.Context())
			if err != nil || n != st.resealed {
				t.Errorf("Reseal = %d, %v; want %d, nil", n, err, st.resealed)
			}
			if n, err := r.Reseal(t.Context()); n != 0 || err != nil {
				t.Errorf("Reseal again = %d, %v; want 0, nil", n, err)
			}
			for _, id := range []string{p.ID, q.ID} {
				raw, stored := storedSecret(t, kv, id)
				if !sealed.IsSealed(stored) || k.NeedsReseal(stored) || strings.Contains(raw, sec.JWTSecret) {
					t.Errorf("%s: stored jwt_secret = %q; want it sealed with the current key", id, stored)
				}
				if err := errs.get(id); err != nil {
					t.Errorf("%s: error handler got %v", id, err)
				}
			}
			// Only the current key is needed from now on.
			_, stored := storedSecret(t, kv, p.ID)
			if got, err := keyring(t, st.current, "").OpenFor(stored, p.ID); err != nil || got != sec.JWTSecret {
				t.Errorf("the current key alone opens %q, %v; want the original secret", got, err)
			}
			if got, ok := r.Get(p.ID); !ok || got.Credentials.JWTSecret != sec.JWTSecret {
				t.Errorf("Get(%s) = %v; want the original clear secret", p.ID, ok)
			}
		})
	}
}

// A record sealed with a key the registry does not hold is skipped, not
// a crash; the admin can still change or delete it, and rotating its JWT
// secret makes it usable again.
func TestSecretsWithUnknownKey(t *testing.T) {
	srv := natstest.Start(t)
	lost := sealed.GenerateKey()
	old := start(t, srv, WithKeyring(keyring(t, lost, "")))
	kv := bucket(t, srv, stream.ProducersBucket)
	p, _ := create(t, old, Spec{Name: "billing", Owns: []string{"BILLING"}})
	x, _ := create(t, old, Spec{Name: "gone", Owns: []string{"GONE"}})
	q, qsec := create(t, start(t, srv), Spec{Name: "orders"}) // clear: still loads

	for _, tt := range []struct {
		name string
		k    *sealed.Keyring
	}{
		{"no key", nil},
		{"another key", keyring(t, sealed.GenerateKey(), "")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var errs errorLog
			r := start(t, srv, WithKeyring(tt.k), errs.option())
			if _, ok := r.Get(p.ID); ok {
				t.Errorf("Get(%s) found a producer whose secret does not open", p.ID)
			}
			if err := errs.get(p.ID); !errors.Is(err, ErrSealedSecret) {
				t.Errorf("error handler got %v; want ErrSealedSecret", err)
			}
			if got, ok := r.Get(q.ID); !ok || got.Credentials.JWTSecret != qsec.JWTSecret {
				t.Errorf("Get(%s) = %v; want the producer stored in clear", q.ID, ok)
			}
		})
	}

	var errs errorLog
	r := start(t, srv, WithKeyring(keyring(t, sealed.GenerateKey(), "")), errs.option())
	_, before := storedSecret(t, kv, p.ID)
	if _, err := r.Update(t.Context(), p.ID, func(p *Producer) error { p.Name = "payments"; return nil }); err != nil {
		t.Fatalf("Update of a producer whose secret does not open = %v", err)
	}
	if _, after := storedSecret(t, kv, p.ID); after != before {
		t.Errorf("Update rewrote the sealed secret %q as %q; want it kept", before, after)
	}
	if got, err := keyring(t, lost, "").OpenFor(before, p.ID); err != nil || got == "" {
		t.Errorf("the kept secret no longer opens with its key: %v", err)
	}
	if _, ok := r.Get(p.ID); ok {
		t.Errorf("Get(%s) after Update found it; want it still skipped", p.ID)
	}
	_, sec, err := r.Rotate(t.Context(), p.ID, CredentialJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Get(p.ID); !ok || got.Credentials.JWTSecret != sec.JWTSecret || got.Name != "payments" {
		t.Errorf("Get(%s) after rotating the JWT secret = %v; want it loaded with the new secret", p.ID, ok)
	}
	if err := r.Delete(t.Context(), x.ID); err != nil {
		t.Errorf("Delete of a producer whose secret does not open = %v", err)
	}
	if _, err := kv.Get(t.Context(), x.ID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("after Delete, the record: %v; want it gone", err)
	}
	if _, ok := r.Owner("GONE"); ok {
		t.Errorf("after Delete, its category is still owned")
	}
}

// A record changed between the first load and its re-seal is left as the
// change wrote it: the compare-and-swap conflict is not an error.
func TestResealConflictIgnored(t *testing.T) {
	srv := natstest.Start(t)
	p, sec := create(t, start(t, srv), Spec{Name: "billing"})
	kv := bucket(t, srv, stream.ProducersBucket)

	js, err := stream.JetStream(srv.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(t.Context(), js, stream.Config{}, WithKeyring(keyring(t, sealed.GenerateKey(), "")))
	if err != nil {
		t.Fatal(err)
	}
	// The first load, as Run does it, then a change before the re-seal.
	e, err := kv.Get(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.watchProducer(e)
	r.loadedProducers()
	r.readyOnce.Do(func() { close(r.ready) })
	changed := strings.Replace(string(e.Value()), `"name":"billing"`, `"name":"changed"`, 1)
	if _, err := kv.Put(t.Context(), p.ID, []byte(changed)); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Reseal(t.Context()); n != 0 || err != nil {
		t.Errorf("Reseal = %d, %v; want 0, nil for a conflict", n, err)
	}
	if raw, _ := storedSecret(t, kv, p.ID); raw != changed {
		t.Errorf("stored = %s; want the change left alone", raw)
	}
	if got, ok := r.Get(p.ID); !ok || got.Credentials.JWTSecret != sec.JWTSecret {
		t.Errorf("Get after the conflict = %v; want the producer as first loaded", ok)
	}
}
