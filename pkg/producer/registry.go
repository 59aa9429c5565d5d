package producer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Limits of a producer's definition.
const (
	MaxNameLen  = 64
	MaxPatterns = 100 // tag patterns, and owned categories
)

// AnyTag is the tag pattern of a producer created without any: every tag.
const AnyTag = ">"

// lastSeenEvery is how often LastSeen is written at most, per producer.
const lastSeenEvery = time.Minute

// maxAttempts bounds compare-and-swap retries.
const maxAttempts = 10

// namePrefix starts the keys of the producers bucket that reserve names:
// name.<lowercase name> = producer id. A KV Create on it decides between
// two producers wanting the same name.
const namePrefix = "name."

// Errors of registry operations.
var (
	// ErrNotFound is returned for an id no producer has.
	ErrNotFound = errors.New("no producer has this id")
	// ErrNameTaken is returned when another producer has the name (names
	// are compared case-insensitively).
	ErrNameTaken = errors.New("name is taken")
	// ErrConflict is returned when other changes to the same producer,
	// name or category kept winning the compare-and-swap: the caller may
	// try again.
	ErrConflict = errors.New("too many concurrent changes; try again")
	errSkip     = errors.New("nothing to change")
)

// FieldError is one rule a producer definition breaks.
type FieldError struct {
	Pointer string // JSON pointer into the admin API's body: /name, /tags/0, /rate/burst …
	Detail  string
}

// ValidationError lists every rule a producer definition breaks.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Pointer + " " + fe.Detail
	}
	return "invalid producer: " + strings.Join(parts, "; ")
}

// Spec is what an administrator chooses when creating a producer; the
// registry generates the id and the credentials, unless the producer is
// imported from another system with its own id and JWT secret (see ids.go).
type Spec struct {
	Name   string
	Tags   []string // tag patterns it may write; empty: [AnyTag] unless Scopes grant something
	Scopes Scopes
	Rate   Rate     // zero: the configured default
	Owns   []string // categories to claim for the producer

	// ID imports a client under the id it has elsewhere: 1 to
	// MaxImportedIDLen characters of [A-Za-z0-9._-], not starting with
	// IDPrefix, unique (else ErrIDTaken). Empty: generated.
	ID string
	// JWTSecret is the HS256 key the client already signs with, as
	// base64url of the key's bytes (an Eye client's secret_key is used as
	// HMAC key bytes as it is: encode those). Empty: generated. The
	// answer's Secrets do not repeat it.
	JWTSecret string
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock makes the registry read the time from now.
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithKeyring seals the JWT secrets the registry writes with k and opens
// them when it reads; nil keeps them in clear. Reseal re-seals with k's
// current key the secrets stored in clear or with an old key (see
// sealing.go).
func WithKeyring(k *sealed.Keyring) Option { return func(r *Registry) { r.keyring = k } }

// WithBcryptCost sets the bcrypt cost of new passwords (default
// bcrypt.DefaultCost; tests use bcrypt.MinCost).
func WithBcryptCost(cost int) Option { return func(r *Registry) { r.cost = cost } }

// Registry is the set of producers, kept in the producers bucket and
// mirrored in memory by Run, so that every lookup on the request path
// (Get, ByAPIKey, Owner) is a map read. Changes made on any instance reach
// every other through the bucket's watch. It is safe for concurrent use.
type Registry struct {
	keyring   *sealed.Keyring // seals JWT secrets at rest (see WithKeyring); nil: clear
	onError   func(id string, err error)
	kv        jetstream.KeyValue // producers
	okv       jetstream.KeyValue // owners
	now       func() time.Time
	cost      int
	passwords passwordCache
	dummyOnce sync.Once
	dummy     []byte // a bcrypt hash to spend time on when there is none

	ready     chan struct{}
	readyOnce sync.Once

	// reseal holds the records the first load found to re-seal (id →
	// revision), until Reseal takes them; firstLoad is over once the
	// producers bucket was loaded.
	resealMu  sync.Mutex
	reseal    map[string]uint64
	firstLoad bool

	mu        sync.RWMutex
	producers map[string]*Producer
	revs      map[string]uint64 // last revision applied per producer, deletes included
	byName    map[string]string // folded name -> id
	byKey     map[string]string // API key SHA-256 -> id
	owners    map[string]string // category -> id
	ownerRevs map[string]uint64

	touchMu sync.Mutex
	touched map[string]time.Time
}

// Open creates or updates the producers and owners buckets and returns a
// registry over them. It is empty until Run has loaded the buckets; Ready
// says when.
func Open(ctx context.Context, js jetstream.KeyValueManager, c stream.Config, opts ...Option) (*Registry, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, stream.ProducersConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", stream.ProducersBucket, err)
	}
	okv, err := js.CreateOrUpdateKeyValue(ctx, stream.OwnersConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", stream.OwnersBucket, err)
	}
	r := &Registry{
		kv:        kv,
		okv:       okv,
		now:       time.Now,
		cost:      bcrypt.DefaultCost,
		ready:     make(chan struct{}),
		producers: make(map[string]*Producer),
		revs:      make(map[string]uint64),
		byName:    make(map[string]string),
		byKey:     make(map[string]string),
		owners:    make(map[string]string),
		ownerRevs: make(map[string]uint64),
		touched:   make(map[string]time.Time),
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Run loads both buckets, closes Ready, and follows their changes until
// ctx is done. Call it once.
func (r *Registry) Run(ctx context.Context) error {
	pw, err := r.kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the watch started
		}
		return fmt.Errorf("watch %s: %w", stream.ProducersBucket, err)
	}
	defer pw.Stop() //nolint:errcheck // nothing to do about it on the way out
	ow, err := r.okv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the watch started
		}
		return fmt.Errorf("watch %s: %w", stream.OwnersBucket, err)
	}
	defer ow.Stop() //nolint:errcheck // nothing to do about it on the way out
	pending := 2    // initial loads still running
	loaded := func() {
		if pending--; pending == 0 {
			r.readyOnce.Do(func() { close(r.ready) })
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-pw.Updates():
			switch {
			case !ok && ctx.Err() != nil:
				return nil
			case !ok:
				return fmt.Errorf("watch %s closed", stream.ProducersBucket)
			case e == nil:
				r.loadedProducers()
				loaded()
			default:
				r.watchProducer(e)
			}
		case e, ok := <-ow.Updates():
			switch {
			case !ok && ctx.Err() != nil:
				return nil
			case !ok:
				return fmt.Errorf("watch %s closed", stream.OwnersBucket)
			case e == nil:
				loaded()
			default:
				r.watchOwner(e)
			}
		}
	}
}

