package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/problem"
)

// DeliveryPage is a page of delivery attempts in stream order; NextSince is
// the cursor of the next page.
type DeliveryPage struct {
	Deliveries []delivery.Attempt `json:"deliveries"`
	NextSince  uint64             `json:"next_since"`
}

// subscriptions finds a subscription's record (the notifier's
// subscriptions bucket, keyed by id), to tell whether it exists and who
// owns it.
type subscriptions interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

// subscriptionOwner is what the query service reads of a subscription
// record: the notifier's Subscription.Owner (the client id of its
// creator; "admin" for the admin token; empty with authentication off and
// on subscriptions created before they had owners).
type subscriptionOwner struct {
	Owner string `json:"owner"`
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
	return s.deliveryPage(r.Context(), f, nil)
}

// checkSubscription answers 404 for a subscription id that names neither
// a subscription nor any stored attempt: the audit of a deleted
// subscription stays readable, a mistyped id is not an empty page. A
// subscription of another client is a 404 too, and so is the audit of a
// deleted one for anybody but an admin: its owner is gone with its
// record.
func (s *Service) checkSubscription(ctx context.Context, id string) error {
	p := access.From(ctx)
	notFound := problem.NotFound("no subscription has the id " + strconv.Quote(id))
	owner, found, err := s.subscriptionOwner(ctx, id)
	switch {
	case err != nil:
		return err
	case found && p.Owns(owner):
		return nil
	case found || !p.Admin:
		return notFound
	}
	seen, err := s.r.Attempts(ctx, delivery.Filter{SubscriptionID: id, Limit: 1})
	if err != nil {
		return err
	}
	if len(seen) == 0 {
		return notFound
	}
	return nil
}

// subscriptionOwner returns the owner of a subscription and whether it
// exists. Without a subscriptions bucket (package tests) every id exists
// and has no owner.
func (s *Service) subscriptionOwner(ctx context.Context, id string) (string, bool, error) {
	if s.subs == nil {
		return "", true, nil
	}
	e, err := s.subs.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		return "", false, nil
	case err != nil:
		return "", false, problem.Unavailable("the subscriptions bucket is unavailable", time.Second)
	}
	var o subscriptionOwner
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return "", false, fmt.Errorf("decode subscription %s: %w", id, err)
	}
	return o.Owner, true, nil
}

// eventDeliveries shows the attempts of an event to the caller's own
// subscriptions (an admin's: all). An event outside the tags the caller
// may read or subscribe to is a 404, like an unknown id; subscribe
// counts because its own subscriptions deliver such events to it anyway.
func (s *Service) eventDeliveries(r *http.Request) (any, error) {
	f, err := parseDeliveryFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if f.EventID = pathParam(r, "id"); f.EventID == "" {
		return nil, problem.NotFound("the path names no event")
	}
	ctx := r.Context()
	p := access.From(ctx)
	if p.Admin {
		return s.deliveryPage(ctx, f, nil)
	}
	e, err := s.r.Event(ctx, f.EventID)
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
		// Not stored (yet, or any more): its attempts are still
		// limited to the caller's subscriptions.
	case err != nil:
		return nil, err
	case !p.Allows(access.Read, e.Tag) && !p.Allows(access.Subscribe, e.Tag):
		return nil, problem.NotFound("no event has id " + strconv.Quote(f.EventID))
	}
	owners := map[string]bool{} // subscription id → the caller owns it
	own := func(ctx context.Context, a *delivery.Attempt) (bool, error) {
		if ok, seen := owners[a.SubscriptionID]; seen {
			return ok, nil
		}
		owner, found, err := s.subscriptionOwner(ctx, a.SubscriptionID)
		if err != nil {
			return false, err
		}
		owners[a.SubscriptionID] = found && p.Owns(owner)
		return owners[a.SubscriptionID], nil
	}
	return s.deliveryPage(ctx, f, own)
}

// deliveryPage reads attempts after the cursor, never beyond the
// deliveries watermark, with the cursor rules of page. With keep, only the
// attempts it keeps count: the store cannot select them, so deliveryPage
// reads on until it has a full page of them or reached the watermark.
// A page is short only at the end, the cursor names the last attempt
// returned, and no kept attempt is ever skipped.
func (s *Service) deliveryPage(ctx context.Context, f delivery.Filter, keep func(context.Context, *delivery.Attempt) (bool, error)) (*DeliveryPage, error) {
	wm, err := s.delWM.Committed(ctx)
	if err != nil {
		return nil, problem.Unavailable("the delivery stream is unavailable", time.Second)
	}
	p := &DeliveryPage{Deliveries: []delivery.Attempt{}, NextSince: f.After}
	if wm <= f.After {
		return p, nil
	}
	f.Through = wm
	for {
		attempts, err := s.r.Attempts(ctx, f)
		if err != nil {
			return nil, err
		}
		for i := range attempts {
			if keep != nil {
				ok, err := keep(ctx, &attempts[i])
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			p.Deliveries = append(p.Deliveries, attempts[i])
			if len(p.Deliveries) == f.Limit {
				p.NextSince = attempts[i].Seq
				return p, nil
			}
		}
		if len(attempts) < f.Limit {
			// Every attempt in (After, wm] was read.
			p.NextSince = wm
			return p, nil
		}
		f.After = attempts[len(attempts)-1].Seq
	}
}
