package client

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// producerJSON is a producer as the admin API answers it.
const producerJSON = `{"id":"prd_1","name":"billing","enabled":true,"tags":["BILLING.>"],` +
	`"scopes":{"read":["BILLING.>","ORDERS.*"],"subscribe":[],"consume":["BILLING.*"],"admin":false},"owns":["BILLING"],"owned":["BILLING"],` +
	`"rate":{"per_second":100,"burst":200},"created_at":"2026-11-23T08:00:00Z","last_seen":"2026-11-23T09:00:00Z",` +
	`"api_keys":[{"prefix":"esk_abcdefgh","created_at":"2026-11-23T08:00:00Z"}]`

// Every producer method sends the admin token to its route and body.
func TestProducerRequests(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		switch {
		case c.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(c.Path, "/nats-config"):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "authorization {}\n")
		case c.Path == "/v1/producers" && c.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"producers":[`+producerJSON+`}]}`)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, producerJSON+`}`)
		}
	})
	c, _ := newClient(t, s, WithAdminToken("adm"), WithAPIKey("esk_producer"))
	ctx := t.Context()
	name, off, none := "payments", false, []string{}
	calls := []func() error{
		func() error {
			_, err := c.CreateProducer(ctx, ProducerSpec{Name: "billing", Tags: []string{"BILLING.>"}, Rate: Rate{PerSecond: 100, Burst: 200}})
			return err
		},
		func() error { _, err := c.Producers(ctx); return err },
		func() error { _, err := c.Producer(ctx, "prd/1"); return err },
		func() error { _, err := c.UpdateProducer(ctx, "prd_1", ProducerUpdate{Name: &name}); return err },
		func() error {
			_, err := c.CreateProducer(ctx, ProducerSpec{Name: "board", Scopes: Scopes{Read: []string{"BILLING.>"}, Subscribe: []string{">"}}})
			return err
		},
		func() error {
			_, err := c.UpdateProducer(ctx, "prd_1", ProducerUpdate{Scopes: &Scopes{Consume: []string{"A.*"}, Admin: true}})
			return err
		},
		func() error { _, err := c.UpdateProducer(ctx, "prd_1", ProducerUpdate{Scopes: &Scopes{}}); return err },
		func() error {
			_, err := c.UpdateProducer(ctx, "prd_1", ProducerUpdate{Owns: &none, Rate: &Rate{PerSecond: -1}, Enabled: &off})
			return err
		},
		func() error { _, err := c.SetProducerEnabled(ctx, "prd_1", false); return err },
		func() error { _, err := c.SetProducerEnabled(ctx, "prd_1", true); return err },
		func() error { _, err := c.RotateProducer(ctx, "prd_1", CredentialAPIKey); return err },
		func() error { return c.DeleteProducer(ctx, "prd_1") },
		func() error { _, err := c.NATSConfig(ctx, false); return err },
		func() error { _, err := c.NATSConfig(ctx, true); return err },
	}
	for i, f := range calls {
		if err := f(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	var got []string
	for _, c := range s.received() {
		if a := c.Header.Get("Authorization"); a != "Bearer adm" {
			t.Errorf("%s %s: Authorization = %q; want the admin token", c.Method, c.Path, a)
		}
		line := c.Method + " " + c.Path
		if c.Query != "" {
			line += "?" + c.Query
		}
		if len(c.Body) > 0 {
			line += " " + string(c.Body)
		}
		got = append(got, line)
	}
	want := []string{
		`POST /v1/producers {"name":"billing","tags":["BILLING.>"],"rate":{"per_second":100,"burst":200}}`,
		"GET /v1/producers",
		"GET /v1/producers/prd%2F1",
		`PATCH /v1/producers/prd_1 {"name":"payments"}`,
		`POST /v1/producers {"name":"board","scopes":{"read":["BILLING.>"],"subscribe":[">"]}}`,
		`PATCH /v1/producers/prd_1 {"scopes":{"consume":["A.*"],"admin":true}}`,
		`PATCH /v1/producers/prd_1 {"scopes":{}}`,
		`PATCH /v1/producers/prd_1 {"rate":{"per_second":-1,"burst":0},"owns":[],"enabled":false}`,
		"POST /v1/producers/prd_1/disable",
		"POST /v1/producers/prd_1/enable",
		`POST /v1/producers/prd_1/rotate {"credential":"api_key"}`,
		"DELETE /v1/producers/prd_1",
		"GET /v1/producers/nats-config",
		"GET /v1/producers/nats-config?direct=true",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestProducerAnswers(t *testing.T) {
	s := newServer(t, func(n int, c call, w http.ResponseWriter) {
		switch {
		case strings.HasSuffix(c.Path, "/rotate"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, producerJSON+`,"credentials":{"api_key":"esk_new"}}`)
		case strings.HasSuffix(c.Path, "/nats-config"):
			if a := c.Header.Get("Accept"); a != "text/plain" {
				t.Errorf("nats-config Accept = %q; want text/plain", a)
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "authorization {\n  users: []\n}\n")
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, producerJSON+`}`)
		}
	})
	c, _ := newClient(t, s, WithAdminToken("adm"))
	ctx := t.Context()
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	base := ProducerInfo{
		ID: "prd_1", Name: "billing", Enabled: true, Tags: []string{"BILLING.>"},
		Scopes: Scopes{Read: []string{"BILLING.>", "ORDERS.*"}, Subscribe: []string{}, Consume: []string{"BILLING.*"}},
		Owns:   []string{"BILLING"}, Owned: []string{"BILLING"},
		Rate: Rate{PerSecond: 100, Burst: 200}, CreatedAt: at, LastSeen: at.Add(time.Hour),
		APIKeys: []APIKey{{Prefix: "esk_abcdefgh", CreatedAt: at}},
	}

	p, err := c.Producer(ctx, "prd_1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&base, p); diff != "" {
		t.Errorf("Producer(%q) (-want +got):\n%s", "prd_1", diff)
	}

	p, err = c.RotateProducer(ctx, "prd_1", CredentialAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	rotated := base
	rotated.Credentials = &Credentials{APIKey: "esk_new"}
	if diff := cmp.Diff(&rotated, p); diff != "" {
		t.Errorf("RotateProducer(%q, %q) (-want +got):\n%s", "prd_1", CredentialAPIKey, diff)
	}

	conf, err := c.NATSConfig(ctx, false)
	if want := "authorization {\n  users: []\n}\n"; err != nil || conf != want {
		t.Errorf("NATSConfig(false) = %q, %v; want %q", conf, err, want)
	}
}

// Error answers of the admin API come back as an *Error, and refused
// changes are not sent again.
func TestProducerErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		call   func(c *Client) error
		want   Error
	}{
		{"not found", 404, `{"type":"https://eventsync.dev/problems/not-found","title":"Not Found","status":404,"detail":"no producer has this id"}`,
			func(c *Client) error { _, err := c.Producer(t.Context(), "prd_x"); return err },
			Error{Status: 404, Type: "https://eventsync.dev/problems/not-found", Title: "Not Found", Detail: "no producer has this id"}},
		{"name taken", 409, `{"type":"https://eventsync.dev/problems/name-taken","title":"Conflict","status":409,"detail":"name taken","errors":[{"pointer":"/name","detail":"is taken by another producer"}]}`,
			func(c *Client) error {
				n := "orders"
				_, err := c.UpdateProducer(t.Context(), "prd_1", ProducerUpdate{Name: &n})
				return err
			},
			Error{Status: 409, Type: "https://eventsync.dev/problems/name-taken", Title: "Conflict", Detail: "name taken",
				Errors: []FieldError{{Pointer: "/name", Detail: "is taken by another producer"}}}},
		{"bad credential", 422, `{"type":"https://eventsync.dev/problems/invalid","title":"Unprocessable Entity","status":422,"detail":"invalid"}`,
			func(c *Client) error { _, err := c.RotateProducer(t.Context(), "prd_1", "token"); return err },
			Error{Status: 422, Type: "https://eventsync.dev/problems/invalid", Title: "Unprocessable Entity", Detail: "invalid"}},
		{"bad token", 401, `{"type":"https://eventsync.dev/problems/unauthenticated","title":"Unauthorized","status":401,"detail":"the admin token is not valid"}`,
			func(c *Client) error { _, err := c.NATSConfig(t.Context(), true); return err },
			Error{Status: 401, Type: "https://eventsync.dev/problems/unauthenticated", Title: "Unauthorized", Detail: "the admin token is not valid"}},
		{"delete unknown", 404, `{"type":"https://eventsync.dev/problems/not-found","title":"Not Found","status":404,"detail":"no producer has this id"}`,
			func(c *Client) error { return c.DeleteProducer(t.Context(), "prd_x") },
			Error{Status: 404, Type: "https://eventsync.dev/problems/not-found", Title: "Not Found", Detail: "no producer has this id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, c call, w http.ResponseWriter) { writeProblem(w, tt.status, tt.body) })
			c, _ := newClient(t, s, WithAdminToken("adm"))
			err := tt.call(c)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error = %v; want an *Error", err)
			}
			if diff := cmp.Diff(tt.want, *e); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := len(s.received()); n != 1 {
				t.Errorf("requests = %d; want 1", n)
			}
		})
	}
}
