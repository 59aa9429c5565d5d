package access_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/access/accesstest"
	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
)

const adminToken = "admin-token-for-gate-tests-0123456789"

// gated is a router behind a real gate on a real NATS server, routed as a
// process routes it. Its handlers answer with the principal the gate put
// in the request's context.
type gated struct {
	t    *testing.T
	gate *access.Gate
	js   jetstream.JetStream
	url  string
}

// newGated runs a gate with cfg until the test ends, lets before register
// clients, and serves a router behind it.
func newGated(t *testing.T, cfg access.Config, before func(*producer.Registry)) *gated {
	t.Helper()
	js, err := stream.JetStream(natstest.Start(t).Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gate := accesstest.Start(t, js, cfg)
	if before != nil {
		before(gate.Registry())
	}
	r := accesstest.Router(gate)
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(access.From(r.Context()))
	}
	r.Get("/healthz", echo)                  // public
	r.Get("/metrics", echo)                  // metrics
	r.Get("/v1/events", echo)                // read
	r.Post("/v1/events", echo)               // write
	r.Get("/v1/stream", echo)                // read, access tokens accepted
	r.Get("/v1/consumers", echo)             // consume
	r.Post("/v1/subscriptions", echo)        // subscribe
	r.Get("/v1/producers", echo)             // admin
	r.Get("/v1/not-in-the-table", echo)      // no rule
	r.Get("/v1/events/{id}/not-in-it", echo) // no rule either
	gate.Tokens().Mount(r)
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	return &gated{t: t, gate: gate, js: js, url: hs.URL}
}

// answer is what a test reads of an answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// principal decodes the principal a handler answered with.
func (a answer) principal(t *testing.T) access.Principal {
	t.Helper()
	var p access.Principal
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("decode principal %s: %v", a.body, err)
	}
	return p
}

func (a answer) detail(t *testing.T) string {
	t.Helper()
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(a.body, &p)
	return p.Detail
}

// do sends a request with the given Authorization value (none when
// empty) through client (http.DefaultClient when nil).
func (g *gated) do(client *http.Client, method, path, authorization, body string, header ...string) answer {
	g.t.Helper()
	req, err := http.NewRequestWithContext(g.t.Context(), method, g.url+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// client registers a client and returns it with its secrets.
func client(t *testing.T, reg *producer.Registry, spec producer.Spec) (producer.Producer, producer.Secrets) {
	t.Helper()
	p, sec, err := reg.Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("Create(%+v) = %v", spec, err)
	}
	return p, sec
}

func basic(id, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+password))
}

// bearerJWT returns the Authorization value of a fresh HS256 token of
// client id signed with its jwt_secret.
func bearerJWT(t *testing.T, id, secret string) string {
	t.Helper()
	key, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": id, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": uuid.NewString(),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// Every credential of a client authenticates; anything else is a 401
// with a challenge, and the handler never runs.
func TestGateAuthenticates(t *testing.T) {
	var p producer.Producer
	var sec producer.Secrets
	g := newGated(t, access.Config{Auth: access.AuthClients}, func(reg *producer.Registry) {
		p, sec = client(t, reg, producer.Spec{Name: "billing", Tags: []string{"BILLING.>"}})
	})
	for _, tt := range []struct{ name, authorization string }{
		{"basic", basic(p.ID, sec.Password)},
		{"api key", "Bearer " + sec.APIKey},
		{"jwt", bearerJWT(t, p.ID, sec.JWTSecret)},
	} {
		a := g.do(nil, "POST", "/v1/events", tt.authorization, "{}")
		if a.status != http.StatusOK {
			t.Fatalf("%s: POST /v1/events = %d %s; want 200", tt.name, a.status, a.body)
		}
		want := access.Principal{ID: p.ID, Write: []string{"BILLING.>"}}
		if diff := cmp.Diff(want, a.principal(t)); diff != "" {
			t.Errorf("%s: principal (-want +got):\n%s", tt.name, diff)
		}
	}

	tests := []struct {
		name, authorization string
		challenge           string // in WWW-Authenticate
	}{
		{"none", "", `Basic realm="eventsync"`},
		{"none offers bearer too", "", `Bearer realm="eventsync"`},
		{"wrong password", basic(p.ID, "wrong"), `Basic realm="eventsync"`},
		{"unknown client", basic("prd_0123456789abcdef0123456789abcdef", sec.Password), `Basic realm="eventsync"`},
		{"wrong api key", "Bearer esk_" + strings.Repeat("A", 43), `error="invalid_token"`},
		{"jwt of another secret", bearerJWT(t, p.ID, base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))), `error="invalid_token"`},
		{"unknown scheme", "Digest x", `Basic realm="eventsync"`},
		{"wrong admin token", "Bearer " + adminToken, `error="invalid_token"`}, // none is set
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := g.do(nil, "POST", "/v1/events", tt.authorization, "{}")
			if a.status != http.StatusUnauthorized || a.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("POST with %q = %d %s %s; want a 401 problem", tt.authorization, a.status, a.header.Get("Content-Type"), a.body)
			}
			if got := a.header.Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q; want it to contain %q", got, tt.challenge)
			}
		})
	}

	// A disabled client's right credentials are forbidden, not
	// unauthenticated.
	if _, err := g.gate.Registry().SetEnabled(t.Context(), p.ID, false); err != nil {
		t.Fatal(err)
	}
	if a := g.do(nil, "POST", "/v1/events", "Bearer "+sec.APIKey, "{}"); a.status != http.StatusForbidden || !strings.Contains(a.detail(t), "disabled") {
		t.Errorf("POST by a disabled client = %d %s; want 403 naming it disabled", a.status, a.body)
	}
}

