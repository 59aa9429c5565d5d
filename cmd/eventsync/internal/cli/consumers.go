package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
)

const consumersUsage = `eventsync consumers: read events through named, durable consumers: each
keeps its own acknowledged position in the event log, across restarts.

Usage:
  eventsync consumers list
  eventsync consumers get NAME
  eventsync consumers create NAME --tags 'ORDER.*,BILLING.>' [--start new|all|SEQ|TIME]
  eventsync consumers next NAME [--limit N] [--wait 5s] [--ack]
  eventsync consumers ack NAME SEQ
  eventsync consumers seek NAME SEQ
  eventsync consumers delete NAME

Until acknowledged, next returns the same events again (at least once):
acknowledge the last_delivered seq it prints once they are processed.
`

// consumers are what the consumers commands manage.
func consumers() *resource[client.Consumer] {
	return &resource[client.Consumer]{
		group: "consumers", noun: "consumer", key: "name",
		listAbout:   "Lists the consumers with their positions, pending counts and lag.\n",
		getAbout:    "Shows one consumer with its position, pending count and lag.\n",
		deleteAbout: "Deletes a consumer and its position.\n",
		list:        (*client.Client).Consumers,
		get:         (*client.Client).Consumer,
		del:         (*client.Client).DeleteConsumer,
		columns:     []string{"NAME", "TAGS", "ACKED", "DELIVERED", "PENDING", "LAG", "OLDEST"},
		row: func(k client.Consumer) []string {
			return []string{k.Name, joined(k.Tags, ","), fmt.Sprint(k.Acked), fmt.Sprint(k.LastDelivered), fmt.Sprint(k.Pending),
				fmt.Sprint(k.Lag.Events), age(k.Lag.AgeSeconds)}
		},
		details: func(k *client.Consumer) [][]string {
			rows := [][]string{
				{"name", k.Name},
				{"tags", joined(k.Tags, ", ")},
				{"start", strings.Trim(k.Start.String(), `"`)},
				{"acked", fmt.Sprint(k.Acked)},
				{"delivered", fmt.Sprint(k.LastDelivered)},
				{"pending", fmt.Sprint(k.Pending)},
				{"lag", fmt.Sprintf("%d events, oldest %s", k.Lag.Events, age(k.Lag.AgeSeconds))},
			}
			if !k.Created.IsZero() {
				rows = append(rows, []string{"created", localTime(k.Created)})
			}
			return rows
		},
		title: func(k *client.Consumer) string { return k.Name },
	}
}

// age formats the age of a consumer's oldest pending event.
func age(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	return (time.Duration(seconds * float64(time.Second))).Round(time.Second).String()
}

func runConsumers(ctx context.Context, args []string, con Console) error {
	ks := consumers()
	return group{name: "consumers", usage: consumersUsage, cmds: map[string]func(context.Context, []string, Console) error{
		"list":   ks.listCmd,
		"get":    ks.getCmd,
		"delete": ks.deleteCmd,
		"create": consumersCreate,
		"next":   consumersNext,
		"ack":    consumersMove("ack"),
		"seek":   consumersMove("seek"),
	}}.run(ctx, args, con)
}

const consumersCreateAbout = `Creates a consumer of the events matching its tags, from --start on: new (events stored from
now on), all, after a seq, or from a time (RFC 3339, a date or a duration ago).
Creating it again with the same definition is harmless.
`

func consumersCreate(ctx context.Context, args []string, con Console) error {
	ks := consumers()
	c := ks.command(con, "create", " KEY --tags PATTERNS [--start new|all|SEQ|TIME] [--json]", consumersCreateAbout)
	var (
		tags  listFlag
		start string
	)
	c.fs.Var(&tags, "tags", "", "tag patterns, comma-separated or repeated: ORDER.*,BILLING.>")
	c.fs.String(&start, "start", "", "new", "where to begin: new, all, a seq, or a time")
	pos, cl, err := ks.parseKey(c, args)
	if err != nil {
		return err
	}
	if len(tags.items) == 0 {
		return c.fail(errors.New("--tags is required"))
	}
	st, err := parseStart(start, time.Now())
	if err != nil {
		return c.fail(err)
	}
	k, err := cl.CreateConsumer(ctx, pos[0], tags.items, st)
	return ks.show(c, "Created", k, err)
}

