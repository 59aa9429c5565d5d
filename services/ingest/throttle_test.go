package ingest

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
)

// countingDirectory knows one producer and counts password checks, each a
// real bcrypt comparison.
type countingDirectory struct {
	p       *producer.Producer
	checked atomic.Int64
}

func (d *countingDirectory) Get(id string) (*producer.Producer, bool) {
	return d.p, id == d.p.ID
}

func (d *countingDirectory) ByAPIKey(string) (*producer.Producer, bool) { return nil, false }

func (d *countingDirectory) CheckPassword(p *producer.Producer, password string) bool {
	d.checked.Add(1)
	if p == nil {
		p = d.p
	}
	return bcrypt.CompareHashAndPassword([]byte(p.Credentials.PasswordHash), []byte(password)) == nil && p == d.p
}

// Failed authentications are limited per client address: the 11th bad
// Basic attempt from one address is a 429 with Retry-After and checks no
// password; other addresses are not affected; X-Forwarded-For names the
// client only from a trusted proxy.
func TestThrottleFailedAuthentication(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	newIngest := func(t *testing.T, trusted string) (*harness, *countingDirectory) {
		dir := &countingDirectory{p: &producer.Producer{ID: "prd_a", Enabled: true, Tags: []string{">"},
			Credentials: producer.Credentials{PasswordHash: string(hash)}}}
		var proxies auth.Prefixes
		if err := proxies.Set(trusted); err != nil {
			t.Fatal(err)
		}
		a := auth.New(dir, nil, auth.Config{
			Throttle:       auth.ThrottleConfig{MaxFailures: 10, Window: time.Minute, CoolDown: time.Minute},
			TrustedProxies: proxies,
		})
		return newHarnessWith(t, Config{}, stream.Config{}, Trust{Auth: a}), dir
	}
	// from returns a client whose connections come from the given
	// loopback address.
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	send := func(t *testing.T, h *harness, c *http.Client, password, forwardedFor string) (int, http.Header, problem.Problem) {
		t.Helper()
		req, _ := http.NewRequest("POST", h.url+"/v1/events", strings.NewReader(`{"tag":"A.B","message":"m"}`))
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("prd_a:"+password)))
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p problem.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, resp.Header, p
	}
	fail10 := func(t *testing.T, h *harness, c *http.Client, forwardedFor func(i int) string) {
		t.Helper()
		for i := range 10 {
			if status, _, p := send(t, h, c, "wrong", forwardedFor(i)); status != http.StatusUnauthorized {
				t.Fatalf("bad attempt %d = %d %s; want 401", i+1, status, p.Detail)
			}
		}
	}
	spoofed := func(i int) string { return "198.51.100." + string(rune('0'+i)) }

	t.Run("per address", func(t *testing.T) {
		h, dir := newIngest(t, "")
		one, two := from("127.0.0.1"), from("127.0.0.2")
		fail10(t, h, one, func(int) string { return "" })
		for _, password := range []string{"wrong", "right"} {
			status, hdr, p := send(t, h, one, password, "")
			if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "60" || !strings.Contains(p.Type, "throttled") {
				t.Errorf("11th attempt (%s) = %d Retry-After %q %s; want 429 with Retry-After 60", password, status, hdr.Get("Retry-After"), p.Type)
			}
		}
		if n := dir.checked.Load(); n != 10 {
			t.Errorf("%d password checks; want 10 (none for throttled attempts)", n)
		}
		if status, _, p := send(t, h, two, "right", ""); status != http.StatusAccepted {
			t.Errorf("another address = %d %s; want 202", status, p.Detail)
		}
		if status, _, _ := send(t, h, two, "wrong", ""); status != http.StatusUnauthorized {
			t.Errorf("another address, bad password = %d; want 401", status)
		}
	})
	t.Run("X-Forwarded-For without a trusted proxy", func(t *testing.T) {
		h, _ := newIngest(t, "")
		c := from("127.0.0.1")
		fail10(t, h, c, spoofed)
		if status, _, _ := send(t, h, c, "right", "203.0.113.1"); status != http.StatusTooManyRequests {
			t.Errorf("a fresh X-Forwarded-For = %d; want 429 (the header is not believed)", status)
		}
	})
	t.Run("X-Forwarded-For from a trusted proxy", func(t *testing.T) {
		h, _ := newIngest(t, "127.0.0.1")
		c := from("127.0.0.1")
		fail10(t, h, c, func(i int) string { return spoofed(i) + ", 203.0.113.1" })
		if status, _, _ := send(t, h, c, "right", "203.0.113.1"); status != http.StatusTooManyRequests {
			t.Errorf("the throttled client = %d; want 429", status)
		}
		if status, _, p := send(t, h, c, "right", "203.0.113.2"); status != http.StatusAccepted {
			t.Errorf("another client through the proxy = %d %s; want 202", status, p.Detail)
		}
		if status, _, p := send(t, h, from("127.0.0.2"), "right", "203.0.113.1"); status != http.StatusAccepted {
			t.Errorf("the header from an untrusted peer = %d %s; want 202 (the peer is the client)", status, p.Detail)
		}
	})
	t.Run("NATS requests count against the producer id", func(t *testing.T) {
		h, dir := newIngest(t, "")
		var retryAfter string
		request := func(password string) string {
			msg := nats.NewMsg(stream.IngestSubject)
			msg.Data = []byte(`{"tag":"A.B","message":"m"}`)
			msg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("prd_a:"+password)))
			reply, err := h.nc.RequestMsg(msg, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			retryAfter = reply.Header.Get("Retry-After")
			return reply.Header.Get("Nats-Service-Error-Code")
		}
		for i := range 10 {
			if code := request("wrong"); code != "401" {
				t.Fatalf("bad request %d: error code %q; want 401", i+1, code)
			}
		}
		if code := request("right"); code != "429" || retryAfter != "60" {
			t.Errorf("11th request: error code %q, Retry-After %q; want 429 with Retry-After 60", code, retryAfter)
		}
		if n := dir.checked.Load(); n != 10 {
			t.Errorf("%d password checks; want 10", n)
		}
	})
}
