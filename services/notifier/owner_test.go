package notifier

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/access/accesstest"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/webhook"
)

// adminToken is the admin token of newAuthEnv.
const adminToken = "test-admin-token"

// authEnv is a notifier behind a real access.Gate, as in a running
// service: clients of the registry authenticate with their API keys, the
// admin with adminToken, and a secrets key seals what the bucket holds.
type authEnv struct {
	*env
}

// testClient is a registered client and its API key.
type testClient struct {
	id, key string
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	e := newBareEnv(t)
	gate := accesstest.Start(t, e.js, access.Config{Auth: access.AuthClients, AdminToken: adminToken, SecretsKey: sealed.GenerateKey()})
	e.gate = gate
	e.opts = []Option{WithClients(gate.Registry()), WithKeyring(gate.Keyring())}
	e.svc = e.start(e.cfg)
	return &authEnv{e}
}

// client registers a client that may subscribe to the given patterns.
func (e *authEnv) client(name string, subscribe ...string) testClient {
	e.t.Helper()
	p, sec, err := e.gate.Registry().Create(e.t.Context(), producer.Spec{Name: name, Scopes: producer.Scopes{Subscribe: subscribe}})
	if err != nil {
		e.t.Fatal(err)
	}
	return testClient{id: p.ID, key: sec.APIKey}
}

// subscribeAs creates a subscription with a client's credentials.
func (e *authEnv) subscribeAs(token string, body map[string]any) withSecret {
	e.t.Helper()
	out := withSecret{Subscription: &Subscription{}}
	if code := e.callAs(token, "POST", "/v1/subscriptions", body, &out); code != http.StatusCreated {
		e.t.Fatalf("POST /v1/subscriptions %v = %d; want 201", body, code)
	}
	return out
}

// listAs returns the ids of the subscriptions a list request answers.
func (e *authEnv) listAs(token, query string) []string {
	e.t.Helper()
	var list struct {
		Subscriptions []Subscription `json:"subscriptions"`
	}
	if code := e.callAs(token, "GET", "/v1/subscriptions"+query, nil, &list); code != http.StatusOK {
		e.t.Fatalf("GET /v1/subscriptions%s = %d; want 200", query, code)
	}
	var out []string
	for _, s := range list.Subscriptions {
		out = append(out, s.ID)
	}
	slices.Sort(out)
	return out
}

