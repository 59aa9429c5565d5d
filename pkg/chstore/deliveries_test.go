package chstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/eventstore/storetest"
)

func TestAttemptConformance(t *testing.T) {
	storetest.RunAttempts(t, func(t *testing.T) storetest.AttemptBackend { return open(t, chtest.DSN(t)) })
}

func testAttempt(seq uint64) delivery.Attempt {
	return delivery.Attempt{
		Seq: seq, SubscriptionID: "sub", DeliveryID: "d", EventID: "e", EventSeq: 1, Tag: "A.B",
		Attempt: 1, URL: "https://example.com", Outcome: delivery.Delivered, StatusCode: 200,
		Time: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC),
	}
}

// TestAttemptsUnavailable cuts the connection to ClickHouse and checks that
// the delivery audit methods report eventstore.ErrUnavailable, then that
// they recover.
func TestAttemptsUnavailable(t *testing.T) {
	dsn := chtest.DSN(t)
	proxy := chtest.NewProxy(t, mustURL(t, dsn).Host)
	s := open(t, proxy.DSN(dsn))
	ctx := t.Context()
	if err := s.InsertAttempts(ctx, []delivery.Attempt{testAttempt(1)}); err != nil {
		t.Fatalf("InsertAttempts = %v", err)
	}
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"InsertAttempts", func(ctx context.Context) error {
			return s.InsertAttempts(ctx, []delivery.Attempt{testAttempt(2)})
		}},
		{"Attempts by subscription", func(ctx context.Context) error {
			_, err := s.Attempts(ctx, delivery.Filter{SubscriptionID: "sub", Limit: 10})
			return err
		}},
		{"Attempts by event", func(ctx context.Context) error {
			_, err := s.Attempts(ctx, delivery.Filter{EventID: "e", Limit: 10})
			return err
		}},
	}
	proxy.Cut()
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := c.call(ctx)
		cancel()
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("%s while ClickHouse is down = %v; want ErrUnavailable", c.name, err)
		}
	}
	proxy.Restore()
	for _, c := range calls {
		if err := c.call(ctx); err != nil {
			t.Errorf("%s after ClickHouse is back = %v", c.name, err)
		}
	}
	got, err := s.Attempts(ctx, delivery.Filter{EventID: "e", Limit: 10})
	if err != nil || len(got) != 2 {
		t.Errorf("Attempts after the outage = %d attempts, %v; want 2", len(got), err)
	}
}
