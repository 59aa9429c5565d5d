// Package access decides who may use which route of EventSync. Every
// credential belongs to a client (a producer.Producer) with scopes, each
// limited to tag patterns:
//
//	write      publish events with matching tags (what a producer does)
//	read       read stored and live events with matching tags
//	subscribe  manage its own webhook subscriptions on matching tags
//	consume    manage its own named consumers on matching tags
//	admin      everything: clients, schemas, every subscription and consumer
//
// One table (Routes) gives the scope of every route of every service; the
// Gate, in front of every router, authenticates the request, refuses it
// when the client lacks the route's scope, and hands the handler the
// client as a Principal (From). Handlers then narrow what they do to the
// Principal's patterns and resources.
package access

import (
	"context"
	"slices"

	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Scope is what a route needs.
type Scope string

// The scopes. Public routes need no credential.
const (
	Public    Scope = "public"
	Write     Scope = "write"
	Read      Scope = "read"
	Subscribe Scope = "subscribe"
	Consume   Scope = "consume"
	Admin     Scope = "admin"
	// Metrics is /metrics on the API port: admin scope with authentication
	// on, open with it off (the admin routes are not).
	Metrics Scope = "metrics"
	Signed  Scope = "signed" // the handler verifies the sender's signature
)

// AnyTag is the pattern of every tag.
const AnyTag = ">"

// Principal is the client a request comes from, as handlers see it.
type Principal struct {
	// ID is the client's id (prd_…), "admin" for the admin token, empty
	// with authentication off.
	ID        string
	Write     []string
	Read      []string
	Subscribe []string
	Consume   []string
	Admin     bool
	// Token is set when the request carried an access token: the id of
	// the client that made it is ID.
	Token bool
}

// Unrestricted is the principal of every request with authentication off:
// it may do everything and owns nothing in particular.
var Unrestricted = &Principal{Admin: true}

// AdminID is the id of the principal of the admin token.
const AdminID = "admin"

// FromProducer returns the principal of a client of the registry.
func FromProducer(p *producer.Producer) *Principal {
	return &Principal{
		ID:        p.ID,
		Write:     p.Tags,
		Read:      p.Scopes.Read,
		Subscribe: p.Scopes.Subscribe,
		Consume:   p.Scopes.Consume,
		Admin:     p.Scopes.Admin,
	}
}

// Patterns returns the tag patterns the principal has scope s on: [">"]
// for an admin, nil when it has no such scope.
func (p *Principal) Patterns(s Scope) []string {
	if p.Admin {
		return []string{AnyTag}
	}
	switch s {
	case Write:
		return p.Write
	case Read:
		return p.Read
	case Subscribe:
		return p.Subscribe
	case Consume:
		return p.Consume
	}
	return nil
}

// Can reports whether the principal has scope s on some tags.
func (p *Principal) Can(s Scope) bool {
	switch {
	case s == Public || p.Admin:
		return true
	case s == Admin || s == Metrics:
		return false
	}
	return len(p.Patterns(s)) > 0
}

// Allows reports whether the principal has scope s on tag.
func (p *Principal) Allows(s Scope, tag string) bool {
	return slices.ContainsFunc(p.Patterns(s), func(pat string) bool { return subject.Covers(pat, tag) })
}

// Covers reports whether every tag of pattern lies within the principal's
// patterns of scope s: one of them covers it.
func (p *Principal) Covers(s Scope, pattern string) bool {
	return slices.ContainsFunc(p.Patterns(s), func(pat string) bool { return subject.Covers(pat, pattern) })
}

// Overlaps reports whether some tag of pattern lies within the principal's
// patterns of scope s.
func (p *Principal) Overlaps(s Scope, pattern string) bool {
	return slices.ContainsFunc(p.Patterns(s), func(pat string) bool { return subject.Overlap(pat, pattern) })
}

// Restrict returns the patterns a read of scope s must be limited to: nil
// (no limit) for an admin, else the principal's patterns, never nil (an
// empty slice matches nothing).
func (p *Principal) Restrict(s Scope) []string {
	if p.Admin {
		return nil
	}
	return append([]string{}, p.Patterns(s)...)
}

// Owns reports whether a resource created by owner (a client id) is the
// principal's: its own, or any with admin scope.
func (p *Principal) Owns(owner string) bool { return p.Admin || owner == p.ID }

// Owner is the owner to record on a resource the principal creates.
func (p *Principal) Owner() string { return p.ID }

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal the Gate put in ctx. Every request of a
// running service passes the Gate, which always sets one; a handler
// called without a Gate (a package's own tests) sees Unrestricted.
func From(ctx context.Context) *Principal {
	if p, ok := ctx.Value(ctxKey{}).(*Principal); ok {
		return p
	}
	return Unrestricted
}
