// Package schemas serves the admin HTTP API of the JSON Schemas that
// events' data must match:
//
//	PUT    /v1/schemas/{category}          store a category's schema (new version)
//	PUT    /v1/schemas/{category}/{code}   store a category+code schema
//	GET    /v1/schemas/{category}[/{code}] the current version
//	DELETE /v1/schemas/{category}[/{code}] remove it (204)
//	GET    /v1/schemas                     every schema, without its document
//
// Every route needs the admin token (Authorization: Bearer <token>).
package schemas

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
)

// MaxBody is the largest schema document accepted, in bytes.
const MaxBody = 256 << 10

// challenge is the WWW-Authenticate value of the admin API's 401s.
const challenge = `Bearer realm="eventsync-admin"`

// registry stores schemas; *schema.Registry is one.
type registry interface {
	Put(ctx context.Context, category, code string, doc []byte) (schema.Entry, bool, error)
	Get(ctx context.Context, category, code string) (schema.Entry, error)
	Delete(ctx context.Context, category, code string) error
	List(ctx context.Context) ([]schema.Entry, error)
}

// API is the schema admin API.
type API struct {
	reg     registry
	enabled bool
	token   [sha256.Size]byte // SHA-256 of the admin token
	log     *slog.Logger
}

// New returns the API over reg. An empty adminToken disables it: every
// route then answers 404 saying how to enable it. A nil log discards the
// errors it would log.
func New(reg registry, adminToken string, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{reg: reg, enabled: adminToken != "", token: sha256.Sum256([]byte(adminToken)), log: log}
}

// Mount adds the API's routes to r.
func (a *API) Mount(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.authorize)
		r.Get("/v1/schemas", a.handle(a.list))
		for _, path := range []string{"/v1/schemas/{category}", "/v1/schemas/{category}/{code}"} {
			r.Put(path, a.handle(a.put))
			r.Get(path, a.handle(a.get))
			r.Delete(path, a.handle(a.remove))
		}
	})
}

// authorize lets through requests that carry the admin token. The token is
// compared as SHA-256 digests in constant time, so neither its content nor
// its length leaks through timing.
func (a *API) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.enabled {
			problem.Write(w, problem.NotFound("the admin API is disabled: set ADMIN_TOKEN"))
			return
		}
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			p := problem.New(http.StatusUnauthorized, "unauthorized", "this API needs the admin token: Authorization: Bearer <token>")
			p.Challenge = challenge
			problem.Write(w, p)
			return
		}
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			p := problem.New(http.StatusUnauthorized, "unauthorized", "the admin token is wrong")
			p.Challenge = challenge + `, error="invalid_token"`
			problem.Write(w, p)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of a Bearer authorization (the scheme is
// case-insensitive).
func bearer(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// response is a status and a JSON body (none when nil).
type response struct {
	status int
	body   any
	header http.Header
}

// handle adapts a handler returning a response or an error; errors become
// problem+json.
func (a *API) handle(h func(*http.Request) (response, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		res, err := h(r)
		if err != nil {
			problem.Write(w, a.problem(r, err))
			return
		}
		for k, v := range res.header {
			w.Header()[k] = v
		}
		if res.body == nil {
			w.WriteHeader(res.status)
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep schema documents as written
		if err := enc.Encode(res.body); err != nil {
			a.log.Error("encode response", "err", err, "path", r.URL.Path)
			problem.Write(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.status)
		_, _ = w.Write(buf.Bytes())
	}
}

// problem maps an error to the problem written for it.
func (a *API) problem(r *http.Request, err error) error {
	var (
		p   *problem.Problem
		inv *schema.InvalidError
	)
	switch {
	case errors.As(err, &p):
		return err
	case errors.As(err, &inv):
		return problem.Invalid("the schema cannot be used: "+inv.Reason, inv.Errors...)
	case errors.Is(err, schema.ErrNotFound):
		return problem.NotFound("no schema for this category or code")
	case errors.Is(err, schema.ErrConflict):
		return problem.New(http.StatusConflict, "conflict", "the schema changed concurrently; try again")
	case stream.Unavailable(err):
		return problem.Unavailable("JetStream is unavailable", time.Second)
	default:
		a.log.Error("schema api", "err", err, "method", r.Method, "path", r.URL.Path)
		return err
	}
}

// name reads and validates the category and code path parameters; code is
// empty on the category routes (the router matches no empty parameter).
func name(r *http.Request) (category, code string, err error) {
	category = chi.URLParam(r, "category")
	if err := subject.ValidateCategory(category); err != nil {
		return "", "", problem.BadParam("category", err.Error())
	}
	code = chi.URLParam(r, "code")
	if code == "" {
		return category, "", nil
	}
	if err := subject.ValidateCode(code); err != nil {
		return "", "", problem.BadParam("code", err.Error())
	}
	if _, _, err := subject.SplitTag(subject.Tag(category, code)); err != nil {
		return "", "", problem.BadParam("code", err.Error())
	}
	return category, code, nil
}

func (a *API) put(r *http.Request) (response, error) {
	category, code, err := name(r)
	if err != nil {
		return response{}, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/schema+json") {
			return response{}, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type",
				"send the schema as application/json or application/schema+json")
		}
	}
	doc, err := io.ReadAll(r.Body) // limited to MaxBody by handle
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return response{}, problem.New(http.StatusRequestEntityTooLarge, "too-large", "a schema may be at most 256 KiB")
		}
		return response{}, problem.BadRequest("reading the body: " + err.Error())
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return response{}, problem.BadRequest("the body must be a JSON Schema")
	}
	if !json.Valid(doc) {
		return response{}, problem.BadRequest("the body is not JSON")
	}
	e, created, err := a.reg.Put(r.Context(), category, code, doc)
	if err != nil {
		return response{}, err
	}
	if !created {
		return response{status: http.StatusOK, body: e}, nil
	}
	return response{status: http.StatusCreated, body: e, header: http.Header{"Location": {location(category, code)}}}, nil
}

func (a *API) get(r *http.Request) (response, error) {
	category, code, err := name(r)
	if err != nil {
		return response{}, err
	}
	e, err := a.reg.Get(r.Context(), category, code)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: e}, nil
}

func (a *API) remove(r *http.Request) (response, error) {
	category, code, err := name(r)
	if err != nil {
		return response{}, err
	}
	if err := a.reg.Delete(r.Context(), category, code); err != nil {
		return response{}, err
	}
	return response{status: http.StatusNoContent}, nil
}

// list is the body of GET /v1/schemas.
type list struct {
	Schemas []schema.Entry `json:"schemas"`
}

func (a *API) list(r *http.Request) (response, error) {
	entries, err := a.reg.List(r.Context())
	if err != nil {
		return response{}, err
	}
	if entries == nil {
		entries = []schema.Entry{}
	}
	return response{status: http.StatusOK, body: list{Schemas: entries}}, nil
}

// location is the path of a schema.
func location(category, code string) string {
	p := "/v1/schemas/" + url.PathEscape(category)
	if code != "" {
		p += "/" + url.PathEscape(code)
	}
	return p
}
