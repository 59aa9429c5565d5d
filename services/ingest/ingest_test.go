package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/access/accesstest"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
)

type harness struct {
	ns  *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	url string
}

// newHarness runs ingest against a real in-process JetStream, over HTTP on
// loopback and on the NATS request subject.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessWithStream(t, cfg, stream.Config{})
}

func newHarnessWithStream(t *testing.T, cfg Config, sc stream.Config) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, sc, Trust{})
}

// newHarnessWith runs ingest with the given trust checks and no gate in
// front: every HTTP request comes as the unrestricted principal, as with
// authentication off.
func newHarnessWith(t *testing.T, cfg Config, sc stream.Config, trust Trust) *harness {
	t.Helper()
	h, _ := newHarnessBehind(t, cfg, sc, nil, func(*access.Gate) Trust { return trust })
	return h
}

// testAdminToken is the admin token of the gates of these tests.
const testAdminToken = "admin-token-for-ingest-tests-0123456789"

// newGatedHarness runs ingest behind a real access gate with
// authentication on, routed as a process routes it; trust is built from
// the gate (its registry and authenticator). Clients are created in
// gate.Registry().
func newGatedHarness(t *testing.T, cfg Config, trust func(*access.Gate) Trust) (*harness, *access.Gate) {
	t.Helper()
	return newHarnessBehind(t, cfg, stream.Config{}, &access.Config{Auth: access.AuthClients, AdminToken: testAdminToken}, trust)
}

// newHarnessBehind runs ingest, behind a gate opened with acfg unless it
// is nil.
func newHarnessBehind(t *testing.T, cfg Config, sc stream.Config, acfg *access.Config, trust func(*access.Gate) Trust) (*harness, *access.Gate) {
	t.Helper()
	ns := natstest.Start(t)
	nc := ns.Connect(t)
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = time.Second
	}
	js, err := stream.JetStream(nc, cfg.PublishTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := stream.Ensure(ctx, js, sc); err != nil {
		t.Fatal(err)
	}
	var gate *access.Gate
	if acfg != nil {
		gate = startGate(t, js, *acfg, nil)
	}
	svc, err := New(cfg, nc, js, trust(gate), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	if gate != nil {
		r.Use(gate.Middleware(r))
	}
	svc.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Run registers the NATS micro service asynchronously; wait for it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := nc.Request("$SRV.PING.eventsync-ingest", nil, time.Second); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("ingest micro service did not answer ping: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &harness{ns: ns, nc: nc, js: js, url: srv.URL}, gate
}

// startGate runs a gate on js until the test ends and calls before (when
// not nil) with it.
func startGate(t *testing.T, js jetstream.JetStream, cfg access.Config, before func(*access.Gate)) *access.Gate {
	t.Helper()
	gate := accesstest.Start(t, js, cfg)
	if before != nil {
		before(gate)
	}
	return gate
}

// createClient registers a client in the gate's registry and returns it
// with the Authorization value of its API key.
func createClient(t *testing.T, gate *access.Gate, spec producer.Spec) (*producer.Producer, string) {
	t.Helper()
	p, sec, err := gate.Registry().Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("Create(%+v) = %v", spec, err)
	}
	return &p, "Bearer " + sec.APIKey
}

func (h *harness) post(t *testing.T, path, contentType, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(h.url+path, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// stored returns the events in the EVENTS stream, read back from JetStream.
func (h *harness) stored(t *testing.T) []event.Event {
	t.Helper()
	s, err := h.js.Stream(t.Context(), stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var e event.Event
		if err := event.Decode(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		e.Seq = m.Sequence
		out = append(out, e)
	}
	return out
}

func decodeResponse(t *testing.T, b []byte) Response {
	t.Helper()
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return r
}

func decodeProblem(t *testing.T, h http.Header, b []byte) problem.Problem {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q; want %q", ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode problem %s: %v", b, err)
	}
	return p
}

func TestAcceptedEventsAreDurableWithTheirSeq(t *testing.T) {
	h := newHarness(t, Config{})
	tests := []struct {
		name, path, contentType, body string
		wantTags                      []string
	}{
		{"single", "/v1/events", "application/json",
			`{"tag":"DATABASE.CONNECTION_LOST","message":"db down","session_id":"s1","source":"api","severity":"error","data":{"host":"db1"}}`,
			[]string{"DATABASE.CONNECTION_LOST"}},
		{"array", "/v1/events", "application/json",
			`[{"category":"AUTH","code":"INVALID_TOKEN","message":"a"},{"category":"TEST.NETWORK","code":"TIMEOUT","message":"b","timestamp":"2026-01-02 03:04:05.123456"}]`,
			[]string{"AUTH.INVALID_TOKEN", "TEST.NETWORK.TIMEOUT"}},
		{"ndjson", "/v1/events", "application/x-ndjson",
			"{\"tag\":\"A.B\",\"message\":\"1\"}\n\n{\"tag\":\"A.C\",\"message\":\"2\",\"name\":\"legacy\"}\n",
			[]string{"A.B", "A.C"}},
	}
	var next uint64 = 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, b := h.post(t, tt.path, tt.contentType, tt.body)
			if status != http.StatusAccepted {
				t.Fatalf("POST %s = %d %s; want 202", tt.path, status, b)
			}
			r := decodeResponse(t, b)
			if !r.OK || r.Accepted != len(tt.wantTags) || r.Duplicates != 0 || len(r.Events) != len(tt.wantTags) {
				t.Fatalf("response = %+v; want ok, %d accepted", r, len(tt.wantTags))
			}
			for i, res := range r.Events {
				if res.Seq != next {
					t.Errorf("events[%d].seq = %d; want %d", i, res.Seq, next)
				}
				if want := "events." + tt.wantTags[i]; res.Subject != want {
					t.Errorf("events[%d].subject = %q; want %q", i, res.Subject, want)
				}
				next++
			}
		})
	}
	stored := h.stored(t)
	if len(stored) != int(next-1) {
		t.Fatalf("stream holds %d events; want %d", len(stored), next-1)
	}
	first := stored[0]
	if first.Tag != "DATABASE.CONNECTION_LOST" || first.Severity != event.Error || first.SessionID != "s1" ||
		first.Source != "api" || string(first.Data) != `{"host":"db1"}` || first.ReceivedAt.IsZero() {
		t.Errorf("stored event = %+v", first)
	}
	if got, want := stored[2].Timestamp, time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC); !got.Equal(want) {
		t.Errorf("zoneless timestamp stored as %v; want %v", got, want)
	}
	if stored[4].Source != "legacy" {
		t.Errorf("name alias stored as source %q; want legacy", stored[4].Source)
	}
}

