package stream

import "github.com/nats-io/nats.go/jetstream"

// SchemasBucket is the key-value bucket of JSON Schemas for events' data:
// "category.<CATEGORY>" holds a category's schema and
// "tag.<CATEGORY>.<CODE>" the schema of one category and code (see package
// schema).
const SchemasBucket = "schemas"

// SchemasConfig returns the configuration of the schemas bucket. Each value
// carries its own version number; history 10 keeps the earlier versions
// for inspection with the nats CLI, and lets a schema written again after a
// delete continue its version numbers.
func SchemasConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      SchemasBucket,
		Description: "EventSync JSON Schemas for event data, per category and per category+code",
		History:     10,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}
