package ingest

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
)

func TestToProblem(t *testing.T) {
	challenge := `Basic realm="eventsync", charset="UTF-8", Bearer realm="eventsync"`
	tooMany := problem.New(429, "rate-limited", "slow down")
	tests := []struct {
		name          string
		err           error
		want          *problem.Problem // nil: an internal error
		wantChallenge string
	}{
		{
			name: "unauthenticated",
			err:  fmt.Errorf("http: %w", &auth.Error{Kind: auth.ErrMissing, Challenge: challenge, Detail: "missing Authorization header"}),
			want: &problem.Problem{Type: "https://eventsync.dev/problems/unauthenticated", Title: "Unauthorized", Status: 401,
				Detail: "missing Authorization header", Challenge: challenge},
			wantChallenge: challenge,
		},
		{
			name: "forbidden",
			err:  &auth.Error{Kind: auth.ErrDisabled, Detail: "producer prd_a is disabled"},
			want: &problem.Problem{Type: "https://eventsync.dev/problems/forbidden", Title: "Forbidden", Status: 403,
				Detail: "producer prd_a is disabled"},
		},
		{
			name: "problem as is",
			err:  tooMany,
			want: tooMany,
		},
		{
			name: "syntax",
			err:  &event.SyntaxError{Pointer: "/message", Detail: "must be a string"},
			want: &problem.Problem{Type: "https://eventsync.dev/problems/malformed", Title: "Bad Request", Status: 400,
				Detail: (&event.SyntaxError{Pointer: "/message", Detail: "must be a string"}).Error(),
				Errors: []problem.FieldError{{Pointer: "/message", Detail: "must be a string"}}},
		},
		{
			name: "invalid",
			err:  &event.ValidationError{Errors: []event.FieldError{{Pointer: "/tag", Detail: "is required"}}},
			want: &problem.Problem{Type: "https://eventsync.dev/problems/validation", Title: "Unprocessable Entity", Status: 422,
				Detail: "1 rule(s) broken; nothing was published", Errors: []problem.FieldError{{Pointer: "/tag", Detail: "is required"}}},
		},
		{
			name: "invalid beyond the list",
			err:  &event.ValidationError{Errors: []event.FieldError{{Pointer: "/0/tag", Detail: "is required"}}, More: 4},
			want: &problem.Problem{Type: "https://eventsync.dev/problems/validation", Title: "Unprocessable Entity", Status: 422,
				Detail: "5 rule(s) broken; the first 1 are listed; nothing was published", Errors: []problem.FieldError{{Pointer: "/0/tag", Detail: "is required"}}},
		},
		{
			name: "publish unavailable",
			err:  fmt.Errorf("%w: EVENTS: timeout", errUnavailable),
			want: problem.Unavailable("the event stream did not acknowledge in time; retry with the same ids", retryAfter),
		},
		{
			name: "replay store unavailable",
			err:  fmt.Errorf("remember jti: %w", auth.ErrUnavailable),
			want: problem.Unavailable("the event stream did not acknowledge in time; retry with the same ids", retryAfter),
		},
		{
			name: "internal",
			err:  errors.New("encode event: boom"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toProblem(tt.err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("toProblem(%v) mismatch (-want +got):\n%s", tt.err, diff)
			}
			if got == nil {
				return
			}
			w := httptest.NewRecorder()
			problem.Write(w, got)
			if w.Code != tt.want.Status || w.Header().Get("WWW-Authenticate") != tt.wantChallenge {
				t.Errorf("written as %d, WWW-Authenticate %q; want %d, %q", w.Code, w.Header().Get("WWW-Authenticate"), tt.want.Status, tt.wantChallenge)
			}
		})
	}
}
