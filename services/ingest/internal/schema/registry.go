package schema

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/message"

	"github.com/eventsync/eventsync/pkg/subject"
)

// Key prefixes of the bucket (see the package documentation).
const (
	categoryPrefix = "category."
	tagPrefix      = "tag."
)

// putAttempts is how often Put retries when another writer changed the key
// between its read and its write.
const putAttempts = 5

// ErrConflict is returned by Put when other writers kept changing the same
// schema while it tried to store a new version.
var ErrConflict = errors.New("schema changed concurrently")

// Option configures a Registry.
type Option func(*Registry)

// WithClock makes the Registry read the time (UpdatedAt) from now instead
// of time.Now.
func WithClock(now func() time.Time) Option {
	return func(r *Registry) { r.now = now }
}

// WithInvalidHandler has Run call f for a bucket value it cannot apply: an
// unknown key, a value that is not an Entry, or a schema that no longer
// compiles (written around Put). Run drops such a schema from the cache
// and carries on. By default these are ignored.
func WithInvalidHandler(f func(key string, err error)) Option {
	return func(r *Registry) { r.invalid = f }
}

// schemaKey identifies a cached schema; code is empty for a category's.
type schemaKey struct{ category, code string }

// Registry stores schemas in the schemas bucket and validates event data
// against the compiled schemas that Run keeps in memory. Its methods are
// safe for concurrent use.
type Registry struct {
	kv      jetstream.KeyValue
	now     func() time.Time
	invalid func(key string, err error)
	printer *message.Printer

	// cache is replaced, never changed in place, so Validate reads it
	// without a lock.
	cache      atomic.Pointer[map[schemaKey]*compiled]
	synced     chan struct{}
	syncedOnce sync.Once
}

// New returns a Registry over the schemas bucket (see
// stream.SchemasConfig). It starts nothing: Validate knows no schema until
// Run has loaded them.
func New(kv jetstream.KeyValue, opts ...Option) *Registry {
	r := &Registry{
		kv:      kv,
		now:     time.Now,
		invalid: func(string, error) {},
		printer: newPrinter(),
		synced:  make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Put validates and stores a schema document for a category (code empty)
// or a category and code, as the next version. It reports whether no
// schema was there before. An unusable document is an *InvalidError.
func (r *Registry) Put(ctx context.Context, category, code string, doc []byte) (Entry, bool, error) {
	if err := checkName(category, code); err != nil {
		return Entry{}, false, err
	}
	n := name(category, code)
	if _, err := compile(n, doc); err != nil {
		return Entry{}, false, err
	}
	// The compiler reads a member named twice as the last one; the
	// author may have meant either, and readers of the stored document
	// refuse it. Invalid UTF-8 could not be shown back as written.
	if !jsontext.Value(doc).IsValid() {
		return Entry{}, false, &InvalidError{Reason: "the schema names a member twice in one object or holds invalid UTF-8"}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return Entry{}, false, &InvalidError{Reason: "the schema is not JSON: " + err.Error()}
	}
	k := key(category, code)
	for range putAttempts {
		rev, live, version, err := r.latest(ctx, k)
		if err != nil {
			return Entry{}, false, err
		}
		e := Entry{Category: category, Code: code, Version: version + 1, UpdatedAt: r.now().UTC(), Schema: compact.Bytes()}
		val, err := encode(e)
		if err != nil {
			return Entry{}, false, fmt.Errorf("encode schema %s: %w", n, err)
		}
		// Revision 0 means the key must not exist yet; otherwise the
		// write only succeeds if nobody wrote since our read.
		_, err = r.kv.Update(ctx, k, val, rev)
		if err == nil {
			return e, !live, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return Entry{}, false, fmt.Errorf("put schema %s: %w", n, err)
		}
	}
	return Entry{}, false, fmt.Errorf("put schema %s: %w", n, ErrConflict)
}

// encode marshals an Entry, keeping the schema as written (json.Marshal
// would escape its '<', '>' and '&').
func encode(e Entry) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// latest reads a key's history: the revision to write after, whether the
// key holds a schema now, and the highest version it ever held.
func (r *Registry) latest(ctx context.Context, k string) (rev uint64, live bool, version int64, err error) {
	entries, err := r.kv.History(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, 0, nil
	}
	if err != nil {
		return 0, false, 0, fmt.Errorf("read schema history %s: %w", k, err)
	}
	for _, e := range entries {
		var v struct {
			Version int64 `json:"version"`
		}
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &v) == nil {
			version = max(version, v.Version)
		}
	}
	last := entries[len(entries)-1]
	return last.Revision(), last.Operation() == jetstream.KeyValuePut, version, nil
}

// Get returns the current schema of a category (code empty) or of a
// category and code, or ErrNotFound.
func (r *Registry) Get(ctx context.Context, category, code string) (Entry, error) {
	if err := checkName(category, code); err != nil {
		return Entry{}, err
	}
	kve, err := r.kv.Get(ctx, key(category, code))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, fmt.Errorf("get schema %s: %w", name(category, code), ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get schema %s: %w", name(category, code), err)
	}
	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return Entry{}, fmt.Errorf("decode schema %s: %w", name(category, code), err)
	}
	return e, nil
}

