package app_test

// Runnable examples of the Go client (package client) against the
// all-in-one started in this process.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/webhook"
)

// exampleApp starts the all-in-one on loopback ports with its data in a
// temporary directory, for examples (which have no *testing.T).
func exampleApp() (base string, stop func(), err error) {
	r, err := apptest.New(nil, "--batch-wait", "20ms",
		"--notify-allow-nets", "127.0.0.0/8,::1/128") // the example's webhook receiver is local
	if err != nil {
		return "", nil, err
	}
	return r.Base, r.Stop, nil
}

// Send events, then read them back by session once they are stored.
func Example_sendAndQuery() {
	base, stop, err := exampleApp()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	c, err := client.New(base)
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Send(ctx,
		client.Event{ID: "order-42-created", Tag: "ORDER.CREATED", Message: "order 42", SessionID: "s-42", Data: map[string]any{"items": 3}},
		client.Event{Tag: "ORDER.PAID", Message: "order 42 paid", SessionID: "s-42", Data: map[string]any{"amount": 12.5}},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("accepted", res.Accepted, "first seq", res.Events[0].Seq)

	// Reads serve what the store has committed, a moment after the 202.
	var events []event.Event
	for len(events) < 2 {
		if events, err = c.Session(ctx, "s-42"); err != nil {
			fmt.Println(err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, e := range events {
		fmt.Println(e.Seq, e.Tag, e.Message, string(e.Data))
	}
	// Output:
	// accepted 2 first seq 1
	// 1 ORDER.CREATED order 42 {"items":3}
	// 2 ORDER.PAID order 42 paid {"amount":12.5}
}

// A Producer batches events in the background; Close sends what is left.
func Example_producer() {
	base, stop, err := exampleApp()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	c, err := client.New(base)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := client.NewProducer(c, client.ProducerOptions{
		OnError: func(err error, dropped []string) { fmt.Println("not stored:", len(dropped), err) },
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	for i := range 2500 {
		if err := p.Publish(ctx, client.Event{Tag: "METRICS.SAMPLE", Message: fmt.Sprint("sample ", i)}); err != nil {
			fmt.Println(err)
			break
		}
	}
	if err := p.Close(ctx); err != nil {
		fmt.Println(err)
	}
	cancel()
	<-done

	var n int
	for n < 2500 {
		n = 0
		for _, err := range c.Events(ctx, client.Filter{Tag: "METRICS.*", Limit: 1000}) {
			if err != nil {
				fmt.Println(err)
				return
			}
			n++
		}
	}
	fmt.Println("stored", n)
	// Output:
	// stored 2500
}

// Subscribe a webhook; each delivery is signed with the secret that
// CreateSubscription returns.
func Example_subscription() {
	base, stop, err := exampleApp()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	secret := make(chan string, 1)
	delivered := make(chan event.Event, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		sec := <-secret
		secret <- sec
		if err := webhook.Verify(sec, r.Header, body); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var e event.Event
		if err := event.Decode(body, &e); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		delivered <- e
	}))
	defer receiver.Close()

	c, err := client.New(base)
	if err != nil {
		fmt.Println(err)
		return
	}
	sub, err := c.CreateSubscription(ctx, client.SubscriptionSpec{URL: receiver.URL, Tags: []string{"DATABASE.*"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	secret <- sub.Secret
	fmt.Println(sub.Type, sub.Tags, sub.State)

	if _, err := c.Send(ctx, client.Event{Tag: "DATABASE.CONNECTION_LOST", Message: "primary unreachable"}); err != nil {
		fmt.Println(err)
		return
	}
	e := <-delivered
	fmt.Println("delivered", e.Tag, e.Message)
	// Output:
	// webhook [DATABASE.*] active
	// delivered DATABASE.CONNECTION_LOST primary unreachable
}

// Follow events live: the stored ones after a seq first, then new ones as
// they are published.
func Example_tail() {
	base, stop, err := exampleApp()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c, err := client.New(base)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.Send(ctx,
		client.Event{Tag: "DATABASE.CONNECTION_LOST", Message: "primary unreachable"},
		client.Event{Tag: "AUTH.INVALID_TOKEN", Message: "bad token"},
		client.Event{Tag: "DATABASE.FAILOVER", Message: "replica promoted"},
	); err != nil {
		fmt.Println(err)
		return
	}
	for e, err := range c.Tail(ctx, "DATABASE.*", 0) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Seq, e.Tag, e.Message)
		if e.Seq == 3 {
			break // a dashboard would keep going
		}
	}
	// Output:
	// 1 DATABASE.CONNECTION_LOST primary unreachable
	// 3 DATABASE.FAILOVER replica promoted
}

// A named consumer reads after its acknowledged position: it gets the same
// events until it acknowledges them, across restarts of either side.
func Example_consumer() {
	base, stop, err := exampleApp()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	c, err := client.New(base)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.CreateConsumer(ctx, "invoicing", []string{"BILLING.>"}, client.StartAll()); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.Send(ctx,
		client.Event{Tag: "BILLING.CHARGED", Message: "order 42 charged"},
		client.Event{Tag: "OPS.DEPLOYED", Message: "v1.2.3"},
		client.Event{Tag: "BILLING.REFUNDED", Message: "order 41 refunded"},
	); err != nil {
		fmt.Println(err)
		return
	}
	b, err := c.Next(ctx, "invoicing", 100, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range b.Events {
		fmt.Println(e.Seq, e.Message)
	}
	// Processed: acknowledge through the last delivered seq.
	pos, err := c.Ack(ctx, "invoicing", b.LastDelivered)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("acked", pos.Acked)
	// Output:
	// 1 order 42 charged
	// 3 order 41 refunded
	// acked 3
}
