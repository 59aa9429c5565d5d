package oldclients

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

// The Eye's intake as its documentation promises it (docs/coming-from/the-eye.md):
// POST /events/ with a JWT signed with the client's secret_key answers
// 202 with an empty body, from any origin, and a 4xx for a timestamp in
// the future.

const eyeAdminToken = "the-eye-admin-token-0123456789"

// eyeTarget is an EventSync serving The Eye's intake (ingest) and the
// session collector's reads (query): one process for the all-in-one.
type eyeTarget struct {
	ingest, query string
}

// eyeAllInOne starts `eventsync run --auth clients` with an admin token.
func eyeAllInOne(t *testing.T, args ...string) eyeTarget {
	t.Helper()
	r := apptest.Start(t, map[string]string{"ADMIN_TOKEN": eyeAdminToken}, append(append([]string{"--auth", "clients"}, apptest.Fast...), args...)...)
	return eyeTarget{ingest: r.Base, query: r.Base}
}

// eyeServices starts ingest, store, query and notifier as their binaries
// assemble them, against one NATS server and ClickHouse, with their
// default --cors-origins (none).
func eyeServices(t *testing.T) eyeTarget {
	t.Helper()
	s := apptest.StartServices(t, map[string]string{"ADMIN_TOKEN": eyeAdminToken})
	tg := eyeTarget{ingest: s.Base["ingest"], query: s.Base["query"]}
	// Each route is served by its own service only.
	for _, c := range []struct{ method, url string }{
		{http.MethodPost, tg.query + "/events/"},
		{http.MethodGet, tg.ingest + "/events/range"},
		{http.MethodGet, tg.ingest + "/sessions/s/events"},
		{http.MethodGet, tg.ingest + "/categories/c/events"},
	} {
		if r := eyeDo(t, c.method, c.url, "", "Authorization", "Bearer "+eyeAdminToken); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d; want it served elsewhere (404 or 405)", c.method, c.url, r.status)
		}
	}
	return tg
}

// eyeReply is an answer.
type eyeReply struct {
	status int
	header http.Header
	body   string
}

// eyeDo sends a request with headers given as name, value pairs.
func eyeDo(t *testing.T, method, url, body string, header ...string) eyeReply {
	t.Helper()
	status, h, b := send(t, method, url, []byte(body), header...)
	return eyeReply{status, h, string(b)}
}

// eyeApp is an application of The Eye: it signs a fresh token for each
// request with its client's secret_key, as The Eye's client libraries do.
type eyeApp struct {
	clientID, secretKey string
	jtis                atomic.Int64
}

// token signs a token with a new jti.
func (a *eyeApp) token(t *testing.T) string {
	t.Helper()
	return a.tokenWith(t, a.secretKey, fmt.Sprintf("jti-%s-%d", a.clientID, a.jtis.Add(1)))
}

// tokenWith signs a token with key and jti: HS256, claims jti, gty, sub,
// iat and exp.
func (a *eyeApp) tokenWith(t *testing.T, key, jti string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now().Unix()
	claims, err := json.Marshal(map[string]any{"jti": jti, "gty": "client-credentials", "sub": a.clientID, "iat": now, "exp": now + 600})
	if err != nil {
		t.Fatal(err)
	}
	signed := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signed))
	return "Bearer " + signed + "." + enc(mac.Sum(nil))
}

// post sends The Eye's request: POST /events/ with a fresh token.
func (a *eyeApp) post(t *testing.T, tg eyeTarget, body string, header ...string) eyeReply {
	t.Helper()
	return eyeDo(t, http.MethodPost, tg.ingest+"/events/", body, append([]string{"Authorization", a.token(t), "Content-Type", "application/json"}, header...)...)
}

