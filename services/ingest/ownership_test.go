package ingest

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
)

// treeOwners is an in-memory owners table that answers claims the way the
// registry does: a claim is refused when another producer owns the
// category or a prefix of it (Claim returns that owner) or a sub-category
// of it (an *producer.OwnedError).
type treeOwners struct {
	mu     sync.Mutex
	m      map[string]string
	claims int // Claim calls
}

func (f *treeOwners) Owner(category string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.m[category]
	return o, ok
}

func (f *treeOwners) Claim(_ context.Context, category, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	for _, c := range append([]string{category}, producer.Prefixes(category)...) {
		if o, ok := f.m[c]; ok && o != id {
			return o, nil
		}
	}
	for c, o := range f.m {
		if o != id && strings.HasPrefix(c, category+".") {
			return "", &producer.OwnedError{Category: c, Owner: o, Claimed: category}
		}
	}
	f.m[category] = id
	return id, nil
}

func (f *treeOwners) snapshot() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.m)
}

// The owner of a category owns its sub-categories: another producer's
// write to BILLING.SUB.CODE is refused like one to BILLING.CODE, with or
// without claiming on first write.
func TestOwnershipCoversSubCategories(t *testing.T) {
	for _, claim := range []bool{false, true} {
		owners := &treeOwners{m: map[string]string{}}
		h, gate := newGatedHarness(t, Config{}, func(g *access.Gate) Trust {
			return Trust{
				Auth:              g.Authenticator(),
				Clients:           g.Registry(),
				Owners:            owners,
				ClaimOnFirstWrite: claim,
			}
		})
		// b and o are the clients' Authorization values.
		billing, b := createClient(t, gate, producer.Spec{Name: "billing"})
		other, o := createClient(t, gate, producer.Spec{Name: "other"})
		owners.m["BILLING"], owners.m["ORDERS.EU"] = billing.ID, other.ID
		send := func(authorization, body string) (int, problem.Problem) {
			t.Helper()
			req, _ := http.NewRequest("POST", h.url+"/v1/events", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", authorization)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p problem.Problem
			_ = json.NewDecoder(resp.Body).Decode(&p)
			return resp.StatusCode, p
		}
		ev := func(tag string) string { return `{"tag":"` + tag + `","message":"m"}` }

		refused := []struct{ name, body, pointer string }{
			{"category", ev("BILLING.CHARGED"), "/category"},
			{"sub-category", ev("BILLING.SUB.CODE"), "/category"},
			{"deeper sub-category", ev("BILLING.SUB.DEEP.CODE"), "/category"},
			{"sub-category in a batch", "[" + ev("OTHER.A") + "," + ev("BILLING.SUB.CODE") + "]", "/1/category"},
		}
		for _, tt := range refused {
			status, p := send(o, tt.body)
			if status != http.StatusLocked || p.Owner != billing.ID || !strings.Contains(p.Detail, "BILLING") {
				t.Errorf("claim %t, %s: POST = %d owner %q %q; want 423 naming %s", claim, tt.name, status, p.Owner, p.Detail, billing.ID)
			}
			if len(p.Errors) == 0 || p.Errors[0].Pointer != tt.pointer {
				t.Errorf("claim %t, %s: errors = %+v; want pointer %s", claim, tt.name, p.Errors, tt.pointer)
			}
		}
		if got := h.stored(t); len(got) != 0 {
			t.Fatalf("claim %t: %d events published by refused requests", claim, len(got))
		}

		// The owner writes its sub-categories without claiming them.
		if status, p := send(b, ev("BILLING.SUB.CODE")); status != http.StatusAccepted {
			t.Errorf("claim %t: owner's write to BILLING.SUB = %d %s; want 202", claim, status, p.Detail)
		}
		// A category whose sub-category another producer owns is not the
		// sub-category's: it may be written, but not claimed.
		if status, p := send(b, ev("ORDERS.PLACED")); status != http.StatusAccepted {
			t.Errorf("claim %t: write to ORDERS = %d %s; want 202", claim, status, p.Detail)
		}
		want := map[string]string{"BILLING": billing.ID, "ORDERS.EU": other.ID}
		if claim {
			// The first writer of an unowned family still claims it.
			if status, p := send(o, ev("SHIPPING.SENT")); status != http.StatusAccepted {
				t.Errorf("write to SHIPPING = %d %s; want 202", status, p.Detail)
			}
			want["SHIPPING"] = other.ID
			// Claims are made while a request is checked, so the refused
			// batch's first event claimed its category.
			want["OTHER"] = other.ID
			if status, p := send(b, ev("SHIPPING.EU.SENT")); status != http.StatusLocked || p.Owner != other.ID {
				t.Errorf("write under SHIPPING by another = %d owner %q; want 423 naming %s", status, p.Owner, other.ID)
			}
		}
		if got := owners.snapshot(); !maps.Equal(got, want) {
			t.Errorf("claim %t: owners = %v; want %v", claim, got, want)
		}
	}
}