// Each route needs its scope from the table: a client lacking it gets a
// 403 naming the scope; a route the table lacks is refused to everyone;
// public routes need nothing; unknown paths reach the router's 404.
func TestGateScopes(t *testing.T) {
	keys := map[string]string{} // client name → Authorization
	g := newGated(t, access.Config{Auth: access.AuthClients, AdminToken: adminToken}, func(reg *producer.Registry) {
		for _, s := range []producer.Spec{
			{Name: "writer", Tags: []string{"BILLING.>"}},
			{Name: "reader", Scopes: producer.Scopes{Read: []string{"BILLING.>"}}},
			{Name: "subscriber", Scopes: producer.Scopes{Subscribe: []string{">"}}},
			{Name: "consumer", Scopes: producer.Scopes{Consume: []string{"A.*"}}},
			{Name: "root", Scopes: producer.Scopes{Admin: true}},
		} {
			_, sec := client(t, reg, s)
			keys[s.Name] = "Bearer " + sec.APIKey
		}
	})
	keys["admin token"] = "Bearer " + adminToken
	routes := []struct{ method, path, scope string }{
		{"POST", "/v1/events", "write"},
		{"GET", "/v1/events", "read"},
		{"GET", "/v1/stream", "read"},
		{"POST", "/v1/subscriptions", "subscribe"},
		{"GET", "/v1/consumers", "consume"},
		{"GET", "/v1/producers", "admin"},
	}
	allowed := map[string][]string{
		"writer":      {"write"},
		"reader":      {"read"},
		"subscriber":  {"subscribe"},
		"consumer":    {"consume"},
		"root":        {"write", "read", "subscribe", "consume", "admin"},
		"admin token": {"write", "read", "subscribe", "consume", "admin"},
	}
	for who, scopes := range allowed {
		for _, rt := range routes {
			a := g.do(nil, rt.method, rt.path, keys[who], "")
			want := http.StatusForbidden
			for _, s := range scopes {
				if s == rt.scope {
					want = http.StatusOK
				}
			}
			if a.status != want {
				t.Errorf("%s: %s %s = %d %s; want %d", who, rt.method, rt.path, a.status, a.body, want)
			}
			if want == http.StatusForbidden && !strings.Contains(a.detail(t), "needs the "+rt.scope+" scope") {
				t.Errorf("%s: %s %s detail %q; want it to name the %s scope", who, rt.method, rt.path, a.detail(t), rt.scope)
			}
		}
	}
	if p := g.do(nil, "GET", "/v1/producers", keys["admin token"], "").principal(t); p.ID != access.AdminID || !p.Admin {
		t.Errorf("admin token principal = %+v; want %s with admin scope", p, access.AdminID)
	}
	if p := g.do(nil, "GET", "/v1/events", keys["reader"], "").principal(t); !cmp.Equal(p.Read, []string{"BILLING.>"}) || p.Admin || len(p.Write) != 0 {
		t.Errorf("reader principal = %+v; want read BILLING.> only", p)
	}

	// Routes missing from the table are refused, even to the admin.
	for _, path := range []string{"/v1/not-in-the-table", "/v1/events/x/not-in-it"} {
		for _, who := range []string{"", "admin token"} {
			if a := g.do(nil, "GET", path, keys[who], ""); a.status != http.StatusForbidden || !strings.Contains(a.detail(t), "no access rule") {
				t.Errorf("GET %s as %q = %d %s; want 403 with no access rule", path, who, a.status, a.body)
			}
		}
	}
	// Public routes need no credential.
	if a := g.do(nil, "GET", "/healthz", "", ""); a.status != http.StatusOK {
		t.Errorf("GET /healthz without credentials = %d; want 200", a.status)
	}
	// Unknown paths and methods are the router's.
	if a := g.do(nil, "GET", "/nothing", "", ""); a.status != http.StatusNotFound {
		t.Errorf("GET /nothing = %d; want 404", a.status)
	}
	if a := g.do(nil, "DELETE", "/v1/events", "", ""); a.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /v1/events = %d; want 405", a.status)
	}
}

