package ingest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

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
//
// On shutdown it stops taking requests and answers those it took: they run
// on a context that shutdown does not cancel (each is bounded by the
// publish timeout), so a request in flight at SIGTERM is published and
// answered 202, not refused with 503.
func (s *Service) Run(ctx context.Context) error {
	sem := make(chan struct{}, s.cfg.RequestWorkers)
	var inFlight sync.WaitGroup
	reqCtx := context.WithoutCancel(ctx)
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        "eventsync-ingest",
		Version:     s.cfg.Version,
		Description: "Validates EventSync events and publishes them to JetStream",
		Endpoint: &micro.EndpointConfig{
			Subject: stream.IngestSubject,
			// The handler only hands off: waiting for JetStream acks in the
			// subscription's goroutine would serialize every producer.
			Handler: micro.HandlerFunc(func(req micro.Request) {
				inFlight.Add(1)
				sem <- struct{}{}
				go func() {
					defer inFlight.Done()
					defer func() { <-sem }()
					s.handleRequest(reqCtx, req)
				}()
			}),
		},
	})
	if err != nil {
		return fmt.Errorf("add nats micro service: %w", err)
	}
	<-ctx.Done()
	// Stop drains the subscription: requests already received are still
	// handed to the handler.
	if err := svc.Stop(); err != nil {
		return fmt.Errorf("stop nats micro service: %w", err)
	}
	done := make(chan struct{})
	go func() { inFlight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("nats requests still in flight after the shutdown timeout", "timeout", s.cfg.ShutdownTimeout)
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
	body, err := s.readBody(bytes.NewReader(req.Data()), req.Headers().Get("Content-Encoding"))
	if err != nil {
		s.respondError(req, s.reject(err))
		return
	}
	resp, err := s.ingest(ctx, request{producer: p, body: body, format: f})
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
	var opts []micro.RespondOpt
	if p.RetryAfter > 0 {
		secs := strconv.Itoa(int((p.RetryAfter + time.Second - 1) / time.Second))
		opts = append(opts, micro.WithHeaders(micro.Headers{"Retry-After": {secs}}))
	}
	if err := req.Error(strconv.Itoa(p.Status), p.Title, problem.Marshal(p), opts...); err != nil {
		s.log.Warn("respond to nats request", "err", err)
	}
}
