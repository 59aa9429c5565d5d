// Package client is the Go client of the EventSync HTTP API. It sends
// events (with ids fixed before the first try, in batches, compressed, and
// retried on 429, 503 and network errors), reads them back by cursor,
// session and id, follows them live over Server-Sent Events, reads them
// through durable consumers with explicit acks, and manages subscriptions
// and producers.
//
// A Client is safe for concurrent use. Every method takes a context, which
// bounds the whole call including its retries.
package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Defaults of a Client.
const (
	DefaultMaxAttempts = 5
	DefaultBackoff     = 200 * time.Millisecond
	// MaxBackoff caps the wait between two tries (Retry-After aside).
	MaxBackoff = 30 * time.Second
	// MaxBatch is the most events the server takes in one request.
	MaxBatch = 1000
	// DefaultMaxBatchBytes is the server's default body limit (1 MiB),
	// which applies to the body once decompressed.
	DefaultMaxBatchBytes = 1 << 20
	// JWTLifetime is how long each signed token is valid.
	JWTLifetime = 5 * time.Minute
)

// minGzip is the smallest body worth compressing.
const minGzip = 1 << 10

// Client calls one EventSync server. Create it with New.
type Client struct {
	base          *url.URL
	hc            *http.Client
	authorize     func() (string, error) // producer credential; nil: none
	adminToken    string
	maxAttempts   int
	backoff       time.Duration
	gzip          bool
	maxBatchBytes int
	now           func() time.Time
	// sleep waits d or until ctx is done; tests replace it to record waits.
	sleep func(ctx context.Context, d time.Duration) error
}

// Option configures a Client.
type Option func(*Client) error

// New returns a client of the EventSync server at baseURL
// (http://127.0.0.1:8080). By default it sends no credentials, tries each
// request up to DefaultMaxAttempts times and gzips request bodies of 1 KiB
// or more.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("base url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("base url %q: want http:// or https:// and a host", baseURL)
	}
	c := &Client{
		base:          u,
		maxAttempts:   DefaultMaxAttempts,
		backoff:       DefaultBackoff,
		gzip:          true,
		maxBatchBytes: DefaultMaxBatchBytes,
		now:           time.Now,
		sleep:         sleep,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: transport()}
	}
	return c, nil
}

// transport is http.DefaultTransport with more idle connections per host:
// Go's default of 2 halves the throughput of concurrent senders.
func transport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = 32
	return t
}

// WithBasic authenticates as a producer with its id and password.
func WithBasic(producerID, password string) Option {
	return func(c *Client) error {
		v := "Basic " + base64.StdEncoding.EncodeToString([]byte(producerID+":"+password))
		c.authorize = func() (string, error) { return v, nil }
		return nil
	}
}

// WithAPIKey authenticates as a producer with an API key (esk_…).
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		v := "Bearer " + key
		c.authorize = func() (string, error) { return v, nil }
		return nil
	}
}

// WithJWT authenticates as a producer with HS256 tokens signed by its
// jwt_secret (base64url, as the admin API shows it). Every request, and
// every retry of one, carries a fresh token (the server accepts each jti
// once) valid for JWTLifetime.
func WithJWT(producerID, secret string) Option {
	return func(c *Client) error {
		key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(secret, "="))
		if err != nil || len(key) == 0 {
			return errors.New("jwt secret: want the base64url jwt_secret of the producer")
		}
		c.authorize = func() (string, error) {
			now := c.now()
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": producerID,
				"iat": now.Unix(),
				"exp": now.Add(JWTLifetime).Unix(),
				"jti": uuid.NewString(),
				"gty": "client-credentials",
			})
			s, err := tok.SignedString(key)
			if err != nil {
				return "", fmt.Errorf("sign token: %w", err)
			}
			return "Bearer " + s, nil
		}
		return nil
	}
}

// WithAdminToken sets the server's admin token, which the admin endpoints
// (producers) need. It is sent to those endpoints only.
func WithAdminToken(token string) Option {
	return func(c *Client) error {
		c.adminToken = token
		return nil
	}
}

// WithHTTPClient sends requests with hc. Leave its Timeout at zero for
// Tail and Next, which hold requests open; contexts bound calls instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("http client is nil")
		}
		c.hc = hc
		return nil
	}
}

// WithRetry tries each request up to maxAttempts times (1: no retries),
// waiting about backoff before the second try and twice as long before each
// further one (with jitter, at most MaxBackoff), or what Retry-After asks.
func WithRetry(maxAttempts int, backoff time.Duration) Option {
	return func(c *Client) error {
		if maxAttempts < 1 || backoff < 0 {
			return fmt.Errorf("retry: want at least 1 attempt and a non-negative backoff, got %d and %s", maxAttempts, backoff)
		}
		c.maxAttempts, c.backoff = maxAttempts, backoff
		return nil
	}
}