// With authentication off every request is the unrestricted principal,
// but a route the table lacks is still refused.
func TestGateAuthNone(t *testing.T) {
	g := newGated(t, access.Config{Auth: access.AuthNone}, nil)
	a := g.do(nil, "GET", "/v1/events", "", "")
	if a.status != http.StatusOK || !a.principal(t).Admin {
		t.Errorf("GET /v1/events with auth off = %d %s; want 200 as the unrestricted principal", a.status, a.body)
	}
	if a := g.do(nil, "GET", "/metrics", "", ""); a.status != http.StatusOK {
		t.Errorf("GET /metrics with auth off = %d; want 200", a.status)
	}
	if a := g.do(nil, "GET", "/v1/producers", "", ""); a.status != http.StatusNotFound || !strings.Contains(a.detail(t), "ADMIN_TOKEN") {
		t.Errorf("GET /v1/producers with auth off and no admin token = %d %q; want 404 naming ADMIN_TOKEN", a.status, a.detail(t))
	}
	if a := g.do(nil, "GET", "/v1/not-in-the-table", "", ""); a.status != http.StatusForbidden {
		t.Errorf("GET a route without a rule with auth off = %d; want 403", a.status)
	}
}

// Failed authentications are limited per client address: the 11th bad
// attempt from one address is a 429 with Retry-After (before any password
// check; that no password is checked is tested in pkg/auth); other
// addresses are not affected; X-Forwarded-For names the client only from
// a trusted proxy.
func TestGateThrottlesFailures(t *testing.T) {
	newGate := func(t *testing.T, trusted string) (*gated, string) {
		var proxies auth.Prefixes
		if err := proxies.Set(trusted); err != nil {
			t.Fatal(err)
		}
		var id string
		var password string
		g := newGated(t, access.Config{
			Auth:           access.AuthClients,
			Throttle:       auth.ThrottleConfig{MaxFailures: 10, Window: time.Minute, CoolDown: time.Minute},
			TrustedProxies: proxies,
		}, func(reg *producer.Registry) {
			p, sec := client(t, reg, producer.Spec{Name: "a"})
			id, password = p.ID, sec.Password
		})
		return g, id + ":" + password
	}
	// from returns a client whose connections come from the given
	// loopback address.
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	send := func(g *gated, c *http.Client, creds, password, forwardedFor string) answer {
		id, _, _ := strings.Cut(creds, ":")
		var h []string
		if forwardedFor != "" {
			h = []string{"X-Forwarded-For", forwardedFor}
		}
		return g.do(c, "POST", "/v1/events", basic(id, password), "{}", h...)
	}
	right := func(creds string) string { _, pw, _ := strings.Cut(creds, ":"); return pw }
	fail10 := func(t *testing.T, g *gated, c *http.Client, creds string, forwardedFor func(i int) string) {
		t.Helper()
		for i := range 10 {
			if a := send(g, c, creds, "wrong", forwardedFor(i)); a.status != http.StatusUnauthorized {
				t.Fatalf("bad attempt %d = %d %s; want 401", i+1, a.status, a.body)
			}
		}
	}
	spoofed := func(i int) string { return "198.51.100." + string(rune('0'+i)) }

	t.Run("per address", func(t *testing.T) {
		g, creds := newGate(t, "")
		one, two := from("127.0.0.1"), from("127.0.0.2")
		fail10(t, g, one, creds, func(int) string { return "" })
		for _, password := range []string{"wrong", right(creds)} {
			a := send(g, one, creds, password, "")
			if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "60" || !strings.Contains(string(a.body), "throttled") {
				t.Errorf("11th attempt = %d Retry-After %q %s; want 429 with Retry-After 60", a.status, a.header.Get("Retry-After"), a.body)
			}
		}
		if a := send(g, two, creds, right(creds), ""); a.status != http.StatusOK {
			t.Errorf("another address = %d %s; want 200", a.status, a.body)
		}
		if a := send(g, two, creds, "wrong", ""); a.status != http.StatusUnauthorized {
			t.Errorf("another address, bad password = %d; want 401", a.status)
		}
	})
	t.Run("X-Forwarded-For without a trusted proxy", func(t *testing.T) {
		g, creds := newGate(t, "")
		c := from("127.0.0.1")
		fail10(t, g, c, creds, spoofed)
		if a := send(g, c, creds, right(creds), "203.0.113.1"); a.status != http.StatusTooManyRequests {
			t.Errorf("a fresh X-Forwarded-For = %d; want 429 (the header is not believed)", a.status)
		}
	})
	t.Run("X-Forwarded-For from a trusted proxy", func(t *testing.T) {
		g, creds := newGate(t, "127.0.0.1")
		c := from("127.0.0.1")
		fail10(t, g, c, creds, func(i int) string { return spoofed(i) + ", 203.0.113.1" })
		if a := send(g, c, creds, right(creds), "203.0.113.1"); a.status != http.StatusTooManyRequests {
			t.Errorf("the throttled client = %d; want 429", a.status)
		}
		if a := send(g, c, creds, right(creds), "203.0.113.2"); a.status != http.StatusOK {
			t.Errorf("another client through the proxy = %d %s; want 200", a.status, a.body)
		}
		if a := send(g, from("127.0.0.2"), creds, right(creds), "203.0.113.1"); a.status != http.StatusOK {
			t.Errorf("the header from an untrusted peer = %d %s; want 200 (the peer is the client)", a.status, a.body)
		}
	})
}

