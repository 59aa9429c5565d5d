package storetest

import (
	"testing"

	"github.com/eventsync/eventsync/pkg/eventstore"
)

// TestAllows checks eventstore.Allows, which the reference uses to decide
// what a caller restricted by Filter.Allowed may read, against fixed cases
// and against the regular expressions the stores match with.
func TestAllows(t *testing.T) {
	tests := []struct {
		allowed []string
		tag     string
		want    bool
	}{
		{nil, "DATABASE.CONNECTION_LOST", true},
		{[]string{}, "DATABASE.CONNECTION_LOST", false},
		{[]string{"DATABASE.>"}, "DATABASE.CONNECTION_LOST", true},
		{[]string{"DATABASE.>"}, "DATABASE.replica.CONNECTION_LOST", true},
		{[]string{"DATABASE.>"}, "NETWORK.TIMEOUT", false},
		{[]string{"DATABASE.>"}, "DATABASEX.TIMEOUT", false},
		{[]string{"DATABASE.*"}, "DATABASE.replica.CONNECTION_LOST", false},
		{[]string{"database.>"}, "DATABASE.TIMEOUT", false},
		{[]string{"*.TIMEOUT"}, "NETWORK.TIMEOUT", true},
		{[]string{"*.TIMEOUT"}, "TEST.unit.TIMEOUT", false},
		{[]string{"NETWORK.TIMEOUT"}, "NETWORK.TIMEOUT", true},
		{[]string{"NETWORK.TIMEOUT"}, "NETWORK.TIMEOUTS", false},
		{[]string{">"}, "A.B", true},
		{[]string{"DATABASE.>", "*.TIMEOUT"}, "NETWORK.TIMEOUT", true},
		{[]string{"DATABASE.>", "*.TIMEOUT"}, "NETWORK.STARTED", false},
		{[]string{"A..B"}, "A.B", false},
		{[]string{""}, "A.B", false},
		{[]string{"A.>.B", "A.*"}, "A.B", true},
	}
	for _, tt := range tests {
		if got := eventstore.Allows(tt.allowed, tt.tag); got != tt.want {
			t.Errorf("Allows(%q, %q) = %v; want %v", tt.allowed, tt.tag, got, tt.want)
		}
	}

	patterns := []string{">", "*.*", "*.*.*", "DATABASE.>", "DATABASE.*", "TEST.>", "TEST.*", "TEST.unit.*", "*.unit.>", "*.TIMEOUT", "AUTH.STARTED"}
	tags := map[string]bool{}
	for _, e := range generate(1, 1, 30) {
		tags[e.Tag] = true
	}
	for _, p := range patterns {
		re, err := compilePattern(p)
		if err != nil {
			t.Fatalf("compilePattern(%q) = %v", p, err)
		}
		for tag := range tags {
			if got, want := eventstore.Allows([]string{p}, tag), re.MatchString(tag); got != want {
				t.Errorf("Allows([%q], %q) = %v; the pattern's regexp says %v", p, tag, got, want)
			}
		}
	}
}
