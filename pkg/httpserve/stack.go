package httpserve

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/problem"
)

// DefaultMaxBody is the largest request body the Stack accepts unless told
// otherwise. Handlers set tighter limits of their own (ingest's --max-body).
const DefaultMaxBody = 1 << 20

// StackOptions configure the middleware every EventSync route runs behind.
type StackOptions struct {
	Log       *slog.Logger
	AccessLog bool     // one line per request at info level (health probes at debug)
	MaxBody   int64    // largest request body in bytes; 0: DefaultMaxBody
	Origins   []string // CORS origins (see CORS)
	// Guard, when set, is the last middleware: given the router, it
	// decides which requests reach the routes (the access gate).
	Guard func(chi.Routes) func(http.Handler) http.Handler
}

// Stack returns the middleware of every route of every EventSync service,
// outermost first: request id, recover, access log, CORS, body limit.
func Stack(o StackOptions) []func(http.Handler) http.Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	log := o.Log.With("component", "http")
	mw := []func(http.Handler) http.Handler{RequestID, Recover(log)}
	if o.AccessLog {
		mw = append(mw, AccessLog(log))
	}
	return append(mw, CORS(o.Origins), MaxBody(o.MaxBody))
}

// NewRouter returns a router behind the Stack whose unknown paths and
// methods are answered with problem+json 404 and 405.
func NewRouter(o StackOptions) chi.Router {
	r := chi.NewRouter()
	r.Use(Stack(o)...)
	if o.Guard != nil {
		r.Use(o.Guard(r))
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.NotFound("no endpoint at "+r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.New(http.StatusMethodNotAllowed, "method-not-allowed", r.Method+" is not allowed on "+r.URL.Path))
	})
	return r
}

// Recover answers a handler's panic with a 500 problem that leaks nothing
// and logs it once with its stack. http.ErrAbortHandler is re-raised: it
// is how a handler asks the server to drop the connection.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { //nolint:errorlint // a sentinel value, compared as net/http does
					panic(v)
				}
				log.Error("handler panicked", "err", fmt.Sprint(v), "method", r.Method, "path", r.URL.Path,
					"request_id", RequestIDFrom(r.Context()), "stack", string(debug.Stack()))
				problem.Write(w, nil)
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// AccessLog logs every request once it is answered: method, path, status,
// bytes written, duration and request id. Health probes and metric scrapes
// log at debug level so they do not drown the rest.
func AccessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			level := slog.LevelInfo
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				level = slog.LevelDebug
			}
			log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("request_id", RequestIDFrom(r.Context())),
			)
		})
	}
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wroteHeader = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and the deadlines of the
// connection (the live tail streams through it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes flushes on for handlers that test for http.Flusher.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// MaxBody limits every request body to n bytes; reading past it fails with
// *http.MaxBytesError, which the handlers answer with 413.
func MaxBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				problem.Write(w, problem.New(http.StatusRequestEntityTooLarge, "too-large",
					fmt.Sprintf("the body is %d bytes; at most %d are accepted", r.ContentLength, n)))
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}
