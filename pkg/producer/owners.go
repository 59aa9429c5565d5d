package producer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/subject"
)

// Ownership covers sub-categories: the owner of BILLING owns BILLING.SUB
// and BILLING.SUB.DEEP as well, so a subscriber to BILLING.> only ever
// sees its owner's events. Hence no two producers may own overlapping
// categories (one a dot-prefix of the other): a claim is refused when
// another producer owns the category, one of its prefixes or one of its
// sub-categories, whichever came first. A producer may own a category and
// some of its sub-categories. The owners bucket still has one key per
// claimed category (category -> producer id).
//
// Between instances the bucket decides. KV Create settles claims of the
// same category; claims of overlapping categories are settled by revision:
// after writing its claim, a claimant looks for other producers' claims on
// the category's prefixes and sub-categories, and withdraws its own if one
// of them is older (a lower revision). Each of two racing claimants sees
// the other's claim once both are written, and both agree on which is
// older. Should overlapping claims of two producers ever be stored anyway
// (written before this rule, or a claimant that read a lagging replica),
// writes under the overlap are refused to both: ingest refuses a category
// when any owner of it or of its prefixes is another producer.

// OwnedError is returned when a producer asks for a category that another
// producer owns, or that overlaps a category another producer owns.
type OwnedError struct {
	Category string // the category another producer owns
	Owner    string // the owning producer's id
	Claimed  string // the category asked for: Category, a prefix or a sub-category of it
}

func (e *OwnedError) Error() string {
	if e.Claimed == "" || e.Claimed == e.Category {
		return fmt.Sprintf("category %s is owned by producer %s", e.Category, e.Owner)
	}
	return fmt.Sprintf("category %s overlaps %s, which producer %s owns", e.Claimed, e.Category, e.Owner)
}

// Owner returns the id of the producer that owns exactly category, from
// memory. A category is also covered by the owners of its prefixes (see
// Prefixes): ask for each to learn who may write it.
func (r *Registry) Owner(category string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.owners[category]
	return id, ok
}

// Prefixes returns category's proper dot-prefixes, longest first:
// BILLING.SUB and BILLING for BILLING.SUB.DEEP, none for BILLING.
func Prefixes(category string) []string {
	var ps []string
	for i := strings.LastIndexByte(category, '.'); i > 0; i = strings.LastIndexByte(category[:i], '.') {
		ps = append(ps, category[:i])
	}
	return ps
}

// overlaps reports whether a and b are the same category or one is a
// dot-prefix of the other.
func overlaps(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return a == b || strings.HasPrefix(b, a) && b[len(a)] == '.'
}

// Owned returns the categories producerID owns, sorted. It includes
// categories claimed on first write, not only the producer's Owns list.
func (r *Registry) Owned(producerID string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var cats []string
	for cat, id := range r.owners {
		if id == producerID {
			cats = append(cats, cat)
		}
	}
	slices.Sort(cats)
	return cats
}

// Claim makes producerID the owner of category unless another producer
// owns it or one of its prefixes, and returns the owner either way:
// producerID when the claim holds, else the producer whose category covers
// category. When another producer owns a sub-category of category (and
// none owns category or a prefix of it), nothing is claimed and the error
// is an *OwnedError naming that sub-category. The bucket decides between
// concurrent claims, so exactly one producer wins on every instance
// (between claims of overlapping categories, the older). A claim whose owner no
// longer exists (its release failed when it was deleted) is taken over or,
// on a prefix or sub-category, released.
//
// Claim is on the request path (claiming on first write): a conflict this
// instance already knows of, with a producer it knows, is answered from
// memory without asking the bucket.
func (r *Registry) Claim(ctx context.Context, category, producerID string) (owner string, err error) {
	conflict := r.knownConflict(category, producerID)
	if conflict == nil {
		_, conflict, err = r.claim(ctx, category, producerID)
		if err != nil {
			return "", err
		}
	}
	switch {
	case conflict == nil:
		return producerID, nil
	case overlaps(conflict.Category, category) && len(conflict.Category) <= len(category):
		return conflict.Owner, nil // category or a prefix of it
	}
	return "", conflict
}

