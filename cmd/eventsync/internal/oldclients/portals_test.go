package oldclients

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/webhook"
)

const portalsAdminToken = "portals-admin-token-0123456789"

// The senders' example webhooks, after their documentation: a GitLab
// Push Hook ("Webhook events"), a GitHub pull_request opened ("Webhook
// events and payloads") and a Standard Webhooks event (the specification's
// payload structure).
const (
	gitlabPushHook = `{
  "object_kind": "push",
  "event_name": "push",
  "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
  "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "ref": "refs/heads/master",
  "ref_protected": true,
  "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "user_id": 4,
  "user_name": "John Smith",
  "user_username": "jsmith",
  "user_email": "john@example.com",
  "project_id": 15,
  "project": {
    "id": 15,
    "name": "Diaspora",
    "description": "",
    "web_url": "http://example.com/mike/diaspora",
    "avatar_url": null,
    "git_ssh_url": "git@example.com:mike/diaspora.git",
    "git_http_url": "http://example.com/mike/diaspora.git",
    "namespace": "Mike",
    "visibility_level": 0,
    "path_with_namespace": "mike/diaspora",
    "default_branch": "master"
  },
  "repository": {
    "name": "Diaspora",
    "url": "git@example.com:mike/diaspora.git",
    "description": "",
    "homepage": "http://example.com/mike/diaspora"
  },
  "commits": [
    {
      "id": "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
      "message": "Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab for more information",
      "title": "Update Catalan translation to e38cb41.",
      "timestamp": "2011-12-12T14:27:31+02:00",
      "url": "http://example.com/mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
      "author": {"name": "Jordi Mallach", "email": "jordi@softcatala.org"},
      "added": ["CHANGELOG"],
      "modified": ["app/controller/application.rb"],
      "removed": []
    }
  ],
  "total_commits_count": 1
}`
	githubPullRequestOpened = `{
  "action": "opened",
  "number": 2,
  "pull_request": {
    "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/2",
    "id": 279147437,
    "node_id": "MDExOlB1bGxSZXF1ZXN0Mjc5MTQ3NDM3",
    "html_url": "https://github.com/Codertocat/Hello-World/pull/2",
    "number": 2,
    "state": "open",
    "locked": false,
    "title": "Update the README with new information.",
    "user": {"login": "Codertocat", "id": 21031067, "type": "User"},
    "body": "This is a pretty simple change that we need to pull into master.",
    "created_at": "2019-05-15T15:20:33Z",
    "updated_at": "2019-05-15T15:20:33Z",
    "draft": false,
    "head": {"label": "Codertocat:changes", "ref": "changes", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821"},
    "base": {"label": "Codertocat:master", "ref": "master", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
    "merged": false,
    "commits": 1,
    "additions": 1,
    "deletions": 1,
    "changed_files": 1
  },
  "repository": {
    "id": 186853002,
    "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
    "name": "Hello-World",
    "full_name": "Codertocat/Hello-World",
    "private": false,
    "owner": {"login": "Codertocat", "id": 21031067, "type": "User"},
    "html_url": "https://github.com/Codertocat/Hello-World",
    "default_branch": "master"
  },
  "sender": {"login": "Codertocat", "id": 21031067, "type": "User"}
}`
	standardContactCreated = `{
  "type": "contact.created",
  "timestamp": "2022-11-03T20:26:10.344522Z",
  "data": {
    "id": "1f81eb52-5198-4599-803e-771906343485",
    "type": "contact",
    "email": "jane@example.com"
  }
}`
)

// portalsReply is an answer: status, headers, body and the body decoded.
type portalsReply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// portalsCall sends a request to base+path with the headers given as
// name, value pairs.
func portalsCall(t *testing.T, method, url, body string, header ...string) portalsReply {
	t.Helper()
	if body != "" {
		header = append([]string{"Content-Type", "application/json"}, header...)
	}
	status, h, b := send(t, method, url, []byte(body), header...)
	r := portalsReply{status: status, header: h, body: b}
	_ = json.Unmarshal(b, &r.json)
	return r
}

