package notifier

import (
	"context"
	"errors"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/notifier/internal/sink"
)

// Part is the notifier as a part of an EventSync process (see package
// service): the subscription API and delivery to webhooks, Slack and
// email.
type Part struct {
	Config Config
	svc    *Service
}

// NewPart returns the notifier part.
func NewPart() *Part { return &Part{} }

// Flags defines the notifier settings on fs.
func (p *Part) Flags(fs *conf.Set) { p.Config.Flags(fs) }

// Validate checks the settings before anything connects, the email
// channel's included.
func (p *Part) Validate() error {
	errs := []error{p.Config.validate()}
	if p.Config.SMTP.Addr != "" {
		_, err := sink.NewEmail(p.Config.SMTP)
		errs = append(errs, err)
	} else if err := sink.CheckTLSMode(p.Config.SMTP.TLS); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Open builds the notifier on the subscriptions bucket, with the gate's
// client registry (owner checks at delivery) and keyring (secrets and
// header values sealed at rest).
func (p *Part) Open(ctx context.Context, d service.Deps) error {
	cfg := p.Config
	cfg.Stream = d.Stream
	kv, err := stream.EnsureNotify(ctx, d.JS, d.Stream)
	if err != nil {
		return err
	}
	var opts []Option
	if d.Gate != nil {
		opts = append(opts, WithClients(d.Gate.Registry()), WithKeyring(d.Gate.Keyring()))
	}
	p.svc, err = New(cfg, d.JS, kv, d.Metrics, d.Log, opts...)
	return err
}

// Mount adds the subscription API to r.
func (p *Part) Mount(r chi.Router) { p.svc.Mount(r) }

// Run delivers until ctx is done.
func (p *Part) Run(ctx context.Context) error { return p.svc.Run(ctx) }

// Program is the notifier as its binary runs it: the one assembly (package
// service) of this part, listening on :8083, with authentication on by
// default.
func Program(version string) service.Program {
	return service.Program{
		Name:        "notifier",
		Version:     version,
		HTTPAddr:    ":8083",
		Parts:       []service.Part{NewPart()},
		AuthDefault: access.AuthClients,
	}
}
