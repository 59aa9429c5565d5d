package producers

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/services/ingest/internal/producer"
)

// inboxPrefix is the inbox prefix a producer's NATS connection must use
// (nats.CustomInboxPrefix): each producer may only subscribe under its
// own, so it cannot read the replies (publish acks, ingest answers) meant
// for another.
func inboxPrefix(producerID string) string { return "_INBOX." + producerID }

// natsConfig renders a NATS server authorization block with one user per
// enabled producer: the user is the producer id, the password its bcrypt
// hash (the NATS server checks bcrypt hashes itself), so the Basic
// credentials of HTTP also open NATS.
//
// Every producer may request eventsync.ingest, where its Authorization
// header is checked like over HTTP, and subscribe to its own inboxes for
// the answers. With direct, it may also publish straight to
// events.<pattern> for each of its tag patterns; such events skip ingest's
// schemas and rate limits, so this is for trusted producers. Categories
// owned by another producer are denied there, because ownership is
// otherwise checked by ingest.
func natsConfig(ps []*producer.Producer, owners map[string]string, direct bool) []byte {
	var b bytes.Buffer
	b.WriteString(`# NATS server authorization for EventSync producers: one user per enabled
# producer (user = producer id, password = its Basic password, stored here as
# a bcrypt hash). Producers connect with nats.UserInfo(id, password) and the
# inbox prefix "_INBOX.<id>" (nats.CustomInboxPrefix).
#
# EventSync's own services need a user with full permissions as well; add
# one to the list, e.g. {user: "eventsync", password: "<bcrypt hash>"}
# (bcrypt hashes: nats server passwd).
`)
	if direct {
		b.WriteString("#\n# Direct publishing is on: events published to events.> skip ingest's\n# schemas and rate limits.\n")
	}
	b.WriteString("authorization {\n  users = [\n")
	for _, p := range ps {
		if !p.Enabled || p.Credentials.PasswordHash == "" {
			continue
		}
		allow := []string{stream.IngestSubject}
		var deny []string
		if direct {
			for _, t := range p.Tags {
				allow = append(allow, subject.Filter(t))
			}
			deny = deniedCategories(p, owners)
		}
		fmt.Fprintf(&b, "    # %s\n", p.Name)
		b.WriteString("    {\n")
		fmt.Fprintf(&b, "      user: %s\n", strconv.Quote(p.ID))
		fmt.Fprintf(&b, "      password: %s\n", strconv.Quote(p.Credentials.PasswordHash))
		b.WriteString("      permissions: {\n")
		fmt.Fprintf(&b, "        publish: {\n          allow: %s\n", confList(allow))
		if len(deny) > 0 {
			fmt.Fprintf(&b, "          deny: %s\n", confList(deny))
		}
		b.WriteString("        }\n")
		fmt.Fprintf(&b, "        subscribe: {\n          allow: %s\n        }\n", confList([]string{inboxPrefix(p.ID) + ".>"}))
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}

// deniedCategories returns the subjects of the categories another
// producer owns that p's patterns would let it publish to.
func deniedCategories(p *producer.Producer, owners map[string]string) []string {
	var deny []string
	for cat, owner := range owners {
		if owner == p.ID {
			continue
		}
		for _, t := range p.Tags {
			if subject.Overlap(t, cat+".*") {
				deny = append(deny, subject.Filter(cat+".*"))
				break
			}
		}
	}
	slices.Sort(deny)
	return deny
}

// confList renders a NATS config list of strings.
func confList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
