package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/service/servicetest"
	"github.com/eventsync/eventsync/pkg/stream"
)

// TestShutdownAnswersNATSRequestsInFlight: requests taken over NATS
// before SIGTERM are published and answered 202, not refused with 503 (the
// handler used to share the run context that shutdown cancels).
func TestShutdownAnswersNATSRequestsInFlight(t *testing.T) {
	ns := natstest.Start(t)
	p := servicetest.Start(t, run, map[string]string{"NATS_URL": ns.URL(), "AUTH": "none", "LOG_LEVEL": "warn"})
	p.WaitReady(t, 20*time.Second)
	nc := ns.Connect(t)

	var batch strings.Builder
	batch.WriteString("[")
	for i := range 50 {
		if i > 0 {
			batch.WriteString(",")
		}
		fmt.Fprintf(&batch, `{"tag":"LOAD.TEST","message":"event %d"}`, i)
	}
	batch.WriteString("]")

	const requests = 400
	var (
		wg                        sync.WaitGroup
		mu                        sync.Mutex
		accepted, refused, noResp int
		other                     []string
	)
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, err := nc.Request(stream.IngestSubject, []byte(batch.String()), 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, nats.ErrNoResponders):
				noResp++ // never taken: the client may retry
			case err != nil:
				other = append(other, err.Error())
			case msg.Header.Get(micro.ErrorCodeHeader) != "":
				refused++
				other = append(other, msg.Header.Get(micro.ErrorCodeHeader)+" "+string(msg.Data))
			case strings.Contains(string(msg.Data), `"accepted":50`):
				accepted++
			default:
				other = append(other, string(msg.Data))
			}
		}()
	}
	time.Sleep(30 * time.Millisecond) // requests are in flight
	if err := p.Stop(); err != nil {
		t.Errorf("run = %v; want nil", err)
	}
	wg.Wait()
	t.Logf("%d accepted, %d never taken, %d refused", accepted, noResp, refused)
	if len(other) > 0 {
		t.Errorf("%d requests got something other than 202 or no responders, e.g. %q", len(other), other[0])
	}
	if accepted == 0 {
		t.Error("no request was accepted before the stop: the test proves nothing")
	}
}

// TestEventServerPublish: the event server's publish endpoint is served by
// the ingest service (it used to exist only in the all-in-one), and every
// answer carries a request id.
func TestEventServerPublish(t *testing.T) {
	ns := natstest.Start(t)
	p := servicetest.Start(t, run, map[string]string{"NATS_URL": ns.URL(), "AUTH": "none", "LOG_LEVEL": "warn"})
	p.WaitReady(t, 20*time.Second)
	post := func(producerID string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, p.Base+"/api/v1/streams/ORDERS/events", strings.NewReader(`{"event":{"name":"CREATED","version":1},"payload":{"order":7}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if producerID != "" {
			req.Header.Set("X-Producer-ID", producerID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post("producer-1")
	var id string
	if err := json.Unmarshal([]byte(body), &id); resp.StatusCode != http.StatusOK || err != nil || id == "" || body != `"`+id+`"` {
		t.Errorf("POST event server event = %d %s; want 200 with the new id as a JSON string", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q; want application/json; charset=utf-8", ct)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID")
	}
	if resp, body := post(""); resp.StatusCode != http.StatusBadRequest || body != `"Bad Request - X-Producer-ID is required"` {
		t.Errorf("POST without X-Producer-ID = %d %s; want 400 \"Bad Request - X-Producer-ID is required\"", resp.StatusCode, body)
	}
}

// TestNATSBodyLimits: the NATS request path applies the HTTP path's
// limits (a 2 MiB batch refused over HTTP used to be accepted over NATS)
// and its encodings.
func TestNATSBodyLimits(t *testing.T) {
	ns := natstest.Start(t)
	p := servicetest.Start(t, run, map[string]string{"NATS_URL": ns.URL(), "AUTH": "none", "LOG_LEVEL": "warn", "INGEST_MAX_BATCH": "10000"})
	p.WaitReady(t, 20*time.Second)
	nc := ns.Connect(t)

	var big strings.Builder
	big.WriteString("[")
	for i := 0; big.Len() < 2<<20; i++ {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"tag":"LOAD.TEST","message":"event %d with some padding to grow the body quickly"}`, i)
	}
	big.WriteString("]")

	resp, err := http.Post(p.Base+"/v1/events", "application/json", strings.NewReader(big.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP 2 MiB batch = %d; want 413", resp.StatusCode)
	}
	msg, err := nc.Request(stream.IngestSubject, []byte(big.String()), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "413" {
		t.Errorf("NATS 2 MiB batch: error code %q, body %.200s; want 413", code, msg.Data)
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"tag":"LOAD.TEST","message":"gzipped"}`))
	_ = zw.Close()
	req := nats.NewMsg(stream.IngestSubject)
	req.Data = gz.Bytes()
	req.Header.Set("Content-Encoding", "gzip")
	msg, err = nc.RequestMsg(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" || !strings.Contains(string(msg.Data), `"accepted":1`) {
		t.Errorf("NATS gzipped event: error code %q, body %s; want accepted", code, msg.Data)
	}
}
