package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/pkg/webhook"
	"github.com/eventsync/eventsync/services/notifier/internal/sink"
)

// maxRequest is the largest control-plane request body.
const maxRequest = 64 << 10

// Mount adds the subscription API to r. The delivery audit
// (/v1/subscriptions/{id}/deliveries, /v1/events/{id}/deliveries) is served
// by the query service, which reads the store.
func (s *Service) Mount(r chi.Router) {
	r.Post("/v1/subscriptions", s.handle(s.create))
	r.Get("/v1/subscriptions", s.handle(s.list))
	r.Get("/v1/subscriptions/{id}", s.handle(s.get))
	r.Patch("/v1/subscriptions/{id}", s.handle(s.patch))
	r.Delete("/v1/subscriptions/{id}", s.handle(s.delete))
	r.Post("/v1/subscriptions/{id}/pause", s.handle(s.setState(Paused)))
	r.Post("/v1/subscriptions/{id}/resume", s.handle(s.setState(Active)))
	r.Post("/v1/subscriptions/{id}/rotate-secret", s.handle(s.rotate))
	r.Post("/v1/subscriptions/{id}/replay", s.handle(s.replay))
	r.Post("/v1/dead-letters/replay", s.handle(s.redriveDeadLetters))
}

// response is a status and a JSON body.
type response struct {
	status int
	body   any
}

// handle adapts a handler returning a response or an error; errors become
// problem+json.
func (s *Service) handle(h func(*http.Request) (response, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := h(r)
		if err != nil {
			var p *problem.Problem
			switch {
			case errors.As(err, &p):
			case errors.Is(err, errNotFound):
				err = problem.NotFound("no subscription has this id")
			case stream.Unavailable(err):
				err = problem.Unavailable("JetStream is unavailable", time.Second)
			default:
				s.log.Error("subscription api", "err", err, "path", r.URL.Path)
			}
			problem.Write(w, err)
			return
		}
		if err := httpserve.WriteJSON(w, res.status, res.body); err != nil {
			s.log.Error("encode response", "err", err, "path", r.URL.Path)
			problem.Write(w, err)
		}
	}
}

// decodeBody strictly decodes a JSON request body into v (see
// problem.DecodeJSON).
func decodeBody(r *http.Request, v any) error {
	return problem.DecodeJSON(r, v, maxRequest)
}

// createRequest is the body of POST /v1/subscriptions.
type createRequest struct {
	URL         string            `json:"url"`
	Type        Type              `json:"type"`
	Tags        []string          `json:"tags"`
	Description string            `json:"description"`
	Headers     map[string]string `json:"headers"`
	Secret      string            `json:"secret"`
	Batch       *Batch            `json:"batch"`
}

// withSecret is a subscription with its new signing secret, shown once.
type withSecret struct {
	*Subscription `json:",inline"`
	Secret        string `json:"secret"`
}

func (s *Service) create(r *http.Request) (response, error) {
	var in createRequest
	if err := decodeBody(r, &in); err != nil {
		return response{}, err
	}
	sub := &Subscription{
		Type:        in.Type,
		URL:         in.URL,
		Tags:        in.Tags,
		Description: in.Description,
		Headers:     in.Headers,
		Batch:       in.Batch,
		State:       Active,
	}
	if err := s.validate(r.Context(), sub); err != nil {
		return response{}, err
	}
	secret := in.Secret
	if secret == "" {
		var err error
		if secret, err = webhook.NewSecret(); err != nil {
			return response{}, err
		}
	} else if _, err := webhook.ParseSecret(secret); err != nil {
		return response{}, problem.Invalid("secret "+err.Error(), problem.FieldError{Pointer: "/secret", Detail: err.Error()})
	}
	id, err := newID()
	if err != nil {
		return response{}, err
	}
	_, last, err := s.lastSeq(r.Context(), stream.Events)
	if err != nil {
		return response{}, err
	}
	now := s.now().UTC()
	sub.ID, sub.StartSeq, sub.CreatedAt, sub.UpdatedAt = id, last+1, now, now
	sub.Secrets = []Secret{{Value: secret}}
	// The consumers exist before the 201: every event published after it
	// is delivered even if no notifier has seen the subscription yet.
	if _, _, err := s.ensureConsumers(r.Context(), sub); err != nil {
		return response{}, err
	}
	if err := s.subs.create(r.Context(), sub); err != nil {
		s.deleteConsumers(context.WithoutCancel(r.Context()), sub.ID)
		return response{}, err
	}
	s.log.Info("subscription created", "subscription", sub.ID, "tags", sub.Tags, "type", sub.Type)
	return response{http.StatusCreated, withSecret{sub, secret}}, nil
}

