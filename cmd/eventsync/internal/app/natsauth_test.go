package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/app"
	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// natsConnect connects to a NATS server once, without reconnecting.
func natsConnect(url string, opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append([]nats.Option{nats.NoReconnect(), nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}, opts...)...)
}

// asProducer are the options of producer c's connection: its id and
// Basic password, and its own inbox prefix (it may subscribe to nothing
// else).
func asProducer(c credentials) []nats.Option {
	return []nats.Option{nats.UserInfo(c.id, c.password), nats.CustomInboxPrefix("_INBOX." + c.id)}
}

// connectProducer connects as c, waiting up to 5 s for the server to know
// it: registry changes reach the NATS server through a watch.
func connectProducer(t *testing.T, url string, c credentials, opts ...nats.Option) *nats.Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := natsConnect(url, append(asProducer(c), opts...)...)
		if err == nil {
			t.Cleanup(nc.Close)
			return nc
		}
		if !errors.Is(err, nats.ErrAuthorization) || time.Now().After(deadline) {
			t.Fatalf("connect to nats as %s: %v", c.id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refused waits up to 5 s for the server to refuse c's password.
func refused(t *testing.T, url string, id, password string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := natsConnect(url, nats.UserInfo(id, password))
		if err != nil {
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("connect to nats as %s = %v; want an authorization violation", id, err)
			}
			return
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("nats still lets %s in after 5s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// may reports whether nc may publish to (with sub: subscribe to) subj.
// The server answers a violation before the PONG of the flush; LastError
// keeps the connection's last error, and every violation is a new one.
func may(t *testing.T, nc *nats.Conn, subj string, sub bool) bool {
	t.Helper()
	before := nc.LastError()
	if sub {
		s, err := nc.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Unsubscribe() //nolint:errcheck // the check is done by then
	} else if err := nc.Publish(subj, []byte(`{"message":"m"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	err := nc.LastError()
	if err == before {
		return true
	}
	if !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("%s: %v", subj, err)
	}
	return false
}

// TestNATSAuth: with producer authentication the embedded NATS server
// lets nobody in anonymously; producers registered through the admin API
// log in with their id and Basic password and may request
// eventsync.ingest, publish to their own tags (with --nats-direct) and
// read their own inbox, nothing else; disabling, rotating and deleting
// take effect on the running server.
func TestNATSAuth(t *testing.T) {
	r := apptest.Start(t, nil, "--auth", "producers", "--admin-token", "admin-secret", "--nats-direct")

	if nc, err := natsConnect(r.NATSURL); err == nil {
		nc.Close()
		t.Fatal("anonymous nats connection accepted; want it refused")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous nats connection = %v; want an authorization violation", err)
	}

	billing := createProducer(t, r.Base, `{"name":"billing","tags":["BILLING.>"]}`)
	ops := createProducer(t, r.Base, `{"name":"ops","tags":["OPS.>"],"owns":["OPS"]}`)
	wide := createProducer(t, r.Base, `{"name":"wide","tags":[">"]}`)
	closed := make(chan struct{})
	nc := connectProducer(t, r.NATSURL, billing, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))

	// The request path, with the producer's credentials in the header.
	msg := nats.NewMsg(stream.IngestSubject)
	msg.Header.Set("Authorization", billing.basic())
	msg.Data = []byte(`{"tag":"BILLING.CHARGED","message":"via nats"}`)
	reply, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", stream.IngestSubject, err)
	}
	var accepted struct {
		OK       bool `json:"ok"`
		Accepted int  `json:"accepted"`
	}
	if err := json.Unmarshal(reply.Data, &accepted); err != nil || !accepted.OK || accepted.Accepted != 1 || reply.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("reply = %s %v; want the 202 body with 1 accepted", reply.Data, reply.Header)
	}

	for _, tt := range []struct {
		name string
		as   credentials
		subj string
		sub  bool
		want bool
	}{
		{"publish its own tag directly", billing, "events.BILLING.CHARGED", false, true},
		{"publish outside its patterns", billing, "events.OPS.DEPLOYED", false, false},
		{"publish to the JetStream API", billing, "$JS.API.STREAM.INFO.KV_producers", false, false},
		{"publish to a bucket", billing, "$KV.producers.prd_forged", false, false},
		{"subscribe to the producers bucket", billing, "$KV.producers.>", true, false},
		{"subscribe to events", billing, "events.>", true, false},
		{"subscribe to another's inbox", billing, "_INBOX." + ops.id + ".>", true, false},
		{"subscribe to its own inbox", billing, "_INBOX." + billing.id + ".x", true, true},
		{"publish to a category another owns", wide, "events.OPS.DEPLOYED", false, false},
		{"publish to a free category", wide, "events.OTHER.THING", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := nc
			if tt.as != billing {
				c = connectProducer(t, r.NATSURL, tt.as)
			}
			if got := may(t, c, tt.subj, tt.sub); got != tt.want {
				t.Errorf("%s on %s: allowed %t; want %t", tt.as.id, tt.subj, got, tt.want)
			}
		})
	}

	// The bucket cannot be read through JetStream either.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if kv, err := js.KeyValue(ctx, stream.ProducersBucket); err == nil {
		if _, err := kv.Get(ctx, billing.id); err == nil {
			t.Fatal("a producer read the producers bucket")
		}
	}
	// A direct publish is a JetStream publish like any other.
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if ack, err := js.Publish(ctx, "events.BILLING.DIRECT", []byte(`{"message":"direct"}`)); err != nil || ack.Stream != stream.Events {
		t.Errorf("direct publish = %+v, %v; want stored in %s", ack, err, stream.Events)
	}

	// Disabled: its connection is closed and it cannot log in again.
	if status, out, _ := call(t, "POST", r.Base+"/v1/producers/"+billing.id+"/disable", "Bearer admin-secret", ""); status != http.StatusOK {
		t.Fatalf("disable = %d %v", status, out)
	}
	refused(t, r.NATSURL, billing.id, billing.password)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("the disabled producer's connection is still open")
	}

	// Rotated: the old password no longer works, the new one does.
	status, out, _ := call(t, "POST", r.Base+"/v1/producers/"+ops.id+"/rotate", "Bearer admin-secret", `{"credential":"password"}`)
	if status != http.StatusOK {
		t.Fatalf("rotate = %d %v", status, out)
	}
	oldPassword := ops.password
	ops.password = out["credentials"].(map[string]any)["password"].(string)
	refused(t, r.NATSURL, ops.id, oldPassword)
	connectProducer(t, r.NATSURL, ops)

	// Deleted: gone from the server too.
	if status, out, _ := call(t, "DELETE", r.Base+"/v1/producers/"+wide.id, "Bearer admin-secret", ""); status != http.StatusNoContent && status != http.StatusOK {
		t.Fatalf("delete = %d %v", status, out)
	}
	refused(t, r.NATSURL, wide.id, wide.password)
}

// TestNATSPasswordFile: EventSync's own NATS user has a password made on
// first start, kept with mode 0600 in the data directory and reused after
// a restart; after the restart the producers registered before can log
// in as soon as the all-in-one is ready. A file others may read stops the
// start.
func TestNATSPasswordFile(t *testing.T) {
	args := []string{"--auth", "producers", "--admin-token", "admin-secret"}
	r := apptest.Start(t, nil, args...)
	path := filepath.Join(r.DataDir, app.NATSPasswordFile)
	password := func() string {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o; want 0600", path, perm)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	first := password()
	if len(first) < 32 {
		t.Fatalf("password %q: want at least 32 random characters", first)
	}
	p := createProducer(t, r.Base, `{"name":"billing","tags":["BILLING.>"]}`)
	connectProducer(t, r.NATSURL, p)

	r.Restart()
	if got := password(); got != first {
		t.Errorf("password after a restart = %q; want the first one, %q", got, first)
	}
	// EventSync's own user may do anything, e.g. read the producers bucket.
	nc, err := natsConnect(r.NATSURL, nats.UserInfo(app.NATSUser, first))
	if err != nil {
		t.Fatalf("connect as %s after a restart: %v", app.NATSUser, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), stream.ProducersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(t.Context(), p.id); err != nil {
		t.Errorf("%s reads the producers bucket: %v", app.NATSUser, err)
	}
	// Ready means the registry's users are loaded: no waiting.
	if nc, err := natsConnect(r.NATSURL, asProducer(p)...); err != nil {
		t.Errorf("producer right after the restart: %v; want connected", err)
	} else {
		nc.Close()
	}

	r.Stop()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	err = app.Main(t.Context(), append(args, "--data-dir", r.DataDir, "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1"),
		func(string) string { return "" }, io.Discard, "test")
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("eventsync run with a password file of mode 0644 = %v; want an error saying to chmod 600 it", err)
	}
}

// syncBuffer is a bytes.Buffer for logs written while a test runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNATSOpenWithoutAuth: with --auth=none on loopback the embedded
// server stays open, has no password file, and the start-up log says so.
func TestNATSOpenWithoutAuth(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	a, err := app.Start(t.Context(), []string{"--data-dir", dir, "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1", "--log-level", "warn"},
		func(string) string { return "" }, &logs, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-a.Started():
	case err := <-done:
		t.Fatalf("Run = %v before ready", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready after 60s")
	}
	nc, err := natsConnect("nats://" + a.NATSAddr())
	if err != nil {
		t.Fatalf("anonymous connection with --auth=none: %v; want it accepted", err)
	}
	nc.Close()
	if _, err := os.Stat(filepath.Join(dir, app.NATSPasswordFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("password file with --auth=none: %v; want none", err)
	}
	if l := logs.String(); !strings.Contains(l, "accepts anonymous connections") {
		t.Errorf("start-up log does not say the nats server is open:\n%s", l)
	}
}
