package producers

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/access/accesstest"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
)

const token = "admin-token-for-tests-0123456789"

// env is an admin API over a registry on a real NATS server, behind a
// real access gate as a process routes it.
type env struct {
	t     *testing.T
	reg   *producer.Registry
	url   string
	admin string // the Authorization value of call
}

// newEnv starts the API behind a gate with authentication on and the
// given admin token. Without one, a client with admin scope is registered
// and call uses its API key.
func newEnv(t *testing.T, adminToken string) *env {
	t.Helper()
	srv := natstest.Start(t)
	js, err := stream.JetStream(srv.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	gate := accesstest.Start(t, js, access.Config{Auth: access.AuthClients, AdminToken: adminToken})
	e := &env{t: t, reg: gate.Registry(), admin: "Bearer " + adminToken}
	if adminToken == "" {
		_, sec, err := e.reg.Create(t.Context(), producer.Spec{Name: "root", Scopes: producer.Scopes{Admin: true}})
		if err != nil {
			t.Fatal(err)
		}
		e.admin = "Bearer " + sec.APIKey
	}
	r := accesstest.Router(gate)
	New(e.reg, log).Mount(r)
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// reply is an answer of the API.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path, auth, contentType, body string) reply {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// call sends an authorized JSON request and decodes a JSON answer into
// out (when not nil).
func (e *env) call(method, path, body string, out any) reply {
	e.t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	r := e.do(method, path, e.admin, ct, body)
	if out != nil && len(r.body) > 0 {
		if err := json.Unmarshal(r.body, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// problemBody is what the tests read of a problem.
type problemBody struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Owner  string `json:"owner"`
	Errors []struct {
		Pointer string `json:"pointer"`
	} `json:"errors"`
}

func (p problemBody) pointers() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Pointer)
	}
	return out
}

// created is the answer of a create or rotate.
type created struct {
	view
	Credentials *producer.Secrets `json:"credentials"`
}

func (e *env) create(body string) created {
	e.t.Helper()
	var c created
	if r := e.call("POST", "/v1/producers", body, &c); r.status != http.StatusCreated {
		e.t.Fatalf("POST /v1/producers %s = %d %s; want 201", body, r.status, r.body)
	}
	return c
}

// routes are every admin route, with a body that would be accepted.
var routes = []struct{ method, path, body string }{
	{"POST", "/v1/producers", `{"name":"x"}`},
	{"GET", "/v1/producers", ""},
	{"GET", "/v1/producers/nats-config", ""},
	{"GET", "/v1/producers/prd_0123456789abcdef0123456789abcdef", ""},
	{"PATCH", "/v1/producers/prd_0123456789abcdef0123456789abcdef", `{}`},
	{"DELETE", "/v1/producers/prd_0123456789abcdef0123456789abcdef", ""},
	{"POST", "/v1/producers/prd_0123456789abcdef0123456789abcdef/disable", ""},
	{"POST", "/v1/producers/prd_0123456789abcdef0123456789abcdef/enable", ""},
	{"POST", "/v1/producers/prd_0123456789abcdef0123456789abcdef/rotate", `{"credential":"password"}`},
}

// The gate guards every admin route (its own behaviour is tested in
// pkg/access): only the admin token or a client with admin scope gets
// through.
func TestAuthorization(t *testing.T) {
	e := newEnv(t, token)
	tests := []struct {
		name, auth, challenge string
		want                  int
	}{
		{"none", "", `Bearer realm="eventsync"`, http.StatusUnauthorized},
		{"basic", "Basic YWRtaW46YWRtaW4=", `Bearer realm="eventsync"`, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", `Bearer realm="eventsync"`, http.StatusUnauthorized},
		{"wrong token", "Bearer " + token + "x", `error="invalid_token"`, http.StatusUnauthorized},
		{"prefix of the token", "Bearer " + token[:10], `error="invalid_token"`, http.StatusUnauthorized},
		{"right token", "Bearer " + token, "", http.StatusOK},
		{"lowercase scheme", "bearer " + token, "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", "/v1/producers", tt.auth, "", "")
			if r.status != tt.want {
				t.Fatalf("GET /v1/producers with %q = %d %s; want %d", tt.auth, r.status, r.body, tt.want)
			}
			if got := r.header.Get("WWW-Authenticate"); tt.challenge == "" && got != "" || !strings.Contains(got, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q; want it to contain %q", got, tt.challenge)
			}
			if tt.want == http.StatusUnauthorized && r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type = %q; want application/problem+json", r.header.Get("Content-Type"))
			}
		})
	}
	for _, rt := range routes {
		if r := e.do(rt.method, rt.path, "Bearer nope", "application/json", rt.body); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s with a wrong token = %d; want 401", rt.method, rt.path, r.status)
		}
	}
	if got := e.reg.List(); len(got) != 0 {
		t.Errorf("unauthorized requests created %d producers", len(got))
	}

	// A client needs admin scope: writing, reading, subscribing and
	// consuming every tag is not enough.
	_, sec, err := e.reg.Create(t.Context(), producer.Spec{Name: "busy", Tags: []string{">"},
		Scopes: producer.Scopes{Read: []string{">"}, Subscribe: []string{">"}, Consume: []string{">"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		r := e.do(rt.method, rt.path, "Bearer "+sec.APIKey, "application/json", rt.body)
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "admin scope") {
			t.Errorf("%s %s by a client without admin scope = %d %s; want 403 naming the admin scope", rt.method, rt.path, r.status, r.body)
		}
	}
	if got := e.reg.List(); len(got) != 1 {
		t.Errorf("refused requests changed the producers: %d; want 1", len(got))
	}
}

// Without an admin token the admin API is a client's with admin scope
// (before the gate it answered 404 naming ADMIN_TOKEN).
func TestAdminScopeWithoutToken(t *testing.T) {
	e := newEnv(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		for _, rt := range routes {
			if r := e.do(rt.method, rt.path, auth, "application/json", rt.body); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s with %q and no admin token = %d %s; want 401", rt.method, rt.path, auth, r.status, r.body)
			}
		}
	}
	var l list
	if r := e.call("GET", "/v1/producers", "", &l); r.status != http.StatusOK || len(l.Producers) != 1 || !l.Producers[0].Scopes.Admin {
		t.Errorf("GET /v1/producers by the admin client = %d %s; want 200 listing it with admin scope", r.status, r.body)
	}
	c := e.create(`{"name":"billing"}`)
	if r := e.call("DELETE", "/v1/producers/"+c.ID, "", nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE by the admin client = %d %s; want 204", r.status, r.body)
	}
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t, token)
	c := e.create(`{"name":"billing","tags":["BILLING.>"],"rate":{"per_second":100,"burst":200},"owns":["BILLING"]}`)
	if c.Credentials == nil || c.Credentials.Password == "" || !strings.HasPrefix(c.Credentials.APIKey, "esk_") || c.Credentials.JWTSecret == "" {
		t.Fatalf("credentials = %+v; want password, api key and jwt secret", c.Credentials)
	}
	want := view{
		ID: c.ID, Name: "billing", Enabled: true, Tags: []string{"BILLING.>"}, Scopes: noScopes, Owns: []string{"BILLING"}, Owned: []string{"BILLING"},
		Rate: producer.Rate{PerSecond: 100, Burst: 200}, CreatedAt: c.CreatedAt,
		APIKeys: []keyView{{Prefix: c.Credentials.APIKey[:12], CreatedAt: c.CreatedAt}},
	}
	if diff := cmp.Diff(want, c.view); diff != "" {
		t.Errorf("create (-want +got):\n%s", diff)
	}
	stored, _ := e.reg.Get(c.ID)
	if r := e.call("POST", "/v1/producers", `{"name":"orders"}`, nil); r.status != http.StatusCreated {
		t.Fatalf("second create = %d %s", r.status, r.body)
	}

	// Reads never carry secrets or their hashes.
	secrets := []string{c.Credentials.Password, c.Credentials.APIKey, c.Credentials.JWTSecret, stored.Credentials.PasswordHash, stored.Credentials.APIKeys[0].SHA256,
		"password_hash", "sha256", "jwt_secret", "credentials"}
	var got view
	r := e.call("GET", "/v1/producers/"+c.ID, "", &got)
	if r.status != http.StatusOK {
		t.Fatalf("GET = %d %s", r.status, r.body)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET (-want +got):\n%s", diff)
	}
	var l list
	rl := e.call("GET", "/v1/producers", "", &l)
	if rl.status != http.StatusOK || len(l.Producers) != 2 || l.Producers[0].Name != "billing" || l.Producers[1].Name != "orders" {
		t.Errorf("GET /v1/producers = %d %s; want billing and orders", rl.status, rl.body)
	}
	for _, body := range [][]byte{r.body, rl.body} {
		for _, s := range secrets {
			if strings.Contains(string(body), s) {
				t.Errorf("a read answer holds %q: %s", s, body)
			}
		}
	}

	r = e.call("PATCH", "/v1/producers/"+c.ID, `{"name":"payments","tags":["BILLING.>","PAY.*"],"rate":{"per_second":5,"burst":0},"owns":["PAY"]}`, &got)
	if r.status != http.StatusOK || got.Name != "payments" || !cmp.Equal(got.Tags, []string{"BILLING.>", "PAY.*"}) || !cmp.Equal(got.Owned, []string{"PAY"}) || got.Rate.PerSecond != 5 {
		t.Errorf("PATCH = %d %s", r.status, r.body)
	}
	for _, tt := range []struct {
		path    string
		enabled bool
	}{{"/disable", false}, {"/enable", true}, {"/disable", false}} {
		if r := e.call("POST", "/v1/producers/"+c.ID+tt.path, "", &got); r.status != http.StatusOK || got.Enabled != tt.enabled {
			t.Errorf("POST %s = %d %s; want enabled %v", tt.path, r.status, r.body, tt.enabled)
		}
	}
	if r := e.call("PATCH", "/v1/producers/"+c.ID, `{"enabled":true}`, &got); r.status != http.StatusOK || !got.Enabled {
		t.Errorf("PATCH enabled = %d %s", r.status, r.body)
	}

	var rot created
	r = e.call("POST", "/v1/producers/"+c.ID+"/rotate", `{"credential":"api_key"}`, &rot)
	if r.status != http.StatusOK || rot.Credentials == nil || !strings.HasPrefix(rot.Credentials.APIKey, "esk_") || rot.Credentials.Password != "" || rot.Credentials.JWTSecret != "" {
		t.Fatalf("rotate api_key = %d %s; want only a new api key", r.status, r.body)
	}
	if _, ok := e.reg.ByAPIKey(producer.HashKey(c.Credentials.APIKey)); ok {
		t.Error("the old API key still finds the producer")
	}
	if len(rot.APIKeys) != 1 || rot.APIKeys[0].Prefix != rot.Credentials.APIKey[:12] {
		t.Errorf("api_keys after rotation = %+v", rot.APIKeys)
	}
	for _, cred := range []string{"password", "jwt_secret"} {
		if r := e.call("POST", "/v1/producers/"+c.ID+"/rotate", `{"credential":"`+cred+`"}`, &rot); r.status != http.StatusOK {
			t.Errorf("rotate %s = %d %s", cred, r.status, r.body)
		}
	}
	if !e.reg.CheckPassword(mustGet(t, e.reg, c.ID), rot.Credentials.Password) {
		t.Error("the rotated password does not check")
	}

	if r := e.call("DELETE", "/v1/producers/"+c.ID, "", nil); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("DELETE = %d %s; want 204", r.status, r.body)
	}
	for _, rt := range []struct{ method, path, body string }{
		{"GET", "", ""}, {"DELETE", "", ""}, {"PATCH", "", `{"name":"x"}`},
		{"POST", "/disable", ""}, {"POST", "/rotate", `{"credential":"password"}`},
	} {
		if r := e.call(rt.method, "/v1/producers/"+c.ID+rt.path, rt.body, nil); r.status != http.StatusNotFound {
			t.Errorf("%s %s after delete = %d %s; want 404", rt.method, rt.path, r.status, r.body)
		}
	}
	if _, ok := e.reg.Owner("PAY"); ok {
		t.Error("the deleted producer still owns PAY")
	}
}