// TestSubscriptionsBelongToTheirOwner: a client sees and changes its own
// subscriptions only; another client's answers 404 exactly like an
// unknown id; admins see and change every subscription, those without
// an owner included.
func TestSubscriptionsBelongToTheirOwner(t *testing.T) {
	e := newAuthEnv(t)
	a := e.client("team-a", "ORDER.>")
	b := e.client("team-b", "ORDER.>", "BILLING.>")
	rc := newReceiver(t)
	subA := e.subscribeAs(a.key, map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}})
	subB := e.subscribeAs(b.key, map[string]any{"url": rc.srv.URL, "tags": []string{"BILLING.*"}})
	subAdmin := e.subscribeAs(adminToken, map[string]any{"url": rc.srv.URL, "tags": []string{"AUDIT.*"}})
	for _, tt := range []struct {
		sub  withSecret
		want string
	}{{subA, a.id}, {subB, b.id}, {subAdmin, access.AdminID}} {
		if tt.sub.Owner != tt.want {
			t.Errorf("owner of %s = %q; want %q", tt.sub.ID, tt.sub.Owner, tt.want)
		}
	}

	// A subscription stored before subscriptions had owners belongs to
	// nobody: only admins see it.
	legacy := &Subscription{ID: "sub_0legacy", Type: Webhook, URL: rc.srv.URL, Tags: []string{"ORDER.*"}, State: Paused, StartSeq: 1,
		Secrets: []Secret{{Value: subA.Secret}}}
	if err := e.svc.subs.create(t.Context(), legacy); err != nil {
		t.Fatal(err)
	}

	unknown := "sub_" + strings.Repeat("0", 32)
	for _, r := range []struct {
		method, suffix string
		body           any
	}{
		{"GET", "", nil},
		{"PATCH", "", map[string]any{"description": "mine now", "tags": []string{"ORDER.>"}}},
		{"DELETE", "", nil},
		{"POST", "/pause", nil},
		{"POST", "/resume", nil},
		{"POST", "/rotate-secret", nil},
		{"POST", "/replay", map[string]any{"since_seq": 0}},
	} {
		var want map[string]any
		if code := e.callAs(b.key, r.method, "/v1/subscriptions/"+unknown+r.suffix, r.body, &want); code != http.StatusNotFound {
			t.Fatalf("%s of an unknown id = %d; want 404", r.method+" "+r.suffix, code)
		}
		for _, id := range []string{subA.ID, legacy.ID} {
			var got map[string]any
			code := e.callAs(b.key, r.method, "/v1/subscriptions/"+id+r.suffix, r.body, &got)
			if code != http.StatusNotFound || !cmp.Equal(want, got) {
				t.Errorf("B: %s /v1/subscriptions/%s%s = %d %v; want 404 %v like an unknown id", r.method, id, r.suffix, code, got, want)
			}
		}
	}
	// Nothing B tried changed A's subscription.
	var still Subscription
	if code := e.callAs(a.key, "GET", "/v1/subscriptions/"+subA.ID, nil, &still); code != http.StatusOK {
		t.Fatalf("A: GET own subscription = %d; want 200", code)
	}
	if still.Description != "" || still.State != Active || !cmp.Equal(still.Tags, []string{"ORDER.*"}) {
		t.Errorf("A's subscription after B's attempts = %+v; want it unchanged", still)
	}

	// Lists hold the client's own subscriptions; an admin's all of them,
	// or one owner's with ?owner= (empty: those without an owner).
	for _, tt := range []struct {
		who, token, query string
		want              []string
	}{
		{"A", a.key, "", []string{subA.ID}},
		{"B", b.key, "", []string{subB.ID}},
		{"B asking for A's", b.key, "?owner=" + a.id, nil},
		{"admin", adminToken, "", sorted(subA.ID, subB.ID, subAdmin.ID, legacy.ID)},
		{"admin, owner A", adminToken, "?owner=" + a.id, []string{subA.ID}},
		{"admin, no owner", adminToken, "?owner=", []string{legacy.ID}},
	} {
		if got := e.listAs(tt.token, tt.query); !cmp.Equal(tt.want, got) {
			t.Errorf("%s: list%s = %v; want %v", tt.who, tt.query, got, tt.want)
		}
	}

	// Admins can do everything to anyone's subscription.
	for _, id := range []string{subA.ID, legacy.ID} {
		for _, r := range []struct {
			method, suffix string
			body           any
			want           int
		}{
			{"GET", "", nil, http.StatusOK},
			{"PATCH", "", map[string]any{"description": "checked by the admin"}, http.StatusOK},
			{"POST", "/pause", nil, http.StatusOK},
			{"POST", "/resume", nil, http.StatusOK},
			{"POST", "/rotate-secret", nil, http.StatusOK},
			{"POST", "/replay", map[string]any{"since_seq": 0}, http.StatusAccepted},
		} {
			if code := e.callAs(adminToken, r.method, "/v1/subscriptions/"+id+r.suffix, r.body, nil); code != r.want {
				t.Errorf("admin: %s /v1/subscriptions/%s%s = %d; want %d", r.method, id, r.suffix, code, r.want)
			}
		}
	}
	if code := e.callAs(adminToken, "DELETE", "/v1/subscriptions/"+subA.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("admin: DELETE A's subscription = %d; want 204", code)
	}
	if code := e.callAs(a.key, "GET", "/v1/subscriptions/"+subA.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("A: GET after the admin deleted it = %d; want 404", code)
	}
	// The owner deletes its own.
	if code := e.callAs(b.key, "DELETE", "/v1/subscriptions/"+subB.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("B: DELETE own subscription = %d; want 204", code)
	}
	// Without credentials the gate answers first.
	if code := e.call("GET", "/v1/subscriptions", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/subscriptions without credentials = %d; want 401", code)
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// TestTagPatternsWithinSubscribeScope: every tag pattern of a
// subscription lies within the client's subscribe patterns, at creation
// and in PATCH; otherwise 403 naming the pattern.
func TestTagPatternsWithinSubscribeScope(t *testing.T) {
	e := newAuthEnv(t)
	a := e.client("team-a", "ORDER.>", "BILLING.INVOICE")
	hook := "https://93.184.216.34/hook"
	for _, tt := range []struct {
		name    string
		tags    []string
		status  int
		naming  string
		wantErr bool
	}{
		{"within", []string{"ORDER.*", "BILLING.INVOICE"}, http.StatusCreated, "", false},
		{"deeper within", []string{"ORDER.EU.>"}, http.StatusCreated, "", false},
		{"other category", []string{"ORDER.*", "AUTH.*"}, http.StatusForbidden, `"AUTH.*"`, true},
		{"wider", []string{">"}, http.StatusForbidden, `">"`, true},
		{"wider wildcard", []string{"BILLING.*"}, http.StatusForbidden, `"BILLING.*"`, true},
		{"invalid first", []string{"AUTH..X"}, http.StatusUnprocessableEntity, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p map[string]any
			code := e.callAs(a.key, "POST", "/v1/subscriptions", map[string]any{"url": hook, "tags": tt.tags}, &p)
			if code != tt.status {
				t.Fatalf("POST tags %v = %d %v; want %d", tt.tags, code, p, tt.status)
			}
			if tt.naming != "" {
				if d, _ := p["detail"].(string); !strings.Contains(d, tt.naming) || p["status"] != float64(http.StatusForbidden) {
					t.Errorf("403 problem = %v; want its detail to name %s", p, tt.naming)
				}
			}
		})
	}
	// PATCH follows the same rule, and a refused PATCH changes nothing.
	s := e.subscribeAs(a.key, map[string]any{"url": hook, "tags": []string{"ORDER.*"}})
	var p map[string]any
	if code := e.callAs(a.key, "PATCH", "/v1/subscriptions/"+s.ID, map[string]any{"tags": []string{"ORDER.*", "PAYROLL.>"}, "description": "x"}, &p); code != http.StatusForbidden {
		t.Fatalf("PATCH tags outside = %d %v; want 403", code, p)
	} else if d, _ := p["detail"].(string); !strings.Contains(d, `"PAYROLL.>"`) {
		t.Errorf("403 detail = %q; want it to name PAYROLL.>", d)
	}
	var got Subscription
	e.callAs(a.key, "GET", "/v1/subscriptions/"+s.ID, nil, &got)
	if !cmp.Equal(got.Tags, []string{"ORDER.*"}) || got.Description != "" {
		t.Errorf("after a refused PATCH = %+v; want tags and description unchanged", got)
	}
	if code := e.callAs(a.key, "PATCH", "/v1/subscriptions/"+s.ID, map[string]any{"tags": []string{"ORDER.>"}}, &got); code != http.StatusOK || !cmp.Equal(got.Tags, []string{"ORDER.>"}) {
		t.Errorf("PATCH tags within = %d %v; want 200 with ORDER.>", code, got.Tags)
	}
	// A PATCH without tags does not check them again.
	if code := e.callAs(a.key, "PATCH", "/v1/subscriptions/"+s.ID, map[string]any{"description": "y"}, nil); code != http.StatusOK {
		t.Errorf("PATCH description = %d; want 200", code)
	}
	// An admin may subscribe to anything.
	e.subscribeAs(adminToken, map[string]any{"url": hook, "tags": []string{">"}})
}

