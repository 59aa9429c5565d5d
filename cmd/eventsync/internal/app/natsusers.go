package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
)

// natsUser is the NATS user of one enabled producer, as GET
// /v1/producers/nats-config renders it.
//
// natsUser and natsUsers stand in for ingest.NATSUser and ingest.NATSUsers
// until package ingest exports them: the registry's stored form and the
// NATS permissions of a producer are ingest's to decide, in one place for
// the admin API's nats-config and the all-in-one.
type natsUser struct {
	User           string   // the producer id
	PasswordHash   string   // bcrypt of its Basic password
	PublishAllow   []string // eventsync.ingest; with direct publishing also events.<pattern> per tag pattern
	PublishDeny    []string // with direct publishing: the categories another producer owns
	SubscribeAllow []string // its inboxes, _INBOX.<id>.>
}

// storedProducer is what natsUsers reads of a producer in the bucket.
type storedProducer struct {
	ID          string   `json:"id"`
	Enabled     bool     `json:"enabled"`
	Tags        []string `json:"tags"`
	Credentials struct {
		PasswordHash string `json:"password_hash"`
	} `json:"credentials"`
}

// producerIDPrefix starts every producer id, and so every key of the
// producers bucket that holds a producer.
const producerIDPrefix = "prd_"

// natsUsers returns the NATS users of the enabled producers that have a
// password, sorted by id, from the producers and owners buckets' contents
// (key → value; keys of the producers bucket that are not producer ids,
// such as name reservations, are skipped). With direct, a producer may
// also publish to events.<pattern> for each of its tag patterns, except
// in categories another producer owns. A producer that cannot be read
// gets no user and is named in the error; the others' users are returned.
func natsUsers(producers, owners map[string][]byte, direct bool) ([]natsUser, error) {
	ownerOf := make(map[string]string, len(owners))
	for cat, id := range owners {
		ownerOf[cat] = string(id)
	}
	var users []natsUser
	var errs []error
	for key, v := range producers {
		if !strings.HasPrefix(key, producerIDPrefix) {
			continue
		}
		var p storedProducer
		if err := json.Unmarshal(v, &p); err != nil {
			errs = append(errs, fmt.Errorf("producer %s: %w", key, err))
			continue
		}
		if p.ID != key {
			errs = append(errs, fmt.Errorf("producer %s: stored with id %q", key, p.ID))
			continue
		}
		if !p.Enabled || p.Credentials.PasswordHash == "" {
			continue
		}
		u := natsUser{
			User:           p.ID,
			PasswordHash:   p.Credentials.PasswordHash,
			PublishAllow:   []string{stream.IngestSubject},
			SubscribeAllow: []string{"_INBOX." + p.ID + ".>"},
		}
		if direct {
			for _, t := range p.Tags {
				u.PublishAllow = append(u.PublishAllow, subject.Filter(t))
			}
			u.PublishDeny = deniedCategories(p.ID, p.Tags, ownerOf)
		}
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b natsUser) int { return strings.Compare(a.User, b.User) })
	return users, errors.Join(errs...)
}

// deniedCategories returns the subjects of the categories another
// producer owns that the tag patterns would let producer id publish to.
func deniedCategories(id string, tags []string, owners map[string]string) []string {
	var deny []string
	for cat, owner := range owners {
		if owner == id {
			continue
		}
		for _, t := range tags {
			if subject.Overlap(t, cat+".*") {
				deny = append(deny, subject.Filter(cat+".*"))
				break
			}
		}
	}
	slices.Sort(deny)
	return deny
}