// eyeImport imports a client of The Eye as an EventSync producer, keeping
// its client id and secret_key (base64url of the key's bytes).
func eyeImport(t *testing.T, tg eyeTarget, name, clientID, secretKey, extra string) *eyeApp {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"id":%q,"jwt_secret":%q%s}`, name, clientID, base64.RawURLEncoding.EncodeToString([]byte(secretKey)), extra)
	r := eyeDo(t, http.MethodPost, tg.ingest+"/v1/producers", body, "Content-Type", "application/json", "Authorization", "Bearer "+eyeAdminToken)
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); r.status != http.StatusCreated || err != nil || out.ID != clientID {
		t.Fatalf("import %s = %d %s; want 201 with id %s", body, r.status, r.body, clientID)
	}
	return &eyeApp{clientID: clientID, secretKey: secretKey}
}

// eyeReader registers a client that reads (the application behind the
// collector's reads) and returns its Authorization value.
func eyeReader(t *testing.T, tg eyeTarget, name, read string) string {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"scopes":{"read":[%q]}}`, name, read)
	r := eyeDo(t, http.MethodPost, tg.ingest+"/v1/producers", body, "Content-Type", "application/json", "Authorization", "Bearer "+eyeAdminToken)
	var out struct {
		Credentials struct {
			APIKey string `json:"api_key"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); r.status != http.StatusCreated || err != nil || out.Credentials.APIKey == "" {
		t.Fatalf("create reader %s = %d %s", body, r.status, r.body)
	}
	return "Bearer " + out.Credentials.APIKey
}

// eyeProblem checks a problem answer: status, problem+json, and the
// pointer of its first error when given.
func eyeProblem(t *testing.T, what string, r eyeReply, status int, pointer string) {
	t.Helper()
	if r.status != status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("%s = %d %q %s; want %d problem+json", what, r.status, r.header.Get("Content-Type"), r.body, status)
		return
	}
	if pointer == "" {
		return
	}
	var p struct {
		Errors []struct {
			Pointer string `json:"pointer"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &p); err != nil || len(p.Errors) == 0 || p.Errors[0].Pointer != pointer {
		t.Errorf("%s = %s; want the first error at %s", what, r.body, pointer)
	}
}

// eyeAccepted checks The Eye's answer to an accepted request: 202 and an
// empty body.
func eyeAccepted(t *testing.T, what string, r eyeReply) {
	t.Helper()
	if r.status != http.StatusAccepted || r.body != "" {
		t.Errorf("%s = %d %q; want 202 with an empty body", what, r.status, r.body)
	}
}

// eyeStored returns the events EventSync stored for session sid, read by
// the admin through EventSync's own API once every event published so
// far is stored: a marker event is sent last and waited for on a cursor
// read, which stops at what the store has committed.
func eyeStored(t *testing.T, tg eyeTarget, app *eyeApp, sid string) []map[string]any {
	t.Helper()
	marker := fmt.Sprintf(`{"session_id":"marker-%s","category":"marker","name":"m","timestamp":%q}`, sid, time.Now().UTC().Format(time.RFC3339Nano))
	eyeAccepted(t, "POST /events/ marker", app.post(t, tg, marker))
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := eyeDo(t, http.MethodGet, tg.query+"/v1/events?since=0&limit=10000&session_id=marker-"+sid, "", "Authorization", "Bearer "+eyeAdminToken)
		if strings.Contains(r.body, `"marker-`+sid+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the marker of %s is not stored after 30 s: %d %s", sid, r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := eyeDo(t, http.MethodGet, tg.query+"/v1/events?since=0&limit=10000&session_id="+sid, "", "Authorization", "Bearer "+eyeAdminToken)
	var page struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.body), &page); r.status != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/events session %s = %d %s", sid, r.status, r.body)
	}
	return page.Events
}

