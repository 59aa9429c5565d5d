package query_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/logsync"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/services/query"
)

// mixedTags interleave the DATABASE events a client may read with AUTH
// events it may not, so that a page or a count that included, skipped or
// counted the others would show.
var mixedTags = []string{
	"AUTH.LOGIN", "DATABASE.INSERT", "AUTH.LOGIN", "AUTH.LOGOUT", "DATABASE.DELETE",
	"AUTH.LOGIN", "DATABASE.INSERT", "AUTH.LOGOUT", "AUTH.LOGIN", "DATABASE.INSERT", "AUTH.LOGIN",
}

// only returns the tags of tags that keep selects, in order.
func only(tags []string, keep func(string) bool) []string {
	var out []string
	for _, t := range tags {
		if keep(t) {
			out = append(out, t)
		}
	}
	return out
}

func isDatabase(tag string) bool { return strings.HasPrefix(tag, "DATABASE.") }

// readAll follows next_since over path (which has no since) with a client
// and checks that every page but the last is full.
func readAll(t *testing.T, g *gated, path, auth string, limit int) []event.Event {
	t.Helper()
	var all []event.Event
	var since uint64
	for range 100 {
		p := gjson[query.Page](g, "GET", fmt.Sprintf("%s&since=%d&limit=%d", path, since, limit), auth, nil, http.StatusOK)
		all = append(all, p.Events...)
		if len(p.Events) < limit {
			return all
		}
		since = p.NextSince
	}
	t.Fatalf("%s: no end after 100 pages", path)
	return nil
}

// readLogs follows GET /api/logs from the start with a client, as the
// log-sync dashboard does (since = the last id seen), checks that every
// page but the last is full, and returns the categories read.
func readLogs(t *testing.T, g *gated, auth string, limit int) []string {
	t.Helper()
	var all []string
	var since uint64
	for range 100 {
		page := gjson[[]logsync.Entry](g, "GET", fmt.Sprintf("/api/logs?since=%d&limit=%d", since, limit), auth, nil, http.StatusOK)
		for _, e := range page {
			all = append(all, e.Category)
		}
		if len(page) < limit {
			return all
		}
		since = page[len(page)-1].ID
	}
	t.Fatalf("/api/logs: no end after 100 pages")
	return nil
}

