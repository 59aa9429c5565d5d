package sealed_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/eventsync/eventsync/pkg/sealed"
)

// rawKey is a 32-byte key made of b repeated.
func rawKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// key is rawKey(b) in base64url without padding, as GenerateKey spells it.
func key(b byte) string { return base64.RawURLEncoding.EncodeToString(rawKey(b)) }

// id is the key id of rawKey(b).
func id(b byte) string {
	sum := sha256.Sum256(rawKey(b))
	return hex.EncodeToString(sum[:])[:8]
}

func mustParse(t *testing.T, current, old string) *sealed.Keyring {
	t.Helper()
	k, err := sealed.ParseKeys(current, old)
	if err != nil {
		t.Fatalf("ParseKeys(%q, %q): %v", current, old, err)
	}
	return k
}

func mustSeal(t *testing.T, k *sealed.Keyring, plain, context string) string {
	t.Helper()
	v, err := k.SealFor(plain, context)
	if err != nil {
		t.Fatalf("SealFor(%q, %q): %v", plain, context, err)
	}
	return v
}

// keyIDOf is the key id in a sealed value.
func keyIDOf(t *testing.T, v string) string {
	t.Helper()
	parts := strings.SplitN(v, ":", 4)
	if len(parts) != 4 || parts[0] != "sealed" || parts[1] != "v1" {
		t.Fatalf("%q is not sealed:v1:<id>:<payload>", v)
	}
	return parts[2]
}

func TestParseKeys(t *testing.T) {
	// 0xfb 0xff encodes with + and / in std and - and _ in url, so each
	// spelling is really tried.
	odd := bytes.Repeat([]byte{0xfb, 0xff}, 16)
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	long := base64.StdEncoding.EncodeToString(make([]byte, 33))
	tests := []struct {
		name          string
		current, old  string
		wantNil       bool
		wantErr       string // substring; "" for no error
		wantCurrentID string
	}{
		{name: "none", wantNil: true},
		{name: "blank", current: "  ", old: " ", wantNil: true},
		{name: "url raw", current: base64.RawURLEncoding.EncodeToString(odd), wantCurrentID: keyIDRaw(odd)},
		{name: "url padded", current: base64.URLEncoding.EncodeToString(odd), wantCurrentID: keyIDRaw(odd)},
		{name: "std raw", current: base64.RawStdEncoding.EncodeToString(odd), wantCurrentID: keyIDRaw(odd)},
		{name: "std padded", current: base64.StdEncoding.EncodeToString(odd), wantCurrentID: keyIDRaw(odd)},
		{name: "surrounding space", current: " " + key(1) + "\n", wantCurrentID: id(1)},
		{name: "old keys", current: key(1), old: key(2) + ", " + key(3), wantCurrentID: id(1)},
		{name: "old keys with empty entries", current: key(1), old: "," + key(2) + ",,", wantCurrentID: id(1)},
		{name: "old repeats current", current: key(1), old: key(1) + "," + key(2) + "," + key(2), wantCurrentID: id(1)},
		{name: "old without current", old: key(2), wantErr: "old keys set without a current key"},
		{name: "current short", current: short, wantErr: "current key: decodes to 16 bytes, want 32"},
		{name: "current long", current: long, wantErr: "current key: decodes to 33 bytes, want 32"},
		{name: "current not base64", current: "not a key!", wantErr: "current key: not base64"},
		{name: "current mixed alphabets", current: "+" + base64.RawURLEncoding.EncodeToString(odd)[1:], wantErr: "current key: not base64"},
		// Two keys found by search whose key ids are both 93613343.
		{name: "old key id collides", current: collideA, old: key(2) + "," + collideB, wantErr: "key 2 of old keys: key id 93613343 is also the id of the current key"},
		{name: "old key ids collide", current: key(1), old: collideA + "," + collideB, wantErr: "key 2 of old keys: key id 93613343 is also the id of key 1 of old keys"},
		{name: "old 2 short", current: key(1), old: key(2) + "," + short, wantErr: "key 2 of old keys: decodes to 16 bytes, want 32"},
		{name: "old 1 not base64", current: key(1), old: "%%%," + key(2), wantErr: "key 1 of old keys: not base64"},
		{name: "old counted with empty entries", current: key(1), old: ",," + short, wantErr: "key 3 of old keys: decodes to 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := sealed.ParseKeys(tt.current, tt.old)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeys(%q, %q) = %v, %v; want error containing %q", tt.current, tt.old, k, err, tt.wantErr)
				}
				if k != nil {
					t.Errorf("ParseKeys(%q, %q) returned a Keyring with its error", tt.current, tt.old)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys(%q, %q): %v", tt.current, tt.old, err)
			}
			if tt.wantNil {
				if k != nil {
					t.Fatalf("ParseKeys(%q, %q) = %v; want nil", tt.current, tt.old, k)
				}
				return
			}
			if k == nil {
				t.Fatalf("ParseKeys(%q, %q) = nil; want a Keyring", tt.current, tt.old)
			}
			if got := keyIDOf(t, mustSeal(t, k, "x", "")); got != tt.wantCurrentID {
				t.Errorf("sealed with key %s; want %s", got, tt.wantCurrentID)
			}
		})
	}
}

