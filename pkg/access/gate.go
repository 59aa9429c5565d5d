package access

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Authentication modes.
const (
	AuthClients   = "clients"   // every request names a registered client (or carries the admin token)
	AuthProducers = "producers" // the former name of AuthClients, still accepted
	AuthNone      = "none"      // anyone may do anything (a laptop, a trusted network)
)

// Config is how requests are authenticated, the same in every service.
type Config struct {
	Auth       string // AuthClients (or AuthProducers) or AuthNone; empty: settled by the program
	AdminToken string // bearer token with admin scope; empty: none
	// TokenLifetime is the longest accepted JWT lifetime (exp - iat).
	TokenLifetime time.Duration
	ClockSkew     time.Duration
	// Throttle limits failed authentications per client address.
	Throttle auth.ThrottleConfig
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; none: the peer address is the client's.
	TrustedProxies auth.Prefixes
	// SecretsKey seals the secrets kept in buckets (clients' JWT secrets,
	// webhook signing secrets); SecretsOldKeys are earlier keys still
	// accepted to open them (see package sealed). Empty: kept in clear.
	SecretsKey     string
	SecretsOldKeys string
}

// Flags defines the settings on fs; authDefault is the default of --auth.
func (c *Config) Flags(fs *conf.Set, authDefault string) {
	fs.String(&c.Auth, "auth", "AUTH", authDefault, "authentication: clients (Basic, API key or JWT of a registered client, or the admin token, on every route but /healthz and /readyz) or none; producers is the former name of clients")
	fs.String(&c.AdminToken, "admin-token", "ADMIN_TOKEN", "", "bearer token with admin scope (every route); empty: none")
	fs.Duration(&c.TokenLifetime, "token-lifetime", "TOKEN_LIFETIME", auth.DefaultMaxLifetime, "longest accepted JWT lifetime (exp - iat)")
	fs.Int(&c.Throttle.MaxFailures, "auth-max-failures", "AUTH_MAX_FAILURES", auth.DefaultMaxFailures,
		"failed authentications per client address within --auth-failure-window before it is refused (429) for --auth-cooldown, before any password check (0: no limit)")
	fs.Duration(&c.Throttle.Window, "auth-failure-window", "AUTH_FAILURE_WINDOW", auth.DefaultFailureWindow, "how long failed authentications of a client add up")
	fs.Duration(&c.Throttle.CoolDown, "auth-cooldown", "AUTH_COOLDOWN", auth.DefaultCoolDown, "how long a client over --auth-max-failures is refused")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "TRUSTED_PROXIES",
		"comma-separated addresses or CIDRs of reverse proxies: from them, the right-most X-Forwarded-For address not in the list is the client's (empty: the peer address is, and X-Forwarded-For is ignored)")
	fs.String(&c.SecretsKey, "secrets-key", "SECRETS_KEY", "", "key sealing the secrets kept in NATS buckets (JWT secrets, webhook signing secrets): 32 bytes in base64 (head -c32 /dev/urandom | base64); empty: kept in clear")
	fs.String(&c.SecretsOldKeys, "secrets-old-keys", "SECRETS_OLD_KEYS", "", "earlier secrets keys, comma-separated, still accepted to open secrets while they are re-sealed with --secrets-key")
}

// Validate checks the settings.
func (c *Config) Validate() error {
	var errs []error
	switch c.Auth {
	case AuthClients, AuthProducers, AuthNone:
	default:
		errs = append(errs, fmt.Errorf("auth must be %q or %q, not %q", AuthClients, AuthNone, c.Auth))
	}
	if _, err := c.Keyring(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Keyring returns the keys of SecretsKey and SecretsOldKeys; nil when no
// key is set.
func (c *Config) Keyring() (*sealed.Keyring, error) {
	k, err := sealed.ParseKeys(c.SecretsKey, c.SecretsOldKeys)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return k, nil
}

// On reports whether requests must authenticate.
func (c *Config) On() bool { return c.Auth != AuthNone }

// Gate authenticates every request and checks the access table. Open
// builds it; Run keeps the client registry current.
type Gate struct {
	cfg      Config
	log      *slog.Logger
	registry *producer.Registry
	keyring  *sealed.Keyring     // nil: secrets kept in clear
	auth     *auth.Authenticator // nil with authentication off
	tokens   *Tokens
	rules    map[string]Rule // method + " " + pattern → rule
	refused  *prometheus.CounterVec
}

// Open opens the client registry, the JWT replay store and the access
// tokens (creating their buckets). It starts no goroutines.
func Open(ctx context.Context, js jetstream.KeyValueManager, cfg Config, sc stream.Config, log *slog.Logger) (*Gate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = auth.DefaultClockSkew
	}
	g := &Gate{cfg: cfg, log: log.With("component", "access"), rules: index(Routes),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsync_access_refused_total",
			Help: "Requests the access gate refused, by answer status (401, 403, 429, 503).",
		}, []string{"status"})}
	var err error
	if g.keyring, err = cfg.Keyring(); err != nil {
		return nil, err
	}
	if g.registry, err = producer.Open(ctx, js, sc, producer.WithKeyring(g.keyring), producer.WithErrorHandler(func(id string, err error) {
		g.log.Error("client record skipped", "client", id, "err", err)
	})); err != nil {
		return nil, err
	}
	tkv, err := stream.EnsureTokens(ctx, js, sc)
	if err != nil {
		return nil, err
	}
	g.tokens = NewTokens(tkv, g.registry)
	if cfg.On() {
		jkv, err := stream.EnsureJTI(ctx, js, sc)
		if err != nil {
			return nil, err
		}
		g.auth = auth.New(g.registry, auth.NewReplayStore(jkv), auth.Config{
			MaxLifetime: cfg.TokenLifetime, ClockSkew: cfg.ClockSkew, Throttle: cfg.Throttle, TrustedProxies: cfg.TrustedProxies,
		})
	}
	return g, nil
}

