package ingest

import "github.com/eventsync/eventsync/pkg/producer"

// NATSUser is the NATS user of one enabled producer (see NATSUsers).
type NATSUser = producer.NATSUser

// NATSUsers returns the NATS users of the enabled producers that have a
// password, sorted by id, from the raw contents of the producers and
// owners buckets (key → value, as a KV watch delivers them), exactly as
// the admin API's nats-config renders them for a separate nats-server:
// each may request eventsync.ingest and subscribe to its own inboxes, and
// with direct also publish to events.<pattern> for its tag patterns except
// in categories (and their sub-categories) another producer owns. A value
// that does not decode gets no user and is named in the error; the other
// users are still returned.
func NATSUsers(producers, owners map[string][]byte, direct bool) ([]NATSUser, error) {
	return producer.DecodeNATSUsers(producers, owners, direct)
}
