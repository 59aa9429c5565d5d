package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
)

// The real authenticator, registry and schema registry have their own tests
// (internal/auth, internal/producer, internal/schema) and an end-to-end test in the
// all-in-one; these fakes pin down what ingest does with their answers.

func unauthenticated(detail string) error {
	return &auth.Error{Kind: auth.ErrInvalidCredentials, Challenge: `Bearer realm="eventsync"`, Detail: detail}
}
func forbidden(detail string) error { return &auth.Error{Kind: auth.ErrDisabled, Detail: detail} }

// fakeAuth knows producers by bearer token.
type fakeAuth map[string]*producer.Producer

func (f fakeAuth) Authenticate(_ context.Context, authorization string) (*producer.Producer, error) {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return nil, unauthenticated("missing credentials")
	}
	p, ok := f[token]
	if !ok {
		return nil, unauthenticated("invalid credentials")
	}
	if !p.Enabled {
		return nil, forbidden("producer is disabled")
	}
	return p, nil
}

// fakeOwners is an in-memory owners table.
type fakeOwners struct {
	mu sync.Mutex
	m  map[string]string
}

func (f *fakeOwners) Owner(category string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.m[category]
	return o, ok
}

func (f *fakeOwners) Claim(_ context.Context, category, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.m[category]; ok {
		return o, nil
	}
	f.m[category] = id
	return id, nil
}

// fakeSchemas requires data.amount on BILLING events.
type fakeSchemas struct{}

func (fakeSchemas) Validate(category, _ string, data []byte) []schema.FieldError {
	if category != "BILLING" || strings.Contains(string(data), `"amount"`) {
		return nil
	}
	return []schema.FieldError{{Pointer: "/data", Detail: "missing property 'amount'"}}
}

func TestTrust(t *testing.T) {
	billing := &producer.Producer{ID: "prd_billing", Enabled: true, Tags: []string{"BILLING.>", "SHARED.*"}}
	other := &producer.Producer{ID: "prd_other", Enabled: true, Tags: []string{">"}, Rate: producer.Rate{PerSecond: 1, Burst: 2}}
	off := &producer.Producer{ID: "prd_off", Enabled: false, Tags: []string{">"}}
	owners := &fakeOwners{m: map[string]string{"BILLING": "prd_billing"}}
	h := newHarnessWith(t, Config{}, stream.Config{}, Trust{
		Auth:              fakeAuth{"b": billing, "o": other, "x": off},
		Owners:            owners,
		Schemas:           fakeSchemas{},
		Limits:            ratelimit.New(ratelimit.Rate{}),
		ClaimOnFirstWrite: true,
	})
	send := func(token, path, body string) (int, http.Header, problem.Problem) {
		t.Helper()
		req, _ := http.NewRequest("POST", h.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p problem.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, resp.Header, p
	}
	ev := func(tag, extra string) string {
		return `{"tag":"` + tag + `","message":"m"` + extra + `}`
	}
	tests := []struct {
		name, token, path, body string
		status                  int
		want                    string // in the detail
		pointer                 string
	}{
		{"no credentials", "", "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 401, "missing credentials", ""},
		{"bad credentials", "nope", "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 401, "invalid credentials", ""},
		{"disabled", "x", "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 403, "disabled", ""},
		{"tag not allowed", "b", "/v1/events", ev("AUTH.LOGIN", ""), 403, "may not publish tag AUTH.LOGIN", "/tag"},
		{"tag not allowed in batch", "b", "/v1/events", "[" + ev("BILLING.CHARGED", `,"data":{"amount":1}`) + "," + ev("AUTH.LOGIN", "") + "]", 403, "AUTH.LOGIN", "/1/tag"},
		{"owned category", "o", "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 423, "owned by producer prd_billing", "/category"},
		{"schema", "b", "/v1/events", ev("BILLING.CHARGED", `,"data":{"total":1}`), 422, "schema", "/data"},
		{"schema in batch", "b", "/v1/events", "[" + ev("BILLING.CHARGED", `,"data":{"amount":1}`) + "," + ev("BILLING.CHARGED", `,"data":{}`) + "]", 422, "schema", "/1/data"},
		{"schema without auth problems still checked on dry run", "b", "/v1/events:validate", ev("BILLING.CHARGED", ""), 422, "schema", "/data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, p := send(tt.token, tt.path, tt.body)
			if status != tt.status || !strings.Contains(p.Detail, tt.want) {
				t.Fatalf("POST = %d %q; want %d with %q", status, p.Detail, tt.status, tt.want)
			}
			if tt.pointer != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != tt.pointer) {
				t.Errorf("errors = %+v; want pointer %s", p.Errors, tt.pointer)
			}
			if status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if status == 423 && p.Owner != "prd_billing" {
				t.Errorf("423 owner = %q; want prd_billing", p.Owner)
			}
		})
	}
	if got := h.stored(t); len(got) != 0 {
		t.Fatalf("%d events published by refused requests", len(got))
	}

	// Dry runs check everything and publish nothing.
	if status, _, p := send("b", "/v1/events?dry_run=true", ev("BILLING.CHARGED", `,"data":{"amount":1}`)); status != 200 {
		t.Fatalf("dry run = %d %s; want 200", status, p.Detail)
	}
	if got := h.stored(t); len(got) != 0 {
		t.Fatalf("dry run published %d events", len(got))
	}

	// Accepted events carry their producer; the first writer of a category
	// claims it.
	if status, _, p := send("b", "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`)); status != 202 {
		t.Fatalf("POST = %d %s; want 202", status, p.Detail)
	}
	if status, _, p := send("o", "/v1/events", ev("SHARED.X", "")); status != 202 {
		t.Fatalf("first write to SHARED = %d %s; want 202", status, p.Detail)
	}
	if o, _ := owners.Owner("SHARED"); o != "prd_other" {
		t.Errorf("owner of SHARED = %q; want prd_other (claimed on first write)", o)
	}
	if status, _, _ := send("b", "/v1/events", ev("SHARED.X", "")); status != 423 {
		t.Errorf("second producer on SHARED = %d; want 423", status)
	}
	got := h.stored(t)
	if len(got) != 2 || got[0].Producer != "prd_billing" || got[1].Producer != "prd_other" {
		t.Errorf("stored = %+v; want two events stamped with their producers", got)
	}

	// prd_other may send 2 events at once, then 1 per second.
	status, hdr, p := send("o", "/v1/events", "["+ev("OTHER.A", "")+","+ev("OTHER.B", "")+"]")
	if status != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(p.Detail, "rate limit") {
		t.Errorf("over the rate = %d %q Retry-After %q; want 429 with Retry-After", status, p.Detail, hdr.Get("Retry-After"))
	}

	// The NATS request path authenticates the same way.
	msg := nats.NewMsg(stream.IngestSubject)
	msg.Data = []byte(ev("BILLING.CHARGED", `,"data":{"amount":2}`))
	reply, err := h.nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get("Nats-Service-Error-Code"); code != "401" {
		t.Errorf("NATS request without credentials: error code %q; want 401", code)
	}
	msg.Header.Set("Authorization", "Bearer b")
	if reply, err = h.nc.RequestMsg(msg, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get("Nats-Service-Error-Code"); code != "" {
		t.Errorf("NATS request with credentials: error %q %s", code, reply.Data)
	}
}
