// Package cli is the EventSync command-line client: send, tail, query,
// sessions, stats, subs, consumers and producers, each talking to a
// running EventSync through its HTTP API (package client).
package cli

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/term"
)

// Console is what a client command reads and writes, and what it knows of
// its environment.
type Console struct {
	In       io.Reader // where send reads events from; nil: nothing
	Out, Err io.Writer
	Getenv   func(string) string
}

// terminal reports whether w is a terminal.
func terminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// color reports whether to color what goes to stdout: only on a terminal,
// and never when NO_COLOR is set (https://no-color.org).
func (c Console) color() bool {
	return c.Getenv("NO_COLOR") == "" && terminal(c.Out)
}

// progress reports whether to draw progress bars: on stderr, when both
// stdout and stderr are terminals.
func (c Console) progress() bool {
	return terminal(c.Out) && terminal(c.Err)
}

// commands are the client commands by name.
func commands() map[string]func(ctx context.Context, args []string, con Console) error {
	return map[string]func(context.Context, []string, Console) error{
		"send":      runSend,
		"tail":      runTail,
		"query":     runQuery,
		"sessions":  runSessions,
		"stats":     runStats,
		"subs":      runSubs,
		"consumers": runConsumers,
		"producers": runProducers,
		"clients":   runProducers, // the producers are the clients of every service
	}
}

// Has reports whether cmd names a client command.
func Has(cmd string) bool {
	_, ok := commands()[cmd]
	return ok
}

// Run runs the client command cmd with its arguments.
func Run(ctx context.Context, cmd string, args []string, con Console) error {
	run, ok := commands()[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q", cmd)
	}
	return run(ctx, args, con)
}

// Usage describes the client commands, for the usage of eventsync.
const Usage = `Client commands, against a running EventSync:
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
NATS wildcards: * is one token, > the rest (DATABASE.*, TEST.>). Lists (--tags, --owns) are
comma-separated, repeated or both: --tags 'A.*,B.>' is --tags 'A.*' --tags 'B.>'. Tables
and colors are for people; a progress bar shows on a terminal only; NO_COLOR turns color off.
`