// eyeSuite runs The Eye's documented behaviour against tg.
func eyeSuite(t *testing.T, tg eyeTarget) {
	app := eyeImport(t, tg, "eye-web", "eye.web-client-1", "the secret_key of the web client", `,"tags":[">"]`)
	ts := func(sec int) string { return time.Date(2024, 5, 6, 7, 0, sec, 0, time.UTC).Format(time.RFC3339) }

	t.Run("accepted with an empty body", func(t *testing.T) {
		body := `{"session_id":"s-golden","category":"page interaction","name":"button click","data":{"button":"buy","x":12.5},"timestamp":"` + ts(1) + `"}`
		r := app.post(t, tg, body)
		eyeAccepted(t, "POST /events/", r)
		if ct := r.header.Get("Content-Type"); ct != "" {
			t.Errorf("POST /events/ Content-Type = %q; want none (the body is empty)", ct)
		}
		stored := eyeStored(t, tg, app, "s-golden")
		if len(stored) != 1 {
			t.Fatalf("stored %d events of s-golden; want 1: %v", len(stored), stored)
		}
		e := stored[0]
		want := map[string]any{
			"tag": "page_20interaction.button_20click", "category": "page_20interaction", "code": "button_20click", "message": "",
			"session_id": "s-golden", "timestamp": ts(1), "producer": "eye.web-client-1",
			"data": map[string]any{"_category": "page interaction", "_name": "button click", "button": "buy", "x": 12.5},
		}
		for k, v := range want {
			if fmt.Sprint(e[k]) != fmt.Sprint(v) {
				t.Errorf("stored %s = %v; want %v", k, e[k], v)
			}
		}
		if id, _ := e["id"].(string); !strings.HasPrefix(id, "eye-") || len(id) != 68 {
			t.Errorf("stored id = %q; want the natural key eye-<64 hex digits>", id)
		}
	})

	t.Run("any origin", func(t *testing.T) {
		pre := eyeDo(t, http.MethodOptions, tg.ingest+"/events/", "",
			"Origin", "https://shop.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
		if pre.status/100 != 2 {
			t.Errorf("preflight = %d %s; want 2xx", pre.status, pre.body)
		}
		if o := pre.header.Get("Access-Control-Allow-Origin"); o != "*" && o != "https://shop.example" {
			t.Errorf("preflight Access-Control-Allow-Origin = %q; want * or the origin", o)
		}
		if m := pre.header.Get("Access-Control-Allow-Methods"); !strings.Contains(strings.ToUpper(m), "POST") {
			t.Errorf("preflight Access-Control-Allow-Methods = %q; want POST", m)
		}
		if h := strings.ToLower(pre.header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "authorization") || !strings.Contains(h, "content-type") {
			t.Errorf("preflight Access-Control-Allow-Headers = %q; want authorization and content-type", h)
		}
		for _, origin := range []string{"https://shop.example", "http://localhost:3000", "null"} {
			r := app.post(t, tg, `{"session_id":"s-cors","category":"page","name":"load","timestamp":"`+ts(2)+`"}`, "Origin", origin)
			eyeAccepted(t, "POST /events/ from "+origin, r)
			if o := r.header.Get("Access-Control-Allow-Origin"); o != "*" && o != origin {
				t.Errorf("POST /events/ from %s: Access-Control-Allow-Origin = %q; want * or the origin", origin, o)
			}
		}
		// Refusals are readable from any origin too: the gate's 401, a 422.
		for _, c := range []struct {
			what, auth, body string
			status           int
		}{
			{"without credentials", "", `{"category":"page"}`, http.StatusUnauthorized},
			{"with a future timestamp", app.token(t), `{"category":"page","timestamp":"2999-01-01T00:00:00Z"}`, http.StatusUnprocessableEntity},
		} {
			r := eyeDo(t, http.MethodPost, tg.ingest+"/events/", c.body, "Origin", "https://shop.example", "Authorization", c.auth)
			eyeProblem(t, "POST /events/ "+c.what, r, c.status, "")
			if o := r.header.Get("Access-Control-Allow-Origin"); o != "*" && o != "https://shop.example" {
				t.Errorf("POST /events/ %s from another origin: Access-Control-Allow-Origin = %q; want * or the origin", c.what, o)
			}
		}
	})

	t.Run("a timestamp in the future", func(t *testing.T) {
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		r := app.post(t, tg, `{"session_id":"s-future","category":"page","name":"load","timestamp":"`+future+`"}`)
		if r.status < 400 || r.status > 499 {
			t.Errorf("POST /events/ with a timestamp an hour ahead = %d %s; want a 4xx", r.status, r.body)
		}
		eyeProblem(t, "POST /events/ with a timestamp an hour ahead", r, http.StatusUnprocessableEntity, "/timestamp")
		if stored := eyeStored(t, tg, app, "s-future"); len(stored) != 0 {
			t.Errorf("stored %d events with a future timestamp; want none", len(stored))
		}
	})

	t.Run("natural key", func(t *testing.T) {
		// The Eye deduplicated on session_id + category + name + timestamp:
		// the same event sent again (a retry, a fresh token) is stored once,
		// whatever else it carries and however its instant is written.
		same := []string{
			`{"session_id":"s-dup","category":"page interaction","name":"click","data":{"try":1},"timestamp":"2024-05-06T07:00:03Z"}`,
			`{"session_id":"s-dup","category":"page interaction","name":"click","data":{"try":2},"timestamp":"2024-05-06T07:00:03Z"}`,
			`{"session_id":"s-dup","category":"page interaction","name":"click","timestamp":"2024-05-06T09:00:03+02:00"}`,
			`[{"session_id":"s-dup","category":"page interaction","name":"click","timestamp":"2024-05-06 07:00:03"}]`,
		}
		for i, body := range same {
			eyeAccepted(t, fmt.Sprintf("POST /events/ copy %d", i+1), app.post(t, tg, body))
		}
		other := `{"session_id":"s-dup","category":"page interaction","name":"click","timestamp":"2024-05-06T07:00:04Z"}`
		eyeAccepted(t, "POST /events/ a second later", app.post(t, tg, other))
		stored := eyeStored(t, tg, app, "s-dup")
		if len(stored) != 2 {
			t.Fatalf("stored %d events of s-dup; want 2 (4 copies of one, and another): %v", len(stored), stored)
		}
		if d, _ := stored[0]["data"].(map[string]any); fmt.Sprint(d["try"]) != "1" {
			t.Errorf("stored data %v; want the first copy's", stored[0]["data"])
		}
	})

	t.Run("credentials", func(t *testing.T) {
		body := `{"session_id":"s-auth","category":"page","name":"load","timestamp":"` + ts(5) + `"}`
		tok := app.token(t)
		eyeAccepted(t, "POST /events/ with a token", eyeDo(t, http.MethodPost, tg.ingest+"/events/", body, "Authorization", tok))
		r := eyeDo(t, http.MethodPost, tg.ingest+"/events/", body, "Authorization", tok)
		eyeProblem(t, "POST /events/ with a replayed jti", r, http.StatusUnauthorized, "")
		if !strings.Contains(r.body, "jti") || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("replayed jti = %s (WWW-Authenticate %q); want a detail naming the jti and a challenge", r.body, r.header.Get("WWW-Authenticate"))
		}
		r = eyeDo(t, http.MethodPost, tg.ingest+"/events/", body, "Authorization", app.tokenWith(t, "another secret_key", "jti-wrong-key"))
		eyeProblem(t, "POST /events/ signed with another key", r, http.StatusUnauthorized, "")
		r = eyeDo(t, http.MethodPost, tg.ingest+"/events/", body)
		eyeProblem(t, "POST /events/ without credentials", r, http.StatusUnauthorized, "")
		stranger := &eyeApp{clientID: "eye.unknown", secretKey: app.secretKey}
		eyeProblem(t, "POST /events/ as a client never imported", stranger.post(t, tg, body), http.StatusUnauthorized, "")
	})

	t.Run("refused", func(t *testing.T) {
		long := strings.Repeat("x", 65)
		tests := []struct {
			name, body string
			status     int
			pointer    string
		}{
			{"no category", `{"session_id":"s","name":"a","timestamp":"` + ts(6) + `"}`, http.StatusUnprocessableEntity, "/category"},
			{"bad timestamp", `{"category":"page","name":"a","timestamp":"yesterday"}`, http.StatusUnprocessableEntity, "/timestamp"},
			{"timestamp as a number", `{"category":"page","name":"a","timestamp":1715000000}`, http.StatusUnprocessableEntity, "/timestamp"},
			{"unknown field", `{"category":"page","name":"a","message":"m"}`, http.StatusUnprocessableEntity, "/message"},
			{"bad number in data", `{"category":"page","name":"a","data":[1e999]}`, http.StatusUnprocessableEntity, "/data/0"},
			{"second item of a batch", `[{"category":"page","name":"a"},{"category":"page","name":"a","timestamp":"yesterday"}]`, http.StatusUnprocessableEntity, "/1/timestamp"},
			{"not JSON", `{"category":`, http.StatusBadRequest, ""},
			{"over --max-body", `{"category":"page","name":"a","data":{"s":"` + strings.Repeat("x", 1<<20) + `"}}`, http.StatusRequestEntityTooLarge, ""},
		}
		for _, tt := range tests {
			eyeProblem(t, "POST /events/ "+tt.name, app.post(t, tg, tt.body), tt.status, tt.pointer)
		}
		// A client that may not write the tag: 403 from EventSync, as it is.
		narrow := eyeImport(t, tg, "eye-narrow", "eye-narrow", "the secret_key of the narrow client", `,"tags":["checkout.*"]`)
		eyeProblem(t, "POST /events/ outside the client's tags", narrow.post(t, tg, `{"category":"page","name":"a"}`), http.StatusForbidden, "")
		eyeAccepted(t, "POST /events/ inside the client's tags", narrow.post(t, tg, `{"category":"checkout","name":"paid"}`))
		// A name too long for a token is mapped to one, not refused.
		eyeAccepted(t, "POST /events/ with a name of 65 bytes", app.post(t, tg, `{"category":"page","name":"`+long+`"}`))
	})
}

