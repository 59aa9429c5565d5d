package portals

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The examples of the providers' documentation: GitHub's "Validating
// webhook deliveries" and the Standard Webhooks specification's signature
// example.
const (
	githubDocSecret    = "It's a Secret to Everybody"
	githubDocBody      = "Hello, World!"
	githubDocSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	standardDocSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	standardDocID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	standardDocTimestamp = "1614265330"
	standardDocBody      = `{"test": 2432232314}`
	standardDocSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestVerify(t *testing.T) {
	sent := time.Unix(1614265330, 0)
	gitlab := &Portal{Name: "gl", Type: GitLab, Secret: "gl-token"}
	github := &Portal{Name: "gh", Type: GitHub, Secret: githubDocSecret}
	standard := &Portal{Name: "sw", Type: Standard, Secret: standardDocSecret}
	sw := func(kv ...string) http.Header {
		h := header("webhook-id", standardDocID, "webhook-timestamp", standardDocTimestamp, "webhook-signature", standardDocSignature)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	tests := []struct {
		name   string
		portal *Portal
		h      http.Header
		body   string
		now    time.Time
		refuse string // part of the refusal; empty: accepted
	}{
		{"gitlab token", gitlab, header("X-Gitlab-Token", "gl-token"), "{}", sent, ""},
		{"gitlab wrong token", gitlab, header("X-Gitlab-Token", "gl-tokeN"), "{}", sent, "not the portal's secret"},
		{"gitlab no token", gitlab, header(), "{}", sent, "missing"},
		{"github documented example", github, header("X-Hub-Signature-256", githubDocSignature), githubDocBody, sent, ""},
		{"github body changed", github, header("X-Hub-Signature-256", githubDocSignature), githubDocBody + " ", sent, "does not match"},
		{"github sha1 only", github, header("X-Hub-Signature", "sha1=0123"), githubDocBody, sent, "missing"},
		{"github not hex", github, header("X-Hub-Signature-256", "sha256=zz"), githubDocBody, sent, "sha256=<hex>"},
		{"standard documented example", standard, sw(), standardDocBody, sent, ""},
		{"standard among several signatures", standard, sw("webhook-signature", "v1,bm90IGl0 "+standardDocSignature), standardDocBody, sent, ""},
		{"standard 4 min late", standard, sw(), standardDocBody, sent.Add(4 * time.Minute), ""},
		{"standard 6 min late", standard, sw(), standardDocBody, sent.Add(6 * time.Minute), "more than 5m0s"},
		{"standard 6 min early", standard, sw(), standardDocBody, sent.Add(-6 * time.Minute), "more than 5m0s"},
		{"standard other id", standard, sw("webhook-id", "msg_other"), standardDocBody, sent, "no v1 signature"},
		{"standard other version", standard, sw("webhook-signature", "v1a,"+strings.TrimPrefix(standardDocSignature, "v1,")), standardDocBody, sent, "no v1 signature"},
		{"standard no id", standard, sw("webhook-id", ""), standardDocBody, sent, "webhook-id is missing"},
		{"standard no signature", standard, sw("webhook-signature", ""), standardDocBody, sent, "webhook-signature is missing"},
		{"standard bad timestamp", standard, sw("webhook-timestamp", "yesterday"), standardDocBody, sent, "not seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify(tt.portal, tt.h, []byte(tt.body), tt.now)
			var se *SignatureError
			switch {
			case tt.refuse == "" && err != nil:
				t.Errorf("verify = %v; want accepted", err)
			case tt.refuse != "" && (!errors.As(err, &se) || !strings.Contains(se.Detail, tt.refuse)):
				t.Errorf("verify = %v; want a SignatureError saying %q", err, tt.refuse)
			}
		})
	}
}

func TestDeliveryOf(t *testing.T) {
	tests := []struct {
		name                    string
		portal                  *Portal
		h                       http.Header
		body                    string
		id, event, tag, message string
		wantErr                 bool
	}{
		{"gitlab push", &Portal{Name: "gl", Type: GitLab, Category: "GITLAB"},
			header("X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"),
			`{"object_kind":"push","project":{"path_with_namespace":"jsmith/example"}}`,
			"13792a34-cac6-4fda-95a8-c58e00a3954e", "Push Hook", "GITLAB.PUSH_HOOK", "Push Hook on jsmith/example", false},
		{"gitlab idempotency key", &Portal{Name: "gl", Type: GitLab, Category: "CI"},
			header("X-Gitlab-Event", "Pipeline Hook", "Idempotency-Key", "k-1"), `{}`,
			"k-1", "Pipeline Hook", "CI.PIPELINE_HOOK", "Pipeline Hook", false},
		{"github pull request", &Portal{Name: "gh", Type: GitHub, Category: "GITHUB"},
			header("X-GitHub-Event", "pull_request", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
			`{"action":"opened","repository":{"full_name":"Codertocat/Hello-World"}}`,
			"72d3162e-cc78-11e3-81ab-4c9367dc0958", "pull_request", "GITHUB.PULL_REQUEST_OPENED", "pull_request opened on Codertocat/Hello-World", false},
		{"github form-encoded ping", &Portal{Name: "gh", Type: GitHub, Category: "GITHUB"},
			header("X-GitHub-Event", "ping", "Content-Type", "application/x-www-form-urlencoded"),
			`payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%7D`,
			"", "ping", "GITHUB.PING", "ping", false},
		{"standard type", &Portal{Name: "sw", Type: Standard, Category: "WEBHOOK"},
			header("webhook-id", "msg_1"), `{"type":"invoice.paid","data":{}}`,
			"msg_1", "invoice.paid", "WEBHOOK.INVOICE.PAID", "invoice.paid", false},
		{"standard without type", &Portal{Name: "sw", Type: Standard, Category: "WEBHOOK"},
			header("webhook-id", "msg_1"), `{"test": 2432232314}`,
			"msg_1", "", "WEBHOOK.UNKNOWN", "webhook", false},
		{"not an object", &Portal{Name: "sw", Type: Standard, Category: "WEBHOOK"}, header(), `[1]`, "", "", "", "", true},
		{"not JSON", &Portal{Name: "gl", Type: GitLab, Category: "GITLAB"}, header(), `{`, "", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := deliveryOf(tt.portal, tt.h, []byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Errorf("deliveryOf = %+v; want an error", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.id != tt.id || d.event != tt.event || d.tag != tt.tag || d.message != tt.message {
				t.Errorf("deliveryOf = id %q event %q tag %q message %q; want %q %q %q %q", d.id, d.event, d.tag, d.message, tt.id, tt.event, tt.tag, tt.message)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	for _, tt := range []struct{ delivery, want string }{
		{"13792a34-cac6-4fda-95a8-c58e00a3954e", "gl:13792a34-cac6-4fda-95a8-c58e00a3954e"},
		{"", ""},
	} {
		if got := eventID("gl", tt.delivery); got != tt.want {
			t.Errorf("eventID(gl, %q) = %q; want %q", tt.delivery, got, tt.want)
		}
	}
	// Too long for an event id, or not printable ASCII: hashed, the same
	// for every redelivery.
	for _, delivery := range []string{strings.Repeat("x", maxDeliveryLen+1), "has space", "é"} {
		got := eventID("gl", delivery)
		if len(got) != len("gl:")+64 || !strings.HasPrefix(got, "gl:") || got != eventID("gl", delivery) {
			t.Errorf("eventID(gl, %q) = %q; want gl: and a 64-character hash, the same each time", delivery, got)
		}
	}
}
