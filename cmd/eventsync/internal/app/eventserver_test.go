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
)

// TestEventServerCompatibility drives the replaced event server's API:
// a stream owned by its first writer, consumer offsets with explicit ACK.
func TestEventServerCompatibility(t *testing.T) {
	base := startSecured(t)
	first := createProducer(t, base, `{"name":"first","tags":[">"],"scopes":{"read":[">"]}}`)
	second := createProducer(t, base, `{"name":"second","tags":[">"]}`)

	do := func(method, path, producer, password, consumer, contentType, body string) (int, map[string]any) {
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
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	const ev = `{"event":{"name":"CREATED","version":2},"system":{"host":"a1"},"trigger":{"user":"u"},"payload":{"order":42}}`

	status, out := do("POST", "/api/v1/streams/ORDERS/events", first.id, first.password, "", "application/json", ev)
	if status != 200 || out["id"] == nil {
		t.Fatalf("first writer = %d %v; want 200 with the new id", status, out)
	}
	id := out["id"].(string)
	if status, out := do("POST", "/api/v1/streams/ORDERS/events", second.id, second.password, "", "application/json", ev); status != 423 {
		t.Errorf("second writer = %d %v; want 423", status, out)
	}
	if status, _ := do("POST", "/api/v1/streams/ORDERS/events", "", "", "", "application/json", ev); status != 401 {
		t.Errorf("no credentials = %d; want 401", status)
	}
	if status, out := do("POST", "/api/v1/streams/ORDERS/events", first.id, first.password, "", "application/json", `{"event":{}}`); status != 400 || !strings.HasPrefix(out["detail"].(string), "Bad Request - ") {
		t.Errorf("no event name = %d %v; want 400 Bad Request - …", status, out)
	}

	// A consumer reads the event until it acknowledges it.
	read := func() []any {
		t.Helper()
		var events []any
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			status, out := do("GET", "/api/v1/streams/ORDERS/events?eventName=CREATED&limit=10", first.id, first.password, "c1", "", "")
			if status == 404 {
				continue // not stored yet
			}
			if status != 200 {
				t.Fatalf("read = %d %v", status, out)
			}
			events, _ = out["events"].([]any)
			return events
		}
		t.Fatal("stream ORDERS never appeared")
		return nil
	}
	got := read()
	if len(got) != 1 {
		t.Fatalf("read = %v; want the one event", got)
	}
	e := got[0].(map[string]any)
	if e["id"] != id || e["event"].(map[string]any)["name"] != "CREATED" || e["payload"].(map[string]any)["order"] != float64(42) || e["system"] == nil {
		t.Errorf("event = %v; want the event server's shape with payload, system and name", e)
	}
	if again := read(); len(again) != 1 {
		t.Errorf("unacknowledged read again = %v; want the same event", again)
	}
	form := url.Values{"action": {"ACK"}}.Encode()
	if status, out := do("POST", "/api/v1/streams/ORDERS/events/"+id, first.id, first.password, "c1", "application/x-www-form-urlencoded", form); status != 200 {
		t.Fatalf("ACK = %d %v", status, out)
	}
	if after := read(); len(after) != 0 {
		t.Errorf("read after ACK = %v; want nothing", after)
	}
	if status, _ := do("GET", "/api/v1/streams/NOPE/events", first.id, first.password, "c1", "", ""); status != 404 {
		t.Errorf("unknown stream = %d; want 404", status)
	}
	if status, _ := do("POST", "/api/v1/streams/ORDERS/events/no-such-event", first.id, first.password, "c1", "application/x-www-form-urlencoded", form); status != 404 {
		t.Errorf("ACK of an unknown event = %d; want 404", status)
	}
}
