package storetest

import (
	"cmp"
	"regexp"
	"slices"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/subject"
)

// reference answers f over events (distinct seqs) the way the contract
// says a store must: the expected result of Events.
func reference(events []event.Event, f eventstore.Filter) []event.Event {
	var re *regexp.Regexp
	if f.TagPattern != "" {
		var err error
		if re, err = compilePattern(f.TagPattern); err != nil {
			return nil
		}
	}
	var out []event.Event
	for _, e := range events {
		switch {
		case e.Seq <= f.After,
			f.Through != 0 && e.Seq > f.Through,
			f.Category != "" && e.Category != f.Category,
			f.Code != "" && e.Code != f.Code,
			re != nil && !re.MatchString(e.Tag),
			!eventstore.Allows(f.Allowed, e.Tag),
			f.SessionID != "" && e.SessionID != f.SessionID,
			f.Source != "" && e.Source != f.Source,
			e.Severity < f.MinSeverity,
			!f.From.IsZero() && e.Timestamp.Before(f.From),
			!f.To.IsZero() && !e.Timestamp.Before(f.To):
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b event.Event) int {
		switch f.Order {
		case eventstore.BySeqDesc:
			return cmp.Compare(b.Seq, a.Seq)
		case eventstore.ByTime:
			if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// referenceStats is the expected result of Stats over events (distinct
// seqs).
func referenceStats(events []event.Event, f eventstore.StatsFilter) []eventstore.Count {
	var re *regexp.Regexp
	if f.TagPattern != "" {
		var err error
		if re, err = compilePattern(f.TagPattern); err != nil {
			return nil
		}
	}
	width := map[eventstore.Bucket]time.Duration{
		eventstore.Minute: time.Minute,
		eventstore.Hour:   time.Hour,
		eventstore.Day:    24 * time.Hour,
	}[f.Bucket]
	type key struct {
		bucket time.Time
		tag    string
	}
	counts := map[key]uint64{}
	for _, e := range events {
		if e.Timestamp.Before(f.From) || !e.Timestamp.Before(f.To) || (re != nil && !re.MatchString(e.Tag)) ||
			!eventstore.Allows(f.Allowed, e.Tag) {
			continue
		}
		// Truncate counts from the zero time, which is midnight UTC, so it
		// yields UTC minute, hour and day starts.
		counts[key{e.Timestamp.UTC().Truncate(width), e.Tag}]++
	}
	out := make([]eventstore.Count, 0, len(counts))
	for k, n := range counts {
		out = append(out, eventstore.Count{Bucket: k.bucket, Tag: k.tag, Count: n})
	}
	slices.SortFunc(out, func(a, b eventstore.Count) int {
		if c := a.Bucket.Compare(b.Bucket); c != 0 {
			return c
		}
		return cmp.Compare(a.Tag, b.Tag)
	})
	return out
}

// compilePattern compiles a tag pattern the way stores match it.
func compilePattern(pattern string) (*regexp.Regexp, error) {
	expr, err := subject.Regexp(pattern)
	if err != nil {
		return nil, err
	}
	return regexp.Compile(expr)
}
