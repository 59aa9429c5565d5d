package deploy

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// TestNATSAuthorization proves the NATS users of k8s/base/nats-users.conf
// (the same file serves docker compose and Kubernetes) by running EventSync
// on them. A NATS server is started in the test from the compose stack's
// nats.conf, parsed by nats-server with the compose environment (the test's
// passwords); every service binary, built from the repository, runs with
// its compose environment (its NATS_USER and NATS_PASSWORD, the admin
// token, the secrets key, the metrics listener) against it.
//
//   - anonymous clients and wrong passwords are refused;
//   - every service becomes ready, with its access gate (the client
//     registry, the jti and tokens buckets), and the pipeline works end to
//     end through each service's own user: clients and schemas (ingest's
//     buckets), events over HTTP (API key and JWT, whose jti lands in its
//     bucket) and over NATS (eventsync.ingest), stored by the store and
//     read back by query, an undecodable event and an undecodable delivery
//     attempt dead-lettered by the store, webhook deliveries and dead
//     letters by the notifier, the delivery audit, replays and dead-letter
//     re-drives, a named consumer and the live tail of query, a
//     subscription deleted again;
//   - query and the notifier authenticate: an anonymous request is refused
//     (401), the admin token is accepted, and so are a client's API key and
//     JWT (the client registry and the jti bucket through their own users),
//     and query's access tokens for the live tail (the tokens bucket);
//   - every service's /metrics answers on its metrics listener without
//     credentials, and not on its API port;
//   - each user can create and update every stream and bucket
//     (stream.EnsureAll, which every service runs at start-up) on an empty
//     server, so start order does not matter;
//   - not one permission violation is logged meanwhile;
//   - each user is refused what it does not need: only ingest writes the
//     client registry, only query writes access tokens, ingest cannot
//     consume EVENTS, only ingest publishes events, query and the notifier
//     cannot touch the store's consumer, and so on.
//
// The pipeline needs ClickHouse (chtest: EVENTSYNC_TEST_CLICKHOUSE_URL);
// without it that part skips locally and fails under CI=true, and the
// rest runs with ingest and the notifier only.
func TestNATSAuthorization(t *testing.T) {
	env := baseEnv()
	env["EVENTSYNC_NOTIFY_ALLOW_NETS"] = "127.0.0.0/8" // the test's webhook receivers
	p, err := loadCompose(t, env)
	if err != nil {
		t.Fatal(err)
	}
	srv, log := startComposeNATS(t, p.Services["nats"])
	bins := buildServices(t)
	run := func(t *testing.T, name string, extra map[string]string) serviceURLs {
		t.Helper()
		return runService(t, bins[name], p.Services[name], srv.ClientURL(), extra)
	}

	t.Run("anonymous", func(t *testing.T) {
		if _, err := connect(srv, "", ""); !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("connect without a user = %v; want %v", err, nats.ErrAuthorization)
		}
		for _, name := range binaryNames() {
			if _, err := connect(srv, name, "wrong"+name); !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect as %s with a wrong password = %v; want %v", name, err, nats.ErrAuthorization)
			}
		}
	})

	// ingest and the notifier need nothing but NATS. A default rate limit
	// far above what the test sends makes ingest use the producers' shared
	// token buckets (its bucket ratelimit).
	ingest := run(t, "ingest", map[string]string{"INGEST_RATE": "1000"})
	notifier := run(t, "notifier", nil)

	t.Run("pipeline", func(t *testing.T) {
		dsn := chtest.DSN(t)
		store := run(t, "store", map[string]string{"CLICKHOUSE_URL": dsn})
		query := run(t, "query", map[string]string{"CLICKHOUSE_URL": dsn})
		pipeline(t, srv, ingest.api, query.api, notifier.api)
		t.Run("gate", func(t *testing.T) { gate(t, ingest.api, query.api, notifier.api) })
		// The metrics read JetStream too (the notifier's pending gauges).
		t.Run("metrics", func(t *testing.T) {
			for _, u := range []serviceURLs{ingest, store, query, notifier} {
				metrics(t, u)
			}
		})
	})

	// Whichever service starts first creates the streams and buckets;
	// here ingest did. Each user must be able to, on an empty server.
	t.Run("each user creates the streams and buckets", func(t *testing.T) {
		for _, name := range binaryNames() {
			t.Run(name, func(t *testing.T) {
				empty, log := startComposeNATS(t, p.Services["nats"])
				_, js := connectAs(t, empty, name)
				for range 2 { // create, then update
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					err := stream.EnsureAll(ctx, js, stream.Config{})
					cancel()
					if err != nil {
						t.Fatalf("stream.EnsureAll as %s: %v", name, err)
					}
				}
				for _, l := range log.violations() {
					t.Errorf("nats-server: %s", l)
				}
			})
		}
	})

	t.Run("no violations", func(t *testing.T) {
		// Late acks and deletes settle first.
		time.Sleep(500 * time.Millisecond)
		for _, l := range log.violations() {
			t.Errorf("nats-server: %s", l)
		}
	})

	t.Run("denied", func(t *testing.T) { denied(t, srv, log) })
}

