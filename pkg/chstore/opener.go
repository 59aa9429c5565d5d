package chstore

import (
	"context"
	"net/url"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/eventstore"
)

// DefaultDSN is where the services look for ClickHouse unless told
// otherwise.
const DefaultDSN = "clickhouse://127.0.0.1:9000/eventsync"

// Opener opens ClickHouse as a process's event store (see package
// service): the setting --clickhouse-url, and Open.
type Opener struct {
	DSN string
	def string
}

// NewOpener returns an Opener whose --clickhouse-url defaults to def.
func NewOpener(def string) *Opener { return &Opener{def: def} }

// Flags defines --clickhouse-url on fs.
func (o *Opener) Flags(fs *conf.Set) {
	fs.String(&o.DSN, "clickhouse-url", "CLICKHOUSE_URL", o.def, "ClickHouse DSN (native protocol); the database is created if missing")
}

// Open connects and creates the tables.
func (o *Opener) Open(ctx context.Context) (eventstore.Store, error) { return Open(ctx, o.DSN) }

// String names the store for logs, without a password.
func (o *Opener) String() string { return "clickhouse " + Redact(o.DSN) }

// Redact returns dsn with its password replaced by "xxxxx".
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable dsn)"
	}
	return u.Redacted()
}
