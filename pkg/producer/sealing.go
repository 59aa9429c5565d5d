package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/sealed"
)

// Secrets at rest. Passwords and API keys are stored hashed, but HS256
// needs the JWT secret itself: with a keyring (WithKeyring) the bucket
// holds it sealed for the producer's id (sealed.SealFor), and the registry
// opens it when it reads a record. The producers in memory, which
// authentication uses, hold it in clear; no other value is sealed.
//
//	stored value          keyring            read as
//	clear                 none or any        clear (written before a key was set); Reseal seals it
//	sealed, current key   holds it           clear
//	sealed, old key       holds it as old    clear; Reseal seals it with the current key
//	sealed, unknown key   does not hold it   skipped (ErrSealedSecret): not loaded, cannot authenticate
//
// A record whose secret does not open is still readable for the admin
// API's changes (rename, disable, delete): its sealed secret is written
// back untouched, and rotating the JWT secret replaces it.
//
// Every write seals with the current key. What the first load found in
// clear or under an old key is re-sealed by Reseal, which only the
// service that writes the registry calls (ingest: the other services may
// only read the bucket).

// ErrSealedSecret means a producer's stored JWT secret was sealed with a key
// the registry's keyring does not hold (or was tampered with): the producer
// is not loaded until the key is configured again (as an old key) or its
// JWT secret is rotated.
var ErrSealedSecret = errors.New("the stored JWT secret does not open with the configured secrets keys")

// WithErrorHandler makes the registry tell fn about each record it skips
// (a value that does not decode, a JWT secret that does not open), with
// the producer id. The registry logs nothing itself.
func WithErrorHandler(fn func(id string, err error)) Option {
	return func(r *Registry) { r.onError = fn }
}

// report passes a skipped record's error to the error handler.
func (r *Registry) report(id string, err error) {
	if r.onError != nil {
		r.onError(id, err)
	}
}

// encode returns the bucket value of p: p with its JWT secret sealed for
// its id. A secret that is still sealed (one decode could not open) is
// written back as it is.
func (r *Registry) encode(p *Producer) ([]byte, error) {
	s := *p
	if v := s.Credentials.JWTSecret; v != "" && !sealed.IsSealed(v) {
		sv, err := r.keyring.SealFor(v, p.ID)
		if err != nil {
			return nil, fmt.Errorf("seal the jwt secret of %s: %w", p.ID, err)
		}
		s.Credentials.JWTSecret = sv
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode producer: %w", err)
	}
	return b, nil
}

// decode reads the bucket value of producer id with its JWT secret open.
// When the secret does not open, the producer keeps the sealed value and
// the error wraps ErrSealedSecret.
func (r *Registry) decode(id string, b []byte) (Producer, error) {
	var p Producer
	if err := json.Unmarshal(b, &p); err != nil {
		return Producer{}, fmt.Errorf("decode producer %s: %w", id, err)
	}
	if v := p.Credentials.JWTSecret; v != "" {
		clear, err := r.keyring.OpenFor(v, id)
		if err != nil {
			return p, fmt.Errorf("producer %s: %w: %w", id, ErrSealedSecret, err)
		}
		p.Credentials.JWTSecret = clear
	}
	return p, nil
}

// noteReseal remembers, while the bucket is first loaded, that the
// record of id at revision rev holds a JWT secret stored in clear or
// sealed with an old key.
func (r *Registry) noteReseal(id string, rev uint64, stored []byte) {
	if r.keyring == nil {
		return
	}
	r.resealMu.Lock()
	defer r.resealMu.Unlock()
	if r.firstLoad {
		return
	}
	var raw struct {
		Credentials struct {
			JWTSecret string `json:"jwt_secret"`
		} `json:"credentials"`
	}
	if json.Unmarshal(stored, &raw) != nil || raw.Credentials.JWTSecret == "" || !r.keyring.NeedsReseal(raw.Credentials.JWTSecret) {
		return
	}
	if r.reseal == nil {
		r.reseal = make(map[string]uint64)
	}
	r.reseal[id] = rev
}

// loadedProducers ends the first load of the producers bucket.
func (r *Registry) loadedProducers() {
	r.resealMu.Lock()
	defer r.resealMu.Unlock()
	r.firstLoad = true
}

// Reseal writes back, sealed with the keyring's current key, every
// producer whose JWT secret the first load found in clear or sealed with
// an old key, so that old keys can be dropped. It waits until Run has
// loaded the bucket. Each write is a compare-and-swap on the revision the
// record was loaded at: a record changed meanwhile was sealed by that
// change, so a conflict is skipped, not an error. It returns how many
// records it re-sealed and the errors of those it could not write. Only
// the service that writes the registry calls it, once.
func (r *Registry) Reseal(ctx context.Context) (int, error) {
	select {
	case <-r.ready:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	r.resealMu.Lock()
	pending := r.reseal
	r.reseal = nil
	r.resealMu.Unlock()
	var (
		n    int
		errs []error
	)
	for id, rev := range pending {
		r.mu.RLock()
		p, ok := r.producers[id]
		current := r.revs[id] == rev
		r.mu.RUnlock()
		if !ok || !current {
			continue
		}
		b, err := r.encode(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		newRev, err := r.kv.Update(ctx, recordKey(id), b, rev)
		switch {
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		case err != nil:
			errs = append(errs, fmt.Errorf("re-seal producer %s: %w", id, err))
		default:
			r.applyProducer(id, p, newRev)
			n++
		}
	}
	return n, errors.Join(errs...)
}