// Test users added to the rendered authorization: an inspector with every
// permission, to look at streams from outside, and a NATS producer like
// those GET /v1/producers/nats-config renders.
const (
	inspectorUser = "test-inspector"
	producerUser  = "test-producer"
	testPassword  = "testPassword1"
)

// startComposeNATS starts a NATS server from the configuration the compose
// service s runs with (its users and permissions as nats-server parses
// them), on a free loopback port with JetStream in a temporary directory,
// plus the test users. It logs into log.
func startComposeNATS(t *testing.T, s types.ServiceConfig) (*server.Server, *natsLog) {
	t.Helper()
	_, opts := natsConfig(t, s)
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	opts.Users = append(opts.Users,
		&server.User{Username: inspectorUser, Password: testPassword},
		&server.User{Username: producerUser, Password: testPassword, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"eventsync.ingest"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX." + producerUser + ".>"}},
		}},
	)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server with %s's configuration: %v", s.Name, err)
	}
	log := &natsLog{}
	srv.SetLoggerV2(log, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready after 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		if t.Failed() {
			t.Logf("nats-server errors and warnings:\n%s", strings.Join(log.all(), "\n"))
		}
	})
	return srv, log
}

// natsLog keeps what nats-server logs as errors and warnings, among them
// every permission violation.
type natsLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *natsLog) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
}

func (l *natsLog) Noticef(string, ...any)         {}
func (l *natsLog) Debugf(string, ...any)          {}
func (l *natsLog) Tracef(string, ...any)          {}
func (l *natsLog) Warnf(format string, v ...any)  { l.add("[WRN]", format, v...) }
func (l *natsLog) Errorf(format string, v ...any) { l.add("[ERR]", format, v...) }
func (l *natsLog) Fatalf(format string, v ...any) { l.add("[FTL]", format, v...) }
func (l *natsLog) all() []string                  { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.lines) }
func (l *natsLog) violations() []string           { return l.matching("Violation") }
func (l *natsLog) matching(substr ...string) []string {
	var out []string
	for _, line := range l.all() {
		if !slices.ContainsFunc(substr, func(s string) bool { return !strings.Contains(line, s) }) {
			out = append(out, line)
		}
	}
	return out
}

