package ingest

import (
	"context"
	"fmt"
	"strconv"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Run serves the NATS request path (subject eventsync.ingest, a NATS micro
// service so `nats micro ls` finds it) until ctx is done. Every ingest
// instance joins the same queue group, so each request is handled once.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.cfg.RequestWorkers)
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        "eventsync-ingest",
		Version:     s.cfg.Version,
		Description: "Validates EventSync events and publishes them to JetStream",
		Endpoint: &micro.EndpointConfig{
			Subject: stream.IngestSubject,
			// The handler only hands off: waiting for JetStream acks in the
			// subscription's goroutine would serialize every producer.
			Handler: micro.HandlerFunc(func(req micro.Request) {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				go func() {
					defer func() { <-sem }()
					s.handleRequest(ctx, req)
				}()
			}),
		},
	})
	if err != nil {
		return fmt.Errorf("add nats micro service: %w", err)
	}
	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		return fmt.Errorf("stop nats micro service: %w", err)
	}
	// Wait for requests in flight to be answered.
	for range cap(sem) {
		sem <- struct{}{}
	}
	return nil
}

// handleRequest answers one NATS request with the HTTP API's bodies: the
// 202 body on success, a problem (and the micro error headers) otherwise.
//
// Credentials travel in an Authorization header, exactly as over HTTP.
func (s *Service) handleRequest(ctx context.Context, req micro.Request) {
	p, err := s.authenticate(ctx, auth.FromNATS(nats.Header(req.Headers())))
	if err != nil {
		s.respondError(req, s.reject(err))
		return
	}
	f := event.JSON
	if h := req.Headers().Get("Content-Type"); h != "" {
		var err error
		if f, err = format(h); err != nil {
			s.respondError(req, s.reject(err))
			return
		}
	}
	resp, err := s.ingest(ctx, request{producer: p, body: req.Data(), format: f})
	if err != nil {
		s.respondError(req, err)
		return
	}
	b, err := jsonv2.Marshal(resp)
	if err == nil {
		err = req.Respond(b)
	}
	if err != nil {
		s.log.Warn("respond to nats request", "err", err)
	}
}

func (s *Service) respondError(req micro.Request, err error) {
	p := toProblem(err)
	if p == nil {
		s.log.Error("ingest nats request", "err", err)
		p = problem.New(500, "internal", "")
	}
	if err := req.Error(strconv.Itoa(p.Status), p.Title, problem.Marshal(p)); err != nil {
		s.log.Warn("respond to nats request", "err", err)
	}
}
