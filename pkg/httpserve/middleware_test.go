package httpserve_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/httpserve"
)

func TestRequestID(t *testing.T) {
	long := strings.Repeat("a", httpserve.MaxRequestIDLen)
	tests := []struct {
		name     string
		incoming []string // X-Request-ID values sent; none: header absent
		keep     bool     // the first incoming id is echoed
	}{
		{name: "absent"},
		{name: "empty", incoming: []string{""}},
		{name: "plain", incoming: []string{"req-42"}, keep: true},
		{name: "every allowed character", incoming: []string{"AZaz09._-"}, keep: true},
		{name: "uuid", incoming: []string{"0190f6b8-7c4e-7a2e-9f00-1c2d3e4f5a6b"}, keep: true},
		{name: "64 characters", incoming: []string{long}, keep: true},
		{name: "65 characters", incoming: []string{long + "a"}},
		{name: "space", incoming: []string{"req 42"}},
		{name: "markup", incoming: []string{"<script>"}},
		{name: "log injection", incoming: []string{"a\\nlevel=error"}},
		{name: "non-ASCII", incoming: []string{"réq"}},
		{name: "slash", incoming: []string{"a/b"}},
		{name: "two values, first kept", incoming: []string{"first", "second"}, keep: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inCtx string
			h := httpserve.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx = httpserve.RequestIDFrom(r.Context())
				w.WriteHeader(http.StatusNoContent)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tt.incoming {
				req.Header.Add(httpserve.RequestIDHeader, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(httpserve.RequestIDHeader)
			if got != inCtx {
				t.Errorf("response X-Request-ID %q, context %q; want them equal", got, inCtx)
			}
			if tt.keep {
				if got != tt.incoming[0] {
					t.Errorf("RequestID(%q) = %q; want it kept", tt.incoming[0], got)
				}
				return
			}
			if len(tt.incoming) > 0 && got == tt.incoming[0] {
				t.Errorf("RequestID(%q) = %q; want a new id", tt.incoming[0], got)
			}
			if !plainID(got) {
				t.Errorf("generated id %q; want 1-64 characters of [A-Za-z0-9._-]", got)
			}
		})
	}
}

func plainID(s string) bool {
	if s == "" || len(s) > httpserve.MaxRequestIDLen {
		return false
	}
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == ""
}

func TestRequestIDIsUnique(t *testing.T) {
	h := httpserve.RequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	seen := make(map[string]bool)
	for range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		id := rec.Header().Get(httpserve.RequestIDHeader)
		if seen[id] {
			t.Fatalf("RequestID generated %q twice", id)
		}
		seen[id] = true
	}
}

func TestRequestIDFromEmptyContext(t *testing.T) {
	if got := httpserve.RequestIDFrom(context.Background()); got != "" {
		t.Errorf("RequestIDFrom(background) = %q; want \"\"", got)
	}
}

func TestCORS(t *testing.T) {
	// corsHeaders are the response headers a test compares.
	corsHeaders := []string{
		"Access-Control-Allow-Origin",
		"Access-Control-Allow-Methods",
		"Access-Control-Allow-Headers",
		"Access-Control-Expose-Headers",
		"Access-Control-Max-Age",
		"Access-Control-Allow-Credentials",
	}
	preflight := func(origin, method, headers string) *http.Request {
		r := httptest.NewRequest(http.MethodOptions, "/v1/events", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			r.Header.Set("Access-Control-Request-Headers", headers)
		}
		return r
	}
	actual := func(method, origin string) *http.Request {
		r := httptest.NewRequest(method, "/v1/events", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		return r
	}
	const app = "https://app.example.com"
	exposed := "X-Request-Id, Retry-After"
	tests := []struct {
		name       string
		origins    []string
		req        *http.Request
		want       map[string]string
		wantStatus int
		wantNext   bool // the request reached the wrapped handler
	}{
		{
			name:       "no origins: no headers",
			req:        actual(http.MethodGet, app),
			want:       map[string]string{},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:       "blank origins: no headers",
			origins:    []string{"", " "},
			req:        actual(http.MethodGet, app),
			want:       map[string]string{},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:       "no origins: a preflight reaches the handler",
			req:        preflight(app, http.MethodPost, "authorization"),
			want:       map[string]string{},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:       "listed origin",
			origins:    []string{app},
			req:        actual(http.MethodPost, app),
			want:       map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Expose-Headers": exposed},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:       "wildcard origin",
			origins:    []string{"https://*.example.com"},
			req:        actual(http.MethodGet, app),
			want:       map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Expose-Headers": exposed},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:       "unlisted origin",
			origins:    []string{app},
			req:        actual(http.MethodGet, "https://evil.example.org"),
			want:       map[string]string{},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:       "same-origin request without Origin",
			origins:    []string{app},
			req:        actual(http.MethodGet, ""),
			want:       map[string]string{},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:       "any origin",
			origins:    []string{"*"},
			req:        actual(http.MethodDelete, "https://anyone.example.net"),
			want:       map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": exposed},
			wantStatus: http.StatusTeapot,
			wantNext:   true,
		},
		{
			name:    "preflight with every allowed header",
			origins: []string{app},
			req:     preflight(app, http.MethodPost, "authorization, content-type, x-request-id, last-event-id"),
			want: map[string]string{
				"Access-Control-Allow-Origin":  app,
				"Access-Control-Allow-Methods": http.MethodPost,
				"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-Id, Last-Event-Id",
				"Access-Control-Max-Age":       "600",
			},
			wantStatus: http.StatusOK,
		},
		{
			name:    "preflight of each method",
			origins: []string{"*"},
			req:     preflight(app, http.MethodPatch, ""),
			want: map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": http.MethodPatch,
				"Access-Control-Max-Age":       "600",
			},
			wantStatus: http.StatusOK,
		},
		{
			name:       "preflight of a method not allowed",
			origins:    []string{"*"},
			req:        preflight(app, "TRACE", ""),
			want:       map[string]string{},
			wantStatus: http.StatusOK,
		},
		{
			name:       "preflight of a header not allowed",
			origins:    []string{app},
			req:        preflight(app, http.MethodPost, "authorization, x-secret"),
			want:       map[string]string{},
			wantStatus: http.StatusOK,
		},
		{
			name:       "preflight from an unlisted origin",
			origins:    []string{app},
			req:        preflight("https://evil.example.org", http.MethodPost, "authorization"),
			want:       map[string]string{},
			wantStatus: http.StatusOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached := false
			h := httpserve.CORS(tt.origins)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				reached = true
				w.WriteHeader(http.StatusTeapot)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tt.req)
			got := map[string]string{}
			for _, k := range corsHeaders {
				if v := rec.Header().Get(k); v != "" {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CORS(%q) %s %s headers (-want +got):\n%s", tt.origins, tt.req.Method, tt.req.Header.Get("Origin"), diff)
			}
			if rec.Code != tt.wantStatus {
				t.Errorf("CORS(%q) %s status = %d; want %d", tt.origins, tt.req.Method, rec.Code, tt.wantStatus)
			}
			if reached != tt.wantNext {
				t.Errorf("CORS(%q) %s reached the handler = %v; want %v", tt.origins, tt.req.Method, reached, tt.wantNext)
			}
		})
	}
}
