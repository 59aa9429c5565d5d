package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/eventsync/eventsync/pkg/producer"
)

// fakeDirectory is an in-memory directory with real bcrypt hashes.
type fakeDirectory struct {
	byID  map[string]*producer.Producer
	byKey map[string]*producer.Producer

	mu      sync.Mutex
	checked int // CheckPassword calls
}

func newFakeDirectory(ps ...*producer.Producer) *fakeDirectory {
	d := &fakeDirectory{byID: map[string]*producer.Producer{}, byKey: map[string]*producer.Producer{}}
	for _, p := range ps {
		d.byID[p.ID] = p
		for _, k := range p.Credentials.APIKeys {
			d.byKey[k.SHA256] = p
		}
	}
	return d
}

func (d *fakeDirectory) Get(id string) (*producer.Producer, bool) {
	p, ok := d.byID[id]
	return p, ok
}

func (d *fakeDirectory) ByAPIKey(sha256hex string) (*producer.Producer, bool) {
	p, ok := d.byKey[sha256hex]
	return p, ok
}

func (d *fakeDirectory) CheckPassword(p *producer.Producer, password string) bool {
	d.mu.Lock()
	d.checked++
	d.mu.Unlock()
	if p == nil {
		_ = bcrypt.CompareHashAndPassword([]byte(decoyHash), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(p.Credentials.PasswordHash), []byte(password)) == nil
}

// fakeReplay remembers jtis in a map, or fails with err.
type fakeReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
	err  error
}

func (r *fakeReplay) Remember(_ context.Context, producerID, jti string, until time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return false, r.err
	}
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	k := producerID + "/" + jti
	if _, ok := r.seen[k]; ok {
		return false, nil
	}
	r.seen[k] = until
	return true, nil
}

// Fixture credentials.
var (
	testNow     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testAPIKey  = "esk_" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))
	otherAPIKey = "esk_" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	offAPIKey   = "esk_" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x33}, 32))
	testSecret  = bytes.Repeat([]byte{0x42}, 32)
)

const (
	// decoyHash is a bcrypt hash (cost 10) of a password nobody knows.
	decoyHash     = "$2a$10$ZJlXJwUTdAp5Enlp.oh4ae9E1aIS5Uh0YKSb1c.Wq6/g/6nQELWTK"
	testPassword  = "correct horse"
	colonPassword = "a:b::c"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	return string(h)
}

// fixture is a directory of four producers: prd_a (every credential),
// prd_colon (a password with colons), prd_off (disabled) and prd_nojwt
// (no JWT secret).
type fixture struct {
	dir    *fakeDirectory
	replay *fakeReplay
	auth   *Authenticator
	a, off *producer.Producer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	a := &producer.Producer{ID: "prd_a", Name: "a", Enabled: true, Credentials: producer.Credentials{
		PasswordHash: bcryptHash(t, testPassword),
		APIKeys:      []producer.APIKey{{Prefix: testAPIKey[:12], SHA256: sha256Hex(testAPIKey)}},
		JWTSecret:    base64.RawURLEncoding.EncodeToString(testSecret),
	}}
	colon := &producer.Producer{ID: "prd_colon", Name: "colon", Enabled: true, Credentials: producer.Credentials{
		PasswordHash: bcryptHash(t, colonPassword),
	}}
	off := &producer.Producer{ID: "prd_off", Name: "off", Enabled: false, Credentials: producer.Credentials{
		PasswordHash: bcryptHash(t, testPassword),
		APIKeys:      []producer.APIKey{{Prefix: offAPIKey[:12], SHA256: sha256Hex(offAPIKey)}},
		JWTSecret:    base64.URLEncoding.EncodeToString(testSecret), // padded: accepted too
	}}
	noJWT := &producer.Producer{ID: "prd_nojwt", Name: "nojwt", Enabled: true}
	dir := newFakeDirectory(a, colon, off, noJWT)
	replay := &fakeReplay{}
	auth := New(dir, replay, Config{Now: func() time.Time { return testNow }})
	return &fixture{dir: dir, replay: replay, auth: auth, a: a, off: off}
}

func basicHeader(id, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+password))
}

// authCase is one Authenticate call and what it should give.
type authCase struct {
	name   string
	header string
	want   string // producer id on success
	err    error  // kind of failure
}