const (
	collideA = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAxJM"
	collideB = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0_Q"
)

func keyIDRaw(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:8]
}

// TestParseKeysErrorsHideKeys checks that no part of a bad key reaches the
// error, which ends up in logs.
func TestParseKeysErrorsHideKeys(t *testing.T) {
	short := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))
	for _, tt := range []struct{ current, old string }{
		{short, ""},
		{key(1), key(2) + "," + short},
		{key(1) + "!", ""},
	} {
		_, err := sealed.ParseKeys(tt.current, tt.old)
		if err == nil {
			t.Fatalf("ParseKeys(%q, %q) = nil error; want one", tt.current, tt.old)
		}
		for _, s := range []string{short, key(1), key(2)} {
			if strings.Contains(err.Error(), s[:8]) {
				t.Errorf("ParseKeys(%q, %q) error %q shows key material", tt.current, tt.old, err)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	k := mustParse(t, key(1), key(2))
	tests := []struct {
		name, plain, context string
	}{
		{"empty", "", ""},
		{"short", "s3cr3t", ""},
		{"whsec", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "wh_01J9Z"},
		{"unicode", "pässwörd ✓", "client-ü"},
		{"looks sealed", "sealed:v1:00000000:AAAA", ""},
		{"long", strings.Repeat("x", 4096), strings.Repeat("c", 300)},
		{"binary", "\x00\xff\x01", "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustSeal(t, k, tt.plain, tt.context)
			if !sealed.IsSealed(v) {
				t.Fatalf("SealFor(%q, %q) = %q; not sealed", tt.plain, tt.context, v)
			}
			if !strings.HasPrefix(v, "sealed:v1:"+id(1)+":") {
				t.Errorf("SealFor(%q, %q) = %q; want prefix sealed:v1:%s:", tt.plain, tt.context, v, id(1))
			}
			if tt.plain != "" && len(tt.plain) > 4 && strings.Contains(v, tt.plain) {
				t.Errorf("SealFor(%q, %q) = %q; shows the plaintext", tt.plain, tt.context, v)
			}
			got, err := k.OpenFor(v, tt.context)
			if err != nil || got != tt.plain {
				t.Errorf("OpenFor(%q, %q) = %q, %v; want %q", v, tt.context, got, err, tt.plain)
			}
			if k.NeedsReseal(v) {
				t.Errorf("NeedsReseal(%q) = true just after sealing", v)
			}
			if tt.context == "" {
				v2, err := k.Seal(tt.plain)
				if err != nil {
					t.Fatalf("Seal(%q): %v", tt.plain, err)
				}
				if got, err := k.Open(v2); err != nil || got != tt.plain {
					t.Errorf("Open(%q) = %q, %v; want %q", v2, got, err, tt.plain)
				}
			}
		})
	}
}

func TestSealUsesFreshNonce(t *testing.T) {
	k := mustParse(t, key(1), "")
	a := mustSeal(t, k, "same", "ctx")
	b := mustSeal(t, k, "same", "ctx")
	if a == b {
		t.Fatalf("two seals of the same value are equal: %q", a)
	}
	for _, v := range []string{a, b} {
		if got, err := k.OpenFor(v, "ctx"); err != nil || got != "same" {
			t.Errorf("OpenFor(%q, ctx) = %q, %v; want %q", v, got, err, "same")
		}
	}
}

func TestRotation(t *testing.T) {
	before := mustParse(t, key(1), "")
	after := mustParse(t, key(2), key(1))
	dropped := mustParse(t, key(2), "")

	clear := "clear-secret"
	v := mustSeal(t, before, "secret", "rec-1")

	// A value sealed with the old key opens with the rotated ring and
	// needs resealing; so does a clear value.
	if !after.NeedsReseal(v) {
		t.Errorf("NeedsReseal(%q) = false after rotation; want true", v)
	}
	if !after.NeedsReseal(clear) {
		t.Errorf("NeedsReseal(%q) = false; want true for clear text", clear)
	}
	got, err := after.OpenFor(v, "rec-1")
	if err != nil || got != "secret" {
		t.Fatalf("OpenFor(%q, rec-1) = %q, %v; want %q", v, got, err, "secret")
	}

	// Reseal: now under the new key.
	v2 := mustSeal(t, after, got, "rec-1")
	if id := keyIDOf(t, v2); id != keyIDOf(t, mustSeal(t, dropped, "x", "")) {
		t.Errorf("resealed with key %s; want the new current key", id)
	}
	if after.NeedsReseal(v2) {
		t.Errorf("NeedsReseal(%q) = true after reseal", v2)
	}

	// Once the old key is dropped, the resealed value still opens and the
	// value left behind does not.
	if got, err := dropped.OpenFor(v2, "rec-1"); err != nil || got != "secret" {
		t.Errorf("OpenFor(%q, rec-1) after dropping the old key = %q, %v; want %q", v2, got, err, "secret")
	}
	if _, err := dropped.OpenFor(v, "rec-1"); !errors.Is(err, sealed.ErrUnknownKey) {
		t.Errorf("OpenFor(%q, rec-1) after dropping the old key: %v; want ErrUnknownKey", v, err)
	}
	// The old ring, still running somewhere during a rollout, cannot open
	// values sealed with the new key: the new key must be deployed as an
	// old key first if services roll out one by one.
	if _, err := before.OpenFor(v2, "rec-1"); !errors.Is(err, sealed.ErrUnknownKey) {
		t.Errorf("old ring OpenFor(%q, rec-1): %v; want ErrUnknownKey", v2, err)
	}
}

func TestNeedsReseal(t *testing.T) {
	k := mustParse(t, key(2), key(1))
	withOld := mustSeal(t, mustParse(t, key(1), ""), "x", "")
	withCurrent := mustSeal(t, k, "x", "")
	withUnknown := mustSeal(t, mustParse(t, key(3), ""), "x", "")
	tests := []struct {
		name string
		k    *sealed.Keyring
		v    string
		want bool
	}{
		{"clear", k, "clear", true},
		{"empty", k, "", true},
		{"current key", k, withCurrent, false},
		{"old key", k, withOld, true},
		{"unknown key", k, withUnknown, true},
		{"malformed", k, "sealed:v9:zz", true},
		{"nil ring clear", nil, "clear", false},
		{"nil ring sealed", nil, withCurrent, false},
		{"zero ring", &sealed.Keyring{}, "clear", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.NeedsReseal(tt.v); got != tt.want {
				t.Errorf("NeedsReseal(%q) = %v; want %v", tt.v, got, tt.want)
			}
		})
	}
}

