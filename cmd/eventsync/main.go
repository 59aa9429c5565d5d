// Command eventsync is the EventSync all-in-one binary and command-line
// tool. `eventsync run` starts an embedded NATS server with JetStream, the
// ingest, store and query services and one HTTP port; `eventsync bench`
// measures it; send, tail, query, sessions, stats, subs, consumers and
// producers talk to a running server through its HTTP API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/app"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runIO(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "eventsync:", err)
		os.Exit(1)
	}
}

const usage = `eventsync: an event pipeline on NATS JetStream.

Usage:
  eventsync run     [flags]   run EventSync in one process (embedded NATS and store)
  eventsync bench   [flags]   measure ingest and end-to-end throughput
  eventsync version           print the version
  eventsync healthcheck [--http-addr ADDR] [URL]   exit 0 when a running EventSync is ready (its /readyz)
  eventsync help [command [subcommand]]   show help

Client commands, against a running EventSync:
  eventsync send --tag CATEGORY.CODE --message TEXT [--session ID --source S --severity LEVEL
                 --data JSON --id ID --timestamp T --category C --code C]
  eventsync send [--file PATH]      events from a file or stdin: JSON array, object or NDJSON
  eventsync tail [--tag PATTERN] [--since SEQ]                 follow events live (Ctrl-C ends)
  eventsync query [--tag PATTERN --category C --code C --session ID --source S --severity LEVEL
                  --from T --to T --since SEQ --limit N --order asc|desc]
  eventsync sessions SESSION_ID     the events of one session
  eventsync stats [--from T --to T --bucket minute|hour|day --tag PATTERN]
  eventsync subs list | get ID | delete ID
  eventsync subs create --url URL --tags PATTERNS [--type webhook|slack|email --description TEXT
                        --header 'Name: value' --secret S --batch-events N --batch-wait D]
  eventsync subs replay ID (--since-seq N | --from T [--to T])
  eventsync consumers list | get NAME | delete NAME
  eventsync consumers create NAME --tags PATTERNS [--start new|all|SEQ|TIME]
  eventsync consumers next NAME [--limit N --wait D --ack]
  eventsync consumers ack NAME SEQ | seek NAME SEQ
  eventsync producers <cmd>         create, list, change and rotate producers (admin API)

Every client command takes:
  --server URL      base URL of the HTTP API [$EVENTSYNC_SERVER] (default http://127.0.0.1:8080)
  --token T         producer credential: an API key esk_… (Bearer) or id:password (Basic) [$EVENTSYNC_TOKEN]
  --admin-token T   admin token, for the admin endpoints [$EVENTSYNC_ADMIN_TOKEN]
  --json            print JSON instead of text (events as one JSON object a line)
Times (T) are RFC 3339, a date (2006-01-02) or a duration ago (15m, 24h). Tag patterns use
NATS wildcards: * is one token, > the rest (DATABASE.*, TEST.>). Tables and colors are for
people; a progress bar shows on a terminal only; NO_COLOR turns color off.

Run "eventsync help <command>" (or "eventsync <command> -help") for every flag of a command.
`

// run runs the command args names, with nothing on its stdin.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, getenv, nil, stdout, stderr)
}

// runIO runs the command args names; stdin (nil: none) is where send reads
// events from.
func runIO(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return app.Main(ctx, rest, getenv, stdout, version)
	case "bench":
		return runBench(ctx, rest, getenv, stdout)
	case "producers":
		return runProducers(ctx, rest, getenv, stdout)
	case "send", "tail", "query", "sessions", "stats", "subs", "consumers":
		return runClient(ctx, cmd, rest, console{in: stdin, out: stdout, err: stderr, getenv: getenv})
	case "healthcheck":
		return app.Healthcheck(ctx, rest, getenv, stdout)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "eventsync", version)
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return run(ctx, append(rest[:len(rest):len(rest)], "-help"), getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
