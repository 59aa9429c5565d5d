package store

import (
	"context"
	"errors"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/service"
)

// Part is the store service as a part of an EventSync process (see
// package service): it writes events and delivery attempts to the
// process's event store. It has no routes of its own.
type Part struct {
	Config Config
	svc    *Service
}

// NewPart returns the store part.
func NewPart() *Part { return &Part{} }

// Flags defines the store settings on fs.
func (p *Part) Flags(fs *conf.Set) { p.Config.Flags(fs) }

// Validate checks the settings before anything connects.
func (p *Part) Validate() error {
	c := p.Config
	return c.validate()
}

// Open builds the service on the process's event store. It finishes the
// batch in hand within the process's shutdown timeout.
func (p *Part) Open(_ context.Context, d service.Deps) error {
	if d.Store == nil {
		return errors.New("store: the process has no event store")
	}
	cfg := p.Config
	cfg.ShutdownTimeout = d.ShutdownTimeout
	var err error
	p.svc, err = New(cfg, d.JS, d.Store, d.Log)
	return err
}

// Mount adds nothing: the store serves only the process's ops endpoints.
func (p *Part) Mount(chi.Router) {}

// Run consumes until ctx is done.
func (p *Part) Run(ctx context.Context) error { return p.svc.Run(ctx) }

// Program is the store service as its binary runs it: the one assembly (package
// service) of this part, listening on :8081, with authentication on by
// default.
func Program(version string) service.Program {
	return service.Program{
		Name:        "store",
		Version:     version,
		HTTPAddr:    ":8081",
		Store:       chstore.NewOpener(chstore.DefaultDSN),
		Parts:       []service.Part{NewPart()},
		AuthDefault: access.AuthClients,
	}
}
