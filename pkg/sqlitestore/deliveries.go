package sqlitestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/delivery"
)

const attemptColumns = `seq, subscription_id, delivery_id, event_id, event_seq, tag, attempt, url, outcome, status_code, latency_ms, error, response, ts`

// InsertAttempts stores delivery attempts in one transaction. Attempts whose
// seq is already stored are ignored. Times are stored in microseconds.
func (s *Store) InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error {
	if len(attempts) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("insert attempts: begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO deliveries (`+attemptColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return wrap("insert attempts: prepare", err)
	}
	defer stmt.Close()
	for i := range attempts {
		a := &attempts[i]
		if a.Seq > 1<<63-1 || a.EventSeq > 1<<63-1 {
			return fmt.Errorf("insert attempts: seq %d or event seq %d does not fit in a signed 64-bit integer", a.Seq, a.EventSeq)
		}
		if _, err := stmt.ExecContext(ctx,
			int64(a.Seq), a.SubscriptionID, a.DeliveryID, a.EventID, int64(a.EventSeq), a.Tag,
			int64(a.Attempt), a.URL, string(a.Outcome), int64(a.StatusCode), a.LatencyMS,
			a.Error, a.Response, a.Time.UnixMicro(),
		); err != nil {
			return wrap(fmt.Sprintf("insert attempt seq %d", a.Seq), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("insert attempts: commit", err)
	}
	return nil
}

// Attempts returns the delivery attempts selected by f in ascending seq.
func (s *Store) Attempts(ctx context.Context, f delivery.Filter) ([]delivery.Attempt, error) {
	if f.Limit <= 0 {
		return nil, fmt.Errorf("attempts: limit must be > 0, got %d", f.Limit)
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.SubscriptionID != "" {
		add("subscription_id = ?", f.SubscriptionID)
	}
	if f.EventID != "" {
		add("event_id = ?", f.EventID)
	}
	switch f.Status {
	case delivery.Any:
	case delivery.OK:
		add("outcome = ?", string(delivery.Delivered))
	case delivery.Failed:
		add("outcome != ?", string(delivery.Delivered))
	default:
		return nil, fmt.Errorf("attempts: unknown status %d", f.Status)
	}
	if f.After > 0 {
		add("seq > ?", clampSeq(f.After))
	}
	if f.Through > 0 {
		add("seq <= ?", clampSeq(f.Through))
	}
	q := `SELECT ` + attemptColumns + ` FROM deliveries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, f.Limit)

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("attempts", err)
	}
	defer rows.Close()
	out := make([]delivery.Attempt, 0, min(f.Limit, 1024))
	for rows.Next() {
		var (
			a                                  delivery.Attempt
			seq, eventSeq, attempt, status, ts int64
			outcome                            string
		)
		if err := rows.Scan(&seq, &a.SubscriptionID, &a.DeliveryID, &a.EventID, &eventSeq, &a.Tag,
			&attempt, &a.URL, &outcome, &status, &a.LatencyMS, &a.Error, &a.Response, &ts); err != nil {
			return nil, wrap("attempts", err)
		}
		a.Seq, a.EventSeq = uint64(seq), uint64(eventSeq)
		a.Attempt, a.StatusCode = int(attempt), int(status)
		a.Outcome = delivery.Outcome(outcome)
		a.Time = time.UnixMicro(ts).UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("attempts", err)
	}
	return out, nil
}
