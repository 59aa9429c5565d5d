// Package accessmatrix proves the access table holds on every route of
// every service, for the all-in-one and for the four services run
// separately: each route is called with no credential, a bad one, a
// client without the route's scope, another client (for routes of one
// client's resource), a client whose patterns do not cover the request's
// tags, and the right client; and walking the routers finds no route
// without a rule and a case here.
package accessmatrix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
)

const adminToken = "matrix-admin-token-0123456789"

// env is what every process of a matrix run gets.
var env = map[string]string{
	"AUTH":              access.AuthClients,
	"ADMIN_TOKEN":       adminToken,
	"AUTH_MAX_FAILURES": "0", // the matrix sends many bad credentials from one address
}

// target is EventSync under test: where each route is served, and the
// routers to walk.
type target struct {
	base   func(method, pattern string) string
	routes []chi.Routes
}

// client is a registered client and its API key.
type client struct {
	id, key string
}

func (c client) auth() string { return "Bearer " + c.key }

// fixture holds the clients and the resources the cases use.
type fixture struct {
	t  *testing.T
	tg target
	// full has every scope on DATABASE.>; other the same (its resources
	// are not full's); outsider every scope on AUTH.> only; writer writes
	// DATABASE.> and nothing else; reader reads DATABASE.> and nothing
	// else.
	full, other, outsider, writer, reader client
	eventID                               string
	subID                                 string
	consumer                              string
}

type req struct {
	method, path, body string
	header             map[string]string
}

// routeCase is one route of the access table and how to call it.
type routeCase struct {
	method, pattern string
	// call builds the request for a principal; fresh resources are made
	// here for routes that change or delete them.
	call func(f *fixture) req
	// owned: the route acts on one client's resource (full's): other
	// gets 404.
	owned bool
	// tagged: the request names DATABASE tags: outsider gets 403.
	tagged bool
	// hidden: the request names a DATABASE event by id: to outsider it
	// does not exist (404).
	hidden bool
	// stream: the answer is a stream; only its status is read.
	stream bool
	// signature: the route is checked by the sender's signature in this
	// header, not by EventSync credentials.
	signature string
}

func get(path string) func(*fixture) req {
	return func(*fixture) req { return req{method: http.MethodGet, path: path} }
}

func jsonReq(method, path, body string) req {
	return req{method: method, path: path, body: body, header: map[string]string{"Content-Type": "application/json"}}
}

const event = `{"tag":"DATABASE.CONNECTION_LOST","message":"matrix"}`

// publicRoutes are the only routes open without a credential: the probes,
// and the CORS preflight of The Eye's intake (browsers send no
// credentials on a preflight).
var publicRoutes = []string{"GET /healthz", "GET /readyz", "OPTIONS /events/"}

