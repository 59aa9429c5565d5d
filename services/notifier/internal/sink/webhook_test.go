package sink_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/webhook"
	"github.com/eventsync/eventsync/services/notifier/internal/netguard"
	"github.com/eventsync/eventsync/services/notifier/internal/sink"
)

const webhookUA = "EventSync-Notifier/test"

// webhookAt is the attempt time of test messages; receivers verify against
// it, so no test depends on the wall clock.
var webhookAt = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// webhookSecret returns a new secret in text form and its key.
func webhookSecret(t *testing.T) (string, []byte) {
	t.Helper()
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	k, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return s, k
}

// webhookRequest is what a test receiver saw.
type webhookRequest struct {
	header   http.Header
	body     []byte
	verified error // the receiver's webhook.Verifier result
}

// webhookReceiver is a real loopback HTTP receiver that verifies signatures
// with the given secrets, records each request and answers with handle (204
// when nil).
type webhookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []webhookRequest
}

func newWebhookReceiver(t *testing.T, secrets []string, handle http.HandlerFunc) *webhookReceiver {
	t.Helper()
	rc := &webhookReceiver{}
	v := webhook.Verifier{Secrets: secrets, Now: func() time.Time { return webhookAt }}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, webhookRequest{header: r.Header.Clone(), body: body, verified: v.Verify(r.Header, body)})
		rc.mu.Unlock()
		if handle == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		handle(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *webhookReceiver) requests() []webhookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhookRequest(nil), rc.reqs...)
}

func webhookMessage(target string, keys ...[]byte) *sink.Message {
	return &sink.Message{
		ID:      "dlv_01JXAMPLE",
		Time:    webhookAt,
		Target:  target,
		Secrets: keys,
		Body:    []byte(`{"id":"0190c1e8-3b5c-7d2a-9f3e-5a1b2c3d4e5f","tag":"DATABASE.CONNECTION_LOST"}`),
	}
}

func newWebhookSender() *sink.Webhook {
	return sink.NewWebhook(sink.NewHTTPClient(nil), webhookUA)
}

func TestWebhookSignsAndSetsHeaders(t *testing.T) {
	secret, key := webhookSecret(t)
	rc := newWebhookReceiver(t, []string{secret}, nil)
	m := webhookMessage(rc.URL+"/hooks", key)
	m.Headers = map[string]string{
		"X-Tenant":          "acme",
		"Authorization":     "Bearer receiver-token",
		"Content-Type":      "text/plain",
		"User-Agent":        "spoofed",
		"webhook-id":        "forged-id",
		"Webhook-Timestamp": "1",
		"WEBHOOK-SIGNATURE": "v1,Zm9yZ2Vk",
		"Connection":        "close",
	}

	res := newWebhookSender().Send(t.Context(), m)
	if res.Verdict != sink.Delivered || res.Status != http.StatusNoContent || res.Err != nil {
		t.Fatalf("Send() = %+v; want delivered with 204", res)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver saw %d requests; want 1", len(reqs))
	}
	got := reqs[0]
	if got.verified != nil {
		t.Errorf("receiver verification = %v; want nil", got.verified)
	}
	if string(got.body) != string(m.Body) {
		t.Errorf("receiver body = %q; want %q", got.body, m.Body)
	}
	want := map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        webhookUA,
		"Webhook-Id":        m.ID,
		"Webhook-Timestamp": strconv.FormatInt(webhookAt.Unix(), 10),
		"X-Tenant":          "acme",
		"Authorization":     "Bearer receiver-token",
		"Connection":        "",
	}
	gotHeaders := make(map[string]string, len(want))
	for k := range want {
		gotHeaders[k] = got.header.Get(k)
	}
	if diff := cmp.Diff(want, gotHeaders); diff != "" {
		t.Errorf("receiver headers mismatch (-want +got):\n%s", diff)
	}
	if sig := got.header.Values("Webhook-Signature"); len(sig) != 1 || !strings.HasPrefix(sig[0], "v1,") || strings.Contains(sig[0], "Zm9yZ2Vk") {
		t.Errorf("receiver webhook-signature = %q; want one v1 signature, not the forged one", sig)
	}
}