// Delete removes the schema of a category (code empty) or of a category
// and code, or returns ErrNotFound. The key's history stays, so a later
// Put continues its version numbers.
func (r *Registry) Delete(ctx context.Context, category, code string) error {
	if err := checkName(category, code); err != nil {
		return err
	}
	k := key(category, code)
	kve, err := r.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete schema %s: %w", name(category, code), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete schema %s: %w", name(category, code), err)
	}
	// Only the version read: a concurrent Put wins over this delete.
	err = r.kv.Delete(ctx, k, jetstream.LastRevision(kve.Revision()))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("delete schema %s: %w", name(category, code), ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete schema %s: %w", name(category, code), err)
	}
	return nil
}

// List returns every stored schema without its document, sorted by
// category, then code (a category's own schema first).
func (r *Registry) List(ctx context.Context) ([]Entry, error) {
	w, err := r.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	defer func() { _ = w.Stop() }()
	list := []Entry{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list schemas: %w", ctx.Err())
		case kve, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list schemas: watch stopped")
			}
			if kve == nil {
				slices.SortFunc(list, func(a, b Entry) int {
					return cmp.Or(cmp.Compare(a.Category, b.Category), cmp.Compare(a.Code, b.Code))
				})
				return list, nil
			}
			category, code, err := parseKey(kve.Key())
			if err != nil {
				continue
			}
			var e Entry
			if json.Unmarshal(kve.Value(), &e) != nil {
				continue
			}
			e.Category, e.Code, e.Schema = category, code, nil
			list = append(list, e)
		}
	}
}

// Run keeps the cache of compiled schemas current with a watch on the
// bucket until ctx is done. A change reaches Validate as soon as the
// watch delivers it, on every instance. After a restart of Run the cache
// is rebuilt from the bucket.
func (r *Registry) Run(ctx context.Context) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the watch started
		}
		return fmt.Errorf("watch schemas: %w", err)
	}
	defer func() { _ = w.Stop() }()
	// The initial values go into a fresh map published when the watch
	// says it has sent them all: until then Validate keeps the old one.
	next := map[schemaKey]*compiled{}
	loading := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case kve, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("watch schemas: watch stopped")
			}
			if kve == nil {
				if loading {
					r.cache.Store(&next)
					loading = false
					r.syncedOnce.Do(func() { close(r.synced) })
				}
				continue
			}
			if loading {
				r.apply(next, kve)
				continue
			}
			m := clone(r.cache.Load())
			r.apply(m, kve)
			r.cache.Store(&m)
		}
	}
}

// Synced is closed once Run has loaded every stored schema.
func (r *Registry) Synced() <-chan struct{} { return r.synced }

