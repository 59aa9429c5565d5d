package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runProducer starts p.Run and stops it when the test ends.
func runProducer(t *testing.T, p *Producer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func publish(t *testing.T, p *Producer, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := p.Publish(t.Context(), Event{ID: id, Tag: "A.B", Message: "m"}); err != nil {
			t.Fatalf("Publish(%s): %v", id, err)
		}
	}
}

func idRange(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// Full batches go at once; the rest waits for the interval, a Flush or
// Close.
func TestProducerFlushesBySize(t *testing.T) {
	got := make(chan []string, 10)
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		got <- bodyIDs(t, c.Body)
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s)
	p := NewProducer(c, ProducerOptions{MaxBatch: 10, FlushInterval: time.Hour})
	runProducer(t, p)
	ids := idRange("e", 25)
	publish(t, p, ids...)
	if diff := cmp.Diff(ids[:10], <-got); diff != "" {
		t.Errorf("first batch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ids[10:20], <-got); diff != "" {
		t.Errorf("second batch (-want +got):\n%s", diff)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids[20:], <-got); diff != "" {
		t.Errorf("batch sent by Close (-want +got):\n%s", diff)
	}
	if err := p.Publish(t.Context(), Event{Tag: "A.B", Message: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
	if n := len(s.received()); n != 3 {
		t.Errorf("server got %d requests; want 3", n)
	}
}

// Without full batches, events go every FlushInterval.
func TestProducerFlushesByTime(t *testing.T) {
	got := make(chan []string, 10)
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		got <- bodyIDs(t, c.Body)
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s)
	p := NewProducer(c, ProducerOptions{FlushInterval: time.Millisecond})
	runProducer(t, p)
	publish(t, p, "a", "b")
	var sent []string
	for len(sent) < 2 {
		sent = append(sent, <-got...)
	}
	if diff := cmp.Diff([]string{"a", "b"}, sent); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
}

// Flush sends what is buffered without Run.
func TestProducerFlush(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) { accept(w, c.Body, 1) })
	c, _ := newClient(t, s)
	p := NewProducer(c, ProducerOptions{MaxBatch: 2})
	publish(t, p, "a", "b", "c")
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var batches [][]string
	for _, call := range s.received() {
		batches = append(batches, bodyIDs(t, call.Body))
	}
	if diff := cmp.Diff([][]string{{"a", "b"}, {"c"}}, batches); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

// Publish blocks while MaxBuffered events wait, and gives up with its
// context.
func TestProducerBackPressure(t *testing.T) {
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		arrived <- struct{}{}
		<-release
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s)
	p := NewProducer(c, ProducerOptions{MaxBatch: 5, MaxBuffered: 5, FlushInterval: time.Hour})
	runProducer(t, p)
	publish(t, p, idRange("a", 5)...) // a full batch: Run takes it and waits for the server
	<-arrived
	publish(t, p, idRange("b", 5)...) // fills the buffer

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := p.Publish(ctx, Event{ID: "c000", Tag: "A.B", Message: "m"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish on a full buffer = %v; want it to block until its context ends", err)
	}
	close(release)
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for _, call := range s.received() {
		sent = append(sent, bodyIDs(t, call.Body)...)
	}
	if diff := cmp.Diff(append(idRange("a", 5), idRange("b", 5)...), sent); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
}

// A temporary failure keeps the events, in order, for the next flush.
func TestProducerKeepsEventsOnTemporaryFailure(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		if n == 0 {
			writeProblem(w, http.StatusServiceUnavailable, `{"status":503,"title":"Service Unavailable"}`)
			return
		}
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s, WithRetry(1, 0))
	var mu sync.Mutex
	var reported []string
	p := NewProducer(c, ProducerOptions{MaxBatch: 2, OnError: func(err error, dropped []string) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, fmt.Sprintf("%d dropped %v", statusOf(err), dropped))
	}})
	publish(t, p, "a", "b", "c")
	if err := p.Flush(t.Context()); statusOf(err) != 503 {
		t.Fatalf("Flush = %v; want the 503", err)
	}
	publish(t, p, "d")
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var batches [][]string
	for _, call := range s.received() {
		batches = append(batches, bodyIDs(t, call.Body))
	}
	if diff := cmp.Diff([][]string{{"a", "b"}, {"a", "b"}, {"c", "d"}}, batches); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"503 dropped []"}, reported); diff != "" {
		t.Errorf("reported (-want +got):\n%s", diff)
	}
}