// tamper decodes the payload of v, flips one bit of byte i (negative i
// counts from the end) and encodes it again.
func tamper(t *testing.T, v string, i int) string {
	t.Helper()
	cut := strings.LastIndexByte(v, ':') + 1
	b, err := base64.RawURLEncoding.DecodeString(v[cut:])
	if err != nil {
		t.Fatalf("payload of %q: %v", v, err)
	}
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	return v[:cut] + base64.RawURLEncoding.EncodeToString(b)
}

func TestOpenErrors(t *testing.T) {
	k := mustParse(t, key(1), key(2))
	v := mustSeal(t, k, "secret", "rec-1")
	payload := v[strings.LastIndexByte(v, ':')+1:]
	withOld := mustSeal(t, mustParse(t, key(2), ""), "secret", "rec-1")
	withUnknown := mustSeal(t, mustParse(t, key(3), ""), "secret", "rec-1")

	tests := []struct {
		name    string
		k       *sealed.Keyring
		v       string
		context string
		wantErr error
		wantMsg string // substring of the error, optional
	}{
		{name: "unknown key", k: k, v: withUnknown, context: "rec-1", wantErr: sealed.ErrUnknownKey, wantMsg: "key " + id(3)},
		{name: "wrong ring", k: mustParse(t, key(3), ""), v: v, context: "rec-1", wantErr: sealed.ErrUnknownKey, wantMsg: id(1)},
		{name: "tampered nonce", k: k, v: tamper(t, v, 0), context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "tampered ciphertext", k: k, v: tamper(t, v, 12), context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "tampered tag", k: k, v: tamper(t, v, -1), context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "other context", k: k, v: v, context: "rec-2", wantErr: sealed.ErrCorrupt},
		{name: "context dropped", k: k, v: v, context: "", wantErr: sealed.ErrCorrupt},
		{name: "context added", k: k, v: mustSeal(t, k, "secret", ""), context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "key id swapped to a known key", k: k, v: strings.Replace(v, id(1), id(2), 1), context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "old value, key id swapped to current", k: k, v: strings.Replace(withOld, id(2), id(1), 1), context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "truncated payload", k: k, v: v[:len(v)-10], context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "empty payload", k: k, v: "sealed:v1:" + id(1) + ":", wantErr: sealed.ErrCorrupt},
		{name: "payload not base64url", k: k, v: "sealed:v1:" + id(1) + ":" + payload[:8] + "+/" + payload[10:], context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "padded payload", k: k, v: v + "==", context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "unknown version", k: k, v: strings.Replace(v, "v1", "v2", 1), context: "rec-1", wantErr: sealed.ErrCorrupt},
		{name: "upper-case key id", k: k, v: "sealed:v1:ABCDEF01:" + payload, wantErr: sealed.ErrCorrupt},
		{name: "short key id", k: k, v: "sealed:v1:abc:" + payload, wantErr: sealed.ErrCorrupt},
		{name: "prefix only", k: k, v: "sealed:", wantErr: sealed.ErrCorrupt},
		{name: "nil ring", k: nil, v: v, context: "rec-1", wantErr: sealed.ErrNoKey},
		{name: "nil ring, malformed", k: nil, v: "sealed:junk", wantErr: sealed.ErrNoKey},
		{name: "zero ring", k: &sealed.Keyring{}, v: v, context: "rec-1", wantErr: sealed.ErrNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.k.OpenFor(tt.v, tt.context)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("OpenFor(%q, %q) = %q, %v; want %v", tt.v, tt.context, got, err, tt.wantErr)
			}
			if got != "" {
				t.Errorf("OpenFor(%q, %q) = %q with an error; want \"\"", tt.v, tt.context, got)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("OpenFor(%q, %q) error %q; want it to contain %q", tt.v, tt.context, err, tt.wantMsg)
			}
		})
	}
}