// apply puts a bucket change into m.
func (r *Registry) apply(m map[schemaKey]*compiled, kve jetstream.KeyValueEntry) {
	category, code, err := parseKey(kve.Key())
	if err != nil {
		r.invalid(kve.Key(), err)
		return
	}
	sk := schemaKey{category, code}
	if kve.Operation() != jetstream.KeyValuePut {
		delete(m, sk)
		return
	}
	c, err := r.compileEntry(category, code, kve.Value())
	if err != nil {
		delete(m, sk)
		r.invalid(kve.Key(), err)
		return
	}
	m[sk] = c
}

// compileEntry decodes and compiles a stored Entry.
func (r *Registry) compileEntry(category, code string, value []byte) (*compiled, error) {
	var e Entry
	if err := json.Unmarshal(value, &e); err != nil {
		return nil, fmt.Errorf("decode entry: %w", err)
	}
	n := name(category, code)
	sch, err := compile(n, e.Schema)
	if err != nil {
		return nil, err
	}
	return &compiled{name: n, sch: sch}, nil
}

// clone copies the cache for a change.
func clone(m *map[schemaKey]*compiled) map[schemaKey]*compiled {
	if m == nil {
		return map[schemaKey]*compiled{}
	}
	c := make(map[schemaKey]*compiled, len(*m)+1)
	for k, v := range *m {
		c[k] = v
	}
	return c
}

// Validate checks an event's data against the schema of its category and
// the schema of its category and code, when they exist: the data must pass
// both. Absent data is checked as null. It returns nil for valid data or an
// event without schemas, else at most MaxErrors errors (plus one saying how
// many more there were), each pointing into the event at /data/….
func (r *Registry) Validate(category, code string, data []byte) []FieldError {
	m := r.cache.Load()
	if m == nil || len(*m) == 0 {
		return nil
	}
	cat := (*m)[schemaKey{category, ""}]
	var tag *compiled
	if code != "" {
		tag = (*m)[schemaKey{category, code}]
	}
	if cat == nil && tag == nil {
		return nil
	}
	var v any // nil is JSON null
	if len(bytes.TrimSpace(data)) > 0 {
		var err error
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(data)); err != nil {
			return []FieldError{{Pointer: "/data", Detail: "is not valid JSON"}}
		}
	}
	var errs []FieldError
	var n int
	if cat != nil {
		n += cat.validate(v, r.printer, &errs)
	}
	if tag != nil {
		n += tag.validate(v, r.printer, &errs)
	}
	if n > len(errs) {
		errs = append(errs, moreErrors(n-len(errs)))
	}
	return errs
}

// checkName validates a category and an optional code.
func checkName(category, code string) error {
	if err := subject.ValidateCategory(category); err != nil {
		return fmt.Errorf("category %q: %w", category, err)
	}
	if code == "" {
		return nil
	}
	if err := subject.ValidateCode(code); err != nil {
		return fmt.Errorf("code %q: %w", code, err)
	}
	if _, _, err := subject.SplitTag(subject.Tag(category, code)); err != nil {
		return fmt.Errorf("tag %q: %w", subject.Tag(category, code), err)
	}
	return nil
}

// key is the bucket key of a category's (code empty) or a tag's schema.
func key(category, code string) string {
	if code == "" {
		return categoryPrefix + category
	}
	return tagPrefix + subject.Tag(category, code)
}

// parseKey is the reverse of key.
func parseKey(k string) (category, code string, err error) {
	if c, ok := strings.CutPrefix(k, categoryPrefix); ok {
		if err := subject.ValidateCategory(c); err != nil {
			return "", "", fmt.Errorf("key %q: %w", k, err)
		}
		return c, "", nil
	}
	if t, ok := strings.CutPrefix(k, tagPrefix); ok {
		category, code, err := subject.SplitTag(t)
		if err != nil {
			return "", "", fmt.Errorf("key %q: %w", k, err)
		}
		return category, code, nil
	}
	return "", "", fmt.Errorf("key %q: not category.<CATEGORY> or tag.<CATEGORY>.<CODE>", k)
}
