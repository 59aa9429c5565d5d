package stream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// manager creates streams and key-value buckets.
type manager interface {
	jetstream.StreamManager
	jetstream.KeyValueManager
}

// EnsureAll creates or updates every stream and key-value bucket of
// EventSync from one Config, so that replicas and limits agree whichever
// service starts first. It is idempotent; every process calls it at
// start-up.
func EnsureAll(ctx context.Context, js manager, c Config) error {
	if err := Ensure(ctx, js, c); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, RedriveConfig(c)); err != nil {
		return fmt.Errorf("ensure stream %s: %w", Redrive, err)
	}
	for _, kv := range Buckets(c) {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kv.Bucket, err)
		}
	}
	return nil
}

// Buckets returns the configuration of every key-value bucket: the
// control-plane state of EventSync.
func Buckets(c Config) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		SubscriptionsConfig(c),
		ConsumersConfig(c),
		ProducersConfig(c),
		OwnersConfig(c),
		SchemasConfig(c),
		JTIConfig(c),
		TokensConfig(c),
		PortalsConfig(c),
	}
}
