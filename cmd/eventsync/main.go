// Command eventsync is the EventSync all-in-one binary and command-line
// tool. `eventsync run` starts an embedded NATS server with JetStream, the
// ingest, store and query services and one HTTP port; `eventsync bench`
// measures it.
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
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
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
  eventsync producers <cmd>   create, list, change and rotate producers (admin API)
  eventsync version           print the version
  eventsync help [command]    show help

Run "eventsync <command> -help" for the flags of a command.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runAll(ctx, rest, getenv, stdout)
	case "bench":
		return runBench(ctx, rest, getenv, stdout)
	case "producers":
		return runProducers(ctx, rest, getenv, stdout)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "eventsync", version)
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "-help"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
