package notifier

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/stream"
)

type metrics struct {
	attempts    *prometheus.CounterVec
	latency     prometheus.Histogram
	lag         prometheus.Histogram
	deadLetters prometheus.Counter
	auditErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsync_notifier_attempts_total",
			Help: "Delivery attempts per event, by outcome (delivered, retrying, dead_lettered, disabled, skipped).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventsync_notifier_attempt_seconds",
			Help:    "Duration of one delivery attempt (request to response).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventsync_notifier_delivery_lag_seconds",
			Help:    "Time from ingest accepting an event to its successful delivery.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsync_notifier_dead_letters_total",
			Help: "Events the notifier gave up on and parked in the DLQ stream.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsync_notifier_audit_errors_total",
			Help: "Attempt records that could not be published to the DELIVERIES stream.",
		}),
	}
	for _, c := range []prometheus.Collector{m.attempts, m.latency, m.lag, m.deadLetters, m.auditErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register notifier metrics: %w", err)
		}
	}
	return m, nil
}

var pendingDesc = prometheus.NewDesc("eventsync_notifier_pending",
	"Events not yet delivered per subscription: waiting in its consumers, in flight or waiting for a retry.",
	[]string{"subscription"}, nil)

// pendingCollector reads the pending counts of the subscriptions running on
// this instance from their consumers when scraped.
type pendingCollector struct{ s *Service }

func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc }

func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	ids := make([]string, 0, len(c.s.workers))
	for id := range c.s.workers {
		ids = append(ids, id)
	}
	c.s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, id := range ids {
		n, err := c.s.pending(ctx, id)
		if err != nil {
			continue
		}
		if m, err := prometheus.NewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), id); err == nil {
			ch <- m
		}
	}
}

// pending counts a subscription's undelivered events in both consumers.
func (s *Service) pending(ctx context.Context, id string) (uint64, error) {
	var n uint64
	for _, c := range []struct{ stream, name string }{
		{stream.Events, stream.NotifyConsumer(id)},
		{stream.Redrive, stream.RedriveConsumer(id)},
	} {
		cons, err := s.js.Consumer(ctx, c.stream, c.name)
		if err != nil {
			return 0, err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, err
		}
		n += info.NumPending + uint64(info.NumAckPending)
	}
	return n, nil
}