func TestWebhookRotation(t *testing.T) {
	oldSecret, oldKey := webhookSecret(t)
	newSecret, newKey := webhookSecret(t)
	for name, secrets := range map[string][]string{"old": {oldSecret}, "new": {newSecret}} {
		t.Run(name, func(t *testing.T) {
			rc := newWebhookReceiver(t, secrets, nil)
			res := newWebhookSender().Send(t.Context(), webhookMessage(rc.URL, newKey, oldKey))
			if res.Verdict != sink.Delivered {
				t.Fatalf("Send() = %+v; want delivered", res)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("receiver with the %s secret saw %d requests; want 1", name, len(reqs))
			}
			if reqs[0].verified != nil {
				t.Errorf("receiver with the %s secret: verification = %v; want nil", name, reqs[0].verified)
			}
			if n := len(strings.Fields(reqs[0].header.Get(webhook.HeaderSignature))); n != 2 {
				t.Errorf("webhook-signature has %d signatures; want 2", n)
			}
		})
	}
	other, _ := webhookSecret(t)
	rc := newWebhookReceiver(t, []string{other}, nil)
	newWebhookSender().Send(t.Context(), webhookMessage(rc.URL, newKey, oldKey))
	if reqs := rc.requests(); len(reqs) != 1 || !errors.Is(reqs[0].verified, webhook.ErrSignature) {
		t.Errorf("receiver with an unrelated secret verified %v; want %v", reqs, webhook.ErrSignature)
	}
}

func TestWebhookStatusVerdicts(t *testing.T) {
	secret, key := webhookSecret(t)
	var elsewhere atomic.Int32
	rc := newWebhookReceiver(t, []string{secret}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			elsewhere.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		code, err := strconv.Atoi(r.URL.Query().Get("status"))
		if err != nil {
			code = http.StatusInternalServerError
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		if code != http.StatusNoContent && code != http.StatusNotModified {
			fmt.Fprintf(w, "answer %d", code)
		}
	})
	tests := []struct {
		status int
		want   sink.Verdict
	}{
		{200, sink.Delivered},
		{201, sink.Delivered},
		{202, sink.Delivered},
		{204, sink.Delivered},
		{301, sink.Reject},
		{302, sink.Reject},
		{307, sink.Reject},
		{308, sink.Reject},
		{400, sink.Reject},
		{401, sink.Reject},
		{403, sink.Reject},
		{404, sink.Reject},
		{405, sink.Reject},
		{408, sink.Retry},
		{409, sink.Reject},
		{410, sink.Gone},
		{413, sink.Reject},
		{422, sink.Reject},
		{429, sink.Retry},
		{500, sink.Retry},
		{501, sink.Retry},
		{502, sink.Retry},
		{503, sink.Retry},
		{504, sink.Retry},
	}
	s := newWebhookSender()
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			res := s.Send(t.Context(), webhookMessage(rc.URL+"/hook?status="+strconv.Itoa(tt.status), key))
			if res.Verdict != tt.want || res.Status != tt.status {
				t.Errorf("Send(status %d) = %v, status %d; want %v, status %d", tt.status, res.Verdict, res.Status, tt.want, tt.status)
			}
			if (res.Err == nil) != (tt.want == sink.Delivered) {
				t.Errorf("Send(status %d).Err = %v; want an error unless delivered", tt.status, res.Err)
			}
			if res.Err != nil && !strings.Contains(res.Err.Error(), "receiver answered "+strconv.Itoa(tt.status)+" "+http.StatusText(tt.status)) {
				t.Errorf("Send(status %d).Err = %q; want it to name the status", tt.status, res.Err)
			}
			if wantBody := "answer " + strconv.Itoa(tt.status); tt.status != 204 && res.Response != wantBody {
				t.Errorf("Send(status %d).Response = %q; want %q", tt.status, res.Response, wantBody)
			}
			if tt.status >= 300 && tt.status < 400 && !strings.Contains(res.Err.Error(), "redirects are not followed") {
				t.Errorf("Send(status %d).Err = %q; want it to say redirects are not followed", tt.status, res.Err)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target saw %d requests; want 0", n)
	}
	for _, r := range rc.requests() {
		if r.verified != nil {
			t.Errorf("receiver verification = %v; want nil", r.verified)
		}
	}
}

