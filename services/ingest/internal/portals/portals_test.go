package portals

import (
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

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
)

// noIngest serves no POST /v1/events: the admin API does not publish.
type noIngest struct{}

func (noIngest) Mount(chi.Router) {}

// adminServer serves the admin API over a fresh NATS server, secrets
// sealed with a new key.
func adminServer(t *testing.T) (*httptest.Server, *Server) {
	t.Helper()
	js, err := stream.JetStream(natstest.Start(t).Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := sealed.ParseKeys(sealed.GenerateKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), js, keyring, Config{}, stream.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	s.Mount(r, noIngest{})
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return ts, s
}

func call(t *testing.T, ts *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func TestAdminAPI(t *testing.T) {
	ts, s := adminServer(t)
	const secret = "gl-webhook-token-1"

	status, v := call(t, ts, "PUT", "/v1/portals/gitlab-main", `{"type":"gitlab","secret":"`+secret+`"}`)
	if status != http.StatusCreated || v["secret"] != Masked || v["category"] != "GITLAB" || v["webhook"] != "/v1/portals/gitlab-main/webhook" {
		t.Fatalf("PUT new = %d %v; want 201, secret masked, category GITLAB, the webhook path", status, v)
	}
	// Sealed at rest, bound to the portal's name.
	e, err := s.store.kv.Get(t.Context(), "gitlab-main")
	if err != nil {
		t.Fatal(err)
	}
	if raw := string(e.Value()); strings.Contains(raw, secret) || !strings.Contains(raw, `"secret":"sealed:v1:`) {
		t.Errorf("stored value = %s; want the secret sealed", raw)
	}
	p, _, err := s.store.get(t.Context(), "gitlab-main")
	if err != nil || p.Secret != secret {
		t.Fatalf("get = %+v, %v; want the secret opened", p, err)
	}

	// Sent back masked (or left out), the secret is kept.
	if status, v := call(t, ts, "PUT", "/v1/portals/gitlab-main", `{"type":"gitlab","secret":"********","category":"CI.GITLAB"}`); status != http.StatusOK || v["category"] != "CI.GITLAB" {
		t.Errorf("PUT masked = %d %v; want 200 with the new category", status, v)
	}
	if p, _, err := s.store.get(t.Context(), "gitlab-main"); err != nil || p.Secret != secret || p.Category != "CI.GITLAB" {
		t.Errorf("after PUT masked: %+v, %v; want the secret kept", p, err)
	}
	if status, v := call(t, ts, "PUT", "/v1/portals/gitlab-main", `{"type":"github"}`); status != http.StatusUnprocessableEntity {
		t.Errorf("PUT type changed without a secret = %d %v; want 422", status, v)
	}

	for _, tt := range []struct{ path, body string }{
		{"/v1/portals/bad.name", `{"type":"gitlab","secret":"x"}`},
		{"/v1/portals/x", `{"type":"bitbucket","secret":"x"}`},
		{"/v1/portals/x", `{"type":"gitlab"}`},
		{"/v1/portals/x", `{"type":"standard","secret":"whsec_not base64!"}`},
		{"/v1/portals/x", `{"type":"github","secret":"x","category":"not a category"}`},
		{"/v1/portals/x", `{"type":"github","secret":"x","extra":1}`},
	} {
		if status, v := call(t, ts, "PUT", tt.path, tt.body); status != http.StatusUnprocessableEntity {
			t.Errorf("PUT %s %s = %d %v; want 422", tt.path, tt.body, status, v)
		}
	}

	if status, _ := call(t, ts, "PUT", "/v1/portals/sw", `{"type":"standard","secret":"`+standardDocSecret+`"}`); status != http.StatusCreated {
		t.Fatalf("PUT standard = %d; want 201", status)
	}
	status, v = call(t, ts, "GET", "/v1/portals", "")
	list, _ := v["portals"].([]any)
	if status != http.StatusOK || len(list) != 2 {
		t.Fatalf("GET list = %d %v; want both portals", status, v)
	}
	var names []string
	for _, p := range list {
		p := p.(map[string]any)
		names = append(names, p["name"].(string))
		if p["secret"] != Masked {
			t.Errorf("listed %v; want the secret masked", p)
		}
	}
	if diff := cmp.Diff([]string{"gitlab-main", "sw"}, names); diff != "" {
		t.Errorf("listed names (-want +got):\n%s", diff)
	}

	if status, _ := call(t, ts, "DELETE", "/v1/portals/sw", ""); status != http.StatusNoContent {
		t.Errorf("DELETE = %d; want 204", status)
	}
	for _, method := range []string{"GET", "DELETE"} {
		if status, _ := call(t, ts, method, "/v1/portals/sw", ""); status != http.StatusNotFound {
			t.Errorf("%s deleted = %d; want 404", method, status)
		}
	}
}
