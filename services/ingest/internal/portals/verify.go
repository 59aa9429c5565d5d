package portals

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventsync/eventsync/pkg/problem"
)

// Tolerance is how far a Standard Webhooks webhook-timestamp may lie from
// the time it is received (either way): older deliveries are refused as
// possible replays.
const Tolerance = 5 * time.Minute

// SignatureError says why a webhook's signature was refused (401).
type SignatureError struct{ Detail string }

func (e *SignatureError) Error() string { return "signature refused: " + e.Detail }

func refused(format string, args ...any) error {
	return &SignatureError{Detail: fmt.Sprintf(format, args...)}
}

// verify checks that a webhook was sent by the portal's system: the
// token, HMAC or Standard Webhooks signature over the raw body, made with
// the portal's secret. Comparisons take constant time.
func verify(p *Portal, h http.Header, body []byte, now time.Time) error {
	switch p.Type {
	case GitLab:
		tok := h.Get("X-Gitlab-Token")
		if tok == "" {
			return refused("X-Gitlab-Token is missing")
		}
		// Hashed first so that the comparison does not reveal the length.
		got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(p.Secret))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return refused("X-Gitlab-Token is not the portal's secret token")
		}
		return nil
	case GitHub:
		sig := h.Get("X-Hub-Signature-256")
		if sig == "" {
			return refused("X-Hub-Signature-256 is missing")
		}
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		got, err := hex.DecodeString(hexSig)
		if !ok || err != nil {
			return refused("X-Hub-Signature-256 is not sha256=<hex>")
		}
		mac := hmac.New(sha256.New, []byte(p.Secret))
		mac.Write(body)
		if !hmac.Equal(got, mac.Sum(nil)) {
			return refused("X-Hub-Signature-256 does not match the body")
		}
		return nil
	case Standard:
		return verifyStandard(string(p.Secret), h, body, now)
	}
	return refused("the portal has no known type")
}

// verifyStandard checks a Standard Webhooks signature: webhook-signature
// holds space-separated "v1,<base64 HMAC-SHA256>" signatures of
// "<webhook-id>.<webhook-timestamp>.<body>" with the decoded whsec_ key;
// one must match, and the timestamp must lie within Tolerance of now.
func verifyStandard(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	switch {
	case id == "":
		return refused("webhook-id is missing")
	case ts == "":
		return refused("webhook-timestamp is missing")
	case sigs == "":
		return refused("webhook-signature is missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return refused("webhook-timestamp is not seconds since 1970")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return refused("webhook-timestamp is more than %s from now", Tolerance)
	}
	key, err := standardKey(secret)
	if err != nil {
		return refused("the portal's secret %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, s := range strings.Fields(sigs) {
		if v, sig, ok := strings.Cut(s, ","); ok && v == "v1" && hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return refused("no v1 signature of webhook-signature matches")
}

// standardKey decodes a Standard Webhooks secret: whsec_ (optional)
// followed by the key in base64.
func standardKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New("must be whsec_ followed by the key in base64")
	}
	return key, nil
}

// delivery is a verified webhook as ingest publishes it.
type delivery struct {
	id      string         // the sender's delivery id; empty: none sent
	event   string         // the event type as the sender names it
	tag     string         // CATEGORY.CODE
	message string         // a one-line summary
	payload jsontext.Value // the JSON object the sender sent
}

// deliveryOf reads a verified webhook: its payload, a JSON object (GitHub
// may send it form-encoded, in the field payload), its delivery id, event
// type and tag. Errors are problems (400).
func deliveryOf(p *Portal, h http.Header, body []byte) (*delivery, error) {
	raw := body
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil || !form.Has("payload") {
			return nil, problem.BadRequest("a form-encoded webhook must carry the JSON payload in the field payload")
		}
		raw = []byte(form.Get("payload"))
	}
	var fields map[string]jsontext.Value
	if err := jsonv2.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, problem.BadRequest("the payload must be one JSON object")
	}
	d := &delivery{payload: jsontext.Value(raw)}
	switch p.Type {
	case GitLab:
		d.id = h.Get("X-Gitlab-Event-UUID")
		if d.id == "" {
			d.id = h.Get("Idempotency-Key")
		}
		d.event = h.Get("X-Gitlab-Event")
		d.tag = p.Category + "." + code(d.event)
		d.message = summary(d.event, str(field(fields, "project"), "path_with_namespace"))
	case GitHub:
		d.id = h.Get("X-GitHub-Delivery")
		d.event = h.Get("X-GitHub-Event")
		name := d.event
		if action := str(fields, "action"); action != "" {
			name += "_" + action
			d.message = summary(d.event+" "+action, str(field(fields, "repository"), "full_name"))
		} else {
			d.message = summary(d.event, str(field(fields, "repository"), "full_name"))
		}
		d.tag = p.Category + "." + code(name)
	case Standard:
		d.id = h.Get("webhook-id")
		d.event = str(fields, "type")
		parts := tokens(strings.Split(d.event, "."))
		if len(parts) == 0 {
			parts = []string{"UNKNOWN"}
		}
		d.tag = strings.Join(append([]string{p.Category}, parts...), ".")
		d.message = summary(d.event, "")
	}
	return d, nil
}

// code is an event type as a tag's code; UNKNOWN when there is none.
func code(event string) string {
	if c := Token(event); c != "" {
		return c
	}
	return "UNKNOWN"
}

// summary is an event's message: what happened, and where.
func summary(what, where string) string {
	if what == "" {
		what = "webhook"
	}
	if where == "" {
		return what
	}
	return what + " on " + where
}

// field returns the object member name of fields, nil when absent or not
// an object.
func field(fields map[string]jsontext.Value, name string) map[string]jsontext.Value {
	var m map[string]jsontext.Value
	if v, ok := fields[name]; ok && v.Kind() == '{' {
		_ = jsonv2.Unmarshal(v, &m)
	}
	return m
}

// str returns the string member name of fields, empty when absent or not
// a string.
func str(fields map[string]jsontext.Value, name string) string {
	var s string
	if v, ok := fields[name]; ok && v.Kind() == '"' {
		_ = jsonv2.Unmarshal(v, &s)
	}
	return s
}

// maxDeliveryLen is the longest delivery id used as it is in an event id;
// a longer one (or one that is not printable ASCII) is hashed.
const maxDeliveryLen = 64

// eventID is the id of a portal's event: "<portal>:<delivery id>", the
// same for every redelivery; empty without a delivery id (EventSync then
// assigns one).
func eventID(portal, deliveryID string) string {
	if deliveryID == "" {
		return ""
	}
	ok := len(deliveryID) <= maxDeliveryLen
	for i := 0; ok && i < len(deliveryID); i++ {
		ok = deliveryID[i] > 0x20 && deliveryID[i] < 0x7f
	}
	if !ok {
		sum := sha256.Sum256([]byte(deliveryID))
		deliveryID = hex.EncodeToString(sum[:])
	}
	return portal + ":" + deliveryID
}
