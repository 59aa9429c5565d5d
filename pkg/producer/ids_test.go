package producer

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/natstest"
)

// eyeKey is an Eye client's secret_key: a plain string whose bytes are the
// HMAC key.
const eyeKey = "the-eye-secret-key-of-client-42"

func rawSecret(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestImport creates producers under ids of another system with their own
// JWT secret, and checks that every registry operation finds them: a
// second registry through the bucket's watch, Update, Delete, and a new
// import of the same id once deleted.
func TestImport(t *testing.T) {
	srv := natstest.Start(t)
	r := start(t, srv)
	other := start(t, srv)
	for _, id := range []string{"eye-client-42", "eye.client.7", ".leading", "x", "trailing.", "a..b", strings.Repeat("i", MaxImportedIDLen)} {
		t.Run(id, func(t *testing.T) {
			padded := base64.URLEncoding.EncodeToString([]byte(eyeKey)) // padded base64url is accepted too
			p, sec, err := r.Create(t.Context(), Spec{Name: "n" + rawSecret(id)[:min(20, len(rawSecret(id)))], ID: id, JWTSecret: padded, Tags: []string{"EYE.>"}})
			if err != nil {
				t.Fatalf("Create(ID %q) error = %v", id, err)
			}
			if p.ID != id || p.Credentials.JWTSecret != rawSecret(eyeKey) {
				t.Errorf("Create(ID %q) = id %q, jwt secret %q; want the id and %q", id, p.ID, p.Credentials.JWTSecret, rawSecret(eyeKey))
			}
			if sec.JWTSecret != "" || sec.Password == "" || sec.APIKey == "" {
				t.Errorf("Create(ID %q) secrets: jwt %t, password %t, api key %t; want only password and API key (the JWT secret is the admin's own)",
					id, sec.JWTSecret != "", sec.Password != "", sec.APIKey != "")
			}
			if got, ok := r.Get(id); !ok || got.Credentials.JWTSecret != rawSecret(eyeKey) {
				t.Errorf("Get(%q) = %v, %t; want the producer", id, got, ok)
			}
			eventually(t, "the other registry sees "+id, func() bool { _, ok := other.Get(id); return ok })
			if !r.CheckPassword(&p, sec.Password) {
				t.Errorf("CheckPassword(%q) = false; want true", id)
			}

			if _, _, err := r.Create(t.Context(), Spec{Name: "again", ID: id}); !errors.Is(err, ErrIDTaken) {
				t.Errorf("Create(ID %q) again error = %v; want ErrIDTaken", id, err)
			}

			up, err := r.Update(t.Context(), id, func(p *Producer) error { p.Tags = []string{"EYE.PAGE.*"}; return nil })
			if err != nil || up.ID != id || !cmp.Equal(up.Tags, []string{"EYE.PAGE.*"}) {
				t.Errorf("Update(%q) = %v, %v; want the new tags", id, up, err)
			}
			eventually(t, "the other registry sees the update of "+id, func() bool {
				p, ok := other.Get(id)
				return ok && cmp.Equal(p.Tags, []string{"EYE.PAGE.*"})
			})
			if _, _, err := r.Rotate(t.Context(), id, CredentialJWTSecret); err != nil {
				t.Errorf("Rotate(%q) error = %v", id, err)
			}

			if err := r.Delete(t.Context(), id); err != nil {
				t.Fatalf("Delete(%q) error = %v", id, err)
			}
			eventually(t, "the other registry forgets "+id, func() bool { _, ok := other.Get(id); return !ok })
			if _, _, err := r.Create(t.Context(), Spec{Name: "n" + rawSecret(id)[:min(20, len(rawSecret(id)))], ID: id, JWTSecret: rawSecret(eyeKey)}); err != nil {
				t.Errorf("Create(ID %q) after Delete error = %v", id, err)
			}
		})
	}
}

// TestImportRefused covers the ids and secrets an import refuses, each
// named by its pointer, with nothing created.
func TestImportRefused(t *testing.T) {
	r := start(t, natstest.Start(t))
	good := rawSecret(eyeKey)
	tests := []struct {
		name   string
		spec   Spec
		errors []FieldError // pointer and a part of the detail
	}{
		{"id too long", Spec{ID: strings.Repeat("i", MaxImportedIDLen+1)}, []FieldError{{"/id", "1 to 128"}}},
		{"id with a space", Spec{ID: "eye client"}, []FieldError{{"/id", "only ASCII letters"}}},
		{"id with a slash", Spec{ID: "eye/client"}, []FieldError{{"/id", "only ASCII letters"}}},
		{"id with an equals sign", Spec{ID: "eye=client"}, []FieldError{{"/id", "only ASCII letters"}}},
		{"id with a colon", Spec{ID: "eye:client"}, []FieldError{{"/id", "only ASCII letters"}}},
		{"id non-ASCII", Spec{ID: "äuge"}, []FieldError{{"/id", "only ASCII letters"}}},
		{"generated form", Spec{ID: "prd_0190c1e83b5c7d2a9f3e5a1b2c3d4e5f"}, []FieldError{{"/id", `must not start with "prd_"`}}},
		{"id starting with prd_", Spec{ID: "prd_eye"}, []FieldError{{"/id", `must not start with "prd_"`}}},
		{"admin", Spec{ID: "admin"}, []FieldError{{"/id", "reserved"}}},
		{"Admin", Spec{ID: "Admin"}, []FieldError{{"/id", "reserved"}}},
		{"dot", Spec{ID: "."}, []FieldError{{"/id", "reserved"}}},
		{"dot dot", Spec{ID: ".."}, []FieldError{{"/id", "reserved"}}},
		{"secret not base64url", Spec{JWTSecret: "not base64!"}, []FieldError{{"/jwt_secret", "base64url"}}},
		{"secret in standard base64", Spec{JWTSecret: base64.StdEncoding.EncodeToString([]byte("??>>??>>??>>??>>??"))}, []FieldError{{"/jwt_secret", "base64url"}}},
		{"secret too short", Spec{JWTSecret: rawSecret(strings.Repeat("k", MinImportedSecretLen-1))}, []FieldError{{"/jwt_secret", "16 to 1024 bytes, got 15"}}},
		{"secret too long", Spec{JWTSecret: rawSecret(strings.Repeat("k", MaxImportedSecretLen+1))}, []FieldError{{"/jwt_secret", "got 1025"}}},
		{"every rule at once", Spec{Name: "", ID: "prd_x", JWTSecret: "AA"}, []FieldError{{"/name", "empty"}, {"/id", "prd_"}, {"/jwt_secret", "got 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			if spec.Name == "" && tt.name != "every rule at once" {
				spec.Name = "refused"
			}
			if spec.JWTSecret == "" {
				spec.JWTSecret = good
			}
			_, _, err := r.Create(t.Context(), spec)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Create(%+v) error = %v; want a *ValidationError", tt.spec, err)
			}
			match := len(ve.Errors) == len(tt.errors)
			for i := 0; match && i < len(tt.errors); i++ {
				match = ve.Errors[i].Pointer == tt.errors[i].Pointer && strings.Contains(ve.Errors[i].Detail, tt.errors[i].Detail)
			}
			if !match {
				t.Errorf("Create(%+v) errors = %q; want %q", tt.spec, ve.Errors, tt.errors)
			}
		})
	}
	if ps := r.List(); len(ps) != 0 {
		t.Errorf("List() = %d producers after refused imports; want none", len(ps))
	}
}

