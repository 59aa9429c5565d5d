package query

import (
	"context"
	"fmt"
	"strings"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Reads are limited to the caller's read patterns inside the store query
// (eventstore.Filter.Allowed): a page, a cursor and a count never see
// another tag's events, and nothing is filtered after the store's LIMIT.
// A request whose own tag filter selects no tag the caller may read is
// refused (403) rather than answered with an empty page, so that a
// mistyped or unauthorized filter is told apart from no events.

// limitRead sets f.Allowed to the caller's read patterns and refuses a
// filter with no tag in common with them.
func limitRead(ctx context.Context, f *eventstore.Filter) error {
	f.Allowed = access.From(ctx).Restrict(access.Read)
	return checkFilter(f.Allowed, f.Category, f.Code, f.TagPattern)
}

// limitStats is limitRead for stats.
func limitStats(ctx context.Context, f *eventstore.StatsFilter) error {
	f.Allowed = access.From(ctx).Restrict(access.Read)
	return checkFilter(f.Allowed, "", "", f.TagPattern)
}

// checkFilter refuses a filter (an exact category, an exact code, a tag
// pattern; empty ones do not filter) that selects some tags but none
// within allowed (nil: no limit). A filter that selects no tag at all
// (category A with tag B.*) is not refused: it reads nothing anyway.
func checkFilter(allowed []string, category, code, tag string) error {
	if allowed == nil || category == "" && code == "" && tag == "" {
		return nil
	}
	// The filter as one pattern, plus a code to match on the last token
	// when there is no category (no pattern says "any tag ending in X").
	want, lastCode := access.AnyTag, code
	if category != "" {
		want, lastCode = category+".*", ""
		if code != "" {
			want = category + "." + code
		}
	}
	if tag != "" {
		ps := stream.LimitPatterns([]string{want}, []string{tag})
		if len(ps) == 0 {
			return nil
		}
		want = ps[0]
	}
	if lastCode != "" && !endsIn(want, lastCode) {
		return nil
	}
	for _, p := range stream.LimitPatterns([]string{want}, allowed) {
		if lastCode == "" || endsIn(p, lastCode) {
			return nil
		}
	}
	return access.Forbidden(fmt.Sprintf("the filter %s selects no tag within the client's read patterns", describe(category, code, tag)))
}

// endsIn reports whether pattern selects a tag (two tokens or more) whose
// code is code.
func endsIn(pattern, code string) bool {
	toks := strings.Split(pattern, ".")
	switch toks[len(toks)-1] {
	case ">":
		return true
	case "*", code:
		return len(toks) >= 2
	}
	return false
}

// describe names a filter by its query parameters.
func describe(category, code, tag string) string {
	var parts []string
	for _, p := range []struct{ name, value string }{{"category", category}, {"code", code}, {"tag", tag}} {
		if p.value != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", p.name, p.value))
		}
	}
	return strings.Join(parts, " ")
}
