// Package schemas serves the admin HTTP API of the JSON Schemas that
// events' data must match:
//
//	PUT    /v1/schemas/{category}          store a category's schema (new version)
//	PUT    /v1/schemas/{category}/{code}   store a category+code schema
//	GET    /v1/schemas/{category}[/{code}] the current version
//	DELETE /v1/schemas/{category}[/{code}] remove it (204)
//	GET    /v1/schemas                     every schema, without its document
//
// Every route needs admin scope (see package access).
package schemas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
)

// MaxBody is the largest schema document accepted, in bytes.
const MaxBody = 256 << 10

// registry stores schemas; *schema.Registry is one.
type registry interface {
	Put(ctx context.Context, category, code string, doc []byte) (schema.Entry, bool, error)
	Get(ctx context.Context, category, code string) (schema.Entry, error)
	Delete(ctx context.Context, category, code string) error
	List(ctx context.Context) ([]schema.Entry, error)
}

// API is the schema admin API.
type API struct {
	reg registry
	log *slog.Logger
}

// New returns the API over reg. A nil log discards the errors it would
// log.
func New(reg registry, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{reg: reg, log: log}
}

// Mount adds the API's routes to r.
func (a *API) Mount(r chi.Router) {
	handle := func(h func(*http.Request) (httpserve.Reply, error)) http.HandlerFunc {
		return httpserve.Handle(a.log, a.toProblem, h)
	}
	r.Group(func(r chi.Router) {
		r.Use(limitBody)
		r.Get("/v1/schemas", handle(a.list))
		for _, path := range []string{"/v1/schemas/{category}", "/v1/schemas/{category}/{code}"} {
			r.Put(path, handle(a.put))
			r.Get(path, handle(a.get))
			r.Delete(path, handle(a.remove))
		}
	})
}

// limitBody bounds request bodies to MaxBody.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		next.ServeHTTP(w, r)
	})
}

// toProblem maps registry errors to their answers; nil for an internal
// error.
func (a *API) toProblem(_ *http.Request, err error) *problem.Problem {
	var inv *schema.InvalidError
	switch {
	case errors.As(err, &inv):
		errs := make([]problem.FieldError, len(inv.Errors))
		for i, fe := range inv.Errors {
			errs[i] = problem.FieldError{Pointer: fe.Pointer, Detail: fe.Detail}
		}
		return problem.Invalid("the schema cannot be used: "+inv.Reason, errs...)
	case errors.Is(err, schema.ErrNotFound):
		return problem.NotFound("no schema for this category or code")
	case errors.Is(err, schema.ErrConflict):
		return problem.New(http.StatusConflict, "conflict", "the schema changed concurrently; try again")
	case stream.Unavailable(err):
		return problem.Unavailable("JetStream is unavailable", time.Second)
	}
	return nil
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

func (a *API) put(r *http.Request) (httpserve.Reply, error) {
	category, code, err := name(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/schema+json") {
			return httpserve.Reply{}, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type",
				"send the schema as application/json or application/schema+json")
		}
	}
	doc, err := io.ReadAll(r.Body) // limited to MaxBody by limitBody
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpserve.Reply{}, problem.New(http.StatusRequestEntityTooLarge, "too-large", "a schema may be at most 256 KiB")
		}
		return httpserve.Reply{}, problem.BadRequest("reading the body: " + err.Error())
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return httpserve.Reply{}, problem.BadRequest("the body must be a JSON Schema")
	}
	if !json.Valid(doc) {
		return httpserve.Reply{}, problem.BadRequest("the body is not JSON")
	}
	e, created, err := a.reg.Put(r.Context(), category, code, doc)
	if err != nil {
		return httpserve.Reply{}, err
	}
	if !created {
		return httpserve.Reply{Status: http.StatusOK, Body: e}, nil
	}
	return httpserve.Reply{Status: http.StatusCreated, Body: e, Header: http.Header{"Location": {location(category, code)}}}, nil
}

func (a *API) get(r *http.Request) (httpserve.Reply, error) {
	category, code, err := name(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	e, err := a.reg.Get(r.Context(), category, code)
	if err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Status: http.StatusOK, Body: e}, nil
}

func (a *API) remove(r *http.Request) (httpserve.Reply, error) {
	category, code, err := name(r)
	if err != nil {
		return httpserve.Reply{}, err
	}
	if err := a.reg.Delete(r.Context(), category, code); err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Status: http.StatusNoContent}, nil
}

// list is the body of GET /v1/schemas.
type list struct {
	Schemas []schema.Entry `json:"schemas"`
}

func (a *API) list(r *http.Request) (httpserve.Reply, error) {
	entries, err := a.reg.List(r.Context())
	if err != nil {
		return httpserve.Reply{}, err
	}
	if entries == nil {
		entries = []schema.Entry{}
	}
	return httpserve.Reply{Status: http.StatusOK, Body: list{Schemas: entries}}, nil
}

// location is the path of a schema.
func location(category, code string) string {
	p := "/v1/schemas/" + url.PathEscape(category)
	if code != "" {
		p += "/" + url.PathEscape(code)
	}
	return p
}