// Register adds the gate's metrics to reg.
func (g *Gate) Register(reg prometheus.Registerer) error {
	if err := reg.Register(g.refused); err != nil {
		return fmt.Errorf("register access metrics: %w", err)
	}
	return nil
}

// refuse answers a refused request and counts it.
func (g *Gate) refuse(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var p *problem.Problem
	if errors.As(err, &p) {
		status = p.Status
	}
	g.refused.WithLabelValues(strconv.Itoa(status)).Inc()
	problem.Write(w, err)
}

// Registry is the client registry.
func (g *Gate) Registry() *producer.Registry { return g.registry }

// Authenticator checks credentials (for NATS requests); nil with
// authentication off.
func (g *Gate) Authenticator() *auth.Authenticator { return g.auth }

// Keyring seals the secrets kept in buckets; nil when no key is set.
func (g *Gate) Keyring() *sealed.Keyring { return g.keyring }

// Tokens are the access tokens.
func (g *Gate) Tokens() *Tokens { return g.tokens }

// Config returns the settings.
func (g *Gate) Config() Config { return g.cfg }

// Run keeps the registry current until ctx is done.
func (g *Gate) Run(ctx context.Context) error { return g.registry.Run(ctx) }

// Ready waits until the registry has loaded the bucket.
func (g *Gate) Ready(ctx context.Context) error {
	select {
	case <-g.registry.Ready():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CheckStartable refuses to run with authentication on when nobody could
// ever authenticate: no client is registered and no admin token lets one
// be created. Ingest, which serves the admin API of clients, calls it
// after Ready; the other services start and wait for clients.
func (g *Gate) CheckStartable() error {
	if g.cfg.On() && g.cfg.AdminToken == "" && len(g.registry.List()) == 0 {
		return errors.New("auth is on but no client is registered and no admin token is set: " +
			"set ADMIN_TOKEN and create clients (eventsync producers create), or start with --auth=none")
	}
	return nil
}

// Describe says how requests are authenticated, for start-up logs.
func (g *Gate) Describe() string {
	s := "auth=" + g.cfg.Auth
	if g.cfg.On() && g.cfg.AdminToken == "" {
		s += ", no admin token"
	}
	return s
}

// Middleware returns the middleware that guards every route of routes by
// the access table. It finds the route a request goes to, answers 403
// for a route without a rule, lets public routes through, authenticates
// the others (401, 429 when throttled, 503 when the replay store does
// not answer) and checks the scope (403). Unknown paths and methods go
// on to the router's 404 and 405.
func (g *Gate) Middleware(routes chi.Routes) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			path := r.URL.RawPath
			if path == "" {
				path = r.URL.Path
			}
			pattern := routes.Find(chi.NewRouteContext(), r.Method, path)
			if pattern == "" {
				next.ServeHTTP(w, r)
				return
			}
			rule, ok := g.rules[r.Method+" "+pattern]
			if !ok {
				g.log.Error("route has no access rule", "method", r.Method, "route", pattern)
				g.refuse(w, problem.New(http.StatusForbidden, "forbidden", "no access rule for "+r.Method+" "+pattern))
				return
			}
			if rule.Scope == Public || rule.Scope == Signed {
				next.ServeHTTP(w, r)
				return
			}
			p, err := g.authenticate(r, rule)
			if err != nil {
				g.refuse(w, Problem(err))
				return
			}
			if !p.Can(rule.Scope) {
				g.refuse(w, Forbidden(fmt.Sprintf("%s needs the %s scope", r.Method+" "+pattern, rule.Scope)))
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
		})
	}
}

