package cli

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// eyeJWT signs a token as a client of The Eye does: HS256 with its
// secret_key's bytes as the key, sub = its client id.
func eyeJWT(t *testing.T, sub, secretKey, jti string) string {
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

// post sends one event with an Authorization value and returns the status.
func post(t *testing.T, base, authorization, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// `producers create --id --jwt-secret-raw` imports a client of The Eye:
// the tokens it signs with its secret_key then authenticate it.
func TestProducersCLIImport(t *testing.T) {
	base := startAdmin(t)
	env := map[string]string{"EVENTSYNC_SERVER": base, "EVENTSYNC_ADMIN_TOKEN": adminToken}
	const secretKey = "an Eye client's secret_key, as it is"

	out := mustCLI(t, env, "create", "--name", "eye-web", "--tags", "EYE.>", "--id", "eye.web-1", "--jwt-secret-raw", secretKey)
	for _, want := range []string{"Created producer eye-web (eye.web-1)", "password", "api key", "(imported)", "sub = eye.web-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("create --id --jwt-secret-raw output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, base64.RawURLEncoding.EncodeToString([]byte(secretKey))) {
		t.Errorf("create output repeats the imported secret:\n%s", out)
	}
	tok := "Bearer " + eyeJWT(t, "eye.web-1", secretKey, "cli-1")
	if status, body := post(t, base, tok, `{"tag":"EYE.HELLO"}`); status != http.StatusAccepted {
		t.Errorf("POST /v1/events with a token signed with the secret_key = %d %s; want 202", status, body)
	}
	if status, body := post(t, base, tok, `{"tag":"EYE.HELLO"}`); status != http.StatusUnauthorized {
		t.Errorf("POST /v1/events with the same token again = %d %s; want 401", status, body)
	}

	// --jwt-secret takes the key's bytes in base64url.
	p := decodeCLI[cliProducer](t, mustCLI(t, env, "create", "--json", "--name", "eye-app", "--id", "eye-app-2",
		"--jwt-secret", base64.URLEncoding.EncodeToString([]byte(secretKey))))
	if p.ID != "eye-app-2" || p.Credentials == nil || p.Credentials.JWTSecret != "" || p.Credentials.APIKey == "" {
		t.Errorf("create --json --id --jwt-secret = %+v; want id eye-app-2 with an API key and no JWT secret", p)
	}
	if status, body := post(t, base, "Bearer "+eyeJWT(t, "eye-app-2", secretKey, "cli-2"), `{"tag":"EYE.HELLO"}`); status != http.StatusAccepted {
		t.Errorf("POST /v1/events as eye-app-2 = %d %s; want 202", status, body)
	}
	if out := mustCLI(t, env, "get", "eye.web-1"); !strings.Contains(out, "eye.web-1") || !strings.Contains(out, "EYE.>") {
		t.Errorf("get eye.web-1 =\n%s; want the producer", out)
	}

	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"both secrets", []string{"create", "--name", "x", "--jwt-secret", "a", "--jwt-secret-raw", "b"}, "--jwt-secret or --jwt-secret-raw, not both"},
		{"empty raw secret", []string{"create", "--name", "x", "--jwt-secret-raw", ""}, "--jwt-secret-raw is empty"},
		{"short raw secret", []string{"create", "--name", "x", "--jwt-secret-raw", "short"}, "\n  /jwt_secret "},
		{"secret not base64url", []string{"create", "--name", "x", "--jwt-secret", secretKey}, "\n  /jwt_secret "},
		{"generated form", []string{"create", "--name", "x", "--id", "prd_eye"}, "\n  /id "},
		{"id with a space", []string{"create", "--name", "x", "--id", "eye web"}, "\n  /id "},
		{"id taken", []string{"create", "--name", "x", "--id", "eye.web-1"}, "409 Conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := cli(t, env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("producers %q = %v\n%s; want an error with %q", tt.args, err, out, tt.want)
			}
		})
	}

	out, err := cli(t, nil, "create", "-help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("producers create -help = %v; want flag.ErrHelp", err)
	}
	for _, want := range []string{"-id", "-jwt-secret ", "-jwt-secret-raw", "secret_key"} {
		if !strings.Contains(out, want) {
			t.Errorf("producers create -help lacks %q:\n%s", want, out)
		}
	}
}
