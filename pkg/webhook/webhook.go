// Package webhook implements the Standard Webhooks signature scheme
// (https://www.standardwebhooks.com): EventSync signs every delivery with it,
// and receivers written in Go can use this package to verify them.
//
// A delivery carries three headers:
//
//	webhook-id:        the delivery's id, the same on every retry
//	webhook-timestamp: when the attempt was made, in unix seconds
//	webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
//
// While a secret rotates, the signature header holds one space-separated
// signature per key, and a receiver accepts the delivery if any of them
// matches a secret it knows.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed delivery.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret in its text form.
const SecretPrefix = "whsec_"

// Secret sizes in bytes, decoded. The scheme allows 24 to 64; NewSecret
// makes 32.
const (
	MinSecretSize = 24
	MaxSecretSize = 64
	secretSize    = 32
)

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock, either way, before Verify refuses it as a replay.
const DefaultTolerance = 5 * time.Minute

// version is the only signature version the scheme defines for HMAC keys.
const version = "v1"

// Errors of verification. Verify wraps them with details; test with
// errors.Is.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is absent or empty.
	ErrMissingHeaders = errors.New("missing webhook headers")
	// ErrTimestamp: webhook-timestamp is not a unix time, or is further from
	// now than the tolerance.
	ErrTimestamp = errors.New("webhook timestamp refused")
	// ErrSignature: no v1 signature in webhook-signature matches a secret.
	ErrSignature = errors.New("no matching webhook signature")
)

// NewSecret returns a new random secret in its text form, whsec_ followed by
// the base64 of 32 bytes from crypto/rand.
func NewSecret() (string, error) {
	b := make([]byte, secretSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret decodes a secret's text form, with or without the whsec_
// prefix, into the HMAC key. Errors never repeat the secret.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), SecretPrefix)
	if s == "" {
		return nil, errors.New("parse secret: empty")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some tools strip the padding; accept that too.
		var rawErr error
		if key, rawErr = base64.RawStdEncoding.DecodeString(s); rawErr != nil {
			return nil, errors.New("parse secret: not base64 after the whsec_ prefix")
		}
	}
	if len(key) < MinSecretSize || len(key) > MaxSecretSize {
		return nil, fmt.Errorf("parse secret: %d bytes decoded, want %d to %d", len(key), MinSecretSize, MaxSecretSize)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a delivery: one
// "v1,<base64>" signature per key, separated by spaces, in the order of
// keys. It returns "" when keys is empty.
func Sign(keys [][]byte, id string, ts time.Time, body []byte) string {
	unix := strconv.FormatInt(ts.Unix(), 10)
	var b strings.Builder
	b.Grow(len(keys) * (len(version) + 1 + base64.StdEncoding.EncodedLen(sha256.Size) + 1))
	for i, key := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(version)
		b.WriteByte(',')
		b.WriteString(base64.StdEncoding.EncodeToString(mac(key, id, unix, body)))
	}
	return b.String()
}

// SetHeaders sets webhook-id, webhook-timestamp and webhook-signature on h
// for a delivery signed with keys.
func SetHeaders(h http.Header, keys [][]byte, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(keys, id, ts, body))
}

// mac is the HMAC-SHA256 of the signed content, "id.timestamp.body".
func mac(key []byte, id, unix string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(unix))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery's headers and body against secret (in its text
// form, as shown when the subscription was created), allowing
// DefaultTolerance between the delivery's timestamp and time.Now. body must
// be the request body exactly as received.
func Verify(secret string, h http.Header, body []byte) error {
	v := Verifier{Secrets: []string{secret}}
	return v.Verify(h, body)
}

// Verifier checks signed deliveries. The zero value refuses everything; set
// Secrets.
type Verifier struct {
	// Secrets are the secrets in their text form; a delivery passes if it
	// carries a valid signature by any of them (keep the old secret here
	// while a rotation overlaps).
	Secrets []string
	// Tolerance is how far the delivery's timestamp may be from Now, either
	// way; zero or less means DefaultTolerance.
	Tolerance time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verify checks a delivery's headers and body. It returns nil when the
// timestamp is within the tolerance and a v1 signature matches one of the
// secrets, and otherwise an error wrapping ErrMissingHeaders, ErrTimestamp or
// ErrSignature, or a secret's parse error. body must be the request body
// exactly as received.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	id, unix, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	var missing []string
	for _, hv := range []struct{ name, value string }{{HeaderID, id}, {HeaderTimestamp, unix}, {HeaderSignature, sigs}} {
		if hv.value == "" {
			missing = append(missing, hv.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}

	if err := v.checkTime(unix); err != nil {
		return err
	}

	keys := make([][]byte, 0, len(v.Secrets))
	for i, s := range v.Secrets {
		k, err := ParseSecret(s)
		if err != nil {
			return fmt.Errorf("verify: secret %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	want := make([][]byte, len(keys))
	for i, k := range keys {
		want[i] = mac(k, id, unix, body)
	}
	for _, sig := range strings.Fields(sigs) {
		ver, enc, ok := strings.Cut(sig, ",")
		if !ok || ver != version {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		for _, w := range want {
			if hmac.Equal(got, w) {
				return nil
			}
		}
	}
	return ErrSignature
}

// checkTime parses webhook-timestamp and checks it against the tolerance.
func (v *Verifier) checkTime(unix string) error {
	sec, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrTimestamp, unix)
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	n := now()
	ts := time.Unix(sec, 0)
	switch {
	case ts.Before(n.Add(-tol)):
		return fmt.Errorf("%w: %s is older than the tolerance of %s", ErrTimestamp, unix, tol)
	case ts.After(n.Add(tol)):
		return fmt.Errorf("%w: %s is further in the future than the tolerance of %s", ErrTimestamp, unix, tol)
	}
	return nil
}