// cases are the calls of every route in access.Routes.
func cases() []routeCase {
	sub := func(suffix string) func(f *fixture) req {
		return func(f *fixture) req { return jsonReq(http.MethodPost, "/v1/subscriptions/"+f.subID+suffix, `{}`) }
	}
	freshSub := func(f *fixture) string { return f.createSubscription(f.full) }
	cons := func(method, suffix, body string) func(f *fixture) req {
		return func(f *fixture) req { return jsonReq(method, "/v1/consumers/"+f.consumer+suffix, body) }
	}
	prod := func(method, suffix, body string) func(f *fixture) req {
		return func(f *fixture) req {
			id := f.createClient(map[string]any{"tags": []string{"TEMP.>"}}).id
			return jsonReq(method, "/v1/producers/"+id+suffix, body)
		}
	}
	schema := func(method, path, body string) func(*fixture) req {
		return func(f *fixture) req {
			if method != http.MethodPut {
				f.do(jsonReq(http.MethodPut, path, `{"type":"object"}`), "Bearer "+adminToken, http.StatusOK, http.StatusCreated)
			}
			return jsonReq(method, path, body)
		}
	}
	return []routeCase{
		{method: "GET", pattern: "/metrics", call: get("/metrics")},

		{method: "POST", pattern: "/v1/events", call: func(*fixture) req { return jsonReq("POST", "/v1/events", event) }, tagged: true},
		{method: "POST", pattern: "/v1/events:validate", call: func(*fixture) req { return jsonReq("POST", "/v1/events:validate", event) }, tagged: true},
		{method: "POST", pattern: "/internal/log", call: func(*fixture) req {
			return jsonReq("POST", "/internal/log", `{"category":"DATABASE","code":"CONNECTION_LOST","message":"matrix"}`)
		}, tagged: true},
		{method: "POST", pattern: "/api/v1/streams/{stream}/events", call: func(f *fixture) req {
			r := jsonReq("POST", "/api/v1/streams/DATABASE/events", `{"event":{"name":"CONNECTION_LOST","version":"1"},"system":"s","trigger":"t","payload":{}}`)
			r.header["X-Producer-ID"] = f.full.id
			return r
		}, tagged: true},

		{method: "POST", pattern: "/v1/producers", call: func(*fixture) req {
			return jsonReq("POST", "/v1/producers", fmt.Sprintf(`{"name":"m-%d","tags":["TEMP.>"]}`, time.Now().UnixNano()))
		}},
		{method: "GET", pattern: "/v1/producers", call: get("/v1/producers")},
		{method: "GET", pattern: "/v1/producers/nats-config", call: get("/v1/producers/nats-config")},
		{method: "GET", pattern: "/v1/producers/{id}", call: prod("GET", "", "")},
		{method: "PATCH", pattern: "/v1/producers/{id}", call: prod("PATCH", "", `{"tags":["TEMP.X.>"]}`)},
		{method: "DELETE", pattern: "/v1/producers/{id}", call: prod("DELETE", "", "")},
		{method: "POST", pattern: "/v1/producers/{id}/disable", call: prod("POST", "/disable", "")},
		{method: "POST", pattern: "/v1/producers/{id}/enable", call: prod("POST", "/enable", "")},
		{method: "POST", pattern: "/v1/producers/{id}/rotate", call: prod("POST", "/rotate", `{"credential":"api_key"}`)},
		{method: "GET", pattern: "/v1/schemas", call: get("/v1/schemas")},
		{method: "PUT", pattern: "/v1/schemas/{category}", call: schema("PUT", "/v1/schemas/MATRIX", `{"type":"object"}`)},
		{method: "GET", pattern: "/v1/schemas/{category}", call: schema("GET", "/v1/schemas/MATRIX", "")},
		{method: "DELETE", pattern: "/v1/schemas/{category}", call: schema("DELETE", "/v1/schemas/MATRIX", "")},
		{method: "PUT", pattern: "/v1/schemas/{category}/{code}", call: schema("PUT", "/v1/schemas/MATRIX/CODE", `{"type":"object"}`)},
		{method: "GET", pattern: "/v1/schemas/{category}/{code}", call: schema("GET", "/v1/schemas/MATRIX/CODE", "")},
		{method: "DELETE", pattern: "/v1/schemas/{category}/{code}", call: schema("DELETE", "/v1/schemas/MATRIX/CODE", "")},

		{method: "GET", pattern: "/v1/events", call: get("/v1/events?category=DATABASE&since=0"), tagged: true},
		{method: "GET", pattern: "/v1/events/{id}", call: func(f *fixture) req { return req{method: "GET", path: "/v1/events/" + f.eventID} }, hidden: true},
		{method: "GET", pattern: "/v1/sessions/{session_id}/events", call: get("/v1/sessions/matrix-session/events?tag=DATABASE.>"), tagged: true},
		{method: "GET", pattern: "/v1/stats", call: get("/v1/stats?from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z&bucket=day&tag=DATABASE.>"), tagged: true},
		{method: "GET", pattern: "/api/logs", call: get("/api/logs?since=0")},
		{method: "GET", pattern: "/api/v1/streams/{stream}/events", call: func(*fixture) req {
			return req{method: "GET", path: "/api/v1/streams/DATABASE/events?eventName=CONNECTION_LOST&limit=1", header: map[string]string{"X-Consumer-ID": "matrix"}}
		}, tagged: true},
		{method: "POST", pattern: "/api/v1/streams/{stream}/events/{eventID}", call: func(f *fixture) req {
			return req{method: "POST", path: "/api/v1/streams/DATABASE/events/" + f.eventID, body: "action=ACK",
				header: map[string]string{"X-Consumer-ID": "matrix", "Content-Type": "application/x-www-form-urlencoded"}}
		}, tagged: true},
		{method: "GET", pattern: "/v1/stream", call: get("/v1/stream?tag=DATABASE.>"), tagged: true, stream: true},
		{method: "POST", pattern: "/v1/tokens", call: func(*fixture) req { return jsonReq("POST", "/v1/tokens", `{"read":["DATABASE.>"]}`) }, tagged: true},
		{method: "GET", pattern: "/v1/events/{id}/deliveries", call: func(f *fixture) req {
			return req{method: "GET", path: "/v1/events/" + f.eventID + "/deliveries"}
		}, hidden: true},
		{method: "GET", pattern: "/v1/subscriptions/{id}/deliveries", call: func(f *fixture) req {
			return req{method: "GET", path: "/v1/subscriptions/" + f.subID + "/deliveries"}
		}, owned: true},

		{method: "GET", pattern: "/v1/consumers", call: get("/v1/consumers")},
		{method: "PUT", pattern: "/v1/consumers/{name}", call: func(*fixture) req {
			return jsonReq("PUT", fmt.Sprintf("/v1/consumers/m-%d", time.Now().UnixNano()), `{"tags":["DATABASE.>"],"start":"all"}`)
		}, tagged: true},
		{method: "GET", pattern: "/v1/consumers/{name}", call: cons("GET", "", ""), owned: true},
		{method: "GET", pattern: "/v1/consumers/{name}/events", call: cons("GET", "/events?limit=1&wait=0s", ""), owned: true},
		{method: "POST", pattern: "/v1/consumers/{name}/ack", call: func(f *fixture) req {
			name := f.createConsumer(f.full)
			body := f.do(req{method: "GET", path: "/v1/consumers/" + name + "/events?limit=1&wait=0s"}, f.full.auth(), http.StatusOK)
			var page struct {
				Events []struct {
					Seq uint64 `json:"seq"`
				} `json:"events"`
			}
			if err := json.Unmarshal(body, &page); err != nil || len(page.Events) == 0 {
				f.t.Fatalf("consumer %s events: %v: %s", name, err, body)
			}
			return jsonReq("POST", "/v1/consumers/"+name+"/ack", fmt.Sprintf(`{"seq":%d}`, page.Events[0].Seq))
		}, owned: true},
		{method: "POST", pattern: "/v1/consumers/{name}/seek", call: cons("POST", "/seek", `{"seq":0}`), owned: true},
		{method: "DELETE", pattern: "/v1/consumers/{name}", call: func(f *fixture) req {
			return req{method: "DELETE", path: "/v1/consumers/" + f.createConsumer(f.full)}
		}, owned: true},

		{method: "POST", pattern: "/v1/subscriptions", call: func(*fixture) req {
			return jsonReq("POST", "/v1/subscriptions", `{"url":"http://127.0.0.1:9/hook","tags":["DATABASE.*"]}`)
		}, tagged: true},
		{method: "GET", pattern: "/v1/subscriptions", call: get("/v1/subscriptions")},
		{method: "GET", pattern: "/v1/subscriptions/{id}", call: func(f *fixture) req { return req{method: "GET", path: "/v1/subscriptions/" + f.subID} }, owned: true},
		{method: "PATCH", pattern: "/v1/subscriptions/{id}", call: func(f *fixture) req {
			return jsonReq("PATCH", "/v1/subscriptions/"+f.subID, `{"description":"changed"}`)
		}, owned: true},
		{method: "DELETE", pattern: "/v1/subscriptions/{id}", call: func(f *fixture) req {
			return req{method: "DELETE", path: "/v1/subscriptions/" + freshSub(f)}
		}, owned: true},
		{method: "POST", pattern: "/v1/subscriptions/{id}/pause", call: sub("/pause"), owned: true},
		{method: "POST", pattern: "/v1/subscriptions/{id}/resume", call: sub("/resume"), owned: true},
		{method: "POST", pattern: "/v1/subscriptions/{id}/rotate-secret", call: sub("/rotate-secret"), owned: true},
		{method: "POST", pattern: "/v1/subscriptions/{id}/replay", call: func(f *fixture) req {
			return jsonReq("POST", "/v1/subscriptions/"+f.subID+"/replay", `{"since_seq":0}`)
		}, owned: true},
		{method: "POST", pattern: "/v1/dead-letters/replay", call: func(f *fixture) req {
			return req{method: "POST", path: "/v1/dead-letters/replay?subscription=" + f.subID}
		}},

		// The Eye and the session collector.
		{method: "POST", pattern: "/events/", call: func(*fixture) req {
			return jsonReq("POST", "/events/", `{"session_id":"matrix-session","category":"DATABASE","name":"CONNECTION_LOST"}`)
		}, tagged: true},
		{method: "GET", pattern: "/sessions/{session_id}/events", call: get("/sessions/matrix-session/events")},
		{method: "GET", pattern: "/categories/{category}/events", call: get("/categories/DATABASE/events"), tagged: true},
		{method: "GET", pattern: "/events/range", call: get("/events/range?start_time=2026-01-01T00:00:00Z&end_time=2030-01-01T00:00:00Z")},

		// The dispatcher's canonical events and inbound portals.
		{method: "POST", pattern: "/v1/dispatcher/events", call: func(*fixture) req {
			return jsonReq("POST", "/v1/dispatcher/events", `{"kind":"urn:x:database:connection_lost","message":"matrix"}`)
		}, tagged: true},
		{method: "GET", pattern: "/v1/portals", call: get("/v1/portals")},
		{method: "PUT", pattern: "/v1/portals/{name}", call: func(*fixture) req {
			return jsonReq("PUT", "/v1/portals/matrix-put", `{"type":"gitlab","secret":"matrix-token"}`)
		}},
		{method: "GET", pattern: "/v1/portals/{name}", call: func(f *fixture) req {
			f.createPortal("matrix-get")
			return req{method: "GET", path: "/v1/portals/matrix-get"}
		}},
		{method: "DELETE", pattern: "/v1/portals/{name}", call: func(f *fixture) req {
			f.createPortal("matrix-delete")
			return req{method: "DELETE", path: "/v1/portals/matrix-delete"}
		}},
		{method: "POST", pattern: "/v1/portals/{name}/webhook", call: func(f *fixture) req {
			f.createPortal("matrix-hook")
			r := jsonReq("POST", "/v1/portals/matrix-hook/webhook", `{"object_kind":"push"}`)
			r.header["X-Gitlab-Token"] = "matrix-token"
			r.header["X-Gitlab-Event"] = "Push Hook"
			r.header["X-Gitlab-Event-UUID"] = fmt.Sprintf("matrix-%d", time.Now().UnixNano())
			return r
		}, signature: "X-Gitlab-Token"},
	}
}

