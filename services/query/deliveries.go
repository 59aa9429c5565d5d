package query

import (
	"context"
	"net/http"
	"time"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/problem"
)

// DeliveryPage is a page of delivery attempts in stream order; NextSince is
// the cursor of the next page.
type DeliveryPage struct {
	Deliveries []delivery.Attempt `json:"deliveries"`
	NextSince  uint64             `json:"next_since"`
}

func (s *Service) subscriptionDeliveries(r *http.Request) (any, error) {
	f, err := parseDeliveryFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if f.SubscriptionID = pathParam(r, "id"); f.SubscriptionID == "" {
		return nil, problem.NotFound("the path names no subscription")
	}
	return s.deliveryPage(r.Context(), f)
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
