package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/services/ingest/internal/producers"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
	"github.com/eventsync/eventsync/services/ingest/internal/schemas"
)

// Auth modes.
const (
	AuthProducers = "producers" // every request names a registered producer
	AuthNone      = "none"      // anyone may write any tag (a laptop, a trusted network)
)

// GuardConfig configures producer trust: authentication, the admin API, and
// the defaults of rate limits and category ownership.
type GuardConfig struct {
	Auth              string        // AuthProducers or AuthNone
	AdminToken        string        // bearer token of /v1/producers and /v1/schemas; empty: those APIs are off
	RatePerSecond     float64       // default events/s per producer; 0: unlimited
	RateBurst         int           // default burst per producer
	ClaimOnFirstWrite bool          // the first producer to write a category owns it
	TokenLifetime     time.Duration // longest JWT lifetime (exp - iat)
	ClockSkew         time.Duration // tolerated clock difference for JWT iat/exp
	// AuthThrottle limits failed authentications per client (429 with
	// Retry-After once over); the zero value sets no limit.
	AuthThrottle auth.ThrottleConfig
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; none: the peer address is the client's.
	TrustedProxies auth.Prefixes
}

// flags defines the trust settings on fs with the given default of the
// auth mode.
func (c *GuardConfig) flags(fs *conf.Set, authDef string) {
	fs.String(&c.Auth, "auth", "AUTH", authDef, "producer authentication: producers (Basic, API key or JWT per producer) or none")
	fs.String(&c.AdminToken, "admin-token", "ADMIN_TOKEN", "", "bearer token of the admin APIs (/v1/producers, /v1/schemas); empty: they are off")
	fs.Float64(&c.RatePerSecond, "rate", "INGEST_RATE", 0, "default events per second per producer (0: unlimited); a producer's own rate wins")
	fs.Int(&c.RateBurst, "rate-burst", "INGEST_RATE_BURST", 0, "default burst per producer (0: one second's worth, at least 1)")
	fs.Bool(&c.ClaimOnFirstWrite, "claim-on-first-write", "INGEST_CLAIM_ON_FIRST_WRITE", false, "the first producer to write a category becomes its owner (others get 423)")
	fs.Duration(&c.TokenLifetime, "token-lifetime", "INGEST_TOKEN_LIFETIME", auth.DefaultMaxLifetime, "longest accepted JWT lifetime (exp - iat)")
	fs.Int(&c.AuthThrottle.MaxFailures, "auth-max-failures", "INGEST_AUTH_MAX_FAILURES", auth.DefaultMaxFailures,
		"failed authentications per client address within --auth-failure-window before it is refused (429) for --auth-cooldown, before any password check (0: no limit)")
	fs.Duration(&c.AuthThrottle.Window, "auth-failure-window", "INGEST_AUTH_FAILURE_WINDOW", auth.DefaultFailureWindow, "how long failed authentications of a client add up")
	fs.Duration(&c.AuthThrottle.CoolDown, "auth-cooldown", "INGEST_AUTH_COOLDOWN", auth.DefaultCoolDown, "how long a client over --auth-max-failures is refused")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "TRUSTED_PROXIES",
		"comma-separated addresses or CIDRs of reverse proxies: from them, the right-most X-Forwarded-For address not in the list is the client's (empty: the peer address is, and X-Forwarded-For is ignored)")
}

// Guard holds the producer registry, the schema registry and the checks
// ingest applies with them. Run keeps the registries current.
type Guard struct {
	cfg      GuardConfig
	log      *slog.Logger
	Trust    Trust
	registry *producer.Registry
	schemas  *schema.Registry
}

// OpenGuard opens the registries (creating their buckets) and builds the
// checks. It starts no goroutines: Run does.
func OpenGuard(ctx context.Context, js jetstream.KeyValueManager, cfg GuardConfig, sc stream.Config, log *slog.Logger) (*Guard, error) {
	switch cfg.Auth {
	case AuthProducers, AuthNone:
	default:
		return nil, fmt.Errorf("auth must be %q or %q, not %q", AuthProducers, AuthNone, cfg.Auth)
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = auth.DefaultClockSkew
	}
	log = log.With("component", "trust")
	g := &Guard{cfg: cfg, log: log}
	var err error
	if g.registry, err = producer.Open(ctx, js, sc); err != nil {
		return nil, err
	}
	skv, err := js.CreateOrUpdateKeyValue(ctx, stream.SchemasConfig(sc))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", stream.SchemasBucket, err)
	}
	g.schemas = schema.New(skv, schema.WithInvalidHandler(func(key string, err error) {
		log.Error("stored schema does not compile; events of its tags are not checked", "key", key, "err", err)
	}))
	lkv, err := stream.EnsureRateLimit(ctx, js, sc)
	if err != nil {
		return nil, err
	}
	g.Trust = Trust{
		Owners:            g.registry,
		Seen:              g.registry,
		Schemas:           g.schemas,
		Limits:            ratelimit.NewShared(lkv, ratelimit.Rate{PerSecond: cfg.RatePerSecond, Burst: cfg.RateBurst}, ratelimit.WithLogger(log)),
		ClaimOnFirstWrite: cfg.ClaimOnFirstWrite,
	}
	if cfg.Auth == AuthProducers {
		jkv, err := stream.EnsureJTI(ctx, js, sc)
		if err != nil {
			return nil, err
		}
		g.Trust.Auth = auth.New(g.registry, auth.NewReplayStore(jkv), auth.Config{
			MaxLifetime: cfg.TokenLifetime, ClockSkew: cfg.ClockSkew, Throttle: cfg.AuthThrottle, TrustedProxies: cfg.TrustedProxies,
		})
	}
	return g, nil
}

// Run keeps the registries current until ctx is done.
func (g *Guard) Run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.registry.Run(ctx) })
	eg.Go(func() error { return g.schemas.Run(ctx) })
	if l, ok := g.Trust.Limits.(interface{ Run(context.Context) error }); ok {
		eg.Go(func() error { return l.Run(ctx) }) // settles the shared rate limits
	}
	return eg.Wait()
}

// Ready waits until both registries have loaded what the buckets hold.
func (g *Guard) Ready(ctx context.Context) error {
	for _, c := range []<-chan struct{}{g.registry.Ready(), g.schemas.Synced()} {
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// CheckStartable refuses to run with authentication on when nobody could
// ever authenticate: no producer is registered and no admin token lets
// one be created. Call it after Ready.
func (g *Guard) CheckStartable() error {
	if g.cfg.Auth != AuthProducers || len(g.registry.List()) > 0 || g.cfg.AdminToken != "" {
		return nil
	}
	return errors.New("auth is on but no producer is registered and no admin token is set: " +
		"set ADMIN_TOKEN and create producers (eventsync producers create), or start with --auth=none")
}

// Mount adds the admin APIs (/v1/producers, /v1/schemas) to r.
func (g *Guard) Mount(r chi.Router) {
	producers.New(g.registry, g.cfg.AdminToken, g.log).Mount(r)
	schemas.New(g.schemas, g.cfg.AdminToken, g.log).Mount(r)
}

// Describe says how requests are authenticated, for start-up logs.
func (g *Guard) Describe() string {
	var parts []string
	parts = append(parts, "auth="+g.cfg.Auth)
	if g.cfg.AdminToken == "" {
		parts = append(parts, "admin API off")
	}
	return strings.Join(parts, ", ")
}
