package producer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
)

// Formats of identifiers and generated secrets.
const (
	// IDPrefix starts every producer id.
	IDPrefix = "prd_"
	// APIKeyPrefix starts every API key, which tells it apart from a JWT in
	// a Bearer header.
	APIKeyPrefix = "esk_"
	// APIKeyLen is the length of an API key: the prefix and 43 base64url
	// characters of 32 random bytes.
	APIKeyLen = len(APIKeyPrefix) + 43
	// keyPrefixLen is how much of an API key is kept in clear to tell keys
	// apart.
	keyPrefixLen = 12
)

// Credential names one kind of secret a producer authenticates with.
type Credential string

// The credentials a producer has; each can be rotated on its own.
const (
	CredentialPassword  Credential = "password"   // HTTP Basic, producer id as the user name
	CredentialAPIKey    Credential = "api_key"    // Bearer esk_…
	CredentialJWTSecret Credential = "jwt_secret" // HS256 key of Bearer JWTs
)

// Secrets are the clear-text credentials of a producer, returned once when
// they are created or rotated. Only the rotated one is set after a
// rotation. Logging them prints them redacted.
type Secrets struct {
	Password  string `json:"password,omitempty"`
	APIKey    string `json:"api_key,omitempty"`
	JWTSecret string `json:"jwt_secret,omitempty"`
}

// LogValue redacts the secrets: only which ones are set is logged.
func (s Secrets) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, c := range []struct {
		name string
		v    string
	}{{"password", s.Password}, {"api_key", s.APIKey}, {"jwt_secret", s.JWTSecret}} {
		if c.v != "" {
			attrs = append(attrs, slog.String(c.name, "REDACTED"))
		}
	}
	return slog.GroupValue(attrs...)
}

// String redacts the secrets, so that fmt verbs do not print them either.
func (s Secrets) String() string { return "producer.Secrets{REDACTED}" }

// GoString redacts the secrets for %#v.
func (s Secrets) GoString() string { return s.String() }

// HashKey returns the hex SHA-256 of an API key: what the registry stores
// and ByAPIKey looks up. API keys are 32 random bytes, so a fast hash is
// enough; no salt or slow hash is needed.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// newID returns a producer id: IDPrefix and the 32 hex digits of a UUIDv7,
// so ids sort by creation time and are valid KV keys and NATS user names.
func newID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new producer id: %w", err)
	}
	return IDPrefix + hex.EncodeToString(u[:]), nil
}

// randomText returns n random bytes as unpadded base64url.
func randomText(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newPassword returns a random Basic password (24 bytes, 32 characters
// with no ':' in them) and its bcrypt hash.
func newPassword(cost int) (password, hash string, err error) {
	if password, err = randomText(24); err != nil {
		return "", "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", "", fmt.Errorf("hash password: %w", err)
	}
	return password, string(h), nil
}

// newAPIKey returns a random API key and its stored form.
func newAPIKey() (key string, stored APIKey, err error) {
	r, err := randomText(32)
	if err != nil {
		return "", APIKey{}, err
	}
	key = APIKeyPrefix + r
	return key, APIKey{Prefix: key[:keyPrefixLen], SHA256: HashKey(key)}, nil
}

// newJWTSecret returns a random HS256 secret: 32 bytes as base64url.
func newJWTSecret() (string, error) { return randomText(32) }

// maxCachedPasswords bounds the cache of successful password checks; when
// it is full it starts over, which costs one bcrypt per active producer.
const maxCachedPasswords = 4096

// passwordCache remembers successful bcrypt checks. bcrypt takes tens of
// milliseconds by design, and HTTP Basic sends the password with every
// request. An entry is an HMAC, under a key made at start-up, of the
// producer id, its stored hash and the password: it is no use outside the
// process, and a rotation (a new hash) leaves the old entry unreachable.
type passwordCache struct {
	key  [32]byte
	once sync.Once
	err  error

	mu sync.Mutex
	ok map[[sha256.Size]byte]struct{}
}

func (c *passwordCache) sum(id, hash, password string) ([sha256.Size]byte, error) {
	c.once.Do(func() {
		_, c.err = rand.Read(c.key[:])
		c.ok = make(map[[sha256.Size]byte]struct{})
	})
	var s [sha256.Size]byte
	if c.err != nil {
		return s, c.err
	}
	m := hmac.New(sha256.New, c.key[:])
	for _, part := range []string{id, hash, password} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	m.Sum(s[:0])
	return s, nil
}

// check reports whether password matches hash, from the cache when it can.
func (c *passwordCache) check(id, hash, password string) bool {
	s, err := c.sum(id, hash, password)
	if err == nil {
		c.mu.Lock()
		_, hit := c.ok[s]
		c.mu.Unlock()
		if hit {
			return true
		}
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	if err == nil {
		c.mu.Lock()
		if len(c.ok) >= maxCachedPasswords {
			clear(c.ok)
		}
		c.ok[s] = struct{}{}
		c.mu.Unlock()
	}
	return true
}