// tokenAnswer is the body of POST /v1/tokens.
type tokenAnswer struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
	Read      []string  `json:"read"`
	Param     string    `json:"param"`
}

func TestGateAccessTokens(t *testing.T) {
	var reader producer.Producer
	var key, writerKey string
	g := newGated(t, access.Config{Auth: access.AuthClients, AdminToken: adminToken}, func(reg *producer.Registry) {
		var sec producer.Secrets
		reader, sec = client(t, reg, producer.Spec{Name: "reader", Scopes: producer.Scopes{Read: []string{"BILLING.>", "ORDERS.*"}}})
		key = "Bearer " + sec.APIKey
		_, sec = client(t, reg, producer.Spec{Name: "writer"})
		writerKey = "Bearer " + sec.APIKey
	})
	issue := func(authorization, body string) (answer, tokenAnswer) {
		t.Helper()
		a := g.do(nil, "POST", "/v1/tokens", authorization, body)
		var ta tokenAnswer
		if a.status == http.StatusCreated {
			if err := json.Unmarshal(a.body, &ta); err != nil {
				t.Fatal(err)
			}
		}
		return a, ta
	}

	// Without a body: every read pattern of the client, for 5 minutes.
	a, all := issue(key, "")
	if a.status != http.StatusCreated || !strings.HasPrefix(all.Token, access.TokenPrefix) || all.TokenType != "Bearer" || all.Param != access.TokenParam ||
		!cmp.Equal(all.Read, []string{"BILLING.>", "ORDERS.*"}) || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /v1/tokens = %d %s; want 201 with a token of every read pattern, not stored", a.status, a.body)
	}
	if d := time.Until(all.ExpiresAt); d <= 0 || d > access.DefaultTokenTTL {
		t.Errorf("expires_at %v; want within the default lifetime", all.ExpiresAt)
	}
	_, narrow := issue(key, `{"read":["BILLING.EU.*"],"expires_in":60}`)
	if !cmp.Equal(narrow.Read, []string{"BILLING.EU.*"}) {
		t.Errorf("token read = %v; want [BILLING.EU.*]", narrow.Read)
	}

	// The token opens the live tail, in the query or as a bearer, as the
	// client limited to the token's patterns.
	for _, tt := range []struct{ name, path, authorization string }{
		{"query", "/v1/stream?" + access.TokenParam + "=" + url.QueryEscape(narrow.Token), ""},
		{"bearer", "/v1/stream", "Bearer " + narrow.Token},
	} {
		a := g.do(nil, "GET", tt.path, tt.authorization, "")
		if a.status != http.StatusOK {
			t.Fatalf("%s: GET /v1/stream with a token = %d %s; want 200", tt.name, a.status, a.body)
		}
		want := access.Principal{ID: reader.ID, Read: []string{"BILLING.EU.*"}, Token: true}
		if diff := cmp.Diff(want, a.principal(t)); diff != "" {
			t.Errorf("%s: principal (-want +got):\n%s", tt.name, diff)
		}
	}
	// Only on routes that accept one.
	if a := g.do(nil, "GET", "/v1/events?"+access.TokenParam+"="+url.QueryEscape(all.Token), "", ""); a.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/events with a token in the query = %d; want 401 (not accepted there)", a.status)
	}
	if a := g.do(nil, "GET", "/v1/events", "Bearer "+all.Token, ""); a.status != http.StatusUnauthorized || !strings.Contains(a.detail(t), "live tail only") {
		t.Errorf("GET /v1/events with a token as bearer = %d %s; want 401 naming the live tail", a.status, a.body)
	}
	if a := g.do(nil, "POST", "/v1/tokens", "Bearer "+all.Token, ""); a.status != http.StatusUnauthorized {
		t.Errorf("POST /v1/tokens with a token = %d; want 401 (a token makes no tokens)", a.status)
	}
	// Unknown and expired tokens are refused.
	expired := access.TokenPrefix + "expired"
	kv, err := g.js.KeyValue(t.Context(), stream.TokensBucket)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(expired))
	rec := `{"client":"` + reader.ID + `","read":[">"],"expires":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `"}`
	if _, err := kv.Put(t.Context(), hex.EncodeToString(sum[:]), []byte(rec)); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{access.TokenPrefix + "unknown", expired} {
		a := g.do(nil, "GET", "/v1/stream?"+access.TokenParam+"="+tok, "", "")
		if a.status != http.StatusUnauthorized || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("GET /v1/stream with %s = %d %q; want 401 invalid_token", tok, a.status, a.header.Get("WWW-Authenticate"))
		}
	}

	// A token reads no more than its client may now: narrowing the client
	// narrows its tokens, disabling it refuses them.
	reg := g.gate.Registry()
	if _, err := reg.Update(t.Context(), reader.ID, func(p *producer.Producer) error {
		p.Scopes.Read = []string{"ORDERS.*"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a = g.do(nil, "GET", "/v1/stream", "Bearer "+all.Token, "")
	if p := a.principal(t); a.status != http.StatusOK || !cmp.Equal(p.Read, []string{"ORDERS.*"}) {
		t.Errorf("token of every pattern after narrowing the client = %d %s; want read [ORDERS.*]", a.status, a.body)
	}
	if a := g.do(nil, "GET", "/v1/stream", "Bearer "+narrow.Token, ""); a.status != http.StatusForbidden {
		t.Errorf("token of BILLING.EU.* after the client lost BILLING = %d %s; want 403 (nothing left to read)", a.status, a.body)
	}
	if _, err := reg.SetEnabled(t.Context(), reader.ID, false); err != nil {
		t.Fatal(err)
	}
	if a := g.do(nil, "GET", "/v1/stream", "Bearer "+all.Token, ""); a.status != http.StatusUnauthorized {
		t.Errorf("token of a disabled client = %d %s; want 401", a.status, a.body)
	}
	if _, err := reg.SetEnabled(t.Context(), reader.ID, true); err != nil {
		t.Fatal(err)
	}

	// Requests for tokens are validated, and limited to the client's read
	// patterns.
	for _, tt := range []struct {
		name, authorization, body string
		status                    int
		pointer                   string
	}{
		{"pattern outside the read patterns", key, `{"read":["BILLING.>"]}`, http.StatusForbidden, ""},
		{"wider pattern", key, `{"read":[">"]}`, http.StatusForbidden, ""},
		{"invalid pattern", key, `{"read":["A..B"]}`, http.StatusUnprocessableEntity, "/read/0"},
		{"too long", key, `{"expires_in":3601}`, http.StatusUnprocessableEntity, "/expires_in"},
		{"negative lifetime", key, `{"expires_in":-1}`, http.StatusUnprocessableEntity, "/expires_in"},
		{"unknown member", key, `{"reed":[]}`, http.StatusUnprocessableEntity, "/reed"},
		{"no read scope", writerKey, "", http.StatusForbidden, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := issue(tt.authorization, tt.body)
			if a.status != tt.status || (tt.pointer != "" && !strings.Contains(string(a.body), `"pointer":"`+tt.pointer+`"`)) {
				t.Errorf("POST /v1/tokens %s = %d %s; want %d at %q", tt.body, a.status, a.body, tt.status, tt.pointer)
			}
		})
	}
	// The admin token issues tokens of any pattern.
	if a, tok := issue("Bearer "+adminToken, `{"read":["ANY.>"]}`); a.status != http.StatusCreated {
		t.Errorf("POST /v1/tokens as admin = %d %s; want 201", a.status, a.body)
	} else if p := g.do(nil, "GET", "/v1/stream", "Bearer "+tok.Token, "").principal(t); p.ID != access.AdminID || !cmp.Equal(p.Read, []string{"ANY.>"}) || p.Admin {
		t.Errorf("admin's token principal = %+v; want admin reading ANY.> without admin scope", p)
	}
}

// With a secrets key, JWT secrets are sealed in the bucket and JWTs still
// authenticate.
func TestGateSealedJWTSecret(t *testing.T) {
	var p producer.Producer
	var sec producer.Secrets
	g := newGated(t, access.Config{Auth: access.AuthClients, SecretsKey: sealed.GenerateKey()}, func(reg *producer.Registry) {
		p, sec = client(t, reg, producer.Spec{Name: "billing"})
	})
	kv, err := g.js.KeyValue(t.Context(), stream.ProducersBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value()), sec.JWTSecret) || !strings.Contains(string(e.Value()), `"jwt_secret":"sealed:`) {
		t.Errorf("stored client %s; want its JWT secret sealed", e.Value())
	}
	if a := g.do(nil, "POST", "/v1/events", bearerJWT(t, p.ID, sec.JWTSecret), "{}"); a.status != http.StatusOK || a.principal(t).ID != p.ID {
		t.Errorf("POST with a JWT of a sealed secret = %d %s; want 200 as %s", a.status, a.body, p.ID)
	}
	// Rotating the secret seals the new one, and only it signs.
	_, rot, err := g.gate.Registry().Rotate(t.Context(), p.ID, producer.CredentialJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	if a := g.do(nil, "POST", "/v1/events", bearerJWT(t, p.ID, rot.JWTSecret), "{}"); a.status != http.StatusOK {
		t.Errorf("POST with a JWT of the rotated secret = %d %s; want 200", a.status, a.body)
	}
	if a := g.do(nil, "POST", "/v1/events", bearerJWT(t, p.ID, sec.JWTSecret), "{}"); a.status != http.StatusUnauthorized {
		t.Errorf("POST with a JWT of the old secret = %d; want 401", a.status)
	}
}

// TestGateAuthNoneKeepsAdminToken: without authentication every route is
// open, except that an admin token, when set, still guards the admin
// routes; a wrong admin token is named as such.
func TestGateAuthNoneKeepsAdminToken(t *testing.T) {
	g := newGated(t, access.Config{Auth: access.AuthNone, AdminToken: "the-admin-token"}, nil)
	if a := g.do(nil, "GET", "/v1/events", "", ""); a.status != http.StatusOK {
		t.Errorf("GET /v1/events with auth off = %d; want 200", a.status)
	}
	if a := g.do(nil, "GET", "/v1/producers", "", ""); a.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/producers with auth off and an admin token set, no credential = %d; want 401", a.status)
	}
	if a := g.do(nil, "GET", "/v1/producers", "Bearer the-admin-token", ""); a.status != http.StatusOK {
		t.Errorf("GET /v1/producers with the admin token = %d; want 200", a.status)
	}
}

// TestGateWrongAdminToken: a bearer token that is neither an API key nor
// a JWT is refused as what it most likely is, a wrong admin token.
func TestGateWrongAdminToken(t *testing.T) {
	g := newGated(t, access.Config{Auth: access.AuthClients, AdminToken: "the-admin-token"}, nil)
	a := g.do(nil, "GET", "/v1/producers", "Bearer not-the-admin-token", "")
	if a.status != http.StatusUnauthorized || !strings.Contains(a.detail(t), "neither the admin token") {
		t.Errorf("wrong admin token = %d %q; want 401 saying it is not the admin token", a.status, a.detail(t))
	}
}
