package producer

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
)

func TestClaim(t *testing.T) {
	srv := natstest.Start(t)
	a, b := start(t, srv), start(t, srv)
	p, _ := create(t, a, Spec{Name: "billing"})
	q, _ := create(t, a, Spec{Name: "orders"})

	tests := []struct {
		category, by, want string
	}{
		{"BILLING", p.ID, p.ID},
		{"BILLING", p.ID, p.ID}, // again: still p
		{"BILLING", q.ID, p.ID}, // p was first
		{"ORDERS.EU", q.ID, q.ID},
	}
	for _, tt := range tests {
		got, err := b.Claim(t.Context(), tt.category, tt.by)
		if err != nil || got != tt.want {
			t.Errorf("Claim(%s, %s) = %q, %v; want %q", tt.category, tt.by, got, err, tt.want)
		}
	}
	for _, r := range []*Registry{a, b} {
		eventually(t, "owners everywhere", func() bool {
			o1, _ := r.Owner("BILLING")
			o2, _ := r.Owner("ORDERS.EU")
			return o1 == p.ID && o2 == q.ID
		})
	}
	if diff := cmp.Diff([]string{"BILLING"}, a.Owned(p.ID)); diff != "" {
		t.Errorf("Owned (-want +got):\n%s", diff)
	}
	if _, ok := a.Owner("ORDERS"); ok {
		t.Error("Owner(ORDERS) is set; only ORDERS.EU was claimed")
	}

	if err := a.Release(t.Context(), "BILLING"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(t.Context(), "NEVER.CLAIMED"); err != nil {
		t.Errorf("Release(unclaimed) = %v; want nil", err)
	}
	eventually(t, "released everywhere", func() bool { _, ok := b.Owner("BILLING"); return !ok })
	if got, err := b.Claim(t.Context(), "BILLING", q.ID); err != nil || got != q.ID {
		t.Errorf("Claim after release = %q, %v; want %q", got, err, q.ID)
	}

	for _, bad := range []string{"", "A..B", "A B", "A.*"} {
		if _, err := a.Claim(t.Context(), bad, p.ID); err == nil {
			t.Errorf("Claim(%q) = nil error; want an invalid category", bad)
		}
	}
}

// Concurrent claims of one category from two instances: one producer wins
// and every claimant is told the same owner.
func TestConcurrentClaims(t *testing.T) {
	srv := natstest.Start(t)
	regs := []*Registry{start(t, srv), start(t, srv)}
	var ids []string
	for i := range 6 {
		p, _ := create(t, regs[0], Spec{Name: "p" + string(rune('a'+i))})
		ids = append(ids, p.ID)
	}
	owners := make([]string, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			o, err := regs[i%2].Claim(t.Context(), "PAYMENTS", id)
			if err != nil {
				t.Errorf("Claim: %v", err)
			}
			owners[i] = o
		})
	}
	wg.Wait()
	for i, o := range owners {
		if o != owners[0] {
			t.Errorf("claimant %d was told owner %q; claimant 0 %q", i, o, owners[0])
		}
	}
	for _, r := range regs {
		eventually(t, "one owner everywhere", func() bool { o, _ := r.Owner("PAYMENTS"); return o == owners[0] })
	}
}

// A category held by a producer that no longer exists is taken over.
func TestClaimFromGoneOwner(t *testing.T) {
	srv := natstest.Start(t)
	r := start(t, srv)
	gone := "prd_0123456789abcdef0123456789abcdef"
	if _, err := bucket(t, srv, stream.OwnersBucket).Create(t.Context(), "BILLING", []byte(gone)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stale owner is loaded", func() bool { o, _ := r.Owner("BILLING"); return o == gone })
	p, _ := create(t, r, Spec{Name: "billing", Owns: []string{"BILLING"}})
	if o, _ := r.Owner("BILLING"); o != p.ID {
		t.Errorf("Owner(BILLING) = %q; want %q", o, p.ID)
	}
}

func TestOwnsOnCreateAndUpdate(t *testing.T) {
	srv := natstest.Start(t)
	r := start(t, srv)
	p, _ := create(t, r, Spec{Name: "billing", Tags: []string{"BILLING.>", "INVOICE.>"}, Owns: []string{"BILLING"}})
	if o, _ := r.Owner("BILLING"); o != p.ID {
		t.Fatalf("Owner(BILLING) = %q; want %q", o, p.ID)
	}

	t.Run("create owning another's category", func(t *testing.T) {
		_, _, err := r.Create(t.Context(), Spec{Name: "thief", Owns: []string{"THEFT", "BILLING"}})
		var oe *OwnedError
		if !errors.As(err, &oe) || oe.Category != "BILLING" || oe.Owner != p.ID {
			t.Fatalf("Create = %v; want an *OwnedError for BILLING by %s", err, p.ID)
		}
		if _, ok := r.ByName("thief"); ok {
			t.Error("the refused producer exists")
		}
		if _, ok := r.Owner("THEFT"); ok {
			t.Error("the refused producer's other claim was kept")
		}
		create(t, r, Spec{Name: "thief"}) // its name is free
	})

	t.Run("update adds and removes", func(t *testing.T) {
		got, err := r.Update(t.Context(), p.ID, func(p *Producer) error { p.Owns = []string{"INVOICE"}; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"INVOICE"}, got.Owns); diff != "" {
			t.Errorf("Owns (-want +got):\n%s", diff)
		}
		if o, _ := r.Owner("INVOICE"); o != p.ID {
			t.Errorf("Owner(INVOICE) = %q; want %q", o, p.ID)
		}
		if _, ok := r.Owner("BILLING"); ok {
			t.Error("BILLING is still owned after it left Owns")
		}
	})

	t.Run("update claiming another's category", func(t *testing.T) {
		q, _ := create(t, r, Spec{Name: "orders", Owns: []string{"ORDERS"}})
		_, err := r.Update(t.Context(), q.ID, func(p *Producer) error { p.Owns = []string{"ORDERS", "REFUNDS", "INVOICE"}; return nil })
		var oe *OwnedError
		if !errors.As(err, &oe) || oe.Category != "INVOICE" || oe.Owner != p.ID {
			t.Fatalf("Update = %v; want an *OwnedError for INVOICE by %s", err, p.ID)
		}
		if got, _ := r.Get(q.ID); !cmp.Equal(got.Owns, []string{"ORDERS"}) {
			t.Errorf("Owns after a refused update = %v; want [ORDERS]", got.Owns)
		}
		if _, ok := r.Owner("REFUNDS"); ok {
			t.Error("the refused update's other claim was kept")
		}
	})
}

func TestOwnedErrorMessage(t *testing.T) {
	err := &OwnedError{Category: "BILLING", Owner: "prd_1"}
	if got, want := err.Error(), "category BILLING is owned by producer prd_1"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}