// WithGzip turns compression of the bodies Send posts on (the default) or
// off; bodies under 1 KiB are never compressed.
func WithGzip(on bool) Option {
	return func(c *Client) error {
		c.gzip = on
		return nil
	}
}

// WithMaxBatchBytes sets the largest request body Send builds (before
// compression): the server's INGEST_MAX_BODY when it is not the default
// 1 MiB. A single event larger than that is sent on its own.
func WithMaxBatchBytes(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return fmt.Errorf("max batch bytes: want at least 1, got %d", n)
		}
		c.maxBatchBytes = n
		return nil
	}
}

// request is one API call.
type request struct {
	method string
	path   string // escaped
	query  url.Values
	body   any // encoded as JSON unless it is []byte (sent as is)
	admin  bool
	// compress allows gzip (when enabled): only ingest reads gzipped
	// bodies.
	compress bool
	// idempotent requests are retried after network errors and 502/504
	// too; others only after 429 and 503, which the server answers before
	// doing anything.
	idempotent bool
	once       bool // no retries: the caller has its own
	accept     string
	header     http.Header
	// adjust edits an error answer before it is wrapped.
	adjust func(*Error)
}

// do sends a request, retrying as the client is configured, and decodes a
// 2xx JSON answer into out (when out is not nil).
func (c *Client) do(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", r.method, r.path, err)
	}
	return nil
}

// send sends a request, retrying as the client is configured, and returns
// the first 2xx response; its body is the caller's to close. Other answers
// are an *Error, network errors wrapped as they come.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	body, gzipped, err := c.encode(r.body, r.compress)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	maxAttempts := c.maxAttempts
	if r.once {
		maxAttempts = 1
	}
	for attempt := 1; ; attempt++ {
		authorization, err := c.authorization(r)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		resp, err := c.try(ctx, r, body, gzipped, authorization)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		case err != nil:
			if !r.idempotent || attempt >= maxAttempts {
				return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
			}
		case resp.StatusCode/100 == 2:
			return resp, nil
		default:
			e := readError(resp, c.now())
			resp.Body.Close()
			if r.adjust != nil {
				r.adjust(e)
			}
			retry := e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable ||
				r.idempotent && e.Temporary()
			if !retry || attempt >= maxAttempts {
				return nil, fmt.Errorf("%s %s: %w", r.method, r.path, e)
			}
			err, wait = e, e.RetryAfter
		}
		if wait == 0 {
			wait = c.backoffFor(attempt)
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%s %s: %w (last try: %w)", r.method, r.path, serr, err)
		}
	}
}

// authorization returns the Authorization value of a request, signed
// anew for every try.
func (c *Client) authorization(r request) (string, error) {
	switch {
	case r.admin && c.adminToken != "":
		return "Bearer " + c.adminToken, nil
	case !r.admin && c.authorize != nil:
		return c.authorize()
	}
	return "", nil
}

// try sends one try of a request.
func (c *Client) try(ctx context.Context, r request, body []byte, gzipped bool, authorization string) (*http.Response, error) {
	u := *c.base
	p, err := url.PathUnescape(r.path)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	// RawPath keeps escapes such as %2F in an id as they were made.
	u.Path, u.RawPath = c.base.Path+p, c.base.EscapedPath()+r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return c.hc.Do(req)
}

// encode returns the body as sent and whether it is gzipped.
func (c *Client) encode(body any, compress bool) ([]byte, bool, error) {
	var b []byte
	switch v := body.(type) {
	case nil:
		return nil, false, nil
	case []byte:
		b = v
	default:
		var err error
		if b, err = marshal(v); err != nil {
			return nil, false, fmt.Errorf("encode body: %w", err)
		}
	}
	if !compress || !c.gzip || len(b) < minGzip {
		return b, false, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(b) / 4)
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, false, fmt.Errorf("gzip body: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, false, fmt.Errorf("gzip body: %w", err)
	}
	return buf.Bytes(), true, nil
}

// marshal encodes v as JSON without escaping <, > and &: tag patterns
// such as TEST.> stay readable on the wire.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// backoffFor returns the wait after the given failed attempt (1-based):
// backoff·2^(attempt-1), capped at MaxBackoff, of which a random half is
// taken off so that many clients do not retry in step.
func (c *Client) backoffFor(attempt int) time.Duration {
	d := c.backoff
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewID returns a new event id (a UUIDv7: unique and ordered by time).
// Give events ids before sending them to retry a failed Send safely.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil { // only if the system's random source fails
		return uuid.NewString()
	}
	return id.String()
}
