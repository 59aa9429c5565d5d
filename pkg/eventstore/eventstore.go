// Package eventstore holds the contract shared by EventSync's event stores
// (ClickHouse and the embedded SQLite store): what a query asks for and the
// errors a store returns. The conformance suite in storetest checks that every
// backend keeps it.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Sentinel errors returned by stores.
var (
	// ErrNotFound means no stored event has the requested id.
	ErrNotFound = errors.New("event not found")
	// ErrUnavailable wraps errors caused by the backend being unreachable
	// (connection refused or lost, timeouts); callers answer 503.
	ErrUnavailable = errors.New("event store unavailable")
)

// Order selects the order of query results.
type Order int

// Orders of query results.
const (
	// BySeq is ascending stream sequence: the cursor order.
	BySeq Order = iota
	// BySeqDesc is descending stream sequence: newest first.
	BySeqDesc
	// ByTime is ascending event timestamp, then sequence.
	ByTime
)

// Filter selects stored events. Zero fields do not filter; the fields
// combine with AND.
type Filter struct {
	After       uint64   // seq > After
	Through     uint64   // seq <= Through; 0 means no upper bound
	Category    string   // exact category
	Code        string   // exact code
	TagPattern  string   // NATS-style tag pattern, validated by package subject
	Allowed     []string // tag patterns the caller may read; nil: no restriction; an empty non-nil slice: nothing
	SessionID   string
	Source      string
	MinSeverity event.Severity // severity >= MinSeverity
	From        time.Time      // timestamp >= From
	To          time.Time      // timestamp < To
	Order       Order
	Limit       int // maximum number of events; must be > 0
}

// Bucket is the width of a time bucket in stats.
type Bucket int

// Bucket widths supported by every backend.
const (
	Minute Bucket = iota
	Hour
	Day
)

// StatsFilter selects what Stats counts. Its fields combine with AND.
type StatsFilter struct {
	From       time.Time // inclusive; required
	To         time.Time // exclusive; required
	Bucket     Bucket
	TagPattern string   // optional NATS-style tag pattern
	Allowed    []string // tag patterns the caller may read; nil: no restriction; an empty non-nil slice: nothing
}

// Allows reports whether a caller restricted to the tag patterns allowed
// (as in Filter.Allowed) may read an event with this tag: always for nil,
// otherwise when some pattern matches the tag. An invalid pattern matches
// nothing. Store.Event does not filter, so callers use Allows to answer an
// event outside their patterns as not found.
func Allows(allowed []string, tag string) bool {
	if allowed == nil {
		return true
	}
	return slices.ContainsFunc(allowed, func(p string) bool {
		// For a valid pattern and a literal tag, covering is matching.
		return subject.ValidatePattern(p) == nil && subject.Covers(p, tag)
	})
}

// Count is the number of events with one tag in one time bucket.
type Count struct {
	Bucket time.Time `json:"bucket"`
	Tag    string    `json:"tag"`
	Count  uint64    `json:"count"`
}

// Store is an event store as a process shares it: the store service writes
// to it, the query service reads from it. ClickHouse (chstore) and the
// embedded store (sqlitestore) implement it.
type Store interface {
	Insert(ctx context.Context, events []event.Event) error
	Events(ctx context.Context, f Filter) ([]event.Event, error)
	Event(ctx context.Context, id string) (event.Event, error)
	Stats(ctx context.Context, f StatsFilter) ([]Count, error)
	InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error
	Attempts(ctx context.Context, f delivery.Filter) ([]delivery.Attempt, error)
	Ping(ctx context.Context) error
	Close() error
}

// AllowedCondition returns the SQL condition that a row's tag matches one
// of the allowed patterns (Filter.Allowed, not nil), with its arguments:
// match is the backend's test of the tag against one bound regular
// expression ("match(tag, ?)", "tag REGEXP ?"), repeated per pattern and
// joined with OR. An empty list matches nothing.
func AllowedCondition(allowed []string, match string) (string, []any, error) {
	if len(allowed) == 0 {
		return "0", nil, nil
	}
	conds := make([]string, len(allowed))
	args := make([]any, len(allowed))
	for i, p := range allowed {
		re, err := subject.Regexp(p) // validates p with subject.ValidatePattern
		if err != nil {
			return "", nil, fmt.Errorf("allowed pattern %q: %w", p, err)
		}
		conds[i] = match
		args[i] = re
	}
	return "(" + strings.Join(conds, " OR ") + ")", args, nil
}