// createPortal makes (or replaces) a GitLab portal with the secret
// matrix-token.
func (f *fixture) createPortal(name string) {
	f.t.Helper()
	f.do(jsonReq("PUT", "/v1/portals/"+name, `{"type":"gitlab","secret":"matrix-token"}`), "Bearer "+adminToken, http.StatusOK, http.StatusCreated)
}

// wrongScope returns a client of f without the scope s.
func (f *fixture) wrongScope(s access.Scope) client {
	switch s {
	case access.Write:
		return f.reader
	case access.Admin, access.Metrics:
		return f.full
	}
	return f.writer
}

// run checks every route of the access table on tg.
func run(t *testing.T, tg target) {
	f := setup(t, tg)
	byRoute := map[string]routeCase{}
	for _, c := range cases() {
		byRoute[c.method+" "+c.pattern] = c
	}
	t.Run("every route has a rule and a case", func(t *testing.T) {
		for _, routes := range tg.routes {
			err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
				if _, ok := lookupRule(method, route); !ok {
					t.Errorf("%s %s has no rule in access.Routes", method, route)
				}
				if _, ok := byRoute[method+" "+route]; !ok && !public(method, route) {
					t.Errorf("%s %s has no case in the access matrix", method, route)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range access.Routes {
			if _, ok := byRoute[r.Method+" "+r.Pattern]; !ok && r.Scope != access.Public {
				t.Errorf("access.Routes has %s %s, which the matrix does not call", r.Method, r.Pattern)
			}
			if r.Scope == access.Public && !slices.Contains(publicRoutes, r.Method+" "+r.Pattern) {
				t.Errorf("%s %s is public; only %q may be", r.Method, r.Pattern, publicRoutes)
			}
		}
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		f.check(t, "public", req{method: "GET", path: path}, "", false, http.StatusOK)
	}
	f.check(t, "CORS preflight", req{method: "OPTIONS", path: "/events/", header: map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}}, "", false, 0)
	for _, c := range cases() {
		rule, ok := lookupRule(c.method, c.pattern)
		if !ok {
			t.Errorf("%s %s: no rule", c.method, c.pattern)
			continue
		}
		t.Run(strings.ReplaceAll(c.method+" "+c.pattern, "/", "_"), func(t *testing.T) {
			r := c.call(f)
			if rule.Scope == access.Signed {
				signed(t, f, r, c.signature)
				return
			}
			f.check(t, "no credential", r, "", c.stream, http.StatusUnauthorized)
			f.check(t, "bad credential", r, "Bearer esk_"+strings.Repeat("x", 43), c.stream, http.StatusUnauthorized)
			f.check(t, "wrong scope", r, f.wrongScope(rule.Scope).auth(), c.stream, http.StatusForbidden)
			if c.owned {
				f.check(t, "another client's resource", r, f.other.auth(), c.stream, http.StatusNotFound)
			}
			if c.tagged && rule.Scope != access.Admin {
				f.check(t, "tag outside the client's patterns", r, f.outsider.auth(), c.stream, http.StatusForbidden)
			}
			if c.hidden {
				f.check(t, "event outside the client's patterns", r, f.outsider.auth(), c.stream, http.StatusNotFound)
			}
			right := f.full.auth()
			if rule.Scope == access.Admin || rule.Scope == access.Metrics {
				right = "Bearer " + adminToken
			}
			f.check(t, "right credential", r, right, c.stream, 0)
		})
	}
}

// signed checks a route of the signed scope: without the signature or
// with a wrong one it is 401 whatever the Authorization, with it 2xx.
func signed(t *testing.T, f *fixture, r req, header string) {
	t.Helper()
	with := func(v string) req {
		h := map[string]string{}
		for k, x := range r.header {
			h[k] = x
		}
		if v == "" {
			delete(h, header)
		} else {
			h[header] = v
		}
		return req{method: r.method, path: r.path, body: r.body, header: h}
	}
	f.check(t, "no signature", with(""), "", false, http.StatusUnauthorized)
	f.check(t, "no signature, admin token", with(""), "Bearer "+adminToken, false, http.StatusUnauthorized)
	f.check(t, "bad signature", with("wrong"), f.full.auth(), false, http.StatusUnauthorized)
	f.check(t, "right signature", r, "", false, 0)
}

func public(method, route string) bool {
	r, ok := lookupRule(method, route)
	return ok && r.Scope == access.Public
}

func lookupRule(method, pattern string) (access.Rule, bool) {
	for _, r := range access.Routes {
		if r.Method == method && r.Pattern == pattern {
			return r, true
		}
	}
	return access.Rule{}, false
}

// check sends r with the authorization and asserts the status; want 0
// means any 2xx.
func (f *fixture) check(t *testing.T, who string, r req, authorization string, stream bool, want int) {
	t.Helper()
	status, body := f.send(r, authorization, stream)
	ok := status == want || (want == 0 && status >= 200 && status < 300)
	if !ok {
		w := fmt.Sprint(want)
		if want == 0 {
			w = "2xx"
		}
		t.Errorf("%s: %s %s = %d, want %s: %s", who, r.method, r.path, status, w, body)
	}
}

// send sends r and returns its status and (unless it is a stream) body.
func (f *fixture) send(r req, authorization string, stream bool) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, r.method, f.tg.base(r.method, routeOf(r))+r.path, strings.NewReader(r.body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if authorization != "" {
		hr.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		f.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if stream && resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// routeOf returns the route pattern of a request's path, for target.base.
func routeOf(r req) string {
	path, _, _ := strings.Cut(r.path, "?")
	for _, rule := range access.Routes {
		if rule.Method == r.method && matches(rule.Pattern, path) {
			return rule.Pattern
		}
	}
	return path
}

// matches reports whether path fits a chi pattern of {params}.
func matches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// do sends r with the authorization and fails the test unless the status
// is one of want; it returns the body.
func (f *fixture) do(r req, authorization string, want ...int) []byte {
	f.t.Helper()
	status, body := f.send(r, authorization, false)
	if !slices.Contains(want, status) {
		f.t.Fatalf("%s %s = %d, want %v: %s", r.method, r.path, status, want, body)
	}
	return []byte(body)
}

// createClient registers a client with the admin token and returns it.
func (f *fixture) createClient(spec map[string]any) client {
	f.t.Helper()
	spec["name"] = fmt.Sprintf("matrix-%d", time.Now().UnixNano())
	b, _ := json.Marshal(spec)
	body := f.do(jsonReq("POST", "/v1/producers", string(b)), "Bearer "+adminToken, http.StatusCreated)
	var out struct {
		ID          string `json:"id"`
		Credentials struct {
			APIKey string `json:"api_key"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		f.t.Fatalf("create client: %v: %s", err, body)
	}
	key := out.Credentials.APIKey
	if out.ID == "" || key == "" {
		f.t.Fatalf("create client: no id or api key in %s", body)
	}
	return client{id: out.ID, key: key}
}

func (f *fixture) createSubscription(c client) string {
	f.t.Helper()
	body := f.do(jsonReq("POST", "/v1/subscriptions", `{"url":"http://127.0.0.1:9/hook","tags":["DATABASE.*"]}`), c.auth(), http.StatusCreated)
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.ID == "" {
		f.t.Fatalf("create subscription: %v: %s", err, body)
	}
	return out.ID
}

func (f *fixture) createConsumer(c client) string {
	f.t.Helper()
	name := fmt.Sprintf("matrix-%d", time.Now().UnixNano())
	f.do(jsonReq("PUT", "/v1/consumers/"+name, `{"tags":["DATABASE.>"],"start":"all"}`), c.auth(), http.StatusOK, http.StatusCreated)
	return name
}

func setup(t *testing.T, tg target) *fixture {
	f := &fixture{t: t, tg: tg}
	all := func(p string) map[string]any {
		return map[string]any{"tags": []string{p}, "scopes": map[string]any{"read": []string{p}, "subscribe": []string{p}, "consume": []string{p}}}
	}
	f.full = f.createClient(all("DATABASE.>"))
	f.other = f.createClient(all("DATABASE.>"))
	f.outsider = f.createClient(all("AUTH.>"))
	f.writer = f.createClient(map[string]any{"tags": []string{"DATABASE.>"}})
	f.reader = f.createClient(map[string]any{"scopes": map[string]any{"read": []string{"DATABASE.>"}}})

	f.eventID = fmt.Sprintf("matrix-%d", time.Now().UnixNano())
	ev := fmt.Sprintf(`{"id":%q,"tag":"DATABASE.CONNECTION_LOST","message":"matrix","session_id":"matrix-session"}`, f.eventID)
	f.do(jsonReq("POST", "/v1/events", ev), f.full.auth(), http.StatusAccepted)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _ := f.send(req{method: "GET", path: "/v1/events/" + f.eventID}, f.full.auth(), false)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s not readable after 30 s (last status %d)", f.eventID, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.subID = f.createSubscription(f.full)
	f.consumer = f.createConsumer(f.full)
	return f
}
