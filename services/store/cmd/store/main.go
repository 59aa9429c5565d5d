// Command store runs the EventSync store service: it consumes the EVENTS
// and DELIVERIES streams and writes events and delivery attempts to
// ClickHouse.
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
	"github.com/eventsync/eventsync/services/store"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "store:", err)
		os.Exit(1)
	}
}

// run runs the store service, or its version or healthcheck command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return service.Main(ctx, store.Program(version), args, getenv, stdout)
}
