package natstest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/natstest"
)

// A three-node cluster keeps an R3 stream through the loss of its leader
// and a restart of that node on the same ports and data.
func TestCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	if got := len(c.URLs()); got != 3 {
		t.Fatalf("URLs() has %d entries; want 3", got)
	}
	nc := c.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), natstest.WaitTimeout)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamLeader(t, "T")
	publish := func(n int) {
		t.Helper()
		// Each phase gets its own timeout: on a loaded machine the whole
		// test may take longer than one.
		ctx, cancel := context.WithTimeout(t.Context(), natstest.WaitTimeout)
		defer cancel()
		for range n {
			// Publish retries while the stream has no leader (no responders).
			if _, err := js.Publish(ctx, "t.x", []byte("x"), jetstream.WithRetryAttempts(100), jetstream.WithRetryWait(50*time.Millisecond)); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	publish(10)

	leader.Shutdown()
	if leader.Running() || leader.IsStreamLeader("T") {
		t.Fatalf("%s still running or leading after Shutdown", leader.Name())
	}
	next := c.WaitStreamLeader(t, "T")
	if next == leader {
		t.Fatalf("stream leader after shutdown = %s; want another node", next.Name())
	}
	publish(10)

	leader.Restart()
	c.WaitHealthy(t)
	if err := leader.Healthy(); err != nil {
		t.Fatalf("restarted node: %v", err)
	}
	// The restarted node holds all 20 messages: ask it alone.
	ctx, cancel = context.WithTimeout(t.Context(), natstest.WaitTimeout)
	defer cancel()
	checkCaughtUp(ctx, t, leader.Connect(t), 20)
}

// checkCaughtUp asks one node alone (nc is connected to it only) about
// stream T: it holds all want messages, and the stream's replicas are the
// three nodes.
func checkCaughtUp(ctx context.Context, t *testing.T, nc *nats.Conn, want uint64) {
	t.Helper()
	one, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := one.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != want {
		t.Errorf("stream T holds %d messages; want %d", info.State.Msgs, want)
	}
	var names []string
	for _, r := range info.Cluster.Replicas {
		names = append(names, r.Name)
	}
	names = append(names, info.Cluster.Leader)
	slices.Sort(names)
	if want := []string{"eventsync-1", "eventsync-2", "eventsync-3"}; !slices.Equal(names, want) {
		t.Errorf("stream T is on %v; want %v", names, want)
	}
}
