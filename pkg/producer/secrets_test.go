package producer

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestHashKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		if got := HashKey(tt.in); got != tt.want {
			t.Errorf("HashKey(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	s := Secrets{Password: "pw-secret", APIKey: "esk_key-secret", JWTSecret: "jwt-secret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("created", "secrets", s)
	for name, out := range map[string]string{
		"slog":   buf.String(),
		"%v":     fmt.Sprintf("%v", s),
		"%+v":    fmt.Sprintf("%+v", s),
		"%#v":    fmt.Sprintf("%#v", s),
		"%s":     fmt.Sprintf("%s", s),
		"Sprint": fmt.Sprint(s),
	} {
		for _, v := range []string{s.Password, s.APIKey, s.JWTSecret} {
			if strings.Contains(out, v) {
				t.Errorf("%s output %q holds %q", name, out, v)
			}
		}
	}
	if !strings.Contains(buf.String(), `"secrets":{"password":"REDACTED","api_key":"REDACTED","jwt_secret":"REDACTED"}`) {
		t.Errorf("slog output = %s; want the set secrets named and redacted", buf.String())
	}
}

func TestNewSecretsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		key, stored, err := newAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if !validID(id) || !apiKeyRE.MatchString(key) || len(key) != APIKeyLen || stored.SHA256 != HashKey(key) {
			t.Errorf("newID, newAPIKey = %q, %q; want the documented forms", id, key)
		}
		if seen[id] || seen[key] {
			t.Errorf("a generated id or key repeats")
		}
		seen[id], seen[key] = true, true
	}
}
