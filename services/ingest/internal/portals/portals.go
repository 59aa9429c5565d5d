// Package portals is ingest's intake for the clients of the systems
// EventSync replaces:
//
//   - the dispatcher's canonical event (POST /v1/dispatcher/events), a
//     flat JSON object translated onto POST /v1/events and written as the
//     client that sent it (write scope, its tag patterns, ownership, rate
//     limit);
//   - inbound portals (POST /v1/portals/{name}/webhook), which turn the
//     webhooks of GitLab, GitHub and any Standard Webhooks sender into
//     events. A portal is configured by an admin (PUT /v1/portals/{name})
//     with its type, secret and category; the request is authenticated by
//     the sender's signature (scope signed), not by EventSync credentials,
//     and written by ingest itself as no client: its tag always lies in the
//     portal's category.
//
// Both go through ingest's own POST /v1/events handler (its schemas, tag
// rules, body limit and idempotency), called in process without the gate
// in front: the gate already let the original request in.
//
// A portal's event id is "<portal>:<delivery id>" (X-Gitlab-Event-UUID,
// X-GitHub-Delivery, webhook-id), so JetStream drops a redelivery inside
// its dedupe window.
package portals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Type is the kind of system a portal receives webhooks from.
type Type string

// The portal types.
const (
	GitLab   Type = "gitlab"   // X-Gitlab-Token, compared in constant time
	GitHub   Type = "github"   // X-Hub-Signature-256: HMAC-SHA256 of the body
	Standard Type = "standard" // Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature
)

// defaultCategory is the category of a portal's events unless set.
var defaultCategory = map[Type]string{GitLab: "GITLAB", GitHub: "GITHUB", Standard: "WEBHOOK"}

// Portal is one configured source of webhooks.
type Portal struct {
	Name      string    `json:"name"`
	Type      Type      `json:"type"`
	Category  string    `json:"category"`
	Secret    Secret    `json:"secret"` // sealed with the portal's name in the bucket
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Secret is a portal's secret: a GitLab token, a GitHub webhook secret or
// a Standard Webhooks whsec_ key. It logs redacted.
type Secret string

// LogValue keeps the secret out of logs.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// maxNameLen keeps "<name>:<delivery id>" within the 128 bytes of an
// event id (a delivery id is hashed to 64 bytes when it is longer).
const maxNameLen = 48

// maxSecretLen bounds a secret.
const maxSecretLen = 1024

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,48}$`)

// Sentinel errors of the store.
var (
	ErrNotFound = errors.New("no such portal")
	ErrConflict = errors.New("the portal was changed meanwhile")
)

// FieldError is one rule a portal breaks.
type FieldError struct{ Pointer, Detail string }

// ValidationError lists the rules a portal breaks.
type ValidationError struct{ Errors []FieldError }

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid portal: %d error(s)", len(e.Errors))
}

// validate checks a portal about to be stored.
func (p *Portal) validate() error {
	var errs []FieldError
	if !validName.MatchString(p.Name) {
		errs = append(errs, FieldError{"name", fmt.Sprintf("must be 1 to %d of A-Z, a-z, 0-9, _ and -", maxNameLen)})
	}
	if _, ok := defaultCategory[p.Type]; !ok {
		errs = append(errs, FieldError{"/type", `must be "gitlab", "github" or "standard"`})
	}
	if err := subject.ValidateCategory(p.Category); err != nil {
		errs = append(errs, FieldError{"/category", err.Error()})
	}
	switch {
	case p.Secret == "":
		errs = append(errs, FieldError{"/secret", "is required"})
	case len(p.Secret) > maxSecretLen:
		errs = append(errs, FieldError{"/secret", fmt.Sprintf("must be at most %d bytes", maxSecretLen)})
	case p.Type == Standard:
		if _, err := standardKey(string(p.Secret)); err != nil {
			errs = append(errs, FieldError{"/secret", err.Error()})
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

// store keeps the portals in the portals bucket, their secrets sealed with
// the keyring (nil: in clear) and bound to the portal's name.
type store struct {
	kv      jetstream.KeyValue
	keyring *sealed.Keyring
}

// get returns a portal with its secret opened, and its revision.
func (s *store) get(ctx context.Context, name string) (*Portal, uint64, error) {
	p, rev, err := s.load(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if p.Secret, err = s.open(p); err != nil {
		return nil, 0, err
	}
	return p, rev, nil
}

// load returns a portal as stored (its secret sealed), and its revision.
func (s *store) load(ctx context.Context, name string) (*Portal, uint64, error) {
	if !validName.MatchString(name) {
		return nil, 0, ErrNotFound
	}
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get portal %s: %w", name, err)
	}
	var p Portal
	if err := jsonv2.Unmarshal(e.Value(), &p); err != nil {
		return nil, 0, fmt.Errorf("decode portal %s: %w", name, err)
	}
	return &p, e.Revision(), nil
}

// open returns the secret of a loaded portal.
func (s *store) open(p *Portal) (Secret, error) {
	sec, err := s.keyring.OpenFor(string(p.Secret), p.Name)
	if err != nil {
		return "", fmt.Errorf("open the secret of portal %s: %w", p.Name, err)
	}
	return Secret(sec), nil
}

// put stores p: created when rev is 0, else replacing revision rev.
func (s *store) put(ctx context.Context, p Portal, rev uint64) error {
	if err := p.validate(); err != nil {
		return err
	}
	sec, err := s.keyring.SealFor(string(p.Secret), p.Name)
	if err != nil {
		return fmt.Errorf("seal the secret of portal %s: %w", p.Name, err)
	}
	p.Secret = Secret(sec)
	b, err := jsonv2.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode portal %s: %w", p.Name, err)
	}
	if rev == 0 {
		_, err = s.kv.Create(ctx, p.Name, b)
	} else {
		_, err = s.kv.Update(ctx, p.Name, b, rev)
	}
	// A create of a taken name and an update of another revision both
	// fail with the wrong-last-sequence error that ErrKeyExists matches.
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put portal %s: %w", p.Name, err)
	}
	return nil
}

// delete removes a portal; the bucket keeps no earlier value, so its
// secret is gone.
func (s *store) delete(ctx context.Context, name string) error {
	if _, _, err := s.load(ctx, name); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, name); err != nil {
		return fmt.Errorf("delete portal %s: %w", name, err)
	}
	return nil
}

// list returns every portal, by name, secrets left sealed (nobody reads
// them from a list).
func (s *store) list(ctx context.Context) ([]Portal, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	var out []Portal
	for k := range keys.Keys() {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get portal %s: %w", k, err)
		}
		var p Portal
		if err := jsonv2.Unmarshal(e.Value(), &p); err != nil {
			return nil, fmt.Errorf("decode portal %s: %w", k, err)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Portal) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
