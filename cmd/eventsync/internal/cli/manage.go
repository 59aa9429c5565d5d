package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/schollz/progressbar/v3"
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

Every command takes --server [$EVENTSYNC_SERVER] (default http://127.0.0.1:8080),
--token [$EVENTSYNC_TOKEN] and --json (print JSON).
create prints the signing secret once: store it then.
Run "eventsync subs <command> -help" for the flags of a command.
`

func runSubs(ctx context.Context, args []string, con Console) error {
	if len(args) == 0 {
		fmt.Fprint(con.Out, subsUsage)
		return errors.New("no subs command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(con.Out, subsUsage)
		return nil
	case "list":
		return subsList(ctx, rest, con)
	case "get":
		return subsGet(ctx, rest, con)
	case "create":
		return subsCreate(ctx, rest, con)
	case "delete":
		return subsDelete(ctx, rest, con)
	case "replay":
		return subsReplay(ctx, rest, con)
	}
	fmt.Fprint(con.Err, subsUsage)
	return fmt.Errorf("unknown subs command %q", cmd)
}

func subsList(ctx context.Context, args []string, con Console) error {
	fs, api := command("subs list", "subs list [--json]", "Lists the subscriptions (never their secrets).\n", con)
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	subs, err := c.Subscriptions(ctx)
	if err != nil {
		return explain("subs list", err)
	}
	if api.json {
		return writeJSON(con.Out, map[string]any{"subscriptions": subs})
	}
	if len(subs) == 0 {
		fmt.Fprintln(con.Out, "No subscriptions.")
		return nil
	}
	tw := tabwriter.NewWriter(con.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATE\tTAGS\tURL\tDESCRIPTION")
	for _, s := range subs {
		state := s.State
		if s.StateReason != "" {
			state += " (" + s.StateReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Type, state, strings.Join(s.Tags, ","), s.URL, oneLine(s.Description))
	}
	return flushTable(tw)
}

func subsGet(ctx context.Context, args []string, con Console) error {
	fs, api := command("subs get", "subs get ID [--json]", "Shows one subscription (without its secret).\n", con)
	pos, err := parseArgs(fs, args, 1, "a subscription id")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	s, err := c.Subscription(ctx, pos[0])
	if err != nil {
		return explain("subs get", err)
	}
	if api.json {
		return writeJSON(con.Out, s)
	}
	printSubscription(con, s)
	return nil
}

const subsCreateAbout = `Subscribes a URL to tag patterns (POST /v1/subscriptions). Events stored
after it returns are delivered. The type follows the URL (mailto: is email,
anything else a signed webhook) unless --type slack names a Slack incoming
webhook. The signing secret is printed once: store it then.
`

func subsCreate(ctx context.Context, args []string, con Console) error {
	fs, api := command("subs create", "subs create --url URL --tags PATTERNS [--type T --description TEXT --header 'Name: value' --secret S --batch-events N --batch-wait D] [--json]", subsCreateAbout, con)
	var (
		spec       client.SubscriptionSpec
		tags       string
		headers    = headerFlags{}
		batchCount int
		batchWait  time.Duration
	)
	f := fs.FlagSet()
	f.StringVar(&spec.URL, "url", "", "where to deliver: https://… (webhook, Slack) or mailto:… (email)")
	f.StringVar(&tags, "tags", "", "comma-separated tag patterns: DATABASE.*,AUTH.INVALID_TOKEN,TEST.>")
	f.StringVar(&spec.Type, "type", "", "webhook, slack or email (default: from the URL)")
	f.StringVar(&spec.Description, "description", "", "what the subscription is for")
	f.Var(headers, "header", "a header sent with every delivery, 'Name: value' (repeatable)")
	f.StringVar(&spec.Secret, "secret", "", "signing secret whsec_… (default: the server makes one)")
	f.IntVar(&batchCount, "batch-events", 0, "deliver up to this many events at once, as a JSON array (0: one at a time)")
	f.DurationVar(&batchWait, "batch-wait", 0, "with --batch-events: the longest an event waits for a batch to fill")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	spec.Tags = splitList(tags)
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
		return fmt.Errorf("subs create: %w", err)
	}
	if len(headers) > 0 {
		spec.Headers = headers
	}
	if batchCount > 0 {
		spec.Batch = &client.SubscriptionBatch{MaxEvents: batchCount, MaxWaitMS: int(batchWait.Milliseconds())}
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	s, err := c.CreateSubscription(ctx, spec)
	if err != nil {
		return explain("subs create", err)
	}
	if api.json {
		return writeJSON(con.Out, s)
	}
	fmt.Fprintf(con.Out, "Created subscription %s.\n", s.ID)
	printSubscription(con, s)
	if s.Secret != "" {
		fmt.Fprintf(con.Out, "\nSigning secret, shown this once (store it now):\n  %s\n", s.Secret)
	}
	return nil
}

func printSubscription(con Console, s *client.Subscription) {
	tw := tabwriter.NewWriter(con.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  id\t%s\n", s.ID)
	fmt.Fprintf(tw, "  type\t%s\n", s.Type)
	fmt.Fprintf(tw, "  url\t%s\n", s.URL)
	fmt.Fprintf(tw, "  tags\t%s\n", strings.Join(s.Tags, ", "))
	if s.Description != "" {
		fmt.Fprintf(tw, "  description\t%s\n", oneLine(s.Description))
	}
	for name, v := range s.Headers {
		fmt.Fprintf(tw, "  header\t%s: %s\n", name, v)
	}
	if s.Batch != nil {
		fmt.Fprintf(tw, "  batch\t%d events, %d ms\n", s.Batch.MaxEvents, s.Batch.MaxWaitMS)
	}
	state := s.State
	if s.StateReason != "" {
		state += " (" + s.StateReason + ")"
	}
	fmt.Fprintf(tw, "  state\t%s\n", state)
	if !s.FailingSince.IsZero() {
		fmt.Fprintf(tw, "  failing since\t%s\n", s.FailingSince.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "  first seq\t%d\n", s.StartSeq)
	fmt.Fprintf(tw, "  created\t%s\n", s.CreatedAt.Local().Format(time.RFC3339))
	_ = tw.Flush()
}

func subsDelete(ctx context.Context, args []string, con Console) error {
	fs, api := command("subs delete", "subs delete ID", "Deletes a subscription; its pending deliveries are dropped.\n", con)
	pos, err := parseArgs(fs, args, 1, "a subscription id")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	if err := c.DeleteSubscription(ctx, pos[0]); err != nil {
		return explain("subs delete", err)
	}
	if api.json {
		return writeJSON(con.Out, map[string]any{"deleted": pos[0]})
	}
	fmt.Fprintf(con.Out, "Deleted subscription %s.\n", pos[0])
	return nil
}

const subsReplayAbout = `Delivers stored events to a subscription again, with the same signing,
retries and audit as live ones: every event after --since-seq, or those
EventSync received from --from (to --to). Times are RFC 3339, a date
(2006-01-02) or a duration ago (15m, 24h). Prints how many were queued.
`

func subsReplay(ctx context.Context, args []string, con Console) error {
	fs, api := command("subs replay", "subs replay ID (--since-seq N | --from T [--to T]) [--json]", subsReplayAbout, con)
	var since, from, to string
	f := fs.FlagSet()
	f.StringVar(&since, "since-seq", "", "replay the events with a greater seq (0: every stored event)")
	f.StringVar(&from, "from", "", "replay the events received at or after this time")
	f.StringVar(&to, "to", "", "with --from: replay the events received before this time")
	pos, err := parseArgs(fs, args, 1, "a subscription id")
	if err != nil {
		return err
	}
	var r client.ReplayRequest
	now := time.Now()
	switch {
	case since != "" && from != "", since == "" && from == "":
		return errors.New("subs replay: give either --since-seq or --from")
	case to != "" && from == "":
		return errors.New("subs replay: --to needs --from")
	case since != "":
		if r.SinceSeq, err = parseSeq("--since-seq", since); err != nil {
			return fmt.Errorf("subs replay: %w", err)
		}
	default:
		if r.From, err = parseTime("from", from, now); err != nil {
			return fmt.Errorf("subs replay: %w", err)
		}
		if r.To, err = parseTime("to", to, now); err != nil {
			return fmt.Errorf("subs replay: %w", err)
		}
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	stop := spinner(ctx, con, "queueing the replay")
	queued, err := c.Replay(ctx, pos[0], r)
	stop()
	if err != nil {
		return explain("subs replay", err)
	}
	if api.json {
		return writeJSON(con.Out, map[string]int{"queued": queued})
	}
	fmt.Fprintf(con.Out, "Queued %d events for delivery to %s.\n", queued, pos[0])
	return nil
}

// spinner shows an indeterminate progress bar with the elapsed time on
// stderr, when on a terminal, until the returned stop is called.
func spinner(ctx context.Context, con Console, what string) (stop func()) {
	if !con.progress() {
		return func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(con.Err),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
	)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = bar.Add(1)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		_ = bar.Finish()
	}
}

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
Every command takes --server [$EVENTSYNC_SERVER] (default http://127.0.0.1:8080),
--token [$EVENTSYNC_TOKEN] and --json (print JSON).
Run "eventsync consumers <command> -help" for the flags of a command.
`

func runConsumers(ctx context.Context, args []string, con Console) error {
	if len(args) == 0 {
		fmt.Fprint(con.Out, consumersUsage)
		return errors.New("no consumers command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(con.Out, consumersUsage)
		return nil
	case "list":
		return consumersList(ctx, rest, con)
	case "get":
		return consumersGet(ctx, rest, con)
	case "create":
		return consumersCreate(ctx, rest, con)
	case "next":
		return consumersNext(ctx, rest, con)
	case "ack", "seek":
		return consumersMove(ctx, cmd, rest, con)
	case "delete":
		return consumersDelete(ctx, rest, con)
	}
	fmt.Fprint(con.Err, consumersUsage)
	return fmt.Errorf("unknown consumers command %q", cmd)
}

func consumersList(ctx context.Context, args []string, con Console) error {
	fs, api := command("consumers list", "consumers list [--json]", "Lists the consumers with their positions, pending counts and lag.\n", con)
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	cs, err := c.Consumers(ctx)
	if err != nil {
		return explain("consumers list", err)
	}
	if api.json {
		return writeJSON(con.Out, map[string]any{"consumers": cs})
	}
	if len(cs) == 0 {
		fmt.Fprintln(con.Out, "No consumers.")
		return nil
	}
	tw := tabwriter.NewWriter(con.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTAGS\tACKED\tDELIVERED\tPENDING\tLAG\tOLDEST")
	for _, k := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", k.Name, strings.Join(k.Tags, ","), k.Acked, k.LastDelivered, k.Pending, k.Lag.Events, age(k.Lag.AgeSeconds))
	}
	return flushTable(tw)
}

func consumersGet(ctx context.Context, args []string, con Console) error {
	fs, api := command("consumers get", "consumers get NAME [--json]", "Shows one consumer with its position, pending count and lag.\n", con)
	pos, err := parseArgs(fs, args, 1, "a consumer name")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	k, err := c.Consumer(ctx, pos[0])
	if err != nil {
		return explain("consumers get", err)
	}
	if api.json {
		return writeJSON(con.Out, k)
	}
	printConsumer(con, k)
	return nil
}

func printConsumer(con Console, k *client.Consumer) {
	tw := tabwriter.NewWriter(con.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  name\t%s\n", k.Name)
	fmt.Fprintf(tw, "  tags\t%s\n", strings.Join(k.Tags, ", "))
	fmt.Fprintf(tw, "  start\t%s\n", strings.Trim(k.Start.String(), `"`))
	fmt.Fprintf(tw, "  acked\t%d\n", k.Acked)
	fmt.Fprintf(tw, "  delivered\t%d\n", k.LastDelivered)
	fmt.Fprintf(tw, "  pending\t%d\n", k.Pending)
	fmt.Fprintf(tw, "  lag\t%d events, oldest %s\n", k.Lag.Events, age(k.Lag.AgeSeconds))
	if !k.Created.IsZero() {
		fmt.Fprintf(tw, "  created\t%s\n", k.Created.Local().Format(time.RFC3339))
	}
	_ = tw.Flush()
}

// age formats the age of a consumer's oldest pending event.
func age(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	return (time.Duration(seconds * float64(time.Second))).Round(time.Second).String()
}

func consumersCreate(ctx context.Context, args []string, con Console) error {
	fs, api := command("consumers create", "consumers create NAME --tags PATTERNS [--start new|all|SEQ|TIME] [--json]",
		"Creates a consumer of the events matching its tags, from --start on: new (events stored from\nnow on), all, after a seq, or from a time (RFC 3339, a date or a duration ago).\nCreating it again with the same definition is harmless.\n", con)
	var tags, start string
	f := fs.FlagSet()
	f.StringVar(&tags, "tags", "", "comma-separated tag patterns: ORDER.*,BILLING.>")
	f.StringVar(&start, "start", "new", "where to begin: new, all, a seq, or a time")
	pos, err := parseArgs(fs, args, 1, "a consumer name")
	if err != nil {
		return err
	}
	patterns := splitList(tags)
	if len(patterns) == 0 {
		return errors.New("consumers create: --tags is required")
	}
	st, err := parseStart(start, time.Now())
	if err != nil {
		return fmt.Errorf("consumers create: %w", err)
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	k, err := c.CreateConsumer(ctx, pos[0], patterns, st)
	if err != nil {
		return explain("consumers create", err)
	}
	if api.json {
		return writeJSON(con.Out, k)
	}
	fmt.Fprintf(con.Out, "Created consumer %s.\n", k.Name)
	printConsumer(con, k)
	return nil
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

func consumersNext(ctx context.Context, args []string, con Console) error {
	fs, api := command("consumers next", "consumers next NAME [--limit N] [--wait D] [--ack] [--json]",
		"Reads the next events after the consumer's acknowledged position. Until they are\nacknowledged (--ack, or consumers ack), the same events come back on every read.\n", con)
	var (
		limit int
		wait  time.Duration
		ack   bool
	)
	f := fs.FlagSet()
	f.IntVar(&limit, "limit", client.DefaultLimit, "the most events to read (1 to 10000)")
	f.DurationVar(&wait, "wait", 5*time.Second, "how long to wait for a first event when there is none (at most 30s)")
	f.BoolVar(&ack, "ack", false, "acknowledge the events read once they are printed")
	pos, err := parseArgs(fs, args, 1, "a consumer name")
	if err != nil {
		return err
	}
	if limit < 1 || limit > client.MaxLimit {
		return fmt.Errorf("consumers next: --limit %d: want 1 to %d", limit, client.MaxLimit)
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	b, err := c.Next(ctx, pos[0], limit, wait)
	if err != nil {
		return explain("consumers next", err)
	}
	acked := false
	if api.json {
		if err := writeJSON(con.Out, b); err != nil {
			return err
		}
	} else {
		p := newEventPrinter(con.Out, false)
		for _, e := range b.Events {
			if err := p.print(e); err != nil {
				return err
			}
		}
		if err := p.flush(); err != nil {
			return err
		}
		if len(b.Events) == 0 {
			fmt.Fprintln(con.Out, "No new events.")
		}
	}
	if ack && b.LastDelivered > b.Acked {
		pos2, err := c.Ack(ctx, pos[0], b.LastDelivered)
		if err != nil {
			return explain("consumers next: ack", err)
		}
		acked = true
		b.Acked = pos2.Acked
	}
	if api.json {
		return nil
	}
	switch {
	case acked:
		fmt.Fprintf(con.Out, "Acknowledged through seq %d.\n", b.Acked)
	case b.LastDelivered > b.Acked:
		fmt.Fprintf(con.Out, "Delivered through seq %d; acknowledge with: eventsync consumers ack %s %d\n", b.LastDelivered, pos[0], b.LastDelivered)
	}
	return nil
}

func consumersMove(ctx context.Context, cmd string, args []string, con Console) error {
	about := "Acknowledges every event of the consumer through SEQ (its last delivered seq or less).\n"
	if cmd == "seek" {
		about = "Moves the consumer's position to SEQ, forwards or back: the events after it are delivered (again).\n"
	}
	fs, api := command("consumers "+cmd, "consumers "+cmd+" NAME SEQ [--json]", about, con)
	pos, err := parseArgs(fs, args, 2, "a consumer name and a seq")
	if err != nil {
		return err
	}
	seq, err := parseSeq("seq", pos[1])
	if err != nil {
		return fmt.Errorf("consumers %s: %w", cmd, err)
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	move := c.Ack
	if cmd == "seek" {
		move = c.Seek
	}
	p, err := move(ctx, pos[0], seq)
	if err != nil {
		return explain("consumers "+cmd, err)
	}
	if api.json {
		return writeJSON(con.Out, p)
	}
	fmt.Fprintf(con.Out, "Consumer %s: acked %d, delivered %d.\n", pos[0], p.Acked, p.LastDelivered)
	return nil
}

func consumersDelete(ctx context.Context, args []string, con Console) error {
	fs, api := command("consumers delete", "consumers delete NAME", "Deletes a consumer and its position.\n", con)
	pos, err := parseArgs(fs, args, 1, "a consumer name")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	if err := c.DeleteConsumer(ctx, pos[0]); err != nil {
		return explain("consumers delete", err)
	}
	if api.json {
		return writeJSON(con.Out, map[string]any{"deleted": pos[0]})
	}
	fmt.Fprintf(con.Out, "Deleted consumer %s.\n", pos[0])
	return nil
}

func flushTable(tw *tabwriter.Writer) error {
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
