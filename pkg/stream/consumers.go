package stream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumersBucket is the key-value bucket of the HTTP consumers of the
// query API, keyed by consumer name. A value holds the consumer's tag
// patterns, how it started, its acknowledged and last delivered stream
// sequences and its creation time; every read that delivers further and
// every acknowledgement rewrites it with a compare-and-swap on the revision.
const ConsumersBucket = "consumers"

// ConsumersConfig returns the configuration of the consumers bucket.
// History 1: a position is rewritten on every acknowledgement, and only
// the latest one means anything.
func ConsumersConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ConsumersBucket,
		Description: "EventSync HTTP consumers: tag patterns and acknowledged positions on EVENTS",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}

// EnsureConsumers creates or updates the consumers bucket and returns it.
func EnsureConsumers(ctx context.Context, js jetstream.KeyValueManager, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, ConsumersConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", ConsumersBucket, err)
	}
	return kv, nil
}
