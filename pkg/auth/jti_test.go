package auth

import (
	"context"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// waitFirstAgain polls remember until it reports a first use, failing the
// test if that never happens. The server sweeps expired keys about once a
// second; the deadline is only a guard against hanging.
func waitFirstAgain(t *testing.T, remember func(context.Context) (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		first, err := remember(t.Context())
		if err != nil {
			t.Fatalf("remember: %v", err)
		}
		if first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the jti was never forgotten")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReplayStore(t *testing.T) {
	nc := natstest.Start(t).Connect(t)
	js, err := stream.JetStream(nc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := stream.EnsureJTI(t.Context(), js, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.EnsureJTI(t.Context(), js, stream.Config{}); err != nil {
		t.Fatalf("EnsureJTI again: %v", err)
	}
	status, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := status.LimitMarkerTTL(); got != stream.JTIMarkerTTL {
		t.Errorf("LimitMarkerTTL = %s; want %s", got, stream.JTIMarkerTTL)
	}
	s := NewReplayStore(kv)
	until := time.Now().Add(time.Second)
	long := time.Now().Add(time.Hour)
	steps := []struct {
		producerID, jti string
		until           time.Time
		want            bool
	}{
		{"prd_a", "j1", until, true},
		{"prd_a", "j1", until, false},
		{"prd_a", "j1", long, false},
		{"prd_b", "j1", long, true}, // a jti is scoped to its producer
		{"prd_a", "j2", long, true},
		{"prd_a", "with spaces.dots*and>wildcards é", long, true},
		{"prd_a", "with spaces.dots*and>wildcards é", long, false},
		{"odd.id with spaces", "j1", long, true},
		{"odd.id with spaces", "j1", long, false},
		{"", "j1", long, true},
		{"prd_a", "", long, true},
		{"prd_a", "past", time.Now().Add(-time.Hour), true}, // kept for at least a second
		{"prd_a", "past", long, false},
	}
	for _, st := range steps {
		got, err := s.Remember(t.Context(), st.producerID, st.jti, st.until)
		if err != nil || got != st.want {
			t.Errorf("Remember(%q, %q) = %v, %v; want %v", st.producerID, st.jti, got, err, st.want)
		}
	}
	waitFirstAgain(t, func(ctx context.Context) (bool, error) {
		return s.Remember(ctx, "prd_a", "j1", time.Now().Add(time.Hour))
	})
	if first, err := s.Remember(t.Context(), "prd_a", "j1", long); err != nil || first {
		t.Errorf("Remember(j1) after it came back = %v, %v; want false", first, err)
	}
	if first, err := s.Remember(t.Context(), "prd_a", "j2", long); err != nil || first {
		t.Errorf("Remember(j2), kept for an hour = %v, %v; want false", first, err)
	}
}

func TestJTIKey(t *testing.T) {
	const hashX = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
	tests := []struct{ producerID, jti, want string }{
		{"prd_a", "x", "prd_a." + hashX},
		{"a.b", "x", "2e7336dc8eba87ef472df568c35482abf2575dc3e5eac0c5c62b8ffaeac2c934." + hashX},
	}
	for _, tc := range tests {
		if got := jtiKey(tc.producerID, tc.jti); got != tc.want {
			t.Errorf("jtiKey(%q, %q) = %q; want %q", tc.producerID, tc.jti, got, tc.want)
		}
	}
}
