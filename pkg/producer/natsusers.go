package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// NATSUser is the NATS user of one enabled producer: what the admin API's
// nats-config renders for a separate nats-server, and what the all-in-one
// gives its embedded one. The user is the producer id and the password its
// Basic password (the server checks the bcrypt hash itself), so the
// credentials of HTTP also open NATS.
type NATSUser struct {
	User           string   // the producer id
	PasswordHash   string   // bcrypt of its Basic password
	PublishAllow   []string // eventsync.ingest; with direct publishing also events.<pattern> per tag pattern
	PublishDeny    []string // with direct publishing: the categories another producer owns, with their sub-categories
	SubscribeAllow []string // its own inboxes, _INBOX.<id>.>
}

// InboxPrefix is the inbox prefix a producer's NATS connection must use
// (nats.CustomInboxPrefix): each producer may only subscribe under its
// own, so it cannot read the replies (publish acks, ingest answers) meant
// for another. It is "_INBOX." and the producer id, with the dots of an
// imported id written as '=' (no id holds one): the prefix stays a single
// subject token, so that producer "a" may not subscribe to the inbox of
// producer "a.b".
func InboxPrefix(producerID string) string {
	return "_INBOX." + strings.ReplaceAll(producerID, ".", "=")
}

// NATSUsers returns the users of the enabled producers that have a
// password, sorted by id. Every producer may request eventsync.ingest,
// where its Authorization header is checked like over HTTP, and subscribe
// to its own inboxes. With direct, it may also publish straight to
// events.<pattern> for each of its tag patterns, except in categories
// another producer owns (ownership is otherwise checked by ingest); such
// events skip ingest's schemas and rate limits.
func NATSUsers(ps []*Producer, owners map[string]string, direct bool) []NATSUser {
	var users []NATSUser
	for _, p := range ps {
		if !p.Enabled || p.Credentials.PasswordHash == "" || len(p.Tags) == 0 { // a client that does not write has no NATS user
			continue
		}
		u := NATSUser{
			User:           p.ID,
			PasswordHash:   p.Credentials.PasswordHash,
			PublishAllow:   []string{stream.IngestSubject},
			SubscribeAllow: []string{InboxPrefix(p.ID) + ".>"},
		}
		if direct {
			for _, t := range p.Tags {
				u.PublishAllow = append(u.PublishAllow, subject.Filter(t))
			}
			u.PublishDeny = deniedCategories(p, owners)
		}
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b NATSUser) int { return strings.Compare(a.User, b.User) })
	return users
}

// DecodeNATSUsers is NATSUsers over the raw contents of the producers and
// owners buckets (key → value, as a watch delivers them): keys of the
// producers bucket that are not producer ids (name reservations) are
// skipped, and a value that does not decode gets no user and is named in
// the error while the others' users are returned.
func DecodeNATSUsers(producers, owners map[string][]byte, direct bool) ([]NATSUser, error) {
	ownerOf := make(map[string]string, len(owners))
	for cat, id := range owners {
		ownerOf[cat] = string(id)
	}
	var (
		ps   []*Producer
		errs []error
	)
	for key, v := range producers {
		id, ok := idOfKey(key)
		if !ok {
			continue
		}
		var p Producer
		if err := json.Unmarshal(v, &p); err != nil {
			errs = append(errs, fmt.Errorf("producer %s: %w", id, err))
			continue
		}
		if p.ID != id {
			errs = append(errs, fmt.Errorf("producer %s: stored with id %q", id, p.ID))
			continue
		}
		ps = append(ps, &p)
	}
	return NATSUsers(ps, ownerOf, direct), errors.Join(errs...)
}

// deniedCategories returns the subjects of the categories another
// producer owns that p's patterns would let it publish to: each category's
// codes and its sub-categories, events.<C>.>.
func deniedCategories(p *Producer, owners map[string]string) []string {
	var deny []string
	for cat, owner := range owners {
		if owner == p.ID {
			continue
		}
		for _, t := range p.Tags {
			if subject.Overlap(t, cat+".>") {
				deny = append(deny, subject.Filter(cat+".>"))
				break
			}
		}
	}
	slices.Sort(deny)
	return deny
}
