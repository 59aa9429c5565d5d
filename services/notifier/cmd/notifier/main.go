// Command notifier runs the EventSync notifier: the subscription API and
// delivery of events to webhooks, Slack and email.
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

	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/services/notifier"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(1)
	}
}

// run runs the notifier service, or its version or healthcheck command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return service.Main(ctx, notifier.Program(version), args, getenv, stdout)
}
