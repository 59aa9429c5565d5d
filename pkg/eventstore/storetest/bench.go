package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
)

// BatchSize is the number of events per Insert in BenchmarkInsert: the
// store service's typical batch.
const BatchSize = 10_000

// BenchmarkInsert inserts b.N batches of BatchSize events into backend,
// continuing after the highest seq it already holds (first), and reports
// events/s. It returns the next free seq.
func BenchmarkInsert(b *testing.B, backend Backend, first uint64) uint64 {
	ctx := context.Background()
	events := make([]event.Event, BatchSize)
	seq := first
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for j := range events {
			events[j] = SampleEvent(seq)
			seq++
		}
		b.StartTimer()
		if err := backend.Insert(ctx, events); err != nil {
			b.Fatalf("Insert = %v", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*BatchSize)/b.Elapsed().Seconds(), "events/s")
	return seq
}

// SampleEvent returns a realistic event (≈490 bytes as JSON) with the given
// seq: 20 tags, 5,000 sessions, one event per millisecond from 2025-01-01.
func SampleEvent(seq uint64) event.Event {
	cats := []string{"DATABASE", "NETWORK", "AUTH", "PAYMENT"}
	codes := []string{"CONNECTION_LOST", "TIMEOUT", "LOGIN_FAILED", "DECLINED", "STARTED"}
	cat, code := cats[seq%4], codes[(seq/4)%5]
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond)
	return event.Event{
		Seq:        seq,
		ID:         fmt.Sprintf("0195b2c4-7d3e-7abc-8def-%012d", seq),
		Subject:    "events." + cat + "." + code,
		Tag:        cat + "." + code,
		Category:   cat,
		Code:       code,
		Message:    "the connection to the primary database was lost after 3 retries",
		Timestamp:  ts,
		ReceivedAt: ts.Add(3 * time.Millisecond),
		SessionID:  fmt.Sprintf("sess-%06d", (seq*7919)%5000),
		Source:     "billing-api",
		Severity:   event.Severity(seq%6 + 1),
		Producer:   "producer-1",
		Data:       json.RawMessage(fmt.Sprintf(`{"host":"db-%d.internal","attempt":%d,"region":"eu-west-1","latency_ms":%d}`, seq%7, seq%3, seq%1000)),
	}
}

// BenchmarkQueries loads n events (SampleEvent seqs 1..n) into backend and
// benchmarks the queries the query service runs: a cursor page in the
// middle of the stream, one session's events by time, one tag's events in
// an hour, the newest events, Event by id and hourly Stats over a day.
func BenchmarkQueries(b *testing.B, backend Backend, n int) {
	ctx := context.Background()
	events := make([]event.Event, 0, BatchSize)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		events = append(events, SampleEvent(seq))
		if len(events) == BatchSize || seq == uint64(n) {
			if err := backend.Insert(ctx, events); err != nil {
				b.Fatalf("Insert = %v", err)
			}
			events = events[:0]
		}
	}
	mid := uint64(n / 2)
	at := SampleEvent(mid).Timestamp
	benchmarks := []struct {
		name string
		run  func() (int, error)
	}{
		{"cursor", func() (int, error) {
			got, err := backend.Events(ctx, eventstore.Filter{After: mid, Through: uint64(n), Limit: 1000})
			return len(got), err
		}},
		{"cursor-unbounded", func() (int, error) {
			got, err := backend.Events(ctx, eventstore.Filter{After: mid, Limit: 1000})
			return len(got), err
		}},
		{"newest", func() (int, error) {
			got, err := backend.Events(ctx, eventstore.Filter{Order: eventstore.BySeqDesc, Through: uint64(n), Limit: 100})
			return len(got), err
		}},
		{"session", func() (int, error) {
			got, err := backend.Events(ctx, eventstore.Filter{SessionID: SampleEvent(mid).SessionID, Order: eventstore.ByTime, Limit: 1000})
			return len(got), err
		}},
		{"category-hour", func() (int, error) {
			got, err := backend.Events(ctx, eventstore.Filter{Category: "NETWORK", Code: "TIMEOUT", From: at, To: at.Add(time.Hour), Order: eventstore.ByTime, Limit: 1000})
			return len(got), err
		}},
		{"event-by-id", func() (int, error) {
			_, err := backend.Event(ctx, SampleEvent(mid).ID)
			return 1, err
		}},
		{"stats-day-hourly", func() (int, error) {
			got, err := backend.Stats(ctx, eventstore.StatsFilter{From: at.Add(-12 * time.Hour), To: at.Add(12 * time.Hour), Bucket: eventstore.Hour, TagPattern: "*.TIMEOUT"})
			return len(got), err
		}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			rows := 0
			for range b.N {
				n, err := bm.run()
				if err != nil {
					b.Fatalf("%s = %v", bm.name, err)
				}
				rows = n
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