func TestWebhookRetryAfter(t *testing.T) {
	_, key := webhookSecret(t)
	date := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header map[string]string
		want   time.Duration
	}{
		{"seconds on 429", 429, map[string]string{"Retry-After": "120"}, 2 * time.Minute},
		{"seconds on 503", 503, map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"zero", 429, map[string]string{"Retry-After": "0"}, 0},
		{"date on 503", 503, map[string]string{
			"Date":        date.Format(http.TimeFormat),
			"Retry-After": date.Add(90 * time.Second).Format(http.TimeFormat),
		}, 90 * time.Second},
		{"date on 429", 429, map[string]string{
			"Date":        date.Format(http.TimeFormat),
			"Retry-After": date.Add(time.Hour).Format(http.TimeFormat),
		}, time.Hour},
		{"date in the past", 503, map[string]string{
			"Date":        date.Format(http.TimeFormat),
			"Retry-After": date.Add(-time.Minute).Format(http.TimeFormat),
		}, 0},
		{"garbage", 429, map[string]string{"Retry-After": "soon"}, 0},
		{"negative", 429, map[string]string{"Retry-After": "-5"}, 0},
		{"absent", 503, nil, 0},
		{"ignored on 500", 500, map[string]string{"Retry-After": "120"}, 0},
		{"ignored on 502", 502, map[string]string{"Retry-After": "120"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newWebhookReceiver(t, nil, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
			})
			res := newWebhookSender().Send(t.Context(), webhookMessage(rc.URL, key))
			if res.Verdict != sink.Retry || res.RetryAfter != tt.want {
				t.Errorf("Send(%d, %v) = %v, RetryAfter %v; want retry, %v", tt.status, tt.header, res.Verdict, res.RetryAfter, tt.want)
			}
		})
	}
}

func TestWebhookTimeout(t *testing.T) {
	_, key := webhookSecret(t)
	release := make(chan struct{})
	rc := newWebhookReceiver(t, nil, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server closes

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res := newWebhookSender().Send(ctx, webhookMessage(rc.URL, key))
	if res.Verdict != sink.Retry || res.Status != 0 || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("Send(hanging receiver) = %+v; want retry, status 0, a deadline error", res)
	}
	if res.Err != nil && !strings.HasPrefix(res.Err.Error(), "timeout: ") {
		t.Errorf("Send(hanging receiver).Err = %q; want it to say timeout", res.Err)
	}
}

func TestWebhookClosedPort(t *testing.T) {
	_, key := webhookSecret(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	res := newWebhookSender().Send(t.Context(), webhookMessage("http://"+addr+"/hook", key))
	if res.Verdict != sink.Retry || res.Status != 0 || res.Err == nil {
		t.Errorf("Send(closed port) = %+v; want retry, status 0, an error", res)
	}
}

func TestWebhookUnresolvableHost(t *testing.T) {
	_, key := webhookSecret(t)
	res := newWebhookSender().Send(t.Context(), webhookMessage("http://eventsync-test.invalid/hook", key))
	if res.Verdict != sink.Retry || res.Status != 0 || res.Err == nil {
		t.Errorf("Send(unresolvable host) = %+v; want retry, status 0, an error", res)
	}
}

func TestWebhookResponsePrefix(t *testing.T) {
	_, key := webhookSecret(t)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"long", strings.Repeat("x", 10_000), strings.Repeat("x", delivery.MaxResponse)},
		{"exact", strings.Repeat("y", delivery.MaxResponse), strings.Repeat("y", delivery.MaxResponse)},
		{"rune cut by the limit", strings.Repeat("a", delivery.MaxResponse-1) + "é and more", strings.Repeat("a", delivery.MaxResponse-1)},
		{"invalid utf-8", "ok\xff\xfe done", "ok done"},
		{"white space", "\n  {\"error\":\"busy\"}\n", `{"error":"busy"}`},
		{"larger than the drain", strings.Repeat("z", 200_000), strings.Repeat("z", delivery.MaxResponse)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newWebhookReceiver(t, nil, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, tt.body)
			})
			res := newWebhookSender().Send(t.Context(), webhookMessage(rc.URL, key))
			if res.Response != tt.want {
				t.Errorf("Send().Response = %q (%d bytes); want %q (%d bytes)", res.Response, len(res.Response), tt.want, len(tt.want))
			}
		})
	}
}

