package query_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/services/query"
)

var equateEmpty = cmpopts.EquateEmpty()

// fixtures are six events over five minutes, two sessions, three sources
// and every kind of tag the patterns distinguish (a two-token category).
func fixtures() []event.Event {
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	return []event.Event{
		mkEvent(1, "DATABASE.CONNECTION_LOST", "s1", "api", event.Info, m(0)),
		mkEvent(2, "DATABASE.QUERY_SLOW", "s1", "api", event.Warning, m(1)),
		mkEvent(3, "NETWORK.CONNECTION_LOST", "s2", "worker", event.Error, m(2)),
		mkEvent(4, "TEST.UNIT.PASSED", "s2", "ci", event.Debug, m(3)),
		mkEvent(5, "TEST.FAILED", "", "ci", event.Critical, m(4)),
		mkEvent(6, "DATABASE.CONNECTION_LOST", "s1", "worker", event.Notice, m(5)),
	}
}

func TestBadParams(t *testing.T) {
	tests := []struct {
		path    string // endpoint
		name    string // parameter
		value   string
		pointer string // want errors[0].pointer; name when empty
		extra   string // other parameters
	}{
		{path: "/v1/events", name: "since", value: "x"},
		{path: "/v1/events", name: "since", value: "-1"},
		{path: "/v1/events", name: "since", value: "1.5"},
		{path: "/v1/events", name: "since", value: "18446744073709551616"},
		{path: "/v1/events", name: "limit", value: "0"},
		{path: "/v1/events", name: "limit", value: "10001"},
		{path: "/v1/events", name: "limit", value: "x"},
		{path: "/v1/events", name: "limit", value: "-1"},
		{path: "/v1/events", name: "limit", value: "1e3"},
		{path: "/v1/events", name: "category", value: "DATA BASE"},
		{path: "/v1/events", name: "category", value: "A..B"},
		{path: "/v1/events", name: "category", value: "DATABASE.*"},
		{path: "/v1/events", name: "category", value: strings.Repeat("A", 65)},
		{path: "/v1/events", name: "code", value: "A.B"},
		{path: "/v1/events", name: "code", value: "*"},
		{path: "/v1/events", name: "code", value: "LOST!"},
		{path: "/v1/events", name: "tag", value: "A..B"},
		{path: "/v1/events", name: "tag", value: ">.A"},
		{path: "/v1/events", name: "tag", value: "A.>.B"},
		{path: "/v1/events", name: "tag", value: "A B.C"},
		{path: "/v1/events", name: "tag", value: "DATABASE."},
		{path: "/v1/events", name: "severity", value: "loud"},
		{path: "/v1/events", name: "severity", value: "3"},
		{path: "/v1/events", name: "from", value: "yesterday"},
		{path: "/v1/events", name: "from", value: "2025-13-01T00:00:00Z"},
		{path: "/v1/events", name: "from", value: "2025-03-01T10:00:00,5Z"},
		{path: "/v1/events", name: "to", value: "2025-03-01"},
		{path: "/v1/events", name: "to", value: "1740823200"},
		{path: "/v1/events", name: "from", value: "2025-03-01T10:00:00Z", extra: "to=2025-03-01T10:00:00Z"},
		{path: "/v1/events", name: "from", value: "2025-03-01T11:00:00Z", extra: "to=2025-03-01T10:00:00Z"},
		{path: "/v1/events", name: "order", value: "up"},
		{path: "/v1/events", name: "order", value: "DESC"},

		{path: "/api/logs", name: "since", value: "x"},
		{path: "/api/logs", name: "since", value: "-5"},
		{path: "/api/logs", name: "limit", value: "0"},
		{path: "/api/logs", name: "limit", value: "10001"},

		{path: "/v1/sessions/s1/events", name: "since", value: "3"},
		{path: "/v1/sessions/s1/events", name: "limit", value: "0"},
		{path: "/v1/sessions/s1/events", name: "limit", value: "10001"},
		{path: "/v1/sessions/s1/events", name: "tag", value: "A..B"},
		{path: "/v1/sessions/s1/events", name: "severity", value: "loud"},
		{path: "/v1/sessions/s1/events", name: "from", value: "2025-03-01T10:00:00Z", extra: "to=2025-03-01T09:00:00Z"},

		{path: "/v1/subscriptions/sub-a/deliveries", name: "since", value: "x"},
		{path: "/v1/subscriptions/sub-a/deliveries", name: "since", value: "-1"},
		{path: "/v1/subscriptions/sub-a/deliveries", name: "limit", value: "0"},
		{path: "/v1/subscriptions/sub-a/deliveries", name: "limit", value: "10001"},
		{path: "/v1/subscriptions/sub-a/deliveries", name: "status", value: "ok"},
		{path: "/v1/subscriptions/sub-a/deliveries", name: "status", value: "FAILED"},
		{path: "/v1/subscriptions/sub-a/deliveries", name: "status", value: "retrying"},
		{path: "/v1/events/ev-1/deliveries", name: "since", value: "1.5"},
		{path: "/v1/events/ev-1/deliveries", name: "limit", value: "x"},
		{path: "/v1/events/ev-1/deliveries", name: "status", value: "dead_lettered"},

		{path: "/v1/stats", name: "bucket", value: "week"},
		{path: "/v1/stats", name: "bucket", value: "Hour"},
		{path: "/v1/stats", name: "from", value: "yesterday"},
		{path: "/v1/stats", name: "to", value: "now"},
		{path: "/v1/stats", name: "tag", value: "A.>.B", extra: "from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z"},
		{path: "/v1/stats", name: "from", value: "2025-03-02T00:00:00Z", extra: "to=2025-03-02T00:00:00Z"},
		{path: "/v1/stats", name: "from", value: "2025-03-03T00:00:00Z", extra: "to=2025-03-02T00:00:00Z"},
		// 10,001 minutes, then 10,001 hours: too many buckets.
		{path: "/v1/stats", name: "bucket", value: "minute", extra: "from=2025-03-01T00:00:00Z&to=2025-03-07T22:41:00Z"},
		{path: "/v1/stats", name: "bucket", value: "hour", extra: "from=2025-01-01T00:00:00Z&to=2026-02-21T17:00:00Z"},
	}
	forEachBackend(t, func(t *testing.T, st store) {
		s := seed(t, st, fixtures()...)
		for _, tt := range tests {
			q := url.Values{tt.name: {tt.value}}.Encode()
			if tt.extra != "" {
				q += "&" + tt.extra
			}
			path := tt.path + "?" + q
			t.Run(path, func(t *testing.T) {
				s := *s
				s.t = t
				p, _, body := getProblem(&s, path, http.StatusBadRequest)
				if len(p.Errors) == 0 || p.Errors[0].Pointer != tt.name {
					t.Errorf("GET %s = %s; want errors[0].pointer %q", path, body, tt.name)
				}
				if !strings.HasPrefix(p.Detail, tt.name+" ") {
					t.Errorf("GET %s: detail = %q; want it to start with %q", path, p.Detail, tt.name+" ")
				}
			})
		}
	})
}

