// Command query runs the EventSync query service: the HTTP read API over
// events and delivery attempts stored in ClickHouse, named consumers, the
// live tail and the event server's read and ACK endpoints.
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
	"github.com/eventsync/eventsync/services/query"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(1)
	}
}

// run runs the query service, or its version or healthcheck command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return service.Main(ctx, query.Program(version), args, getenv, stdout)
}
