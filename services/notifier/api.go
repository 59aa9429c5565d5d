package notifier

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/webhook"
	"github.com/eventsync/eventsync/services/notifier/internal/sink"
)

// maxRequest is the largest control-plane request body.
const maxRequest = 64 << 10

// Mount adds the subscription API to r. The delivery audit
// (/v1/subscriptions/{id}/deliveries, /v1/events/{id}/deliveries) is served
// by the query service, which reads the store.
//
// A subscription belongs to the client that created it (Owner): a client
// sees and changes its own only, and another client's subscription is
// answered 404 like an unknown id, so that ids reveal nothing; admins see
// and change every subscription. Its tag patterns must lie within the
// client's subscribe patterns.
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

// handle serves a handler of the subscription API (see httpserve.Handle;
// toProblem maps its errors).
func (s *Service) handle(h func(*http.Request) (response, error)) http.HandlerFunc {
	return httpserve.Handle(s.log, toProblem, func(r *http.Request) (httpserve.Reply, error) {
		res, err := h(r)
		return httpserve.Reply{Status: res.status, Body: res.body}, err
	})
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
	p := access.From(r.Context())
	sub := &Subscription{
		Owner:       p.Owner(),
		Type:        in.Type,
		URL:         in.URL,
		Tags:        in.Tags,
		Description: in.Description,
		Headers:     in.Headers,
		Batch:       in.Batch,
		State:       Active,
	}
	errs := s.check(r.Context(), sub)
	if in.Secret != "" {
		if _, err := webhook.ParseSecret(in.Secret); err != nil {
			errs = append(errs, problem.FieldError{Pointer: "/secret", Detail: secretRule})
		}
	}
	if len(errs) > 0 {
		return response{}, invalid(errs)
	}
	if err := covered(p, sub.Tags); err != nil {
		return response{}, err
	}
	secret := in.Secret
	if secret == "" {
		var err error
		if secret, err = webhook.NewSecret(); err != nil {
			return response{}, err
		}
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
	s.log.Info("subscription created", "subscription", sub.ID, "owner", sub.Owner, "tags", sub.Tags, "type", sub.Type)
	return response{http.StatusCreated, withSecret{sub.masked(), secret}}, nil
}

// covered refuses (403) tag patterns that do not lie within the client's
// subscribe patterns.
func covered(p *access.Principal, tags []string) error {
	for _, t := range tags {
		if !p.Covers(access.Subscribe, t) {
			return access.Forbidden(fmt.Sprintf("tag pattern %q is outside the client's subscribe patterns %q", t, p.Patterns(access.Subscribe)))
		}
	}
	return nil
}

// owned returns errNotFound for a subscription the request's client does
// not own: another client's subscription looks like an unknown id.
func owned(ctx context.Context, sub *Subscription) error {
	if !access.From(ctx).Owns(sub.Owner) {
		return errNotFound
	}
	return nil
}

// secretRule is what a signing secret given at creation must be.
var secretRule = fmt.Sprintf("must be %s followed by the base64 of %d to %d random bytes; leave it out to have one generated",
	webhook.SecretPrefix, webhook.MinSecretSize, webhook.MaxSecretSize)

// invalid is the 422 of a request that breaks the rules in errs; the
// detail repeats the first.
func invalid(errs []problem.FieldError) error {
	return problem.Invalid(errs[0].Pointer+" "+errs[0].Detail, errs...)
}

// check normalizes a subscription's user-set fields and lists the rules
// they break. Creation and PATCH both go through it, so a subscription
// obeys the same rules however it got its fields.
func (s *Service) check(ctx context.Context, sub *Subscription) []problem.FieldError {
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
			add("/url", err.Error())
		} else if s.senders[Email] == nil {
			add("/type", "email is not configured on this server (set SMTP_ADDR)")
		}
	default:
		add("/type", "must be webhook, slack or email")
	}

	tags, tagErrs := checkTags(sub.Tags)
	if tagErrs == nil {
		sub.Tags = tags
	}
	errs = append(errs, tagErrs...)

	if len(sub.Headers) > MaxHeaders {
		add("/headers", fmt.Sprintf("must have at most %d headers", MaxHeaders))
	}
	for _, k := range slices.Sorted(maps.Keys(sub.Headers)) {
		if sub.Headers[k] == Masked {
			add("/headers/"+pointerEscaper.Replace(k), fmt.Sprintf("is %q, the mask shown for stored values, and no value of this header is stored; send the value", Masked))
			continue
		}
		if err := checkHeader(k, sub.Headers[k]); err != nil {
			add("/headers/"+pointerEscaper.Replace(k), err.Error())
		}
	}
	if len(sub.Description) > 1024 {
		add("/description", "must be at most 1024 bytes")
	}
	errs = append(errs, checkBatch(sub.Batch)...)
	return errs
}

// pointerEscaper escapes a member name for a JSON pointer (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// reservedHeaders are set by the notifier and cannot be overridden.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "host": true, "transfer-encoding": true,
	"connection": true, "webhook-id": true, "webhook-timestamp": true, "webhook-signature": true,
	"user-agent": true,
}

