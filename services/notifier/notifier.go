// Package notifier is the EventSync notifier: subscriptions that pick event
// tags with NATS wildcards (kept in a JetStream key-value bucket), one
// durable JetStream consumer per subscription, signed delivery to webhooks,
// Slack and email with retries driven by JetStream redelivery, dead letters,
// replay, and an audit record of every attempt on the DELIVERIES stream.
//
// Every notifier instance watches the subscriptions bucket and runs a worker
// for each active subscription. Instances share a subscription's durable
// consumer, so JetStream hands each message to one of them at a time.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/services/notifier/internal/netguard"
	"github.com/eventsync/eventsync/services/notifier/internal/sink"
)

// DefaultSchedule is the retry schedule: the wait before each attempt.
// JetStream carries it out (NakWithDelay by the message's delivery count), so
// a restart loses no retry. Each wait gets ±20 % jitter.
//
//	attempt   1    2    3     4      5       6       7    8    9
//	wait      0    5s   30s   2min   10min   30min   1h   3h   6h
//	elapsed   0    5s   35s   ~3min  ~13min  ~43min  ~2h  ~5h  ~11h
//
// After the ninth failed attempt the event goes to the dead letters.
var DefaultSchedule = Schedule{0, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour}

// Defaults of Config.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultAckWait       = 30 * time.Second
	DefaultDisableAfter  = 24 * time.Hour
	DefaultSecretOverlap = 24 * time.Hour
	DefaultConcurrency   = 64
	DefaultMaxPending    = 1000
)

// Config tunes the notifier.
type Config struct {
	Timeout       time.Duration // one delivery attempt; default 10 s
	AckWait       time.Duration // JetStream redelivers after this; must exceed Timeout
	Schedule      Schedule      // retry schedule; default DefaultSchedule
	DisableAfter  time.Duration // disable a subscription failing for this long; default 24 h
	SecretOverlap time.Duration // a rotated-out secret keeps signing this long; default 24 h
	Concurrency   int           // deliveries in flight per subscription and instance; default 64
	MaxPending    int           // unacknowledged messages per subscription (MaxAckPending); default 1000
	AllowNets     string        // CIDRs deliveries may reach although internal, comma-separated
	SMTP          sink.EmailConfig
	Stream        stream.Config // replicas of the REDRIVE stream and the subscriptions bucket
	UserAgent     string
}

// Flags defines the notifier settings on fs.
func (c *Config) Flags(fs *conf.Set) {
	fs.Duration(&c.Timeout, "notify-timeout", "NOTIFY_TIMEOUT", DefaultTimeout, "timeout of one delivery attempt (must be below the ack wait)")
	fs.Duration(&c.AckWait, "notify-ack-wait", "NOTIFY_ACK_WAIT", DefaultAckWait, "JetStream redelivers a message no notifier acknowledged after this")
	if len(c.Schedule) == 0 {
		c.Schedule = append(Schedule(nil), DefaultSchedule...)
	}
	fs.Var(&c.Schedule, "notify-retry-schedule", "NOTIFY_RETRY_SCHEDULE", "waits before each delivery attempt, comma-separated; the first is normally 0")
	fs.Duration(&c.DisableAfter, "notify-disable-after", "NOTIFY_DISABLE_AFTER", DefaultDisableAfter, "disable a subscription whose deliveries have failed continuously for this long")
	fs.Duration(&c.SecretOverlap, "notify-secret-overlap", "NOTIFY_SECRET_OVERLAP", DefaultSecretOverlap, "how long a rotated-out signing secret keeps signing beside the new one")
	fs.Int(&c.Concurrency, "notify-concurrency", "NOTIFY_CONCURRENCY", DefaultConcurrency, "deliveries in flight per subscription and notifier instance")
	fs.Int(&c.MaxPending, "notify-max-pending", "NOTIFY_MAX_PENDING", DefaultMaxPending, "unacknowledged messages per subscription, including those waiting for a retry")
	fs.String(&c.AllowNets, "notify-allow-nets", "NOTIFY_ALLOW_NETS", "", "CIDRs deliveries may reach although they are internal, e.g. 10.0.0.0/8 or 127.0.0.0/8,::1/128 for local receivers")
	fs.String(&c.SMTP.Addr, "smtp-addr", "SMTP_ADDR", "", "SMTP server host:port for mailto: subscriptions; empty: email is off")
	fs.String(&c.SMTP.From, "smtp-from", "SMTP_FROM", "eventsync@localhost", "sender address of notification mail")
	fs.String(&c.SMTP.Username, "smtp-username", "SMTP_USERNAME", "", "SMTP user name (optional)")
	fs.String((*string)(&c.SMTP.Password), "smtp-password", "SMTP_PASSWORD", "", "SMTP password (optional)")
	fs.String(&c.SMTP.TLS, "smtp-tls", "SMTP_TLS", "starttls", "SMTP transport security: starttls, tls or none")
}

