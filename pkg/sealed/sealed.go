// Package sealed encrypts short secrets (client JWT secrets, webhook signing
// secrets) before they are written to a NATS JetStream KV bucket, so that
// reading the bucket does not reveal them.
//
// # Format
//
// A sealed value is text:
//
//	sealed:v1:<key id>:<base64url(nonce || ciphertext || tag)>
//
// The cipher is AES-256-GCM with a random 12-byte nonce. The key id is the
// first 8 hex characters of the SHA-256 of the key: it names the key that
// sealed the value (so a keyring holding several keys finds the right one)
// without revealing it. The base64url has no padding. The header
// "sealed:v1:<key id>:" and the optional associated data given to
// [Keyring.SealFor] are authenticated: a value bound to one record's id does
// not open for another record.
//
// A value that does not start with "sealed:" is clear text written before a
// key was configured: [Keyring.Open] returns it unchanged, so configuring a
// key on an existing deployment needs no migration step.
//
// # Keys and rotation
//
// Keys are 32 random bytes in base64 (std or url, padding optional); make one
// with [GenerateKey]. [ParseKeys] takes the current key, which seals, and a
// comma-separated list of old keys, which only open.
//
// To rotate: set the new key as current and the previous one in the old
// keys; services re-seal values when they write them; once every value is
// re-sealed (the registry re-seals on start, see [Keyring.NeedsReseal]), drop
// the old key.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// KeySize is the length in bytes of a key once decoded.
const KeySize = 32

const (
	prefix   = "sealed:"
	prefixV1 = prefix + "v1:"
	idLen    = 8 // hex characters of the key id
	// headerLen is the length of "sealed:v1:<key id>:". It is fixed, so the
	// header followed by the associated data is unambiguous.
	headerLen = len(prefixV1) + idLen + 1
	nonceSize = 12
	tagSize   = 16
)

var (
	// ErrNoKey means a sealed value was met and no key is configured.
	ErrNoKey = errors.New("no key configured")
	// ErrUnknownKey means the value was sealed with a key that is neither the
	// current key nor one of the old keys.
	ErrUnknownKey = errors.New("sealed with an unknown key")
	// ErrCorrupt means the value starts with "sealed:" but is malformed, was
	// tampered with, or was sealed for other associated data.
	ErrCorrupt = errors.New("sealed value corrupt, tampered with or bound to another context")
)

// Keyring holds the key that seals and the old keys that still open.
//
// A nil *Keyring is valid and means "no key configured": its Seal returns
// the plaintext unchanged, its Open returns values that are not sealed
// unchanged and fails with [ErrNoKey] on sealed ones. The zero Keyring
// behaves like a nil one; make a Keyring with [ParseKeys]. A Keyring is safe
// for concurrent use.
type Keyring struct {
	current *key
	byID    map[string]*key // the current key and the old keys
	oldIDs  []string        // in configuration order, for logging
}

type key struct {
	id   string
	aead cipher.AEAD
}

// ParseKeys builds a Keyring from the current key and a comma-separated list
// of old keys. Both empty returns a nil *Keyring and no error: no key
// configured. Old keys without a current key is an error. Empty entries in
// old are skipped, and so are repeats of a key already given.
//
// Errors name the bad key ("current key: ...", "key 2 of old keys: ...")
// but never include key material; prefixing the setting's name is the
// caller's job.
func ParseKeys(current, old string) (*Keyring, error) {
	current = strings.TrimSpace(current)
	old = strings.TrimSpace(old)
	if current == "" && old == "" {
		return nil, nil
	}
	if current == "" {
		return nil, errors.New("old keys set without a current key")
	}
	cur, err := parseKey(current)
	if err != nil {
		return nil, fmt.Errorf("current key: %w", err)
	}
	k := &Keyring{current: cur, byID: map[string]*key{cur.id: cur}}
	if old == "" {
		return k, nil
	}
	seen := map[string]string{cur.id: "the current key"}
	for i, s := range strings.Split(old, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		name := fmt.Sprintf("key %d of old keys", i+1)
		o, err := parseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if prev, dup := k.byID[o.id]; dup {
			if sameKey(prev, o) {
				continue
			}
			// Two different keys whose SHA-256 share 32 bits: a value's key
			// id would not say which one sealed it.
			return nil, fmt.Errorf("%s: key id %s is also the id of %s; generate another key", name, o.id, seen[o.id])
		}
		k.byID[o.id] = o
		k.oldIDs = append(k.oldIDs, o.id)
		seen[o.id] = name
	}
	return k, nil
}

// keyEncodings are the accepted spellings of a key.
var keyEncodings = []*base64.Encoding{
	base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding,
}

func parseKey(s string) (*key, error) {
	var raw []byte
	for _, enc := range keyEncodings {
		if b, err := enc.DecodeString(s); err == nil {
			raw = b
			break
		}
	}
	if raw == nil {
		return nil, errors.New("not base64 (std or url, padding optional)")
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	// The random-nonce GCM draws a 12-byte nonce per Seal and puts it in
	// front of the ciphertext: the nonce || ciphertext || tag of the format.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return &key{id: keyID(raw), aead: aead}, nil
}

// none reports whether k has no key: nil, or the zero Keyring.
func (k *Keyring) none() bool {
	return k == nil || k.current == nil
}

func keyID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:idLen]
}

