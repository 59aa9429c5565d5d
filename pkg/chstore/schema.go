package chstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Schema plan (one logical schema for ClickHouse 18.16 up to 25.x).
//
// Every event is written once, to events; materialized views copy it into
// tables sorted for the other access paths, because one sort order cannot
// serve them all (measured on 18.16 with 5M rows: one session's events take
// 5 ms on a table ordered by session_id and 345 ms on one ordered by
// category; counts per category are the reverse). Projections would do this
// on modern servers, but 18.16 has none.
//
//	table              ORDER BY                     serves
//	events             seq                          the seq cursor (After/Through), Event(id) row fetch
//	events_by_session  (session_id, ts, seq)        Filter.SessionID, ordered by time
//	events_by_tag      (category, code, ts, seq)    Filter.Category/Code, Stats
//	event_ids          (id, seq)                    Event(id) → lowest seq
//
// Choices:
//   - Timestamps are Int64 microseconds since the Unix epoch (UTC): DateTime64
//     does not exist on 18.16, and integers need no time zone handling.
//   - All tables are ReplacingMergeTree with seq in the sorting key, so
//     re-inserted events collapse when parts merge; until then every query
//     deduplicates (LIMIT 1 BY seq, uniqExact(seq), min(seq)) instead of
//     relying on FINAL.
//   - PARTITION BY the UTC month of the event time on every table, so that
//     retention drops the same partitions everywhere (18.16 has no TTL) and
//     time-range queries prune months. This assumes ingest bounds how far
//     producers' timestamps may stray: an insert spanning many months writes
//     a part per month.
//   - LowCardinality(String) for the low-cardinality strings (subject, tag,
//     category, code, source, producer) on servers >= 19; String on older
//     ones, where it is experimental. Same names and Go types either way.
//   - Full rows in the session and tag tables (≈3× the storage of one copy,
//     before compression) so that each query reads one table; event_ids
//     holds only (id, seq, ts).
//   - Rows without a session id are not copied to events_by_session, rows
//     without an id not to event_ids.
//   - Creating a view does not backfill: tables and views are created before
//     the first insert, and a later schema change must backfill with
//     INSERT … SELECT.
//
// The delivery audit (deliveries.go) follows the same rules: every attempt is
// written once, to deliveries, keyed by its DELIVERIES stream seq; a view
// copies it to a table sorted for the other read path. Both are partitioned
// by the UTC month of the attempt time.
//
//	table                 ORDER BY                 serves
//	deliveries            (subscription_id, seq)   a subscription's attempts by cursor
//	deliveries_by_event   (event_id, seq)          an event's attempts
//
// Response and error are plain Strings (at most delivery.MaxResponse bytes
// of a response); tag and outcome are LowCardinality on servers >= 19.

// Table names.
const (
	tableEvents    = "events"
	tableBySession = "events_by_session"
	tableByTag     = "events_by_tag"
	tableIDs       = "event_ids"

	tableDeliveries        = "deliveries"
	tableDeliveriesByEvent = "deliveries_by_event"
)

// columns is the column list of the full-row tables, in Scan order.
const columns = "seq, id, subject, tag, category, code, message, ts, received_at, session_id, source, severity, producer, data"

// partitionBy is the partition expression of every table: the UTC month of
// ts, in microseconds (the event time; the attempt time in the delivery
// tables).
const partitionBy = "toYYYYMM(toDateTime(intDiv(ts, 1000000), 'UTC'))"

// serverVersion is a ClickHouse server's major.minor version.
type serverVersion struct {
	major, minor int
}

// parseVersion parses the result of SELECT version(), e.g. "18.16.1" or
// "24.8.4.13".
func parseVersion(s string) (serverVersion, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return serverVersion{}, fmt.Errorf("unrecognized clickhouse version %q", s)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return serverVersion{}, fmt.Errorf("unrecognized clickhouse version %q", s)
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		return serverVersion{}, fmt.Errorf("unrecognized clickhouse version %q", s)
	}
	return serverVersion{major, minor}, nil
}

// lowCardinality reports whether the server supports LowCardinality columns
// without experimental settings (19.x and later).
func (v serverVersion) lowCardinality() bool { return v.major >= 19 }

// String returns major.minor.
func (v serverVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// schema returns the idempotent statements that create the database's
// tables and views.
func schema(db string, v serverVersion) []string {
	lc := "String"
	if v.lowCardinality() {
		lc = "LowCardinality(String)"
	}
	cols := `(
	seq         UInt64,
	id          String,
	subject     ` + lc + `,
	tag         ` + lc + `,
	category    ` + lc + `,
	code        ` + lc + `,
	message     String,
	ts          Int64,
	received_at Int64,
	session_id  String,
	source      ` + lc + `,
	severity    UInt8,
	producer    ` + lc + `,
	data        String
)`
	table := func(name, orderBy string) string {
		return "CREATE TABLE IF NOT EXISTS " + db + "." + name + " " + cols +
			"\nENGINE = ReplacingMergeTree()\nPARTITION BY " + partitionBy + "\nORDER BY " + orderBy
	}
	view := func(target, selectList, where string) string {
		return "CREATE MATERIALIZED VIEW IF NOT EXISTS " + db + "." + target + "_mv TO " + db + "." + target +
			" AS SELECT " + selectList + " FROM " + db + "." + tableEvents + " WHERE " + where
	}
	return []string{
		table(tableEvents, "seq"),
		table(tableBySession, "(session_id, ts, seq)"),
		table(tableByTag, "(category, code, ts, seq)"),
		"CREATE TABLE IF NOT EXISTS " + db + "." + tableIDs + " (id String, seq UInt64, ts Int64)" +
			"\nENGINE = ReplacingMergeTree()\nPARTITION BY " + partitionBy + "\nORDER BY (id, seq)",
		view(tableBySession, columns, "session_id != ''"),
		view(tableByTag, columns, "1"),
		view(tableIDs, "id, seq, ts", "id != ''"),
		deliveriesTable(db, tableDeliveries, lc, "(subscription_id, seq)"),
		deliveriesTable(db, tableDeliveriesByEvent, lc, "(event_id, seq)"),
		"CREATE MATERIALIZED VIEW IF NOT EXISTS " + db + "." + tableDeliveriesByEvent + "_mv TO " + db + "." + tableDeliveriesByEvent +
			" AS SELECT " + attemptColumns + " FROM " + db + "." + tableDeliveries,
	}
}

// attemptColumns is the column list of the delivery tables, in scan order.
const attemptColumns = "seq, subscription_id, delivery_id, event_id, event_seq, tag, attempt, url, outcome, status_code, latency_ms, error, response, ts"

// deliveriesTable returns the statement that creates a delivery audit table;
// lc is the type of low-cardinality strings.
func deliveriesTable(db, name, lc, orderBy string) string {
	return "CREATE TABLE IF NOT EXISTS " + db + "." + name + ` (
	seq             UInt64,
	subscription_id String,
	delivery_id     String,
	event_id        String,
	event_seq       UInt64,
	tag             ` + lc + `,
	attempt         Int32,
	url             String,
	outcome         ` + lc + `,
	status_code     Int32,
	latency_ms      Float64,
	error           String,
	response        String,
	ts              Int64
)
ENGINE = ReplacingMergeTree()
PARTITION BY ` + partitionBy + `
ORDER BY ` + orderBy
}

// quoteIdent quotes a database name for ClickHouse SQL. Open accepts only
// names of letters, digits and '_', so backquotes are enough.
func quoteIdent(s string) string { return "`" + s + "`" }

// validDatabase reports whether name is a database name Open accepts.
func validDatabase(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
