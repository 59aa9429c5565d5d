package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
)

const subsUsage = `eventsync subs: manage the subscriptions that EventSync delivers events to
(signed webhooks, Slack, email).

Usage:
  eventsync subs list
  eventsync subs get ID
  eventsync subs create --url URL --tags 'DATABASE.*,TEST.>' [--type webhook|slack|email]
                        [--description TEXT] [--header 'Name: value' …] [--secret whsec_…]
                        [--batch-events N --batch-wait 500ms]
  eventsync subs delete ID
  eventsync subs replay ID --since-seq N
  eventsync subs replay ID --from T [--to T]

create prints the signing secret once: store it then.
`

// subscriptions are what the subs commands manage.
func subscriptions() *resource[client.Subscription] {
	return &resource[client.Subscription]{
		group: "subs", noun: "subscription", key: "id",
		listAbout:   "Lists the subscriptions (never their secrets).\n",
		getAbout:    "Shows one subscription (without its secret).\n",
		deleteAbout: "Deletes a subscription; its pending deliveries are dropped.\n",
		list:        (*client.Client).Subscriptions,
		get:         (*client.Client).Subscription,
		del:         (*client.Client).DeleteSubscription,
		columns:     []string{"ID", "TYPE", "STATE", "TAGS", "URL", "DESCRIPTION"},
		row: func(s client.Subscription) []string {
			return []string{s.ID, s.Type, subscriptionState(&s), joined(s.Tags, ","), s.URL, oneLine(s.Description)}
		},
		details: func(s *client.Subscription) [][]string {
			rows := [][]string{{"id", s.ID}, {"type", s.Type}, {"url", s.URL}, {"tags", joined(s.Tags, ", ")}}
			if s.Description != "" {
				rows = append(rows, []string{"description", oneLine(s.Description)})
			}
			for name, v := range s.Headers {
				rows = append(rows, []string{"header", name + ": " + v})
			}
			if s.Batch != nil {
				rows = append(rows, []string{"batch", fmt.Sprintf("%d events, %d ms", s.Batch.MaxEvents, s.Batch.MaxWaitMS)})
			}
			rows = append(rows, []string{"state", subscriptionState(s)})
			if !s.FailingSince.IsZero() {
				rows = append(rows, []string{"failing since", localTime(s.FailingSince)})
			}
			return append(rows, []string{"first seq", fmt.Sprint(s.StartSeq)}, []string{"created", localTime(s.CreatedAt)})
		},
		title: func(s *client.Subscription) string { return s.ID },
		secrets: func(s *client.Subscription) (string, [][]string) {
			if s.Secret == "" {
				return "", nil
			}
			return "Signing secret, shown this once (store it now):", [][]string{{s.Secret}}
		},
	}
}

func subscriptionState(s *client.Subscription) string {
	if s.StateReason != "" {
		return s.State + " (" + s.StateReason + ")"
	}
	return s.State
}

func runSubs(ctx context.Context, args []string, con Console) error {
	subs := subscriptions()
	return group{name: "subs", usage: subsUsage, cmds: map[string]func(context.Context, []string, Console) error{
		"list":   subs.listCmd,
		"get":    subs.getCmd,
		"delete": subs.deleteCmd,
		"create": subsCreate,
		"replay": subsReplay,
	}}.run(ctx, args, con)
}

const subsCreateAbout = `Subscribes a URL to tag patterns (POST /v1/subscriptions). Events stored
after it returns are delivered. The type follows the URL (mailto: is email,
anything else a signed webhook) unless --type slack names a Slack incoming
webhook. The signing secret is printed once: store it then.
`