func TestLimitBounds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		s := seed(t, st, numbered(1, 10_050)...)
		tests := []struct {
			query    string
			wantLen  int
			wantNext uint64
		}{
			{"", query.DefaultLimit, query.DefaultLimit},
			{"limit=1", 1, 1},
			{"limit=10000", query.MaxLimit, query.MaxLimit},
			{"limit=10000&since=9000", 1050, 10_050}, // fewer than asked: the watermark
		}
		for _, tt := range tests {
			path := "/v1/events?" + tt.query
			got, next := getPage(s, path)
			if len(got) != tt.wantLen || next != tt.wantNext {
				t.Errorf("GET %s = %d events, next_since %d; want %d, %d", path, len(got), next, tt.wantLen, tt.wantNext)
			}
		}
	})
}

func TestPaging(t *testing.T) {
	const n = 2500
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	// seed inserts in shuffled batches: the cursor must not depend on
	// insertion order.
	seed := func(t *testing.T, st store) *server {
		events := numbered(1, n)
		rand.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		for i := 0; i < n; i += 500 {
			insert(t, st, events[i:i+500]...)
		}
		return serve(t, st, n)
	}
	t.Run("v1/events", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, st store) {
			s := seed(t, st)
			var (
				got   []uint64
				since uint64
				nexts []uint64
			)
			for range 10 {
				page, next := getPage(s, fmt.Sprintf("/v1/events?since=%d&limit=1000", since))
				got = append(got, page...)
				nexts = append(nexts, next)
				if len(page) == 0 {
					break
				}
				since = next
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("seqs read by following next_since (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]uint64{1000, 2000, 2500, 2500}, nexts); diff != "" {
				t.Errorf("next_since of each page (-want +got):\n%s", diff)
			}
		})
	})
	// The log-sync dashboard has no next_since: it asks for what comes
	// after the last id it saw.
	t.Run("api/logs", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, st store) {
			s := seed(t, st)
			var (
				got   []uint64
				since uint64
				sizes []int
			)
			for range 10 {
				page := logIDs(getLogs(s, fmt.Sprintf("since=%d&limit=1000", since)))
				got = append(got, page...)
				sizes = append(sizes, len(page))
				if len(page) == 0 {
					break
				}
				since = page[len(page)-1]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ids read by following the last id (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int{1000, 1000, 500, 0}, sizes); diff != "" {
				t.Errorf("sizes of the pages (-want +got):\n%s", diff)
			}
		})
	})
}

