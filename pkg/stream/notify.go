package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the notifier's and the delivery audit's streams, buckets and
// consumers.
const (
	// Deliveries is the stream of delivery attempts, subjects
	// deliveries.<subscription id>.
	Deliveries = "DELIVERIES"
	// StoreDeliveriesConsumer is the durable consumer that writes delivery
	// attempts to the store.
	StoreDeliveriesConsumer = "store-deliveries"
	// Redrive is the work-queue stream of events queued for one subscription
	// again (replays and dead-letter re-drives), subjects
	// redrive.<subscription id>.
	Redrive = "REDRIVE"
	// SubscriptionsBucket is the key-value bucket of subscriptions, keyed by
	// subscription id.
	SubscriptionsBucket = "subscriptions"
)

// Headers set on re-driven events and on notifier dead letters.
const (
	// HeaderStatus is the last status code of a dead-lettered delivery.
	HeaderStatus = "EventSync-Status"
	// HeaderSubscription names the subscription of a dead letter.
	HeaderSubscription = "EventSync-Subscription"
)

// NotifyConsumer is the name of a subscription's durable consumer on EVENTS.
func NotifyConsumer(subscriptionID string) string { return "notify-" + subscriptionID }

// RedriveConsumer is the name of a subscription's durable consumer on REDRIVE.
func RedriveConsumer(subscriptionID string) string { return "redrive-" + subscriptionID }

// DeliveriesConfig returns the configuration of the DELIVERIES stream. The
// store keeps the audit; the stream only needs to hold it until stored.
func DeliveriesConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Deliveries,
		Description: "EventSync delivery attempts, one subject per subscription",
		Subjects:    []string{deliveriesPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      maxAge(c),
		Duplicates:  DefaultDuplicates,
		Replicas:    replicas(c),
	}
}

// RedriveConfig returns the configuration of the REDRIVE stream: a work
// queue, so an event leaves it once its subscription acknowledged it.
func RedriveConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Redrive,
		Description: "EventSync events queued again for one subscription (replays, dead-letter re-drives)",
		Subjects:    []string{redrivePrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      maxAge(c),
		Replicas:    replicas(c),
	}
}

// SubscriptionsConfig returns the configuration of the subscriptions bucket.
// History 5 keeps a few earlier versions for inspection with the nats CLI.
func SubscriptionsConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      SubscriptionsBucket,
		Description: "EventSync subscriptions",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}

// StoreDeliveriesConsumerConfig returns the durable consumer that writes
// delivery attempts to the store.
func StoreDeliveriesConsumerConfig(ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       StoreDeliveriesConsumer,
		Description:   "writes delivery attempts to the store",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// EnsureNotify creates or updates what the notifier needs besides the
// streams Ensure creates: the REDRIVE stream and the subscriptions bucket.
func EnsureNotify(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.KeyValue, error) {
	if _, err := js.CreateOrUpdateStream(ctx, RedriveConfig(c)); err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", Redrive, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, SubscriptionsConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", SubscriptionsBucket, err)
	}
	return kv, nil
}

func maxAge(c Config) time.Duration {
	if c.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return c.MaxAge
}

func replicas(c Config) int {
	if c.Replicas <= 0 {
		return 1
	}
	return c.Replicas
}
