// Package producers serves the admin API of the producer registry: create,
// list, change, disable, rotate and delete producers (the clients of every
// service: their tags are what they may write, their scopes what else they
// may do), and render the NATS server authorization that gives each
// producer the same rights on NATS. Every route needs admin scope (see
// package access).
package producers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/stream"
)

// maxRequest is the largest admin request body.
const maxRequest = 64 << 10

// API is the admin API over a producer registry.
type API struct {
	reg *producer.Registry
	log *slog.Logger
}

// New returns the admin API of reg.
func New(reg *producer.Registry, log *slog.Logger) *API {
	return &API{reg: reg, log: log.With("component", "producers-api")}
}

// Mount adds the admin routes to r.
func (a *API) Mount(r chi.Router) {
	handle := func(h func(*http.Request) (httpserve.Reply, error)) http.HandlerFunc {
		return httpserve.Handle(a.log, a.toProblem, h)
	}
	r.Post("/v1/producers", handle(a.create))
	r.Get("/v1/producers", handle(a.list))
	r.Get("/v1/producers/nats-config", a.natsConfig)
	r.Get("/v1/producers/{id}", handle(a.get))
	r.Patch("/v1/producers/{id}", handle(a.patch))
	r.Delete("/v1/producers/{id}", handle(a.delete))
	r.Post("/v1/producers/{id}/disable", handle(a.setEnabled(false)))
	r.Post("/v1/producers/{id}/enable", handle(a.setEnabled(true)))
	r.Post("/v1/producers/{id}/rotate", handle(a.rotate))
}

// uncached is an answer with a body: bodies may carry credentials, so no
// answer of this API is cached.
func uncached(status int, body any) httpserve.Reply {
	return httpserve.Reply{Status: status, Body: body, NoStore: true}
}

// toProblem maps registry errors to their answers; nil for an internal
// error.
func (a *API) toProblem(r *http.Request, err error) *problem.Problem {
	var (
		ve *producer.ValidationError
		oe *producer.OwnedError
	)
	switch {
	case errors.As(err, &ve):
		errs := make([]problem.FieldError, len(ve.Errors))
		for i, fe := range ve.Errors {
			errs[i] = problem.FieldError{Pointer: fe.Pointer, Detail: fe.Detail}
		}
		return problem.Invalid(fmt.Sprintf("the producer breaks %d rule(s); see errors", len(errs)), errs...)
	case errors.As(err, &oe):
		p := problem.New(http.StatusConflict, "category-owned", oe.Error())
		p.Owner = oe.Owner
		p.Errors = []problem.FieldError{{Pointer: "/owns", Detail: oe.Error()}}
		return p
	case errors.Is(err, producer.ErrIDTaken):
		p := problem.New(http.StatusConflict, "id-taken", err.Error())
		p.Errors = []problem.FieldError{{Pointer: "/id", Detail: "is another producer's"}}
		return p
	case errors.Is(err, producer.ErrNameTaken):
		p := problem.New(http.StatusConflict, "name-taken", err.Error())
		p.Errors = []problem.FieldError{{Pointer: "/name", Detail: "is taken by another producer"}}
		return p
	case errors.Is(err, producer.ErrNotFound):
		return problem.NotFound("no producer has this id")
	case errors.Is(err, producer.ErrConflict):
		return problem.New(http.StatusConflict, "conflict", "the producer was changed by other requests meanwhile; try again")
	case stream.Unavailable(err):
		a.log.Warn("producers api unavailable", "err", err, "path", r.URL.Path)
		return problem.Unavailable("JetStream is unavailable", time.Second)
	}
	return nil
}

// decodeBody strictly decodes a JSON request body into v (see
// problem.DecodeJSON).
func decodeBody(r *http.Request, v any) error {
	return problem.DecodeJSON(r, v, maxRequest)
}

