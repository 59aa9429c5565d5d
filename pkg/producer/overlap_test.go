package producer

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Ownership covers sub-categories: a category cannot be claimed when
// another producer owns it, one of its prefixes or one of its
// sub-categories.
func TestClaimOverlapping(t *testing.T) {
	srv := natstest.Start(t)
	a, b := start(t, srv), start(t, srv)
	p, _ := create(t, a, Spec{Name: "billing", Owns: []string{"BILLING"}})
	q, _ := create(t, a, Spec{Name: "orders", Owns: []string{"ORDERS.EU", "SHOP.EU"}})
	eventually(t, "claims loaded", func() bool {
		o1, _ := b.Owner("BILLING")
		o2, _ := b.Owner("ORDERS.EU")
		return o1 == p.ID && o2 == q.ID
	})

	tests := []struct {
		name, category, by string
		want               string // the owner Claim returns
		conflict           string // the category of the *OwnedError, if any
	}{
		{"sub-category of another's", "BILLING.SUB", q.ID, p.ID, ""},
		{"deeper sub-category of another's", "BILLING.SUB.DEEP", q.ID, p.ID, ""},
		{"prefix of another's", "ORDERS", p.ID, "", "ORDERS.EU"},
		{"prefix of its own", "ORDERS", q.ID, q.ID, ""},
		{"sibling of another's", "SHOP.US", p.ID, p.ID, ""},
		{"sub-category of its own", "BILLING.SUB", p.ID, p.ID, ""},
		{"name prefix is not a category prefix", "BILLINGS", q.ID, q.ID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Claim(t.Context(), tt.category, tt.by)
			var oe *OwnedError
			switch {
			case tt.conflict != "":
				if !errors.As(err, &oe) || oe.Category != tt.conflict || oe.Owner == tt.by || oe.Claimed != tt.category {
					t.Fatalf("Claim(%s, %s) = %q, %v; want an *OwnedError for %s", tt.category, tt.by, got, err, tt.conflict)
				}
			case err != nil || got != tt.want:
				t.Fatalf("Claim(%s, %s) = %q, %v; want %q", tt.category, tt.by, got, err, tt.want)
			}
		})
	}

	// What was refused was not written, and what was allowed was.
	kv := bucket(t, srv, stream.OwnersBucket)
	for cat, want := range map[string]string{"BILLING.SUB.DEEP": "", "SHOP.US": p.ID, "BILLING.SUB": p.ID, "ORDERS": q.ID} {
		got := ""
		if e, err := kv.Get(t.Context(), cat); err == nil {
			got = string(e.Value())
		}
		if got != want {
			t.Errorf("owners bucket %s = %q; want %q", cat, got, want)
		}
	}

	t.Run("create owning a sub-category of another's", func(t *testing.T) {
		_, _, err := a.Create(t.Context(), Spec{Name: "thief", Owns: []string{"THEFT", "BILLING.REFUNDS"}})
		var oe *OwnedError
		if !errors.As(err, &oe) || oe.Category != "BILLING" || oe.Owner != p.ID || oe.Claimed != "BILLING.REFUNDS" {
			t.Fatalf("Create = %v; want an *OwnedError for BILLING by %s", err, p.ID)
		}
		if _, ok := a.Owner("THEFT"); ok {
			t.Error("the refused producer's other claim was kept")
		}
	})
	t.Run("update owning a prefix of another's", func(t *testing.T) {
		r, _ := create(t, a, Spec{Name: "retail"})
		_, err := a.Update(t.Context(), r.ID, func(p *Producer) error { p.Owns = []string{"SHOP"}; return nil })
		var oe *OwnedError
		if !errors.As(err, &oe) || !strings.HasPrefix(oe.Category, "SHOP.") || oe.Claimed != "SHOP" {
			t.Fatalf("Update = %v; want an *OwnedError for a sub-category of SHOP", err)
		}
		if got, _ := a.Get(r.ID); len(got.Owns) != 0 {
			t.Errorf("Owns after a refused update = %v; want none", got.Owns)
		}
	})
}

// Concurrent claims of nested categories by different producers from two
// instances: whatever the interleaving, the bucket never ends up with two
// producers owning overlapping categories, and each claimant is told the
// truth about its own claim.
func TestConcurrentOverlappingClaims(t *testing.T) {
	srv := natstest.Start(t)
	regs := []*Registry{start(t, srv), start(t, srv)}
	cats := []string{"PAY", "PAY.CARD", "PAY.CARD.VISA", "PAY.SEPA", "PAY.CARD.AMEX"}
	var ids []string
	for i := range cats {
		p, _ := create(t, regs[0], Spec{Name: fmt.Sprintf("p%d", i)})
		ids = append(ids, p.ID)
	}
	kv := bucket(t, srv, stream.OwnersBucket)
	for round := range 8 {
		prefix := fmt.Sprintf("R%d.", round)
		won := make([]bool, len(cats))
		var wg sync.WaitGroup
		for i, cat := range cats {
			wg.Go(func() {
				owner, err := regs[i%2].Claim(t.Context(), prefix+cat, ids[i])
				var oe *OwnedError
				if err != nil && !errors.As(err, &oe) {
					t.Errorf("Claim(%s): %v", prefix+cat, err)
				}
				won[i] = err == nil && owner == ids[i]
			})
		}
		wg.Wait()
		held := map[string]string{}
		for i, cat := range cats {
			e, err := kv.Get(t.Context(), prefix+cat)
			if err == nil {
				held[cat] = string(e.Value())
			}
			if got := held[cat] == ids[i]; got != won[i] {
				t.Errorf("round %d: claimant of %s told it won: %t; bucket holds %q", round, cat, won[i], held[cat])
			}
		}
		if len(held) == 0 {
			t.Errorf("round %d: nobody won", round)
		}
		for c1, o1 := range held {
			for c2, o2 := range held {
				if o1 != o2 && strings.HasPrefix(c2, c1+".") {
					t.Errorf("round %d: %s owns %s and %s owns %s", round, o1, c1, o2, c2)
				}
			}
		}
	}
}

// A claim on a prefix or sub-category whose producer no longer exists does
// not block a claim; it is released.
func TestOverlappingClaimFromGoneOwner(t *testing.T) {
	srv := natstest.Start(t)
	r := start(t, srv)
	gone := "prd_0123456789abcdef0123456789abcdef"
	kv := bucket(t, srv, stream.OwnersBucket)
	if _, err := kv.Create(t.Context(), "BILLING.SUB", []byte(gone)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stale owner is loaded", func() bool { o, _ := r.Owner("BILLING.SUB"); return o == gone })
	p, _ := create(t, r, Spec{Name: "billing", Owns: []string{"BILLING"}})
	if o, _ := r.Owner("BILLING"); o != p.ID {
		t.Errorf("Owner(BILLING) = %q; want %q", o, p.ID)
	}
	if _, err := kv.Get(t.Context(), "BILLING.SUB"); err == nil {
		t.Error("the stale claim on BILLING.SUB is still in the bucket")
	}
}

func TestOverlapErrorMessage(t *testing.T) {
	err := &OwnedError{Category: "BILLING", Owner: "prd_1", Claimed: "BILLING.SUB"}
	if got, want := err.Error(), "category BILLING.SUB overlaps BILLING, which producer prd_1 owns"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}