func (c *Config) validate() error {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = DefaultDisableAfter
	}
	if c.SecretOverlap <= 0 {
		c.SecretOverlap = DefaultSecretOverlap
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.UserAgent == "" {
		c.UserAgent = "EventSync-Webhooks/1"
	}
	var errs []error
	if c.AckWait <= c.Timeout {
		errs = append(errs, fmt.Errorf("notify ack wait %s must exceed the attempt timeout %s", c.AckWait, c.Timeout))
	}
	if _, err := netguard.ParseAllow(c.AllowNets); err != nil {
		errs = append(errs, fmt.Errorf("notify allow nets: %w", err))
	}
	return errors.Join(errs...)
}

// Schedule is a retry schedule: Schedule[i] is the wait before attempt i+1.
type Schedule []time.Duration

// ParseSchedule parses a comma-separated list of durations ("0,5s,30s").
func ParseSchedule(s string) (Schedule, error) {
	var sc Schedule
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "0" {
			sc = append(sc, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("retry schedule: %q is not a duration", f)
		}
		sc = append(sc, d)
	}
	if len(sc) == 0 {
		return nil, errors.New("retry schedule: no attempts")
	}
	return sc, nil
}

// String formats the schedule as ParseSchedule reads it.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = shortDuration(d)
	}
	return strings.Join(parts, ",")
}

// shortDuration formats d without zero units: 2m, not 2m0s.
func shortDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Set parses a schedule (flag.Value).
func (s *Schedule) Set(v string) error {
	sc, err := ParseSchedule(v)
	if err != nil {
		return err
	}
	*s = sc
	return nil
}

// Attempts is the number of attempts the schedule allows.
func (s Schedule) Attempts() int { return len(s) }

// cap is the longest wait of the schedule; a receiver's Retry-After is
// honoured up to it.
func (s Schedule) cap() time.Duration {
	var m time.Duration
	for _, d := range s {
		m = max(m, d)
	}
	return m
}

// sender delivers one message through one channel.
type sender interface {
	Send(ctx context.Context, m *sink.Message) sink.Result
}

// jetStream is the part of JetStream the notifier uses.
type jetStream interface {
	jetstream.StreamConsumerManager
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
	OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error)
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// clients finds the client that owns a subscription (the client
// registry, *producer.Registry).
type clients interface {
	Get(id string) (*producer.Producer, bool)
	// Ready is closed once the registry has loaded every client: until
	// then Get finds nothing.
	Ready() <-chan struct{}
}

// Option configures a Service.
type Option func(*Service)

// WithClients makes the notifier check, before each delivery, that the
// client owning the subscription still exists, is enabled and may
// subscribe to the event's tag (see worker.allowed). Without it every
// subscription delivers whatever its patterns match.
func WithClients(c clients) Option { return func(s *Service) { s.clients = c } }

// WithKeyring seals the signing secrets and header values the notifier
// writes to the subscriptions bucket with k and opens them when it reads;
// nil keeps them in clear.
func WithKeyring(k *sealed.Keyring) Option { return func(s *Service) { s.subs.keyring = k } }

// Service is the notifier.
type Service struct {
	cfg     Config
	js      jetStream
	subs    *repo
	clients clients // nil: no owner checks at delivery
	guard   *netguard.Guard
	senders map[Type]sender
	metrics *metrics
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	workers map[string]*worker // by subscription id, on this instance

	// failed holds the subscriptions whose worker could not start (its
	// consumers could not be created, e.g. during a JetStream leader
	// election), by id, with the entry to apply again. Only Run's
	// goroutine uses it.
	failed map[string]failedStart
}