// waitSkipped waits for the audit record of an event skipped for a
// reason containing why.
func (e *env) waitSkipped(subID, eventID, why string) {
	e.t.Helper()
	var last []delivery.Attempt
	eventually(e.t, 10*time.Second, "skipped attempt of "+eventID, func() bool {
		last = e.attempts(subID)
		return slices.ContainsFunc(last, func(a delivery.Attempt) bool {
			return a.EventID == eventID && a.Outcome == Skipped && strings.Contains(a.Error, why)
		})
	})
	for _, a := range last {
		if a.EventID == eventID && a.Outcome != Skipped {
			e.t.Errorf("event %s also has a %s attempt", eventID, a.Outcome)
		}
	}
}

// TestDeliverySkippedWhenOwnerMayNoLongerSubscribe: before each delivery
// the notifier checks that the owner still exists, is enabled and may
// subscribe to the event's tag; if not, the event is audited as skipped
// with the reason, acknowledged, and never sent.
func TestDeliverySkippedWhenOwnerMayNoLongerSubscribe(t *testing.T) {
	e := newAuthEnv(t)
	ctx := t.Context()
	a := e.client("team-a", "ORDER.>")
	rc := newReceiver(t)
	s := e.subscribeAs(a.key, map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}})
	rc.secret = s.Secret
	first := e.publish("ORDER.PLACED")
	if got := rc.wait(1, 10*time.Second); got[0].ID != first.ID {
		t.Fatalf("delivered %s; want %s while the owner may subscribe", got[0].ID, first.ID)
	}

	// The client's subscribe scope narrows to ORDER.PAID.
	reg := e.gate.Registry()
	if _, err := reg.Update(ctx, a.id, func(p *producer.Producer) error {
		p.Scopes.Subscribe = []string{"ORDER.PAID"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	placed := e.publish("ORDER.PLACED")
	paid := e.publish("ORDER.PAID")
	if got := rc.wait(1, 10*time.Second); got[0].ID != paid.ID {
		t.Errorf("delivered %s (%s); want the ORDER.PAID event", got[0].ID, got[0].Tag)
	}
	e.waitSkipped(s.ID, placed.ID, "may no longer subscribe to ORDER.PLACED")
	skipped := []event.Event{placed}

	// Disabled: nothing is delivered.
	if _, err := reg.SetEnabled(ctx, a.id, false); err != nil {
		t.Fatal(err)
	}
	ev := e.publish("ORDER.PAID")
	e.waitSkipped(s.ID, ev.ID, "is disabled")
	skipped = append(skipped, ev)

	// Deleted: nothing is delivered.
	if err := reg.Delete(ctx, a.id); err != nil {
		t.Fatal(err)
	}
	ev = e.publish("ORDER.PAID")
	e.waitSkipped(s.ID, ev.ID, "no longer exists")
	skipped = append(skipped, ev)

	rc.mu.Lock()
	for _, got := range rc.events {
		for _, sk := range skipped {
			if got.ID == sk.ID {
				t.Errorf("skipped event %s (%s) reached the receiver", sk.ID, sk.Tag)
			}
		}
	}
	rc.mu.Unlock()
	// Skipped events are acknowledged: the consumer has nothing pending.
	eventually(t, 5*time.Second, "skipped events acknowledged", func() bool {
		c, err := e.js.Consumer(ctx, stream.Events, stream.NotifyConsumer(s.ID))
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})

	// Subscriptions of the admin token are not checked against the
	// registry (the admin is no client of it).
	rcAdmin := newReceiver(t)
	sa := e.subscribeAs(adminToken, map[string]any{"url": rcAdmin.srv.URL, "tags": []string{"AUDIT.*"}})
	rcAdmin.secret = sa.Secret
	want := e.publish("AUDIT.LOGIN")
	if got := rcAdmin.wait(1, 10*time.Second); got[0].ID != want.ID {
		t.Errorf("admin's subscription got %s; want %s", got[0].ID, want.ID)
	}
}

// rawJSON makes an API request and returns the answer's body as it is.
func (e *env) rawJSON(token, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var v jsontext.Value
	code := e.callAs(token, method, path, body, &v)
	return code, v
}

// TestHeaderValuesAreWriteOnly: every answer that shows a subscription
// shows its header names with masked values; a PATCH that sends a masked
// value back keeps the stored one. The signing secret is in the answers
// of creation and rotation only.
func TestHeaderValuesAreWriteOnly(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	const token = "tok-s3cr3t"
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"},
		"headers": map[string]string{"X-Team": "payments", "X-Token": token}})
	rc.secret = s.Secret
	masked := map[string]string{"X-Team": Masked, "X-Token": Masked}
	if diff := cmp.Diff(masked, s.Headers); diff != "" || s.Secret == "" {
		t.Errorf("POST answer headers (-want +got):\n%s (secret %q)", diff, s.Secret)
	}
	for _, r := range []struct {
		method, path string
		body         any
		secret       bool
	}{
		{"GET", "/v1/subscriptions/" + s.ID, nil, false},
		{"GET", "/v1/subscriptions", nil, false},
		{"PATCH", "/v1/subscriptions/" + s.ID, map[string]any{"description": "d"}, false},
		{"POST", "/v1/subscriptions/" + s.ID + "/pause", nil, false},
		{"POST", "/v1/subscriptions/" + s.ID + "/resume", nil, false},
		{"POST", "/v1/subscriptions/" + s.ID + "/rotate-secret", nil, true},
	} {
		code, body := e.rawJSON("", r.method, r.path, r.body)
		if code != http.StatusOK {
			t.Fatalf("%s %s = %d", r.method, r.path, code)
		}
		for _, v := range []string{"payments", token} {
			if bytes.Contains(body, []byte(v)) {
				t.Errorf("%s %s shows the header value %q: %s", r.method, r.path, v, body)
			}
		}
		if !bytes.Contains(body, []byte(`"X-Token":"`+Masked+`"`)) {
			t.Errorf("%s %s does not show X-Token masked: %s", r.method, r.path, body)
		}
		var top map[string]any
		if err := jsonv2.Unmarshal(body, &top); err != nil {
			t.Fatal(err)
		}
		_, hasSecret := top["secret"]
		_, hasSecrets := top["secrets"]
		if hasSecret != r.secret || hasSecrets || bytes.Contains(body, []byte(s.Secret)) {
			t.Errorf("%s %s: secret shown = %v, secrets = %v; want the new secret only on rotation, the old one never", r.method, r.path, hasSecret, hasSecrets)
		}
	}

	// Sending the mask back keeps the stored value (header names compare
	// case-insensitively); a new value replaces it.
	var patched Subscription
	if code := e.call("PATCH", "/v1/subscriptions/"+s.ID, map[string]any{"headers": map[string]string{"x-token": Masked, "X-Team": "ops"}}, &patched); code != http.StatusOK {
		t.Fatalf("PATCH with the mask = %d", code)
	}
	if diff := cmp.Diff(map[string]string{"x-token": Masked, "X-Team": Masked}, patched.Headers); diff != "" {
		t.Errorf("PATCH answer headers (-want +got):\n%s", diff)
	}
	stored, _, err := e.svc.subs.get(t.Context(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"x-token": token, "X-Team": "ops"}, stored.Headers); diff != "" {
		t.Errorf("stored headers (-want +got):\n%s", diff)
	}
	eventually(t, 5*time.Second, "worker has the new headers", func() bool {
		e.svc.mu.Lock()
		defer e.svc.mu.Unlock()
		w := e.svc.workers[s.ID]
		return w != nil && w.sub.Load().Headers["X-Team"] == "ops"
	})
	e.publish("ORDER.PLACED")
	rc.wait(1, 10*time.Second)
	rc.mu.Lock()
	h := rc.headers[len(rc.headers)-1]
	rc.mu.Unlock()
	if h.Get("X-Token") != token || h.Get("X-Team") != "ops" {
		t.Errorf("delivered X-Token %q, X-Team %q; want %q, ops", h.Get("X-Token"), h.Get("X-Team"), token)
	}

	// The mask of a header that has no stored value is refused, and so
	// is the mask as a new value.
	var p struct {
		Errors []problemField `json:"errors"`
	}
	if code := e.call("PATCH", "/v1/subscriptions/"+s.ID, map[string]any{"headers": map[string]string{"X-New": Masked}}, &p); code != http.StatusUnprocessableEntity ||
		len(p.Errors) != 1 || p.Errors[0].Pointer != "/headers/X-New" {
		t.Errorf("PATCH with the mask of an unknown header = %d %+v; want 422 at /headers/X-New", code, p)
	}
	if code := e.call("POST", "/v1/subscriptions", map[string]any{"url": rc.srv.URL, "tags": []string{"A.*"}, "headers": map[string]string{"X-A": Masked}}, nil); code != http.StatusUnprocessableEntity {
		t.Errorf("POST with the mask as a header value = %d; want 422", code)
	}
}

