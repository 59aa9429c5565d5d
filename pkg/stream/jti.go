package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JTIBucket is the key-value bucket of the JWT ids ingest has accepted,
// keyed by <producer id>.<hex SHA-256 of the jti>. Each key carries its own
// TTL (the token's expiry plus the clock skew), so the bucket holds only
// ids whose tokens could still be replayed.
const JTIBucket = "jti"

// JTIMarkerTTL is how long the bucket keeps the marker the server leaves
// when a key expires.
const JTIMarkerTTL = time.Minute

// JTIConfig returns the configuration of the jti bucket. LimitMarkerTTL
// turns on per-key TTLs, which need nats-server 2.11 or later.
func JTIConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         JTIBucket,
		Description:    "EventSync JWT ids already accepted, each kept until its token expires",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       replicas(c),
		LimitMarkerTTL: JTIMarkerTTL,
	}
}

// EnsureJTI creates or updates the jti bucket and returns it.
func EnsureJTI(ctx context.Context, js jetstream.KeyValueManager, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, JTIConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", JTIBucket, err)
	}
	return kv, nil
}
