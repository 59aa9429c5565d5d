package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's reference vector.
const (
	refSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	refID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	refTimestamp = 1614265330
	refBody      = `{"test": 2432232314}`
	refSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustKey(t *testing.T, secret string) []byte {
	t.Helper()
	k, err := ParseSecret(secret)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return k
}

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return s
}

func TestSignReferenceVector(t *testing.T) {
	key := mustKey(t, refSecret)
	got := Sign([][]byte{key}, refID, time.Unix(refTimestamp, 0), []byte(refBody))
	if got != refSignature {
		t.Errorf("Sign(reference vector) = %q; want %q", got, refSignature)
	}
}

func TestSignMatchesHMAC(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	id, body := "dlv_1", []byte(`{"id":"e1"}`)
	ts := time.Date(2025, 3, 1, 12, 0, 0, 999, time.UTC)

	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))

	if got := Sign([][]byte{key}, id, ts, body); got != want {
		t.Errorf("Sign(one key) = %q; want %q", got, want)
	}
	other := []byte("fedcba9876543210fedcba9876543210")
	two := Sign([][]byte{key, other}, id, ts, body)
	parts := strings.Split(two, " ")
	if len(parts) != 2 || parts[0] != want || !strings.HasPrefix(parts[1], "v1,") || parts[1] == want {
		t.Errorf("Sign(two keys) = %q; want %q followed by a second v1 signature", two, want)
	}
	if got := Sign(nil, id, ts, body); got != "" {
		t.Errorf("Sign(no keys) = %q; want empty", got)
	}
}

func TestVerifyReferenceVector(t *testing.T) {
	h := http.Header{}
	h.Set(HeaderID, refID)
	h.Set(HeaderTimestamp, strconv.Itoa(refTimestamp))
	h.Set(HeaderSignature, refSignature)
	for _, secret := range []string{refSecret, strings.TrimPrefix(refSecret, SecretPrefix)} {
		v := Verifier{Secrets: []string{secret}, Now: func() time.Time { return time.Unix(refTimestamp+30, 0) }}
		if err := v.Verify(h, []byte(refBody)); err != nil {
			t.Errorf("Verify(reference vector, secret %q) = %v; want nil", secret, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	secret := mustSecret(t)
	body := []byte(`{"id":"0194d8a5-0000-7000-8000-000000000001"}`)
	h := http.Header{}
	SetHeaders(h, [][]byte{mustKey(t, secret)}, "dlv_1", time.Now(), body)
	for _, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		if h.Get(name) == "" {
			t.Errorf("SetHeaders left %s empty", name)
		}
	}
	if err := Verify(secret, h, body); err != nil {
		t.Errorf("Verify(signed delivery) = %v; want nil", err)
	}
}

func TestRotation(t *testing.T) {
	oldSecret, newSecret := mustSecret(t), mustSecret(t)
	body := []byte(`[{"id":"a"},{"id":"b"}]`)
	h := http.Header{}
	SetHeaders(h, [][]byte{mustKey(t, newSecret), mustKey(t, oldSecret)}, "dlv_2", time.Now(), body)

	for name, secrets := range map[string][]string{
		"old only":          {oldSecret},
		"new only":          {newSecret},
		"both":              {oldSecret, newSecret},
		"unrelated and new": {mustSecret(t), newSecret},
	} {
		t.Run(name, func(t *testing.T) {
			v := Verifier{Secrets: secrets}
			if err := v.Verify(h, body); err != nil {
				t.Errorf("Verify(rotated signatures) = %v; want nil", err)
			}
		})
	}
	v := Verifier{Secrets: []string{mustSecret(t)}}
	if err := v.Verify(h, body); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify(unrelated secret) = %v; want %v", err, ErrSignature)
	}
}

func TestVerifyRefuses(t *testing.T) {
	secret := mustSecret(t)
	key := mustKey(t, secret)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"id":"e1"}`)

	signed := func(id string, ts time.Time, b []byte) http.Header {
		h := http.Header{}
		SetHeaders(h, [][]byte{key}, id, ts, b)
		return h
	}
	tests := []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"tampered body", signed("dlv_1", now, body), []byte(`{"id":"e2"}`), ErrSignature},
		{"tampered id", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Set(HeaderID, "dlv_2")
			return h
		}(), body, ErrSignature},
		{"tampered timestamp", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()-1, 10))
			return h
		}(), body, ErrSignature},
		{"expired", signed("dlv_1", now.Add(-DefaultTolerance-time.Second), body), body, ErrTimestamp},
		{"future", signed("dlv_1", now.Add(DefaultTolerance+time.Second), body), body, ErrTimestamp},
		{"unparsable timestamp", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Set(HeaderTimestamp, "2025-06-01T12:00:00Z")
			return h
		}(), body, ErrTimestamp},
		{"missing id", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Del(HeaderID)
			return h
		}(), body, ErrMissingHeaders},
		{"missing timestamp", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Del(HeaderTimestamp)
			return h
		}(), body, ErrMissingHeaders},
		{"missing signature", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Del(HeaderSignature)
			return h
		}(), body, ErrMissingHeaders},
		{"no headers", http.Header{}, body, ErrMissingHeaders},
		{"only other versions", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Set(HeaderSignature, "v2,"+strings.TrimPrefix(h.Get(HeaderSignature), "v1,"))
			return h
		}(), body, ErrSignature},
		{"signature not base64", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Set(HeaderSignature, "v1,!!!")
			return h
		}(), body, ErrSignature},
		{"signature without version", func() http.Header {
			h := signed("dlv_1", now, body)
			h.Set(HeaderSignature, strings.TrimPrefix(h.Get(HeaderSignature), "v1,"))
			return h
		}(), body, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Verifier{Secrets: []string{secret}, Now: func() time.Time { return now }}
			if err := v.Verify(tt.h, tt.body); !errors.Is(err, tt.want) {
				t.Errorf("Verify(%s) = %v; want %v", tt.name, err, tt.want)
			}
		})
	}
}

func TestVerifySkipsUnknownVersions(t *testing.T) {
	secret := mustSecret(t)
	now := time.Now()
	body := []byte(`{}`)
	h := http.Header{}
	SetHeaders(h, [][]byte{mustKey(t, secret)}, "dlv_1", now, body)
	valid := h.Get(HeaderSignature)
	h.Set(HeaderSignature, "v1a,AAAA v2,"+strings.TrimPrefix(valid, "v1,")+" v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+valid)
	if err := Verify(secret, h, body); err != nil {
		t.Errorf("Verify(mixed versions with one valid v1) = %v; want nil", err)
	}
}

func TestVerifierTolerance(t *testing.T) {
	secret := mustSecret(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{}`)
	h := http.Header{}
	SetHeaders(h, [][]byte{mustKey(t, secret)}, "dlv_1", now.Add(-10*time.Minute), body)

	strict := Verifier{Secrets: []string{secret}, Now: func() time.Time { return now }}
	if err := strict.Verify(h, body); !errors.Is(err, ErrTimestamp) {
		t.Errorf("Verify(10 min old, default tolerance) = %v; want %v", err, ErrTimestamp)
	}
	lax := Verifier{Secrets: []string{secret}, Tolerance: 15 * time.Minute, Now: func() time.Time { return now }}
	if err := lax.Verify(h, body); err != nil {
		t.Errorf("Verify(10 min old, 15 min tolerance) = %v; want nil", err)
	}
}

