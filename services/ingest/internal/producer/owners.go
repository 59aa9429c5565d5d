package producer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/subject"
)

// OwnedError is returned when a producer asks for a category that another
// producer owns.
type OwnedError struct {
	Category string
	Owner    string // the owning producer's id
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("category %s is owned by producer %s", e.Category, e.Owner)
}

// Owner returns the id of the producer that owns category, from memory.
func (r *Registry) Owner(category string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.owners[category]
	return id, ok
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
// owns it, and returns the owner either way: producerID when the claim
// holds. The bucket's Create decides between concurrent claims, so exactly
// one producer wins on every instance. A category whose owner no longer
// exists (its release failed when it was deleted) is taken over.
func (r *Registry) Claim(ctx context.Context, category, producerID string) (owner string, err error) {
	owner, _, err = r.claim(ctx, category, producerID)
	return owner, err
}

// claim is Claim that also reports whether this call took the category.
func (r *Registry) claim(ctx context.Context, category, id string) (owner string, took bool, err error) {
	if err := subject.ValidateCategory(category); err != nil {
		return "", false, fmt.Errorf("claim %q: category %w", category, err)
	}
	for range maxAttempts {
		rev, err := r.okv.Create(ctx, category, []byte(id))
		if err == nil {
			r.applyOwner(category, id, rev)
			return id, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", false, fmt.Errorf("claim %s: %w", category, err)
		}
		e, err := r.okv.Get(ctx, category)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released in between
		}
		if err != nil {
			return "", false, fmt.Errorf("claim %s: %w", category, err)
		}
		holder := string(e.Value())
		if holder != id {
			_, _, err := r.load(ctx, holder)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return "", false, fmt.Errorf("claim %s: %w", category, err)
			}
			if err != nil { // the holder is gone: take the category over
				rev, err := r.okv.Update(ctx, category, []byte(id), e.Revision())
				if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					continue
				}
				if err != nil {
					return "", false, fmt.Errorf("claim %s: %w", category, err)
				}
				r.applyOwner(category, id, rev)
				return id, true, nil
			}
		}
		r.applyOwner(category, holder, e.Revision())
		return holder, false, nil
	}
	return "", false, fmt.Errorf("claim %s: %w", category, ErrConflict)
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
		owner, t, err := r.claim(ctx, cat, id)
		if t {
			took = append(took, cat)
		}
		if err == nil && owner != id {
			err = &OwnedError{Category: cat, Owner: owner}
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
