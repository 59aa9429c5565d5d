package portals

import (
	"errors"
	"net/http"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
)

func TestKindsTag(t *testing.T) {
	var m KindMap
	if err := m.Set("urn:acme:billing=BILLING, urn:acme:billing:legacy:=OLD.BILLING,build=CI"); err != nil {
		t.Fatal(err)
	}
	k := Kinds{Map: m}
	tests := []struct{ kind, want string }{
		{"", "DISPATCHER.UNKNOWN"},
		{"unknown", "DISPATCHER.UNKNOWN"},
		{"Unknown", "DISPATCHER.UNKNOWN"},
		// Unmapped URNs: the middle parts are the category, the last the code.
		{"urn:eventsync:database:connection:lost", "DATABASE.CONNECTION.LOST"},
		{"urn:acme:deploy:finished", "DEPLOY.FINISHED"},
		{"urn:acme:deploy", "DISPATCHER.DEPLOY"},
		{"urn:acme:a.b:c d/é", "A_B.C_D__"},
		{"urn:acme::x::y", "X.Y"},
		// Mapped: the longest prefix wins, on whole parts, ignoring case.
		{"urn:acme:billing:invoice:paid", "BILLING.INVOICE.PAID"},
		{"URN:ACME:Billing:charged", "BILLING.CHARGED"},
		{"urn:acme:billing:legacy:refund", "OLD.BILLING.REFUND"},
		{"urn:acme:billing", "BILLING.BILLING"},
		{"urn:acme:billingx:y", "BILLINGX.Y"},
		{"build:failed", "CI.FAILED"},
		// Neither a URN nor mapped: a code of the unknown tag's category.
		{"deploy.finished", "DISPATCHER.DEPLOY_FINISHED"},
		{"https://ci.example.com/kinds/failed", "DISPATCHER.HTTPS___CI_EXAMPLE_COM_KINDS_FAILED"},
	}
	for _, tt := range tests {
		if got := k.Tag(tt.kind); got != tt.want {
			t.Errorf("Tag(%q) = %q; want %q", tt.kind, got, tt.want)
		}
	}
	if got := (Kinds{Unknown: "LEGACY.EVENT"}).Tag("plain"); got != "LEGACY.PLAIN" {
		t.Errorf("Tag(plain) with unknown tag LEGACY.EVENT = %q; want LEGACY.PLAIN", got)
	}
}

func TestKindMapSet(t *testing.T) {
	for _, bad := range []string{"urn:acme", "=BILLING", "urn:acme=bad category", "urn:acme=A..B"} {
		var m KindMap
		if err := m.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil, %v; want an error", bad, m)
		}
	}
	var m KindMap
	if err := m.Set("urn:a:b:=X, build=CI.JOBS"); err != nil {
		t.Fatal(err)
	}
	if got, want := m.String(), "urn:a:b=X,build=CI.JOBS"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	var tag Tag
	if err := tag.Set("NOT_A_TAG"); err == nil {
		t.Error(`Tag.Set("NOT_A_TAG") = nil; want an error`)
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"},
		{"2024-05-06T07:08:09.123+02:00", "2024-05-06T07:08:09.123+02:00"},
		{"2024-05-06 07:08:09", "2024-05-06 07:08:09"},
		{"2024-05-06T07:08:09,5Z", "2024-05-06T07:08:09.5Z"},
		{"2024-05-06T07:08:09+0200", "2024-05-06T05:08:09Z"},
		{"2024-05-06T07:08:09.25-05", "2024-05-06T12:08:09.25Z"},
		{"20240506T070809Z", "2024-05-06T07:08:09Z"},
		{"yesterday", "yesterday"},
	}
	for _, tt := range tests {
		if got := timestamp(tt.in); got != tt.want {
			t.Errorf("timestamp(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestTranslate(t *testing.T) {
	k := Kinds{}
	tests := []struct {
		name string
		in   string
		want map[string]any
	}{
		{"every field",
			`{"timestamp":"2024-05-06T07:08:09+0000","kind":"urn:acme:db:connection:lost","message":"primary down","source":"urn:acme:host:db1",` +
				`"severity":"WARN","view_link":"https://ops.example.com/e/1","ack_link":"https://ops.example.com/e/1/ack","host":"db1","attempts":3,"tags":["a"]}`,
			map[string]any{
				"tag": "DB.CONNECTION.LOST", "message": "primary down", "source": "urn:acme:host:db1", "severity": "warning",
				"timestamp": "2024-05-06T07:08:09Z",
				"data": map[string]any{
					"_kind": "urn:acme:db:connection:lost", "_view_link": "https://ops.example.com/e/1", "_ack_link": "https://ops.example.com/e/1/ack",
					"host": "db1", "attempts": 3.0, "tags": []any{"a"},
				},
			}},
		{"only a message",
			`{"message":"hello"}`,
			map[string]any{"tag": "DISPATCHER.UNKNOWN", "message": "hello", "data": map[string]any{"_kind": "unknown"}}},
		{"a timestamp that is not a string goes to EventSync as it is",
			`{"message":"m","timestamp":17}`,
			map[string]any{"tag": "DISPATCHER.UNKNOWN", "message": "m", "timestamp": 17.0, "data": map[string]any{"_kind": "unknown"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := k.Translate([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := jsonv2.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Translate(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestTranslateRefuses(t *testing.T) {
	tests := []struct {
		in       string
		status   int
		pointers []string
	}{
		{`[{"message":"m"}]`, http.StatusBadRequest, nil},
		{`null`, http.StatusBadRequest, nil},
		{`{"message":"m","message":"n"}`, http.StatusBadRequest, nil},
		{`{"message":"m"`, http.StatusBadRequest, nil},
		{`{"kind":"urn:a:b:c"}`, http.StatusUnprocessableEntity, []string{"/message"}},
		{`{"message":null}`, http.StatusUnprocessableEntity, []string{"/message"}},
		{`{"message":""}`, http.StatusUnprocessableEntity, []string{"/message"}},
		{`{"message":"m","kind":7}`, http.StatusUnprocessableEntity, []string{"/kind"}},
		{`{"message":"m","severity":"high"}`, http.StatusUnprocessableEntity, []string{"/severity"}},
		{`{"message":"m","_view_link":"x"}`, http.StatusUnprocessableEntity, []string{"/_view_link"}},
	}
	for _, tt := range tests {
		_, err := Kinds{}.Translate([]byte(tt.in))
		var p *problem.Problem
		if !errors.As(err, &p) || p.Status != tt.status {
			t.Errorf("Translate(%s) = %v; want a %d problem", tt.in, err, tt.status)
			continue
		}
		var ptrs []string
		for _, fe := range p.Errors {
			ptrs = append(ptrs, fe.Pointer)
		}
		if diff := cmp.Diff(tt.pointers, ptrs); diff != "" {
			t.Errorf("Translate(%s) pointers (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestCanonicalPointer(t *testing.T) {
	for in, want := range map[string]string{
		"/tag": "/kind", "/code": "/kind", "/data/_view_link": "/view_link", "/data/host/0": "/host/0",
		"/message": "/message", "/data": "",
	} {
		if got := canonicalPointer(in); got != want {
			t.Errorf("canonicalPointer(%q) = %q; want %q", in, got, want)
		}
	}
}
