package producers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// eyeSecretKey is the secret_key of a client of The Eye: a plain string
// whose bytes are the HMAC key of the tokens it signs.
const eyeSecretKey = "s3cret-key-of-an-eye-client!"

// eyeToken signs a token the way The Eye's applications do: HS256 with
// secret_key's bytes, claims jti, gty, sub, iat and exp.
func eyeToken(t *testing.T, sub, secretKey, jti string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now().Unix()
	claims, err := json.Marshal(map[string]any{"jti": jti, "gty": "client-credentials", "sub": sub, "iat": now, "exp": now + 300})
	if err != nil {
		t.Fatal(err)
	}
	signed := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(secretKey))
	mac.Write([]byte(signed))
	return signed + "." + enc(mac.Sum(nil))
}

// TestImport imports clients of The Eye with their id and secret_key
// through POST /v1/producers, and checks that the tokens they sign
// authenticate them (once per jti), that the imported id works on every
// route of a producer, and what the API refuses.
func TestImport(t *testing.T) {
	e := newEnv(t, token)
	secret := base64.RawURLEncoding.EncodeToString([]byte(eyeSecretKey))
	body := `{"name":"eye-42","id":"eye.client-42","jwt_secret":"` + secret + `","scopes":{"admin":true}}`
	c := e.create(body)
	if c.ID != "eye.client-42" || c.Credentials == nil || c.Credentials.JWTSecret != "" || c.Credentials.Password == "" || c.Credentials.APIKey == "" {
		t.Fatalf("POST /v1/producers %s = %+v; want id eye.client-42, a password and an API key, and no JWT secret (the admin gave it)", body, c)
	}

	// The token an Eye application signs with its secret_key.
	tok := "Bearer " + eyeToken(t, "eye.client-42", eyeSecretKey, "jti-1")
	if r := e.do("GET", "/v1/producers", tok, "", ""); r.status != http.StatusOK {
		t.Errorf("GET /v1/producers with an Eye token = %d %s; want 200", r.status, r.body)
	}
	if r := e.do("GET", "/v1/producers", tok, "", ""); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "jti") {
		t.Errorf("GET /v1/producers with the same token again = %d %s; want 401 naming the jti", r.status, r.body)
	}
	if r := e.do("GET", "/v1/producers", "Bearer "+eyeToken(t, "eye.client-42", "another key", "jti-2"), "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/producers with a token signed with another key = %d %s; want 401", r.status, r.body)
	}

	path := "/v1/producers/" + url.PathEscape(c.ID)
	var got view
	if r := e.call("GET", path, "", &got); r.status != http.StatusOK || got.ID != c.ID {
		t.Errorf("GET %s = %d %s; want the producer", path, r.status, r.body)
	}
	if r := e.call("PATCH", path, `{"tags":["EYE.>"]}`, &got); r.status != http.StatusOK || !cmp.Equal(got.Tags, []string{"EYE.>"}) {
		t.Errorf("PATCH %s = %d %s; want tags EYE.>", path, r.status, r.body)
	}
	if r := e.call("POST", path+"/disable", "", &got); r.status != http.StatusOK || got.Enabled {
		t.Errorf("POST %s/disable = %d %s; want disabled", path, r.status, r.body)
	}
	if r := e.do("GET", "/v1/producers", "Bearer "+eyeToken(t, "eye.client-42", eyeSecretKey, "jti-3"), "", ""); r.status != http.StatusForbidden {
		t.Errorf("GET /v1/producers as the disabled client = %d %s; want 403", r.status, r.body)
	}
	if r := e.call("DELETE", path, "", nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE %s = %d %s; want 204", path, r.status, r.body)
	}
	if r := e.do("GET", "/v1/producers", "Bearer "+eyeToken(t, "eye.client-42", eyeSecretKey, "jti-4"), "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/producers as the deleted client = %d %s; want 401", r.status, r.body)
	}

	e.create(`{"name":"eye-7","id":"eye-7"}`) // an id alone: the JWT secret is generated
	tests := []struct {
		name, body string
		want       int
		pointers   []string
	}{
		{"id taken", `{"name":"eye-7b","id":"eye-7"}`, http.StatusConflict, []string{"/id"}},
		{"generated form", `{"name":"x1","id":"prd_0123456789abcdef0123456789abcdef"}`, http.StatusUnprocessableEntity, []string{"/id"}},
		{"bad characters", `{"name":"x2","id":"eye client/1"}`, http.StatusUnprocessableEntity, []string{"/id"}},
		{"reserved", `{"name":"x3","id":"admin"}`, http.StatusUnprocessableEntity, []string{"/id"}},
		{"id too long", `{"name":"x4","id":"` + strings.Repeat("i", 129) + `"}`, http.StatusUnprocessableEntity, []string{"/id"}},
		{"secret not base64url", `{"name":"x5","jwt_secret":"` + eyeSecretKey + `"}`, http.StatusUnprocessableEntity, []string{"/jwt_secret"}},
		{"secret too short", `{"name":"x6","jwt_secret":"c2hvcnQ"}`, http.StatusUnprocessableEntity, []string{"/jwt_secret"}},
		{"every field", `{"name":"a b","id":"prd_x","jwt_secret":"!"}`, http.StatusUnprocessableEntity, []string{"/name", "/id", "/jwt_secret"}},
		{"id of the wrong type", `{"name":"x7","id":42}`, http.StatusUnprocessableEntity, []string{"/id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problemBody
			r := e.call("POST", "/v1/producers", tt.body, &p)
			if r.status != tt.want {
				t.Fatalf("POST /v1/producers %s = %d %s; want %d", tt.body, r.status, r.body, tt.want)
			}
			if diff := cmp.Diff(tt.pointers, p.pointers()); diff != "" {
				t.Errorf("pointers (-want +got):\n%s\n%s", diff, r.body)
			}
		})
	}
	if n := len(e.reg.List()); n != 1 {
		t.Errorf("%d producers after the refused imports; want 1 (eye-7)", n)
	}
}
