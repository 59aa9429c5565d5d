package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
)

// The hostile corpus (testdata/hostile/*.jsonl, one case a line) is a set
// of requests that ingest must refuse, each with the answer it must get.
// The cases under testdata/hostile/auth/ attack the credentials; they are
// loaded when the ingest under test authenticates producers.
//
// With authentication on, the registry must hold these producers (see
// newHostileIngest), and every case that sets no credentials of its own is
// sent with hostileProducer's Basic credentials:
//
//	hostileProducer  enabled, tags [">"], hostilePassword, hostileAPIKey, hostileJWTSecret
//	hostileDisabled  disabled, tags [">"], hostilePassword
//	hostileNarrow    enabled, tags ["ALLOWED.*"], hostilePassword; owns the category OWNED
//
// hostileProducer sends a valid dry run after every case, so it needs a
// rate without limit (Rate{PerSecond: -1}) or a very large burst, and JWTs
// need a replay store.
const (
	hostileProducer  = "prd_hostile"
	hostileDisabled  = "prd_hostile_disabled"
	hostileNarrow    = "prd_hostile_narrow"
	hostilePassword  = "hostile-corpus-password"
	hostileAPIKey    = "esk_aG9zdGlsZS1jb3JwdXMtYXBpLWtleS0wMDAwMDAwMCE" // 32 bytes in base64url
	hostileJWTSecret = "aG9zdGlsZS1jb3JwdXMtand0LXNlY3JldC0wMDAwMDA"     // base64url of 32 bytes
)

// hostileCase is one request of the corpus and the answer it must get.
// At most one of Body, JSON, BodyBase64 and BodyGen gives the body.
type hostileCase struct {
	Name string `json:"name"`
	// Method defaults to POST, Path to /v1/events.
	Method string `json:"method"`
	Path   string `json:"path"`
	// Headers are added to the defaults (Content-Type: application/json,
	// and Basic credentials with auth on); null removes a default.
	// Values may name the credentials above as ${PRODUCER},
	// ${PASSWORD}, ${APIKEY}, ${DISABLED}, ${NARROW}.
	Headers map[string]*string `json:"headers"`
	// Body is sent as is; with Hex, every <XX> in it is the byte 0xXX
	// (for invalid UTF-8 and control bytes).
	Body *string `json:"body"`
	Hex  bool    `json:"hex"`
	// JSON is a JSON value sent byte for byte as written in the corpus
	// (duplicate keys and all).
	JSON json.RawMessage `json:"json"`
	// BodyBase64 is a body of arbitrary bytes.
	BodyBase64 string `json:"body_base64"`
	// BodyGen describes a body too large to keep in the repository.
	BodyGen *hostileBodyGen `json:"body_gen"`
	// Basic sends "Authorization: Basic base64(Basic)", after the
	// substitutions of header values.
	Basic *string `json:"basic"`
	// JWT sends "Authorization: Bearer <the token>".
	JWT *hostileJWT `json:"jwt"`

	// Status is the 4xx the request must get.
	Status int `json:"status"`
	// Detail must be part of the problem's detail.
	Detail string `json:"detail"`
	// Errors must each be among the problem's errors: the same pointer,
	// a detail that contains this one.
	Errors []problem.FieldError `json:"errors"`
	// Challenge must be part of the WWW-Authenticate header (a 401 must
	// have one in any case).
	Challenge string `json:"challenge"`
}

// hostileBodyGen generates a body: Template with $GEN replaced by Open×Depth,
// Inner, Close×Depth when Depth is set, else by Repeat written Times
// times, joined by Sep.
type hostileBodyGen struct {
	Template string `json:"template"`
	Repeat   string `json:"repeat"`
	Times    int    `json:"times"`
	Sep      string `json:"sep"`
	Open     string `json:"open"`
	Close    string `json:"close"`
	Inner    string `json:"inner"`
	Depth    int    `json:"depth"`
}

func (g *hostileBodyGen) generate() []byte {
	var part string
	if g.Depth > 0 {
		part = strings.Repeat(g.Open, g.Depth) + g.Inner + strings.Repeat(g.Close, g.Depth)
	} else {
		items := make([]string, g.Times)
		for i := range items {
			items[i] = g.Repeat
		}
		part = strings.Join(items, g.Sep)
	}
	tmpl := g.Template
	if tmpl == "" {
		tmpl = "$GEN"
	}
	return []byte(strings.Replace(tmpl, "$GEN", part, 1))
}

