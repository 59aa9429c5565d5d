// Command eventsync is the EventSync all-in-one binary and command-line
// tool. `eventsync run` starts an embedded NATS server with JetStream, the
// ingest, store, query and notifier services and one HTTP port (package
// app); `eventsync bench` measures it (package bench); send, tail, query,
// sessions, stats, subs, consumers and producers talk to a running server
// through its HTTP API (package cli).
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
	"github.com/eventsync/eventsync/cmd/eventsync/internal/bench"
	"github.com/eventsync/eventsync/cmd/eventsync/internal/cli"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
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

` + cli.Usage + `
Run "eventsync help <command>" (or "eventsync <command> -help") for every flag of a command.
`

// run runs the command args names; stdin (nil: none) is where send reads
// events from.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return app.Main(ctx, rest, getenv, stdout, version)
	case "bench":
		return bench.Main(ctx, rest, getenv, stdout)
	case "healthcheck":
		return app.Healthcheck(ctx, rest, getenv, stdout)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "eventsync", version)
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return run(ctx, append(rest[:len(rest):len(rest)], "-help"), getenv, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	if cli.Has(cmd) {
		return cli.Run(ctx, cmd, rest, cli.Console{In: stdin, Out: stdout, Err: stderr, Getenv: getenv})
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
