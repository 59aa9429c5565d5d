package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/stream"
)

// The test binary doubles as a store process that a test can SIGKILL:
// with these variables set it runs a store with the default settings on
// the NATS server and the event store they name, and prints a line each
// time an event insert starts.
const (
	envChildNATS  = "EVENTSYNC_TEST_STORE_CHILD_NATS"
	envChildStore = "EVENTSYNC_TEST_STORE_CHILD_STORE"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envChildNATS); url != "" {
		if err := storeProcess(url, os.Getenv(envChildStore)); err != nil {
			fmt.Fprintln(os.Stderr, "store process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// storeProcess runs a store service until the process is killed.
func storeProcess(url, loc string) error {
	ctx := context.Background()
	s, err := openAt(ctx, loc)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	js, err := stream.JetStream(nc, 5*time.Second)
	if err != nil {
		return err
	}
	// Inserts take a moment, so that the kill finds one in flight.
	w := &announcingWriter{writer: s, delay: 200 * time.Millisecond}
	svc, err := New(Config{}, js, w, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// announcingWriter prints "insert" when an event insert starts, then
// waits delay before it writes.
type announcingWriter struct {
	writer
	delay time.Duration
	mu    sync.Mutex
}

func (w *announcingWriter) Insert(ctx context.Context, events []event.Event) error {
	w.mu.Lock()
	fmt.Println("insert")
	w.mu.Unlock()
	time.Sleep(w.delay)
	return w.writer.Insert(ctx, events)
}

// startStoreProcess starts a store process (see TestMain) and returns it
// with a channel that receives a value each time it starts an insert.
func startStoreProcess(t *testing.T, natsURL, loc string) (*exec.Cmd, <-chan struct{}, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildNATS+"="+natsURL, envChildStore+"="+loc)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	inserts := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case inserts <- struct{}{}:
			default:
			}
		}
	}()
	return cmd, inserts, stderr
}

// load publishes events continuously, the way ingest does, until stop is
// called; stop returns how many it published (ids ev-0 … ev-n-1, in
// stream order).
func (e *env) load(t *testing.T, perSecond int) (stop func() int) {
	const tick = 50 * time.Millisecond
	chunk := perSecond * int(tick) / int(time.Second)
	done := make(chan struct{})
	total := make(chan int, 1)
	var once sync.Once
	var published int
	go func() {
		n := 0
		defer func() { total <- n }()
		next := time.NewTicker(tick)
		defer next.Stop()
		for {
			select {
			case <-done:
				return
			case <-next.C:
			}
			if err := e.publishErr(n, chunk); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			n += chunk
		}
	}()
	return func() int {
		once.Do(func() {
			close(done)
			published = <-total
		})
		return published
	}
}

// maxFreeze is the longest the since cursor (the store consumer's ack
// floor) may stand still after a store is killed under load.
const maxFreeze = 15 * time.Second

// A store killed (SIGKILL) under load in the middle of an insert leaves
// messages that no one acknowledges until JetStream redelivers them: the
// since cursor stands still until then. With the default ack wait a new
// store on the same durable consumer moves it past them within maxFreeze.
func TestKilledStoreFreezesTheCursorBriefly(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t)
			loc := b.locate(t)
			d := open(t, loc) // creates the schema before the process starts
			stopLoad := e.load(t, 4000)
			defer stopLoad()

			cmd, inserts, stderr := startStoreProcess(t, e.ns.URL(), loc)
			for deadline := time.Now().Add(30 * time.Second); len(all(t, d)) < 2000; {
				if time.Now().After(deadline) {
					t.Fatalf("the store process stored %d events in 30s; stderr:\n%s", len(all(t, d)), stderr)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Kill it as an insert starts.
			select {
			case <-inserts:
			default:
			}
			select {
			case <-inserts:
			case <-time.After(10 * time.Second):
				t.Fatal("the store process started no insert within 10s")
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			_ = cmd.Wait()
			// Let the server notice the closed connection; whatever it sent
			// the dead process until then is lost with it too.
			time.Sleep(200 * time.Millisecond)
			info := storeConsumer(t, e.js)
			frozen, held := info.AckFloor.Stream, info.Delivered.Stream
			if info.NumAckPending == 0 || held <= frozen {
				t.Fatalf("the killed store held no messages (ack floor %d, delivered %d, pending %d): nothing measured",
					frozen, held, info.NumAckPending)
			}

			// The store restarts at once.
			start(t, e.js, d, Config{BatchSize: DefaultBatchSize, BatchWait: DefaultBatchWait})
			var moved time.Duration
			for deadline := killed.Add(3 * maxFreeze); ; {
				floor := storeConsumer(t, e.js).AckFloor.Stream
				if floor > frozen && moved == 0 {
					moved = time.Since(killed)
				}
				if floor >= held {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("ack floor %d %s after the kill; want it past %d, the last message the killed store held, within %s",
						floor, 3*maxFreeze, held, maxFreeze)
				}
				time.Sleep(20 * time.Millisecond)
			}
			freeze := time.Since(killed)
			t.Logf("store killed holding %d messages (seqs %d..%d): ack floor moved %s after the kill, past them %s after",
				info.NumAckPending, frozen+1, held, moved.Round(10*time.Millisecond), freeze.Round(10*time.Millisecond))
			if freeze > maxFreeze {
				t.Errorf("since cursor frozen %s after the store was killed; want at most %s", freeze.Round(10*time.Millisecond), maxFreeze)
			}

			n := stopLoad()
			waitStored(t, d, n)
		})
	}
}

// A NATS restart while the store inserts loses the acks in flight; the
// store carries on over its reconnected connection, and the since cursor
// reaches the last event within maxFreeze.
func TestStoreCarriesOnAfterNATSRestart(t *testing.T) {
	e := newEnv(t)
	d := open(t, backends[0].locate(t))
	w := newSlowWriter(d, 500*time.Millisecond)
	start(t, e.js, w, Config{BatchSize: 500, BatchWait: 20 * time.Millisecond})
	e.publish(t, 0, 3000)
	w.waitStarted(t)
	w.waitStarted(t)

	e.ns.Shutdown()
	e.ns.Restart()
	restarted := time.Now()
	for deadline := restarted.Add(3 * maxFreeze); ; {
		info, err := consumerInfo(t.Context(), e.js)
		if err == nil && info.AckFloor.Stream == 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack floor %s after the NATS restart: %+v, %v; want 3000", 3*maxFreeze, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(restarted)
	t.Logf("ack floor at the last event %s after the NATS restart", took.Round(10*time.Millisecond))
	if took > maxFreeze {
		t.Errorf("since cursor caught up %s after the NATS restart; want at most %s", took.Round(10*time.Millisecond), maxFreeze)
	}
	waitStored(t, d, 3000)
}
