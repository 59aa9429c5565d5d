package httpserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
)

// errGone is a domain error the test mapping knows.
var errGone = errors.New("gone")

// testProblem maps errGone, naming the request's path.
func testProblem(r *http.Request, err error) *problem.Problem {
	if errors.Is(err, errGone) {
		return problem.NotFound("nothing at " + r.URL.Path)
	}
	return nil
}

func TestHandle(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.7:4222: connection refused")
	limited := problem.New(http.StatusTooManyRequests, "rate-limited", "slow down")
	limited.RetryAfter = 2 * time.Second
	unauth := problem.New(http.StatusUnauthorized, "unauthenticated", "send credentials")
	unauth.Challenge = `Bearer realm="eventsync"`
	internal := `{"type":"https://eventsync.dev/problems/internal","title":"Internal Server Error","status":500}` + "\n"

	tests := []struct {
		name       string
		rep        Reply
		err        error
		toProblem  func(*http.Request, error) *problem.Problem
		wantStatus int
		wantHeader http.Header // expected values of these headers ("" for absent)
		wantBody   string
		wantLogged string // in the error log; "" for nothing logged
	}{
		{
			name: "body", rep: Reply{Status: http.StatusCreated, Body: map[string]int{"n": 1}, Header: http.Header{"Location": {"/v1/things/1"}}},
			wantStatus: 201, wantBody: `{"n":1}`,
			wantHeader: http.Header{"Content-Type": {"application/json"}, "Location": {"/v1/things/1"}, "Cache-Control": {""}},
		},
		{
			name: "zero status is 200", rep: Reply{Body: []string{}},
			wantStatus: 200, wantBody: `[]`, wantHeader: http.Header{"Content-Type": {"application/json"}},
		},
		{
			name: "no body", rep: Reply{Status: http.StatusNoContent},
			wantStatus: 204, wantHeader: http.Header{"Content-Type": {""}},
		},
		{
			name: "no store", rep: Reply{Status: http.StatusCreated, Body: map[string]string{"api_key": "esk_x"}, NoStore: true},
			wantStatus: 201, wantBody: `{"api_key":"esk_x"}`,
			wantHeader: http.Header{"Cache-Control": {"no-store"}, "Content-Type": {"application/json"}},
		},
		{
			name: "html is not escaped", rep: Reply{Body: map[string]string{"pattern": "<&>"}},
			wantStatus: 200, wantBody: `{"pattern":"<&>"}`,
		},
		{
			name: "problem as is", err: limited, toProblem: testProblem,
			wantStatus: 429, wantHeader: http.Header{"Retry-After": {"2"}, "Content-Type": {problem.ContentType}},
			wantBody: `{"type":"https://eventsync.dev/problems/rate-limited","title":"Too Many Requests","status":429,"detail":"slow down"}` + "\n",
		},
		{
			name: "wrapped problem as is", err: fmt.Errorf("authenticate: %w", unauth),
			wantStatus: 401, wantHeader: http.Header{"Www-Authenticate": {`Bearer realm="eventsync"`}},
			wantBody: `{"type":"https://eventsync.dev/problems/unauthenticated","title":"Unauthorized","status":401,"detail":"send credentials"}` + "\n",
		},
		{
			name: "mapped", err: fmt.Errorf("get thing: %w", errGone), toProblem: testProblem,
			wantStatus: 404, wantHeader: http.Header{"Content-Type": {problem.ContentType}},
			wantBody: `{"type":"https://eventsync.dev/problems/not-found","title":"Not Found","status":404,"detail":"nothing at /v1/things/1"}` + "\n",
		},
		{
			name: "unmapped", err: fmt.Errorf("read thing: %w", secret), toProblem: testProblem,
			wantStatus: 500, wantBody: internal, wantHeader: http.Header{"Content-Type": {problem.ContentType}},
			wantLogged: "connection refused",
		},
		{
			name: "unmapped without a mapping", err: errGone,
			wantStatus: 500, wantBody: internal, wantLogged: "gone",
		},
		{
			name: "body that does not encode", rep: Reply{Status: http.StatusCreated, Body: map[string]any{"c": make(chan int)}, NoStore: true},
			wantStatus: 500, wantBody: internal,
			wantHeader: http.Header{"Content-Type": {problem.ContentType}, "Cache-Control": {""}},
			wantLogged: "encode response",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
			h := Handle(log, tt.toProblem, func(*http.Request) (Reply, error) { return tt.rep, tt.err })
			w := httptest.NewRecorder()
			h(w, httptest.NewRequest("GET", "/v1/things/1", nil))

			if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
				t.Errorf("answer = %d %q; want %d %q", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v[0] {
					t.Errorf("%s = %q; want %q", k, got, v[0])
				}
			}
			if tt.err != nil && strings.Contains(w.Body.String(), tt.err.Error()) {
				t.Errorf("body %q leaks the error %q", w.Body, tt.err)
			}
			switch n := strings.Count(logs.String(), "\n"); {
			case tt.wantLogged == "" && n != 0:
				t.Errorf("logged %q; want nothing", logs.String())
			case tt.wantLogged != "" && (n != 1 || !strings.Contains(logs.String(), tt.wantLogged)):
				t.Errorf("logged %q; want one record with %q", logs.String(), tt.wantLogged)
			}
		})
	}
}

// TestHandleClientGone checks that an unmapped error of a request whose
// client went away is not logged as an error.
func TestHandleClientGone(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := Handle(log, nil, func(r *http.Request) (Reply, error) { return Reply{}, r.Context().Err() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	h(w, httptest.NewRequest("GET", "/v1/things", nil).WithContext(ctx))
	if w.Code != http.StatusInternalServerError || logs.Len() != 0 {
		t.Errorf("answer = %d, logged %q; want 500 and nothing logged", w.Code, logs.String())
	}
}

// TestHandleReusesBuffers checks that a recycled buffer never carries a
// previous answer into the next.
func TestHandleReusesBuffers(t *testing.T) {
	bodies := []any{
		map[string]string{"long": strings.Repeat("x", 1<<16)},
		map[string]int{"n": 1},
		[]int{1, 2, 3},
	}
	i := 0
	h := Handle(nil, nil, func(*http.Request) (Reply, error) {
		b := bodies[i%len(bodies)]
		i++
		return Reply{Body: b}, nil
	})
	want := []string{`{"long":"` + strings.Repeat("x", 1<<16) + `"}`, `{"n":1}`, `[1,2,3]`}
	for n := range 2 * len(bodies) {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest("GET", "/", nil))
		if diff := cmp.Diff(want[n%len(want)], w.Body.String()); diff != "" {
			t.Fatalf("request %d: body mismatch (-want +got):\n%s", n, diff)
		}
	}
}