// noScopes is how the API shows a client with no scope but writing.
var noScopes = scopes{Read: []string{}, Subscribe: []string{}, Consume: []string{}}

func TestScopes(t *testing.T) {
	e := newEnv(t, token)
	// A client given scopes writes nothing unless given tags too.
	c := e.create(`{"name":"dashboard","scopes":{"read":["BILLING.>","ORDERS.*"],"subscribe":["BILLING.>"]}}`)
	want := scopes{Read: []string{"BILLING.>", "ORDERS.*"}, Subscribe: []string{"BILLING.>"}, Consume: []string{}}
	if diff := cmp.Diff(want, c.Scopes); diff != "" || len(c.Tags) != 0 {
		t.Errorf("create with scopes: tags %v, scopes (-want +got):\n%s", c.Tags, diff)
	}
	stored := mustGet(t, e.reg, c.ID)
	if diff := cmp.Diff(producer.Scopes{Read: want.Read, Subscribe: want.Subscribe}, stored.Scopes); diff != "" {
		t.Errorf("registry scopes (-want +got):\n%s", diff)
	}
	var got view
	if r := e.call("GET", "/v1/producers/"+c.ID, "", &got); r.status != http.StatusOK || !cmp.Equal(want, got.Scopes) {
		t.Errorf("GET = %d %s; want the scopes", r.status, r.body)
	}
	var l list
	if r := e.call("GET", "/v1/producers", "", &l); r.status != http.StatusOK || len(l.Producers) != 1 || !cmp.Equal(want, l.Producers[0].Scopes) {
		t.Errorf("GET /v1/producers = %d %s; want the scopes", r.status, r.body)
	}
	// Without scopes a client writes every tag, as producers always did.
	if p := e.create(`{"name":"writer"}`); !cmp.Equal(p.Tags, []string{">"}) || !cmp.Equal(p.Scopes, noScopes) {
		t.Errorf("create without scopes = tags %v, scopes %+v; want [>] and none", p.Tags, p.Scopes)
	}

	// PATCH replaces the scopes when given, and keeps them otherwise.
	r := e.call("PATCH", "/v1/producers/"+c.ID, `{"scopes":{"consume":["BILLING.*"],"admin":true}}`, &got)
	want = scopes{Read: []string{}, Subscribe: []string{}, Consume: []string{"BILLING.*"}, Admin: true}
	if r.status != http.StatusOK || !cmp.Equal(want, got.Scopes) {
		t.Errorf("PATCH scopes = %d %s; want %+v", r.status, r.body, want)
	}
	if r := e.call("PATCH", "/v1/producers/"+c.ID, `{"name":"board"}`, &got); r.status != http.StatusOK || !cmp.Equal(want, got.Scopes) {
		t.Errorf("PATCH name = %d %s; want the scopes kept", r.status, r.body)
	}
	if r := e.call("PATCH", "/v1/producers/"+c.ID, `{"scopes":null}`, &got); r.status != http.StatusOK || !cmp.Equal(want, got.Scopes) {
		t.Errorf("PATCH scopes null = %d %s; want the scopes kept", r.status, r.body)
	}
	if r := e.call("PATCH", "/v1/producers/"+c.ID, `{"scopes":{}}`, &got); r.status != http.StatusOK || !cmp.Equal(noScopes, got.Scopes) {
		t.Errorf("PATCH scopes {} = %d %s; want none", r.status, r.body)
	}
}