// Events the server refuses by index are dropped and reported; the rest of
// their batch is sent again.
func TestProducerDropsRefusedEvents(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		if n == 0 {
			writeProblem(w, http.StatusUnprocessableEntity, `{"status":422,"title":"Unprocessable Entity","errors":[{"pointer":"/1/message","detail":"is required"},{"pointer":"/3/tag","detail":"bad"}]}`)
			return
		}
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s)
	var mu sync.Mutex
	var dropped []string
	p := NewProducer(c, ProducerOptions{OnError: func(err error, ids []string) {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, ids...)
	}})
	publish(t, p, "a", "b", "c", "d", "e")
	err := p.Close(t.Context())
	if statusOf(err) != 422 {
		t.Errorf("Close = %v; want the 422 of the refused events", err)
	}
	if diff := cmp.Diff([]string{"b", "d"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	calls := s.received()
	if diff := cmp.Diff([]string{"a", "c", "e"}, bodyIDs(t, calls[len(calls)-1].Body)); diff != "" {
		t.Errorf("sent again (-want +got):\n%s", diff)
	}
}

// A batch the server finds too large is sent in halves.
func TestProducerSplitsTooLarge(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		if len(bodyIDs(t, c.Body)) > 2 {
			writeProblem(w, http.StatusRequestEntityTooLarge, `{"status":413,"title":"Request Entity Too Large"}`)
			return
		}
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s)
	p := NewProducer(c, ProducerOptions{})
	publish(t, p, "a", "b", "c", "d", "e")
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, call := range s.received() {
		if ids := bodyIDs(t, call.Body); len(ids) <= 2 {
			stored = append(stored, ids...)
		}
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, stored); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

// Close reports what it could not send before its context ended.
func TestProducerCloseGivesUp(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		writeProblem(w, http.StatusServiceUnavailable, `{"status":503}`)
	})
	c, _ := newClient(t, s, WithRetry(1, 0))
	var mu sync.Mutex
	var dropped []string
	p := NewProducer(c, ProducerOptions{MaxBatch: 2, OnError: func(err error, ids []string) {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, ids...)
	}})
	publish(t, p, "a", "b", "c")
	err := p.Close(t.Context())
	if err == nil || statusOf(err) != 503 {
		t.Fatalf("Close = %v; want the 503", err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

// Publishers that race Close either get their event sent or ErrClosed.
func TestProducerCloseRace(t *testing.T) {
	var mu sync.Mutex
	stored := map[string]int{}
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		mu.Lock()
		for _, id := range bodyIDs(t, c.Body) {
			stored[id]++
		}
		mu.Unlock()
		accept(w, c.Body, 1)
	})
	c, _ := newClient(t, s)
	p := NewProducer(c, ProducerOptions{MaxBatch: 7, MaxBuffered: 20, FlushInterval: time.Millisecond})
	runProducer(t, p)
	accepted := make(chan string, 1000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("g%d-%d", g, i)
				err := p.Publish(t.Context(), Event{ID: id, Tag: "A.B", Message: "m"})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				accepted <- id
			}
		})
	}
	publish(t, p, "first")
	accepted <- "first"
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(accepted)
	mu.Lock()
	defer mu.Unlock()
	for id := range accepted {
		if stored[id] != 1 {
			t.Errorf("event %s was published and stored %d times; want 1", id, stored[id])
		}
	}
}

// statusOf returns the status of the *Error in err, or 0.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// A flush for full batches leaves a partial one queued, where Publish
// counts it toward the next full batch.
func TestProducerPartialBatchStaysQueued(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) { accept(w, c.Body, 1) })
	c, _ := newClient(t, s)
	p := NewProducer(c, ProducerOptions{MaxBatch: 10, FlushInterval: time.Hour})
	publish(t, p, idRange("a", 9)...)
	if err := p.flush(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if n := len(s.received()); n != 0 || len(p.queue) != 9 {
		t.Fatalf("after a flush of full batches: %d requests, %d queued; want 0 and 9", n, len(p.queue))
	}
	publish(t, p, "a009")
	if len(p.kick) != 1 {
		t.Errorf("the tenth event did not ask for a flush")
	}
	if err := p.flush(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	calls := s.received()
	if len(calls) != 1 {
		t.Fatalf("%d requests; want 1", len(calls))
	}
	if diff := cmp.Diff(idRange("a", 10), bodyIDs(t, calls[0].Body)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
}
