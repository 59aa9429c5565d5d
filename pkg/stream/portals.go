package stream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// PortalsBucket is the key-value bucket of inbound portals: the systems
// (GitLab, GitHub, Standard Webhooks senders) whose webhooks ingest turns
// into events, keyed by portal name. Each value holds the portal's secret,
// sealed with the secrets key when one is set.
const PortalsBucket = "portals"

// PortalsConfig returns the configuration of the portals bucket. History
// 1: earlier values hold replaced secrets, which must not linger.
func PortalsConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      PortalsBucket,
		Description: "EventSync inbound portals: name -> type, category and (sealed) secret",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}

// EnsurePortals creates or updates the portals bucket and returns it.
func EnsurePortals(ctx context.Context, js jetstream.KeyValueManager, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, PortalsConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", PortalsBucket, err)
	}
	return kv, nil
}
