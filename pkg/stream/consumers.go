package stream

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumersBucket is the key-value bucket of the HTTP consumers of the
// query API, keyed by consumer name. A value holds the consumer's owner
// (the client that created it), tag patterns, how it started, its
// acknowledged and last delivered stream sequences and its creation time;
// every read that delivers further and every acknowledgement rewrites it
// with a compare-and-swap on the revision.
const ConsumersBucket = "consumers"

// ConsumersConfig returns the configuration of the consumers bucket.
// History 1: a position is rewritten on every acknowledgement, and only
// the latest one means anything.
func ConsumersConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ConsumersBucket,
		Description: "EventSync HTTP consumers: tag patterns and acknowledged positions on EVENTS",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas(c),
	}
}

// EnsureConsumers creates or updates the consumers bucket and returns it.
func EnsureConsumers(ctx context.Context, js jetstream.KeyValueManager, c Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, ConsumersConfig(c))
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", ConsumersBucket, err)
	}
	return kv, nil
}

// LimitPatterns returns tag patterns that select exactly the tags selected
// both by a pattern of requested and by one of allowed: a consumer reading
// requested on behalf of a client that may read allowed filters on them.
// allowed nil means no limit: requested comes back as it is. Patterns in
// common with nothing give an empty list.
//
// NATS patterns are closed under intersection (see intersect), so the
// result is exact: no tag outside allowed, none of requested and allowed
// left out. It may hold duplicates, patterns covered by others and,
// when allowed does, patterns that overlap; subject.Normalize sorts that
// out or says so.
func LimitPatterns(requested, allowed []string) []string {
	if allowed == nil {
		return requested
	}
	out := []string{}
	for _, r := range requested {
		for _, a := range allowed {
			if p, ok := intersect(r, a); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// intersect returns the pattern selecting the tags both a and b select,
// and false when they have none in common (exactly when subject.Overlap is
// false). Token by token: equal literals stay, '*' takes the other side's
// token, and a '>' takes the rest of the other side, which must have at
// least one token left ('>' matches one or more).
func intersect(a, b string) (string, bool) {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	out := make([]string, 0, max(len(at), len(bt)))
	for i := 0; ; i++ {
		switch {
		case i == len(at) && i == len(bt):
			return strings.Join(out, "."), true
		case i == len(at) || i == len(bt):
			return "", false
		case at[i] == ">":
			return strings.Join(append(out, bt[i:]...), "."), true
		case bt[i] == ">":
			return strings.Join(append(out, at[i:]...), "."), true
		case at[i] == "*":
			out = append(out, bt[i])
		case bt[i] == "*" || bt[i] == at[i]:
			out = append(out, at[i])
		default:
			return "", false
		}
	}
}
