package app_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

// TestEventServerCompatibility drives the replaced event server's API as
// its old clients do, on an all-in-one without --claim-on-first-write: a
// stream owned by its first writer, consumer offsets with explicit ACK,
// answers byte for byte (cmd/eventsync/internal/oldclients has every
// answer of every route).
func TestEventServerCompatibility(t *testing.T) {
	base := apptest.Start(t, nil, "--auth", "producers", "--admin-token", "admin-secret", "--batch-wait", "20ms").Base
	first := createProducer(t, base, `{"name":"first","tags":[">"],"scopes":{"read":[">"]}}`)
	second := createProducer(t, base, `{"name":"second","tags":[">"]}`)

	do := func(method, path, producer, password, consumer, contentType, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if producer != "" {
			req.Header.Set("X-Producer-ID", producer)
			req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(producer+":"+password)))
		}
		if consumer != "" {
			req.Header.Set("X-Consumer-ID", consumer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusUnauthorized && ct != "application/json; charset=utf-8" {
			t.Errorf("%s %s: Content-Type = %q; want application/json; charset=utf-8", method, path, ct)
		}
		return resp.StatusCode, string(b)
	}
	const ev = `{"event":{"name":"CREATED","version":2},"system":{"host":"a1"},"trigger":{"user":"u"},"payload":{"order":42}}`

	status, body := do("POST", "/api/v1/streams/ORDERS/events", first.id, first.password, "", "application/json", ev)
	var id string
	if err := json.Unmarshal([]byte(body), &id); status != 200 || err != nil || id == "" {
		t.Fatalf("first writer = %d %s; want 200 with the new id as a JSON string", status, body)
	}
	if status, body := do("POST", "/api/v1/streams/ORDERS/events", second.id, second.password, "", "application/json", ev); status != 423 || body != `"Locked - Second writers not allowed"` {
		t.Errorf("second writer = %d %s; want 423 \"Locked - Second writers not allowed\"", status, body)
	}
	if status, _ := do("POST", "/api/v1/streams/ORDERS/events", "", "", "", "application/json", ev); status != 401 {
		t.Errorf("no credentials = %d; want 401", status)
	}
	if status, body := do("POST", "/api/v1/streams/ORDERS/events", first.id, first.password, "", "application/json", `{"event":{}}`); status != 400 || body != `"Bad Request - event.name is required"` {
		t.Errorf("no event name = %d %s; want 400 \"Bad Request - event.name is required\"", status, body)
	}

	// A consumer reads the event until it acknowledges it.
	const readPath = "/api/v1/streams/ORDERS/events?eventName=CREATED&limit=10"
	read := func() string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			status, body := do("GET", readPath, first.id, first.password, "c1", "", "")
			if status == 404 {
				continue // not stored yet
			}
			if status != 200 {
				t.Fatalf("read = %d %s", status, body)
			}
			return body
		}
		t.Fatal("stream ORDERS never appeared")
		return ""
	}
	want := `[{"eventId":"` + id + `","event":{"name":"CREATED","version":2,"id":"` + id + `"},"system":{"host":"a1"},"trigger":{"user":"u"},"payload":{"order":42}}]`
	if got := read(); got != want {
		t.Fatalf("read = %s; want %s", got, want)
	}
	if again := read(); again != want {
		t.Errorf("unacknowledged read again = %s; want the same event", again)
	}
	form := url.Values{"action": {"ACK"}}.Encode()
	if status, _ := do("POST", "/api/v1/streams/ORDERS/events/"+id, first.id, "wrong", "c1", "application/x-www-form-urlencoded", form); status != 401 {
		t.Errorf("ACK with a wrong password = %d; want 401", status)
	}
	if status, _ := do("GET", readPath, first.id, "wrong", "c1", "", ""); status != 401 {
		t.Errorf("read with a wrong password = %d; want 401", status)
	}
	if status, body := do("POST", "/api/v1/streams/ORDERS/events/"+id, first.id, first.password, "c1", "application/x-www-form-urlencoded", form); status != 200 || body != `"OK"` {
		t.Fatalf("ACK = %d %s; want 200 \"OK\"", status, body)
	}
	if after := read(); after != `[]` {
		t.Errorf("read after ACK = %s; want []", after)
	}
	if status, body := do("GET", "/api/v1/streams/NOPE/events?eventName=CREATED&limit=10", first.id, first.password, "c1", "", ""); status != 404 || body != `"Not Found"` {
		t.Errorf("unknown stream = %d %s; want 404 \"Not Found\"", status, body)
	}
	if status, body := do("POST", "/api/v1/streams/ORDERS/events/no-such-event", first.id, first.password, "c1", "application/x-www-form-urlencoded", form); status != 404 || body != `"Not Found"` {
		t.Errorf("ACK of an unknown event = %d %s; want 404 \"Not Found\"", status, body)
	}
}
