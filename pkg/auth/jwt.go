package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventsync/eventsync/pkg/producer"
)

// GrantType is the only gty claim accepted; a token may also omit it.
const GrantType = "client-credentials"

// claims are the claims of a producer's token.
type claims struct {
	jwt.RegisteredClaims
	GrantType *string `json:"gty,omitempty"`
}

// errNoSubject is returned by the key function of a token without sub.
var errNoSubject = errors.New("token has no sub")

// token verifies a JWT and spends its jti.
//
// The producer is looked up by sub before the signature is checked, since
// its secret is the key. An unknown sub, or a producer without a JWT
// secret, gets the decoy key: the token then fails as a bad signature
// does, with the same detail and after the same HMAC work. Claims are
// judged only once the signature holds, so an anonymous client learns
// nothing but "bad signature or unknown subject".
func (a *Authenticator) token(ctx context.Context, raw string) (*producer.Producer, error) {
	if a.replay == nil {
		return nil, bearerError(ErrInvalidCredentials, "JWT authentication is not enabled; use Basic or an API key")
	}
	var p *producer.Producer
	keyFunc := func(t *jwt.Token) (any, error) {
		sub := t.Claims.(*claims).Subject
		if sub == "" {
			return nil, errNoSubject
		}
		found, ok := a.dir.Get(sub)
		if !ok {
			return a.decoy, nil
		}
		key, ok := secret(found.Credentials.JWTSecret)
		if !ok {
			return a.decoy, nil
		}
		p = found
		return key, nil
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(a.cfg.ClockSkew),
		jwt.WithTimeFunc(a.cfg.Now),
	)
	var c claims
	t, err := parser.ParseWithClaims(raw, &c, keyFunc)
	if err != nil {
		return nil, tokenError(t, err)
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, bearerError(ErrMalformed, "malformed token: crit header parameters are not supported")
	}
	if p == nil { // verified with the decoy key: cannot happen
		return nil, bearerError(ErrInvalidCredentials, "invalid token: bad signature or unknown subject")
	}
	if err := a.checkClaims(&c); err != nil {
		return nil, err
	}
	if _, err := enabled(p); err != nil {
		return nil, err
	}
	first, err := a.replay.Remember(ctx, p.ID, c.ID, c.ExpiresAt.Add(a.cfg.ClockSkew))
	if err != nil {
		return nil, fmt.Errorf("%w: remember jti: %w", ErrUnavailable, err)
	}
	if !first {
		return nil, bearerError(ErrReplayed, "token jti was already used; sign a new token, with a fresh jti, for every request")
	}
	return p, nil
}

// checkClaims applies the rules the parser does not know: iat and jti are
// required, exp - iat is bounded, gty is client-credentials if present.
func (a *Authenticator) checkClaims(c *claims) error {
	switch {
	case c.IssuedAt == nil:
		return bearerError(ErrMissingClaim, "token lacks the iat claim")
	case c.ID == "":
		return bearerError(ErrMissingClaim, "token lacks the jti claim")
	}
	lifetime := c.ExpiresAt.Sub(c.IssuedAt.Time)
	switch {
	case lifetime <= 0:
		return bearerError(ErrLifetime, "token exp is not after its iat")
	case lifetime > a.cfg.MaxLifetime:
		return bearerError(ErrLifetime, fmt.Sprintf("token lifetime (exp - iat) is %s; at most %s is accepted",
			lifetime, a.cfg.MaxLifetime))
	}
	if c.GrantType != nil && *c.GrantType != GrantType {
		return bearerError(ErrGrantType, fmt.Sprintf("token gty %s is not accepted; use %q or leave it out",
			quote(*c.GrantType), GrantType))
	}
	return nil
}

// tokenError turns a parser error into an *Error. The algorithm is judged
// first: a token that is not HS256 is refused as such, whatever else is
// wrong with it.
func tokenError(t *jwt.Token, err error) *Error {
	if t != nil && t.Header != nil {
		if alg, _ := t.Header["alg"].(string); alg != jwt.SigningMethodHS256.Alg() {
			return bearerError(ErrAlgorithm, fmt.Sprintf("token alg %s is not accepted; sign with HS256", quote(alg)))
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return bearerError(ErrMalformed,
			"malformed token: want three base64url segments: a JSON header, JSON claims and a signature")
	case errors.Is(err, errNoSubject):
		return bearerError(ErrMissingClaim, "token lacks the sub claim")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return bearerError(ErrInvalidCredentials, "invalid token: bad signature or unknown subject")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return bearerError(ErrMissingClaim, "token lacks the exp claim")
	case errors.Is(err, jwt.ErrTokenExpired):
		if c, ok := claimsOf(t); ok && c.ExpiresAt != nil {
			return bearerError(ErrExpired, "token expired at "+c.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return bearerError(ErrExpired, "token has expired")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return bearerError(ErrNotYetValid, "token iat is in the future, beyond the allowed clock skew")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return bearerError(ErrNotYetValid, "token nbf is in the future, beyond the allowed clock skew")
	}
	return bearerError(ErrMalformed, "invalid token claims")
}

// secret decodes a JWT secret stored as base64url, padded or not. An empty
// secret is no secret: anyone could sign with it.
func secret(s string) ([]byte, bool) {
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(key) == 0 {
		return nil, false
	}
	return key, true
}

// claimsOf returns the claims a parsed token carries.
func claimsOf(t *jwt.Token) (*claims, bool) {
	if t == nil {
		return nil, false
	}
	c, ok := t.Claims.(*claims)
	return c, ok
}
