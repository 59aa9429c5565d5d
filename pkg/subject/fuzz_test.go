package subject

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// FuzzValidatePattern checks that ValidatePattern never panics, that every
// pattern it accepts is a NATS filter, and that Covers and Overlap agree
// with each other and with the NATS server on valid patterns: a pattern
// covers itself, covering implies overlapping, overlapping is symmetric,
// covering is transitive, and a tag matched by a covered pattern is matched
// by the covering one.
func FuzzValidatePattern(f *testing.F) {
	seeds := []struct{ a, b, c string }{
		{">", "A.>", "A.B"},
		{"A.*", "A.B", "A.B"},
		{"*.*", "A.*", "A.B"},
		{"TEST.>", "TEST.*", "TEST.NETWORK"},
		{"TEST.*", "TEST.>", "TEST.NETWORK.TIMEOUT"},
		{"*.B", "A.*", "A.B"},
		{"A.*.C", "A.B.*", "A.B.C"},
		{"A.>", "B.>", "A.B"},
		{">", ">", "X"},
		{"*", ">", "X"},
		{"A", "A.B", "A"},
		{"A.>.B", "A.B", "A.B"},
		{"A..B", ".A", "A."},
		{"A*", "*A", "A>"},
		{"É.*", "A.\x00", "A\tB.C"},
		{"", "", ""},
		{longCategory + ".>", longCategory + ".*", longCategory + "." + tok("D", 53)},
	}
	for _, s := range seeds {
		f.Add(s.a, s.b, s.c)
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		va, vb, vc := ValidatePattern(a) == nil, ValidatePattern(b) == nil, ValidatePattern(c) == nil
		for _, p := range []struct {
			s     string
			valid bool
		}{{a, va}, {b, vb}, {c, vc}} {
			if p.valid && !server.IsValidSubject(Filter(p.s)) {
				t.Fatalf("ValidatePattern(%q) = nil, but NATS rejects the filter %q", p.s, Filter(p.s))
			}
		}
		if !va || !vb {
			return
		}
		if !Covers(a, a) {
			t.Fatalf("Covers(%q, %q) = false; a pattern covers itself", a, a)
		}
		cov, ov := Covers(a, b), Overlap(a, b)
		if cov && !ov {
			t.Fatalf("Covers(%q, %q) = true but Overlap = false", a, b)
		}
		if ov != Overlap(b, a) {
			t.Fatalf("Overlap(%q, %q) = %v but Overlap(%q, %q) = %v", a, b, ov, b, a, !ov)
		}
		if cov && Covers(b, a) && a != b {
			t.Fatalf("Covers(%q, %q) and Covers(%q, %q); want only for equal patterns", a, b, b, a)
		}
		if want := server.SubjectMatchesFilter(Filter(b), Filter(a)); cov != want {
			t.Fatalf("Covers(%q, %q) = %v; NATS says %v", a, b, cov, want)
		}
		if want := server.SubjectsCollide(Filter(a), Filter(b)); ov != want {
			t.Fatalf("Overlap(%q, %q) = %v; NATS says %v", a, b, ov, want)
		}
		if !vc {
			return
		}
		if cov && Covers(b, c) && !Covers(a, c) {
			t.Fatalf("Covers(%q, %q) and Covers(%q, %q) but not Covers(%q, %q)", a, b, b, c, a, c)
		}
		if _, _, err := SplitTag(c); err != nil {
			return
		}
		// c is a tag: covering means matching.
		if cov && Covers(b, c) && !natsMatch(a, c) {
			t.Fatalf("Covers(%q, %q) and %q matches %q, but %q does not", a, b, b, c, a)
		}
		if Covers(a, c) != natsMatch(a, c) {
			t.Fatalf("Covers(%q, %q) = %v; NATS match says %v", a, c, Covers(a, c), natsMatch(a, c))
		}
	})
}
