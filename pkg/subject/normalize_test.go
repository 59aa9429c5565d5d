package subject

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr error // compared with errors.Is, or the error's type below
		overlap *OverlapError
		invalid []int // indexes of the PatternErrors
	}{
		{name: "one", in: []string{"DATABASE.*"}, want: []string{"DATABASE.*"}},
		{name: "sorted", in: []string{"B.*", "A.*", "*.X.Y"}, want: []string{"*.X.Y", "A.*", "B.*"}},
		{name: "duplicates", in: []string{"A.*", "A.*", "B.X", "B.X"}, want: []string{"A.*", "B.X"}},
		{name: "literal under star", in: []string{"DATABASE.CONNECTION_LOST", "DATABASE.*"}, want: []string{"DATABASE.*"}},
		{name: "star under tail", in: []string{"A.*", "A.>"}, want: []string{"A.>"}},
		{name: "tail under tail", in: []string{"A.B.>", "A.>"}, want: []string{"A.>"}},
		{name: "chain", in: []string{"A.X", "A.*", "A.>"}, want: []string{"A.>"}},
		{name: "everything", in: []string{"A.X", ">", "*.*", "B.>"}, want: []string{">"}},
		{name: "longer literal under tail", in: []string{"TEST.>", "TEST.NETWORK.TIMEOUT"}, want: []string{"TEST.>"}},
		{name: "disjoint", in: []string{"A.X", "B.X", "A.Y"}, want: []string{"A.X", "A.Y", "B.X"}},
		{name: "different lengths do not overlap", in: []string{"*.*", "*.*.*"}, want: []string{"*.*", "*.*.*"}},
		{name: "case kept", in: []string{"db.*", "DB.*"}, want: []string{"DB.*", "db.*"}},
		{name: "star and literal cross", in: []string{"DATABASE.*", "*.CONNECTION_LOST"},
			overlap: &OverlapError{A: "*.CONNECTION_LOST", B: "DATABASE.*"}},
		{name: "tail and star cross", in: []string{"A.>", "*.X.Y"}, overlap: &OverlapError{A: "*.X.Y", B: "A.>"}},
		{name: "crossing stars", in: []string{"A.*.C", "A.B.*"}, overlap: &OverlapError{A: "A.*.C", B: "A.B.*"}},
		{name: "crossing beside a cover", in: []string{"A.X", "A.*", "*.X"}, overlap: &OverlapError{A: "*.X", B: "A.*"}},
		{name: "empty", in: nil, wantErr: ErrEmpty},
		{name: "empty list", in: []string{}, wantErr: ErrEmpty},
		{name: "invalid", in: []string{"A.*", "A..B", "A.>.B", ""}, invalid: []int{1, 2, 3}},
		{name: "invalid beside overlap", in: []string{"A.*", "*.X", "A B.*"}, invalid: []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got, err := Normalize(in)
			if !slices.Equal(in, tt.in) {
				t.Errorf("Normalize changed its argument to %q", in)
			}
			var (
				oe *OverlapError
				pe PatternErrors
			)
			switch {
			case tt.overlap != nil:
				if !errors.As(err, &oe) || *oe != *tt.overlap {
					t.Fatalf("Normalize(%q) = %q, %v; want %v", tt.in, got, err, tt.overlap)
				}
			case tt.invalid != nil:
				if !errors.As(err, &pe) {
					t.Fatalf("Normalize(%q) = %q, %v; want PatternErrors", tt.in, got, err)
				}
				var idx []int
				for _, e := range pe {
					idx = append(idx, e.Index)
					if e.Pattern != tt.in[e.Index] || ValidatePattern(e.Pattern) == nil || !errors.Is(e, ValidatePattern(e.Pattern)) {
						t.Errorf("PatternError %+v does not describe %q", e, tt.in[e.Index])
					}
				}
				if diff := cmp.Diff(tt.invalid, idx); diff != "" {
					t.Errorf("Normalize(%q) invalid indexes (-want +got):\n%s", tt.in, diff)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Normalize(%q) = %q, %v; want %v", tt.in, got, err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("Normalize(%q) = %v; want %q", tt.in, err, tt.want)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Normalize(%q) (-want +got):\n%s", tt.in, diff)
				}
			}
		})
	}
}

