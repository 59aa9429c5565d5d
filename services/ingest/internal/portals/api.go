package portals

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Masked is how the API shows a secret; sending it back in a PUT keeps
// the stored secret.
const Masked = "********"

// maxRequest is the largest admin request body.
const maxRequest = 16 << 10

func (s *Server) mountAdmin(r chi.Router) {
	handle := func(h func(*http.Request) (httpserve.Reply, error)) http.HandlerFunc {
		return httpserve.Handle(s.log, s.problem, h)
	}
	r.Get(ListRoute, handle(s.list))
	r.Put(AdminRoute, handle(s.put))
	r.Get(AdminRoute, handle(s.get))
	r.Delete(AdminRoute, handle(s.delete))
}

// problem maps the package's errors to their answers; nil for an
// internal error.
func (s *Server) problem(r *http.Request, err error) *problem.Problem {
	var (
		ve *ValidationError
		se *SignatureError
		pr *problem.Problem
	)
	switch {
	case errors.As(err, &pr):
		return pr
	case errors.As(err, &se):
		p := problem.New(http.StatusUnauthorized, "signature", se.Detail)
		p.Challenge = `Signature realm="eventsync"`
		return p
	case errors.As(err, &ve):
		errs := make([]problem.FieldError, len(ve.Errors))
		for i, fe := range ve.Errors {
			errs[i] = problem.FieldError{Pointer: fe.Pointer, Detail: fe.Detail}
		}
		return problem.Invalid(fmt.Sprintf("the portal breaks %d rule(s); see errors", len(errs)), errs...)
	case errors.Is(err, ErrNotFound):
		return problem.NotFound("no portal has this name")
	case errors.Is(err, ErrConflict):
		return problem.New(http.StatusConflict, "conflict", "the portal was changed by other requests meanwhile; try again")
	case stream.Unavailable(err):
		s.log.Warn("portals unavailable", "err", err, "path", r.URL.Path)
		return problem.Unavailable("JetStream is unavailable", time.Second)
	case errors.Is(err, sealed.ErrNoKey), errors.Is(err, sealed.ErrUnknownKey), errors.Is(err, sealed.ErrCorrupt):
		s.log.Error("portal secret cannot be opened; set the portal's secret again", "err", err, "path", r.URL.Path)
	}
	return nil
}

// view is a portal as the API shows it: the secret masked.
type view struct {
	Name      string    `json:"name"`
	Type      Type      `json:"type"`
	Category  string    `json:"category"`
	Secret    string    `json:"secret"`
	Webhook   string    `json:"webhook"` // the path senders post to
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func viewOf(p *Portal) view {
	return view{
		Name: p.Name, Type: p.Type, Category: p.Category, Secret: Masked,
		Webhook:   strings.Replace(WebhookRoute, "{name}", p.Name, 1),
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}

// putRequest is the body of PUT /v1/portals/{name}.
type putRequest struct {
	Type     Type   `json:"type"`
	Secret   string `json:"secret"`   // empty or Masked: keep the stored one
	Category string `json:"category"` // empty: the type's default
}

// put creates or replaces a portal: 201 when created, 200 when replaced.
func (s *Server) put(r *http.Request) (httpserve.Reply, error) {
	name := chi.URLParam(r, "name")
	var in putRequest
	if err := problem.DecodeJSON(r, &in, maxRequest); err != nil {
		return httpserve.Reply{}, err
	}
	old, rev, err := s.store.load(r.Context(), name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return httpserve.Reply{}, err
	}
	now := s.now().UTC()
	p := Portal{Name: name, Type: in.Type, Category: in.Category, Secret: Secret(in.Secret), CreatedAt: now, UpdatedAt: now}
	if p.Category == "" {
		p.Category = defaultCategory[in.Type]
	}
	if old != nil {
		p.CreatedAt = old.CreatedAt
		if in.Secret == "" || in.Secret == Masked {
			// Kept, and sealed again with the current secrets key.
			if old.Type != in.Type {
				return httpserve.Reply{}, &ValidationError{Errors: []FieldError{{"/secret", "is required when the type changes"}}}
			}
			if p.Secret, err = s.store.open(old); err != nil {
				s.log.Warn("stored portal secret cannot be opened", "portal", name, "err", err)
				return httpserve.Reply{}, &ValidationError{Errors: []FieldError{{"/secret", "is required: the stored one cannot be opened with the secrets keys"}}}
			}
		}
	}
	if err := s.store.put(r.Context(), p, rev); err != nil {
		return httpserve.Reply{}, err
	}
	status := http.StatusOK
	if old == nil {
		status = http.StatusCreated
	}
	s.log.Info("portal saved", "portal", p.Name, "type", p.Type, "category", p.Category, "created", old == nil)
	return httpserve.Reply{Status: status, Body: viewOf(&p), NoStore: true}, nil
}

func (s *Server) get(r *http.Request) (httpserve.Reply, error) {
	p, _, err := s.store.get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return httpserve.Reply{}, err
	}
	return httpserve.Reply{Body: viewOf(p), NoStore: true}, nil
}

// listing is the body of GET /v1/portals.
type listing struct {
	Portals []view `json:"portals"`
}

func (s *Server) list(r *http.Request) (httpserve.Reply, error) {
	ps, err := s.store.list(r.Context())
	if err != nil {
		return httpserve.Reply{}, err
	}
	out := listing{Portals: []view{}}
	for i := range ps {
		out.Portals = append(out.Portals, viewOf(&ps[i]))
	}
	return httpserve.Reply{Body: out, NoStore: true}, nil
}

func (s *Server) delete(r *http.Request) (httpserve.Reply, error) {
	name := chi.URLParam(r, "name")
	if err := s.store.delete(r.Context(), name); err != nil {
		return httpserve.Reply{}, err
	}
	s.log.Info("portal deleted", "portal", name)
	return httpserve.Reply{Status: http.StatusNoContent}, nil
}