func TestNilKeyring(t *testing.T) {
	for _, k := range []*sealed.Keyring{nil, mustParse(t, "", ""), {}} {
		t.Run(fmt.Sprintf("%v", k), func(t *testing.T) {
			for _, plain := range []string{"", "secret", "whsec_abc"} {
				v, err := k.SealFor(plain, "rec-1")
				if err != nil || v != plain {
					t.Errorf("SealFor(%q, rec-1) = %q, %v; want it unchanged", plain, v, err)
				}
				if got, err := k.OpenFor(plain, "rec-1"); err != nil || got != plain {
					t.Errorf("OpenFor(%q, rec-1) = %q, %v; want it unchanged", plain, got, err)
				}
				if got, err := k.Open(plain); err != nil || got != plain {
					t.Errorf("Open(%q) = %q, %v; want it unchanged", plain, got, err)
				}
			}
			// Stored clear, a value that looks sealed would not read back.
			if v, err := k.Seal("sealed:x"); !errors.Is(err, sealed.ErrNoKey) {
				t.Errorf("Seal(%q) = %q, %v; want ErrNoKey", "sealed:x", v, err)
			}
			s := mustSeal(t, mustParse(t, key(1), ""), "secret", "")
			if got, err := k.Open(s); !errors.Is(err, sealed.ErrNoKey) {
				t.Errorf("Open(%q) = %q, %v; want ErrNoKey", s, got, err)
			}
		})
	}
}

