package producers

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startNATS runs a NATS server with the given authorization block.
func startNATS(t *testing.T, authorization []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, authorization, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("the NATS server refuses the config: %v\n%s", err, authorization)
	}
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// may reports whether the user may publish (or, with sub, subscribe to)
// subj. The server answers a violation before the PONG of the flush.
func may(t *testing.T, url, user, password, subj string, sub bool) bool {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.CustomInboxPrefix(producer.InboxPrefix(user)),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	defer nc.Close()
	if sub {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	} else if err := nc.Publish(subj, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	err = nc.LastError()
	if err != nil && !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("%s on %s: %v", user, subj, err)
	}
	return err == nil
}

func TestNATSConfig(t *testing.T) {
	e := newEnv(t, token)
	billing := e.create(`{"name":"billing","tags":["BILLING.>"],"owns":["BILLING"]}`)
	all := e.create(`{"name":"all"}`)
	off := e.create(`{"name":"off"}`)
	if r := e.call("POST", "/v1/producers/"+off.ID+"/disable", "", nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}

	for _, direct := range []bool{false, true} {
		path := "/v1/producers/nats-config"
		if direct {
			path += "?direct=true"
		}
		r := e.call("GET", path, "", nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET %s = %d %s %s", path, r.status, r.header.Get("Content-Type"), r.body)
		}
		if strings.Contains(string(r.body), off.ID) {
			t.Errorf("direct=%v: the disabled producer is in the config", direct)
		}
		url := startNATS(t, r.body)
		if _, err := nats.Connect(url, nats.UserInfo(billing.ID, "wrong")); err == nil {
			t.Errorf("direct=%v: a wrong password connects", direct)
		}
		if _, err := nats.Connect(url, nats.UserInfo(off.ID, off.Credentials.Password)); err == nil {
			t.Errorf("direct=%v: the disabled producer connects", direct)
		}
		tests := []struct {
			who  created
			subj string
			sub  bool
			want bool
		}{
			{billing, "eventsync.ingest", false, true},
			{all, "eventsync.ingest", false, true},
			{billing, "_INBOX." + billing.ID + ".abc.1", true, true},
			{billing, "_INBOX." + all.ID + ".abc.1", true, false}, // another producer's replies
			{billing, "_INBOX.>", true, false},
			{billing, "events.>", true, false},
			{billing, "events.BILLING.PAID", false, direct},
			{billing, "events.BILLING.EU.PAID", false, direct},
			{billing, "events.ORDERS.PLACED", false, false},
			{all, "events.ORDERS.PLACED", false, direct},
			{all, "events.BILLING.PAID", false, false},    // billing owns BILLING
			{all, "events.BILLING.EU.PAID", false, false}, // owning BILLING covers its sub-category BILLING.EU
			{billing, "$JS.API.STREAM.DELETE.EVENTS", false, false},
			{billing, "dlq.store", false, false},
		}
		for _, tt := range tests {
			if got := may(t, url, tt.who.ID, tt.who.Credentials.Password, tt.subj, tt.sub); got != tt.want {
				t.Errorf("direct=%v: %s may %s %s = %v; want %v", direct, tt.who.Name, map[bool]string{false: "publish", true: "subscribe"}[tt.sub], tt.subj, got, tt.want)
			}
		}
	}
}

// With no producers the block is still a valid (empty) user list.
func TestNATSConfigEmpty(t *testing.T) {
	startNATS(t, natsConfig(nil, nil, true))
}
