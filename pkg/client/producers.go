package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// ProducerSpec describes a producer (a client of EventSync) to register.
type ProducerSpec struct {
	Name   string   `json:"name"`
	Tags   []string `json:"tags,omitempty"`  // patterns it may write; empty: every tag, unless Scopes grant something
	Scopes Scopes   `json:"scopes,omitzero"` // what else it may do
	Owns   []string `json:"owns,omitempty"`  // categories only it may write
	Rate   Rate     `json:"rate,omitzero"`

	// ID imports a client of another system (The Eye) under the id it
	// has there, the sub of the tokens it signs: 1-128 characters of
	// [A-Za-z0-9._-], not starting with "prd_". Empty: the server
	// generates one.
	ID string `json:"id,omitempty"`
	// JWTSecret is the HS256 key the client already signs its tokens
	// with, as base64url of the key's bytes (see RawJWTSecret; at least 16
	// bytes). Empty: the server generates one and returns it once.
	JWTSecret string `json:"jwt_secret,omitempty"`
}

// RawJWTSecret returns ProducerSpec.JWTSecret for a secret used as HMAC
// key bytes as it is, such as the secret_key of a client of The Eye.
func RawJWTSecret(secretKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(secretKey))
}

// Scopes are what a client may do besides writing events: read events,
// manage its own webhook subscriptions and its own named consumers, each
// limited to tag patterns; Admin allows everything (producers, schemas,
// every subscription and consumer).
type Scopes struct {
	Read      []string `json:"read,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	Consume   []string `json:"consume,omitempty"`
	Admin     bool     `json:"admin,omitempty"`
}

// ProducerUpdate changes a registered producer: nil members stay as they
// are. A pointer to an empty slice clears Tags (every tag, unless the
// client has other scopes) or Owns; a pointer to the zero Scopes removes
// every scope but writing.
type ProducerUpdate struct {
	Name    *string   `json:"name,omitempty"`
	Tags    *[]string `json:"tags,omitempty"`
	Scopes  *Scopes   `json:"scopes,omitempty"` // replaces the scopes as a whole
	Rate    *Rate     `json:"rate,omitempty"`   // replaces the rate as a whole
	Owns    *[]string `json:"owns,omitempty"`
	Enabled *bool     `json:"enabled,omitempty"`
}

// Rate is a producer's token bucket; zeros take the server's defaults and
// a negative PerSecond means unlimited.
type Rate struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// ProducerInfo is a registered producer as the admin API shows it.
type ProducerInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Enabled   bool      `json:"enabled"`
	Tags      []string  `json:"tags"`   // patterns it may write
	Scopes    Scopes    `json:"scopes"` // what else it may do
	Owns      []string  `json:"owns"`   // categories claimed through the API
	Owned     []string  `json:"owned"`  // every category it owns now
	Rate      Rate      `json:"rate"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	APIKeys   []APIKey  `json:"api_keys"`
	// Credentials are the clear secrets, only in the answers of
	// CreateProducer and RotateProducer.
	Credentials *Credentials `json:"credentials,omitempty"`
}

// APIKey tells a producer's API keys apart without revealing them.
type APIKey struct {
	Prefix    string    `json:"prefix"` // the first characters of the key
	CreatedAt time.Time `json:"created_at"`
}

// Credentials are a producer's secrets: use one of them with WithBasic
// (ID and Password), WithAPIKey or WithJWT.
type Credentials struct {
	Password  string `json:"password,omitempty"`
	APIKey    string `json:"api_key,omitempty"`
	JWTSecret string `json:"jwt_secret,omitempty"`
}

// The credentials RotateProducer replaces.
const (
	CredentialPassword  = "password"
	CredentialAPIKey    = "api_key"
	CredentialJWTSecret = "jwt_secret"
)

func producerPath(id string) string { return "/v1/producers/" + url.PathEscape(id) }

// CreateProducer registers a producer (admin token needed). The answer
// holds its credentials, which the server never shows again.
func (c *Client) CreateProducer(ctx context.Context, spec ProducerSpec) (*ProducerInfo, error) {
	return c.producer(ctx, request{method: http.MethodPost, path: "/v1/producers", body: spec, admin: true})
}

// Producers lists the registered producers (admin token needed).
func (c *Client) Producers(ctx context.Context) ([]ProducerInfo, error) {
	var out struct {
		Producers []ProducerInfo `json:"producers"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/producers", admin: true, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Producers, nil
}

// Producer returns one producer, without credentials (admin token needed).
func (c *Client) Producer(ctx context.Context, id string) (*ProducerInfo, error) {
	return c.producer(ctx, request{method: http.MethodGet, path: producerPath(id), admin: true, idempotent: true})
}

// UpdateProducer changes the members of u that are set and returns the
// producer as it is now (admin token needed).
func (c *Client) UpdateProducer(ctx context.Context, id string, u ProducerUpdate) (*ProducerInfo, error) {
	return c.producer(ctx, request{method: http.MethodPatch, path: producerPath(id), body: u, admin: true, idempotent: true})
}

// SetProducerEnabled enables or disables a producer; a disabled producer's
// events are refused (admin token needed).
func (c *Client) SetProducerEnabled(ctx context.Context, id string, enabled bool) (*ProducerInfo, error) {
	action := "/disable"
	if enabled {
		action = "/enable"
	}
	return c.producer(ctx, request{method: http.MethodPost, path: producerPath(id) + action, admin: true, idempotent: true})
}

// DeleteProducer deletes a producer and frees the categories it owned
// (admin token needed).
func (c *Client) DeleteProducer(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: producerPath(id), admin: true, idempotent: true}, nil)
}

// RotateProducer replaces one credential of a producer (CredentialPassword,
// CredentialAPIKey or CredentialJWTSecret); the old one stops working. The
// answer holds the new credential, which the server never shows again
// (admin token needed).
func (c *Client) RotateProducer(ctx context.Context, id, credential string) (*ProducerInfo, error) {
	body := map[string]string{"credential": credential}
	return c.producer(ctx, request{method: http.MethodPost, path: producerPath(id) + "/rotate", body: body, admin: true})
}

// NATSConfig returns the NATS server authorization block that gives each
// producer on NATS the rights it has over HTTP; direct also lets producers
// publish straight to the event subjects of their tags (admin token
// needed).
func (c *Client) NATSConfig(ctx context.Context, direct bool) (string, error) {
	r := request{method: http.MethodGet, path: "/v1/producers/nats-config", admin: true, idempotent: true, accept: "text/plain"}
	if direct {
		r.query = url.Values{"direct": {"true"}}
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	return string(b), nil
}

// producer sends a request answered with one producer.
func (c *Client) producer(ctx context.Context, r request) (*ProducerInfo, error) {
	var p ProducerInfo
	if err := c.do(ctx, r, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
