package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Ingest writes the client registry, so its guard re-seals the JWT secrets
// stored before a secrets key was set (the gate of every service only
// reads them).
func TestGuardResealsClientSecrets(t *testing.T) {
	ns := natstest.Start(t)
	js, err := stream.JetStream(ns.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A client registered while secrets were kept in clear.
	plain := startGate(t, js, access.Config{Auth: access.AuthClients, AdminToken: testAdminToken}, nil)
	p, sec, err := plain.Registry().Create(t.Context(), producer.Spec{Name: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), stream.ProducersBucket)
	if err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		t.Helper()
		e, err := kv.Get(t.Context(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var v producer.Producer
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			t.Fatal(err)
		}
		return v.Credentials.JWTSecret
	}
	if got := stored(); got != sec.JWTSecret {
		t.Fatalf("stored jwt_secret = %q; want it in clear before a key is set", got)
	}

	// Then a secrets key is set: the gate loads the clear secret, the
	// guard's Run seals it.
	gate := startGate(t, js, access.Config{Auth: access.AuthClients, AdminToken: testAdminToken, SecretsKey: sealed.GenerateKey()}, nil)
	if got, ok := gate.Registry().Get(p.ID); !ok || got.Credentials.JWTSecret != sec.JWTSecret {
		t.Fatalf("the keyed gate's Get(%s) = %v; want the clear secret", p.ID, ok)
	}
	g, err := OpenGuard(t.Context(), js, gate, GuardConfig{}, stream.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Guard.Run = %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !sealed.IsSealed(stored()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stored jwt_secret still %q; want it sealed by the guard", stored())
		}
	}
	e, err := kv.Get(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value()), sec.JWTSecret) {
		t.Errorf("the stored client still holds its clear JWT secret")
	}
	if got, ok := gate.Registry().Get(p.ID); !ok || got.Credentials.JWTSecret != sec.JWTSecret {
		t.Errorf("after the re-seal Get(%s) = %v; want the clear secret in memory", p.ID, ok)
	}
}