// buildServices builds the four service binaries from the repository.
func buildServices(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	bins := map[string]string{}
	for _, name := range binaryNames() {
		args = append(args, "./services/"+name+"/cmd/"+name)
		bins[name] = filepath.Join(dir, name)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bins
}

// serviceURLs are the base URLs of a running service: its API and its
// metrics listener (empty without METRICS_ADDR).
type serviceURLs struct {
	api, metrics string
}

// runService runs a service binary with the environment compose gives it,
// pointed at the test's NATS server, on free loopback ports instead of the
// container's (the API's, and the metrics listener's when compose sets
// METRICS_ADDR), and with extra on top. It returns the base URLs once
// /readyz answers 200.
func runService(t *testing.T, bin string, s types.ServiceConfig, natsURL string, extra map[string]string) serviceURLs {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	env["NATS_URL"] = natsURL
	env["HTTP_ADDR"] = addr
	var urls serviceURLs
	if env["METRICS_ADDR"] != "" {
		metrics := freeAddr(t)
		env["METRICS_ADDR"] = metrics
		urls.metrics = "http://" + metrics
	}
	for k, v := range extra {
		env[k] = v
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	proc := start(t, bin, list)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	proc.waitHealthy(ctx, t, addr)
	urls.api = "http://" + addr
	return urls
}

// connect connects to srv as user (none when empty), failing at once.
func connect(srv *server.Server, user, password string, opts ...nats.Option) (*nats.Conn, error) {
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	opts = append(opts, nats.Name("test-"+user), nats.NoReconnect())
	return nats.Connect(srv.ClientURL(), opts...)
}

// connectAs connects as user with the password the compose stack gives it.
func connectAs(t *testing.T, srv *server.Server, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	password := testPassword
	if slices.Contains(binaryNames(), user) {
		password = natsPasswordEnv()["EVENTSYNC_NATS_"+strings.ToUpper(user)+"_PASSWORD"]
	}
	var opts []nats.Option
	if user == producerUser {
		opts = append(opts, nats.CustomInboxPrefix("_INBOX."+producerUser))
	}
	// Permission errors arrive asynchronously; the calls fail on their own.
	opts = append(opts, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	nc, err := connect(srv, user, password, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// pipeline drives EventSync through its HTTP APIs and checks that every
// service did its part, each with its own NATS user.
func pipeline(t *testing.T, srv *server.Server, ingestURL, queryURL, notifierURL string) {
	ctx := t.Context()
	admin := map[string]string{"Authorization": "Bearer test-admin-token"}
	_, inspect := connectAs(t, srv, inspectorUser)

	// ingest: a producer and a schema (the producers, owners and schemas
	// buckets, which it watches).
	var prod struct {
		ID          string `json:"id"`
		Credentials struct {
			APIKey    string `json:"api_key"`
			JWTSecret string `json:"jwt_secret"`
		} `json:"credentials"`
	}
	httpJSON(t, "POST", ingestURL+"/v1/producers", admin, `{"name":"auth-test","tags":["DEMO.*"],"owns":["DEMO"]}`, 201, &prod)
	httpJSON(t, "PUT", ingestURL+"/v1/schemas/DEMO", admin, `{"type":"object"}`, 0, nil)

	// notifier: two webhook subscriptions, one whose receiver refuses
	// every delivery (400: dead-lettered at once).
	okHook, badHook := newReceiver(t, http.StatusNoContent), newReceiver(t, http.StatusBadRequest)
	var okSub, badSub struct {
		ID string `json:"id"`
	}
	httpJSON(t, "POST", notifierURL+"/v1/subscriptions", admin, fmt.Sprintf(`{"url":%q,"tags":["DEMO.*"]}`, okHook.URL), 201, &okSub)
	httpJSON(t, "POST", notifierURL+"/v1/subscriptions", admin, fmt.Sprintf(`{"url":%q,"tags":["DEMO.*"]}`, badHook.URL), 201, &badSub)

	// Events: with an API key, with a JWT (its jti is remembered in the
	// jti bucket), and over NATS.
	apiKey := map[string]string{"Authorization": "Bearer " + prod.Credentials.APIKey}
	httpJSON(t, "POST", ingestURL+"/v1/events", apiKey, `{"tag":"DEMO.HELLO","message":"over http","session_id":"s-auth","data":{"via":"http"}}`, 202, nil)
	bearer := map[string]string{"Authorization": "Bearer " + signJWT(t, prod.ID, prod.Credentials.JWTSecret)}
	httpJSON(t, "POST", ingestURL+"/v1/events", bearer, `{"tag":"DEMO.HELLO","message":"with a jwt","session_id":"s-auth","data":{"via":"jwt"}}`, 202, nil)
	pnc, _ := connectAs(t, srv, producerUser)
	req := nats.NewMsg("eventsync.ingest")
	req.Header.Set("Authorization", "Bearer "+prod.Credentials.APIKey)
	req.Data = []byte(`{"tag":"DEMO.HELLO","message":"over nats","session_id":"s-auth","data":{"via":"nats"}}`)
	resp, err := pnc.RequestMsg(req, 10*time.Second)
	if err != nil || !strings.Contains(string(resp.Data), `"accepted":1`) {
		t.Fatalf("request eventsync.ingest = %v, %v; want an answer accepting the event", resp, err)
	}

	// The store dead-letters what it cannot decode (an event published
	// straight to EVENTS that is not JSON).
	broken, err := inspect.Publish(ctx, "events.DEMO.BROKEN", []byte("not json"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the store dead-letters the undecodable event", func() error {
		m, err := lastMsg(ctx, inspect, "DLQ", "dlq.store")
		if err != nil {
			return err
		}
		if got := m.Header.Get("EventSync-Stream-Seq"); got != fmt.Sprint(broken.Sequence) {
			return fmt.Errorf("dead letter of seq %s", got)
		}
		return nil
	})

	// The same for undecodable delivery attempts.
	if _, err := inspect.Publish(ctx, "deliveries.sub_broken", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the store dead-letters the undecodable delivery attempt", func() error {
		_, err := lastMsg(ctx, inspect, "DLQ", "dlq.store-deliveries")
		return err
	})

	// query reads the three events back from the store, up to the store
	// consumer's ack floor, which passed the dead-lettered one too.
	eventually(t, "query returns the stored events", func() error {
		var page struct {
			Events []struct {
				Message string `json:"message"`
			} `json:"events"`
			NextSince uint64 `json:"next_since"`
		}
		httpJSON(t, "GET", queryURL+"/v1/events?since=0&tag=DEMO.HELLO", admin, "", 200, &page)
		if len(page.Events) != 3 || page.NextSince < broken.Sequence {
			return fmt.Errorf("%d events, next_since %d", len(page.Events), page.NextSince)
		}
		return nil
	})

	// The notifier delivers to one receiver and dead-letters for the other;
	// the store keeps the attempts and query shows them.
	okHook.wait(t, 3)
	badHook.wait(t, 3)
	eventually(t, "the notifier dead-letters the refused deliveries", func() error {
		_, err := lastMsg(ctx, inspect, "DLQ", "dlq.notify."+badSub.ID+".DEMO.HELLO")
		return err
	})
	eventually(t, "query shows the delivery attempts", func() error {
		var audit struct {
			Deliveries []json.RawMessage `json:"deliveries"`
		}
		httpJSON(t, "GET", queryURL+"/v1/subscriptions/"+okSub.ID+"/deliveries?since=0", admin, "", 200, &audit)
		if len(audit.Deliveries) < 3 {
			return fmt.Errorf("%d attempts", len(audit.Deliveries))
		}
		return nil
	})

	// Replays and dead-letter re-drives go through REDRIVE.
	var queued struct {
		Queued int `json:"queued"`
	}
	httpJSON(t, "POST", notifierURL+"/v1/subscriptions/"+okSub.ID+"/replay", admin, `{"since_seq":0}`, 202, &queued)
	if queued.Queued != 3 {
		t.Errorf("replay queued %d events; want 3", queued.Queued)
	}
	okHook.wait(t, 6)
	httpJSON(t, "POST", notifierURL+"/v1/dead-letters/replay?subscription="+badSub.ID, admin, "", 202, &queued)
	if queued.Queued != 3 {
		t.Errorf("dead-letter re-drive queued %d events; want 3", queued.Queued)
	}
	badHook.wait(t, 6)

	// query: a named consumer (positions in the consumers bucket, reads
	// through short-lived consumers on EVENTS) and the live tail.
	httpJSON(t, "PUT", queryURL+"/v1/consumers/auth-test", admin, `{"tags":["DEMO.*"],"start":"all"}`, 0, nil)
	var read struct {
		Events []struct {
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}
	httpJSON(t, "GET", queryURL+"/v1/consumers/auth-test/events?limit=10", admin, "", 200, &read)
	if len(read.Events) == 0 {
		t.Fatal("the named consumer read no events")
	}
	httpJSON(t, "POST", queryURL+"/v1/consumers/auth-test/ack", admin, fmt.Sprintf(`{"seq":%d}`, read.Events[len(read.Events)-1].Seq), 200, nil)
	httpJSON(t, "GET", queryURL+"/v1/consumers", admin, "", 200, nil)
	httpJSON(t, "DELETE", queryURL+"/v1/consumers/auth-test", admin, "", 0, nil)
	tail(t, queryURL+"/v1/stream?tag=DEMO.*&since=0", admin)

	// A subscription deleted: its consumers go, its queued replays are purged.
	httpJSON(t, "DELETE", notifierURL+"/v1/subscriptions/"+badSub.ID, admin, "", 204, nil)
	eventually(t, "the deleted subscription's consumer is gone", func() error {
		if _, err := inspect.Consumer(ctx, "EVENTS", "notify-"+badSub.ID); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consumer notify-%s: %v", badSub.ID, err)
		}
		return nil
	})
}

// gate checks the access gate of query and the notifier, which ingest's
// shares: an anonymous request or a wrong token is refused (401), the
// admin token accepted; a client's API key and JWT are accepted too,
// checked against the client registry each service watches and the jti
// bucket, and query issues an access token (the tokens bucket) that opens
// the live tail. The client reads and subscribes only: query and the
// notifier are the only services that see it. Every bucket is used
// through the service's own NATS user ("no violations" checks that).
func gate(t *testing.T, ingestURL, queryURL, notifierURL string) {
	admin := map[string]string{"Authorization": "Bearer test-admin-token"}
	for _, u := range []string{queryURL + "/v1/events?since=0&tag=DEMO.HELLO", notifierURL + "/v1/subscriptions"} {
		httpJSON(t, "GET", u, nil, "", http.StatusUnauthorized, nil)
		httpJSON(t, "GET", u, map[string]string{"Authorization": "Bearer not-the-admin-token"}, "", http.StatusUnauthorized, nil)
		httpJSON(t, "GET", u, admin, "", http.StatusOK, nil)
	}

	// A client that may read and subscribe to DEMO.* and write nothing:
	// ingest never sees it.
	var c struct {
		ID          string `json:"id"`
		Credentials struct {
			APIKey    string `json:"api_key"`
			JWTSecret string `json:"jwt_secret"`
		} `json:"credentials"`
	}
	httpJSON(t, "POST", ingestURL+"/v1/producers", admin, `{"name":"gate-test","scopes":{"read":["DEMO.*"],"subscribe":["DEMO.*"]}}`, http.StatusCreated, &c)
	apiKey := map[string]string{"Authorization": "Bearer " + c.Credentials.APIKey}
	eventually(t, "query and the notifier know the client", func() error {
		for _, u := range []string{queryURL + "/v1/events?since=0&tag=DEMO.HELLO", notifierURL + "/v1/subscriptions"} {
			if code := status(t, "GET", u, apiKey); code != http.StatusOK {
				return fmt.Errorf("GET %s with the client's API key: %d", u, code)
			}
		}
		return nil
	})
	for _, u := range []string{queryURL + "/v1/events?since=0&tag=DEMO.HELLO", notifierURL + "/v1/subscriptions"} {
		jwt := map[string]string{"Authorization": "Bearer " + signJWT(t, c.ID, c.Credentials.JWTSecret)}
		httpJSON(t, "GET", u, jwt, "", http.StatusOK, nil)
		httpJSON(t, "GET", u, jwt, "", http.StatusUnauthorized, nil) // the same jti again
	}
	// Outside its scopes: 403.
	httpJSON(t, "POST", notifierURL+"/v1/dead-letters/replay", apiKey, "", http.StatusForbidden, nil)

	// An access token from query opens the live tail, nothing else.
	var tok struct {
		Token string `json:"token"`
	}
	httpJSON(t, "POST", queryURL+"/v1/tokens", apiKey, `{"read":["DEMO.*"],"expires_in":60}`, http.StatusCreated, &tok)
	tail(t, queryURL+"/v1/stream?tag=DEMO.*&since=0&access_token="+tok.Token, nil)
	httpJSON(t, "GET", queryURL+"/v1/events?since=0", map[string]string{"Authorization": "Bearer " + tok.Token}, "", http.StatusUnauthorized, nil)
	httpJSON(t, "GET", notifierURL+"/v1/subscriptions", map[string]string{"Authorization": "Bearer " + tok.Token}, "", http.StatusUnauthorized, nil)
}

// metrics checks that a service serves /metrics on its metrics listener
// without credentials, and not on its API port, where only the probes
// answer without them.
func metrics(t *testing.T, u serviceURLs) {
	t.Helper()
	if u.metrics == "" {
		t.Fatalf("%s: no metrics listener (METRICS_ADDR)", u.api)
	}
	httpJSON(t, "GET", u.metrics+"/metrics", nil, "", http.StatusOK, nil)
	httpJSON(t, "GET", u.metrics+"/readyz", nil, "", http.StatusOK, nil)
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer test-admin-token"}} {
		if code := status(t, "GET", u.api+"/metrics", h); code != http.StatusNotFound && code != http.StatusUnauthorized {
			t.Errorf("GET %s/metrics (credentials: %t) = %d; want 404 or 401: metrics only on the metrics listener", u.api, h != nil, code)
		}
	}
	httpJSON(t, "GET", u.api+"/readyz", nil, "", http.StatusOK, nil)
}

// status sends a request without a body and returns the status code.
func status(t *testing.T, method, url string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// denied checks that each user is refused what it does not need: every
// attempt fails, and nats-server logs it as a violation by that user.
func denied(t *testing.T, srv *server.Server, log *natsLog) {
	// kvGet reads a key the way nats.go does once bound to the bucket
	// (binding, $JS.API.STREAM.INFO.KV_<bucket>, is refused as well).
	kvGet := func(bucket string) func(context.Context, *nats.Conn, jetstream.JetStream) error {
		return func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_"+bucket+".$KV."+bucket+".any", nil)
			return err
		}
	}
	publish := func(subj string) func(context.Context, *nats.Conn, jetstream.JetStream) error {
		return func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, subj, []byte(`{"tag":"DEMO.FORGED","message":"forged"}`))
			return err
		}
	}
	subscribe := func(subj string) func(context.Context, *nats.Conn, jetstream.JetStream) error {
		return func(_ context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			sub, err := nc.SubscribeSync(subj)
			if err != nil {
				return err
			}
			_, err = sub.NextMsg(2 * time.Second) // the violation ends the subscription
			return err
		}
	}
	consume := func(stream string, cfg jetstream.ConsumerConfig) func(context.Context, *nats.Conn, jetstream.JetStream) error {
		return func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
			return err
		}
	}
	storeConsumer := jetstream.ConsumerConfig{Durable: "store", FilterSubject: "events.>", AckPolicy: jetstream.AckExplicitPolicy}
	tests := []struct {
		user, what string
		do         func(context.Context, *nats.Conn, jetstream.JetStream) error
		violation  string // what nats-server reports
	}{
		// The client registry: every service reads it, only ingest writes.
		{"store", "write a client", publish("$KV.producers.prd_forged"), `Publish Violation - Subject "$KV.producers.prd_forged"`},
		{"store", "subscribe to the client registry's subjects", subscribe("$KV.producers.>"), `Subscription Violation - Subject "$KV.producers.>"`},
		{"store", "issue an access token", publish("$KV.tokens.forged"), `Publish Violation - Subject "$KV.tokens.forged"`},
		{"store", "publish events", publish("events.DEMO.FORGED"), `Publish Violation - Subject "events.DEMO.FORGED"`},
		{"notifier", "write a client", publish("$KV.producers.prd_forged"), `Publish Violation - Subject "$KV.producers.prd_forged"`},
		{"notifier", "claim a category", publish("$KV.owners.DEMO"), `Publish Violation - Subject "$KV.owners.DEMO"`},
		{"notifier", "issue an access token", publish("$KV.tokens.forged"), `Publish Violation - Subject "$KV.tokens.forged"`},
		{"notifier", "publish events", publish("events.DEMO.FORGED"), `Publish Violation - Subject "events.DEMO.FORGED"`},
		{"notifier", "take over the store's consumer", consume("EVENTS", storeConsumer), `Publish Violation - Subject "$JS.API.CONSUMER.CREATE.EVENTS.store.events.>"`},
		{"query", "write a client", publish("$KV.producers.prd_forged"), `Publish Violation - Subject "$KV.producers.prd_forged"`},
		{"query", "claim a category", publish("$KV.owners.DEMO"), `Publish Violation - Subject "$KV.owners.DEMO"`},
		{"query", "read the schemas", kvGet("schemas"), `Publish Violation - Subject "$JS.API.DIRECT.GET.KV_schemas`},
		{"query", "publish events", publish("events.DEMO.FORGED"), `Publish Violation - Subject "events.DEMO.FORGED"`},
		{"query", "take over the store's consumer", consume("EVENTS", storeConsumer), `Publish Violation - Subject "$JS.API.CONSUMER.CREATE.EVENTS.store.events.>"`},
		{"query", "delete the store's consumer", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			return js.DeleteConsumer(ctx, "EVENTS", "store")
		}, `Publish Violation - Subject "$JS.API.CONSUMER.DELETE.EVENTS.store"`},
		{"query", "write a subscription", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, "subscriptions")
			if err != nil {
				return err
			}
			_, err = kv.Put(ctx, "sub_forged", []byte(`{}`))
			return err
		}, `Publish Violation - Subject "$KV.subscriptions.sub_forged"`},
		{"ingest", "consume EVENTS", consume("EVENTS", jetstream.ConsumerConfig{Durable: "probe"}), `Publish Violation - Subject "$JS.API.CONSUMER.CREATE.EVENTS.probe"`},
		{"ingest", "read the subscriptions bucket", kvGet("subscriptions"), `Publish Violation - Subject "$JS.API.DIRECT.GET.KV_subscriptions`},
		{"ingest", "issue an access token", publish("$KV.tokens.forged"), `Publish Violation - Subject "$KV.tokens.forged"`},
		{"ingest", "watch events", subscribe("events.>"), `Subscription Violation - Subject "events.>"`},
		{"ingest", "publish delivery attempts", publish("deliveries.sub_forged"), `Publish Violation - Subject "deliveries.sub_forged"`},
		{"ingest", "delete a stream", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, "EVENTS")
		}, `Publish Violation - Subject "$JS.API.STREAM.DELETE.EVENTS"`},
	}
	for _, tt := range tests {
		t.Run(tt.user+" may not "+tt.what, func(t *testing.T) {
			t.Parallel()
			nc, js := connectAs(t, srv, tt.user)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if err := tt.do(ctx, nc, js); err == nil {
				t.Errorf("%s could %s", tt.user, tt.what)
			}
			eventually(t, "nats-server reports the violation", func() error {
				if len(log.matching(tt.violation, `"`+globalAccount+"/user:"+tt.user+`"`)) == 0 {
					return fmt.Errorf("no %q by %s in the server log", tt.violation, tt.user)
				}
				return nil
			})
		})
	}
}