// TestReadsLimitedToReadPatterns: every read of stored events is limited
// to the client's read patterns inside the store query: pages are full
// of the client's tags (nothing filtered after the LIMIT, nothing of
// another tag skipped or counted), a filter outside the patterns is a
// 403 naming it, a partial overlap is narrowed, and an event of another
// tag by id is a 404 like an unknown id.
func TestReadsLimitedToReadPatterns(t *testing.T) {
	forEachGated(t, func(t *testing.T, g *gated) {
		ids := g.publish(mixedTags...)
		db := g.client("db-reader", producer.Scopes{Read: []string{"DATABASE.>"}})
		ins := g.client("insert-reader", producer.Scopes{Read: []string{"*.INSERT"}})
		wantDB := only(mixedTags, isDatabase)

		t.Run("pages", func(t *testing.T) {
			for _, limit := range []int{1, 2, 3, 100} {
				got := tags(readAll(t, g, "/v1/events?order=asc", db.bearer(), limit))
				if diff := cmp.Diff(wantDB, got); diff != "" {
					t.Errorf("/v1/events limit %d as DATABASE.> reader (-want +got):\n%s", limit, diff)
				}
				got = readLogs(t, g, db.bearer(), limit)
				if diff := cmp.Diff(wantDB, got); diff != "" {
					t.Errorf("/api/logs limit %d as DATABASE.> reader (-want +got):\n%s", limit, diff)
				}
			}
			got := tags(readAll(t, g, "/v1/events?order=asc", admin, 4))
			if diff := cmp.Diff(mixedTags, got); diff != "" {
				t.Errorf("/v1/events as admin (-want +got):\n%s", diff)
			}
		})

		t.Run("newest first", func(t *testing.T) {
			p := gjson[query.Page](g, "GET", "/v1/events?order=desc&limit=2", db.bearer(), nil, http.StatusOK)
			if diff := cmp.Diff([]string{"DATABASE.INSERT", "DATABASE.INSERT"}, tags(p.Events)); diff != "" {
				t.Errorf("newest 2 (-want +got):\n%s", diff)
			}
			if p.Events[0].ID != ids[9] || p.Events[1].ID != ids[6] {
				t.Errorf("newest 2 = %s, %s; want %s, %s", p.Events[0].ID, p.Events[1].ID, ids[9], ids[6])
			}
		})

		t.Run("filters", func(t *testing.T) {
			tests := []struct {
				name, query string
				c           client
				want        []string // nil: 403
				detail      string
			}{
				{"category outside", "category=AUTH", db, nil, `the filter category="AUTH" selects no tag within the client's read patterns`},
				{"tag outside", "tag=AUTH.*", db, nil, `the filter tag="AUTH.*" selects no tag within the client's read patterns`},
				{"category and code outside", "category=AUTH&code=LOGIN", ins, nil, `the filter category="AUTH" code="LOGIN" selects no tag within the client's read patterns`},
				{"code outside", "code=LOGIN", ins, nil, `the filter code="LOGIN" selects no tag within the client's read patterns`},
				{"tag and code outside", "tag=DATABASE.>&code=DELETE", ins, nil, `the filter code="DELETE" tag="DATABASE.>" selects no tag within the client's read patterns`},
				{"category inside", "category=DATABASE", db, wantDB, ""},
				{"partial tag", "tag=*.INSERT", db, []string{"DATABASE.INSERT", "DATABASE.INSERT", "DATABASE.INSERT"}, ""},
				{"partial category", "category=DATABASE", ins, []string{"DATABASE.INSERT", "DATABASE.INSERT", "DATABASE.INSERT"}, ""},
				{"wider tag", "tag=>", ins, []string{"DATABASE.INSERT", "DATABASE.INSERT", "DATABASE.INSERT"}, ""},
				{"code inside", "code=INSERT", ins, []string{"DATABASE.INSERT", "DATABASE.INSERT", "DATABASE.INSERT"}, ""},
				{"code of a deeper tag", "code=LOGIN", db, []string{}, ""}, // DATABASE.X.LOGIN could exist
				{"filter selecting nothing", "category=AUTH&tag=DATABASE.*", db, []string{}, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					for _, path := range []string{"/v1/events?", "/v1/sessions/s1/events?"} {
						path += tt.query
						if tt.want == nil {
							if d := g.problemOf("GET", path, tt.c.bearer(), nil, http.StatusForbidden); d != tt.detail {
								t.Errorf("GET %s detail = %q; want %q", path, d, tt.detail)
							}
							continue
						}
						var got []event.Event
						if strings.HasPrefix(path, "/v1/sessions/") {
							got = gjson[query.SessionPage](g, "GET", path, tt.c.bearer(), nil, http.StatusOK).Events
						} else {
							got = gjson[query.Page](g, "GET", path, tt.c.bearer(), nil, http.StatusOK).Events
						}
						if diff := cmp.Diff(tt.want, append([]string{}, tags(got)...)); diff != "" {
							t.Errorf("GET %s (-want +got):\n%s", path, diff)
						}
					}
				})
			}
		})

		t.Run("by id", func(t *testing.T) {
			if e := gjson[event.Event](g, "GET", "/v1/events/"+ids[1], db.bearer(), nil, http.StatusOK); e.Tag != "DATABASE.INSERT" {
				t.Errorf("GET own event = %s; want DATABASE.INSERT", e.Tag)
			}
			for _, id := range []string{ids[0], "no-such-id"} {
				if d := g.problemOf("GET", "/v1/events/"+id, db.bearer(), nil, http.StatusNotFound); d != fmt.Sprintf("no event has id %q", id) {
					t.Errorf("GET /v1/events/%s detail = %q; want the unknown id's", id, d)
				}
			}
			if e := gjson[event.Event](g, "GET", "/v1/events/"+ids[0], admin, nil, http.StatusOK); e.Tag != "AUTH.LOGIN" {
				t.Errorf("GET as admin = %s; want AUTH.LOGIN", e.Tag)
			}
		})

		t.Run("stats", func(t *testing.T) {
			span := "from=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&to=" + url.QueryEscape(t0.Add(time.Hour).Format(time.RFC3339)) + "&bucket=hour"
			count := func(c client, q string) map[string]uint64 {
				s := gjson[query.Stats](g, "GET", "/v1/stats?"+span+q, c.bearer(), nil, http.StatusOK)
				m := map[string]uint64{}
				for _, c := range s.Counts {
					m[c.Tag] += c.Count
				}
				return m
			}
			if diff := cmp.Diff(map[string]uint64{"DATABASE.INSERT": 3, "DATABASE.DELETE": 1}, count(db, "")); diff != "" {
				t.Errorf("stats as DATABASE.> reader (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]uint64{"DATABASE.INSERT": 3}, count(ins, "&tag=DATABASE.*")); diff != "" {
				t.Errorf("stats of DATABASE.* as *.INSERT reader (-want +got):\n%s", diff)
			}
			want := `the filter tag="AUTH.>" selects no tag within the client's read patterns`
			if d := g.problemOf("GET", "/v1/stats?"+span+"&tag=AUTH.>", db.bearer(), nil, http.StatusForbidden); d != want {
				t.Errorf("stats of AUTH.> detail = %q; want %q", d, want)
			}
		})

		t.Run("no read scope", func(t *testing.T) {
			c := g.client("consumer-only", producer.Scopes{Consume: []string{">"}})
			g.problemOf("GET", "/v1/events", c.bearer(), nil, http.StatusForbidden)
		})
	})
}