// TestWebhookReusesConnections: responses are drained and closed, so
// sequential deliveries share one connection.
func TestWebhookReusesConnections(t *testing.T) {
	_, key := webhookSecret(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Repeat("r", 20_000))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	s := newWebhookSender()
	for range 5 {
		if res := s.Send(t.Context(), webhookMessage(srv.URL, key)); res.Verdict != sink.Delivered {
			t.Fatalf("Send() = %+v; want delivered", res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential deliveries opened %d connections; want 1", n)
	}
}

func TestWebhookHTTP2(t *testing.T) {
	secret, key := webhookSecret(t)
	var proto atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int32(r.ProtoMajor))
		body, _ := io.ReadAll(r.Body)
		v := webhook.Verifier{Secrets: []string{secret}, Now: func() time.Time { return webhookAt }}
		if err := v.Verify(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := sink.NewHTTPClient(nil)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	client.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool

	res := sink.NewWebhook(client, webhookUA).Send(t.Context(), webhookMessage(srv.URL, key))
	if res.Verdict != sink.Delivered || res.Status != http.StatusAccepted {
		t.Fatalf("Send(https) = %+v; want delivered with 202", res)
	}
	if p := proto.Load(); p != 2 {
		t.Errorf("receiver saw HTTP/%d; want HTTP/2", p)
	}
}

func TestWebhookGuardRefusesLoopback(t *testing.T) {
	secret, key := webhookSecret(t)
	rc := newWebhookReceiver(t, []string{secret}, nil)
	s := sink.NewWebhook(sink.NewHTTPClient(netguard.New(nil)), webhookUA)

	res := s.Send(t.Context(), webhookMessage(rc.URL, key))
	if res.Verdict != sink.Reject || res.Status != 0 || !errors.Is(res.Err, netguard.ErrForbidden) {
		t.Errorf("Send(loopback through the guard) = %+v; want reject, status 0, %v", res, netguard.ErrForbidden)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver saw %d requests; want 0", n)
	}

	allow, err := netguard.ParseAllow("127.0.0.0/8,::1/128")
	if err != nil {
		t.Fatal(err)
	}
	s = sink.NewWebhook(sink.NewHTTPClient(netguard.New(allow)), webhookUA)
	if res := s.Send(t.Context(), webhookMessage(rc.URL, key)); res.Verdict != sink.Delivered {
		t.Errorf("Send(loopback, allowed) = %+v; want delivered", res)
	}
}

func TestWebhookUnusableMessage(t *testing.T) {
	_, key := webhookSecret(t)
	rc := newWebhookReceiver(t, nil, nil)
	tests := []struct {
		name string
		m    *sink.Message
	}{
		{"no secret", webhookMessage(rc.URL)},
		{"ftp target", webhookMessage("ftp://example.com/", key)},
		{"no host", webhookMessage("http:///hook", key)},
		{"unparsable target", webhookMessage("http://[::1", key)},
		{"header value with newline", func() *sink.Message {
			m := webhookMessage(rc.URL, key)
			m.Headers = map[string]string{"X-Evil": "a\r\nX-Injected: 1"}
			return m
		}()},
		{"header name with space", func() *sink.Message {
			m := webhookMessage(rc.URL, key)
			m.Headers = map[string]string{"X Evil": "a"}
			return m
		}()},
	}
	s := newWebhookSender()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := s.Send(t.Context(), tt.m); res.Verdict != sink.Reject || res.Err == nil {
				t.Errorf("Send(%s) = %+v; want reject with an error", tt.name, res)
			}
		})
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver saw %d requests; want 0", n)
	}
}
