// Package auth tells which producer sent a request from its Authorization
// value, the same over HTTP and NATS. Three schemes are accepted:
//
//	Authorization: Basic base64(producer_id:password)
//	Authorization: Bearer esk_<43 base64url characters>   (an API key)
//	Authorization: Bearer <JWT>                            (HS256, see below)
//
// A JWT is signed with HS256 only; its key is the producer's JWTSecret
// decoded from base64url (with or without padding): the decoded bytes, not
// the text, are the HMAC key. Its claims must hold sub (the producer id),
// iat, exp and jti; exp - iat may be at most Config.MaxLifetime, iat may lie
// at most Config.ClockSkew in the future, and gty, if present, must be
// "client-credentials". Each jti is accepted once per producer: a token is a
// one-time credential, and clients sign a fresh one for every request.
//
// Failures are *Error values: unauthenticated, with the challenge to
// answer with (a WWW-Authenticate value), ErrDisabled for a disabled
// producer whose credentials were right (forbidden), or ErrThrottled for a
// client that failed too often lately (see ThrottleConfig). Their details say
// which part of the credentials failed, never whether a producer exists:
// an unknown producer id and a wrong password read the same, as do an
// unknown JWT subject and a bad signature.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/producer"
)

// Defaults of Config.
const (
	DefaultMaxLifetime = time.Hour
	DefaultClockSkew   = time.Minute
)

// Config tunes the checks on bearer tokens.
type Config struct {
	// MaxLifetime is the longest exp - iat accepted; default 1 hour.
	MaxLifetime time.Duration
	// ClockSkew is how far a token's iat and nbf may lie in the future and
	// how long after exp it is still accepted; default 1 minute.
	ClockSkew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Throttle limits failed authentications per client; the zero value
	// sets no limit.
	Throttle ThrottleConfig
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (see WithRemote); none: the peer is the client.
	TrustedProxies Prefixes
}

// directory finds producers and checks their passwords. CheckPassword
// compares password with p's bcrypt hash; given a nil p it must spend as
// long as a real check and return false, so that an unknown producer id
// takes as long to refuse as a wrong password.
type directory interface {
	Get(id string) (*producer.Producer, bool)
	ByAPIKey(sha256hex string) (*producer.Producer, bool)
	CheckPassword(p *producer.Producer, password string) bool
}

// replayStore remembers the JWT ids already accepted. Remember records
// producerID's jti until the given time and reports whether it was the
// first time it saw it.
type replayStore interface {
	Remember(ctx context.Context, producerID, jti string, until time.Time) (first bool, err error)
}

// Authenticator checks the credentials of producers against a directory.
// It is safe for concurrent use.
type Authenticator struct {
	dir    directory
	replay replayStore
	cfg    Config
	limit  *throttle // nil: no limit
	// decoy is an HMAC key nobody knows, used for tokens whose subject has
	// no secret, so that they fail the way a bad signature does and take
	// as long.
	decoy []byte
}

// New returns an Authenticator looking producers up in dir and remembering
// JWT ids in replay. With a nil replay store JWTs are refused: without it a
// token could be replayed until it expires.
func New(dir directory, replay replayStore, cfg Config) *Authenticator {
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	decoy := make([]byte, 32)
	_, _ = rand.Read(decoy) // never fails
	return &Authenticator{dir: dir, replay: replay, cfg: cfg, limit: newThrottle(cfg.Throttle, cfg.Now), decoy: decoy}
}

// Authenticate returns the producer whose credentials the Authorization
// value (of an HTTP request, or of a NATS request read with FromNATS)
// carries. Credential failures are *Error; a failing replay store yields
// an error wrapping ErrUnavailable. A client that failed too often lately
// (see ThrottleConfig; ctx says who the client is, see WithRemote) is
// refused with an ErrThrottled *Error before anything is checked.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (*producer.Producer, error) {
	c, perr := parseAuthorization(authorization)
	key := a.throttleKey(ctx, c)
	if wait := a.limit.admit(key); wait > 0 {
		return nil, &Error{Kind: ErrThrottled, RetryAfter: wait, Detail: fmt.Sprintf(
			"too many failed authentications from this client; retry in %s", wait.Round(time.Second))}
	}
	var p *producer.Producer
	err := perr
	if err == nil {
		p, err = a.check(ctx, c)
	}
	var ae *Error
	a.limit.done(key, errors.As(err, &ae) && !errors.Is(err, ErrDisabled))
	return p, err
}

