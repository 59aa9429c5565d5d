package stream

import "github.com/eventsync/eventsync/pkg/conf"

// Flags defines the settings of every stream and bucket on fs. Every
// process has them: whichever starts first creates the streams and
// buckets, and they must agree (the deployment tests check that they do).
func (c *Config) Flags(fs *conf.Set) {
	fs.Duration(&c.MaxAge, "max-age", "STREAM_MAX_AGE", DefaultMaxAge, "how long JetStream keeps events")
	fs.Int64(&c.MaxBytes, "max-bytes", "STREAM_MAX_BYTES", -1, "size limit of the EVENTS stream in bytes (-1: unlimited); when full, ingest answers 503")
	fs.Duration(&c.Duplicates, "dedupe-window", "STREAM_DEDUPE_WINDOW", DefaultDuplicates, "window in which a repeated event id is answered as a duplicate")
	fs.Int(&c.Replicas, "replicas", "STREAM_REPLICAS", 1, "replicas of every stream and bucket (3 in a NATS cluster)")
}
