package oldclients

// The log-sync service's clients against EventSync: the emitter posts
// {category, code, message} to POST /internal/log, the dashboard polls
// GET /api/logs?since=<last id>. The answers they read are the log-sync
// service's, byte for byte where it documented them, on the all-in-one
// (with and without authentication, on both stores) and on the four
// services run separately against one NATS server and ClickHouse.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/services/query"
)

const logSyncAdminToken = "logsync-admin-token-0123456789"

// The log-sync service's documented answers.
const (
	logSyncOK       = `{"ok":true}` + "\n"
	logSyncRequired = `{"error":"category and message required"}` + "\n"
)

// logSyncTarget is EventSync as the old clients see it.
type logSyncTarget struct {
	ingest, query string // base URLs: the emitter's and the dashboard's
	auth          string // their Authorization ("" with authentication off)
	admin         string // the admin token ("" without)
}

// logSyncEntry is an entry of GET /api/logs, decoded as the dashboard
// reads it.
type logSyncEntry struct {
	ID        uint64 `json:"id"`
	Category  string `json:"category"`
	Message   string `json:"message"`
	CreatedAt string `json:"created_at"`
}

// logSyncShown is what the dashboard must show for a published event.
type logSyncShown struct{ category, message string }

type logSyncReply struct {
	status int
	header http.Header
	body   []byte
}

// logSyncDo sends one request; header holds name, value pairs.
func logSyncDo(t *testing.T, method, url string, body []byte, header ...string) logSyncReply {
	t.Helper()
	status, h, b := send(t, method, url, body, header...)
	return logSyncReply{status, h, b}
}

// emit posts body to POST /internal/log as the emitter does.
func (tg logSyncTarget) emit(t *testing.T, body string, header ...string) logSyncReply {
	t.Helper()
	h := append([]string{"Content-Type", "application/json", "Authorization", tg.auth}, header...)
	return logSyncDo(t, http.MethodPost, tg.ingest+"/internal/log", []byte(body), h...)
}

// logs reads GET /api/logs?query as the dashboard does.
func (tg logSyncTarget) logs(t *testing.T, query string) logSyncReply {
	t.Helper()
	return logSyncDo(t, http.MethodGet, tg.query+"/api/logs?"+query, nil, "Authorization", tg.auth)
}

// logSyncExact checks a documented answer: status, JSON content type and
// the exact body.
func logSyncExact(t *testing.T, what string, r logSyncReply, status int, body string) {
	t.Helper()
	if r.status != status || string(r.body) != body {
		t.Errorf("%s = %d %q; want %d %q", what, r.status, r.body, status, body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type = %q; want application/json", what, ct)
	}
}

// logSyncProblem checks an answer the log-sync service did not document:
// EventSync's problem with status (and a field error at pointer, when
// given).
func logSyncProblem(t *testing.T, what string, r logSyncReply, status int, pointer string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s = %d %s; want %d", what, r.status, r.body, status)
	}
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("%s: Content-Type = %q; want %q", what, ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(r.body, &p); err != nil || p.Status != status || p.Detail == "" && status != http.StatusUnauthorized {
		t.Errorf("%s = %s; want a problem with status %d and a detail", what, r.body, status)
	}
	if pointer != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != pointer) {
		t.Errorf("%s = %s; want a field error at %s", what, r.body, pointer)
	}
	if status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: a 401 without WWW-Authenticate", what)
	}
}

// logSyncDecode decodes a 200 of GET /api/logs: a JSON array (never
// null) of objects with exactly id (an integer), category, message and
// created_at.
func logSyncDecode(t *testing.T, what string, r logSyncReply) []logSyncEntry {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s = %d %s; want 200", what, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type = %q; want application/json", what, ct)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil || raw == nil {
		t.Fatalf("%s = %s; want a JSON array (%v)", what, r.body, err)
	}
	for _, obj := range raw {
		if len(obj) != 4 || !logSyncInteger.Match(obj["id"]) ||
			obj["category"] == nil || obj["message"] == nil || obj["created_at"] == nil {
			t.Fatalf("%s: entry %s; want exactly an integer id, category, message and created_at", what, logSyncJSON(obj))
		}
	}
	var out []logSyncEntry
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return out
}

func logSyncJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// logSyncCreatedAt is created_at's layout: RFC 3339 in UTC with
// microseconds.
var logSyncCreatedAt = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)

// logSyncInteger is a JSON integer.
var logSyncInteger = regexp.MustCompile(`^[0-9]+$`)

