package schemas_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/access/accesstest"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
	"github.com/eventsync/eventsync/services/ingest/internal/schemas"
)

const token = "s3cret-admin-token"

// server serves the API over a registry on a fresh NATS server, behind a
// real access gate with authentication on and the given admin token, as a
// process routes it. before, when not nil, registers clients before the
// gate starts.
func server(t *testing.T, adminToken string, before ...func(*producer.Registry)) (*httptest.Server, *schema.Registry) {
	t.Helper()
	srv := natstest.Start(t)
	js, err := stream.JetStream(srv.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), stream.SchemasConfig(stream.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	gate := accesstest.Start(t, js, access.Config{Auth: access.AuthClients, AdminToken: adminToken})
	for _, f := range before {
		f(gate.Registry())
	}
	reg := schema.New(kv)
	r := accesstest.Router(gate)
	schemas.New(reg, log).Mount(r)
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return ts, reg
}

// result is what a test reads of a response.
type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the admin token (unless auth is given).
func do(t *testing.T, ts *httptest.Server, method, path, body string, header ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: res.StatusCode, header: res.Header, body: b}
}

// decode unmarshals a response body or fails the test.
func decode[T any](t *testing.T, res result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(res.body, &v); err != nil {
		t.Fatalf("decode %s: %v", res.body, err)
	}
	return v
}

// ignoreTime leaves updated_at out of comparisons; it is checked apart.
var ignoreTime = cmpopts.IgnoreFields(schema.Entry{}, "UpdatedAt")

func TestLifecycle(t *testing.T) {
	ts, _ := server(t, token)

	res := do(t, ts, "PUT", "/v1/schemas/ORDERS", `{"type": "object", "required": ["id"]}`, "Content-Type", "application/schema+json")
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v1/schemas/ORDERS" {
		t.Fatalf("PUT new = %d, Location %q: %s; want 201 at /v1/schemas/ORDERS", res.status, res.header.Get("Location"), res.body)
	}
	got := decode[schema.Entry](t, res)
	want := schema.Entry{Category: "ORDERS", Version: 1, Schema: json.RawMessage(`{"type":"object","required":["id"]}`)}
	if diff := cmp.Diff(want, got, ignoreTime); diff != "" || got.UpdatedAt.IsZero() {
		t.Errorf("PUT new body (-want +got):\n%s", diff)
	}

	res = do(t, ts, "PUT", "/v1/schemas/ORDERS", `{"type": "object", "pattern-ish": "<&>"}`)
	if res.status != http.StatusOK {
		t.Fatalf("PUT again = %d: %s; want 200", res.status, res.body)
	}
	if !strings.Contains(string(res.body), `"<&>"`) {
		t.Errorf("PUT again body = %s; want the schema as written", res.body)
	}
	v2 := decode[schema.Entry](t, res)
	if v2.Version != 2 {
		t.Errorf("PUT again version = %d; want 2", v2.Version)
	}

	res = do(t, ts, "GET", "/v1/schemas/ORDERS", "")
	if res.status != http.StatusOK {
		t.Fatalf("GET = %d: %s; want 200", res.status, res.body)
	}
	if diff := cmp.Diff(v2, decode[schema.Entry](t, res)); diff != "" {
		t.Errorf("GET (-want +got):\n%s", diff)
	}

	res = do(t, ts, "PUT", "/v1/schemas/ORDERS.EU/CREATED", `{"required": ["customer"]}`)
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v1/schemas/ORDERS.EU/CREATED" {
		t.Fatalf("PUT code = %d, Location %q: %s", res.status, res.header.Get("Location"), res.body)
	}
	res = do(t, ts, "GET", "/v1/schemas/ORDERS.EU/CREATED", "")
	want = schema.Entry{Category: "ORDERS.EU", Code: "CREATED", Version: 1, Schema: json.RawMessage(`{"required":["customer"]}`)}
	if diff := cmp.Diff(want, decode[schema.Entry](t, res), ignoreTime); diff != "" || res.status != http.StatusOK {
		t.Errorf("GET code = %d (-want +got):\n%s", res.status, diff)
	}

	res = do(t, ts, "GET", "/v1/schemas", "")
	type listing struct {
		Schemas []schema.Entry `json:"schemas"`
	}
	wantList := listing{Schemas: []schema.Entry{
		{Category: "ORDERS", Version: 2},
		{Category: "ORDERS.EU", Code: "CREATED", Version: 1},
	}}
	if diff := cmp.Diff(wantList, decode[listing](t, res), ignoreTime); diff != "" || res.status != http.StatusOK {
		t.Errorf("GET list = %d (-want +got):\n%s", res.status, diff)
	}
	if strings.Contains(string(res.body), `"schema"`) {
		t.Errorf("GET list = %s; want no schema documents", res.body)
	}

	res = do(t, ts, "DELETE", "/v1/schemas/ORDERS", "")
	if res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Errorf("DELETE = %d %s; want 204 without a body", res.status, res.body)
	}
	for _, method := range []string{"GET", "DELETE"} {
		res = do(t, ts, method, "/v1/schemas/ORDERS", "")
		if res.status != http.StatusNotFound || res.header.Get("Content-Type") != problem.ContentType {
			t.Errorf("%s after DELETE = %d %s; want a 404 problem", method, res.status, res.header.Get("Content-Type"))
		}
	}
	res = do(t, ts, "PUT", "/v1/schemas/ORDERS", `{}`)
	if v := decode[schema.Entry](t, res).Version; res.status != http.StatusCreated || v != 3 {
		t.Errorf("PUT after DELETE = %d, version %d; want 201, version 3", res.status, v)
	}
}

