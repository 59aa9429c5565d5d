package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/webhook"
	"github.com/eventsync/eventsync/services/notifier/internal/netguard"
)

// Limits of the delivery HTTP client.
const (
	// maxIdlePerHost keeps connections to a busy receiver open for reuse;
	// Go's default of 2 halves delivery throughput.
	maxIdlePerHost = 512
	maxIdle        = 4096
	// maxDrain is how much of a response is read and thrown away so that
	// its connection can be reused; a longer response costs a connection.
	maxDrain = 64 << 10
)

// NewHTTPClient returns the HTTP client deliveries are made with. It
// connects through guard.DialContext, so internal addresses are refused at
// connect time (a nil guard dials anything, for tests). It does not follow
// redirects: a receiver that answers 3xx has not taken the delivery. It has
// no overall timeout; the context of each attempt bounds it.
//
// It ignores HTTP_PROXY and friends: a proxy would connect on the notifier's
// behalf, past the guard.
func NewHTTPClient(guard *netguard.Guard) *http.Client {
	dial := (&net.Dialer{Timeout: netguard.DialTimeout, KeepAlive: netguard.KeepAlive}).DialContext
	if guard != nil {
		dial = guard.DialContext
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dial,
			ForceAttemptHTTP2:      true,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    10 * time.Second,
			MaxIdleConns:           maxIdle,
			MaxIdleConnsPerHost:    maxIdlePerHost,
			IdleConnTimeout:        90 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Webhook delivers to HTTP endpoints, signed by the Standard Webhooks scheme
// (see package webhook).
type Webhook struct {
	client    *http.Client
	userAgent string
}

// NewWebhook returns a Webhook sending with client (see NewHTTPClient) and
// the given User-Agent.
func NewWebhook(client *http.Client, userAgent string) *Webhook {
	return &Webhook{client: client, userAgent: userAgent}
}

// Send POSTs m.Body to m.Target, signed with m.Secrets, and classifies the
// outcome:
//
//	2xx                                       Delivered
//	408, 429, 5xx                             Retry (RetryAfter from 429 and 503)
//	timeout, connection or DNS error          Retry
//	410                                       Gone
//	3xx (redirects are not followed)          Reject
//	other 4xx and other statuses              Reject
//	internal address refused by the guard     Reject
//	unusable message (bad URL, no secret)     Reject
//
// The subscriber's m.Headers are sent too, but cannot replace Content-Type,
// User-Agent or the webhook-* headers; connection-level headers among them
// are dropped.
func (w *Webhook) Send(ctx context.Context, m *Message) Result {
	req, err := w.request(ctx, m)
	if err != nil {
		return Result{Verdict: Reject, Err: err}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return transportResult(err)
	}
	defer resp.Body.Close()

	var buf [delivery.MaxResponse]byte
	n, _ := io.ReadFull(resp.Body, buf[:])
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)

	res := Result{Status: resp.StatusCode, Response: responseText(buf[:n])}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		res.Verdict = Delivered
		return res
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500 && code < 600:
		res.Verdict = Retry
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.RetryAfter = retryAfter(resp.Header, time.Now())
		}
	case code == http.StatusGone:
		res.Verdict = Gone
	case code >= 300 && code < 400:
		res.Verdict = Reject
		loc := resp.Header.Get("Location")
		if len(loc) > 256 {
			loc = loc[:256] + "…"
		}
		res.Err = fmt.Errorf("receiver answered %s: redirects are not followed; register the final URL (Location: %q)", statusText(code), loc)
		return res
	default:
		res.Verdict = Reject
	}
	res.Err = fmt.Errorf("receiver answered %s", statusText(code))
	return res
}

// request builds the signed POST of m.
func (w *Webhook) request(ctx context.Context, m *Message) (*http.Request, error) {
	u, err := url.Parse(m.Target)
	if err != nil {
		return nil, fmt.Errorf("webhook target: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook target %q: want an http or https URL", u.Redacted())
	}
	if len(m.Secrets) == 0 {
		return nil, errors.New("webhook: no signing secret")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Target, bytes.NewReader(m.Body))
	if err != nil {
		return nil, fmt.Errorf("webhook request: %w", err)
	}
	for k, v := range m.Headers {
		if !validHeaderName(k) || !validHeaderValue(v) {
			return nil, fmt.Errorf("webhook header %q: invalid name or value", k)
		}
		if connectionHeader(k) {
			continue
		}
		req.Header.Set(k, v)
	}
	// Set last: the subscriber's headers cannot replace these.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	ts := m.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	webhook.SetHeaders(req.Header, m.Secrets, m.ID, ts, m.Body)
	return req, nil
}

// transportResult classifies an attempt that got no response.
func transportResult(err error) Result {
	if errors.Is(err, netguard.ErrForbidden) {
		return Result{Verdict: Reject, Err: err}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return Result{Verdict: Retry, Err: fmt.Errorf("timeout: %w", err)}
	}
	// Connection refused or reset, DNS failures, TLS errors, a cancelled
	// context: all may pass.
	return Result{Verdict: Retry, Err: err}
}

// retryAfter parses Retry-After: delta-seconds, or an HTTP-date measured
// from the response's Date header (the receiver's clock) when it has one,
// else from now. It returns 0 when absent, unparsable or in the past.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > math.MaxInt64/uint64(time.Second) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	if d := at.Sub(now); d > 0 {
		return d
	}
	return 0
}

// responseText turns the recorded prefix of a response body into valid
// UTF-8: a character cut by the limit is dropped, invalid bytes too, and
// surrounding white space trimmed.
func responseText(b []byte) string {
	// Drop a rune cut short at the end (at most utf8.UTFMax-1 bytes).
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if r := b[len(b)-i]; utf8.RuneStart(r) {
			if !utf8.FullRune(b[len(b)-i:]) {
				b = b[:len(b)-i]
			}
			break
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// connectionHeader reports headers that manage the connection or framing,
// which the client sets itself.
func connectionHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Upgrade", "Te", "Trailer", "Proxy-Connection", "Proxy-Authorization", "Expect":
		return true
	}
	return false
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue reports whether v has no control characters other than
// horizontal tab.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