// logSyncDashboard polls GET /api/logs from since=0 as the dashboard
// does, in the background, until it has read an entry with the message
// last; wait returns what it read.
type logSyncDashboard struct {
	done chan struct{}
	got  []logSyncEntry
	err  error
}

func logSyncStartDashboard(t *testing.T, tg logSyncTarget, last string) *logSyncDashboard {
	d := &logSyncDashboard{done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	go func() {
		defer close(d.done)
		defer cancel()
		d.err = d.poll(ctx, tg, last)
	}()
	return d
}

func (d *logSyncDashboard) poll(ctx context.Context, tg logSyncTarget, last string) error {
	var since uint64
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/logs?since=%d", tg.query, since), nil)
		if err != nil {
			return err
		}
		if tg.auth != "" {
			req.Header.Set("Authorization", tg.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("poll since=%d: %w (%d entries read)", since, err, len(d.got))
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("poll since=%d = %d %s (%v)", since, resp.StatusCode, b, err)
		}
		var page []logSyncEntry
		if err := json.Unmarshal(b, &page); err != nil || page == nil {
			return fmt.Errorf("poll since=%d = %s: not a JSON array (%v)", since, b, err)
		}
		for _, e := range page {
			if e.ID <= since {
				return fmt.Errorf("poll since=%d: id %d does not advance: %s", since, e.ID, b)
			}
			since = e.ID
			d.got = append(d.got, e)
			if e.Message == last {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d entries read, the last not among them", ctx.Err(), len(d.got))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (d *logSyncDashboard) wait() ([]logSyncEntry, error) {
	<-d.done
	return d.got, d.err
}

// logSyncSuite runs the old clients against tg, which holds no event yet:
// every documented answer of both routes, and the dashboard's polling
// loop reading back everything the emitter published while it posted.
func logSyncSuite(t *testing.T, tg logSyncTarget) {
	start := time.Now().UTC().Truncate(time.Microsecond)
	const last = "the emitter's last event"
	dash := logSyncStartDashboard(t, tg, last)
	var want []logSyncShown

	t.Run("POST /internal/log 200", func(t *testing.T) {
		tests := []struct {
			name, body string
			header     []string
			shown      logSyncShown
		}{
			{"category and code", `{"category":"TEST.NETWORK","code":"TIMEOUT","message":"upstream slow"}`, nil,
				logSyncShown{"TEST.NETWORK.TIMEOUT", "upstream slow"}},
			{"full tag, no code", `{"category":"TEST.NETWORK.TIMEOUT","message":"no code"}`, nil,
				logSyncShown{"TEST.NETWORK.TIMEOUT", "no code"}},
			{"one token, no code", `{"category":"TEST","message":"one token"}`, nil,
				logSyncShown{"TEST", "one token"}},
			{"spaces, no code", `{"category":"page interaction","message":"clicked"}`, nil,
				logSyncShown{"page interaction", "clicked"}},
			{"spaces with a code", `{"category":"page interaction","code":"double click","message":"clicked twice"}`, nil,
				logSyncShown{"page interaction.double click", "clicked twice"}},
			{"trimmed", `{"category":"  DATABASE\t","code":" CONNECTION_LOST ","message":"  db down \n"}`, nil,
				logSyncShown{"DATABASE.CONNECTION_LOST", "db down"}},
			{"empty code", `{"category":"AUTH","code":"","message":"empty code"}`, nil,
				logSyncShown{"AUTH", "empty code"}},
			{"null code", `{"category":"AUTH.LOGIN","code":null,"message":"null code"}`, nil,
				logSyncShown{"AUTH.LOGIN", "null code"}},
			{"number code", `{"category":"HTTP","code":504,"message":"gateway timeout"}`, nil,
				logSyncShown{"HTTP.504", "gateway timeout"}},
			{"not ASCII", `{"category":"café.über","message":"unicode"}`, nil,
				logSyncShown{"café.über", "unicode"}},
			{"other fields ignored", `{"category":"A.B","message":"extra fields","level":"warn","timestamp":"whenever"}`, nil,
				logSyncShown{"A.B", "extra fields"}},
			{"no Content-Type", `{"category":"A.B","message":"no content type"}`, []string{"Content-Type", "-"},
				logSyncShown{"A.B", "no content type"}},
			{"text/plain", `{"category":"A.B","message":"text plain"}`, []string{"Content-Type", "text/plain"},
				logSyncShown{"A.B", "text plain"}},
		}
		for _, tt := range tests {
			h := tt.header
			if len(h) == 2 && h[1] == "-" {
				// The request without a Content-Type at all.
				r := logSyncDo(t, http.MethodPost, tg.ingest+"/internal/log", []byte(tt.body), "Authorization", tg.auth)
				logSyncExact(t, tt.name, r, http.StatusOK, logSyncOK)
			} else {
				logSyncExact(t, tt.name, tg.emit(t, tt.body, h...), http.StatusOK, logSyncOK)
			}
			want = append(want, tt.shown)
		}
	})

	t.Run("POST /internal/log 400", func(t *testing.T) {
		for _, body := range []string{
			`{}`,
			``,
			`null`,
			`{"message":"no category"}`,
			`{"category":"A.B"}`,
			`{"category":"","message":"blank category"}`,
			`{"category":"A.B","message":""}`,
			`{"category":"   ","message":"white space category"}`,
			`{"category":"A.B","message":" \t\n "}`,
			`{"category":null,"message":"null category"}`,
			`{"category":"A.B","message":null}`,
			`{"code":"TIMEOUT","message":"code without category"}`,
		} {
			logSyncExact(t, "POST /internal/log "+body, tg.emit(t, body), http.StatusBadRequest, logSyncRequired)
		}
	})

	t.Run("POST /internal/log problems", func(t *testing.T) {
		logSyncProblem(t, "an array", tg.emit(t, `[{"category":"A.B","message":"m"}]`), http.StatusBadRequest, "")
		logSyncProblem(t, "NDJSON", tg.emit(t, "{\"category\":\"A.B\",\"message\":\"1\"}\n{\"category\":\"A.B\",\"message\":\"2\"}\n",
			"Content-Type", "application/x-ndjson"), http.StatusBadRequest, "")
		logSyncProblem(t, "malformed JSON", tg.emit(t, `{"category":`), http.StatusBadRequest, "")
		logSyncProblem(t, "a number category", tg.emit(t, `{"category":5,"message":"m"}`), http.StatusUnprocessableEntity, "/category")
		long := fmt.Sprintf(`{"category":"A.B","message":%q}`, strings.Repeat("m", 64<<10+1))
		logSyncProblem(t, "a message over 64 KiB", tg.emit(t, long), http.StatusUnprocessableEntity, "/message")
		huge := fmt.Sprintf(`{"category":"A.B","message":%q}`, strings.Repeat("m", 1<<20))
		logSyncProblem(t, "a body over 1 MiB", tg.emit(t, huge), http.StatusRequestEntityTooLarge, "")
	})

	t.Run("the emitter's sequence", func(t *testing.T) {
		categories := []struct{ category, code, shown string }{
			{"TEST.NETWORK", "TIMEOUT", "TEST.NETWORK.TIMEOUT"},
			{"TEST.NETWORK.TIMEOUT", "", "TEST.NETWORK.TIMEOUT"},
			{"page interaction", "", "page interaction"},
			{"DATABASE", "", "DATABASE"},
		}
		for i := range 40 {
			c := categories[i%len(categories)]
			msg := fmt.Sprintf("event %d", i)
			if i == 39 {
				msg = last
			}
			body, _ := json.Marshal(map[string]string{"category": c.category, "code": c.code, "message": msg})
			logSyncExact(t, "POST /internal/log "+string(body), tg.emit(t, string(body)), http.StatusOK, logSyncOK)
			want = append(want, logSyncShown{c.shown, msg})
		}
	})
	end := time.Now().UTC()

	t.Run("the dashboard read everything once, in order", func(t *testing.T) {
		got, err := dash.wait()
		if err != nil {
			t.Fatalf("dashboard: %v", err)
		}
		var shown []logSyncShown
		for i, e := range got {
			shown = append(shown, logSyncShown{e.Category, e.Message})
			if i > 0 && e.ID <= got[i-1].ID {
				t.Errorf("entry %d: id %d after %d; want increasing ids", i, e.ID, got[i-1].ID)
			}
			ts, err := time.Parse(time.RFC3339Nano, e.CreatedAt)
			if !logSyncCreatedAt.MatchString(e.CreatedAt) || err != nil || ts.Before(start) || ts.After(end) {
				t.Errorf("entry %d: created_at %q; want RFC 3339 UTC with microseconds between %s and %s", i, e.CreatedAt, start, end)
			}
		}
		if len(shown) != len(want) {
			t.Errorf("the dashboard read %d entries; want %d (the events the emitter got 200 for, nothing else)", len(shown), len(want))
		}
		for i := range max(len(shown), len(want)) {
			var g, w logSyncShown
			if i < len(shown) {
				g = shown[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("entry %d = %+v; want %+v", i, g, w)
			}
		}
	})

	t.Run("GET /api/logs", func(t *testing.T) {
		all := logSyncDecode(t, "since=0", tg.logs(t, "since=0"))
		if len(all) != len(want) {
			t.Fatalf("GET /api/logs?since=0 = %d entries; want %d", len(all), len(want))
		}
		lastID := all[len(all)-1].ID
		logSyncExact(t, "since=<last id>", tg.logs(t, fmt.Sprintf("since=%d", lastID)), http.StatusOK, "[]\n")
		logSyncExact(t, "since past the end", tg.logs(t, fmt.Sprintf("since=%d", lastID+1000)), http.StatusOK, "[]\n")
		if got := logSyncDecode(t, "no since", tg.logs(t, "")); len(got) != len(all) || got[0] != all[0] {
			t.Errorf("GET /api/logs = %d entries from %+v; want since=0's %d", len(got), got[0], len(all))
		}
		page := logSyncDecode(t, "since=2&limit=3", tg.logs(t, fmt.Sprintf("since=%d&limit=3", all[1].ID)))
		if len(page) != 3 || page[0] != all[2] || page[2] != all[4] {
			t.Errorf("GET /api/logs?since=%d&limit=3 = %+v; want %+v", all[1].ID, page, all[2:5])
		}
		// The golden body of one entry.
		first := all[0]
		golden := fmt.Sprintf(`[{"category":"TEST.NETWORK.TIMEOUT","created_at":%q,"id":%d,"message":"upstream slow"}]`+"\n", first.CreatedAt, first.ID)
		logSyncExact(t, "since=0&limit=1", tg.logs(t, "since=0&limit=1"), http.StatusOK, golden)

		for _, q := range []string{"since=x", "since=-1", "since=1.5", "limit=0", "limit=10001", "limit=x"} {
			name, _, _ := strings.Cut(q, "=")
			logSyncProblem(t, "GET /api/logs?"+q, tg.logs(t, q), http.StatusBadRequest, name)
		}
	})

	t.Run("GET /api/logs default limit", func(t *testing.T) {
		all := logSyncDecode(t, "since=0&limit=10000", tg.logs(t, "since=0&limit=10000"))
		from := all[len(all)-1].ID
		for i := range query.DefaultLimit + 1 {
			logSyncExact(t, "POST /internal/log", tg.emit(t, fmt.Sprintf(`{"category":"BULK","code":"LOAD","message":"bulk %d"}`, i)), http.StatusOK, logSyncOK)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := logSyncDecode(t, "since=<from>&limit=1000", tg.logs(t, fmt.Sprintf("since=%d&limit=1000", from)))
			if len(got) == query.DefaultLimit+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /api/logs: %d of %d bulk events readable after 60 s", len(got), query.DefaultLimit+1)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := logSyncDecode(t, "since=<from>", tg.logs(t, fmt.Sprintf("since=%d", from))); len(got) != query.DefaultLimit {
			t.Errorf("GET /api/logs?since=%d = %d entries; want the default limit %d", from, len(got), query.DefaultLimit)
		}
	})
}

// logSyncClient registers a client with the admin token and returns its
// Authorization value.
func logSyncClient(t *testing.T, tg logSyncTarget, spec string) string {
	t.Helper()
	r := logSyncDo(t, http.MethodPost, tg.ingest+"/v1/producers", []byte(spec),
		"Content-Type", "application/json", "Authorization", "Bearer "+tg.admin)
	var out struct {
		Credentials struct {
			APIKey string `json:"api_key"`
		} `json:"credentials"`
	}
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &out) != nil || out.Credentials.APIKey == "" {
		t.Fatalf("create client %s = %d %s", spec, r.status, r.body)
	}
	return "Bearer " + out.Credentials.APIKey
}

// logSyncAuth checks the routes with authentication on: the old clients
// need a credential (passed through to EventSync's checks), and
// EventSync's refusals are its problems.
func logSyncAuth(t *testing.T, tg logSyncTarget) {
	anon := tg
	anon.auth = ""
	logSyncProblem(t, "POST /internal/log without a credential", anon.emit(t, `{"category":"A.B","message":"m"}`), http.StatusUnauthorized, "")
	logSyncProblem(t, "POST /internal/log with a bad credential",
		anon.emit(t, `{"category":"A.B","message":"m"}`, "Authorization", "Bearer esk_"+strings.Repeat("x", 43)), http.StatusUnauthorized, "")
	logSyncProblem(t, "GET /api/logs without a credential", anon.logs(t, "since=0"), http.StatusUnauthorized, "")

	narrow := tg
	narrow.auth = logSyncClient(t, tg, fmt.Sprintf(`{"name":"logsync-narrow-%d","tags":["NARROW.>"],"scopes":{"read":["NARROW.>"]}}`, time.Now().UnixNano()))
	logSyncProblem(t, "POST /internal/log outside the client's tags", narrow.emit(t, `{"category":"TEST","message":"m"}`), http.StatusForbidden, "")
	logSyncExact(t, "POST /internal/log with a blank message", narrow.emit(t, `{"category":"NARROW","message":" "}`), http.StatusBadRequest, logSyncRequired)
	logSyncExact(t, "POST /internal/log within the client's tags", narrow.emit(t, `{"category":"NARROW","message":"narrow one"}`), http.StatusOK, logSyncOK)

	reader := tg
	reader.auth = logSyncClient(t, tg, fmt.Sprintf(`{"name":"logsync-reader-%d","scopes":{"read":["NARROW.>"]}}`, time.Now().UnixNano()))
	logSyncProblem(t, "POST /internal/log without the write scope", reader.emit(t, `{"category":"NARROW","message":"m"}`), http.StatusForbidden, "")
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := logSyncDecode(t, "GET /api/logs as a NARROW.> reader", reader.logs(t, "since=0"))
		if len(got) == 1 {
			if got[0].Category != "NARROW" || got[0].Message != "narrow one" {
				t.Errorf("GET /api/logs as a NARROW.> reader = %+v; want the NARROW event only", got)
			}
			break
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("GET /api/logs as a NARROW.> reader = %+v; want the NARROW event only", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLogSyncAllInOne runs the old clients against the all-in-one with
// its loopback default (no authentication), on both stores.
func TestLogSyncAllInOne(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"embedded", func(*testing.T) string { return "" }},
		{"clickhouse", func(t *testing.T) string { return chtest.DSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			r := apptest.Start(t, nil, append([]string{"--clickhouse-url", b.url(t)}, apptest.Fast...)...)
			logSyncSuite(t, logSyncTarget{ingest: r.Base, query: r.Base})
		})
	}
}

// TestLogSyncAllInOneAuth runs them against the all-in-one with
// --auth=clients: the emitter and the dashboard send a client's
// credential.
func TestLogSyncAllInOneAuth(t *testing.T) {
	env := map[string]string{"ADMIN_TOKEN": logSyncAdminToken}
	r := apptest.Start(t, env, append([]string{"--auth", "clients"}, apptest.Fast...)...)
	tg := logSyncTarget{ingest: r.Base, query: r.Base, admin: logSyncAdminToken}
	tg.auth = logSyncClient(t, tg, `{"name":"logsync-old-clients","tags":[">"],"scopes":{"read":[">"]}}`)
	logSyncSuite(t, tg)
	t.Run("authentication", func(t *testing.T) { logSyncAuth(t, tg) })
}

// TestLogSyncServices runs them against the four services run separately,
// as their binaries assemble them (authentication on, their default),
// against one NATS server and ClickHouse: the emitter talks to ingest,
// the dashboard to query.
func TestLogSyncServices(t *testing.T) {
	s := apptest.StartServices(t, map[string]string{"ADMIN_TOKEN": logSyncAdminToken})
	tg := logSyncTarget{ingest: s.Base["ingest"], query: s.Base["query"], admin: logSyncAdminToken}
	tg.auth = logSyncClient(t, tg, `{"name":"logsync-old-clients","tags":[">"],"scopes":{"read":[">"]}}`)
	// Each route is served by its own service only.
	for _, c := range []struct{ method, url string }{
		{http.MethodGet, s.Base["ingest"] + "/api/logs"},
		{http.MethodPost, s.Base["query"] + "/internal/log"},
	} {
		if r := logSyncDo(t, c.method, c.url, nil, "Authorization", tg.auth); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d; want it served elsewhere (404 or 405)", c.method, c.url, r.status)
		}
	}
	logSyncSuite(t, tg)
	t.Run("authentication", func(t *testing.T) { logSyncAuth(t, tg) })
}
