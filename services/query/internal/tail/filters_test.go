package tail

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

func TestFilters(t *testing.T) {
	tests := []struct {
		name               string
		requested, allowed []string
		want, wantKeep     []string
		wantStatus         int // 0: no error
	}{
		{"admin, everything", nil, nil, []string{"events.>"}, nil, 0},
		{"admin, a tag", []string{"A.*"}, nil, []string{"events.A.*"}, nil, 0},
		{"the client's patterns", nil, []string{"B.>", "A.*"}, []string{"events.A.*", "events.B.>"}, []string{"B.>", "A.*"}, 0},
		{"within", []string{"A.X"}, []string{"A.*"}, []string{"events.A.X"}, []string{"A.*"}, 0},
		{"wider", []string{">"}, []string{"A.*", "B.X"}, []string{"events.A.*", "events.B.X"}, []string{"A.*", "B.X"}, 0},
		{"partial overlap", []string{"*.X"}, []string{"A.*", "B.>"}, []string{"events.A.X", "events.B.X"}, []string{"A.*", "B.>"}, 0},
		{"deep partial overlap", []string{"A.>"}, []string{"*.B.>"}, []string{"events.A.B.>"}, []string{"*.B.>"}, 0},
		{"outside", []string{"C.*"}, []string{"A.*", "B.>"}, nil, nil, http.StatusForbidden},
		{"overlapping patterns, a tag", []string{"*.*"}, []string{"A.*", "*.X"}, []string{"events.*.*"}, []string{"A.*", "*.X"}, 0},
		{"overlapping patterns, a tag within one", []string{"A.>"}, []string{"A.*", "*.X"}, []string{"events.A.*"}, []string{"A.*", "*.X"}, 0},
		{"overlapping patterns", nil, []string{"A.*", "*.X"}, []string{"events.>"}, []string{"A.*", "*.X"}, 0},
		{"no patterns", nil, []string{}, nil, nil, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, keep, err := filters(tt.requested, tt.allowed)
			var p *problem.Problem
			switch {
			case tt.wantStatus != 0 && (!errors.As(err, &p) || p.Status != tt.wantStatus):
				t.Fatalf("filters(%q, %q) = %v; want status %d", tt.requested, tt.allowed, err, tt.wantStatus)
			case tt.wantStatus == 0 && err != nil:
				t.Fatalf("filters(%q, %q) = %v", tt.requested, tt.allowed, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("filters(%q, %q) (-want +got):\n%s", tt.requested, tt.allowed, diff)
			}
			if diff := cmp.Diff(tt.wantKeep, keep); diff != "" {
				t.Errorf("filters(%q, %q) keep (-want +got):\n%s", tt.requested, tt.allowed, diff)
			}
		})
	}
}

// TestLimitPatterns checks stream.LimitPatterns on every pair of a set of
// patterns against every tag of a universe: a tag matches the result
// exactly when it matches both patterns.
func TestLimitPatterns(t *testing.T) {
	patterns := []string{">", "*.*", "*.>", "A.>", "A.*", "*.X", "A.X", "A.B.>", "*.B.>", "*.*.X", "A.*.X", "B.*", "*.B.*", "A.B.X", "*.*.*.>"}
	var tags []string
	for _, a := range []string{"A", "B", "X"} {
		for _, b := range []string{"A", "B", "X"} {
			tags = append(tags, a+"."+b)
			for _, c := range []string{"A", "B", "X"} {
				tags = append(tags, a+"."+b+"."+c, a+"."+b+"."+c+".X")
			}
		}
	}
	match := func(ps []string, tag string) bool {
		for _, p := range ps {
			if subject.Covers(p, tag) {
				return true
			}
		}
		return false
	}
	for _, a := range patterns {
		for _, b := range patterns {
			got := stream.LimitPatterns([]string{a}, []string{b})
			if len(got) > 1 {
				t.Errorf("LimitPatterns(%q, %q) = %q; want at most one pattern", a, b, got)
			}
			if (len(got) == 1) != subject.Overlap(a, b) {
				t.Errorf("LimitPatterns(%q, %q) = %q; Overlap = %v", a, b, got, subject.Overlap(a, b))
			}
			for _, p := range got {
				if err := subject.ValidatePattern(p); err != nil {
					t.Errorf("LimitPatterns(%q, %q) = %q: %v", a, b, p, err)
				}
			}
			for _, tag := range tags {
				if want := subject.Covers(a, tag) && subject.Covers(b, tag); match(got, tag) != want {
					t.Errorf("LimitPatterns(%q, %q) = %q matches %s: %v; want %v", a, b, got, tag, !want, want)
				}
			}
		}
	}
	if got := stream.LimitPatterns([]string{"A.*"}, nil); !cmp.Equal(got, []string{"A.*"}) {
		t.Errorf("LimitPatterns(A.*, nil) = %q; want [A.*]", got)
	}
	if got := stream.LimitPatterns([]string{"A.*"}, []string{}); got == nil || len(got) != 0 {
		t.Errorf("LimitPatterns(A.*, []) = %#v; want an empty list", got)
	}
}