func TestPatternErrorText(t *testing.T) {
	_, err := Normalize([]string{"A.*", "A..B", "A.>.B"})
	want := `pattern 1: "A..B" must not have empty tokens (leading, trailing or double dots); ` +
		`pattern 2: "A.>.B" '>' may only be the last token`
	if err == nil || err.Error() != want {
		t.Errorf("Normalize error = %v; want %s", err, want)
	}
	var pe PatternErrors
	if errors.As(err, &pe); len(pe) != 2 || pe[0].Error() != `"A..B" must not have empty tokens (leading, trailing or double dots)` {
		t.Errorf("PatternErrors = %v; want the first to read as a field detail", pe)
	}
	_, err = Normalize([]string{"DATABASE.*", "*.CONNECTION_LOST"})
	if want := `patterns "*.CONNECTION_LOST" and "DATABASE.*" overlap (some tag matches both)`; err == nil || err.Error() != want {
		t.Errorf("Normalize overlap error = %v; want %s", err, want)
	}
}

// TestNormalizeAgreesWithNATS checks every accepted list over a small
// alphabet: the result is a filter set NATS takes for one consumer (no two
// filters collide), it selects exactly the tags the input selects, the
// order of the input does not matter, and normalizing again changes
// nothing.
func TestNormalizeAgreesWithNATS(t *testing.T) {
	patterns := []string{">", "*.*", "*.X", "A.*", "A.X", "A.>", "A.*.Y", "A.X.Y", "*.X.Y", "B.X", "B.>"}
	tags := []string{"A.X", "A.Z", "B.X", "C.X", "A.X.Y", "A.Z.Y", "B.X.Y", "C.X.Y", "A.X.Z", "A.X.Y.Z"}
	for _, a := range patterns {
		for _, b := range patterns {
			for _, c := range patterns {
				in := []string{a, b, c}
				got, err := Normalize(in)
				var oe *OverlapError
				if errors.As(err, &oe) {
					if !server.SubjectsCollide(Filter(oe.A), Filter(oe.B)) {
						t.Errorf("Normalize(%q) = %v, but NATS lets them be filters together", in, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Normalize(%q) = %v", in, err)
				}
				f := Filters(got)
				for i := range f {
					for j := i + 1; j < len(f); j++ {
						if server.SubjectsCollide(f[i], f[j]) {
							t.Errorf("Normalize(%q) = %q: NATS refuses %s beside %s", in, got, f[i], f[j])
						}
					}
				}
				for _, tag := range tags {
					before := slices.ContainsFunc(in, func(p string) bool { return natsMatch(p, tag) })
					after := slices.ContainsFunc(got, func(p string) bool { return natsMatch(p, tag) })
					if before != after {
						t.Errorf("Normalize(%q) = %q: tag %s selected %v before, %v after", in, got, tag, before, after)
					}
				}
				if again, err := Normalize([]string{c, a, b}); err != nil || !slices.Equal(again, got) {
					t.Errorf("Normalize(%q) = %q, %v; want %q as for %q", []string{c, a, b}, again, err, got, in)
				}
				if again, err := Normalize(got); err != nil || !slices.Equal(again, got) {
					t.Errorf("Normalize(%q) = %q, %v; want it unchanged", got, again, err)
				}
			}
		}
	}
}

func TestFilters(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{">"}, []string{"events.>"}},
		{[]string{"A.*", "B.X.Y"}, []string{"events.A.*", "events.B.X.Y"}},
	}
	for _, tt := range tests {
		if got := Filters(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Filters(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
