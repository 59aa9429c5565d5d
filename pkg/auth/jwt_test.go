package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// claimsFor returns valid claims for sub at testNow, with jti, changed by
// edit.
func claimsFor(sub, jti string, edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": sub,
		"iat": testNow.Unix(),
		"exp": testNow.Add(10 * time.Minute).Unix(),
		"jti": jti,
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// signed signs claims with a jwt method and key.
func signed(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// handmade builds a token from any header and claims, its signature an
// HMAC-SHA256 of the signing input under key.
func handmade(t *testing.T, header map[string]any, c jwt.MapClaims, key []byte) string {
	t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := seg(header) + "." + seg(c)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestAuthenticateJWT(t *testing.T) {
	f := newFixture(t)
	hs256 := jwt.SigningMethodHS256
	valid := func(jti string, edit func(jwt.MapClaims)) string {
		return signed(t, hs256, testSecret, claimsFor("prd_a", jti, edit))
	}
	tampered := func() string {
		tok := valid("tampered", nil)
		parts := strings.Split(tok, ".")
		b, _ := json.Marshal(claimsFor("prd_a", "tampered", func(c jwt.MapClaims) {
			c["exp"] = testNow.Add(time.Hour).Unix()
		}))
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}
	tests := []authCase{
		{name: "valid", header: "Bearer " + valid("valid", nil), want: "prd_a"},
		{name: "gty client-credentials", header: "Bearer " + valid("gty-ok", func(c jwt.MapClaims) {
			c["gty"] = "client-credentials"
		}), want: "prd_a"},
		{name: "iat in the future within skew", header: "Bearer " + valid("iat-skew", func(c jwt.MapClaims) {
			c["iat"] = testNow.Add(30 * time.Second).Unix()
		}), want: "prd_a"},
		{name: "expired within skew", header: "Bearer " + valid("exp-skew", func(c jwt.MapClaims) {
			c["iat"] = testNow.Add(-10 * time.Minute).Unix()
			c["exp"] = testNow.Add(-30 * time.Second).Unix()
		}), want: "prd_a"},
		{name: "lifetime exactly the maximum", header: "Bearer " + valid("life-max", func(c jwt.MapClaims) {
			c["exp"] = testNow.Add(time.Hour).Unix()
		}), want: "prd_a"},
		{name: "audience and issuer ignored", header: "Bearer " + valid("aud", func(c jwt.MapClaims) {
			c["aud"] = "somewhere"
			c["iss"] = "someone"
		}), want: "prd_a"},
		{name: "wrong gty", header: "Bearer " + valid("gty-bad", func(c jwt.MapClaims) {
			c["gty"] = "password"
		}), err: ErrGrantType},
		{name: "empty gty", header: "Bearer " + valid("gty-empty", func(c jwt.MapClaims) {
			c["gty"] = ""
		}), err: ErrGrantType},
		{name: "gty not a string", header: "Bearer " + valid("gty-num", func(c jwt.MapClaims) {
			c["gty"] = 1
		}), err: ErrMalformed},
		{name: "alg none", header: "Bearer " + signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
			claimsFor("prd_a", "none", nil)), err: ErrAlgorithm},
		{name: "HS384", header: "Bearer " + signed(t, jwt.SigningMethodHS384, testSecret,
			claimsFor("prd_a", "hs384", nil)), err: ErrAlgorithm},
		{name: "HS512", header: "Bearer " + signed(t, jwt.SigningMethodHS512, testSecret,
			claimsFor("prd_a", "hs512", nil)), err: ErrAlgorithm},
		{name: "RS256 header signed with the HMAC secret", header: "Bearer " + handmade(t,
			map[string]any{"alg": "RS256", "typ": "JWT"}, claimsFor("prd_a", "rs256", nil), testSecret),
			err: ErrAlgorithm},
		{name: "unknown alg", header: "Bearer " + handmade(t,
			map[string]any{"alg": "XS256"}, claimsFor("prd_a", "xs256", nil), testSecret),
			err: ErrAlgorithm},
		{name: "no alg", header: "Bearer " + handmade(t,
			map[string]any{"typ": "JWT"}, claimsFor("prd_a", "noalg", nil), testSecret),
			err: ErrAlgorithm},
		{name: "crit header", header: "Bearer " + handmade(t,
			map[string]any{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, claimsFor("prd_a", "crit", nil), testSecret),
			err: ErrMalformed},
		{name: "tampered payload", header: "Bearer " + tampered(), err: ErrInvalidCredentials},
		{name: "other secret", header: "Bearer " + signed(t, hs256, []byte("another secret of thirty-two by"),
			claimsFor("prd_a", "other", nil)), err: ErrInvalidCredentials},
		{name: "secret text instead of its bytes", header: "Bearer " + signed(t, hs256,
			[]byte(f.a.Credentials.JWTSecret), claimsFor("prd_a", "text", nil)), err: ErrInvalidCredentials},
		{name: "unknown sub", header: "Bearer " + signed(t, hs256, testSecret,
			claimsFor("prd_nobody", "nobody", nil)), err: ErrInvalidCredentials},
		{name: "producer without secret, empty key", header: "Bearer " + signed(t, hs256, []byte{},
			claimsFor("prd_nojwt", "nojwt", nil)), err: ErrInvalidCredentials},
		{name: "no sub", header: "Bearer " + valid("nosub", func(c jwt.MapClaims) { delete(c, "sub") }),
			err: ErrMissingClaim},
		{name: "no exp", header: "Bearer " + valid("noexp", func(c jwt.MapClaims) { delete(c, "exp") }),
			err: ErrMissingClaim},
		{name: "no iat", header: "Bearer " + valid("noiat", func(c jwt.MapClaims) { delete(c, "iat") }),
			err: ErrMissingClaim},
		{name: "no jti", header: "Bearer " + valid("", func(c jwt.MapClaims) { delete(c, "jti") }),
			err: ErrMissingClaim},
		{name: "empty jti", header: "Bearer " + valid("", nil), err: ErrMissingClaim},
		{name: "expired", header: "Bearer " + valid("expired", func(c jwt.MapClaims) {
			c["iat"] = testNow.Add(-10 * time.Minute).Unix()
			c["exp"] = testNow.Add(-2 * time.Minute).Unix()
		}), err: ErrExpired},
		{name: "iat in the future", header: "Bearer " + valid("iat-future", func(c jwt.MapClaims) {
			c["iat"] = testNow.Add(2 * time.Minute).Unix()
			c["exp"] = testNow.Add(10 * time.Minute).Unix()
		}), err: ErrNotYetValid},
		{name: "nbf in the future", header: "Bearer " + valid("nbf-future", func(c jwt.MapClaims) {
			c["nbf"] = testNow.Add(2 * time.Minute).Unix()
		}), err: ErrNotYetValid},
		{name: "exp too far", header: "Bearer " + valid("too-long", func(c jwt.MapClaims) {
			c["exp"] = testNow.Add(time.Hour + time.Second).Unix()
		}), err: ErrLifetime},
		{name: "exp before iat", header: "Bearer " + valid("backwards", func(c jwt.MapClaims) {
			c["iat"] = testNow.Add(30 * time.Second).Unix()
			c["exp"] = testNow.Add(10 * time.Second).Unix()
		}), err: ErrLifetime},
		{name: "exp not a number", header: "Bearer " + valid("exp-string", func(c jwt.MapClaims) {
			c["exp"] = "tomorrow"
		}), err: ErrMalformed},
		{name: "two segments", header: "Bearer abc.def", err: ErrMalformed},
		{name: "not base64 JSON", header: "Bearer abc.def.ghi", err: ErrMalformed},
		{name: "four segments", header: "Bearer " + valid("four", nil) + ".x", err: ErrMalformed},
		{name: "disabled", header: "Bearer " + signed(t, hs256, testSecret, claimsFor("prd_off", "off", nil)),
			err: ErrDisabled},
		{name: "disabled bad signature", header: "Bearer " + signed(t, hs256, []byte("guess"),
			claimsFor("prd_off", "off-guess", nil)), err: ErrInvalidCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, f.auth) })
	}
}

// TestJWTUnknownSubjectReadsAsBadSignature checks that a token for an
// unknown producer and one with a bad signature give the same answer.
func TestJWTUnknownSubjectReadsAsBadSignature(t *testing.T) {
	f := newFixture(t)
	hs256 := jwt.SigningMethodHS256
	_, bad := f.auth.Authenticate(t.Context(), "Bearer "+signed(t, hs256, []byte("guess"), claimsFor("prd_a", "1", nil)))
	_, unknown := f.auth.Authenticate(t.Context(), "Bearer "+signed(t, hs256, testSecret, claimsFor("prd_nobody", "1", nil)))
	_, noSecret := f.auth.Authenticate(t.Context(), "Bearer "+signed(t, hs256, testSecret, claimsFor("prd_nojwt", "1", nil)))
	for name, err := range map[string]error{"unknown sub": unknown, "producer without secret": noSecret} {
		if diff := cmp.Diff(*bad.(*Error), *err.(*Error), cmpopts.EquateErrors()); diff != "" {
			t.Errorf("%s and bad signature differ (-bad +%s):\n%s", name, name, diff)
		}
	}
}

func TestJWTChallenge(t *testing.T) {
	f := newFixture(t)
	tok := signed(t, jwt.SigningMethodHS384, testSecret, claimsFor("prd_a", "1", nil))
	_, err := f.auth.Authenticate(t.Context(), "Bearer "+tok)
	want := `Basic realm="eventsync", charset="UTF-8", Bearer realm="eventsync", error="invalid_token", ` +
		`error_description="token alg 'HS384' is not accepted; sign with HS256"`
	if got := err.(*Error).Challenge; got != want {
		t.Errorf("challenge = %q; want %q", got, want)
	}
}

func TestJWTReplayed(t *testing.T) {
	f := newFixture(t)
	tok := "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, claimsFor("prd_a", "once", nil))
	if _, err := f.auth.Authenticate(t.Context(), tok); err != nil {
		t.Fatalf("first use: %v", err)
	}
	p, err := f.auth.Authenticate(t.Context(), tok)
	if !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use = %v, %v; want %v", p, err, ErrReplayed)
	}
	// The jti is kept as long as the token could be accepted: exp plus the
	// clock skew.
	want := testNow.Add(10*time.Minute + DefaultClockSkew)
	if got := f.replay.seen["prd_a/once"]; !got.Equal(want) {
		t.Errorf("jti kept until %v; want %v", got, want)
	}
	// A token that fails other checks does not spend its jti.
	bad := "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, claimsFor("prd_a", "kept", func(c jwt.MapClaims) {
		c["gty"] = "password"
	}))
	if _, err := f.auth.Authenticate(t.Context(), bad); !errors.Is(err, ErrGrantType) {
		t.Fatalf("Authenticate(bad gty) = %v; want %v", err, ErrGrantType)
	}
	if _, ok := f.replay.seen["prd_a/kept"]; ok {
		t.Errorf("a refused token spent its jti")
	}
}