// TestImportedNATSUsers checks that an imported producer gets its NATS
// user from the bucket's raw contents, with an inbox prefix of one token.
func TestImportedNATSUsers(t *testing.T) {
	const hash = "$2a$10$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ"
	producers := map[string][]byte{
		"imp.eye=client": []byte(`{"id":"eye.client","name":"eye","enabled":true,"tags":["EYE.>"],"credentials":{"password_hash":"` + hash + `"}}`),
		"imp.eye":        []byte(`{"id":"eye","name":"eye2","enabled":true,"tags":["EYE.>"],"credentials":{"password_hash":"` + hash + `"}}`),
		"imp.moved":      []byte(`{"id":"elsewhere","enabled":true,"credentials":{"password_hash":"` + hash + `"}}`),
		"name.eye":       []byte(`eye.client`),
	}
	got, err := DecodeNATSUsers(producers, nil, false)
	want := []NATSUser{
		{User: "eye", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest"}, SubscribeAllow: []string{"_INBOX.eye.>"}},
		{User: "eye.client", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest"}, SubscribeAllow: []string{"_INBOX.eye=client.>"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeNATSUsers mismatch (-want +got):\n%s", diff)
	}
	if err == nil || !strings.Contains(err.Error(), `producer moved: stored with id "elsewhere"`) {
		t.Errorf("DecodeNATSUsers error = %v; want it to name the record stored under another id", err)
	}
}

func TestRecordKey(t *testing.T) {
	for _, tt := range []struct{ id, key string }{
		{"prd_0190c1e83b5c7d2a9f3e5a1b2c3d4e5f", "prd_0190c1e83b5c7d2a9f3e5a1b2c3d4e5f"},
		{"eye-client", "imp.eye-client"},
		{"eye.client", "imp.eye=client"},
		{".a..b.", "imp.=a==b="},
	} {
		if got := recordKey(tt.id); got != tt.key {
			t.Errorf("recordKey(%q) = %q; want %q", tt.id, got, tt.key)
		}
		if id, ok := idOfKey(tt.key); !ok || id != tt.id {
			t.Errorf("idOfKey(%q) = %q, %t; want %q", tt.key, id, ok, tt.id)
		}
	}
	for _, key := range []string{"name.eye", "imp.", "other"} {
		if id, ok := idOfKey(key); ok {
			t.Errorf("idOfKey(%q) = %q; want no producer", key, id)
		}
	}
}