func TestWatermarkCapsResults(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		// 3 is not stored yet: the watermark (2) says everything through 2
		// is, so nothing may be served past it, or a cursor would skip 3.
		insert(t, st, numbered(1, 2)...)
		insert(t, st, numbered(4, 5)...)
		s := serve(t, st, 2)

		check := func(path string, wantSeqs []uint64, wantNext uint64) {
			t.Helper()
			got, next := getPage(s, path)
			if diff := cmp.Diff(wantSeqs, got, equateEmpty); diff != "" || next != wantNext {
				t.Errorf("GET %s = %v, next_since %d; want %v, %d", path, got, next, wantSeqs, wantNext)
			}
		}
		check("/v1/events", []uint64{1, 2}, 2)
		check("/v1/events?order=desc", []uint64{2, 1}, 2)
		checkLogs := func(query string, want []uint64) {
			t.Helper()
			if got := logIDs(getLogs(s, query)); !cmp.Equal(want, got, equateEmpty) {
				t.Errorf("GET /api/logs?%s = %v; want %v", query, got, want)
			}
		}
		checkLogs("", []uint64{1, 2})
		checkLogs("since=2", nil)
		check("/v1/events?since=2", nil, 2)
		check("/v1/events?since=4", nil, 4) // a cursor ahead of the watermark stays put

		insert(t, st, numbered(3, 3)...)
		s.wm.set(5)
		check("/v1/events?since=2", []uint64{3, 4, 5}, 5)
		checkLogs("since=2", []uint64{3, 4, 5})
		check("/v1/events?order=desc", []uint64{5, 4, 3, 2, 1}, 5)

		s.wm.set(0)
		check("/v1/events", nil, 0)
	})
}

func TestNextSinceJumpsToWatermark(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		s := seed(t, st, fixtures()...)
		// Nothing after 6 matches yet, but later events will be > 10.
		s.wm.set(10)
		tests := []struct {
			query    string
			want     []uint64
			wantNext uint64
		}{
			{"category=DATABASE", []uint64{1, 2, 6}, 10},
			{"tag=TEST.>", []uint64{4, 5}, 10},
			{"session_id=nobody", nil, 10},
			{"category=DATABASE&limit=2", []uint64{1, 2}, 2}, // full page: continue after it
			{"category=DATABASE&limit=2&since=2", []uint64{6}, 10},
			{"category=DATABASE&limit=3", []uint64{1, 2, 6}, 6}, // full page, even if it was all
			{"category=DATABASE&limit=3&since=6", nil, 10},
		}
		for _, tt := range tests {
			path := "/v1/events?" + tt.query
			got, next := getPage(s, path)
			if diff := cmp.Diff(tt.want, got, equateEmpty); diff != "" || next != tt.wantNext {
				t.Errorf("GET %s = %v, next_since %d; want %v, %d", path, got, next, tt.want, tt.wantNext)
			}
		}
	})
}

func TestEventsOrderDesc(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		s := seed(t, st, fixtures()...)
		tests := []struct {
			query    string
			want     []uint64
			wantNext uint64
		}{
			{"order=desc", []uint64{6, 5, 4, 3, 2, 1}, 6},
			{"order=desc&limit=2", []uint64{6, 5}, 6},
			{"order=desc&since=3", []uint64{6, 5, 4}, 6},
			{"order=desc&category=DATABASE", []uint64{6, 2, 1}, 6},
			{"order=asc&limit=2", []uint64{1, 2}, 2},
		}
		for _, tt := range tests {
			path := "/v1/events?" + tt.query
			got, next := getPage(s, path)
			if diff := cmp.Diff(tt.want, got, equateEmpty); diff != "" || next != tt.wantNext {
				t.Errorf("GET %s = %v, next_since %d; want %v, %d", path, got, next, tt.want, tt.wantNext)
			}
		}
	})
}