// failedStart is a subscription whose worker did not start, to be tried
// again at next.
type failedStart struct {
	entry    jetstream.KeyValueEntry
	attempts int
	next     time.Time
}

// restartWait is the wait before starting a failed worker again:
//
//	attempt  1   2   3   4   5    6+
//	wait     1s  2s  4s  8s  16s  30s (cap)
func restartWait(attempt int) time.Duration {
	return min(time.Second<<min(attempt-1, 5), 30*time.Second)
}

// New returns a notifier that keeps subscriptions in kv and delivers events
// from js.
func New(cfg Config, js jetStream, kv jetstream.KeyValue, reg prometheus.Registerer, log *slog.Logger, opts ...Option) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	allow, _ := netguard.ParseAllow(cfg.AllowNets) // validated above
	guard := netguard.New(allow)
	client := sink.NewHTTPClient(guard)
	senders := map[Type]sender{
		Webhook: sink.NewWebhook(client, cfg.UserAgent),
		Slack:   sink.NewSlack(client),
	}
	if cfg.SMTP.Addr != "" {
		email, err := sink.NewEmail(cfg.SMTP)
		if err != nil {
			return nil, err
		}
		senders[Email] = email
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:     cfg,
		js:      js,
		subs:    &repo{kv: kv},
		guard:   guard,
		senders: senders,
		metrics: m,
		log:     log.With("component", "notifier"),
		now:     time.Now,
		workers: map[string]*worker{},
		failed:  map[string]failedStart{},
	}
	for _, o := range opts {
		o(s)
	}
	if err := reg.Register(pendingCollector{s}); err != nil {
		return nil, fmt.Errorf("register notifier metrics: %w", err)
	}
	return s, nil
}

// Run watches the subscriptions bucket and runs a worker for every active
// subscription until ctx is done; then it stops the workers, letting
// in-flight deliveries finish and settle.
func (s *Service) Run(ctx context.Context) error {
	w, err := s.subs.kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch subscriptions: %w", err)
	}
	defer w.Stop() //nolint:errcheck // nothing to do about it on the way out
	defer s.stopAll()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("subscriptions watch closed")
			}
			if entry == nil { // every existing subscription has been seen
				s.log.Info("subscriptions loaded", "workers", s.running())
				continue
			}
			s.apply(ctx, entry)
		case <-retry.C:
			s.retryFailed(ctx)
		}
		if next, ok := s.nextRetry(); ok {
			retry.Reset(time.Until(next))
		}
	}
}

// retryFailed applies again the entries whose worker failed to start and
// whose wait is over.
func (s *Service) retryFailed(ctx context.Context) {
	now := time.Now()
	for id, f := range s.failed {
		if f.next.After(now) {
			continue
		}
		s.log.Info("starting subscription worker again", "subscription", id, "attempt", f.attempts+1)
		s.apply(ctx, f.entry)
	}
}

// nextRetry is when the earliest failed worker start is due again.
func (s *Service) nextRetry() (time.Time, bool) {
	var next time.Time
	for _, f := range s.failed {
		if next.IsZero() || f.next.Before(next) {
			next = f.next
		}
	}
	return next, !next.IsZero()
}