type problemField struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// TestSecretsSealedAtRest: with a secrets key, the signing secrets and
// header values in the subscriptions bucket are sealed for the
// subscription; deliveries still sign and carry them. A subscription
// written in clear before the key was configured still delivers and is
// sealed by the notifier.
func TestSecretsSealedAtRest(t *testing.T) {
	e := newAuthEnv(t)
	ctx := t.Context()
	a := e.client("team-a", "ORDER.>")
	rc := newReceiver(t)
	const token = "tok-s3cr3t"
	s := e.subscribeAs(a.key, map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}, "headers": map[string]string{"X-Token": token}})
	rc.secret = s.Secret
	var rotated withSecret
	rotated.Subscription = &Subscription{}
	if code := e.callAs(a.key, "POST", "/v1/subscriptions/"+s.ID+"/rotate-secret", nil, &rotated); code != http.StatusOK {
		t.Fatalf("rotate = %d", code)
	}
	entry, err := e.kv.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw := entry.Value()
	for _, v := range []string{s.Secret, strings.TrimPrefix(s.Secret, webhook.SecretPrefix), rotated.Secret, strings.TrimPrefix(rotated.Secret, webhook.SecretPrefix), token} {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the bucket holds %q in clear: %s", v, raw)
		}
	}
	if n := bytes.Count(raw, []byte(`"sealed:v1:`)); n != 3 {
		t.Errorf("the bucket value holds %d sealed values; want 3 (two secrets, one header): %s", n, raw)
	}
	// Deliveries sign with the opened secrets and carry the opened value.
	rc.secret = rotated.Secret
	e.publish("ORDER.PLACED")
	rc.wait(1, 10*time.Second)
	if _, bad, _ := rc.snapshot(); bad != 0 {
		t.Errorf("%d deliveries failed signature verification", bad)
	}
	rc.mu.Lock()
	if got := rc.headers[0].Get("X-Token"); got != token {
		t.Errorf("delivered X-Token = %q; want %q", got, token)
	}
	rc.mu.Unlock()

	// A subscription written in clear before a key was configured.
	rcOld := newReceiver(t)
	_, last, err := e.svc.lastSeq(ctx, stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	old := &Subscription{ID: id, Owner: a.id, Type: Webhook, URL: rcOld.srv.URL, Tags: []string{"ORDER.*"}, State: Active,
		StartSeq: last + 1, Headers: map[string]string{"X-Token": "old-token"}, Secrets: []Secret{{Value: secret}}}
	clear := &repo{kv: e.kv}
	if err := clear.create(ctx, old); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "clear record re-sealed", func() bool {
		entry, err := e.kv.Get(ctx, id)
		return err == nil && !bytes.Contains(entry.Value(), []byte(secret)) && !bytes.Contains(entry.Value(), []byte("old-token"))
	})
	rcOld.secret = secret
	e.publish("ORDER.SHIPPED")
	rcOld.wait(1, 10*time.Second)
	rcOld.mu.Lock()
	if got := rcOld.headers[0].Get("X-Token"); got != "old-token" {
		t.Errorf("delivered X-Token = %q; want old-token", got)
	}
	rcOld.mu.Unlock()
	if _, bad, _ := rcOld.snapshot(); bad != 0 {
		t.Errorf("%d deliveries of the re-sealed subscription failed signature verification", bad)
	}
}
