package service

import (
	"context"
	"fmt"
	"io"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/httpserve"
)

// Main is what a service binary does with its arguments: `version`,
// `healthcheck` (for container health checks: exit 0 when the /readyz of
// the server this environment configures answers 200), or run the
// program.
func Main(ctx context.Context, p Program, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			fmt.Fprintln(stdout, p.Name, p.Version)
			return nil
		case "healthcheck":
			return Healthcheck(ctx, p, args[1:], getenv, stdout)
		}
	}
	return Run(ctx, p, args, getenv, stdout)
}

// Healthcheck probes the /readyz endpoint of the program's HTTP address as
// the environment sets it (HTTP_ADDR, else the program's default), or a
// URL given as the one argument.
func Healthcheck(ctx context.Context, p Program, args []string, getenv func(string) string, stdout io.Writer) error {
	var c Common
	c.flags(conf.New(p.Name, getenv, io.Discard), &p)
	return httpserve.Healthcheck(ctx, p.Name, args, getenv, stdout, c.HTTPAddr)
}