// hostileJWT describes a bearer JWT. Numbers in Claims may be written as
// "now", "now+N" or "now-N" (seconds from the time of the request);
// strings take the substitutions of header values.
type hostileJWT struct {
	// Header defaults to {"alg":"HS256","typ":"JWT"}; it is sent as
	// written.
	Header json.RawMessage `json:"header"`
	Claims map[string]any  `json:"claims"`
	// Sign is HS256 (default), HS384, HS512 or none (an empty signature).
	Sign string `json:"sign"`
	// Key is "producer" (default: hostileJWTSecret decoded), "wrong" (a
	// key nobody has) or "text" (the secret's text, not its bytes).
	Key string `json:"key"`
	// Signature replaces the signature segment when set.
	Signature *string `json:"signature"`
}

func (j *hostileJWT) token(t *testing.T, now time.Time) string {
	t.Helper()
	header := []byte(j.Header)
	if len(header) == 0 {
		header = []byte(`{"alg":"HS256","typ":"JWT"}`)
	}
	claims := make(map[string]any, len(j.Claims))
	for k, v := range j.Claims {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "now") {
			off := int64(0)
			if rest := s[len("now"):]; rest != "" {
				n, err := strconv.ParseInt(strings.TrimPrefix(rest, "+"), 10, 64)
				if err != nil {
					t.Fatalf("claim %s = %q: %v", k, s, err)
				}
				off = n
			}
			v = now.Unix() + off
		} else if ok {
			v = hostileCredentials(s)
		}
		claims[k] = v
	}
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	if j.Signature != nil {
		return signed + "." + *j.Signature
	}
	key, err := enc.DecodeString(hostileJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	switch j.Key {
	case "", "producer":
	case "wrong":
		key = []byte("a key that no producer of the hostile corpus has")
	case "text":
		key = []byte(hostileJWTSecret)
	default:
		t.Fatalf("jwt key %q: want producer, wrong or text", j.Key)
	}
	var h func() hash.Hash
	switch j.Sign {
	case "", "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	case "none":
		return signed + "."
	default:
		t.Fatalf("jwt sign %q: want HS256, HS384, HS512 or none", j.Sign)
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

// hostileCredentials replaces the names of the hostile credentials in s.
func hostileCredentials(s string) string {
	return strings.NewReplacer(
		"${PRODUCER}", hostileProducer,
		"${DISABLED}", hostileDisabled,
		"${NARROW}", hostileNarrow,
		"${PASSWORD}", hostilePassword,
		"${APIKEY}", hostileAPIKey,
	).Replace(s)
}

// hostileHex replaces every <XX> in s with the byte 0xXX.
func hostileHex(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 || i+3 >= len(s) || s[i+3] != '>' {
			return append(out, s...)
		}
		b, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			out = append(out, s[:i+1]...)
			s = s[i+1:]
			continue
		}
		out = append(append(out, s[:i]...), b...)
		s = s[i+4:]
	}
}

// body returns the request body of c.
func (c *hostileCase) body(t *testing.T) []byte {
	t.Helper()
	switch {
	case c.Body != nil && c.Hex:
		return hostileHex(t, *c.Body)
	case c.Body != nil:
		return []byte(*c.Body)
	case c.JSON != nil:
		return c.JSON
	case c.BodyBase64 != "":
		b, err := base64.StdEncoding.DecodeString(c.BodyBase64)
		if err != nil {
			t.Fatalf("body_base64: %v", err)
		}
		return b
	case c.BodyGen != nil:
		return c.BodyGen.generate()
	}
	return nil
}

// check reports what is wrong with the case itself.
func (c *hostileCase) check() error {
	bodies := 0
	for _, set := range []bool{c.Body != nil, c.JSON != nil, c.BodyBase64 != "", c.BodyGen != nil} {
		if set {
			bodies++
		}
	}
	switch {
	case c.Name == "":
		return fmt.Errorf("no name")
	case c.Status < 400 || c.Status > 499:
		return fmt.Errorf("status %d: the corpus holds only requests to refuse with a 4xx", c.Status)
	case bodies > 1:
		return fmt.Errorf("%d bodies; give at most one", bodies)
	case c.Detail == "" && len(c.Errors) == 0:
		return fmt.Errorf("no detail or errors to expect")
	}
	return nil
}