// check runs Authenticate and compares with c.
func (c authCase) check(t *testing.T, a *Authenticator) {
	t.Helper()
	p, err := a.Authenticate(t.Context(), c.header)
	if c.err == nil {
		if err != nil || p == nil || p.ID != c.want {
			t.Fatalf("Authenticate(%q) = %v, %v; want %s", c.header, p, err, c.want)
		}
		return
	}
	var ae *Error
	if !errors.As(err, &ae) || !errors.Is(err, c.err) {
		t.Fatalf("Authenticate(%q) = %v, %v; want an *Error of kind %v", c.header, p, err, c.err)
	}
	if p != nil {
		t.Errorf("Authenticate(%q) returned producer %s with error %v", c.header, p.ID, err)
	}
	if forbidden := errors.Is(err, ErrDisabled); forbidden != (ae.Challenge == "") {
		t.Errorf("Authenticate(%q): kind %v with challenge %q; want a challenge unless ErrDisabled", c.header, ae.Kind, ae.Challenge)
	}
}

func TestAuthenticateBasicAndAPIKey(t *testing.T) {
	f := newFixture(t)
	tests := []authCase{
		{name: "basic", header: basicHeader("prd_a", testPassword), want: "prd_a"},
		{name: "basic scheme in lower case", header: "basic " + basicHeader("prd_a", testPassword)[6:], want: "prd_a"},
		{name: "basic with spaces around", header: "  Basic   " + basicHeader("prd_a", testPassword)[6:] + " ", want: "prd_a"},
		{name: "basic colon in password", header: basicHeader("prd_colon", colonPassword), want: "prd_colon"},
		{name: "basic colon password cut short", header: basicHeader("prd_colon", "a"), err: ErrInvalidCredentials},
		{name: "basic wrong password", header: basicHeader("prd_a", "wrong"), err: ErrInvalidCredentials},
		{name: "basic empty password", header: basicHeader("prd_a", ""), err: ErrInvalidCredentials},
		{name: "basic unknown id", header: basicHeader("prd_nobody", testPassword), err: ErrInvalidCredentials},
		{name: "basic producer without password", header: basicHeader("prd_nojwt", ""), err: ErrInvalidCredentials},
		{name: "basic disabled", header: basicHeader("prd_off", testPassword), err: ErrDisabled},
		{name: "basic disabled wrong password", header: basicHeader("prd_off", "wrong"), err: ErrInvalidCredentials},
		{name: "basic not base64", header: "Basic !!!", err: ErrMalformed},
		{name: "basic no colon", header: "Basic " + base64.StdEncoding.EncodeToString([]byte("prd_a")), err: ErrMalformed},
		{name: "basic empty id", header: basicHeader("", testPassword), err: ErrMalformed},
		{name: "basic empty", header: "Basic", err: ErrMalformed},
		{name: "api key", header: "Bearer " + testAPIKey, want: "prd_a"},
		{name: "api key scheme in upper case", header: "BEARER " + testAPIKey, want: "prd_a"},
		{name: "api key unknown", header: "Bearer " + otherAPIKey, err: ErrInvalidCredentials},
		{name: "api key wrong length", header: "Bearer " + testAPIKey[:len(testAPIKey)-1], err: ErrMalformed},
		{name: "api key bad alphabet", header: "Bearer " + testAPIKey[:10] + "+" + testAPIKey[11:], err: ErrMalformed},
		{name: "api key disabled", header: "Bearer " + offAPIKey, err: ErrDisabled},
		{name: "bearer empty", header: "Bearer ", err: ErrMalformed},
		{name: "bearer two tokens", header: "Bearer " + testAPIKey + " " + testAPIKey, err: ErrMalformed},
		{name: "empty header", header: "", err: ErrMissing},
		{name: "blank header", header: " \t ", err: ErrMissing},
		{name: "garbage", header: "\x00\xff garbage", err: ErrScheme},
		{name: "scheme only", header: "Negotiate", err: ErrScheme},
		{name: "digest", header: `Digest username="prd_a"`, err: ErrScheme},
		{name: "too long", header: "Bearer " + strings.Repeat("a", maxAuthorization), err: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, f.auth) })
	}
}

// TestUnknownIDReadsAsWrongPassword checks that an unknown producer id and
// a wrong password give the same answer, and that the unknown id is
// checked against a password hash too (so it takes as long).
func TestUnknownIDReadsAsWrongPassword(t *testing.T) {
	f := newFixture(t)
	_, wrong := f.auth.Authenticate(t.Context(), basicHeader("prd_a", "wrong"))
	before := f.dir.checked
	_, unknown := f.auth.Authenticate(t.Context(), basicHeader("prd_nobody", "wrong"))
	if diff := cmp.Diff(*wrong.(*Error), *unknown.(*Error), cmpopts.EquateErrors()); diff != "" {
		t.Errorf("unknown id and wrong password differ (-wrong +unknown):\n%s", diff)
	}
	if got := f.dir.checked - before; got != 1 {
		t.Errorf("unknown id: CheckPassword called %d times; want 1", got)
	}
	_, key := f.auth.Authenticate(t.Context(), "Bearer "+otherAPIKey)
	if got, want := key.Error(), "authenticate: invalid API key"; got != want {
		t.Errorf("unknown API key: %q; want %q", got, want)
	}
}