// view is a producer as the API shows it: no hashes, no JWT secret.
type view struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Enabled   bool          `json:"enabled"`
	Tags      []string      `json:"tags"`   // patterns it may write
	Scopes    scopes        `json:"scopes"` // what else it may do
	Owns      []string      `json:"owns"`   // categories claimed through the API
	Owned     []string      `json:"owned"`  // every category it owns now, first writes included
	Rate      producer.Rate `json:"rate"`   // zeros: the ingest defaults
	CreatedAt time.Time     `json:"created_at"`
	LastSeen  time.Time     `json:"last_seen,omitzero"`
	APIKeys   []keyView     `json:"api_keys"`
	// Credentials are the clear secrets, only in the answers of create and
	// rotate.
	Credentials *producer.Secrets `json:"credentials,omitempty"`
}

// scopes are a client's scopes besides writing, in the API's bodies:
// patterns it may read, subscribe to and consume, and whether it may
// administer EventSync.
type scopes struct {
	Read      []string `json:"read"`
	Subscribe []string `json:"subscribe"`
	Consume   []string `json:"consume"`
	Admin     bool     `json:"admin"`
}

func scopesOf(s producer.Scopes) scopes {
	return scopes{Read: nonNil(s.Read), Subscribe: nonNil(s.Subscribe), Consume: nonNil(s.Consume), Admin: s.Admin}
}

func (s scopes) registry() producer.Scopes {
	return producer.Scopes{Read: s.Read, Subscribe: s.Subscribe, Consume: s.Consume, Admin: s.Admin}
}