// check verifies parsed credentials.
func (a *Authenticator) check(ctx context.Context, c credentials) (*producer.Producer, error) {
	switch c.kind {
	case kindBasic:
		return a.basic(c.id, c.secret)
	case kindAPIKey:
		return a.apiKey(c.secret)
	default:
		return a.token(ctx, c.secret)
	}
}

// FromNATS returns the Authorization value of a NATS request. NATS header
// names are case-sensitive; a name spelled in another case is accepted too.
func FromNATS(h nats.Header) string {
	if v := h.Get("Authorization"); v != "" {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, "Authorization") && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// basic checks a producer id and password.
func (a *Authenticator) basic(id, password string) (*producer.Producer, error) {
	p, ok := a.dir.Get(id)
	if !ok {
		a.dir.CheckPassword(nil, password) // as slow as a wrong password
		return nil, basicError(ErrInvalidCredentials, "invalid credentials")
	}
	if !a.dir.CheckPassword(p, password) {
		return nil, basicError(ErrInvalidCredentials, "invalid credentials")
	}
	return enabled(p)
}

// apiKey checks an API key. The directory finds the producer by the key's
// hash; the hash is compared again here in constant time.
func (a *Authenticator) apiKey(key string) (*producer.Producer, error) {
	sum := sha256.Sum256([]byte(key))
	want := hex.EncodeToString(sum[:])
	p, ok := a.dir.ByAPIKey(want)
	if !ok || !hasKey(p, want) {
		return nil, bearerError(ErrInvalidCredentials, "invalid API key")
	}
	return enabled(p)
}

// hasKey reports whether one of p's API keys has the given hash.
func hasKey(p *producer.Producer, sha256hex string) bool {
	found := 0
	for _, k := range p.Credentials.APIKeys {
		found |= subtle.ConstantTimeCompare([]byte(strings.ToLower(k.SHA256)), []byte(sha256hex))
	}
	return found == 1
}

// enabled returns p, or an ErrDisabled *Error when p is disabled. It is
// called only once p's credentials are verified.
func enabled(p *producer.Producer) (*producer.Producer, error) {
	if !p.Enabled {
		return nil, &Error{Kind: ErrDisabled, Detail: fmt.Sprintf("producer %s is disabled", p.ID)}
	}
	return p, nil
}

// Kinds of authentication failure; every *Error wraps one, for errors.Is.
var (
	ErrMissing            = errors.New("missing credentials")              // no Authorization value
	ErrScheme             = errors.New("unsupported authorization scheme") // neither Basic nor Bearer
	ErrMalformed          = errors.New("malformed credentials")            // undecodable Basic, API key or token
	ErrInvalidCredentials = errors.New("invalid credentials")              // unknown id or key, wrong password or signature
	ErrAlgorithm          = errors.New("token algorithm not accepted")     // alg other than HS256
	ErrMissingClaim       = errors.New("token claim missing")              // no sub, iat, exp or jti
	ErrExpired            = errors.New("token expired")                    // exp passed (beyond the skew)
	ErrNotYetValid        = errors.New("token not yet valid")              // iat or nbf in the future (beyond the skew)
	ErrLifetime           = errors.New("token lifetime too long")          // exp - iat over MaxLifetime, or not positive
	ErrGrantType          = errors.New("token grant type not accepted")    // gty other than client-credentials
	ErrReplayed           = errors.New("token replayed")                   // jti already used
	ErrDisabled           = errors.New("producer disabled")                // right credentials, disabled producer: forbidden
	ErrThrottled          = errors.New("too many failed authentications")  // the client must wait Error.RetryAfter; nothing was checked
)

// ErrUnavailable is wrapped by the error Authenticate returns when the
// replay store cannot be reached: the request may be retried later, with a
// new token.
var ErrUnavailable = errors.New("replay store unavailable")

// Error is an authentication failure. Its Kind ErrDisabled means the
// credentials were right but the producer may not send (forbidden);
// ErrThrottled that the client failed too often lately and must wait
// RetryAfter (too many requests); every other kind means the request is
// not authenticated, and Challenge says how to authenticate.
type Error struct {
	Kind       error         // one of the Err* kinds
	Challenge  string        // the challenge to answer with (a WWW-Authenticate value); empty for ErrDisabled and ErrThrottled
	Detail     string        // which part of the credentials failed
	RetryAfter time.Duration // for ErrThrottled: how long the client must wait
}

// Error returns the detail.
func (e *Error) Error() string { return "authenticate: " + e.Detail }

// Unwrap returns the kind of failure.
func (e *Error) Unwrap() error { return e.Kind }

const (
	realm          = "eventsync"
	basicChallenge = `Basic realm="` + realm + `", charset="UTF-8"`
	bearerRealm    = `Bearer realm="` + realm + `"`
	// plainChallenge offers both schemes without an error, as RFC 6750
	// asks when a request carried no bearer token.
	plainChallenge = basicChallenge + ", " + bearerRealm
)

// basicError is the failure of a request without a bearer token.
func basicError(kind error, detail string) *Error {
	return &Error{Kind: kind, Challenge: plainChallenge, Detail: detail}
}

// bearerError is the failure of a bad bearer token: its challenge carries
// error="invalid_token" and the detail (RFC 6750, section 3).
func bearerError(kind error, detail string) *Error {
	return &Error{
		Kind: kind,
		Challenge: basicChallenge + ", " + bearerRealm + `, error="invalid_token", error_description="` +
			description(detail) + `"`,
		Detail: detail,
	}
}

// description makes detail fit an error_description: printable ASCII
// without '"' or '\' (RFC 6750, section 3), at most 200 bytes.
func description(detail string) string {
	var b strings.Builder
	for i := 0; i < len(detail) && b.Len() < 200; i++ {
		switch c := detail[i]; {
		case c == '"':
			b.WriteByte('\'')
		case c == '\\' || c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// quote quotes a value taken from a request for a detail, cut to 32 bytes.
func quote(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// Limits of the parser.
const (
	// maxAuthorization bounds the Authorization value.
	maxAuthorization = 8 << 10
	apiKeyPrefix     = "esk_"
	apiKeyLen        = len(apiKeyPrefix) + 43 // 32 random bytes in base64url
)

// kind is the scheme of parsed credentials.
type kind int

const (
	kindBasic kind = iota + 1
	kindAPIKey
	kindJWT
)

// credentials are a parsed Authorization value: a Basic id and password
// (secret), or a bearer API key or JWT (secret).
type credentials struct {
	kind   kind
	id     string
	secret string
}

// parseAuthorization splits an Authorization value into its scheme and
// credentials (RFC 9110, section 11.6.2). Scheme names are
// case-insensitive. Errors are *Error.
func parseAuthorization(h string) (credentials, error) {
	h = strings.Trim(h, " \t")
	if h == "" {
		return credentials{}, basicError(ErrMissing, "missing Authorization header; send Basic or Bearer credentials")
	}
	if len(h) > maxAuthorization {
		return credentials{}, basicError(ErrMalformed,
			fmt.Sprintf("the Authorization value is longer than %d bytes", maxAuthorization))
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if i := strings.IndexByte(scheme, '\t'); i >= 0 {
		scheme, rest = h[:i], h[i+1:]
	}
	rest = strings.TrimLeft(rest, " \t")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		return parseBasic(rest)
	case strings.EqualFold(scheme, "Bearer"):
		return parseBearer(rest)
	}
	return credentials{}, basicError(ErrScheme,
		fmt.Sprintf("unsupported authorization scheme %s; use Basic or Bearer", quote(scheme)))
}

// parseBasic decodes base64(id:password) (RFC 7617). The password may
// contain colons; the id may not.
func parseBasic(s string) (credentials, error) {
	if s == "" {
		return credentials{}, basicError(ErrMalformed, "malformed Basic credentials: empty")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return credentials{}, basicError(ErrMalformed, "malformed Basic credentials: not base64")
	}
	id, password, ok := strings.Cut(string(b), ":")
	switch {
	case !ok:
		return credentials{}, basicError(ErrMalformed, "malformed Basic credentials: no colon between producer id and password")
	case id == "":
		return credentials{}, basicError(ErrMalformed, "malformed Basic credentials: empty producer id")
	}
	return credentials{kind: kindBasic, id: id, secret: password}, nil
}

// parseBearer checks a bearer token's syntax (token68, RFC 6750 section
// 2.1) and tells API keys from JWTs by the esk_ prefix.
func parseBearer(s string) (credentials, error) {
	if s == "" {
		return credentials{}, bearerError(ErrMalformed, "malformed Bearer credentials: empty")
	}
	if !token68(s) {
		return credentials{}, bearerError(ErrMalformed, "malformed Bearer credentials: not a single base64url token")
	}
	if strings.HasPrefix(s, apiKeyPrefix) {
		if len(s) != apiKeyLen || !base64url(s[len(apiKeyPrefix):]) {
			return credentials{}, bearerError(ErrMalformed,
				"malformed API key: want esk_ followed by 43 base64url characters")
		}
		return credentials{kind: kindAPIKey, secret: s}, nil
	}
	return credentials{kind: kindJWT, secret: s}, nil
}

// token68 reports whether s is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
// "+" / "/" ) *"=".
func token68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// base64url reports whether s uses only the base64url alphabet.
func base64url(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