func TestEventsFilters(t *testing.T) {
	tests := []struct {
		query string
		want  []uint64
	}{
		{"", []uint64{1, 2, 3, 4, 5, 6}},
		{"category=DATABASE", []uint64{1, 2, 6}},
		{"category=TEST", []uint64{5}}, // exact: not TEST.UNIT
		{"category=TEST.UNIT", []uint64{4}},
		{"category=database", nil}, // case-sensitive
		{"code=CONNECTION_LOST", []uint64{1, 3, 6}},
		{"category=DATABASE&code=CONNECTION_LOST", []uint64{1, 6}},
		{"tag=DATABASE.*", []uint64{1, 2, 6}},
		{"tag=*.CONNECTION_LOST", []uint64{1, 3, 6}},
		{"tag=TEST.>", []uint64{4, 5}},
		{"tag=TEST.*", []uint64{5}},
		{"tag=*.*", []uint64{1, 2, 3, 5, 6}},
		{"tag=>", []uint64{1, 2, 3, 4, 5, 6}},
		{"tag=TEST.UNIT.PASSED", []uint64{4}},
		{"tag=DATABASE", nil}, // a category alone is not a tag
		{"session_id=s1", []uint64{1, 2, 6}},
		{"session_id=s2", []uint64{3, 4}},
		{"session_id=nobody", nil},
		{"source=ci", []uint64{4, 5}},
		{"source=worker", []uint64{3, 6}},
		{"severity=debug", []uint64{1, 2, 3, 4, 5, 6}},
		{"severity=notice", []uint64{2, 3, 5, 6}},
		{"severity=warning", []uint64{2, 3, 5}},
		{"severity=ERROR", []uint64{3, 5}},
		{"severity=critical", []uint64{5}},
		{"from=2025-03-01T10:01:00Z", []uint64{2, 3, 4, 5, 6}}, // inclusive
		{"to=2025-03-01T10:02:00Z", []uint64{1, 2}},            // exclusive
		{"from=2025-03-01T10:00:30Z&to=2025-03-01T10:03:00Z", []uint64{2, 3}},
		{"from=2025-03-01T12:01:00%2B02:00", []uint64{2, 3, 4, 5, 6}}, // offsets are honoured
		{"from=2025-03-01 10:04:00", []uint64{5, 6}},                  // zoneless is UTC
		{"to=2025-03-01T10:00:00.000001Z", []uint64{1}},
		{"tag=DATABASE.*&severity=notice", []uint64{2, 6}},
		{"session_id=s1&source=worker", []uint64{6}},
		{"category=DATABASE&since=2", []uint64{6}},
		{"category=DATABASE&code=CONNECTION_LOST&tag=*.CONNECTION_LOST&session_id=s1&source=api&severity=info&from=2025-03-01T10:00:00Z&to=2025-03-01T10:01:00Z", []uint64{1}},
	}
	forEachBackend(t, func(t *testing.T, st store) {
		s := seed(t, st, fixtures()...)
		for _, tt := range tests {
			path := "/v1/events?" + strings.ReplaceAll(tt.query, " ", "%20")
			got, next := getPage(s, path)
			if diff := cmp.Diff(tt.want, got, equateEmpty); diff != "" {
				t.Errorf("GET %s = %v; want %v", path, got, tt.want)
			}
			if next != 6 {
				t.Errorf("GET %s: next_since = %d; want 6 (the watermark)", path, next)
			}
		}
	})
}

func TestEventsBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		want := fixtures()
		s := seed(t, st, want...)
		got := getJSON[pageOf](s, "/v1/events")
		if diff := cmp.Diff(want, got.Events); diff != "" {
			t.Errorf("GET /v1/events events (-want +got):\n%s", diff)
		}
	})
}