// lastMsg returns the last message on subj in a stream.
func lastMsg(ctx context.Context, js jetstream.JetStream, stream, subj string) (*jetstream.RawStreamMsg, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return st.GetLastMsgForSubject(ctx, subj)
}

// globalAccount is the account of users configured without accounts.
const globalAccount = "$G"

// receiver is a webhook endpoint that answers every delivery with one
// status code and counts them.
type receiver struct {
	*httptest.Server
	mu sync.Mutex
	n  int
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.n++
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

// wait waits until the receiver has had n deliveries.
func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d deliveries to %s", n, r.URL), func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.n < n {
			return fmt.Errorf("%d deliveries", r.n)
		}
		return nil
	})
}

// eventually retries check until it returns nil, for at most 20 s.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 20s", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpJSON sends a request with a JSON body (none when empty) and fails
// the test unless the status is want (any 2xx when want is 0); it decodes
// the answer into out when out is not nil.
func httpJSON(t *testing.T, method, url string, header map[string]string, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if (want == 0 && resp.StatusCode/100 != 2) || (want != 0 && resp.StatusCode != want) {
		t.Fatalf("%s %s = %d %s; want %d", method, url, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
}

// tail reads the live tail at url, with header, until its first event.
func tail(t *testing.T, url string, header map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), "DEMO.HELLO") {
			return
		}
	}
	t.Fatalf("GET %s: %d, no event before the stream ended: %v", url, resp.StatusCode, sc.Err())
}

// signJWT returns an HS256 token for the producer id, signed with its JWT
// secret, valid for a minute, with a fresh jti.
func signJWT(t *testing.T, id, secret string) string {
	t.Helper()
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(secret, "="))
	if err != nil {
		t.Fatalf("jwt secret: %v", err)
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"sub": id, "iat": now, "exp": now + 60, "jti": hex.EncodeToString(jti[:])})
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(claims)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + enc(mac.Sum(nil))
}
