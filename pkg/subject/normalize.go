package subject

import (
	"fmt"
	"slices"
	"strings"
)

// PatternError says why one pattern of a list is invalid.
type PatternError struct {
	Index   int    // position in the list given to Normalize
	Pattern string // the pattern as given
	Err     error  // one of the sentinel errors
}

// Error reads as a field detail: the pattern, then the rule it breaks.
func (e *PatternError) Error() string { return fmt.Sprintf("%q %v", e.Pattern, e.Err) }

// Unwrap returns the sentinel error.
func (e *PatternError) Unwrap() error { return e.Err }

// PatternErrors lists the invalid patterns of a list, in list order.
type PatternErrors []*PatternError

func (e PatternErrors) Error() string {
	s := make([]string, len(e))
	for i, pe := range e {
		s[i] = fmt.Sprintf("pattern %d: %v", pe.Index, pe)
	}
	return strings.Join(s, "; ")
}

// OverlapError means that two patterns of a list overlap without either
// covering the other (A.* and *.X): some tag matches both, and NATS refuses
// a consumer whose filter subjects overlap.
type OverlapError struct {
	A, B string // in sorted order
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("patterns %q and %q overlap (some tag matches both)", e.A, e.B)
}

// Normalize turns a list of tag patterns into the filter set of one
// consumer, the same set whatever the order of the list:
//
//   - Every pattern is validated; the invalid ones come back together as
//     PatternErrors.
//   - Duplicates are dropped, and so is every pattern that another pattern
//     of the list covers: A.X and A.* go when A.> is there. The covering
//     pattern already selects all their tags, and NATS would refuse the
//     pair as overlapping filters.
//   - Two patterns that overlap without either covering the other (A.* and
//     *.X, A.> and *.X.Y) are refused with an *OverlapError: no pattern of
//     the list selects exactly their union, and widening one of them would
//     select tags nobody asked for, so the caller has to choose.
//   - What is left is sorted (byte order).
//
// Patterns are case-sensitive and kept as given, like NATS subjects: db.*
// and DB.* select different events. An empty list is ErrEmpty, because a
// consumer without filter subjects receives every event.
func Normalize(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, ErrEmpty
	}
	var invalid PatternErrors
	for i, p := range patterns {
		if err := ValidatePattern(p); err != nil {
			invalid = append(invalid, &PatternError{Index: i, Pattern: p, Err: err})
		}
	}
	if len(invalid) > 0 {
		return nil, invalid
	}
	sorted := slices.Compact(slices.Sorted(slices.Values(patterns)))
	out := make([]string, 0, len(sorted))
	for _, p := range sorted {
		// Two different valid patterns never cover each other, so a
		// covered pattern always leaves its cover in the list.
		if !slices.ContainsFunc(sorted, func(q string) bool { return q != p && Covers(q, p) }) {
			out = append(out, p)
		}
	}
	for i, a := range out {
		for _, b := range out[i+1:] {
			if Overlap(a, b) {
				return nil, &OverlapError{A: a, B: b}
			}
		}
	}
	return out, nil
}

// Filters returns the NATS filter subjects of tag patterns, in order. Give
// it the result of Normalize: NATS refuses overlapping filters, and no
// filter at all means every event.
func Filters(patterns []string) []string {
	f := make([]string, len(patterns))
	for i, p := range patterns {
		f[i] = Filter(p)
	}
	return f
}