// TestFilterRefusalIsSound crosses filters with read patterns: a 200
// holds exactly the events of the filter that the patterns allow, and a
// 403 comes only when no event of the filter is one the client may read.
func TestFilterRefusalIsSound(t *testing.T) {
	universe := []string{"A.X", "A.Y", "A.B.X", "B.X", "B.Y", "B.C.Z"}
	g := newGated(t, openSQLite(t).(eventstore.Store))
	g.publish(universe...)
	filters := []string{"", "category=A", "category=A.B", "category=B", "code=X", "code=Z", "category=A&code=X",
		"tag=*.X", "tag=A.>", "tag=B.*", "tag=*.*.Z", "code=X&tag=A.>", "category=B&tag=*.Y"}
	reads := [][]string{{"A.>"}, {"*.X"}, {"B.*"}, {"A.X", "B.C.Z"}, {"*.*.*"}, {"C.>"}}
	refused := 0
	for i, read := range reads {
		c := g.client(fmt.Sprintf("reader-%d", i), producer.Scopes{Read: read})
		for _, f := range filters {
			path := "/v1/events?limit=100&" + f
			var want []string
			for _, e := range gjson[query.Page](g, "GET", path, admin, nil, http.StatusOK).Events {
				if eventstore.Allows(read, e.Tag) {
					want = append(want, e.Tag)
				}
			}
			code, body := g.do("GET", path, c.bearer(), nil)
			switch {
			case code == http.StatusForbidden && len(want) > 0:
				t.Errorf("read %v, filter %q = 403 %s; want %v", read, f, body, want)
			case code == http.StatusForbidden:
				refused++
			case code != http.StatusOK:
				t.Errorf("read %v, filter %q = %d %s; want 200 or 403", read, f, code, body)
			default:
				var p query.Page
				if err := json.Unmarshal(body, &p); err != nil {
					t.Fatal(err)
				}
				if got := tags(p.Events); !slices.Equal(want, got) {
					t.Errorf("read %v, filter %q = %v; want %v", read, f, got, want)
				}
			}
		}
	}
	if refused == 0 {
		t.Errorf("no filter was refused; want some (C.> reads nothing of the universe)")
	}
}