// validate checks and normalizes a subscription's user-set fields.
func (s *Service) validate(ctx context.Context, sub *Subscription) error {
	var errs []problem.FieldError
	add := func(ptr, detail string) { errs = append(errs, problem.FieldError{Pointer: ptr, Detail: detail}) }

	switch {
	case sub.Type == "" && strings.HasPrefix(strings.ToLower(sub.URL), "mailto:"):
		sub.Type = Email
	case sub.Type == "":
		sub.Type = Webhook
	}
	switch sub.Type {
	case Webhook, Slack:
		if sub.URL == "" {
			add("/url", "is required")
		} else if sub.Type == Slack && !strings.HasPrefix(strings.ToLower(sub.URL), "https://") {
			add("/url", "must be an https:// incoming-webhook URL for slack")
		} else if err := s.guard.CheckURL(ctx, sub.URL); err != nil {
			add("/url", err.Error())
		}
	case Email:
		if _, _, err := sink.ParseMailto(sub.URL); err != nil {
			add("/url", "must be a mailto: URL for email: "+err.Error())
		} else if s.senders[Email] == nil {
			add("/type", "email is not configured on this server (set SMTP_ADDR)")
		}
	default:
		add("/type", "must be webhook, slack or email")
	}

	if len(sub.Tags) == 0 {
		add("/tags", "is required: at least one tag pattern such as DATABASE.* or TEST.>")
	} else if len(sub.Tags) > MaxTags {
		add("/tags", fmt.Sprintf("must have at most %d patterns", MaxTags))
	} else {
		valid := true
		for i, t := range sub.Tags {
			if err := subject.ValidatePattern(t); err != nil {
				add(fmt.Sprintf("/tags/%d", i), fmt.Sprintf("%q %v", t, err))
				valid = false
			}
		}
		if valid {
			tags, err := normalizeTags(sub.Tags)
			if err != nil {
				add("/tags", err.Error())
			}
			sub.Tags = tags
		}
	}

	if len(sub.Headers) > MaxHeaders {
		add("/headers", fmt.Sprintf("must have at most %d headers", MaxHeaders))
	}
	for k, v := range sub.Headers {
		if err := checkHeader(k, v); err != nil {
			add("/headers/"+k, err.Error())
		}
	}
	if len(sub.Description) > 1024 {
		add("/description", "must be at most 1024 bytes")
	}
	if b := sub.Batch; b != nil {
		if b.MaxEvents < 1 || b.MaxEvents > MaxBatchEvents {
			add("/batch/max_events", fmt.Sprintf("must be between 1 and %d", MaxBatchEvents))
		}
		if b.MaxWaitMS < 0 || b.MaxWaitMS > MaxBatchWait {
			add("/batch/max_wait_ms", fmt.Sprintf("must be between 0 and %d", MaxBatchWait))
		}
	}
	if len(errs) > 0 {
		return problem.Invalid(errs[0].Pointer+" "+errs[0].Detail, errs...)
	}
	return nil
}

// reservedHeaders are set by the notifier and cannot be overridden.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "host": true, "transfer-encoding": true,
	"connection": true, "webhook-id": true, "webhook-timestamp": true, "webhook-signature": true,
	"user-agent": true,
}

func checkHeader(name, value string) error {
	if name == "" || len(name) > 256 {
		return errors.New("header names must be 1-256 bytes")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return errors.New("is not a valid header name")
		}
	}
	if reservedHeaders[strings.ToLower(name)] {
		return errors.New("is set by EventSync and cannot be overridden")
	}
	if len(value) > 4096 || strings.ContainsAny(value, "\r\n\x00") {
		return errors.New("values must be at most 4096 bytes without CR, LF or NUL")
	}
	return nil
}

