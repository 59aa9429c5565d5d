package natstest_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/natstest"
)

// natsServer is the nats-server binary the process cluster tests share,
// built on first use and removed when the tests end.
var natsServer = natstest.NewServerBinary()

func TestMain(m *testing.M) {
	code := m.Run()
	if err := natsServer.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// A three-process cluster keeps an R3 stream through a SIGKILL of its
// leader, elects another, and the killed node comes back on the same
// ports and data and catches up.
func TestProcessCluster(t *testing.T) {
	c := natstest.StartProcessCluster(t, natsServer, 3)
	if got := len(c.URLs()); got != 3 {
		t.Fatalf("URLs() has %d entries; want 3", got)
	}
	for i, p := range c.Nodes() {
		if want := fmt.Sprintf("eventsync-%d", i+1); p.Name() != want {
			t.Errorf("Node(%d).Name() = %q; want %q", i, p.Name(), want)
		}
		if !p.Running() {
			t.Errorf("%s is not running after StartProcessCluster", p.Name())
		}
	}
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), natstest.WaitTimeout)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		t.Helper()
		// Each phase gets its own timeout: on a loaded machine the whole
		// test may take longer than one.
		ctx, cancel := context.WithTimeout(t.Context(), natstest.WaitTimeout)
		defer cancel()
		for range n {
			// Publish retries while the stream has no leader (no
			// responders): after a kill, until the others elect one.
			if _, err := js.Publish(ctx, "t.x", []byte("x"), jetstream.WithRetryAttempts(400), jetstream.WithRetryWait(50*time.Millisecond)); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	publish(10)

	leader := c.WaitStreamLeader(t, "T")
	// The leader by its own account is the one the stream info names.
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster.Leader != leader.Name() {
		t.Errorf("WaitStreamLeader = %s; stream info says %s", leader.Name(), info.Cluster.Leader)
	}

	leader.Kill()
	if leader.Running() {
		t.Fatalf("%s still running after Kill", leader.Name())
	}
	if leads, err := leader.IsStreamLeader("T"); err == nil || leads {
		t.Errorf("IsStreamLeader of a killed node = %v, %v; want false and an error", leads, err)
	}
	publish(10)
	next := c.WaitStreamLeader(t, "T")
	if next == leader {
		t.Fatalf("stream leader after the kill = %s; want another node", next.Name())
	}

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

// The binary is built once: a second Path returns the same file.
func TestServerBinary(t *testing.T) {
	first := natsServer.Path(t)
	if second := natsServer.Path(t); second != first {
		t.Errorf("second Path() = %q; want %q", second, first)
	}
	if _, err := os.Stat(first); err != nil {
		t.Errorf("Path() = %q: %v", first, err)
	}
}
