package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/eventsync/eventsync/pkg/webhook"
)

// A receiver verifies each delivery before acting on it. It reads the body
// as is (verification needs the exact bytes), answers 2xx once the delivery
// is handled, and uses webhook-id, which is the same on every retry, to skip
// duplicates.
func ExampleVerify() {
	// The secret shown when the subscription was created.
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := webhook.Verify(secret, r.Header, body); err != nil {
			http.Error(w, "invalid webhook signature", http.StatusUnauthorized)
			return
		}
		fmt.Println("verified delivery", r.Header.Get(webhook.HeaderID))
		w.WriteHeader(http.StatusNoContent)
	})

	// What EventSync sends, signed here to show the receiver at work.
	body := []byte(`{"id":"0190c1e8-3b5c-7d2a-9f3e-5a1b2c3d4e5f","tag":"DATABASE.CONNECTION_LOST"}`)
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	req := httptest.NewRequest(http.MethodPost, "/hooks/eventsync", bytes.NewReader(body))
	webhook.SetHeaders(req.Header, [][]byte{key}, "dlv_2mWcWqN3", time.Now(), body)
	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// A forged delivery: same headers, different body.
	forged := httptest.NewRequest(http.MethodPost, "/hooks/eventsync", bytes.NewReader([]byte(`{"id":"forged"}`)))
	forged.Header = req.Header.Clone()
	rec = httptest.NewRecorder()
	receiver.ServeHTTP(rec, forged)
	fmt.Println(rec.Code)

	// Output:
	// verified delivery dlv_2mWcWqN3
	// 204
	// 401
}