func (s *Service) list(r *http.Request) (response, error) {
	subs, err := s.subs.list(r.Context())
	if err != nil {
		return response{}, err
	}
	if subs == nil {
		subs = []*Subscription{}
	}
	return response{http.StatusOK, map[string]any{"subscriptions": subs}}, nil
}

func (s *Service) get(r *http.Request) (response, error) {
	sub, _, err := s.subs.get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return response{}, err
	}
	return response{http.StatusOK, sub}, nil
}

// patchRequest is the body of PATCH /v1/subscriptions/{id}: members present
// replace the stored ones.
type patchRequest struct {
	URL         *string            `json:"url"`
	Type        *Type              `json:"type"`
	Tags        *[]string          `json:"tags"`
	Description *string            `json:"description"`
	Headers     *map[string]string `json:"headers"`
	Batch       *Batch             `json:"batch"`
}

func (s *Service) patch(r *http.Request) (response, error) {
	var in patchRequest
	if err := decodeBody(r, &in); err != nil {
		return response{}, err
	}
	id := chi.URLParam(r, "id")
	sub, err := s.subs.update(r.Context(), id, func(sub *Subscription) error {
		if in.URL != nil {
			sub.URL = *in.URL
		}
		if in.Type != nil {
			sub.Type = *in.Type
		}
		if in.Tags != nil {
			sub.Tags = *in.Tags
		}
		if in.Description != nil {
			sub.Description = *in.Description
		}
		if in.Headers != nil {
			sub.Headers = *in.Headers
		}
		if in.Batch != nil {
			sub.Batch = in.Batch
			if in.Batch.MaxEvents <= 1 && in.Batch.MaxWaitMS == 0 {
				sub.Batch = nil // {"max_events": 1} turns batching off
			}
		}
		if err := s.validate(r.Context(), sub); err != nil {
			return err
		}
		// New tags take effect on the consumer now, so that the answer
		// reflects what is delivered from here on.
		if _, _, err := s.ensureConsumers(r.Context(), sub); err != nil {
			return err
		}
		sub.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return response{}, err
	}
	return response{http.StatusOK, sub}, nil
}

func (s *Service) delete(r *http.Request) (response, error) {
	id := chi.URLParam(r, "id")
	if err := s.subs.delete(r.Context(), id); err != nil {
		return response{}, err
	}
	s.deleteConsumers(r.Context(), id)
	s.log.Info("subscription deleted", "subscription", id)
	return response{status: http.StatusNoContent}, nil
}

// setState pauses or resumes a subscription. Resuming also re-enables a
// subscription the notifier disabled, and forgets its failures.
func (s *Service) setState(to State) func(*http.Request) (response, error) {
	return func(r *http.Request) (response, error) {
		sub, err := s.subs.update(r.Context(), chi.URLParam(r, "id"), func(sub *Subscription) error {
			if sub.State == to {
				return errUnchanged
			}
			sub.State, sub.StateReason, sub.UpdatedAt = to, "", s.now().UTC()
			if to == Active {
				sub.FailingSince = time.Time{}
			}
			return nil
		})
		if err != nil {
			return response{}, err
		}
		return response{http.StatusOK, sub}, nil
	}
}

// rotate makes a new signing secret; the previous one keeps signing beside
// it for SecretOverlap, so receivers can switch without losing deliveries.
func (s *Service) rotate(r *http.Request) (response, error) {
	secret, err := webhook.NewSecret()
	if err != nil {
		return response{}, err
	}
	now := s.now().UTC()
	sub, err := s.subs.update(r.Context(), chi.URLParam(r, "id"), func(sub *Subscription) error {
		var keep []Secret
		for _, sec := range sub.Secrets {
			if sec.NotAfter.IsZero() {
				sec.NotAfter = now.Add(s.cfg.SecretOverlap)
			}
			if sec.NotAfter.After(now) {
				keep = append(keep, sec)
			}
		}
		sub.Secrets = append(keep, Secret{Value: secret})
		sub.UpdatedAt = now
		return nil
	})
	if err != nil {
		return response{}, err
	}
	return response{http.StatusOK, withSecret{sub, secret}}, nil
}