// TestAPIKeyCheckedAfterLookup checks that a directory answering with the
// wrong producer for a key hash is caught.
func TestAPIKeyCheckedAfterLookup(t *testing.T) {
	f := newFixture(t)
	f.dir.byKey[sha256Hex(otherAPIKey)] = f.a
	_, err := f.auth.Authenticate(t.Context(), "Bearer "+otherAPIKey)
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate(key of nobody) = %v; want %v", err, ErrInvalidCredentials)
	}
}

func TestErrorChallenge(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, header string
		kind         error
		challenge    string
	}{
		{
			name: "missing", header: "", kind: ErrMissing,
			challenge: `Basic realm="eventsync", charset="UTF-8", Bearer realm="eventsync"`,
		},
		{
			name: "bearer", header: "Bearer " + otherAPIKey, kind: ErrInvalidCredentials,
			challenge: `Basic realm="eventsync", charset="UTF-8", Bearer realm="eventsync", error="invalid_token", error_description="invalid API key"`,
		},
		{
			name: "disabled", header: "Bearer " + offAPIKey, kind: ErrDisabled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.auth.Authenticate(t.Context(), tc.header)
			var ae *Error
			if !errors.As(err, &ae) || !errors.Is(err, tc.kind) || ae.Detail == "" {
				t.Fatalf("Authenticate(%q) = %v; want an *Error of kind %v with a detail", tc.header, err, tc.kind)
			}
			if ae.Challenge != tc.challenge {
				t.Errorf("Authenticate(%q) challenge = %q; want %q", tc.header, ae.Challenge, tc.challenge)
			}
		})
	}
}

func TestDescription(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{`alg "RS256"`, "alg 'RS256'"},
		{"back\\slash\r\nnewline\x7fé", "back?slash??newline???"},
		{strings.Repeat("x", 300), strings.Repeat("x", 200)},
	}
	for _, tc := range tests {
		if got := description(tc.in); got != tc.want {
			t.Errorf("description(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestFromNATS(t *testing.T) {
	tests := []struct {
		name string
		h    nats.Header
		want string
	}{
		{"nil", nil, ""},
		{"exact", nats.Header{"Authorization": {"Basic x"}}, "Basic x"},
		{"lower case", nats.Header{"authorization": {"Bearer y"}}, "Bearer y"},
		{"first value", nats.Header{"Authorization": {"Basic x", "Basic z"}}, "Basic x"},
		{"other headers", nats.Header{"Content-Type": {"application/json"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromNATS(tc.h); got != tc.want {
				t.Errorf("FromNATS(%v) = %q; want %q", tc.h, got, tc.want)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		header string
		want   credentials
		err    error
	}{
		{header: basicHeader("prd_x", "p:w"), want: credentials{kind: kindBasic, id: "prd_x", secret: "p:w"}},
		{header: "Basic\t" + basicHeader("prd_x", "")[6:], want: credentials{kind: kindBasic, id: "prd_x"}},
		{header: "Bearer " + testAPIKey, want: credentials{kind: kindAPIKey, secret: testAPIKey}},
		{header: "Bearer a.b.c", want: credentials{kind: kindJWT, secret: "a.b.c"}},
		{header: "Bearer abc==", want: credentials{kind: kindJWT, secret: "abc=="}},
		{header: "Bearer ==", err: ErrMalformed},
		{header: "Bearer a=b", err: ErrMalformed},
		{header: "Bearer esk_", err: ErrMalformed},
		{header: "Basic " + base64.RawStdEncoding.EncodeToString([]byte("prd_x:pw")), err: ErrMalformed},
		{header: "Bearerabc", err: ErrScheme},
		{header: "Token abc", err: ErrScheme},
	}
	for _, tc := range tests {
		got, err := parseAuthorization(tc.header)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("parseAuthorization(%q) = %+v, %v; want %+v, %v", tc.header, got, err, tc.want, tc.err)
		}
	}
}

// ExampleError shows the failure of a request without credentials.
func ExampleError() {
	a := New(newFakeDirectory(), nil, Config{})
	_, err := a.Authenticate(context.Background(), "")
	var ae *Error
	if errors.As(err, &ae) {
		fmt.Println(errors.Is(err, ErrMissing))
		fmt.Println(ae.Challenge)
		fmt.Println(ae.Detail)
	}
	// Output:
	// true
	// Basic realm="eventsync", charset="UTF-8", Bearer realm="eventsync"
	// missing Authorization header; send Basic or Bearer credentials
}
