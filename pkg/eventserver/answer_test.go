package eventserver

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/access/accesstest"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/producer"
)

// TestMessage: every refusal of EventSync becomes the event server's
// status and JSON string.
func TestMessage(t *testing.T) {
	for _, c := range []struct {
		status int
		reason string
		want   int
		body   string
	}{
		{400, "limit is required", 400, "Bad Request - limit is required"},
		{413, "body larger than 1 MiB", 400, "Bad Request - body larger than 1 MiB"},
		{415, "Content-Type must be JSON", 400, "Bad Request - Content-Type must be JSON"},
		{422, "data/order is required", 400, "Bad Request - data/order is required"},
		{409, "conflict", 400, "Bad Request - conflict"},
		{401, "wrong password", 401, "Unauthorized"},
		{403, "GET /x needs the read scope", 403, "Forbidden - GET /x needs the read scope"},
		{404, "unknown event", 404, "Not Found"},
		{405, "", 405, "Method Not Allowed"},
		{423, "category ORDERS is owned by producer p", 423, "Locked - Second writers not allowed"},
		{429, "over its rate limit", 429, "Too Many Requests"},
		{500, "", 500, "Internal Server Error - the request could not be completed"},
		{502, "upstream", 500, "Internal Server Error - upstream"},
		{503, "JetStream is unavailable", 503, "Service Unavailable - JetStream is unavailable"},
		{200, "", 500, "Internal Server Error - the request could not be completed"},
	} {
		got := Status(c.status)
		if body := Message(got, c.reason); got != c.want || body != c.body {
			t.Errorf("Status(%d), Message(%q) = %d, %q; want %d, %q", c.status, c.reason, got, body, c.want, c.body)
		}
	}
}

// TestDataRoundTrip: an event is read back as its producer sent it, the
// payload's members in their order, and payloads that could not be are
// refused.
func TestDataRoundTrip(t *testing.T) {
	var env envelope
	in := `{"event":{"name":"CREATED","version":"2.1"},"system":{"id":"alv1","time":"2017-09-06 13:58:12"},"trigger":{"type":"system"},"payload":{"z":1,"a":{"y":[1,2],"b":"<&>"},"m":null}}`
	if err := json.Unmarshal([]byte(in), &env); err != nil {
		t.Fatal(err)
	}
	d, err := data(env)
	if err != nil {
		t.Fatalf("data = %v", err)
	}
	wantData := `{"z":1,"a":{"y":[1,2],"b":"<&>"},"m":null,"_version":"2.1","_system":{"id":"alv1","time":"2017-09-06 13:58:12"},"_trigger":{"type":"system"}}`
	if string(d) != wantData {
		t.Errorf("data = %s; want %s", d, wantData)
	}
	b, err := marshal(render(stored{ID: "e1", Code: "CREATED", Data: d}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"eventId":"e1","event":{"name":"CREATED","version":"2.1","id":"e1"},"system":{"id":"alv1","time":"2017-09-06 13:58:12"},"trigger":{"type":"system"},"payload":{"z":1,"a":{"y":[1,2],"b":"<&>"},"m":null}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("rendered event (-want +got):\n%s", diff)
	}

	// Without version, system, trigger or payload: none comes back, the
	// payload is an empty object.
	b, _ = marshal(render(stored{ID: "e2", Code: "N", Data: []byte(`{}`)}))
	if want := `{"eventId":"e2","event":{"name":"N","id":"e2"},"payload":{}}`; string(b) != want {
		t.Errorf("bare event = %s; want %s", b, want)
	}

	for _, payload := range []string{`[1]`, `"x"`, `{"_system":1}`, `{"a":1} {"b":2}`} {
		env := envelope{Payload: json.RawMessage(payload)}
		if _, err := data(env); err == nil {
			t.Errorf("data of payload %s = nil error; want it refused", payload)
		}
	}
}

func TestIsRoute(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/v1/streams/ORDERS/events":     true,
		"/api/v1/streams/ORDERS/events/e1":  true,
		"/api/v1/streams/ORDERS/events/":    false,
		"/api/v1/streams//events":           false,
		"/api/v1/streams/ORDERS":            false,
		"/api/v1/streams/ORDERS/events/a/b": false,
		"/v1/events":                        false,
	} {
		if got := isRoute(path); got != want {
			t.Errorf("isRoute(%q) = %v; want %v", path, got, want)
		}
	}
}

// TestRefusals: with Refusals around a real access gate, the gate's
// refusals on the event server's routes are the event server's JSON
// strings, with their headers; other routes and the handlers' own answers
// pass unchanged.
func TestRefusals(t *testing.T) {
	ns := natstest.Start(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	gate := accesstest.Start(t, js, access.Config{Auth: access.AuthClients, AdminToken: "admin-token"})
	r := accesstest.Router(gate)
	New(r).Mount(r)
	r.Post("/v1/events", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	srv := httptest.NewServer(Refusals(r))
	t.Cleanup(srv.Close)

	p, sec, err := gate.Registry().Create(t.Context(), producer.Spec{Name: "writer", Tags: []string{"ORDERS.>"}})
	if err != nil {
		t.Fatal(err)
	}
	basic := func(password string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(p.ID+":"+password))
	}
	do := func(method, path, authorization string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(""))
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		req.Header.Set("X-Consumer-ID", "c1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, c := range []struct {
		name, method, path, authorization string
		status                            int
		contentType, body                 string
	}{
		{"no credentials", "GET", "/api/v1/streams/ORDERS/events?eventName=CREATED&limit=1", "", 401, ContentType, `"Unauthorized"`},
		{"wrong password", "GET", "/api/v1/streams/ORDERS/events?eventName=CREATED&limit=1", basic("wrong"), 401, ContentType, `"Unauthorized"`},
		{"wrong password on ACK", "POST", "/api/v1/streams/ORDERS/events/e1", basic("wrong"), 401, ContentType, `"Unauthorized"`},
		{"no read scope", "GET", "/api/v1/streams/ORDERS/events?eventName=CREATED&limit=1", basic(sec.Password), 403, ContentType,
			`"Forbidden - GET /api/v1/streams/{stream}/events needs the read scope"`},
		{"the handler's own answer", "GET", "/api/v1/streams/ORDERS/events?limit=1", "Bearer admin-token", 400, ContentType, `"Bad Request - eventName is required"`},
		{"another route", "POST", "/v1/events", "", 401, "application/problem+json", ""},
	} {
		status, h, body := do(c.method, c.path, c.authorization)
		if status != c.status || h.Get("Content-Type") != c.contentType || (c.body != "" && body != c.body) {
			t.Errorf("%s: %s %s = %d %q %s; want %d %q %s", c.name, c.method, c.path, status, h.Get("Content-Type"), body, c.status, c.contentType, c.body)
		}
		if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate on the 401", c.name)
		}
		if c.contentType == ContentType && h.Get("Content-Length") != "" && h.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Errorf("%s: Content-Length %s for a body of %d bytes", c.name, h.Get("Content-Length"), len(body))
		}
	}
}