func TestRepeatedIDIsADuplicateWithTheOriginalSeq(t *testing.T) {
	h := newHarness(t, Config{})
	body := `{"id":"order-42","tag":"ORDER.CREATED","message":"first"}`
	_, _, b := h.post(t, "/v1/events", "application/json", body)
	first := decodeResponse(t, b)
	status, _, b := h.post(t, "/v1/events", "application/json", `[{"id":"order-42","tag":"ORDER.CREATED","message":"again"},{"id":"order-43","tag":"ORDER.CREATED","message":"new"}]`)
	if status != http.StatusAccepted {
		t.Fatalf("status = %d %s; want 202", status, b)
	}
	second := decodeResponse(t, b)
	want := []Result{
		{ID: "order-42", Seq: first.Events[0].Seq, Subject: "events.ORDER.CREATED", Duplicate: true},
		{ID: "order-43", Seq: first.Events[0].Seq + 1, Subject: "events.ORDER.CREATED"},
	}
	if diff := cmp.Diff(want, second.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if second.Accepted != 1 || second.Duplicates != 1 {
		t.Errorf("accepted, duplicates = %d, %d; want 1, 1", second.Accepted, second.Duplicates)
	}
	if n := len(h.stored(t)); n != 2 {
		t.Errorf("stream holds %d events; want 2", n)
	}
}

func TestBadRequestsAreRejectedAndPublishNothing(t *testing.T) {
	h := newHarness(t, Config{MaxBody: 4 << 10})
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, path, contentType, body string
		status                        int
		pointers                      []string
	}{
		{"invalid item in array", "/v1/events", "application/json",
			`[{"tag":"A.B","message":"ok"},{"tag":"A.B","message":"x"},{"tag":"A.B","message":"y"},{"tag":"A.B","message":"z","timestamp":"` + future + `"}]`,
			422, []string{"/3/timestamp"}},
		{"several invalid", "/v1/events", "application/json",
			`[{"category":"BAD CAT","code":"X","message":"m"},{"tag":"A.B","timestamp":"yesterday"}]`,
			422, []string{"/0/category", "/1/timestamp"}},
		{"unknown field", "/v1/events", "application/json", `{"tag":"A.B","message":"m","colour":"red"}`, 422, []string{"/colour"}},
		{"wildcard in tag", "/v1/events", "application/json", `{"tag":"A.*","message":"m"}`, 422, []string{"/tag"}},
		{"duplicate key", "/v1/events", "application/json", `{"tag":"A.B","message":"m","message":"n"}`, 400, nil},
		{"trailing data", "/v1/events", "application/json", `{"tag":"A.B","message":"m"} {}`, 400, nil},
		{"invalid utf-8", "/v1/events", "application/json", "{\"tag\":\"A.B\",\"message\":\"\xff\"}", 400, nil},
		{"not json", "/v1/events", "application/json", `tag=A.B`, 400, nil},
		{"too large", "/v1/events", "application/json", `{"tag":"A.B","message":"` + strings.Repeat("x", 5<<10) + `"}`, 413, nil},
		{"unsupported media type", "/v1/events", "application/xml", `<event/>`, 415, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, b := h.post(t, tt.path, tt.contentType, tt.body)
			if status != tt.status {
				t.Fatalf("POST %s = %d %s; want %d", tt.name, status, b, tt.status)
			}
			p := decodeProblem(t, hdr, b)
			if p.Status != tt.status || p.Detail == "" {
				t.Errorf("problem = %+v; want status %d with a detail", p, tt.status)
			}
			var got []string
			for _, fe := range p.Errors {
				got = append(got, fe.Pointer)
			}
			if tt.pointers != nil {
				if diff := cmp.Diff(tt.pointers, got); diff != "" {
					t.Errorf("pointers (-want +got):\n%s", diff)
				}
			}
		})
	}
	if n := len(h.stored(t)); n != 0 {
		t.Errorf("stream holds %d events after rejected requests; want 0", n)
	}
}

