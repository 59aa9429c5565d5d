package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/webhook"
)

// The Go client against the all-in-one: every call goes through the real
// HTTP API, JetStream and store.

// newSDK returns a client of base.
func newSDK(t *testing.T, base string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// storedEvents follows the cursor over the events f selects until want of
// them are stored, and returns them.
func storedEvents(t *testing.T, c *client.Client, f client.Filter, want int) []event.Event {
	t.Helper()
	var got []event.Event
	deadline := time.Now().Add(30 * time.Second)
	for {
		for e, err := range c.Events(t.Context(), f) {
			if err != nil {
				t.Fatalf("Events(%+v): %v", f, err)
			}
			got = append(got, e)
			f.Since = e.Seq
		}
		if len(got) >= want || time.Now().After(deadline) {
			if len(got) != want {
				t.Fatalf("Events(%+v): %d events stored; want %d", f, len(got), want)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Send works with each kind of producer credential; the stored events carry
// the producer.
func TestClientCredentials(t *testing.T) {
	base := startSecured(t)
	ctx := t.Context()
	admin := newSDK(t, base, client.WithAdminToken("admin-secret"))
	p, err := admin.CreateProducer(ctx, client.ProducerSpec{Name: "billing", Tags: []string{"BILLING.>"}, Owns: []string{"BILLING"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Credentials == nil || p.Credentials.Password == "" || p.Credentials.APIKey == "" || p.Credentials.JWTSecret == "" {
		t.Fatalf("CreateProducer credentials = %+v; want all three", p.Credentials)
	}
	list, err := admin.Producers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != p.ID || list[0].Credentials != nil {
		t.Errorf("Producers = %+v; want the one producer, without credentials", list)
	}

	creds := []struct {
		name string
		opt  client.Option
	}{
		{"basic", client.WithBasic(p.ID, p.Credentials.Password)},
		{"api key", client.WithAPIKey(p.Credentials.APIKey)},
		{"jwt", client.WithJWT(p.ID, p.Credentials.JWTSecret)},
	}
	for _, cr := range creds {
		t.Run(cr.name, func(t *testing.T) {
			c := newSDK(t, base, cr.opt)
			// Two calls: a JWT client signs a fresh token (jti) for each.
			for i := range 2 {
				res, err := c.Send(ctx, client.Event{Tag: "BILLING.CHARGED", Message: fmt.Sprintf("%s %d", cr.name, i)})
				if err != nil {
					t.Fatalf("Send #%d: %v", i+1, err)
				}
				if res.Accepted != 1 || res.Events[0].Seq == 0 || res.Events[0].Subject != "events.BILLING.CHARGED" {
					t.Errorf("Send #%d = %+v; want one event accepted", i+1, res)
				}
			}
		})
	}

	reader := newSDK(t, base, client.WithAPIKey(readerKey(t, admin)))
	for _, e := range storedEvents(t, reader, client.Filter{Tag: "BILLING.*"}, 6) {
		if e.Producer != p.ID {
			t.Errorf("event %s stored with producer %q; want %q", e.ID, e.Producer, p.ID)
		}
	}

	tests := []struct {
		name   string
		c      *client.Client
		tag    string
		status int
	}{
		{"no credentials", newSDK(t, base), "BILLING.CHARGED", http.StatusUnauthorized},
		{"wrong password", newSDK(t, base, client.WithBasic(p.ID, "nope")), "BILLING.CHARGED", http.StatusUnauthorized},
		{"tag outside its patterns", newSDK(t, base, client.WithAPIKey(p.Credentials.APIKey)), "OPS.DEPLOYED", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Send(ctx, client.Event{Tag: tt.tag, Message: "m"})
			var e *client.Error
			if !errors.As(err, &e) || e.Status != tt.status {
				t.Fatalf("Send = %v; want a %d *client.Error", err, tt.status)
			}
		})
	}
	if _, err := newSDK(t, base).Producers(ctx); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("Producers without the admin token = %v; want 401", err)
	}
}

// readerKey registers a client that reads every tag and returns its API
// key.
func readerKey(t *testing.T, admin *client.Client) string {
	t.Helper()
	p, err := admin.CreateProducer(t.Context(), client.ProducerSpec{Name: "reader", Scopes: client.Scopes{Read: []string{">"}}})
	if err != nil {
		t.Fatal(err)
	}
	return p.Credentials.APIKey
}

// Query, Events, Session, Event and Stats read back what Send stored.
func TestClientQuery(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			base := startApp(t, b.url(t)).Base
			c := newSDK(t, base)
			ctx := t.Context()
			t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)

			events := make([]client.Event, 250)
			for i := range events {
				events[i] = client.Event{
					Tag: []string{"DATABASE.CONNECTION_LOST", "DATABASE.SLOW_QUERY", "AUTH.INVALID_TOKEN"}[i%3], Message: fmt.Sprintf("m%d", i),
					SessionID: fmt.Sprintf("s-%d", i%2), Timestamp: t0.Add(time.Duration(i) * time.Millisecond), Severity: event.Warning,
					Data: map[string]any{"i": i},
				}
			}
			events[0].ID = "first-event"
			res, err := c.Send(ctx, events...)
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != 250 || len(res.Events) != 250 || res.Events[0].ID != "first-event" {
				t.Fatalf("Send: %d accepted, %d results; want 250", res.Accepted, len(res.Events))
			}

			all := storedEvents(t, c, client.Filter{Limit: 100}, 250)
			for i, e := range all {
				if e.Seq != res.Events[i].Seq || e.ID != res.Events[i].ID || e.Message != events[i].Message {
					t.Fatalf("event %d = seq %d id %s %q; want seq %d id %s %q", i, e.Seq, e.ID, e.Message, res.Events[i].Seq, res.Events[i].ID, events[i].Message)
				}
			}
			if e := all[7]; string(e.Data) != `{"i":7}` || e.Severity != event.Warning || !e.Timestamp.Equal(t0.Add(7*time.Millisecond)) {
				t.Errorf("event 7 read back as %+v", e)
			}

			page, err := c.Query(ctx, client.Filter{Tag: "DATABASE.*", Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) != 50 || page.NextSince != page.Events[49].Seq {
				t.Errorf("Query: %d events, next_since %d; want a full page of 50", len(page.Events), page.NextSince)
			}
			if got := storedEvents(t, c, client.Filter{Tag: "*.CONNECTION_LOST", Limit: 7}, 84); got[0].ID != "first-event" {
				t.Errorf("first CONNECTION_LOST event = %s; want first-event", got[0].ID)
			}
			latest, err := c.Query(ctx, client.Filter{Newest: true, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(latest.Events) != 3 || latest.Events[0].Seq != res.Events[249].Seq {
				t.Errorf("newest 3 = %+v; want the last seq first", latest.Events)
			}

			sess, err := c.Session(ctx, "s-1")
			if err != nil {
				t.Fatal(err)
			}
			if len(sess) != 125 || sess[0].Message != "m1" || sess[124].Message != "m249" {
				t.Errorf("Session(s-1): %d events; want 125 in time order from m1 to m249", len(sess))
			}
			e, err := c.Event(ctx, "first-event")
			if err != nil {
				t.Fatal(err)
			}
			if e.Seq != res.Events[0].Seq || e.Tag != "DATABASE.CONNECTION_LOST" {
				t.Errorf("Event(first-event) = %+v", e)
			}
			if _, err := c.Event(ctx, "no-such-event"); statusOf(err) != http.StatusNotFound {
				t.Errorf("Event(no-such-event) = %v; want a 404", err)
			}

			stats, err := c.Stats(ctx, client.StatsFilter{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Bucket: "hour", Tag: "DATABASE.>"})
			if err != nil {
				t.Fatal(err)
			}
			var n uint64
			for _, cnt := range stats.Counts {
				if !strings.HasPrefix(cnt.Tag, "DATABASE.") {
					t.Errorf("count of %s; want DATABASE.> only", cnt.Tag)
				}
				n += cnt.Count
			}
			if n != 167 || stats.Bucket != "hour" {
				t.Errorf("Stats: %d DATABASE events by %s; want 167 by hour", n, stats.Bucket)
			}
		})
	}
}

// Errors carry the server's problem, with pointers into what was sent.
func TestClientErrors(t *testing.T) {
	base := startApp(t, "").Base
	c := newSDK(t, base)
	ctx := t.Context()

	_, err := c.Send(ctx,
		client.Event{Tag: "A.B", Message: "fine"},
		client.Event{Tag: "A.B", Message: "late", Timestamp: time.Now().Add(time.Hour)},
		client.Event{Tag: "A..B", Message: "bad tag"},
	)
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("Send = %v; want a *client.Error", err)
	}
	if e.Status != http.StatusUnprocessableEntity || e.Type != "https://eventsync.dev/problems/validation" || e.RequestID == "" {
		t.Errorf("Send error = %+v; want a 422 validation problem with a request id", e)
	}
	var pointers []string
	for _, fe := range e.Errors {
		pointers = append(pointers, fe.Pointer)
	}
	if !slices.Equal(pointers, []string{"/1/timestamp", "/2/tag"}) {
		t.Errorf("pointers = %q; want /1/timestamp and /2/tag", pointers)
	}

	_, err = c.Query(ctx, client.Filter{Tag: "A..B"})
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || len(e.Errors) != 1 || e.Errors[0].Pointer != "tag" {
		t.Errorf("Query with a bad pattern = %v; want a 400 naming tag", err)
	}
	if _, err := c.CreateSubscription(ctx, client.SubscriptionSpec{URL: "https://hooks.example.com/x"}); statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("CreateSubscription without tags = %v; want 422", err)
	}
	if _, err := c.Producers(ctx); statusOf(err) != http.StatusNotFound {
		t.Errorf("Producers on a server without an admin token = %v; want 404", err)
	}
}

// Subscriptions are created, listed, replayed and deleted through the
// client, and deliveries verify with the secret CreateSubscription returned.
func TestClientSubscriptions(t *testing.T) {
	base := startApp(t, "").Base
	c := newSDK(t, base)
	ctx := t.Context()

	var mu sync.Mutex
	var secret string
	delivered := make(chan string, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		sec := secret
		mu.Unlock()
		if err := webhook.Verify(sec, r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var e event.Event
		if err := event.Decode(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		delivered <- e.ID
	}))
	t.Cleanup(recv.Close)

	mu.Lock() // deliveries wait for the secret
	sub, err := c.CreateSubscription(ctx, client.SubscriptionSpec{URL: recv.URL, Tags: []string{"ORDER.*"}, Description: "orders"})
	if err == nil {
		secret = sub.Secret
	}
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sub.ID, "sub_") || !strings.HasPrefix(sub.Secret, "whsec_") || sub.State != "active" || sub.Type != "webhook" {
		t.Errorf("CreateSubscription = %+v", sub)
	}

	if _, err := c.Send(ctx, client.Event{ID: "o1", Tag: "ORDER.CREATED", Message: "m"}, client.Event{ID: "x1", Tag: "OTHER.THING", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if id := <-delivered; id != "o1" {
		t.Errorf("delivered %s; want o1", id)
	}
	storedEvents(t, c, client.Filter{}, 2)
	queued, err := c.Replay(ctx, sub.ID, client.ReplayRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if queued != 1 {
		t.Errorf("Replay queued %d; want 1 (the one ORDER event)", queued)
	}
	if id := <-delivered; id != "o1" {
		t.Errorf("replayed %s; want o1", id)
	}

	subs, err := c.Subscriptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != sub.ID || subs[0].Secret != "" || subs[0].Description != "orders" {
		t.Errorf("Subscriptions = %+v; want the one subscription without its secret", subs)
	}
	if err := c.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscription(ctx, sub.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("Subscription after delete = %v; want 404", err)
	}
	if subs, err := c.Subscriptions(ctx); err != nil || len(subs) != 0 {
		t.Errorf("Subscriptions after delete = %+v, %v; want none", subs, err)
	}
}

// A Producer publishing 10,000 events from several goroutines stores each
// exactly once.
func TestClientProducer(t *testing.T) {
	base := startApp(t, "").Base
	c := newSDK(t, base)
	var mu sync.Mutex
	var failures []error
	p := client.NewProducer(c, client.ProducerOptions{MaxBatch: 500, MaxBuffered: 2000, FlushInterval: 20 * time.Millisecond,
		OnError: func(err error, dropped []string) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, err)
		}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	const goroutines, each = 4, 2500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e := client.Event{ID: fmt.Sprintf("p%d-%04d", g, i), Tag: fmt.Sprintf("LOAD.P%d", g), Message: "m"}
				if err := p.Publish(t.Context(), e); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if len(failures) > 0 {
		t.Errorf("OnError called %d times, first with %v", len(failures), failures[0])
	}

	stored := map[string]int{}
	last := map[string]int{} // per goroutine, events keep their order
	for _, e := range storedEvents(t, c, client.Filter{Limit: 10000}, goroutines*each) {
		stored[e.ID]++
		var g, i int
		if _, err := fmt.Sscanf(e.ID, "p%d-%d", &g, &i); err != nil {
			t.Fatalf("stored unexpected event %s", e.ID)
		}
		key := fmt.Sprint(g)
		if prev, ok := last[key]; ok && i <= prev {
			t.Errorf("event %s stored after p%d-%04d; want publish order", e.ID, g, prev)
		}
		last[key] = i
	}
	if len(stored) != goroutines*each {
		t.Errorf("%d distinct events stored; want %d", len(stored), goroutines*each)
	}
}

// Tail yields the stored events after its cursor, then new ones as they
// are published; a Live tail only new ones.
func TestClientTail(t *testing.T) {
	base := startApp(t, "").Base
	c := newSDK(t, base)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	res, err := c.Send(ctx,
		client.Event{ID: "o1", Tag: "ORDER.CREATED", Message: "m"},
		client.Event{ID: "x1", Tag: "OTHER.THING", Message: "m"},
		client.Event{ID: "o2", Tag: "ORDER.PAID", Message: "m"},
	)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	sent := false
	for e, err := range c.Tail(ctx, "ORDER.*", 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.ID)
		if e.ID == "o2" && !sent {
			// History is served; now a live event.
			if _, err := c.Send(ctx, client.Event{ID: "o3", Tag: "ORDER.SHIPPED", Message: "m"}); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
		if len(got) == 3 {
			break
		}
	}
	if !slices.Equal(got, []string{"o1", "o2", "o3"}) {
		t.Errorf("Tail(ORDER.*, 0) = %q; want o1, o2 (stored) then o3 (live)", got)
	}

	// A Live tail sees only what is published once it is connected: send
	// until it yields.
	live := make(chan event.Event, 1)
	go func() {
		for e, err := range c.Tail(ctx, "PING.*", client.Live) {
			if err != nil {
				t.Errorf("Live tail: %v", err)
				return
			}
			live <- e
			return
		}
	}()
	for e := (event.Event{}); e.ID == ""; {
		if _, err := c.Send(ctx, client.Event{Tag: "PING.LIVE", Message: "m"}); err != nil {
			t.Fatal(err)
		}
		select {
		case e = <-live:
			if e.Tag != "PING.LIVE" || e.Seq <= res.Events[2].Seq {
				t.Errorf("Live tail yielded %+v; want a PING.LIVE event published after it started", e)
			}
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the Live tail yielded nothing")
		}
	}

	for _, err := range c.Tail(ctx, "ORDER..", 0) {
		if statusOf(err) != http.StatusBadRequest {
			t.Errorf("Tail with a bad pattern = %v; want a 400", err)
		}
	}
}

// A consumer reads what matches its tags after its acknowledged position,
// gets the same events until it acknowledges, and long-polls for new ones.
func TestClientConsumers(t *testing.T) {
	base := startApp(t, "").Base
	c := newSDK(t, base)
	ctx := t.Context()

	if _, err := c.Send(ctx,
		client.Event{ID: "b1", Tag: "BILLING.CHARGED", Message: "m"},
		client.Event{ID: "x1", Tag: "OTHER.THING", Message: "m"},
		client.Event{ID: "b2", Tag: "BILLING.REFUNDED", Message: "m"},
	); err != nil {
		t.Fatal(err)
	}
	cons, err := c.CreateConsumer(ctx, "billing-worker", []string{"BILLING.>"}, client.StartAll())
	if err != nil {
		t.Fatal(err)
	}
	if cons.Name != "billing-worker" || !slices.Equal(cons.Tags, []string{"BILLING.>"}) || cons.Start != client.StartAll() || cons.Acked != 0 {
		t.Errorf("CreateConsumer = %+v", cons)
	}
	if _, err := c.CreateConsumer(ctx, "billing-worker", []string{"BILLING.>"}, client.StartAll()); err != nil {
		t.Errorf("CreateConsumer again with the same definition: %v", err)
	}
	if _, err := c.CreateConsumer(ctx, "billing-worker", []string{"BILLING.*"}, client.StartNew()); statusOf(err) != http.StatusConflict {
		t.Errorf("CreateConsumer with another definition = %v; want 409", err)
	}

	ids := func(b *client.Batch) []string {
		var out []string
		for _, e := range b.Events {
			out = append(out, e.ID)
		}
		return out
	}
	b, err := c.Next(ctx, "billing-worker", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(b), []string{"b1", "b2"}) {
		t.Errorf("Next = %q; want b1, b2", ids(b))
	}
	again, err := c.Next(ctx, "billing-worker", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(again), []string{"b1", "b2"}) {
		t.Errorf("Next before Ack = %q; want b1, b2 again", ids(again))
	}
	pos, err := c.Ack(ctx, "billing-worker", b.LastDelivered)
	if err != nil {
		t.Fatal(err)
	}
	if pos.Acked != b.LastDelivered {
		t.Errorf("Ack(%d) = %+v", b.LastDelivered, pos)
	}

	// A long poll returns when an event arrives.
	next := make(chan *client.Batch, 1)
	go func() {
		b, err := c.Next(ctx, "billing-worker", 10, 20*time.Second)
		if err != nil {
			t.Errorf("Next: %v", err)
		}
		next <- b
	}()
	if _, err := c.Send(ctx, client.Event{ID: "x2", Tag: "OTHER.THING", Message: "m"}, client.Event{ID: "b3", Tag: "BILLING.CHARGED", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if b := <-next; b == nil || !slices.Equal(ids(b), []string{"b3"}) {
		t.Errorf("long-polling Next = %+v; want b3", b)
	}

	list, err := c.Consumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "billing-worker" || list[0].Acked != pos.Acked || list[0].Pending != 1 {
		t.Errorf("Consumers = %+v; want billing-worker acked at %d with 1 pending", list, pos.Acked)
	}
	if _, err := c.Seek(ctx, "billing-worker", 0); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Next(ctx, "billing-worker", 10, 0); err != nil || !slices.Equal(ids(b), []string{"b1", "b2", "b3"}) {
		t.Errorf("Next after Seek(0) = %+v, %v; want b1, b2, b3", b, err)
	}
	if err := c.DeleteConsumer(ctx, "billing-worker"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Consumer(ctx, "billing-worker"); statusOf(err) != http.StatusNotFound {
		t.Errorf("Consumer after delete = %v; want 404", err)
	}
	if _, err := c.Next(ctx, "no such name!", 1, 0); statusOf(err) != http.StatusBadRequest {
		t.Errorf("Next with a bad name = %v; want 400", err)
	}
}

// statusOf returns the status of the *client.Error in err, or 0.
func statusOf(err error) int {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
