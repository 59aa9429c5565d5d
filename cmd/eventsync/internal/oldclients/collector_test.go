package oldclients

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The session collector's reads (docs/coming-from/session-collector.md):
// an application signing The Eye's tokens sends a sequence of events, and
// the collector's clients read them back by session, by category and by
// time range, as their senders wrote them.

// collectorSent is one event of the sequence: the body sent, and the
// event the collector's reads answer with.
type collectorSent struct {
	body string
	want map[string]any // session_id, category, name, data, timestamp
}

// collectorSequence is what the application sends: two sessions,
// categories with spaces, a dotted one, names that are not tokens, data
// that is not an object, and one event without a name.
func collectorSequence() []collectorSent {
	at := func(sec int) string { return time.Date(2024, 5, 6, 7, 0, sec, 0, time.UTC).Format(time.RFC3339) }
	ev := func(sid, category, name string, data any, sec int, tsAs string) collectorSent {
		m := map[string]any{"session_id": sid, "category": category, "timestamp": tsAs}
		if name != "" {
			m["name"] = name
		}
		if data != nil {
			m["data"] = data
		}
		body, _ := json.Marshal(m)
		want := map[string]any{"session_id": sid, "category": category, "name": name, "timestamp": at(sec), "data": data}
		if name == "" {
			want["name"] = "EVENT"
		}
		if data == nil {
			want["data"] = map[string]any{}
		}
		return collectorSent{string(body), want}
	}
	return []collectorSent{
		ev("s-alpha", "page interaction", "page view", map[string]any{"path": "/"}, 1, at(1)),
		ev("s-alpha", "page interaction", "button click", map[string]any{"button": "buy", "x": 12.5}, 2, "2024-05-06 07:00:02"),
		ev("s-beta", "page interaction", "page view", map[string]any{"path": "/cart"}, 3, "2024-05-06T09:00:03+02:00"),
		ev("s-alpha", "checkout", "PAID", map[string]any{"amount": 42, "currency": "EUR"}, 4, at(4)),
		ev("s-beta", "errors.js", "TypeError: x is undefined", []any{"stack", 1.0}, 5, at(5)),
		ev("s-alpha", "page interaction", "", "just a string", 6, at(6)),
		ev("s-beta", "checkout", "PAID", map[string]any{"_name": "the sender's own _name"}, 7, at(7)),
		ev("s-alpha", "page_20interaction", "look-alike", nil, 8, at(8)), // the token of "page interaction", sent as a category
	}
}

// collectorEvents decodes the events of a collector answer as generic
// JSON, to compare with what was sent.
func collectorEvents(t *testing.T, what string, r eyeReply) ([]map[string]any, map[string]any) {
	t.Helper()
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s = %d %q %s; want 200 JSON", what, r.status, r.header.Get("Content-Type"), r.body)
	}
	var page map[string]any
	if err := json.Unmarshal([]byte(r.body), &page); err != nil {
		t.Fatalf("%s: %v: %s", what, err, r.body)
	}
	list, _ := page["events"].([]any)
	out := make([]map[string]any, len(list))
	for i, e := range list {
		out[i], _ = e.(map[string]any)
	}
	return out, page
}

// collectorWant returns the wanted events of the sequence that keep holds
// for, in timestamp order (the order sent), as generic JSON.
func collectorWant(seq []collectorSent, keep func(map[string]any) bool) []map[string]any {
	out := []map[string]any{}
	for _, s := range seq {
		if keep(s.want) {
			b, _ := json.Marshal(s.want)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			out = append(out, m)
		}
	}
	return out
}

// collectorGet reads a collector route as reader, with a JSON body when
// body is not empty.
func collectorGet(t *testing.T, tg eyeTarget, reader, path, body string) eyeReply {
	t.Helper()
	return eyeDo(t, http.MethodGet, tg.query+path, body, "Authorization", reader)
}