func TestNATSRequestPath(t *testing.T) {
	h := newHarness(t, Config{})
	msg, err := h.nc.Request(stream.IngestSubject, []byte(`[{"tag":"NATS.HELLO","message":"hi"},{"tag":"NATS.HELLO","message":"again"}]`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := decodeResponse(t, msg.Data)
	if r.Accepted != 2 || r.Events[1].Seq != 2 {
		t.Errorf("reply = %s; want 2 accepted, seqs 1 and 2", msg.Data)
	}

	msg, err = h.nc.Request(stream.IngestSubject, []byte(`{"tag":"NATS.HELLO","timestamp":"yesterday"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "422" {
		t.Errorf("error code header = %q; want 422", code)
	}
	var p problem.Problem
	if err := json.Unmarshal(msg.Data, &p); err != nil || p.Status != 422 || len(p.Errors) != 1 || p.Errors[0].Pointer != "/timestamp" {
		t.Errorf("problem = %s (%v); want 422 naming /timestamp", msg.Data, err)
	}

	ndjson := nats.NewMsg(stream.IngestSubject)
	ndjson.Header.Set("Content-Type", "application/x-ndjson")
	ndjson.Data = []byte("{\"tag\":\"NATS.X\",\"message\":\"1\"}\n{\"tag\":\"NATS.X\",\"message\":\"2\"}\n")
	msg, err = h.nc.RequestMsg(ndjson, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := decodeResponse(t, msg.Data); r.Accepted != 2 {
		t.Errorf("ndjson reply = %s; want 2 accepted", msg.Data)
	}
	if n := len(h.stored(t)); n != 4 {
		t.Errorf("stream holds %d events; want 4", n)
	}
}

// While NATS is down ingest answers 503 with Retry-After, never 202; once
// it is back, ingest recovers by itself and nothing acknowledged was lost.
func TestUnavailableJetStreamAnswers503AndRecovers(t *testing.T) {
	h := newHarness(t, Config{PublishTimeout: 500 * time.Millisecond})
	body := `{"tag":"OUTAGE.TEST","message":"m"}`
	if status, _, b := h.post(t, "/v1/events", "application/json", body); status != http.StatusAccepted {
		t.Fatalf("before outage: %d %s", status, b)
	}

	h.ns.Shutdown()
	for i := range 3 {
		status, hdr, b := h.post(t, "/v1/events", "application/json", body)
		if status != http.StatusServiceUnavailable {
			t.Fatalf("during outage, request %d = %d %s; want 503", i, status, b)
		}
		if hdr.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		decodeProblem(t, hdr, b)
	}

	h.ns.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, _, b := h.post(t, "/v1/events", "application/json", `{"id":"after","tag":"OUTAGE.TEST","message":"m"}`)
		if status == http.StatusAccepted {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after restart: %d %s", status, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The event accepted before the outage is still there. Publishes of
	// the outage were buffered by the client and may have reached the
	// stream after the reconnect; they were answered 503, so producers
	// retry them, which is why ids matter.
	stored := h.stored(t)
	if len(stored) < 2 || stored[0].Seq != 1 || stored[len(stored)-1].ID != "after" {
		t.Errorf("stream after outage holds %d events (first seq %d); want the pre-outage event first and the post-outage one last", len(stored), stored[0].Seq)
	}
}

func TestMetricsCountAcceptedAndRejected(t *testing.T) {
	ns := natstest.Start(t)
	nc := ns.Connect(t)
	js, err := stream.JetStream(nc, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc, err := New(Config{}, nc, js, Trust{}, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	svc.Mount(r)
	for _, body := range []string{`[{"tag":"A.B","message":"1"},{"tag":"A.B","message":"2"}]`, `{"tag":"A.B","timestamp":"yesterday"}`, `{`} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/events", bytes.NewBufferString(body)))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[name] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"eventsync_ingest_events_accepted_total":              2,
		"eventsync_ingest_events_duplicate_total":             0,
		"eventsync_ingest_requests_rejected_total{invalid}":   1,
		"eventsync_ingest_requests_rejected_total{malformed}": 1,
		"eventsync_ingest_publish_seconds":                    1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

// A full stream refuses new events (discard new) and ingest answers 503
// rather than letting JetStream delete events nobody has read.
func TestFullStreamAnswers503(t *testing.T) {
	h := newHarnessWithStream(t, Config{}, stream.Config{MaxBytes: 4 << 10})
	body := `{"tag":"FULL.STREAM","message":"` + strings.Repeat("x", 500) + `"}`
	var accepted int
	for i := 0; ; i++ {
		status, hdr, b := h.post(t, "/v1/events", "application/json", body)
		if status == http.StatusAccepted {
			accepted++
			if i > 100 {
				t.Fatalf("still accepting after %d events into a 4 KiB stream", i)
			}
			continue
		}
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			t.Fatalf("POST into a full stream = %d %s; want 503 with Retry-After", status, b)
		}
		break
	}
	if n := len(h.stored(t)); n != accepted || n == 0 {
		t.Errorf("stream holds %d events; want the %d accepted ones, none deleted", n, accepted)
	}
}

func TestGzipBodies(t *testing.T) {
	h := newHarness(t, Config{MaxBody: 4096})
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	send := func(body []byte, encoding string) int {
		req, _ := http.NewRequest("POST", h.url+"/v1/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", encoding)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name     string
		body     []byte
		encoding string
		want     int
	}{
		{"gzip", gz(`{"tag":"GZ.OK","message":"m"}`), "gzip", 202},
		{"not gzip", []byte(`{"tag":"GZ.OK","message":"m"}`), "gzip", 400},
		{"bomb: small compressed, large decompressed", gz(`{"tag":"GZ.OK","message":"` + strings.Repeat("a", 100000) + `"}`), "gzip", 413},
		{"unknown encoding", []byte(`{}`), "br", 415},
	}
	for _, tt := range tests {
		if got := send(tt.body, tt.encoding); got != tt.want {
			t.Errorf("%s: POST = %d; want %d", tt.name, got, tt.want)
		}
	}
	if got := h.stored(t); len(got) != 1 || got[0].Tag != "GZ.OK" {
		t.Errorf("stored %d events; want the one gzipped event", len(got))
	}
}