// keyView tells API keys apart without revealing them.
type keyView struct {
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *API) view(p *producer.Producer) view {
	v := view{
		ID: p.ID, Name: p.Name, Enabled: p.Enabled,
		Tags: nonNil(p.Tags), Scopes: scopesOf(p.Scopes), Owns: nonNil(p.Owns), Owned: nonNil(a.reg.Owned(p.ID)),
		Rate: p.Rate, CreatedAt: p.CreatedAt, LastSeen: p.LastSeen,
		APIKeys: []keyView{},
	}
	for _, k := range p.Credentials.APIKeys {
		v.APIKeys = append(v.APIKeys, keyView{Prefix: k.Prefix, CreatedAt: k.CreatedAt})
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// createRequest is the body of POST /v1/producers. ID and JWTSecret
// import a client of another system (The Eye) with the id and HS256 key it
// already has; left out, both are generated.
type createRequest struct {
	Name      string        `json:"name"`
	Tags      []string      `json:"tags"` // default [">"] unless scopes grant something
	Scopes    scopes        `json:"scopes"`
	Rate      producer.Rate `json:"rate"`
	Owns      []string      `json:"owns"`
	ID        string        `json:"id"`         // 1-128 of [A-Za-z0-9._-], not prd_…
	JWTSecret string        `json:"jwt_secret"` // base64url of the HMAC key's bytes
}

func (a *API) create(r *http.Request) (httpserve.Reply, error) {
	var in createRequest
	if err := decodeBody(r, &in); err != nil {
		return httpserve.Reply{}, err
	}
	p, sec, err := a.reg.Create(r.Context(), producer.Spec{Name: in.Name, Tags: in.Tags, Scopes: in.Scopes.registry(), Rate: in.Rate, Owns: in.Owns,
		ID: in.ID, JWTSecret: in.JWTSecret})
	if err != nil {
		return httpserve.Reply{}, err
	}
	a.log.Info("producer created", "producer", p.ID, "name", p.Name, "tags", p.Tags, "scopes", p.Scopes, "owns", p.Owns,
		"imported_id", in.ID != "", "imported_jwt_secret", in.JWTSecret != "")
	v := a.view(&p)
	v.Credentials = &sec
	return uncached(http.StatusCreated, v), nil
}

// list is the body of GET /v1/producers.
type list struct {
	Producers []view `json:"producers"`
}

func (a *API) list(*http.Request) (httpserve.Reply, error) {
	out := list{Producers: []view{}}
	for _, p := range a.reg.List() {
		out.Producers = append(out.Producers, a.view(p))
	}
	return uncached(http.StatusOK, out), nil
}

func (a *API) get(r *http.Request) (httpserve.Reply, error) {
	p, ok := a.reg.Get(chi.URLParam(r, "id"))
	if !ok {
		return httpserve.Reply{}, producer.ErrNotFound
	}
	return uncached(http.StatusOK, a.view(p)), nil
}

// patchRequest is the body of PATCH /v1/producers/{id}: members left out
// stay as they are.
type patchRequest struct {
	Name    *string        `json:"name"`
	Enabled *bool          `json:"enabled"`
	Tags    *[]string      `json:"tags"`
	Scopes  *scopes        `json:"scopes"` // replaces the scopes as a whole
	Rate    *producer.Rate `json:"rate"`
	Owns    *[]string      `json:"owns"`
}

func (a *API) patch(r *http.Request) (httpserve.Reply, error) {
	var in patchRequest
	if err := decodeBody(r, &in); err != nil {
		return httpserve.Reply{}, err
	}
	p, err := a.reg.Update(r.Context(), chi.URLParam(r, "id"), func(p *producer.Producer) error {
		if in.Name != nil {
			p.Name = *in.Name
		}
		if in.Enabled != nil {
			p.Enabled = *in.Enabled
		}
		if in.Tags != nil {
			p.Tags = *in.Tags
		}
		if in.Scopes != nil {
			p.Scopes = in.Scopes.registry()
		}
		if in.Rate != nil {
			p.Rate = *in.Rate
		}
		if in.Owns != nil {
			p.Owns = *in.Owns
		}
		return nil
	})
	if err != nil {
		return httpserve.Reply{}, err
	}
	a.log.Info("producer updated", "producer", p.ID, "name", p.Name, "enabled", p.Enabled, "tags", p.Tags, "scopes", p.Scopes, "owns", p.Owns)
	return uncached(http.StatusOK, a.view(&p)), nil
}

func (a *API) delete(r *http.Request) (httpserve.Reply, error) {
	id := chi.URLParam(r, "id")
	if err := a.reg.Delete(r.Context(), id); err != nil {
		return httpserve.Reply{}, err
	}
	a.log.Info("producer deleted", "producer", id)
	return httpserve.Reply{Status: http.StatusNoContent}, nil
}

func (a *API) setEnabled(enabled bool) func(*http.Request) (httpserve.Reply, error) {
	return func(r *http.Request) (httpserve.Reply, error) {
		p, err := a.reg.SetEnabled(r.Context(), chi.URLParam(r, "id"), enabled)
		if err != nil {
			return httpserve.Reply{}, err
		}
		a.log.Info("producer enabled changed", "producer", p.ID, "enabled", enabled)
		return uncached(http.StatusOK, a.view(&p)), nil
	}
}

// rotateRequest is the body of POST /v1/producers/{id}/rotate.
type rotateRequest struct {
	Credential producer.Credential `json:"credential"`
}

func (a *API) rotate(r *http.Request) (httpserve.Reply, error) {
	var in rotateRequest
	if err := decodeBody(r, &in); err != nil {
		return httpserve.Reply{}, err
	}
	p, sec, err := a.reg.Rotate(r.Context(), chi.URLParam(r, "id"), in.Credential)
	if err != nil {
		return httpserve.Reply{}, err
	}
	a.log.Info("producer credential rotated", "producer", p.ID, "credential", in.Credential)
	v := a.view(&p)
	v.Credentials = &sec
	return uncached(http.StatusOK, v), nil
}

// natsConfig answers GET /v1/producers/nats-config[?direct=true] with the
// NATS server authorization block (text/plain).
func (a *API) natsConfig(w http.ResponseWriter, r *http.Request) {
	direct := false
	if v := r.URL.Query().Get("direct"); v != "" {
		d, err := strconv.ParseBool(v)
		if err != nil {
			problem.Write(w, problem.BadParam("direct", "must be true or false"))
			return
		}
		direct = d
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(natsConfig(a.reg.List(), a.reg.Owners(), direct))
}