// portalsAdmin is the Authorization header pair of the admin token.
var portalsAdmin = []string{"Authorization", "Bearer " + portalsAdminToken}

// portalsEvent waits until the event id is stored and returns it, as
// admin reads it from query.
func portalsEvent(t *testing.T, queryBase, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := portalsCall(t, "GET", queryBase+"/v1/events/"+id, "", portalsAdmin...)
		if r.status == http.StatusOK {
			return r.json
		}
		if r.status != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("GET /v1/events/%s = %d %s; want the stored event", id, r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portalsAbsent checks that no event has the id (call it once a later
// event is stored: the store writes in stream order).
func portalsAbsent(t *testing.T, queryBase, id string) {
	t.Helper()
	if r := portalsCall(t, "GET", queryBase+"/v1/events/"+id, "", portalsAdmin...); r.status != http.StatusNotFound {
		t.Errorf("GET /v1/events/%s = %d %s; want 404: nothing stored", id, r.status, r.body)
	}
}

// portalsPut configures a portal as admin.
func portalsPut(t *testing.T, base, name, body string) {
	t.Helper()
	r := portalsCall(t, "PUT", base+"/v1/portals/"+name, body, portalsAdmin...)
	if r.status != http.StatusCreated {
		t.Fatalf("PUT /v1/portals/%s = %d %s; want 201", name, r.status, r.body)
	}
	if r.json["secret"] != "********" {
		t.Errorf("PUT /v1/portals/%s answered secret %v; want it masked", name, r.json["secret"])
	}
}

// portalsAccepted checks a 202 of one event and returns its seq.
func portalsAccepted(t *testing.T, r portalsReply, what string, duplicate bool) float64 {
	t.Helper()
	events, _ := r.json["events"].([]any)
	if r.status != http.StatusAccepted || len(events) != 1 {
		t.Fatalf("%s = %d %s; want 202 with one event", what, r.status, r.body)
	}
	e := events[0].(map[string]any)
	if e["duplicate"] != duplicate {
		t.Errorf("%s = %s; want duplicate %v", what, r.body, duplicate)
	}
	seq, _ := e["seq"].(float64)
	return seq
}

// portalsRefused checks a 401 problem.
func portalsRefused(t *testing.T, r portalsReply, what string) {
	t.Helper()
	if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("%s = %d %s %s; want 401 problem+json", what, r.status, r.header.Get("Content-Type"), r.body)
	}
}

// githubSignature is X-Hub-Signature-256 of body.
func githubSignature(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// standardSignature is webhook-signature of a Standard Webhooks message.
func standardSignature(secret, id string, ts int64, body string) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// newStandardSecret is a fresh whsec_ secret.
func newStandardSecret() string {
	key := make([]byte, 24)
	_, _ = rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// TestPortals sends each sender's example webhook to an all-in-one with
// authentication on: accepted and stored with its tag, payload and id, a
// redelivery dropped as a duplicate, a bad or missing signature refused
// with nothing stored, an unknown portal 404.
func TestPortals(t *testing.T) {
	base := apptest.Start(t, map[string]string{"ADMIN_TOKEN": portalsAdminToken},
		append([]string{"--auth", "clients"}, apptest.Fast...)...).Base
	const gitlabToken, githubSecret = "gitlab-secret-token", "github-webhook-secret"
	standardSecret := newStandardSecret()
	portalsPut(t, base, "gitlab-main", `{"type":"gitlab","secret":"`+gitlabToken+`"}`)
	portalsPut(t, base, "github-main", `{"type":"github","secret":"`+githubSecret+`"}`)
	portalsPut(t, base, "crm", `{"type":"standard","secret":"`+standardSecret+`","category":"CRM"}`)

	t.Run("secrets are write-only", func(t *testing.T) {
		r := portalsCall(t, "GET", base+"/v1/portals", "", portalsAdmin...)
		if r.status != http.StatusOK || bytes.Contains(r.body, []byte(gitlabToken)) || bytes.Contains(r.body, []byte(githubSecret)) ||
			bytes.Contains(r.body, []byte(standardSecret)) || strings.Count(string(r.body), `"secret":"********"`) != 3 {
			t.Errorf("GET /v1/portals = %d %s; want the three portals, secrets masked", r.status, r.body)
		}
		if r := portalsCall(t, "GET", base+"/v1/portals/github-main", ""); r.status != http.StatusUnauthorized {
			t.Errorf("GET a portal without credentials = %d; want 401", r.status)
		}
	})

	t.Run("gitlab push hook", func(t *testing.T) {
		const uuid = "13792a34-cac6-4fda-95a8-c58e00a3954e"
		send := func(token, eventUUID string) portalsReply {
			h := []string{
				"User-Agent", "GitLab/17.4.0", "X-Gitlab-Event", "Push Hook", "X-Gitlab-Instance", "https://gitlab.example.com",
				"X-Gitlab-Webhook-UUID", "9a3f4b1e-2c4d-4e5f-8a9b-0c1d2e3f4a5b", "X-Gitlab-Event-UUID", eventUUID, "Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
			}
			if token != "" {
				h = append(h, "X-Gitlab-Token", token)
			}
			return portalsCall(t, "POST", base+"/v1/portals/gitlab-main/webhook", gitlabPushHook, h...)
		}
		portalsRefused(t, send("not-the-token", "bad-1"), "wrong X-Gitlab-Token")
		portalsRefused(t, send("", "bad-2"), "no X-Gitlab-Token")
		seq := portalsAccepted(t, send(gitlabToken, uuid), "push hook", false)
		if again := portalsAccepted(t, send(gitlabToken, uuid), "redelivered push hook", true); again != seq {
			t.Errorf("redelivery seq = %v; want the original %v", again, seq)
		}
		e := portalsEvent(t, base, "gitlab-main:"+uuid)
		data, _ := e["data"].(map[string]any)
		payload, _ := data["payload"].(map[string]any)
		if e["tag"] != "GITLAB.PUSH_HOOK" || e["message"] != "Push Hook on mike/diaspora" || e["source"] != "gitlab-main" ||
			data["_event"] != "Push Hook" || data["_delivery"] != uuid || data["_portal"] != "gitlab-main" ||
			payload["checkout_sha"] != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" || payload["total_commits_count"] != 1.0 {
			t.Errorf("stored %v; want GITLAB.PUSH_HOOK with the payload, event and delivery id in data", e)
		}
		r := portalsCall(t, "GET", base+"/v1/events?since=0&tag=GITLAB.PUSH_HOOK", "", portalsAdmin...)
		if events, _ := r.json["events"].([]any); len(events) != 1 {
			t.Errorf("GITLAB.PUSH_HOOK events = %s; want the one, stored once", r.body)
		}
		portalsAbsent(t, base, "gitlab-main:bad-1")
		portalsAbsent(t, base, "gitlab-main:bad-2")
	})

	t.Run("github pull request opened", func(t *testing.T) {
		const delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
		send := func(signature, id string) portalsReply {
			h := []string{
				"User-Agent", "GitHub-Hookshot/044aadd", "X-GitHub-Event", "pull_request", "X-GitHub-Delivery", id,
				"X-GitHub-Hook-ID", "292430182", "X-GitHub-Hook-Installation-Target-ID", "79929171", "X-GitHub-Hook-Installation-Target-Type", "repository",
			}
			if signature != "" {
				h = append(h, "X-Hub-Signature-256", signature)
			}
			return portalsCall(t, "POST", base+"/v1/portals/github-main/webhook", githubPullRequestOpened, h...)
		}
		portalsRefused(t, send(githubSignature("another-secret", githubPullRequestOpened), "bad-1"), "signed with another secret")
		portalsRefused(t, send(githubSignature(githubSecret, githubPullRequestOpened+"\n"), "bad-2"), "signature of another body")
		portalsRefused(t, send("", "bad-3"), "no X-Hub-Signature-256")
		sig := githubSignature(githubSecret, githubPullRequestOpened)
		seq := portalsAccepted(t, send(sig, delivery), "pull_request", false)
		if again := portalsAccepted(t, send(sig, delivery), "redelivered pull_request", true); again != seq {
			t.Errorf("redelivery seq = %v; want the original %v", again, seq)
		}
		e := portalsEvent(t, base, "github-main:"+delivery)
		data, _ := e["data"].(map[string]any)
		payload, _ := data["payload"].(map[string]any)
		pr, _ := payload["pull_request"].(map[string]any)
		if e["tag"] != "GITHUB.PULL_REQUEST_OPENED" || e["message"] != "pull_request opened on Codertocat/Hello-World" ||
			data["_event"] != "pull_request" || data["_delivery"] != delivery || payload["action"] != "opened" || pr["id"] != 279147437.0 {
			t.Errorf("stored %v; want GITHUB.PULL_REQUEST_OPENED with the payload, event and delivery id in data", e)
		}
		for _, id := range []string{"bad-1", "bad-2", "bad-3"} {
			portalsAbsent(t, base, "github-main:"+id)
		}
	})

	t.Run("standard webhooks", func(t *testing.T) {
		const msgID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
		send := func(id string, ts int64, signature string) portalsReply {
			return portalsCall(t, "POST", base+"/v1/portals/crm/webhook", standardContactCreated,
				"webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", signature)
		}
		now := time.Now().Unix()
		stale := now - 6*60
		portalsRefused(t, send("msg_bad1", now, standardSignature(newStandardSecret(), "msg_bad1", now, standardContactCreated)), "signed with another secret")
		portalsRefused(t, send("msg_bad2", stale, standardSignature(standardSecret, "msg_bad2", stale, standardContactCreated)), "timestamp 6 min old")
		portalsRefused(t, send("msg_bad3", now, standardSignature(standardSecret, "msg_other", now, standardContactCreated)), "signature of another id")
		sig := standardSignature(standardSecret, msgID, now, standardContactCreated)
		seq := portalsAccepted(t, send(msgID, now, "v1,bm90IHRoaXMgb25l "+sig), "contact.created", false)
		if again := portalsAccepted(t, send(msgID, now, sig), "redelivered contact.created", true); again != seq {
			t.Errorf("redelivery seq = %v; want the original %v", again, seq)
		}
		e := portalsEvent(t, base, "crm:"+msgID)
		data, _ := e["data"].(map[string]any)
		payload, _ := data["payload"].(map[string]any)
		if e["tag"] != "CRM.CONTACT.CREATED" || data["_event"] != "contact.created" || data["_delivery"] != msgID || payload["type"] != "contact.created" {
			t.Errorf("stored %v; want CRM.CONTACT.CREATED with the payload, type and webhook-id in data", e)
		}
		for _, id := range []string{"msg_bad1", "msg_bad2", "msg_bad3"} {
			portalsAbsent(t, base, "crm:"+id)
		}
	})

	t.Run("unknown portal", func(t *testing.T) {
		r := portalsCall(t, "POST", base+"/v1/portals/nobody/webhook", gitlabPushHook, "X-Gitlab-Token", gitlabToken, "X-Gitlab-Event", "Push Hook")
		if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("unknown portal = %d %s; want 404 problem+json", r.status, r.body)
		}
	})

	t.Run("deleted portal", func(t *testing.T) {
		portalsPut(t, base, "gone", `{"type":"gitlab","secret":"t"}`)
		if r := portalsCall(t, "DELETE", base+"/v1/portals/gone", "", portalsAdmin...); r.status != http.StatusNoContent {
			t.Fatalf("DELETE = %d %s; want 204", r.status, r.body)
		}
		if r := portalsCall(t, "POST", base+"/v1/portals/gone/webhook", `{}`, "X-Gitlab-Token", "t", "X-Gitlab-Event", "Push Hook"); r.status != http.StatusNotFound {
			t.Errorf("webhook to a deleted portal = %d %s; want 404", r.status, r.body)
		}
	})
}

// portalsClient is a client registered through the admin API.
type portalsClient struct{ id, apiKey, jwtSecret string }

func portalsNewClient(t *testing.T, base, body string) portalsClient {
	t.Helper()
	r := portalsCall(t, "POST", base+"/v1/producers", body, portalsAdmin...)
	if r.status != http.StatusCreated {
		t.Fatalf("create client %s = %d %s", body, r.status, r.body)
	}
	c, _ := r.json["credentials"].(map[string]any)
	return portalsClient{id: r.json["id"].(string), apiKey: c["api_key"].(string), jwtSecret: c["jwt_secret"].(string)}
}

// jwt is a fresh client-credentials JWT of the client.
func (c portalsClient) jwt(t *testing.T) string {
	t.Helper()
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.jwtSecret, "="))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": c.id, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": strconv.FormatInt(now.UnixNano(), 36),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

// TestDispatcherEvents sends the dispatcher's canonical events to an
// all-in-one with authentication on: translated, written as the client
// that sent them, and view_link and ack_link seen in the stored event and
// in a webhook delivery.
func TestDispatcherEvents(t *testing.T) {
	base := apptest.Start(t, map[string]string{"ADMIN_TOKEN": portalsAdminToken},
		append([]string{"--auth", "clients", "--dispatcher-kind-map", "urn:acme:billing=BILLING"}, apptest.Fast...)...).Base
	producer := portalsNewClient(t, base, `{"name":"dispatcher","tags":["BILLING.>","DISPATCHER.>"]}`)
	watcher := portalsNewClient(t, base, `{"name":"watcher","scopes":{"subscribe":["BILLING.>"]}}`)

	var (
		mu     sync.Mutex
		secret string
		got    = make(chan map[string]any, 10)
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		sec := secret
		mu.Unlock()
		if err := webhook.Verify(sec, r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		got <- ev
	}))
	t.Cleanup(recv.Close)
	mu.Lock()
	r := portalsCall(t, "POST", base+"/v1/subscriptions", fmt.Sprintf(`{"url":%q,"tags":["BILLING.>"]}`, recv.URL), "Authorization", "Bearer "+watcher.apiKey)
	secret, _ = r.json["secret"].(string)
	mu.Unlock()
	if r.status != http.StatusCreated {
		t.Fatalf("create subscription = %d %s", r.status, r.body)
	}

	const canonical = `{
  "timestamp": "2024-05-06T07:08:09+0000",
  "kind": "urn:acme:billing:invoice:paid",
  "message": "invoice 42 paid",
  "source": "https://billing.example.com",
  "severity": "warn",
  "view_link": "https://billing.example.com/invoices/42",
  "ack_link": "https://billing.example.com/invoices/42/ack",
  "invoice": 42,
  "customer": {"id": "c-7", "plan": "pro"}
}`
	dispatch := func(authorization, body string) portalsReply {
		h := []string{}
		if authorization != "" {
			h = append(h, "Authorization", authorization)
		}
		return portalsCall(t, "POST", base+"/v1/dispatcher/events", body, h...)
	}
	r = dispatch("Bearer "+producer.apiKey, canonical)
	portalsAccepted(t, r, "canonical event", false)
	id := r.json["events"].([]any)[0].(map[string]any)["id"].(string)
	e := portalsEvent(t, base, id)
	data, _ := e["data"].(map[string]any)
	customer, _ := data["customer"].(map[string]any)
	if e["tag"] != "BILLING.INVOICE.PAID" || e["message"] != "invoice 42 paid" || e["severity"] != "warning" || e["timestamp"] != "2024-05-06T07:08:09Z" ||
		e["source"] != "https://billing.example.com" || e["producer"] != producer.id ||
		data["_kind"] != "urn:acme:billing:invoice:paid" || data["_view_link"] != "https://billing.example.com/invoices/42" ||
		data["_ack_link"] != "https://billing.example.com/invoices/42/ack" || data["invoice"] != 42.0 || customer["plan"] != "pro" {
		t.Errorf("stored %v; want BILLING.INVOICE.PAID by %s, extra fields and _kind, _view_link, _ack_link in data", e, producer.id)
	}
	select {
	case ev := <-got:
		d, _ := ev["data"].(map[string]any)
		if ev["id"] != id || d["_view_link"] != "https://billing.example.com/invoices/42" || d["_ack_link"] != "https://billing.example.com/invoices/42/ack" {
			t.Errorf("delivered %v; want event %s with _view_link and _ack_link in data", ev, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery within 20 s")
	}

	t.Run("no timestamp, no kind", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		r := dispatch(producer.jwt(t), `{"message":"something happened","ticket":"T-1"}`)
		portalsAccepted(t, r, "event without timestamp and kind (JWT)", false)
		e := portalsEvent(t, base, r.json["events"].([]any)[0].(map[string]any)["id"].(string))
		data, _ := e["data"].(map[string]any)
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["timestamp"]))
		if e["tag"] != "DISPATCHER.UNKNOWN" || data["_kind"] != "unknown" || data["ticket"] != "T-1" || err != nil || ts.Before(before) {
			t.Errorf("stored %v; want DISPATCHER.UNKNOWN, _kind unknown, stamped with the time received", e)
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, authorization, body string
			status                    int
			pointer                   string
		}{
			{"no message (the dispatcher requires one)", "Bearer " + producer.apiKey, `{"kind":"urn:acme:billing:invoice:paid"}`, http.StatusUnprocessableEntity, "/message"},
			{"bad timestamp", "Bearer " + producer.apiKey, `{"message":"m","timestamp":"last tuesday"}`, http.StatusUnprocessableEntity, "/timestamp"},
			{"unknown severity", "Bearer " + producer.apiKey, `{"message":"m","severity":"high"}`, http.StatusUnprocessableEntity, "/severity"},
			{"not JSON", "Bearer " + producer.apiKey, `{"message":`, http.StatusBadRequest, ""},
			{"a tag outside the client's patterns", "Bearer " + producer.apiKey, `{"message":"m","kind":"urn:acme:hr:person:hired"}`, http.StatusForbidden, ""},
			{"no credentials", "", canonical, http.StatusUnauthorized, ""},
			{"a client without write scope", "Bearer " + watcher.apiKey, canonical, http.StatusForbidden, ""},
		}
		for _, tt := range tests {
			r := dispatch(tt.authorization, tt.body)
			if r.status != tt.status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%s = %d %s; want %d problem+json", tt.name, r.status, r.body, tt.status)
				continue
			}
			if tt.pointer != "" && !strings.Contains(string(r.body), `"pointer":"`+tt.pointer+`"`) {
				t.Errorf("%s = %s; want an error at %s", tt.name, r.body, tt.pointer)
			}
		}
	})
}