// apply reconciles this instance with one change of the bucket.
func (s *Service) apply(ctx context.Context, entry jetstream.KeyValueEntry) {
	id := entry.Key()
	prev, retried := s.failed[id]
	delete(s.failed, id) // a newer entry supersedes a failed start
	if entry.Operation() != jetstream.KeyValuePut {
		s.stop(id)
		// Every instance tries; the first one deletes, the rest find nothing.
		s.deleteConsumers(ctx, id)
		return
	}
	var sub Subscription
	stale, err := s.subs.decode(entry.Value(), &sub)
	if err != nil {
		s.log.Error("undecodable subscription", "subscription", id, "err", err)
		return
	}
	if stale {
		// Written in clear or with an old key: seal it with the current
		// one. The write comes back through the watch.
		if err := s.subs.reseal(ctx, id); err != nil {
			s.log.Warn("reseal subscription", "subscription", id, "err", err)
		}
	}
	s.mu.Lock()
	cur := s.workers[id]
	s.mu.Unlock()
	if sub.State != Active {
		if cur != nil {
			s.log.Info("subscription stopped", "subscription", id, "state", sub.State)
		}
		s.stop(id)
		return
	}
	if cur != nil && cur.spec == sub.spec() {
		cur.update(&sub) // failure bookkeeping only: keep delivering
		return
	}
	s.stop(id)
	w, err := s.startWorker(ctx, &sub)
	if errors.Is(err, errNoChannel) {
		s.log.Error("start subscription worker", "subscription", id, "err", err)
		return
	}
	if err != nil {
		// Not starting would leave the subscription undelivered on this
		// instance until its next change: try again later.
		attempts := 1
		if retried && prev.entry.Revision() == entry.Revision() {
			attempts = prev.attempts + 1
		}
		wait := restartWait(attempts)
		s.failed[id] = failedStart{entry: entry, attempts: attempts, next: time.Now().Add(wait)}
		s.log.Warn("start subscription worker failed; retrying", "subscription", id, "err", err, "attempt", attempts, "retry_in", wait)
		return
	}
	s.mu.Lock()
	s.workers[id] = w
	s.mu.Unlock()
	s.log.Info("subscription started", "subscription", id, "tags", sub.Tags, "type", sub.Type)
}

func (s *Service) stop(id string) {
	s.mu.Lock()
	w := s.workers[id]
	delete(s.workers, id)
	s.mu.Unlock()
	if w != nil {
		w.stop()
	}
}

func (s *Service) stopAll() {
	s.mu.Lock()
	ws := s.workers
	s.workers = map[string]*worker{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(w.stop)
	}
	wg.Wait()
}

func (s *Service) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.workers)
}

// ensureConsumers creates or updates a subscription's two durable consumers:
// one on EVENTS filtered by its tags, one on REDRIVE for replays.
func (s *Service) ensureConsumers(ctx context.Context, sub *Subscription) (live, redrive jetstream.Consumer, err error) {
	live, err = s.js.CreateOrUpdateConsumer(ctx, stream.Events, s.liveConfig(sub))
	if err != nil {
		return nil, nil, fmt.Errorf("consumer %s: %w", stream.NotifyConsumer(sub.ID), err)
	}
	redrive, err = s.js.CreateOrUpdateConsumer(ctx, stream.Redrive, jetstream.ConsumerConfig{
		Durable:       stream.RedriveConsumer(sub.ID),
		Description:   "replays and re-drives for subscription " + sub.ID,
		FilterSubject: stream.RedriveSubject(sub.ID),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxPending,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("consumer %s: %w", stream.RedriveConsumer(sub.ID), err)
	}
	return live, redrive, nil
}

// liveConfig is a subscription's consumer on EVENTS. It starts at the
// sequence recorded when the subscription was created, so creating it again
// (after an update, or on another instance) never skips or repeats events.
func (s *Service) liveConfig(sub *Subscription) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        stream.NotifyConsumer(sub.ID),
		Description:    "deliveries for subscription " + sub.ID,
		FilterSubjects: subject.Filters(sub.Tags),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.cfg.AckWait,
		MaxAckPending:  s.cfg.MaxPending,
		MaxDeliver:     -1, // the retry schedule decides when to give up
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    sub.StartSeq,
	}
}

func (s *Service) deleteConsumers(ctx context.Context, id string) {
	for _, c := range []struct{ stream, name string }{
		{stream.Events, stream.NotifyConsumer(id)},
		{stream.Redrive, stream.RedriveConsumer(id)},
	} {
		err := s.js.DeleteConsumer(ctx, c.stream, c.name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Warn("delete consumer", "consumer", c.name, "err", err)
		}
	}
	if st, err := s.js.Stream(ctx, stream.Redrive); err == nil {
		_ = st.Purge(ctx, jetstream.WithPurgeSubject(stream.RedriveSubject(id)))
	}
}
