package stream

import "github.com/nats-io/nats.go/jetstream"

// Names of the producer registry's buckets.
const (
	// ProducersBucket is the key-value bucket of registered producers,
	// keyed by producer id (it also holds the name reservations that keep
	// names unique; see package producer).
	ProducersBucket = "producers"
	// OwnersBucket is the key-value bucket of category owners: key =
	// category, value = the owning producer's id.
	OwnersBucket = "owners"
)

// ProducersConfig returns the configuration of the producers bucket.
// History 1: earlier values hold rotated-out secrets, which must not linger.
func ProducersConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ProducersBucket,
		Description: "EventSync producers and their hashed credentials",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}

// OwnersConfig returns the configuration of the owners bucket. A category
// is claimed with a KV Create, which exactly one writer wins.
func OwnersConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      OwnersBucket,
		Description: "EventSync category owners: category -> producer id",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}
