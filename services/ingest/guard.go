package ingest

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/producers"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
	"github.com/eventsync/eventsync/services/ingest/internal/schemas"
)

// GuardConfig configures the defaults of rate limits and category
// ownership. Authentication is the process's (package access).
type GuardConfig struct {
	RatePerSecond     float64 // default events/s per producer; 0: unlimited
	RateBurst         int     // default burst per producer
	ClaimOnFirstWrite bool    // the first producer to write a category owns it
}

// flags defines the trust settings on fs.
func (c *GuardConfig) flags(fs *conf.Set) {
	fs.Float64(&c.RatePerSecond, "rate", "INGEST_RATE", 0, "default events per second per producer (0: unlimited); a producer's own rate wins")
	fs.Int(&c.RateBurst, "rate-burst", "INGEST_RATE_BURST", 0, "default burst per producer (0: one second's worth, at least 1)")
	fs.Bool(&c.ClaimOnFirstWrite, "claim-on-first-write", "INGEST_CLAIM_ON_FIRST_WRITE", false, "the first producer to write a category becomes its owner (others get 423)")
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

// OpenGuard opens the schema registry (creating its bucket) and builds
// the checks with the gate's client registry and authenticator. It starts
// no goroutines: Run does.
func OpenGuard(ctx context.Context, js jetstream.KeyValueManager, gate *access.Gate, cfg GuardConfig, sc stream.Config, log *slog.Logger) (*Guard, error) {
	log = log.With("component", "trust")
	g := &Guard{cfg: cfg, log: log, registry: gate.Registry()}
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
		Clients:           g.registry,
		Owners:            g.registry,
		Seen:              g.registry,
		Schemas:           g.schemas,
		Limits:            ratelimit.NewShared(lkv, ratelimit.Rate{PerSecond: cfg.RatePerSecond, Burst: cfg.RateBurst}, ratelimit.WithLogger(log)),
		ClaimOnFirstWrite: cfg.ClaimOnFirstWrite,
	}
	if a := gate.Authenticator(); a != nil {
		g.Trust.Auth = a
	}
	return g, nil
}

// Run keeps the registries current until ctx is done. Ingest is the
// service that writes the client registry, so it also re-seals the JWT
// secrets the registry found in clear or under an old secrets key.
func (g *Guard) Run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.schemas.Run(ctx) })
	eg.Go(func() error { g.reseal(ctx); return nil })
	if l, ok := g.Trust.Limits.(interface{ Run(context.Context) error }); ok {
		eg.Go(func() error { return l.Run(ctx) }) // settles the shared rate limits
	}
	return eg.Wait()
}

// reseal re-seals the client registry's JWT secrets once it is loaded. A
// failure is logged, not fatal: the secrets stay readable, and the next
// start or write seals them.
func (g *Guard) reseal(ctx context.Context) {
	n, err := g.registry.Reseal(ctx)
	if n > 0 {
		g.log.Info("client secrets re-sealed", "clients", n)
	}
	if err != nil && ctx.Err() == nil {
		g.log.Warn("re-seal client secrets", "err", err)
	}
}

// Ready waits until the schemas are loaded (the process's gate waits for
// the client registry).
func (g *Guard) Ready(ctx context.Context) error {
	select {
	case <-g.schemas.Synced():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Mount adds the admin APIs (/v1/producers, /v1/schemas) to r.
func (g *Guard) Mount(r chi.Router) {
	producers.New(g.registry, g.log).Mount(r)
	schemas.New(g.schemas, g.log).Mount(r)
}
