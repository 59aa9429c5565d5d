package producers

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/eventsync/eventsync/pkg/producer"
)

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
# inbox prefix "_INBOX.<id>" (nats.CustomInboxPrefix), the dots of an
# imported id written as "=" ("_INBOX.app=42" for client "app.42").
#
# EventSync's own services have their own users with least permissions:
# merge these users into the ones of deploy/k8s/base/nats-users.conf and
# reload the server.
`)
	if direct {
		b.WriteString("#\n# Direct publishing is on: events published to events.> skip ingest's\n# schemas and rate limits.\n")
	}
	b.WriteString("authorization {\n  users = [\n")
	names := make(map[string]string, len(ps))
	for _, p := range ps {
		names[p.ID] = p.Name
	}
	for _, u := range producer.NATSUsers(ps, owners, direct) {
		fmt.Fprintf(&b, "    # %s\n", names[u.User])
		b.WriteString("    {\n")
		fmt.Fprintf(&b, "      user: %s\n", strconv.Quote(u.User))
		fmt.Fprintf(&b, "      password: %s\n", strconv.Quote(u.PasswordHash))
		b.WriteString("      permissions: {\n")
		fmt.Fprintf(&b, "        publish: {\n          allow: %s\n", confList(u.PublishAllow))
		if len(u.PublishDeny) > 0 {
			fmt.Fprintf(&b, "          deny: %s\n", confList(u.PublishDeny))
		}
		b.WriteString("        }\n")
		fmt.Fprintf(&b, "        subscribe: {\n          allow: %s\n        }\n", confList(u.SubscribeAllow))
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}

// confList renders a NATS config list of strings.
func confList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