// sameKey reports whether a and b hold the same key, comparing what one
// seals under a fixed test value rather than keeping raw keys around.
func sameKey(a, b *key) bool {
	v := a.aead.Seal(nil, nil, nil, []byte("sealed: same key?"))
	_, err := b.aead.Open(nil, nil, v, []byte("sealed: same key?"))
	return err == nil
}

// GenerateKey returns a new random key: 32 bytes, base64url without padding.
func GenerateKey() string {
	b := make([]byte, KeySize)
	// crypto/rand.Read never returns an error: the program crashes instead
	// of running on without randomness.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// IsSealed reports whether v is in the sealed form (starts with "sealed:").
// It does not check that the rest is well-formed.
func IsSealed(v string) bool {
	return strings.HasPrefix(v, prefix)
}

// Seal encrypts plain with the current key. It is SealFor with no
// associated data.
func (k *Keyring) Seal(plain string) (string, error) {
	return k.SealFor(plain, "")
}

// SealFor encrypts plain with the current key and binds the result to
// context (for example the id of the record holding it): only OpenFor with
// the same context opens it.
//
// On a nil Keyring, SealFor returns plain unchanged, except that a plain
// value starting with "sealed:" fails with [ErrNoKey]: stored clear, it
// would read back as a sealed value.
func (k *Keyring) SealFor(plain, context string) (string, error) {
	if k.none() {
		if IsSealed(plain) {
			return "", fmt.Errorf("seal: value starts with %q: %w", prefix, ErrNoKey)
		}
		return plain, nil
	}
	header := prefixV1 + k.current.id + ":"
	ct := k.current.aead.Seal(nil, nil, []byte(plain), additional(header, context))
	return header + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open decrypts v. It is OpenFor with no associated data.
func (k *Keyring) Open(v string) (string, error) {
	return k.OpenFor(v, "")
}

// OpenFor decrypts v, sealed by SealFor with the same context. A v that is
// not sealed is returned unchanged: a clear value written before a key was
// configured. A v sealed with a key the Keyring does not hold fails with
// [ErrUnknownKey] (naming the key id); one that is malformed, tampered with
// or sealed for another context fails with [ErrCorrupt]; any sealed v on a
// nil Keyring fails with [ErrNoKey].
func (k *Keyring) OpenFor(v, context string) (string, error) {
	if !IsSealed(v) {
		return v, nil
	}
	if k.none() {
		return "", fmt.Errorf("open: %w", ErrNoKey)
	}
	id, ok := sealedKeyID(v)
	if !ok {
		return "", fmt.Errorf("open: not sealed:v1:<8 hex>:<base64url>: %w", ErrCorrupt)
	}
	key, ok := k.byID[id]
	if !ok {
		return "", fmt.Errorf("open: key %s: %w", id, ErrUnknownKey)
	}
	ct, err := base64.RawURLEncoding.Strict().DecodeString(v[headerLen:])
	if err != nil || len(ct) < nonceSize+tagSize {
		return "", fmt.Errorf("open: key %s: bad payload: %w", id, ErrCorrupt)
	}
	plain, err := key.aead.Open(nil, nil, ct, additional(v[:headerLen], context))
	if err != nil {
		return "", fmt.Errorf("open: key %s: %w", id, ErrCorrupt)
	}
	return string(plain), nil
}

// NeedsReseal reports whether v should be sealed again with the current key:
// it is clear text and a key is configured, or it is sealed with another key
// than the current one (or is not a well-formed sealed value, which Open
// will then reject). It is false on a nil Keyring. A registry opens and
// re-seals such values on start so that old keys can be dropped.
func (k *Keyring) NeedsReseal(v string) bool {
	if k.none() {
		return false
	}
	id, ok := sealedKeyID(v)
	return !ok || id != k.current.id
}

// sealedKeyID returns the key id of a v1 sealed value, and whether v has
// the v1 header.
func sealedKeyID(v string) (string, bool) {
	if len(v) < headerLen || !strings.HasPrefix(v, prefixV1) || v[headerLen-1] != ':' {
		return "", false
	}
	id := v[len(prefixV1) : headerLen-1]
	for i := range len(id) {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return id, true
}

// additional is the authenticated data: the header, so the version and key
// id cannot be altered, then the caller's context. The header has a fixed
// length, so the concatenation is unambiguous.
func additional(header, context string) []byte {
	return []byte(header + context)
}

// LogValue logs the key ids, never the keys.
func (k *Keyring) LogValue() slog.Value {
	if k.none() {
		return slog.StringValue("none")
	}
	return slog.GroupValue(
		slog.String("current", k.current.id),
		slog.Any("old", k.oldIDs),
	)
}

// String shows the key ids, never the keys, so that printing a Keyring with
// fmt is as safe as logging it.
func (k *Keyring) String() string {
	if k.none() {
		return "sealed.Keyring(none)"
	}
	return fmt.Sprintf("sealed.Keyring(current=%s old=%v)", k.current.id, k.oldIDs)
}

// GoString is String, for %#v.
func (k *Keyring) GoString() string { return k.String() }