// TestPortalsServices runs a Standard Webhooks portal on the services run
// separately (ingest, store, query) against one NATS server and
// ClickHouse, as their binaries assemble them.
func TestPortalsServices(t *testing.T) {
	s := apptest.StartServices(t, map[string]string{"ADMIN_TOKEN": portalsAdminToken})

	secret := newStandardSecret()
	portalsPut(t, s.Base["ingest"], "crm", `{"type":"standard","secret":"`+secret+`"}`)
	const msgID = "msg_services_1"
	now := time.Now().Unix()
	send := func(signature string) portalsReply {
		return portalsCall(t, "POST", s.Base["ingest"]+"/v1/portals/crm/webhook", standardContactCreated,
			"webhook-id", msgID, "webhook-timestamp", strconv.FormatInt(now, 10), "webhook-signature", signature)
	}
	portalsRefused(t, send(standardSignature(newStandardSecret(), msgID, now, standardContactCreated)), "signed with another secret")
	sig := standardSignature(secret, msgID, now, standardContactCreated)
	portalsAccepted(t, send(sig), "contact.created", false)
	portalsAccepted(t, send(sig), "redelivered contact.created", true)
	e := portalsEvent(t, s.Base["query"], "crm:"+msgID)
	if data, _ := e["data"].(map[string]any); e["tag"] != "WEBHOOK.CONTACT.CREATED" || data["_delivery"] != msgID {
		t.Errorf("stored %v; want WEBHOOK.CONTACT.CREATED with its webhook-id", e)
	}
}