func mustGet(t *testing.T, reg *producer.Registry, id string) *producer.Producer {
	t.Helper()
	p, ok := reg.Get(id)
	if !ok {
		t.Fatalf("Get(%s) found nothing", id)
	}
	return p
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, token)
	owner := e.create(`{"name":"billing","owns":["BILLING"]}`)
	other := e.create(`{"name":"orders"}`)
	tests := []struct {
		name, method, path, contentType, body string
		want                                  int
		pointers                              []string
	}{
		{"unknown member", "POST", "/v1/producers", "application/json", `{"name":"a","nme":"b"}`, 422, []string{"/nme"}},
		{"unknown nested member", "POST", "/v1/producers", "application/json", `{"name":"a","rate":{"per_sec":1}}`, 422, []string{"/rate/per_sec"}},
		{"wrong type", "POST", "/v1/producers", "application/json", `{"name":"a","tags":"BILLING.>"}`, 422, []string{"/tags"}},
		{"case-mismatched member", "POST", "/v1/producers", "application/json", `{"Name":"a"}`, 422, []string{"/Name"}},
		{"duplicate member", "POST", "/v1/producers", "application/json", `{"name":"a","name":"b"}`, 400, nil},
		{"trailing data", "POST", "/v1/producers", "application/json", `{"name":"a"} {}`, 400, nil},
		{"not json", "POST", "/v1/producers", "application/json", `name=a`, 400, nil},
		{"empty body", "POST", "/v1/producers", "application/json", ``, 400, nil},
		{"form body", "POST", "/v1/producers", "application/x-www-form-urlencoded", `name=a`, 415, nil},
		{"too large", "POST", "/v1/producers", "application/json", `{"name":"` + strings.Repeat("a", maxRequest) + `"}`, 413, nil},
		{"invalid fields", "POST", "/v1/producers", "application/json", `{"name":"a b","tags":["X.>","X.>.Y"],"rate":{"per_second":1,"burst":-1}}`, 422, []string{"/name", "/tags/1", "/rate/burst"}},
		{"name taken", "POST", "/v1/producers", "application/json", `{"name":"BILLING"}`, 409, []string{"/name"}},
		{"category owned", "POST", "/v1/producers", "application/json", `{"name":"thief","owns":["BILLING"]}`, 409, []string{"/owns"}},
		{"patch unknown id", "PATCH", "/v1/producers/prd_0123456789abcdef0123456789abcdef", "application/json", `{"name":"x"}`, 404, nil},
		{"patch malformed id", "PATCH", "/v1/producers/nope", "application/json", `{"name":"x"}`, 404, nil},
		{"patch invalid", "PATCH", "/v1/producers/" + other.ID, "application/json", `{"tags":["a..b"]}`, 422, []string{"/tags/0"}},
		{"invalid scopes", "POST", "/v1/producers", "application/json", `{"name":"a","scopes":{"read":["A..B"],"subscribe":["X.>","X.>.Y"],"consume":[""]}}`, 422,
			[]string{"/scopes/read/0", "/scopes/subscribe/1", "/scopes/consume/0"}},
		{"unknown scope", "POST", "/v1/producers", "application/json", `{"name":"a","scopes":{"write":["A.>"]}}`, 422, []string{"/scopes/write"}},
		{"scope of the wrong type", "POST", "/v1/producers", "application/json", `{"name":"a","scopes":{"admin":"yes"}}`, 422, []string{"/scopes/admin"}},
		{"patch invalid scopes", "PATCH", "/v1/producers/" + other.ID, "application/json", `{"scopes":{"read":["a b"]}}`, 422, []string{"/scopes/read/0"}},
		{"patch null tags", "PATCH", "/v1/producers/" + other.ID, "application/json", `{"tags":null,"owns":null}`, 200, nil},
		{"patch unknown member", "PATCH", "/v1/producers/" + other.ID, "application/json", `{"id":"prd_x"}`, 422, []string{"/id"}},
		{"patch name taken", "PATCH", "/v1/producers/" + other.ID, "application/json", `{"name":"billing"}`, 409, []string{"/name"}},
		{"patch category owned", "PATCH", "/v1/producers/" + other.ID, "application/json", `{"owns":["BILLING"]}`, 409, []string{"/owns"}},
		{"rotate unknown credential", "POST", "/v1/producers/" + other.ID + "/rotate", "application/json", `{"credential":"token"}`, 422, []string{"/credential"}},
		{"rotate nothing", "POST", "/v1/producers/" + other.ID + "/rotate", "application/json", `{}`, 422, []string{"/credential"}},
		{"nats-config bad flag", "GET", "/v1/producers/nats-config?direct=maybe", "", "", 400, []string{"direct"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, "Bearer "+token, tt.contentType, tt.body)
			if r.status != tt.want {
				t.Fatalf("%s %s %.80s = %d %s; want %d", tt.method, tt.path, tt.body, r.status, r.body, tt.want)
			}
			if tt.want < 400 {
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q; want application/problem+json", ct)
			}
			var p problemBody
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.pointers, p.pointers()); diff != "" {
				t.Errorf("pointers (-want +got):\n%s\n%s", diff, r.body)
			}
			if tt.name == "category owned" || tt.name == "patch category owned" {
				if p.Owner != owner.ID {
					t.Errorf("owner = %q; want %q", p.Owner, owner.ID)
				}
			}
		})
	}
	if got := len(e.reg.List()); got != 2 {
		t.Errorf("%d producers after refused requests; want 2", got)
	}
}
