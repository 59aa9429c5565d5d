package query

import (
	"context"
	"log/slog"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/query/internal/consumers"
	"github.com/eventsync/eventsync/services/query/internal/tail"
)

// Live serves the reads that come straight from JetStream rather than the
// store: named consumers with positions and acknowledgement
// (/v1/consumers) and the live tail over Server-Sent Events (/v1/stream).
type Live struct {
	consumers *consumers.API
	tail      *tail.Tail
}

// NewLive ensures the consumers bucket and returns the live endpoints.
func NewLive(ctx context.Context, js jetstream.JetStream, sc stream.Config, log *slog.Logger) (*Live, error) {
	kv, err := stream.EnsureConsumers(ctx, js, sc)
	if err != nil {
		return nil, err
	}
	return &Live{consumers: consumers.New(js, kv, log), tail: tail.New(js, tail.Config{}, log)}, nil
}

// Mount adds the live endpoints to r.
func (l *Live) Mount(r chi.Router) {
	l.consumers.Mount(r)
	l.tail.Mount(r)
}

// Run ends open live tails when ctx is done, so that shutdown does not wait
// for clients that never hang up.
func (l *Live) Run(ctx context.Context) error { return l.tail.Run(ctx) }
