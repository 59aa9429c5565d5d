package ingest

import (
	"encoding/base64"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/eventsync/eventsync/pkg/auth"
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

// NATS requests authenticate in ingest, with the gate's authenticator:
// failed attempts over NATS are limited too, per claimed producer id (a
// request has no client address), and a throttled attempt checks no
// password. (Over HTTP the gate throttles before ingest sees the request:
// see pkg/access.)
func TestThrottleFailedNATSAuthentication(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := &countingDirectory{p: &producer.Producer{ID: "prd_a", Enabled: true, Tags: []string{">"},
		Credentials: producer.Credentials{PasswordHash: string(hash)}}}
	a := auth.New(dir, nil, auth.Config{
		Throttle: auth.ThrottleConfig{MaxFailures: 10, Window: time.Minute, CoolDown: time.Minute},
	})
	h := newHarnessWith(t, Config{}, stream.Config{}, Trust{Auth: a})
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
}
