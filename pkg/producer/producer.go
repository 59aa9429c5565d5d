// Package producer defines the producers EventSync knows: who may write
// which tags, how fast, and with which credentials. The registry lives in a
// JetStream key-value bucket; see Registry.
package producer

import "time"

// Producer is one registered producer as the bucket holds it. Secrets are
// stored hashed where the scheme allows: Basic passwords with a slow hash,
// API keys with SHA-256 (they are 32 random bytes). HS256 JWT needs the
// shared secret itself: the bucket holds it sealed when the registry has a
// keyring (WithKeyring), and a Producer read from the registry holds it in
// clear.
type Producer struct {
	ID        string    `json:"id"`   // "prd_" + lowercase hex/base32; also the Basic user name and the JWT sub
	Name      string    `json:"name"` // unique, human-readable
	Enabled   bool      `json:"enabled"`
	Tags      []string  `json:"tags"`            // tag patterns it may write (NATS wildcards); default [">"] unless it has other scopes
	Scopes    Scopes    `json:"scopes,omitzero"` // what else it may do
	Owns      []string  `json:"owns,omitempty"`  // categories this producer claims (see Owners)
	Rate      Rate      `json:"rate,omitzero"`   // zero: the configured default
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen,omitzero"` // updated at most once a minute

	Credentials Credentials `json:"credentials"`
}

// Scopes are what a client may do besides writing events (its Tags): read
// events, manage its own webhook subscriptions, manage its own named
// consumers, each limited to tag patterns; and administer EventSync
// (clients, schemas, every subscription and consumer), which allows
// everything.
type Scopes struct {
	Read      []string `json:"read,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	Consume   []string `json:"consume,omitempty"`
	Admin     bool     `json:"admin,omitempty"`
}

// IsZero reports whether s grants nothing.
func (s Scopes) IsZero() bool {
	return len(s.Read) == 0 && len(s.Subscribe) == 0 && len(s.Consume) == 0 && !s.Admin
}

// Rate is a token bucket: PerSecond events per second on average, Burst at
// once.
type Rate struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Credentials are a producer's secrets, never served by the API after they
// are created or rotated.
type Credentials struct {
	PasswordHash string   `json:"password_hash,omitempty"` // bcrypt of the Basic password
	APIKeys      []APIKey `json:"api_keys,omitempty"`
	JWTSecret    string   `json:"jwt_secret,omitempty"` // HS256 shared secret (base64url); sealed in the bucket with a keyring
}

// APIKey is a hashed API key. The key itself ("esk_" + 43 base64url
// characters) is shown once.
type APIKey struct {
	Prefix    string    `json:"prefix"` // the first 12 characters, to tell keys apart
	SHA256    string    `json:"sha256"` // hex SHA-256 of the whole key
	CreatedAt time.Time `json:"created_at"`
}