// knownConflict returns, from memory, a claim of another known producer
// that overlaps category, preferring the owner of category or of its
// longest prefix; nil when there is none. It scans every claim, which is
// cheap next to a bucket round trip.
func (r *Registry) knownConflict(category, id string) *OwnedError {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range append([]string{category}, Prefixes(category)...) {
		if holder, ok := r.owners[c]; ok && holder != id && r.producers[holder] != nil {
			return &OwnedError{Category: c, Owner: holder, Claimed: category}
		}
	}
	var found *OwnedError
	for c, holder := range r.owners {
		if holder != id && r.producers[holder] != nil && overlaps(c, category) && (found == nil || c < found.Category) {
			found = &OwnedError{Category: c, Owner: holder, Claimed: category}
		}
	}
	return found
}

// claim claims category for id in the bucket. It reports whether this
// call wrote the claim, or the claim of another producer that stands in
// its way: on category itself, a prefix or a sub-category.
func (r *Registry) claim(ctx context.Context, category, id string) (took bool, conflict *OwnedError, err error) {
	if err := subject.ValidateCategory(category); err != nil {
		return false, nil, fmt.Errorf("claim %q: category %w", category, err)
	}
	for range maxAttempts {
		rev, holder, err := r.putClaim(ctx, category, id)
		switch {
		case errors.Is(err, errRace):
			continue
		case err != nil:
			return false, nil, fmt.Errorf("claim %s: %w", category, err)
		case rev == 0 && holder == id:
			return false, nil, nil // claimed before
		case rev == 0:
			return false, &OwnedError{Category: category, Owner: holder, Claimed: category}, nil
		}
		conflict, err := r.olderOverlap(ctx, category, id, rev)
		if err == nil && conflict == nil {
			r.applyOwner(category, id, rev)
			return true, nil, nil
		}
		// Withdraw: an older claim overlaps, or none could be looked for.
		werr := r.okv.Delete(ctx, category, jetstream.LastRevision(rev))
		if werr == nil {
			r.forgetOwner(category, rev)
		}
		if err != nil {
			return false, nil, errors.Join(fmt.Errorf("claim %s: %w", category, err), werr)
		}
		if werr != nil && !errors.Is(werr, jetstream.ErrKeyRevisionMismatch) {
			return false, nil, fmt.Errorf("claim %s: withdraw: %w", category, werr)
		}
		return false, conflict, nil
	}
	return false, nil, fmt.Errorf("claim %s: %w", category, ErrConflict)
}

// errRace means the key changed while putClaim read it; try again.
var errRace = errors.New("claim changed meanwhile")

// putClaim writes id's claim on category: a new key, or over the claim of
// a producer that no longer exists. It returns the revision of the claim
// it wrote, or 0 and the holder of the claim it found (id itself, or a
// producer that exists).
func (r *Registry) putClaim(ctx context.Context, category, id string) (rev uint64, holder string, err error) {
	rev, err = r.okv.Create(ctx, category, []byte(id))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return rev, id, err
	}
	e, err := r.okv.Get(ctx, category)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, "", errRace // released in between
	}
	if err != nil {
		return 0, "", err
	}
	holder = string(e.Value())
	if holder != id {
		gone, err := r.gone(ctx, holder)
		if err != nil {
			return 0, "", err
		}
		if gone {
			rev, err = r.okv.Update(ctx, category, []byte(id), e.Revision())
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return 0, "", errRace
			}
			return rev, id, err
		}
	}
	r.applyOwner(category, holder, e.Revision())
	return 0, holder, nil
}

