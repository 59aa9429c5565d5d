package query

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/problem"
)

// DeliveryPage is a page of delivery attempts in stream order; NextSince is
// the cursor of the next page.
type DeliveryPage struct {
	Deliveries []delivery.Attempt `json:"deliveries"`
	NextSince  uint64             `json:"next_since"`
}

// subscriptions tells whether a subscription exists (the notifier's
// subscriptions bucket).
type subscriptions interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

func (s *Service) subscriptionDeliveries(r *http.Request) (any, error) {
	f, err := parseDeliveryFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if f.SubscriptionID = pathParam(r, "id"); f.SubscriptionID == "" {
		return nil, problem.NotFound("the path names no subscription")
	}
	if err := s.checkSubscription(r.Context(), f.SubscriptionID); err != nil {
		return nil, err
	}
	return s.deliveryPage(r.Context(), f)
}

// checkSubscription answers 404 for a subscription id that names neither
// a subscription nor any stored attempt: the audit of a deleted
// subscription stays readable, a mistyped id is not an empty page.
func (s *Service) checkSubscription(ctx context.Context, id string) error {
	if s.subs == nil {
		return nil
	}
	_, err := s.subs.Get(ctx, id)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
	default:
		return problem.Unavailable("the subscriptions bucket is unavailable", time.Second)
	}
	seen, err := s.r.Attempts(ctx, delivery.Filter{SubscriptionID: id, Limit: 1})
	if err != nil {
		return err
	}
	if len(seen) == 0 {
		return problem.NotFound("no subscription has the id " + strconv.Quote(id))
	}
	return nil
}

func (s *Service) eventDeliveries(r *http.Request) (any, error) {
	f, err := parseDeliveryFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if f.EventID = pathParam(r, "id"); f.EventID == "" {
		return nil, problem.NotFound("the path names no event")
	}
	return s.deliveryPage(r.Context(), f)
}

// deliveryPage reads attempts after the cursor, never beyond the
// deliveries watermark, with the cursor rules of page.
func (s *Service) deliveryPage(ctx context.Context, f delivery.Filter) (*DeliveryPage, error) {
	wm, err := s.delWM.Committed(ctx)
	if err != nil {
		return nil, problem.Unavailable("the delivery stream is unavailable", time.Second)
	}
	p := &DeliveryPage{Deliveries: []delivery.Attempt{}, NextSince: f.After}
	if wm <= f.After {
		return p, nil
	}
	f.Through = wm
	attempts, err := s.r.Attempts(ctx, f)
	if err != nil {
		return nil, err
	}
	if attempts != nil {
		p.Deliveries = attempts
	}
	p.NextSince = wm
	if len(attempts) == f.Limit {
		p.NextSince = attempts[len(attempts)-1].Seq
	}
	return p, nil
}
