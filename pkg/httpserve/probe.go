package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/conf"
)

// DefaultProbeTimeout is how long the healthcheck mode waits for an answer.
// It is shorter than the 5 s a container health check usually allows, so
// that a slow server is reported as such rather than killed by the runtime.
const DefaultProbeTimeout = 3 * time.Second

// ReadyURL returns the URL of the /readyz endpoint of a server listening on
// addr, a listen address such as ":8080", "0.0.0.0:8080" or
// "10.0.0.5:8080". A wildcard or empty host becomes 127.0.0.1: a health
// check runs beside the server, and a server listening on every interface
// listens on loopback too.
func ReadyURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("listen address %q: no fixed port to probe", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// Probe GETs url and returns nil when it answers 200 OK. Any other answer
// is an error naming the status and the start of the body (/readyz says
// why it is not ready); redirects are not followed and no proxy is used.
func Probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	c := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	msg := resp.Status
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if b := strings.TrimSpace(string(body)); b != "" {
		msg += ": " + b
	}
	return fmt.Errorf("probe %s: %s", url, msg)
}

// Healthcheck is the healthcheck mode of EventSync's binaries,
// `NAME healthcheck [-http-addr ADDR] [-timeout D] [URL]`, for container
// runtimes whose images have no shell, curl or wget. It probes URL or, by
// default, the /readyz endpoint of the server listening on -http-addr
// ($HTTP_ADDR, else defaultAddr: the binary's own default) and returns nil
// when the server is ready. Help goes to stdout.
func Healthcheck(ctx context.Context, name string, args []string, getenv func(string) string, stdout io.Writer, defaultAddr string) error {
	var (
		addr    string
		timeout time.Duration
	)
	fs := conf.New(name+" healthcheck", getenv, stdout)
	fs.String(&addr, "http-addr", "HTTP_ADDR", defaultAddr, "listen address of the server to check; its /readyz is probed")
	fs.Duration(&timeout, "timeout", "", DefaultProbeTimeout, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.FlagSet().Args()
	if len(rest) > 1 {
		return errors.New("healthcheck: at most one URL")
	}
	url := ""
	if len(rest) == 1 {
		url = rest[0]
	} else {
		u, err := ReadyURL(addr)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		url = u
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return Probe(ctx, url)
}