// TestLogs: GET /api/logs answers the log-sync service's array: ids
// (seqs) after since, ascending, at most limit (default 100), each with
// the category the emitter sent, the message and the time EventSync
// received the event.
func TestLogs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		kept := mkEvent(7, "page_20interaction.EVENT", "", "", event.Info, t0)
		kept.Data = json.RawMessage(`{"_category":"page interaction","x":1}`)
		kept.ReceivedAt = time.Date(2025, 3, 1, 10, 6, 7, 123456000, time.UTC)
		// Another client's _category that does not give the tag is not shown.
		spoof := mkEvent(8, "A.B", "", "", event.Info, t0)
		spoof.Data = json.RawMessage(`{"_category":"SOMETHING.ELSE"}`)
		s := seed(t, st, append(fixtures(), kept, spoof)...)
		tests := []struct {
			query string
			want  []uint64
		}{
			{"", []uint64{1, 2, 3, 4, 5, 6, 7, 8}},
			{"since=0", []uint64{1, 2, 3, 4, 5, 6, 7, 8}},
			{"since=", []uint64{1, 2, 3, 4, 5, 6, 7, 8}},
			{"since=4", []uint64{5, 6, 7, 8}},
			{"since=8", nil},
			{"since=99", nil},
			{"since=2&limit=2", []uint64{3, 4}},
			// The log-sync endpoint knows only since and limit.
			{"order=desc&category=DATABASE&tag=A.*&_=1700000000", []uint64{1, 2, 3, 4, 5, 6, 7, 8}},
		}
		for _, tt := range tests {
			if got := logIDs(getLogs(s, tt.query)); !cmp.Equal(tt.want, got, equateEmpty) {
				t.Errorf("GET /api/logs?%s = %v; want %v", tt.query, got, tt.want)
			}
		}

		golden := []struct{ query, body string }{
			{"since=4&limit=4", `[{"category":"TEST.FAILED","created_at":"2025-03-01T10:04:01.000000Z","id":5,"message":"event 5"},` +
				`{"category":"DATABASE.CONNECTION_LOST","created_at":"2025-03-01T10:05:01.000000Z","id":6,"message":"event 6"},` +
				`{"category":"page interaction","created_at":"2025-03-01T10:06:07.123456Z","id":7,"message":"event 7"},` +
				`{"category":"A.B","created_at":"2025-03-01T10:00:01.000000Z","id":8,"message":"event 8"}]` + "\n"},
			{"since=8", "[]\n"},
		}
		for _, g := range golden {
			path := "/api/logs?" + g.query
			status, h, body := s.get(path)
			if status != http.StatusOK || h.Get("Content-Type") != "application/json" || string(body) != g.body {
				t.Errorf("GET %s = %d %q %s; want 200 application/json %s", path, status, h.Get("Content-Type"), body, g.body)
			}
		}

		for _, since := range []string{"x", "-1", "1.0", "0x10", " 1"} {
			path := "/api/logs?" + url.Values{"since": {since}}.Encode()
			p, _, body := getProblem(s, path, http.StatusBadRequest)
			if p.Detail != "since must be an integer" {
				t.Errorf("GET %s: detail = %q; want %q", path, p.Detail, "since must be an integer")
			}
			if len(p.Errors) != 1 || p.Errors[0].Pointer != "since" {
				t.Errorf("GET %s = %s; want one error with pointer since", path, body)
			}
		}
	})
}

func TestEventByID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		events := fixtures()
		odd := mkEvent(7, "A.B", "", "", event.Info, t0)
		odd.ID = "ids may/hold slashes?&#% and spaces"
		dup := mkEvent(8, "A.B", "", "", event.Info, t0)
		dup.ID = events[2].ID // redelivered under a later seq
		pct := mkEvent(9, "A.B", "", "", event.Info, t0)
		pct.ID = "%41" // must not be unescaped twice (to "A")
		s := seed(t, st, append(events, odd, dup, pct)...)

		tests := []struct {
			id   string
			want event.Event
		}{
			{"ev-1", events[0]},
			{"ev-3", events[2]}, // the lowest seq of a duplicated id
			{odd.ID, odd},
			{pct.ID, pct},
		}
		for _, tt := range tests {
			path := "/v1/events/" + url.PathEscape(tt.id)
			got := getJSON[event.Event](s, path)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", path, diff)
			}
		}

		for _, id := range []string{"nope", "ev-", "a/b", "A"} {
			path := "/v1/events/" + url.PathEscape(id)
			p, _, _ := getProblem(s, path, http.StatusNotFound)
			if !strings.Contains(p.Detail, fmt.Sprintf("%q", id)) {
				t.Errorf("GET %s: detail = %q; want it to name %q", path, p.Detail, id)
			}
		}
	})
}

func TestSessionEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
		// Seq order (arrival) differs from event-time order; 2 and 3 share a
		// timestamp and fall back to seq whatever the insertion order.
		s := seed(t, st,
			mkEvent(1, "APP.STEP", "sess", "web", event.Info, at(30)),
			mkEvent(3, "APP.STEP", "sess", "web", event.Info, at(10)),
			mkEvent(2, "APP.STEP", "sess", "web", event.Error, at(10)),
			mkEvent(4, "APP.START", "sess", "web", event.Info, at(0)),
			mkEvent(5, "APP.START", "other", "web", event.Info, at(5)),
			mkEvent(6, "APP.STEP", "sess/2 x", "web", event.Info, at(5)),
			mkEvent(7, "APP.END", "sess", "web", event.Info, at(20)),
		)
		tests := []struct {
			session string
			query   string
			want    []uint64
		}{
			{"sess", "", []uint64{4, 2, 3, 7, 1}},
			{"sess", "limit=2", []uint64{4, 2}},
			{"sess", "severity=error", []uint64{2}},
			{"sess", "tag=APP.STEP", []uint64{2, 3, 1}},
			{"sess", "from=2025-03-01T10:00:10Z&to=2025-03-01T10:00:30Z", []uint64{2, 3, 7}},
			{"sess", "session_id=other", []uint64{4, 2, 3, 7, 1}}, // the path wins
			{"other", "", []uint64{5}},
			{"sess/2 x", "", []uint64{6}},
			{"nobody", "", nil},
		}
		for _, tt := range tests {
			path := "/v1/sessions/" + url.PathEscape(tt.session) + "/events?" + tt.query
			got := getJSON[struct {
				SessionID *string       `json:"session_id"`
				Events    []event.Event `json:"events"`
			}](s, path)
			if diff := cmp.Diff(tt.want, seqs(got.Events), equateEmpty); diff != "" {
				t.Errorf("GET %s = %v; want %v", path, seqs(got.Events), tt.want)
			}
			if got.Events == nil {
				t.Errorf("GET %s: events = null; want an array", path)
			}
			if got.SessionID == nil || *got.SessionID != tt.session {
				t.Errorf("GET %s: session_id = %v; want %q", path, got.SessionID, tt.session)
			}
		}
	})
}

func TestSessionEventsDefaultLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		events := numbered(1, 1001)
		for i := range events {
			events[i].SessionID = "big"
		}
		s := seed(t, st, events...)
		for _, tt := range []struct {
			query string
			want  int
		}{
			{"", 1000},
			{"limit=10", 10},
			{"limit=10000", 1001},
		} {
			path := "/v1/sessions/big/events?" + tt.query
			got := getJSON[query.SessionPage](s, path)
			if len(got.Events) != tt.want {
				t.Errorf("GET %s = %d events; want %d", path, len(got.Events), tt.want)
			}
		}
	})
}

