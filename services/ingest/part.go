package ingest

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"golang.org/x/sync/errgroup"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/eventserver"
	"github.com/eventsync/eventsync/pkg/logsync"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/theeye"
	"github.com/eventsync/eventsync/services/ingest/internal/portals"
)

// Part is the ingest service as a part of an EventSync process (see
// package service): HTTP and NATS intake, producer trust, and the admin
// APIs of producers and schemas.
type Part struct {
	Config Config
	Guard  GuardConfig

	Portals portals.Config // the dispatcher's kind rules

	svc   *Service
	guard *Guard
	gate  *access.Gate

	portals *portals.Server
}

// NewPart returns the ingest part.
func NewPart() *Part { return &Part{} }

// Flags defines the ingest and trust settings on fs.
func (p *Part) Flags(fs *conf.Set) {
	p.Config.Flags(fs)
	p.Guard.flags(fs)
	p.Portals.Flags(fs)
}

// Validate checks the settings before anything connects.
func (p *Part) Validate() error { return nil }

// Open opens the registries and builds the service. Ingest has its own
// JetStream context: its asynchronous publishes time out after
// --publish-timeout.
func (p *Part) Open(ctx context.Context, d service.Deps) error {
	js, err := stream.JetStream(d.NC, p.Config.PublishTimeout)
	if err != nil {
		return err
	}
	p.gate = d.Gate
	if p.guard, err = OpenGuard(ctx, js, d.Gate, p.Guard, d.Stream, d.Log); err != nil {
		return err
	}
	cfg := p.Config
	cfg.Version = microVersion(d.Version)
	cfg.ShutdownTimeout = d.ShutdownTimeout
	if p.svc, err = New(cfg, d.NC, js, p.guard.Trust, d.Metrics, d.Log); err != nil {
		return err
	}
	if p.portals, err = portals.Open(ctx, js, d.Gate.Keyring(), p.Portals, d.Stream, d.Log); err != nil {
		return err
	}
	return nil
}

// Mount adds the event intake, the admin APIs and the publish endpoints
// of the event server and the log-sync service to r.
func (p *Part) Mount(r chi.Router) {
	p.svc.Mount(r)
	p.guard.Mount(r)
	internal := p.internal()
	eventserver.New(internal).MountPublish(r)
	p.portals.Mount(r, p.svc)
	logsync.New(internal).MountPublish(r)
	theeye.New(p.svc, p.Config.MaxBody).Mount(r)
}

// internal is the router the translated requests of the event server's
// and the log-sync service's publishes go to: ingest's endpoints without the gate, which the original request
// has passed. They run as its client, and credentials are not checked
// twice (a JWT's jti would be a replay the second time).
func (p *Part) internal() chi.Router {
	r := chi.NewRouter()
	p.svc.Mount(r)
	return r
}

// Run serves the NATS request path and keeps the registries current
// until ctx is done.
func (p *Part) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.guard.Run(ctx) })
	g.Go(func() error { return p.svc.Run(ctx) })
	return g.Wait()
}

// Ready waits until the schemas are loaded, then refuses to run with
// authentication on and no way to authenticate (ingest serves the admin
// API that creates clients).
func (p *Part) Ready(ctx context.Context) error {
	if err := p.guard.Ready(ctx); err != nil {
		return err
	}
	return p.gate.CheckStartable()
}

// MaxBody is the largest request body ingest accepts (--max-body).
func (p *Part) MaxBody() int64 { return p.Config.MaxBody }

// microVersion is the version the NATS micro service reports: the build's
// version when it is semantic (v1.2.3 or 1.2.3-rc.1), else 0.0.0 (a
// development build, "dev" or a commit hash).
func microVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	core, _, _ := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return "0.0.0"
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 64); err != nil {
			return "0.0.0"
		}
	}
	return v
}

// WrapRouter answers the refusals of the event server's routes (the
// gate's 401 and 403, a 405) in the event server's format, and CORS
// requests to The Eye's route from any origin.
func (p *Part) WrapRouter(h http.Handler) http.Handler { return theeye.CORS(eventserver.Refusals(h)) }

// Program is the ingest service as its binary runs it: the one assembly (package
// service) of this part, listening on :8080, with authentication on by
// default.
func Program(version string) service.Program {
	return service.Program{
		Name:        "ingest",
		Version:     version,
		HTTPAddr:    ":8080",
		Parts:       []service.Part{NewPart()},
		AuthDefault: access.AuthClients,
	}
}