func subsCreate(ctx context.Context, args []string, con Console) error {
	subs := subscriptions()
	c := subs.command(con, "create", " --url URL --tags PATTERNS [--type T --description TEXT --header 'Name: value' --secret S --batch-events N --batch-wait D] [--json]", subsCreateAbout)
	var (
		spec       client.SubscriptionSpec
		tags       listFlag
		headers    = headerFlags{}
		batchCount int
		batchWait  time.Duration
	)
	c.fs.String(&spec.URL, "url", "", "", "where to deliver: https://… (webhook, Slack) or mailto:… (email)")
	c.fs.Var(&tags, "tags", "", "tag patterns, comma-separated or repeated: DATABASE.*,AUTH.INVALID_TOKEN,TEST.>")
	c.fs.String(&spec.Type, "type", "", "", "webhook, slack or email (default: from the URL)")
	c.fs.String(&spec.Description, "description", "", "", "what the subscription is for")
	c.fs.Var(headers, "header", "", "a header sent with every delivery, 'Name: value' (repeatable)")
	c.fs.String(&spec.Secret, "secret", "", "", "signing secret whsec_… (default: the server makes one)")
	c.fs.Int(&batchCount, "batch-events", "", 0, "deliver up to this many events at once, as a JSON array (0: one at a time)")
	c.fs.Duration(&batchWait, "batch-wait", "", 0, "with --batch-events: the longest an event waits for a batch to fill")
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	spec.Tags = tags.items
	var errs []error
	if spec.URL == "" {
		errs = append(errs, errors.New("--url is required"))
	}
	if len(spec.Tags) == 0 {
		errs = append(errs, errors.New("--tags is required"))
	}
	if batchCount < 0 || batchWait < 0 || batchWait > 0 && batchCount == 0 {
		errs = append(errs, errors.New("--batch-events must be positive, and given with --batch-wait"))
	}
	if err := errors.Join(errs...); err != nil {
		return c.fail(err)
	}
	if len(headers) > 0 {
		spec.Headers = headers
	}
	if batchCount > 0 {
		spec.Batch = &client.SubscriptionBatch{MaxEvents: batchCount, MaxWaitMS: int(batchWait.Milliseconds())}
	}
	s, err := cl.CreateSubscription(ctx, spec)
	return subs.show(c, "Created", s, err)
}

const subsReplayAbout = `Delivers stored events to a subscription again, with the same signing,
retries and audit as live ones: every event after --since-seq, or those
EventSync received from --from (to --to). Times are RFC 3339, a date
(2006-01-02) or a duration ago (15m, 24h). Prints how many were queued.
`

func subsReplay(ctx context.Context, args []string, con Console) error {
	subs := subscriptions()
	c := subs.command(con, "replay", " KEY (--since-seq N | --from T [--to T]) [--json]", subsReplayAbout)
	var since, from, to string
	c.fs.String(&since, "since-seq", "", "", "replay the events with a greater seq (0: every stored event)")
	c.fs.String(&from, "from", "", "", "replay the events received at or after this time")
	c.fs.String(&to, "to", "", "", "with --from: replay the events received before this time")
	pos, cl, err := subs.parseKey(c, args)
	if err != nil {
		return err
	}
	id := pos[0]
	var r client.ReplayRequest
	now := time.Now()
	switch {
	case since != "" && from != "", since == "" && from == "":
		return c.fail(errors.New("give either --since-seq or --from"))
	case to != "" && from == "":
		return c.fail(errors.New("--to needs --from"))
	case since != "":
		if r.SinceSeq, err = parseSeq("--since-seq", since); err != nil {
			return c.fail(err)
		}
	default:
		if r.From, err = parseTime("from", from, now); err != nil {
			return c.fail(err)
		}
		if r.To, err = parseTime("to", to, now); err != nil {
			return c.fail(err)
		}
	}
	stop := spinner(ctx, con, "queueing the replay")
	queued, err := cl.Replay(ctx, id, r)
	stop()
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return printJSON(con.Out, map[string]int{"queued": queued})
	}
	_, err = fmt.Fprintf(con.Out, "Queued %d events for delivery to %s.\n", queued, id)
	return err
}