func TestStats(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		h := func(hours, minutes int) time.Time {
			return t0.Add(time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute)
		}
		s := seed(t, st,
			mkEvent(1, "DATABASE.CONNECTION_LOST", "", "", event.Info, h(0, 0)),
			mkEvent(2, "DATABASE.CONNECTION_LOST", "", "", event.Info, h(0, 59)),
			mkEvent(3, "DATABASE.QUERY_SLOW", "", "", event.Info, h(0, 30)),
			mkEvent(4, "NETWORK.CONNECTION_LOST", "", "", event.Info, h(1, 0)),
			mkEvent(5, "DATABASE.CONNECTION_LOST", "", "", event.Info, h(2, 15)),
			mkEvent(6, "DATABASE.CONNECTION_LOST", "", "", event.Info, h(2, 15)),
			mkEvent(7, "TEST.UNIT.PASSED", "", "", event.Info, h(-1, 0)), // before from
			mkEvent(8, "TEST.UNIT.PASSED", "", "", event.Info, h(3, 0)),  // at to: excluded
		)
		c := func(bucket time.Time, tag string, n uint64) eventstore.Count {
			return eventstore.Count{Bucket: bucket, Tag: tag, Count: n}
		}
		const rng = "from=2025-03-01T10:00:00Z&to=2025-03-01T13:00:00Z"
		tests := []struct {
			query      string
			wantBucket string
			want       []eventstore.Count
		}{
			{rng + "&bucket=hour", "hour", []eventstore.Count{
				c(h(0, 0), "DATABASE.CONNECTION_LOST", 2),
				c(h(0, 0), "DATABASE.QUERY_SLOW", 1),
				c(h(1, 0), "NETWORK.CONNECTION_LOST", 1),
				c(h(2, 0), "DATABASE.CONNECTION_LOST", 2),
			}},
			{rng, "hour", []eventstore.Count{ // hour is the default
				c(h(0, 0), "DATABASE.CONNECTION_LOST", 2),
				c(h(0, 0), "DATABASE.QUERY_SLOW", 1),
				c(h(1, 0), "NETWORK.CONNECTION_LOST", 1),
				c(h(2, 0), "DATABASE.CONNECTION_LOST", 2),
			}},
			{rng + "&bucket=1h&tag=*.CONNECTION_LOST", "1h", []eventstore.Count{
				c(h(0, 0), "DATABASE.CONNECTION_LOST", 2),
				c(h(1, 0), "NETWORK.CONNECTION_LOST", 1),
				c(h(2, 0), "DATABASE.CONNECTION_LOST", 2),
			}},
			{rng + "&bucket=minute&tag=DATABASE.*", "minute", []eventstore.Count{
				c(h(0, 0), "DATABASE.CONNECTION_LOST", 1),
				c(h(0, 30), "DATABASE.QUERY_SLOW", 1),
				c(h(0, 59), "DATABASE.CONNECTION_LOST", 1),
				c(h(2, 15), "DATABASE.CONNECTION_LOST", 2),
			}},
			{"from=2025-02-28T00:00:00Z&to=2025-03-03T00:00:00Z&bucket=day", "day", []eventstore.Count{
				c(h(-10, 0), "DATABASE.CONNECTION_LOST", 4), // 2025-03-01T00:00Z
				c(h(-10, 0), "DATABASE.QUERY_SLOW", 1),
				c(h(-10, 0), "NETWORK.CONNECTION_LOST", 1),
				c(h(-10, 0), "TEST.UNIT.PASSED", 2),
			}},
			{rng + "&tag=TEST.>", "hour", nil},
			{"from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&bucket=1d", "1d", nil},
			// Exactly 10,000 buckets is allowed.
			{"from=2025-03-01T00:00:00Z&to=2025-03-07T22:40:00Z&bucket=1m&tag=NETWORK.*", "1m", []eventstore.Count{
				c(h(1, 0), "NETWORK.CONNECTION_LOST", 1),
			}},
		}
		for _, tt := range tests {
			path := "/v1/stats?" + tt.query
			got := getJSON[query.Stats](s, path)
			if diff := cmp.Diff(tt.want, got.Counts, equateEmpty); diff != "" {
				t.Errorf("GET %s counts (-want +got):\n%s", path, diff)
			}
			if got.Counts == nil {
				t.Errorf("GET %s: counts = null; want an array", path)
			}
			if got.Bucket != tt.wantBucket {
				t.Errorf("GET %s: bucket = %q; want %q", path, got.Bucket, tt.wantBucket)
			}
			q, _ := url.ParseQuery(tt.query)
			if want := q.Get("from"); got.From.Format(time.RFC3339) != want {
				t.Errorf("GET %s: from = %v; want %s", path, got.From, want)
			}
			if want := q.Get("to"); got.To.Format(time.RFC3339) != want {
				t.Errorf("GET %s: to = %v; want %s", path, got.To, want)
			}
		}

		// Without a range: the 24 hours up to now.
		before := time.Now()
		got := getJSON[query.Stats](s, "/v1/stats")
		if got.To.Before(before.Add(-time.Second)) || got.To.After(time.Now().Add(time.Second)) {
			t.Errorf("GET /v1/stats: to = %v; want about now (%v)", got.To, before)
		}
		if d := got.To.Sub(got.From); d != 24*time.Hour {
			t.Errorf("GET /v1/stats: to - from = %v; want 24h", d)
		}
		// Only from, or only to.
		got = getJSON[query.Stats](s, "/v1/stats?to=2025-03-01T13:00:00Z")
		if want := h(-21, 0); !got.From.Equal(want) {
			t.Errorf("GET /v1/stats?to=…: from = %v; want %v", got.From, want)
		}
	})
}

func TestWatermarkUnavailable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		s := seed(t, st, fixtures()...)
		s.wm.fail(errors.New("nats: consumer info: secret-host:4222 timeout"))
		for _, path := range []string{"/v1/events", "/v1/events?category=DATABASE", "/api/logs?since=1"} {
			_, h, body := getProblem(s, path, http.StatusServiceUnavailable)
			if got := h.Get("Retry-After"); got != "1" {
				t.Errorf("GET %s: Retry-After = %q; want %q", path, got, "1")
			}
			if strings.Contains(body, "secret-host") {
				t.Errorf("GET %s = %s; leaks the watermark error", path, body)
			}
		}
		// Reads that are not cursor reads do not need the watermark.
		for _, path := range []string{"/v1/events/ev-1", "/v1/sessions/s1/events", "/v1/stats?from=2025-03-01T10:00:00Z&to=2025-03-01T11:00:00Z"} {
			if status, _, body := s.get(path); status != http.StatusOK {
				t.Errorf("GET %s with the watermark failing = %d %s; want 200", path, status, body)
			}
		}
		s.wm.set(6)
		if got, _ := getPage(s, "/v1/events"); len(got) != 6 {
			t.Errorf("GET /v1/events after the watermark recovered = %v; want 6 events", got)
		}
	})
}

// paths covers every endpoint that reads the store.
var paths = []string{
	"/v1/events",
	"/v1/events?order=desc",
	"/api/logs",
	"/v1/events/ev-1",
	"/v1/sessions/s1/events",
	"/v1/stats?from=2025-03-01T10:00:00Z&to=2025-03-01T11:00:00Z",
	"/v1/subscriptions/sub-a/deliveries",
	"/v1/events/ev-1/deliveries?status=failed",
}