// TokenParam is the query parameter that carries an access token on the
// routes that accept one.
const TokenParam = "access_token"

func (g *Gate) authenticate(r *http.Request, rule Rule) (*Principal, error) {
	h := r.Header.Get("Authorization")
	if !g.cfg.On() {
		// Without authentication everything is open but the admin routes,
		// which need the admin token, and are off without one.
		switch {
		case rule.Scope != Admin || g.isAdminToken(h):
			return Unrestricted, nil
		case g.cfg.AdminToken == "":
			return nil, problem.NotFound("the admin API is off: set ADMIN_TOKEN (or use --auth=clients with a client of admin scope)")
		}
		return nil, &auth.Error{Detail: "this route needs the admin token: Authorization: Bearer <token>", Challenge: `Bearer realm="eventsync"`}
	}
	ctx := r.Context()
	if h == "" && rule.Token {
		if t := r.URL.Query().Get(TokenParam); t != "" {
			return g.tokens.Principal(ctx, t)
		}
	}
	if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(token)
		if g.isAdminToken(h) {
			return &Principal{ID: AdminID, Admin: true}, nil
		}
		if strings.HasPrefix(token, TokenPrefix) {
			if !rule.Token {
				return nil, &auth.Error{Detail: "access tokens are accepted by the live tail only", Challenge: `Bearer realm="eventsync"`}
			}
			return g.tokens.Principal(ctx, token)
		}
	}
	ctx = auth.WithRemote(ctx, r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
	c, err := g.auth.Authenticate(ctx, h)
	var ae *auth.Error
	if errors.As(err, &ae) && errors.Is(ae, auth.ErrMalformed) && opaqueBearer(h) {
		// Neither an API key nor a JWT: most likely a wrong admin token.
		ae.Detail = "malformed token: neither the admin token, an API key (esk_…) nor a JWT (three base64url segments)"
	}
	if err != nil {
		return nil, err
	}
	// Last seen is the last write: only ingest, which serves the write
	// routes, writes the client registry.
	if rule.Scope == Write {
		if err := g.registry.TouchLastSeen(ctx, c.ID); err != nil {
			g.log.Debug("touch last seen", "client", c.ID, "err", err)
		}
	}
	return FromProducer(c), nil
}

// isAdminToken reports whether the Authorization value carries the admin
// token (compared in constant time).
func (g *Gate) isAdminToken(authorization string) bool {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || g.cfg.AdminToken == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(g.cfg.AdminToken)) == 1
}

// opaqueBearer reports whether the Authorization value is a Bearer token
// shaped like neither an API key nor a JWT.
func opaqueBearer(authorization string) bool {
	scheme, token, ok := strings.Cut(authorization, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.HasPrefix(token, "esk_") {
		return false
	}
	for _, c := range token {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_~+/=", c)) {
			return false // not one token, or a JWT: the authenticator's detail says more
		}
	}
	return true
}

// Problem answers an authentication failure: 403 for a disabled client
// whose credentials were right, 429 for a throttled client, 503 when the
// replay store does not answer, else 401 with the challenge. Other errors
// are returned as they are.
func Problem(err error) error {
	var e *auth.Error
	switch {
	case errors.As(err, &e) && errors.Is(e, auth.ErrDisabled):
		return Forbidden(e.Detail)
	case errors.As(err, &e) && errors.Is(e, auth.ErrThrottled):
		p := problem.New(http.StatusTooManyRequests, "throttled", e.Detail)
		p.RetryAfter = e.RetryAfter
		return p
	case errors.As(err, &e):
		p := problem.New(http.StatusUnauthorized, "unauthenticated", e.Detail)
		p.Challenge = e.Challenge
		return p
	case errors.Is(err, auth.ErrUnavailable):
		return problem.Unavailable("credentials cannot be checked right now; retry", time.Second)
	}
	return err
}

// Forbidden is the problem of a request the client may not make.
func Forbidden(detail string) *problem.Problem {
	return problem.New(http.StatusForbidden, "forbidden", detail)
}

// AddRules adds rules for routes beyond the table's, such as the routes of
// a test's own parts. Call it before serving.
func (g *Gate) AddRules(rules ...Rule) {
	for _, r := range rules {
		g.rules[r.Method+" "+r.Pattern] = r
	}
}

func index(rules []Rule) map[string]Rule {
	m := make(map[string]Rule, len(rules))
	for _, r := range rules {
		m[r.Method+" "+r.Pattern] = r
	}
	return m
}
