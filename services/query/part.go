package query

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/collector"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/eventserver"
	"github.com/eventsync/eventsync/pkg/logsync"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Part is the query service as a part of an EventSync process (see
// package service): reads of the event store and the delivery audit, the
// named consumers and the live tail, the event server's read and ACK
// endpoints, and the log-sync service's read.
type Part struct {
	svc    *Service
	live   *Live
	tokens *access.Tokens // nil without a gate
}

// NewPart returns the query part.
func NewPart() *Part { return &Part{} }

// Flags defines nothing: the query service has only the process's settings.
func (p *Part) Flags(*conf.Set) {}

// Validate has nothing to check.
func (p *Part) Validate() error { return nil }

// Open builds the reads on the process's event store and JetStream.
func (p *Part) Open(ctx context.Context, d service.Deps) error {
	if d.Store == nil {
		return errors.New("query: the process has no event store")
	}
	subs, err := d.JS.KeyValue(ctx, stream.SubscriptionsBucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", stream.SubscriptionsBucket, err)
	}
	deliveries := stream.NewConsumerWatermark(d.JS, stream.Deliveries, stream.StoreDeliveriesConsumer)
	p.svc = New(d.Store, stream.NewWatermark(d.JS), deliveries, d.Log)
	p.svc.subs = subs
	if d.Gate != nil {
		p.tokens = d.Gate.Tokens()
	}
	p.live, err = NewLive(ctx, d.JS, d.Stream, d.Log)
	return err
}

// Mount adds the read endpoints to r, and POST /v1/tokens, which issues
// the access tokens the live tail accepts.
func (p *Part) Mount(r chi.Router) {
	p.svc.Mount(r)
	p.live.Mount(r)
	if p.tokens != nil {
		p.tokens.Mount(r)
	}
	api := p.internal()
	eventserver.New(api).MountConsume(r)
	logsync.New(api).MountRead(r)
	collector.New(api).Mount(r)
}

// internal is the router the translated requests of the event server and
// the log-sync service go to: the same endpoints without the gate, which
// the original request has passed. They run as its principal (the event
// server narrows it), so a client with read scope reads through a named
// consumer without the consume scope, and credentials are not checked
// twice (a JWT's jti would be a replay the second time).
func (p *Part) internal() chi.Router {
	r := chi.NewRouter()
	p.svc.Mount(r)
	p.live.consumers.Mount(r)
	return r
}

// Run ends open live tails when ctx is done.
func (p *Part) Run(ctx context.Context) error { return p.live.Run(ctx) }

// WrapRouter answers the refusals of the event server's routes (the
// gate's 401 and 403, a 405) in the event server's format.
func (p *Part) WrapRouter(h http.Handler) http.Handler { return eventserver.Refusals(h) }

// Program is the query service as its binary runs it: the one assembly (package
// service) of this part, listening on :8082, with authentication on by
// default.
func Program(version string) service.Program {
	return service.Program{
		Name:        "query",
		Version:     version,
		HTTPAddr:    ":8082",
		Store:       chstore.NewOpener(chstore.DefaultDSN),
		Parts:       []service.Part{NewPart()},
		AuthDefault: access.AuthClients,
	}
}
