package sqlitestore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/eventstore/storetest"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
)

func TestAttemptConformance(t *testing.T) {
	storetest.RunAttempts(t, func(t *testing.T) storetest.AttemptBackend { return open(t) })
}

func TestAttemptsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := t.Context()
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	a := delivery.Attempt{Seq: 3, SubscriptionID: "sub", EventID: "e", Attempt: 1, Outcome: delivery.Delivered, Time: time.Unix(1, 0).UTC()}
	if err := s.InsertAttempts(ctx, []delivery.Attempt{a}); err != nil {
		t.Fatalf("InsertAttempts = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	s, err = sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatalf("second Open = %v", err)
	}
	defer s.Close()
	got, err := s.Attempts(ctx, delivery.Filter{SubscriptionID: "sub", Limit: 10})
	if err != nil || len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("Attempts after reopen = %+v, %v; want seq 3", got, err)
	}
}

func TestAttemptsRejectOversizedSeq(t *testing.T) {
	s := open(t)
	a := delivery.Attempt{Seq: 1 << 63, SubscriptionID: "sub", Outcome: delivery.Delivered}
	if err := s.InsertAttempts(t.Context(), []delivery.Attempt{a}); err == nil {
		t.Errorf("InsertAttempts(seq %d) = nil; want an error", a.Seq)
	}
}

func TestAttemptsCanceledContextIsUnavailable(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithTimeout(t.Context(), -time.Second)
	defer cancel()
	_, err := s.Attempts(ctx, delivery.Filter{SubscriptionID: "sub", Limit: 1})
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Attempts with an expired deadline = %v; want ErrUnavailable", err)
	}
	err = s.InsertAttempts(ctx, []delivery.Attempt{{Seq: 1, SubscriptionID: "sub"}})
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("InsertAttempts with an expired deadline = %v; want ErrUnavailable", err)
	}
}
