package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TokensBucket is the key-value bucket of short-lived access tokens, keyed
// by the hex SHA-256 of the token (the token itself is never stored).
const TokensBucket = "tokens"

// MaxTokenLifetime is the longest an access token lives; the bucket drops
// every entry after it.
const MaxTokenLifetime = time.Hour

// TokensConfig returns the configuration of the tokens bucket.
func TokensConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      TokensBucket,
		Description: "EventSync short-lived access tokens (hashed), for browsers' live tail",
		History:     1,
		TTL:         MaxTokenLifetime,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}

// EnsureTokens creates or updates the tokens bucket and returns it.
func EnsureTokens(ctx context.Context, js jetstream.KeyValueManager, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, TokensConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", TokensBucket, err)
	}
	return kv, nil
}