func TestStoreUnavailable(t *testing.T) {
	err := fmt.Errorf("events: %w: dial tcp 10.0.0.7:9000: connection refused", eventstore.ErrUnavailable)
	s := serve(t, failingReader{err}, 10)
	for _, path := range paths {
		_, h, body := getProblem(s, path, http.StatusServiceUnavailable)
		if got := h.Get("Retry-After"); got != "1" {
			t.Errorf("GET %s: Retry-After = %q; want %q", path, got, "1")
		}
		if strings.Contains(body, "10.0.0.7") {
			t.Errorf("GET %s = %s; leaks the store error", path, body)
		}
	}
}

func TestStoreClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		s := seed(t, st, fixtures()...)
		if err := st.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		for _, path := range paths {
			status, h, body := s.get(path)
			// A closed store should arguably be 503 (see
			// TestStoreUnavailable), but neither store marks "closed"
			// (database/sql's "database is closed", clickhouse-go's
			// "connection is closed") as eventstore.ErrUnavailable, so it
			// is a 500 today; either way a problem that leaks nothing.
			if status != http.StatusServiceUnavailable && status != http.StatusInternalServerError {
				t.Errorf("GET %s on a closed store = %d %s; want 503 (or 500)", path, status, body)
			}
			if ct := h.Get("Content-Type"); ct != problem.ContentType {
				t.Errorf("GET %s on a closed store: Content-Type = %q; want %q", path, ct, problem.ContentType)
			}
			if strings.Contains(string(body), "sql") || strings.Contains(string(body), "closed") {
				t.Errorf("GET %s on a closed store = %s; leaks the store error", path, body)
			}
		}
	})
}

func TestInternalErrorLeaksNothing(t *testing.T) {
	s := serve(t, failingReader{errors.New("select from events_local: table secret_db.events is broken")}, 10)
	for _, path := range paths {
		p, h, body := getProblem(s, path, http.StatusInternalServerError)
		if strings.Contains(body, "secret_db") || p.Detail != "" || len(p.Errors) != 0 {
			t.Errorf("GET %s = %s; want a bare 500 that leaks no internals", path, body)
		}
		if p.Title != "Internal Server Error" {
			t.Errorf("GET %s: title = %q; want %q", path, p.Title, "Internal Server Error")
		}
		if got := h.Get("Retry-After"); got != "" {
			t.Errorf("GET %s: Retry-After = %q; want none", path, got)
		}
	}
	// The error is logged where it is handled, once per request.
	if got, want := strings.Count(s.logs.String(), "secret_db.events is broken"), len(paths); got != want {
		t.Errorf("the store error was logged %d times for %d requests; want %d:\n%s", got, len(paths), want, s.logs)
	}
}

func TestUnencodableEventIsInternalError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store) {
		// Ingest only stores known severities, but a stored event with an
		// unknown one (99) does not encode: the answer must be a 500, never
		// a 200 with a truncated body.
		bad := mkEvent(1, "A.B", "s", "", 99, t0)
		s := seed(t, st, bad)
		for _, path := range []string{"/v1/events", "/api/logs", "/v1/events/ev-1", "/v1/sessions/s/events"} {
			getProblem(s, path, http.StatusInternalServerError)
		}
		if got := strings.Count(s.logs.String(), "invalid severity"); got != 4 {
			t.Errorf("the encoding error was logged %d times for 4 requests; want 4:\n%s", got, s.logs)
		}
	})
}

func TestClickHouseOutage(t *testing.T) {
	dsn := chtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", dsn, err)
	}
	proxy := chtest.NewProxy(t, u.Host)
	st, err := chstore.Open(t.Context(), proxy.DSN(dsn))
	if err != nil {
		t.Fatalf("chstore.Open = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	s := seed(t, st, fixtures()...)

	proxy.Cut()
	for _, path := range paths {
		_, h, body := getProblem(s, path, http.StatusServiceUnavailable)
		if got := h.Get("Retry-After"); got != "1" {
			t.Errorf("GET %s with ClickHouse down: Retry-After = %q; want %q", path, got, "1")
		}
		if strings.Contains(body, u.Host) || strings.Contains(body, proxy.Addr()) {
			t.Errorf("GET %s with ClickHouse down = %s; leaks the address", path, body)
		}
	}
	proxy.Restore()
	for _, path := range paths {
		if status, _, body := s.get(path); status != http.StatusOK {
			t.Errorf("GET %s after ClickHouse came back = %d %s; want 200", path, status, body)
		}
	}
}
