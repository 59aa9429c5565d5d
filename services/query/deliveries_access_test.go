package query_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/services/query"
)

// readDeliveries follows next_since over path and returns the
// subscription of every attempt, checking that every page but the last
// is full.
func readDeliveries(t *testing.T, g *gated, path, auth string, limit int) []string {
	t.Helper()
	var subs []string
	var since uint64
	for range 100 {
		p := gjson[query.DeliveryPage](g, "GET", fmt.Sprintf("%s?since=%d&limit=%d", path, since, limit), auth, nil, http.StatusOK)
		for _, a := range p.Deliveries {
			subs = append(subs, a.SubscriptionID)
		}
		if len(p.Deliveries) < limit {
			return subs
		}
		since = p.NextSince
	}
	t.Fatalf("%s: no end after 100 pages", path)
	return nil
}

// TestDeliveriesOfOwnSubscriptions: a client reads the delivery attempts
// of its own subscriptions only. Another client's subscription is the
// 404 of an unknown one; an event's attempts are those to the client's
// subscriptions, in full pages; an event outside the tags the client may
// read or subscribe to is a 404; an admin sees everything, also the
// audit of a deleted subscription, whose owner is gone.
func TestDeliveriesOfOwnSubscriptions(t *testing.T) {
	forEachGated(t, func(t *testing.T, g *gated) {
		sam := g.client("sam", producer.Scopes{Subscribe: []string{"DATABASE.>"}})
		ria := g.client("ria", producer.Scopes{Subscribe: []string{"DATABASE.>"}, Read: []string{"AUTH.>"}})
		ids := g.publish("DATABASE.INSERT", "AUTH.LOGIN")
		g.subscription("sub_sam", sam.id)
		g.subscription("sub_ria", ria.id)
		for range 5 {
			g.attempt("sub_sam", ids[0], "DATABASE.INSERT")
			g.attempt("sub_ria", ids[0], "DATABASE.INSERT")
			g.attempt("sub_ria", ids[0], "DATABASE.INSERT")
		}
		g.attempt("sub_ria", ids[1], "AUTH.LOGIN")
		g.attempt("sub_gone", ids[0], "DATABASE.INSERT")

		t.Run("subscription", func(t *testing.T) {
			if got := readDeliveries(t, g, "/v1/subscriptions/sub_sam/deliveries", sam.bearer(), 2); len(got) != 5 {
				t.Errorf("sam's attempts of sub_sam = %d; want 5", len(got))
			}
			for _, id := range []string{"sub_ria", "sub_gone", "sub_unknown"} {
				want := fmt.Sprintf("no subscription has the id %q", id)
				if d := g.problemOf("GET", "/v1/subscriptions/"+id+"/deliveries", sam.bearer(), nil, http.StatusNotFound); d != want {
					t.Errorf("sam on %s = %q; want %q", id, d, want)
				}
			}
			if got := readDeliveries(t, g, "/v1/subscriptions/sub_gone/deliveries", admin, 10); len(got) != 1 {
				t.Errorf("admin's attempts of the deleted sub_gone = %d; want 1", len(got))
			}
			g.problemOf("GET", "/v1/subscriptions/sub_unknown/deliveries", admin, nil, http.StatusNotFound)
		})

		t.Run("event", func(t *testing.T) {
			for _, limit := range []int{1, 2, 3, 100} {
				got := readDeliveries(t, g, "/v1/events/"+ids[0]+"/deliveries", sam.bearer(), limit)
				if len(got) != 5 || slices.ContainsFunc(got, func(s string) bool { return s != "sub_sam" }) {
					t.Errorf("sam's attempts of %s, limit %d = %v; want sub_sam's 5", ids[0], limit, got)
				}
				got = readDeliveries(t, g, "/v1/events/"+ids[0]+"/deliveries", ria.bearer(), limit)
				if len(got) != 10 || slices.ContainsFunc(got, func(s string) bool { return s != "sub_ria" }) {
					t.Errorf("ria's attempts of %s, limit %d = %v; want sub_ria's 10", ids[0], limit, got)
				}
			}
			if got := readDeliveries(t, g, "/v1/events/"+ids[0]+"/deliveries", admin, 4); len(got) != 16 {
				t.Errorf("admin's attempts of %s = %d; want 16", ids[0], len(got))
			}
			// AUTH.LOGIN: sam may neither read nor subscribe to it; ria
			// may read it.
			want := fmt.Sprintf("no event has id %q", ids[1])
			if d := g.problemOf("GET", "/v1/events/"+ids[1]+"/deliveries", sam.bearer(), nil, http.StatusNotFound); d != want {
				t.Errorf("sam on the deliveries of an AUTH event = %q; want %q", d, want)
			}
			if got := readDeliveries(t, g, "/v1/events/"+ids[1]+"/deliveries", ria.bearer(), 10); !slices.Equal(got, []string{"sub_ria"}) {
				t.Errorf("ria's attempts of the AUTH event = %v; want [sub_ria]", got)
			}
		})
	})
}
