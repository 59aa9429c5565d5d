package app_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

// startSecured starts the all-in-one with producer authentication and an
// admin token.
func startSecured(t *testing.T) string {
	t.Helper()
	return apptest.Start(t, nil, "--auth", "producers", "--admin-token", "admin-secret", "--claim-on-first-write").Base
}

// call sends a request and returns the status and decoded JSON body.
func call(t *testing.T, method, url, authorization, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, resp.Header
}

type credentials struct {
	id, password, apiKey, jwtSecret string
}

func createProducer(t *testing.T, base, body string) credentials {
	t.Helper()
	status, out, _ := call(t, "POST", base+"/v1/producers", "Bearer admin-secret", body)
	if status != http.StatusCreated {
		t.Fatalf("create producer %s = %d %v", body, status, out)
	}
	c, _ := out["credentials"].(map[string]any)
	return credentials{id: out["id"].(string), password: c["password"].(string), apiKey: c["api_key"].(string), jwtSecret: c["jwt_secret"].(string)}
}

func (c credentials) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.password))
}

func (c credentials) jwt(t *testing.T, jti string) string {
	t.Helper()
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.jwtSecret, "="))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": c.id, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": jti, "gty": "client-credentials",
	})
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// TestProducerTrustEndToEnd: producers created through the admin API write
// with each kind of credential, only their tags, only unowned or their own
// categories, and only data their category's schema accepts.
func TestProducerTrustEndToEnd(t *testing.T) {
	base := startSecured(t)
	billing := createProducer(t, base, `{"name":"billing","tags":["BILLING.>"],"owns":["BILLING"]}`)
	ops := createProducer(t, base, `{"name":"ops","tags":[">"]}`)
	event := func(tag string) string { return `{"tag":"` + tag + `","message":"m","data":{"amount":5}}` }

	for _, tt := range []struct {
		name, authorization, body string
		status                    int
	}{
		{"basic", billing.basic(), event("BILLING.CHARGED"), 202},
		{"api key", "Bearer " + billing.apiKey, event("BILLING.CHARGED"), 202},
		{"jwt", billing.jwt(t, "t-1"), event("BILLING.CHARGED"), 202},
		{"jwt replayed", billing.jwt(t, "t-1"), event("BILLING.CHARGED"), 401},
		{"no credentials", "", event("BILLING.CHARGED"), 401},
		{"wrong password", "Basic " + base64.StdEncoding.EncodeToString([]byte(billing.id+":nope")), event("BILLING.CHARGED"), 401},
		{"unknown api key", "Bearer esk_" + strings.Repeat("A", 43), event("BILLING.CHARGED"), 401},
		{"tag outside its patterns", billing.basic(), event("OPS.DEPLOYED"), 403},
		{"category owned by another", ops.basic(), event("BILLING.CHARGED"), 423},
		{"other producer, free category", ops.basic(), event("OPS.DEPLOYED"), 202},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, out, hdr := call(t, "POST", base+"/v1/events", tt.authorization, tt.body)
			if status != tt.status {
				t.Fatalf("POST = %d %v; want %d", status, out, tt.status)
			}
			if status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if status == 423 && out["owner"] != billing.id {
				t.Errorf("423 owner = %v; want %s", out["owner"], billing.id)
			}
		})
	}

	// A schema for BILLING: amount must be a number.
	status, out, _ := call(t, "PUT", base+"/v1/schemas/BILLING", "Bearer admin-secret",
		`{"type":"object","required":["amount"],"properties":{"amount":{"type":"number"}}}`)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("PUT schema = %d %v", status, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, out, _ = call(t, "POST", base+"/v1/events:validate", billing.basic(), `{"tag":"BILLING.CHARGED","message":"m","data":{"amount":"five"}}`)
		if status == 422 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != 422 || !strings.Contains(jsonString(out), "/data/amount") {
		t.Errorf("invalid data = %d %v; want 422 pointing at /data/amount", status, out)
	}

	// Disabling a producer takes effect without a restart.
	if status, out, _ := call(t, "POST", base+"/v1/producers/"+ops.id+"/disable", "Bearer admin-secret", ""); status != 200 {
		t.Fatalf("disable = %d %v", status, out)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, _, _ = call(t, "POST", base+"/v1/events", ops.basic(), event("OPS.DEPLOYED"))
		if status == 403 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != 403 {
		t.Errorf("disabled producer = %d; want 403", status)
	}

	// Stored events carry their producer: 3 from billing, 1 from ops.
	type page struct {
		Events []struct {
			Tag      string `json:"tag"`
			Producer string `json:"producer"`
		} `json:"events"`
	}
	var p page
	for deadline = time.Now().Add(10 * time.Second); len(p.Events) < 4 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		p = getAuth[page](t, base+"/v1/events?since=0&limit=100", "Bearer admin-secret")
	}
	by := map[string]int{}
	for _, e := range p.Events {
		by[e.Tag+" "+e.Producer]++
	}
	if by["BILLING.CHARGED "+billing.id] != 3 || by["OPS.DEPLOYED "+ops.id] != 1 || len(p.Events) != 4 {
		t.Errorf("stored events by tag and producer = %v; want 3 from billing, 1 from ops", by)
	}
	if status, _, _ := call(t, "GET", base+"/v1/producers", "", ""); status != 401 {
		t.Errorf("admin API without the token = %d; want 401", status)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
