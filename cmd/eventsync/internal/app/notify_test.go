package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/webhook"
)

// TestSubscriptionEndToEnd runs the whole path in the all-in-one: an event
// posted to ingest reaches a subscribed webhook, signed, and every attempt
// (a failed one, then the delivery) is stored and served by the query API.
func TestSubscriptionEndToEnd(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			base := startApp(t, b.url(t)).Base

			var (
				mu       sync.Mutex
				secret   string
				requests int
				got      = make(chan map[string]any, 10)
			)
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				requests++
				n, sec := requests, secret
				mu.Unlock()
				if err := webhook.Verify(sec, r.Header, body); err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
					return
				}
				if n == 1 {
					http.Error(w, "warming up", http.StatusServiceUnavailable)
					return
				}
				var ev map[string]any
				_ = json.Unmarshal(body, &ev)
				got <- ev
			}))
			t.Cleanup(recv.Close)

			var sub struct {
				ID     string `json:"id"`
				Secret string `json:"secret"`
			}
			mu.Lock() // the receiver must not verify before the secret is known
			status := postJSON(t, base+"/v1/subscriptions", fmt.Sprintf(`{"url":%q,"tags":["DATABASE.*"]}`, recv.URL), &sub)
			secret = sub.Secret
			mu.Unlock()
			if status != http.StatusCreated {
				t.Fatalf("create subscription = %d", status)
			}

			post(t, base+"/v1/events", "application/json", `{"id":"e2e-1","category":"DATABASE","code":"CONNECTION_LOST","message":"primary down"}`)
			select {
			case ev := <-got:
				if ev["id"] != "e2e-1" || ev["tag"] != "DATABASE.CONNECTION_LOST" || ev["seq"] == nil {
					t.Errorf("delivered %v; want the stored event e2e-1 with its seq", ev)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("no delivery within 15s")
			}

			type page struct {
				Deliveries []delivery.Attempt `json:"deliveries"`
			}
			var all page
			deadline := time.Now().Add(15 * time.Second)
			for len(all.Deliveries) < 2 && time.Now().Before(deadline) {
				all = get[page](t, base+"/v1/subscriptions/"+sub.ID+"/deliveries")
				time.Sleep(50 * time.Millisecond)
			}
			if len(all.Deliveries) != 2 {
				t.Fatalf("audit = %+v; want 2 attempts", all.Deliveries)
			}
			first, second := all.Deliveries[0], all.Deliveries[1]
			if first.Outcome != delivery.Retrying || first.StatusCode != 503 || first.Attempt != 1 || first.EventID != "e2e-1" {
				t.Errorf("first attempt = %+v; want retrying 503 #1 of e2e-1", first)
			}
			if second.Outcome != delivery.Delivered || second.StatusCode != 200 || second.Attempt != 2 || second.DeliveryID != first.DeliveryID {
				t.Errorf("second attempt = %+v; want delivered 200 #2 with the same delivery id", second)
			}
			failed := get[page](t, base+"/v1/subscriptions/"+sub.ID+"/deliveries?status=failed")
			if len(failed.Deliveries) != 1 || failed.Deliveries[0].Outcome != delivery.Retrying {
				t.Errorf("status=failed = %+v; want the one failed attempt", failed.Deliveries)
			}
			byEvent := get[page](t, base+"/v1/events/e2e-1/deliveries")
			if len(byEvent.Deliveries) != 2 {
				t.Errorf("deliveries of e2e-1 = %+v; want 2", byEvent.Deliveries)
			}
		})
	}
}

// postJSON posts body and decodes the answer into out, returning the status.
func postJSON(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %s: %v", url, b, err)
		}
	}
	return resp.StatusCode
}