func collectorSuite(t *testing.T, tg eyeTarget) {
	app := eyeImport(t, tg, "eye-shop", "shop.eye-client", "the shop's secret_key, 32 bytes!", `,"tags":[">"]`)
	reader := eyeReader(t, tg, "collector-reader", ">")
	seq := collectorSequence()
	for i, s := range seq {
		eyeAccepted(t, fmt.Sprintf("POST /events/ event %d", i), app.post(t, tg, s.body))
	}
	// Each one again, as a retrying client would: stored once.
	for i, s := range seq {
		eyeAccepted(t, fmt.Sprintf("POST /events/ event %d again", i), app.post(t, tg, s.body))
	}
	// Every event is stored once the ones sent after them are.
	eyeStored(t, tg, app, "s-collector")

	t.Run("by session", func(t *testing.T) {
		for _, sid := range []string{"s-alpha", "s-beta"} {
			got, page := collectorEvents(t, "GET /sessions/"+sid+"/events", collectorGet(t, tg, reader, "/sessions/"+sid+"/events", ""))
			want := collectorWant(seq, func(e map[string]any) bool { return e["session_id"] == sid })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET /sessions/%s/events mismatch (-want +got):\n%s", sid, diff)
			}
			if page["session_id"] != sid {
				t.Errorf("GET /sessions/%s/events session_id = %v", sid, page["session_id"])
			}
		}
		got, _ := collectorEvents(t, "GET /sessions/s-alpha/events?limit=2", collectorGet(t, tg, reader, "/sessions/s-alpha/events?limit=2", ""))
		if len(got) != 2 || got[0]["name"] != "page view" || got[1]["name"] != "button click" {
			t.Errorf("GET /sessions/s-alpha/events?limit=2 = %v; want its first two events", got)
		}
		got, _ = collectorEvents(t, "GET /sessions/nobody/events", collectorGet(t, tg, reader, "/sessions/nobody/events", ""))
		if len(got) != 0 {
			t.Errorf("GET /sessions/nobody/events = %v; want none", got)
		}
	})

	t.Run("by category", func(t *testing.T) {
		for _, category := range []string{"page interaction", "checkout", "errors.js", "page_20interaction"} {
			path := "/categories/" + url.PathEscape(category) + "/events"
			got, page := collectorEvents(t, "GET "+path, collectorGet(t, tg, reader, path, ""))
			want := collectorWant(seq, func(e map[string]any) bool { return e["category"] == category })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET %s mismatch (-want +got):\n%s", path, diff)
			}
			if page["category"] != category {
				t.Errorf("GET %s category = %v; want %q", path, page["category"], category)
			}
		}
		// With a time range, as parameters or in a JSON body.
		path := "/categories/page%20interaction/events"
		want := collectorWant(seq, func(e map[string]any) bool {
			return e["category"] == "page interaction" && e["timestamp"].(string) >= "2024-05-06T07:00:02Z" && e["timestamp"].(string) <= "2024-05-06T07:00:03Z"
		})
		got, _ := collectorEvents(t, "GET "+path+" with parameters",
			collectorGet(t, tg, reader, path+"?start_time=2024-05-06T07:00:02Z&end_time=2024-05-06T07:00:03Z", ""))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s with a time range in parameters mismatch (-want +got):\n%s", path, diff)
		}
		got, _ = collectorEvents(t, "GET "+path+" with a body",
			collectorGet(t, tg, reader, path, `{"start_time":"2024-05-06T07:00:02Z","end_time":"2024-05-06T07:00:03Z"}`))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s with a time range in a body mismatch (-want +got):\n%s", path, diff)
		}
	})

	t.Run("by time range", func(t *testing.T) {
		in := func(from, to string) func(map[string]any) bool {
			return func(e map[string]any) bool {
				ts := e["timestamp"].(string)
				return ts >= from && ts <= to
			}
		}
		want := collectorWant(seq, in("2024-05-06T07:00:02Z", "2024-05-06T07:00:05Z"))
		for _, c := range []struct{ name, query, body string }{
			{"a JSON body", "", `{"start_time":"2024-05-06T07:00:02Z","end_time":"2024-05-06T07:00:05Z"}`},
			{"parameters", "?start_time=2024-05-06T07:00:02Z&end_time=2024-05-06T07:00:05Z", ""},
			{"both, agreeing", "?start_time=2024-05-06T09:00:02%2B02:00", `{"start_time":"2024-05-06 07:00:02","end_time":"2024-05-06T07:00:05Z"}`},
		} {
			got, page := collectorEvents(t, "GET /events/range with "+c.name, collectorGet(t, tg, reader, "/events/range"+c.query, c.body))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET /events/range with %s mismatch (-want +got):\n%s", c.name, diff)
			}
			if page["start_time"] != "2024-05-06T07:00:02Z" || page["end_time"] != "2024-05-06T07:00:05Z" {
				t.Errorf("GET /events/range with %s: start_time %v, end_time %v; want the range asked for", c.name, page["start_time"], page["end_time"])
			}
		}
		// A range of one instant holds the events at that instant: both
		// ends are included.
		got, _ := collectorEvents(t, "GET /events/range of one instant",
			collectorGet(t, tg, reader, "/events/range", `{"start_time":"2024-05-06T07:00:04Z","end_time":"2024-05-06T07:00:04Z"}`))
		if diff := cmp.Diff(collectorWant(seq, in("2024-05-06T07:00:04Z", "2024-05-06T07:00:04Z")), got); diff != "" {
			t.Errorf("GET /events/range of one instant mismatch (-want +got):\n%s", diff)
		}
		// Pages: limit, and since = next_since until an answer is short.
		var all []map[string]any
		since := "0"
		for range 10 {
			got, page := collectorEvents(t, "GET /events/range page", collectorGet(t, tg, reader, "/events/range?limit=3&since="+since,
				`{"start_time":"2024-05-06T07:00:00Z","end_time":"2024-05-06T07:00:59Z"}`))
			all = append(all, got...)
			n, _ := page["next_since"].(float64)
			since = strconv.FormatUint(uint64(n), 10)
			if len(got) < 3 {
				break
			}
		}
		if diff := cmp.Diff(collectorWant(seq, in("2024-05-06T07:00:00Z", "2024-05-06T07:00:59Z")), all); diff != "" {
			t.Errorf("GET /events/range in pages of 3 mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, path, body string
			status           int
			pointer          string
		}{
			{"range without times", "/events/range", "", http.StatusBadRequest, "start_time"},
			{"range without end", "/events/range?start_time=2024-05-06T07:00:00Z", "", http.StatusBadRequest, "end_time"},
			{"body and parameter differ", "/events/range?start_time=2024-05-06T07:00:01Z", `{"start_time":"2024-05-06T07:00:00Z","end_time":"2024-05-06T07:00:05Z"}`, http.StatusBadRequest, "start_time"},
			{"end before start", "/events/range", `{"start_time":"2024-05-06T07:00:05Z","end_time":"2024-05-06T07:00:00Z"}`, http.StatusBadRequest, "end_time"},
			{"bad time", "/events/range", `{"start_time":"yesterday","end_time":"2024-05-06T07:00:00Z"}`, http.StatusBadRequest, "start_time"},
			{"unknown member", "/events/range", `{"start_time":"2024-05-06T07:00:00Z","end_time":"2024-05-06T07:00:05Z","stop":1}`, http.StatusUnprocessableEntity, "/stop"},
			{"not JSON", "/events/range", `{"start_time":`, http.StatusBadRequest, ""},
			{"bad limit", "/sessions/s-alpha/events?limit=0", "", http.StatusBadRequest, "limit"},
			{"since on a session", "/sessions/s-alpha/events?since=3", "", http.StatusBadRequest, "since"},
			{"bad since", "/categories/checkout/events?since=-1", "", http.StatusBadRequest, "since"},
		}
		for _, tt := range tests {
			eyeProblem(t, "GET "+tt.path+" "+tt.name, collectorGet(t, tg, reader, tt.path, tt.body), tt.status, tt.pointer)
		}
	})

	t.Run("read scope", func(t *testing.T) {
		for _, path := range []string{"/sessions/s-alpha/events", "/categories/checkout/events", "/events/range?start_time=2024-05-06T07:00:00Z&end_time=2024-05-06T07:01:00Z"} {
			eyeProblem(t, "GET "+path+" without credentials", eyeDo(t, http.MethodGet, tg.query+path, ""), http.StatusUnauthorized, "")
			// The Eye's writer has no read scope.
			eyeProblem(t, "GET "+path+" as a writer", eyeDo(t, http.MethodGet, tg.query+path, "", "Authorization", app.token(t)), http.StatusForbidden, "")
		}
		// A reader of checkout.* sees checkout's events only.
		narrow := eyeReader(t, tg, "checkout-reader", "checkout.*")
		got, _ := collectorEvents(t, "GET /sessions/s-alpha/events as a checkout reader", collectorGet(t, tg, narrow, "/sessions/s-alpha/events", ""))
		want := collectorWant(seq, func(e map[string]any) bool { return e["session_id"] == "s-alpha" && e["category"] == "checkout" })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET /sessions/s-alpha/events as a checkout reader mismatch (-want +got):\n%s", diff)
		}
		got, _ = collectorEvents(t, "GET /events/range as a checkout reader", collectorGet(t, tg, narrow, "/events/range",
			`{"start_time":"2024-05-06T07:00:00Z","end_time":"2024-05-06T07:00:59Z"}`))
		want = collectorWant(seq, func(e map[string]any) bool { return e["category"] == "checkout" })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET /events/range as a checkout reader mismatch (-want +got):\n%s", diff)
		}
		eyeProblem(t, "GET /categories/page interaction/events as a checkout reader",
			collectorGet(t, tg, narrow, "/categories/page%20interaction/events", ""), http.StatusForbidden, "")
	})
}

func TestSessionCollectorAllInOne(t *testing.T) {
	collectorSuite(t, eyeAllInOne(t))
}

// TestSessionCollectorServices: the same on ingest, store, query and
// notifier run separately against one NATS server and ClickHouse.
func TestSessionCollectorServices(t *testing.T) {
	collectorSuite(t, eyeServices(t))
}
