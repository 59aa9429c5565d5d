package httpserve

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"

	"github.com/go-chi/cors"
)

// RequestIDHeader carries a request's id in requests and responses.
const RequestIDHeader = "X-Request-ID"

// MaxRequestIDLen is the longest incoming request id that is kept.
const MaxRequestIDLen = 64

// requestIDKey is the context key of the request id.
type requestIDKey struct{}

// RequestID gives every request an id: the caller's X-Request-ID when it is
// 1–64 characters of [A-Za-z0-9._-], else a new random one. The id is set
// on the response before the handler runs and stored in the request's
// context (see RequestIDFrom), so logs and answers can name it.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// RequestIDFrom returns the request id RequestID stored in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID reports whether a caller's request id can be echoed: it
// ends up in logs and headers, so only a short, plain token is trusted.
func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// corsMaxAge is how long browsers may cache a preflight answer, in seconds.
const corsMaxAge = 600

// CORS returns a middleware that lets browser pages from origins call the
// API. An empty list adds no CORS headers at all (browsers then refuse
// cross-origin calls); "*" allows any origin; an origin may hold one '*'
// wildcard ("https://*.example.com"). Credentials travel in the
// Authorization header, never in cookies, so none are allowed.
func CORS(origins []string) func(http.Handler) http.Handler {
	// A list read from an empty setting may hold blank entries.
	var allowed []string
	for _, o := range origins {
		if o = strings.TrimSpace(o); o != "" {
			allowed = append(allowed, o)
		}
	}
	if len(allowed) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	return cors.Handler(cors.Options{
		AllowedOrigins: allowed,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions},
		AllowedHeaders: []string{"Authorization", "Content-Type", RequestIDHeader, "Last-Event-ID"},
		ExposedHeaders: []string{RequestIDHeader, "Retry-After"},
		MaxAge:         corsMaxAge,
	})
}