// parseStart reads --start: new, all, a seq or a time.
func parseStart(s string, now time.Time) (client.Start, error) {
	switch s {
	case "new", "":
		return client.StartNew(), nil
	case "all":
		return client.StartAll(), nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return client.StartAfter(n), nil
	}
	t, err := parseTime("start", s, now)
	if err != nil {
		return client.Start{}, fmt.Errorf("--start %q: want new, all, a seq or a time", s)
	}
	return client.StartAt(t), nil
}

const consumersNextAbout = `Reads the next events after the consumer's acknowledged position. Until they are
acknowledged (--ack, or consumers ack), the same events come back on every read.
`

func consumersNext(ctx context.Context, args []string, con Console) error {
	ks := consumers()
	c := ks.command(con, "next", " KEY [--limit N] [--wait D] [--ack] [--json]", consumersNextAbout)
	var (
		limit int
		wait  time.Duration
		ack   bool
	)
	c.fs.Int(&limit, "limit", "", client.DefaultLimit, "the most events to read (1 to 10000)")
	c.fs.Duration(&wait, "wait", "", 5*time.Second, "how long to wait for a first event when there is none (at most 30s)")
	c.fs.Bool(&ack, "ack", "", false, "acknowledge the events read once they are printed")
	pos, cl, err := ks.parseKey(c, args)
	if err != nil {
		return err
	}
	name := pos[0]
	if limit < 1 || limit > client.MaxLimit {
		return c.fail(fmt.Errorf("--limit %d: want 1 to %d", limit, client.MaxLimit))
	}
	b, err := cl.Next(ctx, name, limit, wait)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		if err := printJSON(con.Out, b); err != nil {
			return err
		}
	} else {
		if err := printEvents(con.Out, b.Events); err != nil {
			return err
		}
		if len(b.Events) == 0 {
			fmt.Fprintln(con.Out, "No new events.")
		}
	}
	acked := false
	if ack && b.LastDelivered > b.Acked {
		p, err := cl.Ack(ctx, name, b.LastDelivered)
		if err != nil {
			return c.failAs(c.name+": ack", err)
		}
		acked, b.Acked = true, p.Acked
	}
	switch {
	case c.json:
	case acked:
		fmt.Fprintf(con.Out, "Acknowledged through seq %d.\n", b.Acked)
	case b.LastDelivered > b.Acked:
		fmt.Fprintf(con.Out, "Delivered through seq %d; acknowledge with: eventsync consumers ack %s %d\n", b.LastDelivered, name, b.LastDelivered)
	}
	return nil
}

// consumersMove returns ack or seek, which move the consumer's position.
func consumersMove(sub string) func(context.Context, []string, Console) error {
	return func(ctx context.Context, args []string, con Console) error {
		about := "Acknowledges every event of the consumer through SEQ (its last delivered seq or less).\n"
		if sub == "seek" {
			about = "Moves the consumer's position to SEQ, forwards or back: the events after it are delivered (again).\n"
		}
		ks := consumers()
		c := ks.command(con, sub, " KEY SEQ [--json]", about)
		pos, cl, err := ks.parseKey(c, args, "a seq")
		if err != nil {
			return err
		}
		seq, err := parseSeq("seq", pos[1])
		if err != nil {
			return c.fail(err)
		}
		move := cl.Ack
		if sub == "seek" {
			move = cl.Seek
		}
		p, err := move(ctx, pos[0], seq)
		if err != nil {
			return c.fail(err)
		}
		if c.json {
			return printJSON(con.Out, p)
		}
		_, err = fmt.Fprintf(con.Out, "Consumer %s: acked %d, delivered %d.\n", pos[0], p.Acked, p.LastDelivered)
		return err
	}
}
