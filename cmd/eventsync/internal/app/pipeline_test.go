package app_test

// End-to-end tests of the all-in-one: each starts it through apptest, as
// `eventsync run` with flags, and talks to it over HTTP.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/event"
)

// backends are the store choices of the all-in-one: embedded, and
// ClickHouse (skipped locally without a server, a failure under CI).
var backends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"embedded", func(*testing.T) string { return "" }},
	{"clickhouse", func(t *testing.T) string { return chtest.DSN(t) }},
}

// startApp starts the all-in-one on free loopback ports with the test
// settings of apptest.Fast, storing events in ClickHouse at chURL or (when
// empty) in the embedded store; it stops when the test ends.
func startApp(t *testing.T, chURL string) *apptest.Running {
	t.Helper()
	return apptest.Start(t, nil, append([]string{"--clickhouse-url", chURL}, apptest.Fast...)...)
}

func post(t *testing.T, url, contentType, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s = %d %s; want 202", url, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func get[T any](t *testing.T, url string) T {
	t.Helper()
	return getAuth[T](t, url, "")
}

// getAuth is get with an Authorization value (none when empty).
func getAuth[T any](t *testing.T, url, authorization string) T {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s; want 200", url, resp.StatusCode, b)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return out
}

type eventPage struct {
	Events    []event.Event `json:"events"`
	NextSince uint64        `json:"next_since"`
}

// waitFor polls a query until it returns want events.
func waitFor(t *testing.T, url string, want int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := get[eventPage](t, url)
		if len(p.Events) >= want || time.Now().After(deadline) {
			if len(p.Events) != want {
				t.Fatalf("GET %s: %d events; want %d", url, len(p.Events), want)
			}
			return p.Events
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRoundTripAndRestart(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			srv := startApp(t, b.url(t))
			base := srv.Base

			post(t, base+"/v1/events", "application/json",
				`{"id":"e1","tag":"DATABASE.CONNECTION_LOST","message":"db down","session_id":"s1","timestamp":"2026-11-23T10:00:00.000002Z","severity":"error","data":{"host":"db1"}}`)
			post(t, base+"/v1/events", "application/json",
				`[{"tag":"AUTH.INVALID_TOKEN","message":"bad token","session_id":"s1","timestamp":"2026-11-23T10:00:00.000001Z"},{"tag":"TEST.NETWORK.TIMEOUT","message":"slow"}]`)
			post(t, base+"/v1/events", "application/x-ndjson", "{\"tag\":\"DATABASE.SLOW_QUERY\",\"message\":\"q\"}\n{\"tag\":\"DATABASE.CONNECTION_LOST\",\"message\":\"again\"}\n")
			// The log-sync service's emitter: its body, its answer.
			resp, err := http.Post(base+"/internal/log", "application/json", strings.NewReader(`{"category":"LEGACY","code":"LOG","message":"old client"}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "{\"ok\":true}\n" {
				t.Fatalf("POST /internal/log = %d %s; want 200 {\"ok\":true}", resp.StatusCode, b)
			}

			evs := waitFor(t, base+"/v1/events?since=0", 6)
			for i, e := range evs {
				if e.Seq != uint64(i+1) {
					t.Errorf("events[%d].seq = %d; want %d", i, e.Seq, i+1)
				}
			}
			if e := evs[0]; e.ID != "e1" || e.Subject != "events.DATABASE.CONNECTION_LOST" || e.Severity != event.Error ||
				string(e.Data) != `{"host":"db1"}` || !e.Timestamp.Equal(time.Date(2026, 11, 23, 10, 0, 0, 2000, time.UTC)) {
				t.Errorf("first event read back as %+v", e)
			}
			waitFor(t, base+"/v1/events?tag=DATABASE.*", 3)
			waitFor(t, base+"/v1/events?tag=*.CONNECTION_LOST", 2)
			waitFor(t, base+"/v1/events?tag=TEST.>", 1)
			// The log-sync service's dashboard: an array after since.
			type logEntry struct {
				ID       uint64 `json:"id"`
				Category string `json:"category"`
				Message  string `json:"message"`
			}
			logs := get[[]logEntry](t, base+"/api/logs?since=4")
			if want := []logEntry{{5, "DATABASE.CONNECTION_LOST", "again"}, {6, "LEGACY.LOG", "old client"}}; !slices.Equal(logs, want) {
				t.Errorf("GET /api/logs?since=4 = %+v; want %+v", logs, want)
			}

			sess := get[struct{ Events []event.Event }](t, base+"/v1/sessions/s1/events")
			if len(sess.Events) != 2 || sess.Events[0].Tag != "AUTH.INVALID_TOKEN" {
				t.Errorf("session s1 = %+v; want AUTH.INVALID_TOKEN (earlier timestamp) first", sess.Events)
			}
			if e := get[event.Event](t, base+"/v1/events/e1"); e.Seq != 1 {
				t.Errorf("GET /v1/events/e1 seq = %d; want 1", e.Seq)
			}

			srv.Restart()
			base = srv.Base
			waitFor(t, base+"/v1/events?since=0", 6)
			post(t, base+"/v1/events", "application/json", `{"tag":"AFTER.RESTART","message":"m"}`)
			if evs := waitFor(t, base+"/v1/events?since=6", 1); evs[0].Seq != 7 {
				t.Errorf("first event after restart has seq %d; want 7", evs[0].Seq)
			}
		})
	}
}

// A poller following next_since while producers write never skips and
// never repeats an event.
func TestCursorUnderConcurrentIngest(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			base := startApp(t, b.url(t)).Base
			const producers, requests, batch = 4, 25, 40
			accepted := make(chan uint64, producers*requests*batch)
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					var sb strings.Builder
					for r := range requests {
						sb.Reset()
						sb.WriteString("[")
						for i := range batch {
							if i > 0 {
								sb.WriteString(",")
							}
							fmt.Fprintf(&sb, `{"tag":"LOAD.P%d","message":"r%d i%d"}`, p, r, i)
						}
						sb.WriteString("]")
						out := post(t, base+"/v1/events", "application/json", sb.String())
						for _, e := range out["events"].([]any) {
							accepted <- uint64(e.(map[string]any)["seq"].(float64))
						}
					}
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(accepted); close(done) }()

			total := producers * requests * batch
			seen := make(map[uint64]bool, total)
			var since, last uint64
			deadline := time.Now().Add(60 * time.Second)
			for len(seen) < total && time.Now().Before(deadline) {
				p := get[eventPage](t, fmt.Sprintf("%s/v1/events?since=%d&limit=137", base, since))
				for _, e := range p.Events {
					if e.Seq <= last || seen[e.Seq] {
						t.Fatalf("seq %d after %d: the cursor repeated or went back", e.Seq, last)
					}
					seen[e.Seq], last = true, e.Seq
				}
				if p.NextSince < since {
					t.Fatalf("next_since went back from %d to %d", since, p.NextSince)
				}
				since = p.NextSince
			}
			<-done
			n := 0
			for seq := range accepted {
				n++
				if !seen[seq] {
					t.Errorf("accepted seq %d never seen by the poller", seq)
				}
			}
			if n != total || len(seen) != total {
				t.Errorf("accepted %d, poller saw %d; want %d each", n, len(seen), total)
			}
		})
	}
}
