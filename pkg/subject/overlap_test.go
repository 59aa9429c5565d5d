package subject

import "testing"

func TestCoversAndOverlap(t *testing.T) {
	tests := []struct {
		a, b            string
		covers, overlap bool
	}{
		{"DATABASE.*", "DATABASE.CONNECTION_LOST", true, true},
		{"DATABASE.CONNECTION_LOST", "DATABASE.*", false, true},
		{"DATABASE.*", "*.CONNECTION_LOST", false, true},
		{"DATABASE.*", "AUTH.*", false, false},
		{"TEST.>", "TEST.NETWORK.TIMEOUT", true, true},
		{"TEST.>", "TEST.*", true, true},
		{"TEST.*", "TEST.>", false, true},
		{"TEST.>", "TEST", false, false},
		{">", "A.B", true, true},
		{"*.*", "A.B.C", false, false},
		{"*.*", "A.>", false, true},
		{"A.B", "A.B", true, true},
		{"A.B", "A.C", false, false},
		{"A.*.C", "A.B.*", false, true},
		{"A.>", "B.>", false, false},
	}
	for _, tt := range tests {
		if got := Covers(tt.a, tt.b); got != tt.covers {
			t.Errorf("Covers(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.covers)
		}
		if got := Overlap(tt.a, tt.b); got != tt.overlap {
			t.Errorf("Overlap(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.overlap)
		}
		if got := Overlap(tt.b, tt.a); got != tt.overlap {
			t.Errorf("Overlap(%q, %q) = %v; want %v", tt.b, tt.a, got, tt.overlap)
		}
	}
}