// Ready is closed once Run has loaded every producer and owner: until
// then lookups find nothing.
func (r *Registry) Ready() <-chan struct{} { return r.ready }

// Get returns the producer with the given id. The producer is shared:
// callers must not modify it.
func (r *Registry) Get(id string) (*Producer, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.producers[id]
	return p, ok
}

// ByName returns the producer with the given name (case-insensitive).
func (r *Registry) ByName(name string) (*Producer, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.producers[r.byName[fold(name)]]
	return p, ok
}

// ByAPIKey returns the producer one of whose API keys has the given hex
// SHA-256 (see HashKey).
func (r *Registry) ByAPIKey(sha256hex string) (*Producer, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.producers[r.byKey[sha256hex]]
	return p, ok
}

// List returns every producer sorted by name. The producers are shared:
// callers must not modify them.
func (r *Registry) List() []*Producer {
	r.mu.RLock()
	ps := make([]*Producer, 0, len(r.producers))
	for _, p := range r.producers {
		ps = append(ps, p)
	}
	r.mu.RUnlock()
	slices.SortFunc(ps, func(a, b *Producer) int {
		return cmp.Or(cmp.Compare(fold(a.Name), fold(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	return ps
}

// CheckPassword reports whether password is p's Basic password. Successful
// checks are remembered (see passwordCache), so only the first request of
// a producer pays for bcrypt. With a nil p, or one without a password, it
// spends as long as a real check and returns false, so that callers need
// not reveal whether a producer exists.
func (r *Registry) CheckPassword(p *Producer, password string) bool {
	if p == nil || p.Credentials.PasswordHash == "" {
		r.dummyOnce.Do(func() {
			r.dummy, _ = bcrypt.GenerateFromPassword([]byte("no producer"), r.cost) // a nil hash fails the compare just as well
		})
		_ = bcrypt.CompareHashAndPassword(r.dummy, []byte(password))
		return false
	}
	return r.passwords.check(p.ID, p.Credentials.PasswordHash, password)
}

// Create registers a producer and returns it with its secrets, which are
// never available again. Claims in s.Owns are made for it; if another
// producer owns one, nothing is created and the error is an *OwnedError.
func (r *Registry) Create(ctx context.Context, s Spec) (Producer, Secrets, error) {
	p := Producer{ID: s.ID, Name: s.Name, Enabled: true, Tags: slices.Clone(s.Tags), Scopes: s.Scopes, Owns: slices.Clone(s.Owns), Rate: s.Rate}
	normalize(&p)
	jwtSecret, err := validateSpec(&p, s)
	if err != nil {
		return Producer{}, Secrets{}, err
	}
	if _, ok := r.Get(p.ID); ok && p.ID != "" {
		return Producer{}, Secrets{}, idTaken(p.ID)
	}
	if other, ok := r.ByName(p.Name); ok {
		// This instance's index may lag a delete or rename made on
		// another one: only the bucket decides.
		if hp, _, err := r.load(ctx, other.ID); err == nil && fold(hp.Name) == fold(p.Name) {
			return Producer{}, Secrets{}, nameTaken(p.Name, other.ID)
		}
	}
	var (
		sec    Secrets
		stored APIKey
	)
	if p.ID == "" {
		if p.ID, err = newID(); err != nil {
			return Producer{}, Secrets{}, err
		}
	}
	if sec.Password, p.Credentials.PasswordHash, err = newPassword(r.cost); err != nil {
		return Producer{}, Secrets{}, err
	}
	if sec.APIKey, stored, err = newAPIKey(); err != nil {
		return Producer{}, Secrets{}, err
	}
	if jwtSecret == "" {
		if sec.JWTSecret, err = newJWTSecret(); err != nil {
			return Producer{}, Secrets{}, err
		}
		jwtSecret = sec.JWTSecret
	}
	p.CreatedAt = r.now().UTC().Truncate(time.Millisecond)
	stored.CreatedAt = p.CreatedAt
	p.Credentials.APIKeys = []APIKey{stored}
	p.Credentials.JWTSecret = jwtSecret

	// The record comes first, then its name and claims: a reservation or
	// claim whose producer does not exist is stale and may be taken over.
	b, err := r.encode(&p)
	if err != nil {
		return Producer{}, Secrets{}, err
	}
	rev, err := r.kv.Create(ctx, recordKey(p.ID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return Producer{}, Secrets{}, idTaken(p.ID)
	}
	if err != nil {
		return Producer{}, Secrets{}, fmt.Errorf("create producer %s: %w", p.ID, err)
	}
	r.applyProducer(p.ID, &p, rev)
	if err := r.reserveName(ctx, p.Name, p.ID); err != nil {
		return Producer{}, Secrets{}, errors.Join(err, r.undoCreate(ctx, &p, nil))
	}
	if _, err := r.claimAll(ctx, p.ID, p.Owns); err != nil {
		return Producer{}, Secrets{}, errors.Join(err, r.undoCreate(ctx, &p, []string{p.Name}))
	}
	return p, sec, nil
}

// undoCreate removes a producer whose creation failed half-way, and the
// names it reserved.
func (r *Registry) undoCreate(ctx context.Context, p *Producer, names []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	errs := []error{}
	if err := r.kv.Delete(ctx, recordKey(p.ID)); err != nil {
		errs = append(errs, fmt.Errorf("undo create %s: %w", p.ID, err))
	}
	r.forget(p.ID, r.revision(p.ID))
	for _, n := range names {
		errs = append(errs, r.dropName(ctx, n, p.ID))
	}
	return errors.Join(errs...)
}

// Update changes a producer: fn edits a copy of the current value, which
// is then validated and written with a compare-and-swap on its revision.
// fn runs again when another change came first, so it must not have side
// effects. Categories added to Owns are claimed (an *OwnedError if another
// producer owns one), categories removed are released, a new name is
// reserved (ErrNameTaken).
func (r *Registry) Update(ctx context.Context, id string, fn func(*Producer) error) (Producer, error) {
	for range maxAttempts {
		old, rev, err := r.load(ctx, id)
		if err != nil {
			return Producer{}, err
		}
		p := clone(old)
		if err := fn(&p); err != nil {
			return Producer{}, err
		}
		if p.ID != id {
			return Producer{}, &ValidationError{Errors: []FieldError{{Pointer: "/id", Detail: "cannot change"}}}
		}
		normalize(&p)
		if err := validate(&p); err != nil {
			return Producer{}, err
		}
		renamed := fold(p.Name) != fold(old.Name)
		if other, ok := r.ByName(p.Name); renamed && ok && other.ID != id {
			return Producer{}, nameTaken(p.Name, other.ID)
		}
		took, err := r.claimAll(ctx, id, missing(old.Owns, p.Owns))
		if err != nil {
			return Producer{}, err
		}
		newRev, err := r.write(ctx, &p, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if err := r.releaseAll(ctx, id, took); err != nil {
				return Producer{}, err
			}
			continue
		}
		if err != nil {
			return Producer{}, errors.Join(err, r.releaseAll(ctx, id, took))
		}
		r.applyProducer(id, &p, newRev)
		if renamed {
			if err := r.reserveName(ctx, p.Name, id); err != nil {
				_, uerr := r.update(ctx, id, func(q *Producer) error {
					if q.Name != p.Name {
						return errSkip
					}
					q.Name, q.Owns = old.Name, old.Owns
					return nil
				})
				return Producer{}, errors.Join(err, uerr, r.releaseAll(ctx, id, took))
			}
			if err := r.dropName(ctx, old.Name, id); err != nil {
				return p, err
			}
		}
		return p, r.releaseAll(ctx, id, missing(p.Owns, old.Owns))
	}
	return Producer{}, fmt.Errorf("update producer %s: %w", id, ErrConflict)
}

// SetEnabled enables or disables a producer. A disabled producer keeps its
// credentials and claims but is refused (auth.ErrDisabled).
func (r *Registry) SetEnabled(ctx context.Context, id string, enabled bool) (Producer, error) {
	return r.update(ctx, id, func(p *Producer) error {
		p.Enabled = enabled
		return nil
	})
}

// Rotate replaces one credential of a producer and returns the new secret
// (only that member of Secrets is set). The old one stops working at once
// on every instance; a new API key replaces every earlier one.
func (r *Registry) Rotate(ctx context.Context, id string, c Credential) (Producer, Secrets, error) {
	var (
		sec    Secrets
		hash   string
		stored APIKey
		err    error
	)
	switch c {
	case CredentialPassword:
		sec.Password, hash, err = newPassword(r.cost)
	case CredentialAPIKey:
		sec.APIKey, stored, err = newAPIKey()
		stored.CreatedAt = r.now().UTC().Truncate(time.Millisecond)
	case CredentialJWTSecret:
		sec.JWTSecret, err = newJWTSecret()
	default:
		return Producer{}, Secrets{}, &ValidationError{Errors: []FieldError{{
			Pointer: "/credential", Detail: fmt.Sprintf("must be %s, %s or %s", CredentialPassword, CredentialAPIKey, CredentialJWTSecret),
		}}}
	}
	if err != nil {
		return Producer{}, Secrets{}, err
	}
	p, err := r.update(ctx, id, func(p *Producer) error {
		switch c {
		case CredentialPassword:
			p.Credentials.PasswordHash = hash
		case CredentialAPIKey:
			p.Credentials.APIKeys = []APIKey{stored}
		case CredentialJWTSecret:
			p.Credentials.JWTSecret = sec.JWTSecret
		}
		return nil
	})
	if err != nil {
		return Producer{}, Secrets{}, err
	}
	return p, sec, nil
}

// Delete removes a producer, its name and the categories it owns. The
// producer is gone once the record is; leftovers of a failed clean-up
// (reported in the error) are taken over by the next producer asking for
// that name or category.
func (r *Registry) Delete(ctx context.Context, id string) error {
	for range maxAttempts {
		p, rev, err := r.load(ctx, id)
		if err != nil {
			return err
		}
		err = r.kv.Delete(ctx, recordKey(id), jetstream.LastRevision(rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete producer %s: %w", id, err)
		}
		r.forget(id, rev)
		r.touchMu.Lock()
		delete(r.touched, id)
		r.touchMu.Unlock()
		errs := []error{r.dropName(ctx, p.Name, id)}
		cats := slices.Concat(p.Owns, r.Owned(id))
		slices.Sort(cats)
		errs = append(errs, r.releaseAll(ctx, id, slices.Compact(cats)))
		return errors.Join(errs...)
	}
	return fmt.Errorf("delete producer %s: %w", id, ErrConflict)
}

// TouchLastSeen records that a producer was just seen. It writes at most
// once a minute per producer (per instance, and not at all when another
// instance wrote within the minute), so it is cheap to call on every
// request; losing a write to a concurrent change is fine.
func (r *Registry) TouchLastSeen(ctx context.Context, id string) error {
	now := r.now().UTC()
	r.touchMu.Lock()
	if last, ok := r.touched[id]; ok && now.Sub(last) < lastSeenEvery {
		r.touchMu.Unlock()
		return nil
	}
	if p, ok := r.Get(id); ok && now.Sub(p.LastSeen) < lastSeenEvery {
		r.touched[id] = p.LastSeen
		r.touchMu.Unlock()
		return nil
	}
	r.touched[id] = now
	r.touchMu.Unlock()
	_, err := r.update(ctx, id, func(p *Producer) error {
		if now.Sub(p.LastSeen) < lastSeenEvery {
			return errSkip
		}
		p.LastSeen = now.Truncate(time.Second)
		return nil
	})
	return err
}

// update applies fn to the stored producer with a compare-and-swap,
// retrying on conflicts. fn returning errSkip leaves it as it is.
func (r *Registry) update(ctx context.Context, id string, fn func(*Producer) error) (Producer, error) {
	for range maxAttempts {
		p, rev, err := r.load(ctx, id)
		if err != nil {
			return Producer{}, err
		}
		if err := fn(&p); errors.Is(err, errSkip) {
			return p, nil
		} else if err != nil {
			return Producer{}, err
		}
		newRev, err := r.write(ctx, &p, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return Producer{}, err
		}
		r.applyProducer(id, &p, newRev)
		return p, nil
	}
	return Producer{}, fmt.Errorf("update producer %s: %w", id, ErrConflict)
}

// load reads a producer and its revision from the bucket.
func (r *Registry) load(ctx context.Context, id string) (Producer, uint64, error) {
	if !validID(id) {
		return Producer{}, 0, ErrNotFound
	}
	e, err := r.kv.Get(ctx, recordKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Producer{}, 0, ErrNotFound
	}
	if err != nil {
		return Producer{}, 0, fmt.Errorf("get producer %s: %w", id, err)
	}
	// A JWT secret that does not open stays sealed: it is written back as
	// it is, and applyProducer does not index it.
	p, err := r.decode(id, e.Value())
	if err != nil && !errors.Is(err, ErrSealedSecret) {
		return Producer{}, 0, err
	}
	return p, e.Revision(), nil
}

// write stores p if the stored revision is still rev.
func (r *Registry) write(ctx context.Context, p *Producer, rev uint64) (uint64, error) {
	b, err := r.encode(p)
	if err != nil {
		return 0, err
	}
	newRev, err := r.kv.Update(ctx, recordKey(p.ID), b, rev)
	if err != nil {
		return 0, fmt.Errorf("update producer %s: %w", p.ID, err)
	}
	return newRev, nil
}

// reserveName makes name id's. A reservation whose producer is gone or
// has another name by now is stale and taken over.
func (r *Registry) reserveName(ctx context.Context, name, id string) error {
	key := namePrefix + fold(name)
	for range maxAttempts {
		_, err := r.kv.Create(ctx, key, []byte(id))
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("reserve name %q: %w", name, err)
		}
		e, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reserve name %q: %w", name, err)
		}
		holder := string(e.Value())
		if holder == id {
			return nil
		}
		hp, _, err := r.load(ctx, holder)
		if err == nil && fold(hp.Name) == fold(name) {
			return nameTaken(name, holder)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("reserve name %q: %w", name, err)
		}
		_, err = r.kv.Update(ctx, key, []byte(id), e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reserve name %q: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("reserve name %q: %w", name, ErrConflict)
}

// dropName removes id's reservation of name, if it still holds it.
func (r *Registry) dropName(ctx context.Context, name, id string) error {
	key := namePrefix + fold(name)
	e, err := r.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release name %q: %w", name, err)
	}
	if string(e.Value()) != id {
		return nil
	}
	err = r.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("release name %q: %w", name, err)
	}
	return nil
}

func nameTaken(name, holder string) error {
	return fmt.Errorf("name %q is taken by producer %s: %w", name, holder, ErrNameTaken)
}

func idTaken(id string) error {
	return fmt.Errorf("producer id %q: %w", id, ErrIDTaken)
}

// watchProducer applies one entry of the producers bucket's watch. Name
// reservations are not producers and are skipped, and so are values that
// do not decode (there is no one to tell in a lookup but the error
// handler). A producer whose JWT secret does not open is removed: the
// version loaded before may hold a secret rotated since.
func (r *Registry) watchProducer(e jetstream.KeyValueEntry) {
	id, ok := idOfKey(e.Key())
	if !ok {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		r.forget(id, e.Revision())
		return
	}
	p, err := r.decode(id, e.Value())
	switch {
	case errors.Is(err, ErrSealedSecret):
		r.report(id, err)
		r.forget(id, e.Revision())
		return
	case err != nil:
		r.report(id, err)
		return
	case p.ID != id:
		r.report(id, fmt.Errorf("producer %s: stored with id %q", id, p.ID))
		return
	}
	r.noteReseal(id, e.Revision(), e.Value())
	r.applyProducer(id, &p, e.Revision())
}

// applyProducer indexes p as stored at revision rev, unless a later
// revision has been applied already (a write of this instance can overtake
// the watch). A producer whose JWT secret is still sealed (it did not
// open) is removed instead: the sealed text must never serve as a key.
func (r *Registry) applyProducer(id string, p *Producer, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rev <= r.revs[id] {
		return
	}
	r.revs[id] = rev
	r.unindex(id)
	if sealed.IsSealed(p.Credentials.JWTSecret) {
		return
	}
	c := clone(*p) // callers keep their copy; the index's is never written again
	p = &c
	r.producers[id] = p
	r.byName[fold(p.Name)] = id
	for _, k := range p.Credentials.APIKeys {
		r.byKey[k.SHA256] = id
	}
}

// forget removes a producer deleted after revision rev.
func (r *Registry) forget(id string, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rev < r.revs[id] {
		return
	}
	r.revs[id] = rev
	r.unindex(id)
}

// revision returns the last revision applied for id.
func (r *Registry) revision(id string) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.revs[id]
}

// unindex removes producer id from the maps; r.mu is held.
func (r *Registry) unindex(id string) {
	old := r.producers[id]
	if old == nil {
		return
	}
	delete(r.producers, id)
	n := fold(old.Name)
	if r.byName[n] == id {
		delete(r.byName, n)
		// Two producers can share a name for the moment one of them loses
		// the reservation and is removed again.
		for oid, o := range r.producers {
			if fold(o.Name) == n {
				r.byName[n] = oid
				break
			}
		}
	}
	for _, k := range old.Credentials.APIKeys {
		if r.byKey[k.SHA256] == id {
			delete(r.byKey, k.SHA256)
		}
	}
}

// normalize fills defaults and tidies lists before validation.
func normalize(p *Producer) {
	p.Name = strings.TrimSpace(p.Name)
	if len(p.Tags) == 0 {
		// A producer writes; a client given other scopes writes only
		// what it is given.
		p.Tags = nil
		if p.Scopes.IsZero() {
			p.Tags = []string{AnyTag}
		}
	}
	if len(p.Owns) == 0 {
		p.Owns = nil
	}
	if p.Rate.PerSecond < 0 {
		p.Rate.PerSecond = -1
	}
}

// validateSpec lists every rule a new producer p, made from s, breaks:
// validate's, and the import options'. It returns the JWT secret to store
// when s gives one.
func validateSpec(p *Producer, s Spec) (jwtSecret string, err error) {
	var errs []FieldError
	if s.ID != "" {
		if why := validImportedID(s.ID); why != "" {
			errs = append(errs, FieldError{Pointer: "/id", Detail: why})
		}
	}
	if s.JWTSecret != "" {
		var why string
		if jwtSecret, why = importedSecret(s.JWTSecret); why != "" {
			errs = append(errs, FieldError{Pointer: "/jwt_secret", Detail: why})
		}
	}
	if err := validate(p); err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return "", err
		}
		errs = append(ve.Errors, errs...)
	}
	if len(errs) > 0 {
		return "", &ValidationError{Errors: errs}
	}
	return jwtSecret, nil
}

// validate lists every rule p breaks, or returns nil.
func validate(p *Producer) error {
	var errs []FieldError
	add := func(ptr, format string, args ...any) {
		errs = append(errs, FieldError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
	}
	if err := validName(p.Name); err != "" {
		add("/name", "%s", err)
	}
	if len(p.Tags) > MaxPatterns {
		add("/tags", "must hold at most %d patterns", MaxPatterns)
	}
	for i, t := range p.Tags {
		if err := subject.ValidatePattern(t); err != nil {
			add("/tags/"+strconv.Itoa(i), "%q %v", t, err)
		}
	}
	for _, sc := range []struct {
		name     string
		patterns []string
	}{{"read", p.Scopes.Read}, {"subscribe", p.Scopes.Subscribe}, {"consume", p.Scopes.Consume}} {
		if len(sc.patterns) > MaxPatterns {
			add("/scopes/"+sc.name, "must hold at most %d patterns", MaxPatterns)
		}
		for i, t := range sc.patterns {
			if err := subject.ValidatePattern(t); err != nil {
				add("/scopes/"+sc.name+"/"+strconv.Itoa(i), "%q %v", t, err)
			}
		}
	}
	if p.Rate.Burst < 0 {
		add("/rate/burst", "must not be negative")
	}
	if len(p.Owns) > MaxPatterns {
		add("/owns", "must hold at most %d categories", MaxPatterns)
	}
	seen := map[string]bool{}
	for i, c := range p.Owns {
		ptr := "/owns/" + strconv.Itoa(i)
		switch err := subject.ValidateCategory(c); {
		case err != nil:
			add(ptr, "%q %v", c, err)
		case seen[c]:
			add(ptr, "%q is listed twice", c)
		case !coveredBy(p.Tags, c):
			add(ptr, "no tag pattern of the producer allows category %q", c)
		}
		seen[c] = true
	}
	if len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

// coveredBy reports whether some pattern allows a tag of category: the
// tags of a category are CATEGORY.<code>.
func coveredBy(patterns []string, category string) bool {
	for _, p := range patterns {
		if subject.ValidatePattern(p) == nil && subject.Overlap(p, category+".*") {
			return true
		}
	}
	return false
}

// validName returns why name is not a valid producer name, or "".
func validName(name string) string {
	if name == "" {
		return "must not be empty"
	}
	if len(name) > MaxNameLen {
		return fmt.Sprintf("must be at most %d characters", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return "may hold only ASCII letters, digits, '-' and '_', starting with a letter or digit"
		}
	}
	return ""
}

// fold is the form names are compared in.
func fold(name string) string { return strings.ToLower(name) }

// clone returns a deep copy of p.
func clone(p Producer) Producer {
	p.Tags = slices.Clone(p.Tags)
	p.Owns = slices.Clone(p.Owns)
	p.Scopes.Read = slices.Clone(p.Scopes.Read)
	p.Scopes.Subscribe = slices.Clone(p.Scopes.Subscribe)
	p.Scopes.Consume = slices.Clone(p.Scopes.Consume)
	p.Credentials.APIKeys = slices.Clone(p.Credentials.APIKeys)
	return p
}

// missing returns the members of b that are not in a.
func missing(a, b []string) []string {
	var out []string
	for _, s := range b {
		if !slices.Contains(a, s) {
			out = append(out, s)
		}
	}
	return out
}
