package producers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
)

// Answers with a body may carry credentials: none may be cached.
func TestNoStore(t *testing.T) {
	e := newEnv(t, token)
	var c created
	res := e.call("POST", "/v1/producers", `{"name":"billing"}`, &c)
	if res.status != http.StatusCreated || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /v1/producers = %d, Cache-Control %q; want 201, no-store", res.status, res.header.Get("Cache-Control"))
	}
	for _, path := range []string{"/v1/producers", "/v1/producers/" + c.ID, "/v1/producers/nats-config"} {
		if res := e.call("GET", path, "", nil); res.status != http.StatusOK || res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s = %d, Cache-Control %q; want 200, no-store", path, res.status, res.header.Get("Cache-Control"))
		}
	}
	if res := e.call("DELETE", "/v1/producers/"+c.ID, "", nil); res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Errorf("DELETE = %d %q; want 204 without a body", res.status, res.body)
	}
}

func TestToProblem(t *testing.T) {
	a := &API{log: slog.New(slog.DiscardHandler)}
	tests := []struct {
		name string
		err  error
		want *problem.Problem // nil: an internal error
	}{
		{
			name: "invalid",
			err:  &producer.ValidationError{Errors: []producer.FieldError{{Pointer: "/name", Detail: "must not be empty"}, {Pointer: "/tags/0", Detail: "bad"}}},
			want: &problem.Problem{Type: "https://eventsync.dev/problems/validation", Title: "Unprocessable Entity", Status: 422,
				Detail: "the producer breaks 2 rule(s); see errors",
				Errors: []problem.FieldError{{Pointer: "/name", Detail: "must not be empty"}, {Pointer: "/tags/0", Detail: "bad"}}},
		},
		{
			name: "owned",
			err:  fmt.Errorf("claim: %w", &producer.OwnedError{Category: "BILLING", Owner: "prd_b"}),
			want: &problem.Problem{Type: "https://eventsync.dev/problems/category-owned", Title: "Conflict", Status: 409,
				Detail: "category BILLING is owned by producer prd_b", Owner: "prd_b",
				Errors: []problem.FieldError{{Pointer: "/owns", Detail: "category BILLING is owned by producer prd_b"}}},
		},
		{
			name: "not found",
			err:  fmt.Errorf("update producer p: %w", producer.ErrNotFound),
			want: problem.NotFound("no producer has this id"),
		},
		{
			name: "changed meanwhile",
			err:  fmt.Errorf("update producer p: %w", producer.ErrConflict),
			want: &problem.Problem{Type: "https://eventsync.dev/problems/conflict", Title: "Conflict", Status: 409,
				Detail: "the producer was changed by other requests meanwhile; try again"},
		},
		{
			name: "internal",
			err:  errors.New("encode producer: boom"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.toProblem(httptest.NewRequest("PATCH", "/v1/producers/p", nil), tt.err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("toProblem(%v) mismatch (-want +got):\n%s", tt.err, diff)
			}
		})
	}
}
