package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// FuzzParseAuthorization checks that the parser never panics, that every
// failure is an *Error whose challenge is a valid header value, and that
// whatever it accepts is well-formed.
func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{
		"",
		" ",
		"Basic",
		"Basic ",
		basicHeader("prd_a", "pw"),
		basicHeader("prd_a", "a:b:c"),
		basicHeader("", "pw"),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("no colon")),
		"Basic !!!",
		"basic\tcHJkX2E6cHc=",
		"Bearer",
		"Bearer " + testAPIKey,
		"Bearer esk_short",
		"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwcmRfYSJ9.c2ln",
		"Bearer a b",
		"Bearer ===",
		"Bearer \x00",
		"Digest username=\"x\"",
		"\xff\xfe",
		"Bearer " + strings.Repeat("A", 100),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := parseAuthorization(h)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Challenge == "" || ae.Detail == "" {
				t.Fatalf("parseAuthorization(%q) = %#v; want an *Error with a challenge and a detail", h, err)
			}
			for i := 0; i < len(ae.Challenge); i++ {
				if b := ae.Challenge[i]; b < 0x20 || b > 0x7e {
					t.Fatalf("parseAuthorization(%q): challenge %q has byte %#x", h, ae.Challenge, b)
				}
			}
			return
		}
		switch c.kind {
		case kindBasic:
			if c.id == "" || strings.Contains(c.id, ":") {
				t.Fatalf("parseAuthorization(%q) = id %q; want a non-empty id without a colon", h, c.id)
			}
		case kindAPIKey:
			if len(c.secret) != apiKeyLen || !strings.HasPrefix(c.secret, apiKeyPrefix) {
				t.Fatalf("parseAuthorization(%q) = API key %q; want esk_ and 43 characters", h, c.secret)
			}
		case kindJWT:
			if !token68(c.secret) || strings.HasPrefix(c.secret, apiKeyPrefix) {
				t.Fatalf("parseAuthorization(%q) = token %q; want a token68 without esk_", h, c.secret)
			}
		default:
			t.Fatalf("parseAuthorization(%q) = kind %d", h, c.kind)
		}
	})
}