func TestJWTReplayStoreDown(t *testing.T) {
	f := newFixture(t)
	f.replay.err = errors.New("nats: timeout")
	_, err := f.auth.Authenticate(t.Context(), "Bearer "+signed(t, jwt.SigningMethodHS256, testSecret, claimsFor("prd_a", "1", nil)))
	var ae *Error
	if !errors.Is(err, ErrUnavailable) || errors.As(err, &ae) {
		t.Errorf("Authenticate with the replay store down = %v; want %v and no *Error", err, ErrUnavailable)
	}
}

func TestJWTWithoutReplayStore(t *testing.T) {
	f := newFixture(t)
	a := New(f.dir, nil, Config{Now: func() time.Time { return testNow }})
	tok := signed(t, jwt.SigningMethodHS256, testSecret, claimsFor("prd_a", "1", nil))
	if _, err := a.Authenticate(t.Context(), "Bearer "+tok); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate(JWT) without a replay store = %v; want %v", err, ErrInvalidCredentials)
	}
	if _, err := a.Authenticate(t.Context(), "Bearer "+testAPIKey); err != nil {
		t.Errorf("Authenticate(API key) without a replay store = %v; want nil", err)
	}
}

// TestJWTReplayOverNATS runs the replay check on the jti bucket of a real
// server. The authenticator's clock stands still, so the token stays
// valid while the server forgets its jti.
func TestJWTReplayOverNATS(t *testing.T) {
	nc := natstest.Start(t).Connect(t)
	js, err := stream.JetStream(nc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := stream.EnsureJTI(t.Context(), js, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	now := time.Now().Truncate(time.Second)
	a := New(f.dir, NewReplayStore(kv), Config{ClockSkew: time.Millisecond, Now: func() time.Time { return now }})
	tok := "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{
		"sub": "prd_a", "iat": now.Unix(), "exp": now.Add(time.Second).Unix(), "jti": "over-nats",
	})
	if _, err := a.Authenticate(t.Context(), tok); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := a.Authenticate(t.Context(), tok); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use = %v; want %v", err, ErrReplayed)
	}
	waitFirstAgain(t, func(ctx context.Context) (bool, error) {
		_, err := a.Authenticate(ctx, tok)
		if errors.Is(err, ErrReplayed) {
			return false, nil
		}
		return err == nil, err
	})
}