func checkHeader(name, value string) error {
	if name == "" || len(name) > 256 {
		return errors.New("is not a valid header name: names are 1 to 256 bytes")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return errors.New("is not a valid header name: names hold ASCII letters, digits and !#$%&'*+-.^_`|~")
		}
	}
	if reservedHeaders[strings.ToLower(name)] {
		return errors.New("is set by EventSync and cannot be overridden")
	}
	if len(value) > 4096 || strings.ContainsAny(value, "\r\n\x00") {
		return errors.New("must be at most 4096 bytes without CR, LF or NUL")
	}
	return nil
}

// list answers the client's own subscriptions; an admin's list holds
// every subscription, or with ?owner= those of one owner (?owner= with no
// value: those without an owner).
func (s *Service) list(r *http.Request) (response, error) {
	all, err := s.subs.list(r.Context())
	if err != nil {
		return response{}, err
	}
	p := access.From(r.Context())
	q := r.URL.Query()
	subs := []*Subscription{}
	for _, sub := range all {
		if !p.Owns(sub.Owner) || q.Has("owner") && sub.Owner != q.Get("owner") {
			continue
		}
		subs = append(subs, sub.masked())
	}
	return response{http.StatusOK, map[string]any{"subscriptions": subs}}, nil
}

func (s *Service) get(r *http.Request) (response, error) {
	sub, _, err := s.subs.get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return response{}, err
	}
	if err := owned(r.Context(), sub); err != nil {
		return response{}, err
	}
	return response{http.StatusOK, sub.masked()}, nil
}

// patchRequest is the body of PATCH /v1/subscriptions/{id}. A member left
// out keeps the stored value; a member given replaces it (batch and
// headers whole); null resets it to what creating without it gives: no
// batching, no headers, no description, the type derived from the URL.
// url and tags are required and cannot be null. A header whose value is
// Masked keeps its stored value, so that a client can send back what it
// read. The result is checked by the same rules as a creation, new tags
// against the client's subscribe patterns.
type patchRequest struct {
	URL         member[string]            `json:"url"`
	Type        member[Type]              `json:"type"`
	Tags        member[[]string]          `json:"tags"`
	Description member[string]            `json:"description"`
	Headers     member[map[string]string] `json:"headers"`
	Batch       member[Batch]             `json:"batch"`
}

// member is a member of a PATCH body: left out, null, or a value.
type member[T any] struct {
	set   bool // present in the body, null or not
	value *T   // nil for null
}

// UnmarshalJSONFrom records that the member is present, then decodes it
// (null leaves value nil).
func (m *member[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	m.set = true
	return jsonv2.UnmarshalDecode(dec, &m.value)
}

// null reports whether the member is present and null.
func (m member[T]) null() bool { return m.set && m.value == nil }

// apply sets *dst from the member: the value, or zero for null.
func (m member[T]) apply(dst *T) {
	if !m.set {
		return
	}
	var zero T
	if m.value != nil {
		zero = *m.value
	}
	*dst = zero
}

func (s *Service) patch(r *http.Request) (response, error) {
	var in patchRequest
	if err := decodeBody(r, &in); err != nil {
		return response{}, err
	}
	var nulls []problem.FieldError
	for _, m := range []struct {
		ptr  string
		null bool
	}{{"/url", in.URL.null()}, {"/tags", in.Tags.null()}} {
		if m.null {
			nulls = append(nulls, problem.FieldError{Pointer: m.ptr, Detail: "is required and cannot be null; leave it out to keep it"})
		}
	}
	if len(nulls) > 0 {
		return response{}, invalid(nulls)
	}
	id := chi.URLParam(r, "id")
	p := access.From(r.Context())
	sub, err := s.subs.update(r.Context(), id, func(sub *Subscription) error {
		if !p.Owns(sub.Owner) {
			return errNotFound
		}
		stored := sub.Headers
		in.URL.apply(&sub.URL)
		in.Type.apply(&sub.Type)
		in.Tags.apply(&sub.Tags)
		in.Description.apply(&sub.Description)
		if in.Headers.set {
			sub.Headers = unmask(in.Headers.value, stored)
		}
		if in.Batch.set {
			sub.Batch = in.Batch.value
		}
		if errs := s.check(r.Context(), sub); len(errs) > 0 {
			return invalid(errs)
		}
		if in.Tags.set {
			if err := covered(p, sub.Tags); err != nil {
				return err
			}
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
	return response{http.StatusOK, sub.masked()}, nil
}

// unmask returns the headers of a PATCH (nil for null) with every Masked
// value replaced by the stored value of that header (its name compared
// case-insensitively). A Masked value with no stored value stays, and
// check refuses it.
func unmask(in *map[string]string, stored map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(*in))
	for k, v := range *in {
		if v == Masked {
			if old, ok := stored[k]; ok {
				v = old
			} else {
				for sk, old := range stored {
					if strings.EqualFold(sk, k) {
						v = old
						break
					}
				}
			}
		}
		out[k] = v
	}
	return out
}

func (s *Service) delete(r *http.Request) (response, error) {
	id := chi.URLParam(r, "id")
	ctx := r.Context()
	if err := s.subs.delete(ctx, id, func(sub *Subscription) error { return owned(ctx, sub) }); err != nil {
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
			if err := owned(r.Context(), sub); err != nil {
				return err
			}
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
		return response{http.StatusOK, sub.masked()}, nil
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
		if err := owned(r.Context(), sub); err != nil {
			return err
		}
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
	return response{http.StatusOK, withSecret{sub.masked(), secret}}, nil
}