func TestEmptyList(t *testing.T) {
	ts, _ := server(t, token)
	res := do(t, ts, "GET", "/v1/schemas", "")
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"schemas":[]}` {
		t.Errorf("GET empty list = %d %s; want 200 {\"schemas\":[]}", res.status, res.body)
	}
}

func TestAuth(t *testing.T) {
	ts, _ := server(t, token)
	tests := []struct {
		name, authorization string
		status              int
		challenge           string
	}{
		{"none", "", http.StatusUnauthorized, `Bearer realm="eventsync"`},
		{"basic", "Basic YWRtaW46czNjcmV0", http.StatusUnauthorized, `Bearer realm="eventsync"`},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, `Bearer realm="eventsync"`},
		{"wrong", "Bearer s3cret-admin-tokeN", http.StatusUnauthorized, `error="invalid_token"`},
		{"prefix", "Bearer s3cret", http.StatusUnauthorized, `error="invalid_token"`},
		{"right", "Bearer " + token, http.StatusOK, ""},
		{"scheme case", "bearer " + token, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, ts, "GET", "/v1/schemas", "", "Authorization", tt.authorization)
			if res.status != tt.status {
				t.Fatalf("GET with %q = %d %s; want %d", tt.authorization, res.status, res.body, tt.status)
			}
			if got := res.header.Get("WWW-Authenticate"); tt.challenge == "" && got != "" || !strings.Contains(got, tt.challenge) {
				t.Errorf("GET with %q WWW-Authenticate = %q; want it to contain %q", tt.authorization, got, tt.challenge)
			}
			if tt.status == http.StatusUnauthorized && res.header.Get("Content-Type") != problem.ContentType {
				t.Errorf("GET with %q Content-Type = %q; want %q", tt.authorization, res.header.Get("Content-Type"), problem.ContentType)
			}
		})
	}
	// Unauthorized writes change nothing.
	res := do(t, ts, "PUT", "/v1/schemas/ORDERS", `{}`, "Authorization", "Bearer nope")
	if res.status != http.StatusUnauthorized {
		t.Fatalf("PUT with a wrong token = %d; want 401", res.status)
	}
	if res := do(t, ts, "GET", "/v1/schemas/ORDERS", ""); res.status != http.StatusNotFound {
		t.Errorf("GET after an unauthorized PUT = %d; want 404", res.status)
	}
}

// Without an admin token the schemas are managed by clients with admin
// scope (before the gate the API answered 404 naming ADMIN_TOKEN); other
// clients are refused with 403.
func TestAdminScopeWithoutToken(t *testing.T) {
	var admin, writer string
	ts, _ := server(t, "", func(reg *producer.Registry) {
		for _, c := range []struct {
			key  *string
			spec producer.Spec
		}{
			{&admin, producer.Spec{Name: "root", Scopes: producer.Scopes{Admin: true}}},
			{&writer, producer.Spec{Name: "writer", Scopes: producer.Scopes{Read: []string{">"}, Subscribe: []string{">"}, Consume: []string{">"}}, Tags: []string{">"}}},
		} {
			_, sec, err := reg.Create(t.Context(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			*c.key = "Bearer " + sec.APIKey
		}
	})
	for _, authorization := range []string{"", "Bearer ", "Bearer anything"} {
		if res := do(t, ts, "GET", "/v1/schemas", "", "Authorization", authorization); res.status != http.StatusUnauthorized {
			t.Errorf("GET with %q and no admin token = %d; want 401", authorization, res.status)
		}
	}
	res := do(t, ts, "PUT", "/v1/schemas/ORDERS", `{}`, "Authorization", writer)
	if p := decode[problem.Problem](t, res); res.status != http.StatusForbidden || !strings.Contains(p.Detail, "admin scope") {
		t.Errorf("PUT by a client without admin scope = %d %q; want 403 naming the admin scope", res.status, p.Detail)
	}
	if res := do(t, ts, "PUT", "/v1/schemas/ORDERS", `{}`, "Authorization", admin); res.status != http.StatusCreated {
		t.Errorf("PUT by a client with admin scope = %d %s; want 201", res.status, res.body)
	}
	if res := do(t, ts, "GET", "/v1/schemas/ORDERS", "", "Authorization", admin); res.status != http.StatusOK {
		t.Errorf("GET by a client with admin scope = %d %s; want 200", res.status, res.body)
	}
}

func TestBadRequests(t *testing.T) {
	ts, _ := server(t, token)
	tests := []struct {
		name         string
		method, path string
		body         string
		contentType  string
		status       int
		pointers     []string
	}{
		{"bad category", "PUT", "/v1/schemas/ORD*ERS", `{}`, "", http.StatusBadRequest, []string{"category"}},
		{"empty category token", "GET", "/v1/schemas/ORDERS..EU", "", "", http.StatusBadRequest, []string{"category"}},
		{"bad category with code", "DELETE", "/v1/schemas/OR%20DERS/CREATED", "", "", http.StatusBadRequest, []string{"category"}},
		{"code with a wildcard", "PUT", "/v1/schemas/ORDERS/%3E", `{}`, "", http.StatusBadRequest, []string{"code"}},
		{"dotted code", "GET", "/v1/schemas/ORDERS/A.B", "", "", http.StatusBadRequest, []string{"code"}},
		{"not JSON", "PUT", "/v1/schemas/ORDERS", `{"type":`, "", http.StatusBadRequest, nil},
		{"empty body", "PUT", "/v1/schemas/ORDERS", ``, "", http.StatusBadRequest, nil},
		{"wrong media type", "PUT", "/v1/schemas/ORDERS", `{}`, "text/plain", http.StatusUnsupportedMediaType, nil},
		{"too large", "PUT", "/v1/schemas/ORDERS", `{"description":"` + strings.Repeat("x", schemas.MaxBody) + `"}`, "", http.StatusRequestEntityTooLarge, nil},
		{"invalid schema", "PUT", "/v1/schemas/ORDERS", `{"properties":{"id":{"type":"strin"}}}`, "", http.StatusUnprocessableEntity, []string{"/properties/id/type", "/properties/id/type"}},
		{"remote ref", "PUT", "/v1/schemas/ORDERS/CREATED", `{"$ref":"https://example.com/order.json"}`, "", http.StatusUnprocessableEntity, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header []string
			if tt.contentType != "" {
				header = []string{"Content-Type", tt.contentType}
			}
			res := do(t, ts, tt.method, tt.path, tt.body, header...)
			if res.status != tt.status || res.header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("%s %s = %d %s %s; want a %d problem", tt.method, tt.path, res.status, res.header.Get("Content-Type"), res.body, tt.status)
			}
			p := decode[problem.Problem](t, res)
			var pointers []string
			for _, e := range p.Errors {
				pointers = append(pointers, e.Pointer)
			}
			if diff := cmp.Diff(tt.pointers, pointers); diff != "" {
				t.Errorf("%s %s error pointers (-want +got):\n%s", tt.method, tt.path, diff)
			}
			if p.Detail == "" {
				t.Errorf("%s %s problem has no detail", tt.method, tt.path)
			}
		})
	}
	if res := do(t, ts, "GET", "/v1/schemas", ""); !strings.Contains(string(res.body), `"schemas":[]`) {
		t.Errorf("GET list after bad requests = %s; want nothing stored", res.body)
	}
}

func TestRemoteRefDetail(t *testing.T) {
	ts, _ := server(t, token)
	res := do(t, ts, "PUT", "/v1/schemas/ORDERS", `{"properties":{"a":{"$ref":"http://169.254.169.254/latest"}}}`)
	p := decode[problem.Problem](t, res)
	want := `the schema cannot be used: it references "http://169.254.169.254/latest": schemas may reference only themselves and the standard meta-schemas`
	if res.status != http.StatusUnprocessableEntity || p.Detail != want {
		t.Errorf("PUT with a remote $ref = %d %q; want 422 %q", res.status, p.Detail, want)
	}
}

// TestAppliesToValidate checks that a schema stored through the API is
// what a running registry validates with.
func TestAppliesToValidate(t *testing.T) {
	ts, reg := server(t, token)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- reg.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()
	<-reg.Synced()

	if res := do(t, ts, "PUT", "/v1/schemas/ORDERS/CREATED", `{"type":"object","properties":{"total":{"type":"number"}}}`); res.status != http.StatusCreated {
		t.Fatalf("PUT = %d %s", res.status, res.body)
	}
	want := []schema.FieldError{{Pointer: "/data/total", Detail: "got string, want number (schema ORDERS.CREATED, keyword /properties/total/type)"}}
	end := time.Now().Add(time.Second)
	for {
		got := reg.Validate("ORDERS", "CREATED", []byte(`{"total":"12"}`))
		if cmp.Equal(want, got) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("Validate() = %v; want %v within a second of the PUT", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