func TestVerifyBadSecret(t *testing.T) {
	h := http.Header{}
	SetHeaders(h, [][]byte{mustKey(t, refSecret)}, "dlv_1", time.Now(), nil)
	err := Verify("whsec_short", h, nil)
	if err == nil || errors.Is(err, ErrSignature) {
		t.Errorf("Verify(malformed secret) = %v; want a secret parse error", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := mustSecret(t), mustSecret(t)
	if a == b {
		t.Errorf("NewSecret() returned %q twice", a)
	}
	if !strings.HasPrefix(a, SecretPrefix) {
		t.Errorf("NewSecret() = %q; want prefix %q", a, SecretPrefix)
	}
	if k := mustKey(t, a); len(k) != 32 {
		t.Errorf("ParseSecret(NewSecret()) = %d bytes; want 32", len(k))
	}
}

func TestParseSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		in      string
		wantLen int // 0: want an error
	}{
		{refSecret, 24},
		{strings.TrimPrefix(refSecret, SecretPrefix), 24},
		{SecretPrefix + b64(32), 32},
		{SecretPrefix + b64(64), 64},
		{SecretPrefix + strings.TrimRight(b64(32), "="), 32},
		{" " + SecretPrefix + b64(32) + "\n", 32},
		{"", 0},
		{SecretPrefix, 0},
		{SecretPrefix + b64(23), 0},
		{SecretPrefix + b64(65), 0},
		{SecretPrefix + "not base64!", 0},
	}
	for _, tt := range tests {
		k, err := ParseSecret(tt.in)
		switch {
		case tt.wantLen == 0 && err == nil:
			t.Errorf("ParseSecret(%q) = %d bytes; want an error", tt.in, len(k))
		case tt.wantLen != 0 && (err != nil || len(k) != tt.wantLen):
			t.Errorf("ParseSecret(%q) = %d bytes, %v; want %d bytes", tt.in, len(k), err, tt.wantLen)
		}
		if err != nil && len(tt.in) > 10 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
			t.Errorf("ParseSecret(%q) error %q repeats the secret", tt.in, err)
		}
	}
}
