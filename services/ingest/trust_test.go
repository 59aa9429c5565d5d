package ingest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
)

// The real gate, authenticator and registry have their own tests
// (pkg/access, pkg/auth, pkg/producer) and an end-to-end test in the
// all-in-one; these run ingest behind a real gate, with fakes for the
// owners and schemas where they pin down what ingest does with their
// answers.

// fakeSchemas requires data.amount on BILLING events.
type fakeSchemas struct{}

func (fakeSchemas) Validate(category, _ string, data []byte) []schema.FieldError {
	if category != "BILLING" || strings.Contains(string(data), `"amount"`) {
		return nil
	}
	return []schema.FieldError{{Pointer: "/data", Detail: "missing property 'amount'"}}
}

func TestTrust(t *testing.T) {
	h, gate := newGatedHarness(t, Config{}, func(g *access.Gate) Trust {
		return Trust{
			Auth:              g.Authenticator(),
			Clients:           g.Registry(),
			Owners:            g.Registry(),
			Schemas:           fakeSchemas{},
			Limits:            ratelimit.New(ratelimit.Rate{}),
			ClaimOnFirstWrite: true,
		}
	})
	// b, o and x are the clients' Authorization values.
	billing, b := createClient(t, gate, producer.Spec{Name: "billing", Tags: []string{"BILLING.>", "SHARED.*"}, Owns: []string{"BILLING"}})
	other, o := createClient(t, gate, producer.Spec{Name: "other", Rate: producer.Rate{PerSecond: 1, Burst: 2}})
	off, x := createClient(t, gate, producer.Spec{Name: "off"})
	if _, err := gate.Registry().SetEnabled(t.Context(), off.ID, false); err != nil {
		t.Fatal(err)
	}
	owners := gate.Registry()
	send := func(authorization, path, body string) (int, http.Header, problem.Problem) {
		t.Helper()
		req, _ := http.NewRequest("POST", h.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
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
	wrongKey := "Bearer esk_" + strings.Repeat("A", 43)
	tests := []struct {
		name, token, path, body string
		status                  int
		want                    string // in the detail
		pointer                 string
	}{
		{"no credentials", "", "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 401, "missing Authorization header", ""},
		{"bad credentials", wrongKey, "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 401, "invalid API key", ""},
		{"disabled", x, "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 403, "disabled", ""},
		{"tag not allowed", b, "/v1/events", ev("AUTH.LOGIN", ""), 403, "may not publish tag AUTH.LOGIN", "/tag"},
		{"tag not allowed in batch", b, "/v1/events", "[" + ev("BILLING.CHARGED", `,"data":{"amount":1}`) + "," + ev("AUTH.LOGIN", "") + "]", 403, "AUTH.LOGIN", "/1/tag"},
		{"owned category", o, "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`), 423, "owned by producer", "/category"},
		{"schema", b, "/v1/events", ev("BILLING.CHARGED", `,"data":{"total":1}`), 422, "schema", "/data"},
		{"schema in batch", b, "/v1/events", "[" + ev("BILLING.CHARGED", `,"data":{"amount":1}`) + "," + ev("BILLING.CHARGED", `,"data":{}`) + "]", 422, "schema", "/1/data"},
		{"schema without auth problems still checked on dry run", b, "/v1/events:validate", ev("BILLING.CHARGED", ""), 422, "schema", "/data"},
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
			if status == 423 && p.Owner != billing.ID {
				t.Errorf("423 owner = %q; want %s", p.Owner, billing.ID)
			}
		})
	}
	if got := h.stored(t); len(got) != 0 {
		t.Fatalf("%d events published by refused requests", len(got))
	}

	// Dry runs check everything and publish nothing.
	if status, _, p := send(b, "/v1/events?dry_run=true", ev("BILLING.CHARGED", `,"data":{"amount":1}`)); status != 200 {
		t.Fatalf("dry run = %d %s; want 200", status, p.Detail)
	}
	if got := h.stored(t); len(got) != 0 {
		t.Fatalf("dry run published %d events", len(got))
	}

	// Accepted events carry their producer; the first writer of a category
	// claims it.
	if status, _, p := send(b, "/v1/events", ev("BILLING.CHARGED", `,"data":{"amount":1}`)); status != 202 {
		t.Fatalf("POST = %d %s; want 202", status, p.Detail)
	}
	if status, _, p := send(o, "/v1/events", ev("SHARED.X", "")); status != 202 {
		t.Fatalf("first write to SHARED = %d %s; want 202", status, p.Detail)
	}
	if owner, _ := owners.Owner("SHARED"); owner != other.ID {
		t.Errorf("owner of SHARED = %q; want %s (claimed on first write)", owner, other.ID)
	}
	if status, _, _ := send(b, "/v1/events", ev("SHARED.X", "")); status != 423 {
		t.Errorf("second producer on SHARED = %d; want 423", status)
	}
	got := h.stored(t)
	if len(got) != 2 || got[0].Producer != billing.ID || got[1].Producer != other.ID {
		t.Errorf("stored = %+v; want two events stamped with their producers", got)
	}

	// prd_other may send 2 events at once, then 1 per second.
	status, hdr, p := send(o, "/v1/events", "["+ev("OTHER.A", "")+","+ev("OTHER.B", "")+"]")
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
	msg.Header.Set("Authorization", b)
	if reply, err = h.nc.RequestMsg(msg, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get("Nats-Service-Error-Code"); code != "" {
		t.Errorf("NATS request with credentials: error %q %s", code, reply.Data)
	}
}
