package stream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// RateLimitBucket is the key-value bucket of the producers' token buckets,
// keyed by producer id: every ingest instance settles the events it
// admitted there, so that a producer's rate limit holds across instances
// (see services/ingest/internal/ratelimit).
const RateLimitBucket = "ratelimit"

// RateLimitConfig returns the configuration of the ratelimit bucket.
// History 1: only the current state of a bucket matters. File storage like
// every other bucket, so that a restarted server keeps the bucket (a
// memory bucket of a single server would be gone, and every instance would
// fall back to limits of its own).
func RateLimitConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      RateLimitBucket,
		Description: "EventSync producers' token buckets, shared by the ingest instances",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}

// EnsureRateLimit creates or updates the ratelimit bucket and returns it.
func EnsureRateLimit(ctx context.Context, js jetstream.KeyValueManager, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, RateLimitConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", RateLimitBucket, err)
	}
	return kv, nil
}