func TestIsSealed(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"", false},
		{"secret", false},
		{"sealed", false},
		{"Sealed:v1:", false},
		{" sealed:v1:", false},
		{"sealed:", true},
		{mustSeal(t, mustParse(t, key(1), ""), "x", ""), true},
	} {
		if got := sealed.IsSealed(tt.v); got != tt.want {
			t.Errorf("IsSealed(%q) = %v; want %v", tt.v, got, tt.want)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	a, b := sealed.GenerateKey(), sealed.GenerateKey()
	if a == b {
		t.Fatalf("GenerateKey() twice = %q", a)
	}
	for _, s := range []string{a, b} {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 {
			t.Errorf("GenerateKey() = %q: %d bytes, %v; want 32 bytes of base64url without padding", s, len(raw), err)
		}
	}
	k := mustParse(t, a, b)
	v := mustSeal(t, k, "secret", "")
	if got, err := k.Open(v); err != nil || got != "secret" {
		t.Errorf("Open(%q) = %q, %v; want %q", v, got, err, "secret")
	}
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	k := mustParse(t, key(1), key(2)+","+key(3))
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("keys loaded", "keyring", k)
	log.Info("no keys", "keyring", (*sealed.Keyring)(nil))
	out := buf.String() +
		fmt.Sprintf("%v %+v %#v %s", k, k, k, k) +
		fmt.Sprintf("%v %+v %#v", *k, *k, *k)
	for _, b := range []byte{1, 2, 3} {
		for _, spelling := range []string{
			key(b),
			base64.StdEncoding.EncodeToString(rawKey(b)),
			fmt.Sprint(rawKey(b)),
			fmt.Sprintf("%x", rawKey(b)),
		} {
			if strings.Contains(out, spelling[:12]) {
				t.Errorf("output shows key %d:\n%s", b, out)
			}
		}
	}
	want := `"keyring":{"current":"` + id(1) + `","old":["` + id(2) + `","` + id(3) + `"]}`
	if !strings.Contains(buf.String(), want) {
		t.Errorf("log = %s; want it to contain %s", buf.String(), want)
	}
	if !strings.Contains(buf.String(), `"keyring":"none"`) {
		t.Errorf("log = %s; want a nil Keyring logged as none", buf.String())
	}
}

func FuzzOpen(f *testing.F) {
	k, err := sealed.ParseKeys(key(1), key(2))
	if err != nil {
		f.Fatal(err)
	}
	v, err := k.SealFor("secret", "rec-1")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"", "secret", "sealed:", "sealed:v1:", "sealed:v1:" + id(1) + ":", v, v[:len(v)-1],
		"sealed:v1:" + id(2) + ":AAAA", "sealed:v1:" + id(1) + ":" + strings.Repeat("A", 40),
		"sealed:v1:zzzzzzzz:AAAA", "sealed:v1:" + id(1) + "x",
	} {
		f.Add(seed, "rec-1")
	}
	f.Fuzz(func(t *testing.T, v, context string) {
		for _, ring := range []*sealed.Keyring{k, nil} {
			got, err := ring.OpenFor(v, context)
			if !sealed.IsSealed(v) && (err != nil || got != v) {
				t.Errorf("OpenFor(%q, %q) = %q, %v; want the clear value unchanged", v, context, got, err)
			}
			if err != nil && !errors.Is(err, sealed.ErrCorrupt) && !errors.Is(err, sealed.ErrUnknownKey) && !errors.Is(err, sealed.ErrNoKey) {
				t.Errorf("OpenFor(%q, %q) error %v matches no sentinel", v, context, err)
			}
			_ = ring.NeedsReseal(v)
		}
		// Whatever v is, sealing it round-trips.
		s, err := k.SealFor(v, context)
		if err != nil {
			t.Fatalf("SealFor(%q, %q): %v", v, context, err)
		}
		if got, err := k.OpenFor(s, context); err != nil || got != v {
			t.Errorf("OpenFor(SealFor(%q, %q)) = %q, %v", v, context, got, err)
		}
	})
}