// hostileLoad reads the cases of every *.jsonl file in dir, named
// file/name.
func hostileLoad(t *testing.T, dir string) []hostileCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.jsonl files in %s", dir)
	}
	var cases []hostileCase
	seen := make(map[string]bool)
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			var c hostileCase
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s:%d: %v", file, n, err)
			}
			if err := c.check(); err != nil {
				t.Fatalf("%s:%d: case %q: %v", file, n, c.Name, err)
			}
			c.Name = strings.TrimSuffix(filepath.Base(file), ".jsonl") + "/" + c.Name
			if seen[c.Name] {
				t.Fatalf("%s:%d: case %q is there twice", file, n, c.Name)
			}
			seen[c.Name] = true
			cases = append(cases, c)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return cases
}

// newHostileIngest runs ingest on a real JetStream behind the production
// HTTP server limits and a real access gate, as a process routes it, and
// returns its base URL, a function counting the messages in the EVENTS
// stream, and whether producers must authenticate (they do: the gate's
// registry holds the producers the corpus names, see above). The handler
// is wrapped so that a panic fails the test rather than only closing a
// connection.
func newHostileIngest(t *testing.T) (baseURL string, published func() int, authEnabled bool) {
	t.Helper()
	ns := natstest.Start(t)
	nc := ns.Connect(t)
	js, err := stream.JetStream(nc, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	gate, trust := hostileTrust(t, js)
	svc, err := New(Config{PublishTimeout: time.Second}, nc, js, trust, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(hostilePanics(t), httpserve.RequestID, gate.Middleware(r))
	svc.Mount(r)
	srv, err := httpserve.ListenWith("127.0.0.1:0", r, httpserve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	published = func() int {
		s, err := js.Stream(t.Context(), stream.Events)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return int(info.State.Msgs)
	}
	return "http://" + srv.Addr(), published, true
}

// hostileTrust is the real trust machinery (gate, registry, authenticator,
// owners, replay store, rate limits) with the corpus' producers written
// straight into the registry's bucket, because their secrets must be
// known. The gate does not throttle failed authentications: the corpus
// fails on purpose, many times.
func hostileTrust(t *testing.T, js jetstream.JetStream) (*access.Gate, Trust) {
	t.Helper()
	ctx := t.Context()
	hash, err := bcrypt.GenerateFromPassword([]byte(hostilePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	gate := startGate(t, js, access.Config{Auth: access.AuthClients}, func(*access.Gate) {
		kv, err := js.KeyValue(ctx, stream.ProducersBucket)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		for _, p := range []producer.Producer{
			{ID: hostileProducer, Name: "hostile", Enabled: true, Tags: []string{">"}, Rate: producer.Rate{PerSecond: -1},
				Credentials: producer.Credentials{PasswordHash: string(hash), JWTSecret: hostileJWTSecret,
					APIKeys: []producer.APIKey{{Prefix: hostileAPIKey[:12], SHA256: producer.HashKey(hostileAPIKey), CreatedAt: now}}}},
			{ID: hostileDisabled, Name: "hostile-disabled", Enabled: false, Tags: []string{">"}, Credentials: producer.Credentials{PasswordHash: string(hash)}},
			{ID: hostileNarrow, Name: "hostile-narrow", Enabled: true, Tags: []string{"ALLOWED.*", "OWNED.*"}, Credentials: producer.Credentials{PasswordHash: string(hash)}},
		} {
			p.CreatedAt = now
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, p.ID, b); err != nil {
				t.Fatal(err)
			}
		}
	})
	reg := gate.Registry()
	if _, err := reg.Claim(ctx, "OWNED", hostileNarrow); err != nil {
		t.Fatal(err)
	}
	// The records were written to the bucket: the registry's watch loads
	// them.
	for _, id := range []string{hostileProducer, hostileDisabled, hostileNarrow} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, ok := reg.Get(id); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("producer %s not loaded after 10s", id)
			}
		}
	}
	return gate, Trust{
		Auth:    gate.Authenticator(),
		Clients: reg,
		Owners:  reg,
		Limits:  ratelimit.New(ratelimit.Rate{}),
	}
}

// hostilePanics recovers a handler's panic, answers 500 and fails the test.
func hostilePanics(t *testing.T) func(http.Handler) http.Handler {
	var panics atomic.Int64
	t.Cleanup(func() {
		if n := panics.Load(); n > 0 {
			t.Errorf("ingest panicked %d times", n)
		}
	})
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					panics.Add(1)
					t.Errorf("%s %s panicked: %v", r.Method, r.URL, v)
					w.WriteHeader(http.StatusInternalServerError)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// TestHostileRequests sends every case of the corpus and checks that it
// gets its 4xx problem, that ingest keeps answering, and that nothing
// reaches JetStream.
func TestHostileRequests(t *testing.T) {
	baseURL, published, authEnabled := newHostileIngest(t)
	cases := hostileLoad(t, filepath.Join("testdata", "hostile"))
	if authEnabled {
		cases = append(cases, hostileLoad(t, filepath.Join("testdata", "hostile", "auth"))...)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if n := published(); n != 0 {
		t.Fatalf("EVENTS holds %d messages before the corpus; want 0", n)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			status, header, body := hostileSend(t, client, baseURL, &c, authEnabled)
			hostileCheck(t, &c, status, header, body)
			if n := published(); n != 0 {
				t.Fatalf("EVENTS holds %d messages after %q; want 0", n, c.Name)
			}
			// Ingest still answers, and still accepts a good event.
			good := hostileCase{
				Path: "/v1/events?dry_run=true",
				JSON: json.RawMessage(`{"tag":"HOSTILE.ALIVE","message":"still answering"}`),
			}
			if status, _, body := hostileSend(t, client, baseURL, &good, authEnabled); status != http.StatusOK {
				t.Fatalf("a valid dry run after %q = %d %s; want 200", c.Name, status, body)
			}
		})
	}
	// The count above is not blind: a good event shows up in it.
	good := hostileCase{JSON: json.RawMessage(`{"tag":"HOSTILE.ALIVE","message":"published"}`)}
	if status, _, body := hostileSend(t, client, baseURL, &good, authEnabled); status != http.StatusAccepted {
		t.Fatalf("a valid event after the corpus = %d %s; want 202", status, body)
	}
	if n := published(); n != 1 {
		t.Fatalf("EVENTS holds %d messages after one valid event; want 1", n)
	}
}

// hostileSend sends c and returns the answer.
func hostileSend(t *testing.T, client *http.Client, baseURL string, c *hostileCase, authEnabled bool) (int, http.Header, []byte) {
	t.Helper()
	method, path := c.Method, c.Path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = "/v1/events"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, bytes.NewReader(c.body(t)))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authEnabled {
		req.Header.Set("Authorization", hostileBasic(hostileProducer+":"+hostilePassword))
	}
	for k, v := range c.Headers {
		if v == nil {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, hostileCredentials(*v))
	}
	if c.Basic != nil {
		req.Header.Set("Authorization", hostileBasic(hostileCredentials(*c.Basic)))
	}
	if c.JWT != nil {
		req.Header.Set("Authorization", "Bearer "+c.JWT.token(t, time.Now()))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (did ingest stop answering?)", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	return resp.StatusCode, resp.Header, b
}

// hostileBasic is the Authorization value of Basic credentials.
func hostileBasic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

// hostileCheck checks the answer to c: its status, a problem with a
// detail, and the details and pointers c expects.
func hostileCheck(t *testing.T, c *hostileCase, status int, header http.Header, body []byte) {
	t.Helper()
	if status >= 500 {
		t.Fatalf("status = %d %s; want %d, never a 5xx", status, body, c.Status)
	}
	if status != c.Status {
		t.Errorf("status = %d %s; want %d", status, body, c.Status)
	}
	if ct := header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q (body %q); want %q", ct, body, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode the problem %s: %v", body, err)
	}
	if p.Status != status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem %s; want status %d, a type, a title and a detail", body, status)
	}
	if !strings.Contains(p.Detail, c.Detail) {
		t.Errorf("problem detail %q; want it to contain %q", p.Detail, c.Detail)
	}
	for _, want := range c.Errors {
		found := false
		for _, got := range p.Errors {
			if got.Pointer == want.Pointer && strings.Contains(got.Detail, want.Detail) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("problem errors %+v; want one at %q containing %q", p.Errors, want.Pointer, want.Detail)
		}
	}
	if challenge := header.Get("WWW-Authenticate"); status == http.StatusUnauthorized && challenge == "" {
		t.Errorf("a 401 without WWW-Authenticate")
	} else if !strings.Contains(challenge, c.Challenge) {
		t.Errorf("WWW-Authenticate = %q; want it to contain %q", challenge, c.Challenge)
	}
}