// olderOverlap returns the oldest claim in the bucket, older than rev, of
// another producer on a prefix or a sub-category of category; nil when
// there is none. Claims of producers that no longer exist are released
// and skipped.
func (r *Registry) olderOverlap(ctx context.Context, category, id string, rev uint64) (*OwnedError, error) {
	// One ordered watch reads every overlapping claim at once.
	w, err := r.okv.WatchFiltered(ctx, append(Prefixes(category), category+".>"), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read overlapping claims: %w", err)
	}
	defer w.Stop() //nolint:errcheck // a read-only watch; nothing to do about it
	var (
		oldest    *OwnedError
		oldestRev uint64
	)
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, fmt.Errorf("read overlapping claims: %w", ctx.Err())
		}
		if e == nil {
			return oldest, nil // every current claim was read
		}
		holder := string(e.Value())
		if holder == id || e.Revision() > rev || (oldest != nil && e.Revision() > oldestRev) {
			continue
		}
		gone, err := r.gone(ctx, holder)
		if err != nil {
			return nil, err
		}
		if gone {
			if err := r.releaseIfOwner(ctx, e.Key(), holder); err != nil {
				return nil, err
			}
			continue
		}
		oldest, oldestRev = &OwnedError{Category: e.Key(), Owner: holder, Claimed: category}, e.Revision()
	}
}

// gone reports whether producer id no longer exists, from the bucket.
func (r *Registry) gone(ctx context.Context, id string) (bool, error) {
	_, _, err := r.load(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	return false, err
}

// Release frees category whoever owns it.
func (r *Registry) Release(ctx context.Context, category string) error {
	e, err := r.okv.Get(ctx, category)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", category, err)
	}
	if err := r.okv.Delete(ctx, category); err != nil {
		return fmt.Errorf("release %s: %w", category, err)
	}
	r.forgetOwner(category, e.Revision())
	return nil
}

// releaseIfOwner frees category if producerID still owns it.
func (r *Registry) releaseIfOwner(ctx context.Context, category, producerID string) error {
	for range maxAttempts {
		e, err := r.okv.Get(ctx, category)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release %s: %w", category, err)
		}
		if string(e.Value()) != producerID {
			return nil
		}
		err = r.okv.Delete(ctx, category, jetstream.LastRevision(e.Revision()))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("release %s: %w", category, err)
		}
		r.forgetOwner(category, e.Revision())
		return nil
	}
	return fmt.Errorf("release %s: %w", category, ErrConflict)
}

// claimAll claims every category for id. On a conflict or an error it
// releases what it took and returns an *OwnedError or the error. It
// returns the categories it took.
func (r *Registry) claimAll(ctx context.Context, id string, categories []string) ([]string, error) {
	var took []string
	for _, cat := range categories {
		t, conflict, err := r.claim(ctx, cat, id)
		if t {
			took = append(took, cat)
		}
		if err == nil && conflict != nil {
			err = conflict
		}
		if err != nil {
			return nil, errors.Join(err, r.releaseAll(ctx, id, took))
		}
	}
	return took, nil
}

// releaseAll releases the categories id still owns.
func (r *Registry) releaseAll(ctx context.Context, id string, categories []string) error {
	var errs []error
	for _, cat := range categories {
		errs = append(errs, r.releaseIfOwner(ctx, cat, id))
	}
	return errors.Join(errs...)
}

// applyOwner records an owner seen in the bucket at revision rev.
func (r *Registry) applyOwner(category, id string, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rev <= r.ownerRevs[category] {
		return
	}
	r.ownerRevs[category] = rev
	r.owners[category] = id
}

// forgetOwner records that category was released after revision rev.
func (r *Registry) forgetOwner(category string, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rev < r.ownerRevs[category] {
		return
	}
	r.ownerRevs[category] = rev
	delete(r.owners, category)
}

// watchOwner applies one entry of the owners bucket's watch.
func (r *Registry) watchOwner(e jetstream.KeyValueEntry) {
	if e.Operation() == jetstream.KeyValuePut {
		r.applyOwner(e.Key(), string(e.Value()), e.Revision())
		return
	}
	r.forgetOwner(e.Key(), e.Revision())
}

// Owners returns a copy of every claim: category -> producer id.
func (r *Registry) Owners() map[string]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.owners)
}