func TestTheEyeAllInOne(t *testing.T) {
	eyeSuite(t, eyeAllInOne(t))
}

// TestTheEyeServices: the same on ingest, store, query and notifier run
// separately, whose --cors-origins is empty: the route's own CORS answers.
func TestTheEyeServices(t *testing.T) {
	eyeSuite(t, eyeServices(t))
}

// With --cors-origins limited to other origins, The Eye's route still
// answers any origin's requests, preflights included.
func TestTheEyeCORSWithOtherOrigins(t *testing.T) {
	tg := eyeAllInOne(t, "--cors-origins", "https://dashboard.example")
	app := eyeImport(t, tg, "eye-web", "eye-web", "the secret_key of the web client", "")
	pre := eyeDo(t, http.MethodOptions, tg.ingest+"/events/", "",
		"Origin", "https://shop.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
	if pre.status/100 != 2 || pre.header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(strings.ToLower(pre.header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight from another origin = %d, headers %v; want 2xx allowing any origin and authorization", pre.status, pre.header)
	}
	r := app.post(t, tg, `{"session_id":"s","category":"page","name":"load"}`, "Origin", "https://shop.example")
	eyeAccepted(t, "POST /events/ from another origin", r)
	if o := r.header.Get("Access-Control-Allow-Origin"); o != "*" && o != "https://shop.example" {
		t.Errorf("Access-Control-Allow-Origin = %q; want * or the origin", o)
	}
	// The rest of the API keeps the configured origins, preflights too.
	pre = eyeDo(t, http.MethodOptions, tg.ingest+"/v1/events", "", "Origin", "https://shop.example", "Access-Control-Request-Method", "POST")
	if o := pre.header.Get("Access-Control-Allow-Origin"); o != "" {
		t.Errorf("preflight of /v1/events from another origin: Access-Control-Allow-Origin = %q; want none", o)
	}
	// The rest of the API keeps the configured origins.
	r = eyeDo(t, http.MethodGet, tg.query+"/v1/events?since=0", "", "Authorization", "Bearer "+eyeAdminToken, "Origin", "https://shop.example")
	if o := r.header.Get("Access-Control-Allow-Origin"); o != "" {
		t.Errorf("GET /v1/events from another origin: Access-Control-Allow-Origin = %q; want none", o)
	}
}
