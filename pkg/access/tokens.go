package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Access tokens let a browser's EventSource, which cannot send an
// Authorization header, open the live tail: a client with read scope asks
// POST /v1/tokens for a token limited to some of its read patterns, valid
// for minutes, and passes it as ?access_token=. Only routes whose rule
// says Token accept one. The tokens bucket holds the SHA-256 of each token,
// never the token.
const (
	// TokenPrefix starts every access token.
	TokenPrefix = "est_"
	// DefaultTokenTTL is how long a token lives unless asked otherwise.
	DefaultTokenTTL = 5 * time.Minute
	// MaxTokenTTL is the longest a token may live.
	MaxTokenTTL = stream.MaxTokenLifetime
)

// Tokens issues and checks access tokens.
type Tokens struct {
	kv      jetstream.KeyValue
	clients clients
	now     func() time.Time
}

// clients finds the client a token was issued to.
type clients interface {
	Get(id string) (*producer.Producer, bool)
}

// NewTokens returns the tokens kept in kv (stream.TokensConfig), issued to
// clients of reg.
func NewTokens(kv jetstream.KeyValue, reg clients) *Tokens {
	return &Tokens{kv: kv, clients: reg, now: time.Now}
}

type tokenRecord struct {
	Client  string    `json:"client"`
	Read    []string  `json:"read"`
	Expires time.Time `json:"expires"`
}

// Issue returns a new token for p reading the given patterns (each within
// p's read patterns) until ttl has passed.
func (t *Tokens) Issue(ctx context.Context, p *Principal, read []string, ttl time.Duration) (string, time.Time, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	rec := tokenRecord{Client: p.ID, Read: read, Expires: t.now().Add(ttl).UTC().Truncate(time.Second)}
	v, err := json.Marshal(rec)
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := t.kv.Create(ctx, tokenKey(token), v); err != nil {
		return "", time.Time{}, fmt.Errorf("store access token: %w", err)
	}
	return token, rec.Expires, nil
}

// Principal returns who a token reads for: its client, limited to the
// token's patterns that the client may still read. A token of a client
// that was deleted or disabled is refused.
func (t *Tokens) Principal(ctx context.Context, token string) (*Principal, error) {
	refuse := &auth.Error{Detail: "unknown or expired access token", Challenge: `Bearer realm="eventsync", error="invalid_token"`}
	e, err := t.kv.Get(ctx, tokenKey(token))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, refuse
	case err != nil:
		return nil, fmt.Errorf("%w: read access token: %v", auth.ErrUnavailable, err)
	}
	var rec tokenRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil || !t.now().Before(rec.Expires) {
		return nil, refuse
	}
	p := &Principal{ID: rec.Client, Token: true}
	if rec.Client == AdminID {
		p.Read = rec.Read
		return p, nil
	}
	c, ok := t.clients.Get(rec.Client)
	if !ok || !c.Enabled {
		return nil, refuse
	}
	owner := FromProducer(c)
	for _, pat := range rec.Read {
		if owner.Covers(Read, pat) {
			p.Read = append(p.Read, pat)
		}
	}
	return p, nil
}

func tokenKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Mount adds POST /v1/tokens to r.
func (t *Tokens) Mount(r chi.Router) {
	r.Post("/v1/tokens", httpserve.Handle(nil, nil, t.create))
}

type tokenRequest struct {
	Read      []string `json:"read"`       // patterns; default: all the client's read patterns
	ExpiresIn int      `json:"expires_in"` // seconds; default 300, at most 3600
}

type tokenResponse struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
	Read      []string  `json:"read"`
	Param     string    `json:"param"`
}

func (t *Tokens) create(r *http.Request) (httpserve.Reply, error) {
	p := From(r.Context())
	var in tokenRequest
	if r.ContentLength != 0 { // no body: every read pattern, for DefaultTokenTTL
		if err := problem.DecodeJSON(r, &in, 64<<10); err != nil {
			return httpserve.Reply{}, err
		}
	}
	ttl := DefaultTokenTTL
	switch {
	case in.ExpiresIn < 0 || time.Duration(in.ExpiresIn)*time.Second > MaxTokenTTL:
		return httpserve.Reply{}, problem.Invalid("invalid token request", problem.FieldError{Pointer: "/expires_in",
			Detail: fmt.Sprintf("must be between 1 and %d seconds", int(MaxTokenTTL/time.Second))})
	case in.ExpiresIn > 0:
		ttl = time.Duration(in.ExpiresIn) * time.Second
	}
	read := in.Read
	if len(read) == 0 {
		read = slices.Clone(p.Patterns(Read))
	}
	var errs []problem.FieldError
	for i, pat := range read {
		ptr := fmt.Sprintf("/read/%d", i)
		switch {
		case subject.ValidatePattern(pat) != nil:
			errs = append(errs, problem.FieldError{Pointer: ptr, Detail: fmt.Sprintf("%q %v", pat, subject.ValidatePattern(pat))})
		case !p.Covers(Read, pat):
			return httpserve.Reply{}, Forbidden(fmt.Sprintf("%q is outside the client's read patterns", pat))
		}
	}
	if len(errs) > 0 {
		return httpserve.Reply{}, problem.Invalid("invalid token request", errs...)
	}
	token, exp, err := t.Issue(r.Context(), p, read, ttl)
	if err != nil {
		return httpserve.Reply{}, problem.Unavailable("the token store did not answer; retry", time.Second)
	}
	return httpserve.Reply{Status: http.StatusCreated, NoStore: true, Body: tokenResponse{
		Token: token, TokenType: "Bearer", ExpiresAt: exp, Read: read, Param: TokenParam,
	}}, nil
}
