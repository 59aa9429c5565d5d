package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventserver"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/services/ingest/internal/ratelimit"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
)

// authenticator tells which producer sent a request from its Authorization
// value. Its failures are *auth.Error (see toProblem).
type authenticator interface {
	Authenticate(ctx context.Context, authorization string) (*producer.Producer, error)
}

// clients finds a registered client by id.
type clients interface {
	Get(id string) (*producer.Producer, bool)
}

// owners knows which producer owns a category and lets one claim it.
type owners interface {
	Owner(category string) (string, bool)
	Claim(ctx context.Context, category, producerID string) (owner string, err error)
}

// validator checks an event's data against the schemas of its category
// and code.
type validator interface {
	Validate(category, code string, data []byte) []schema.FieldError
}

// toucher records that a producer was seen (at most a write a minute).
type toucher interface {
	TouchLastSeen(ctx context.Context, id string) error
}

// limiter is a per-producer token bucket.
type limiter interface {
	Allow(key string, r ratelimit.Rate, n int) (ok bool, retryAfter time.Duration)
}

// Trust is what ingest checks before it publishes: who sent the request,
// whether they may write its tags, whether the data fits the schemas, and
// how fast they may go. A nil Auth turns authentication off (--auth=none):
// then events carry no producer and only schemas apply.
type Trust struct {
	Auth    authenticator // for NATS requests; HTTP requests come authenticated by the gate
	Clients clients       // finds the client the gate authenticated
	Owners  owners        // nil: categories are not owned
	Schemas validator     // nil: no schemas
	Limits  limiter       // nil: no rate limits
	Seen    toucher       // nil: last-seen times are not kept
	// ClaimOnFirstWrite makes the first producer to write a category its
	// owner. Publishes of the event server's API claim so without it.
	ClaimOnFirstWrite bool
}

// producerOf returns the producer the gate authenticated an HTTP request
// as: nil with authentication off or for the admin token, which write
// as no producer (no rate limit, no ownership).
func (s *Service) producerOf(ctx context.Context) (*producer.Producer, error) {
	pr := access.From(ctx)
	if pr.ID == "" || pr.ID == access.AdminID || s.trust.Clients == nil {
		return nil, nil
	}
	p, ok := s.trust.Clients.Get(pr.ID)
	if !ok {
		return nil, &auth.Error{Detail: "the client was deleted", Challenge: `Basic realm="eventsync"`}
	}
	return p, nil
}

// authenticate returns a NATS request's producer, or nil with auth off.
func (s *Service) authenticate(ctx context.Context, authorization string) (*producer.Producer, error) {
	if s.trust.Auth == nil {
		return nil, nil
	}
	p, err := s.trust.Auth.Authenticate(ctx, authorization)
	if err == nil && s.trust.Seen != nil {
		if err := s.trust.Seen.TouchLastSeen(ctx, p.ID); err != nil {
			s.log.Debug("touch last seen", "producer", p.ID, "err", err)
		}
	}
	return p, err
}

// admit applies everything but authentication to parsed events: the rate
// limit, tag permissions, category ownership and schemas. It stamps each
// event with its producer.
func (s *Service) admit(ctx context.Context, p *producer.Producer, events []event.Event, batch bool) error {
	if p != nil && s.trust.Limits != nil {
		if ok, wait := s.trust.Limits.Allow(p.ID, ratelimit.Rate(p.Rate), len(events)); !ok {
			pr := problem.New(http.StatusTooManyRequests, "rate-limited",
				fmt.Sprintf("producer %s is over its rate limit; retry after %s", p.ID, wait.Round(time.Millisecond)))
			pr.RetryAfter = max(wait, time.Second)
			return pr
		}
	}
	var (
		invalid []problem.FieldError
		broken  int // schema rules broken, listed or not
	)
	for i := range events {
		e := &events[i]
		at := pointer(batch, i)
		if p != nil {
			e.Producer = p.ID
			if !allowed(p, e.Tag) {
				pr := problem.New(http.StatusForbidden, "tag-forbidden",
					fmt.Sprintf("producer %s may not publish tag %s (allowed: %v)", p.ID, e.Tag, p.Tags))
				pr.Errors = []problem.FieldError{{Pointer: at + "/tag", Detail: "is not allowed for this producer"}}
				return pr
			}
			if err := s.checkOwner(ctx, p, e.Category, at); err != nil {
				return err
			}
		}
		if s.trust.Schemas != nil {
			for _, fe := range s.trust.Schemas.Validate(e.Category, e.Code, e.Data) {
				// Like the event parser's errors: the first MaxErrors,
				// echoed names cut short, so the answer stays small.
				if broken++; len(invalid) < event.MaxErrors {
					invalid = append(invalid, problem.FieldError{Pointer: event.Elide(at + fe.Pointer), Detail: event.Elide(fe.Detail)})
				}
			}
		}
	}
	if broken > len(invalid) {
		return problem.Invalid(fmt.Sprintf("%d schema rule(s) broken; the first %d are listed; nothing was published", broken, len(invalid)), invalid...)
	}
	if broken > 0 {
		return problem.Invalid(fmt.Sprintf("%d schema rule(s) broken; nothing was published", broken), invalid...)
	}
	return nil
}

// checkOwner answers 423 when another producer owns the category or one
// of its dot-prefixes (ownership covers sub-categories), and claims a
// category nobody's claim covers when ClaimOnFirstWrite is on, or for a
// publish of the event server's API, whose streams belong to their first
// writer (eventserver.FirstWriterOwns: set in the context by the
// translation, which calls ingest in-process; no client can set it). A claim
// refused because another producer owns a sub-category leaves the
// category unowned and the write admitted: that producer does not own
// what is written.
func (s *Service) checkOwner(ctx context.Context, p *producer.Producer, category, at string) error {
	if s.trust.Owners == nil {
		return nil
	}
	owner, owned, mine := s.coveringOwner(category, p.ID)
	if owner == "" && !mine && (s.trust.ClaimOnFirstWrite || eventserver.FirstWriterOwns(ctx)) {
		var err error
		owner, err = s.trust.Owners.Claim(ctx, category, p.ID)
		switch {
		case subCategoryOwned(err):
			return nil
		case err != nil:
			return fmt.Errorf("%w: claim %s: %w", errUnavailable, category, err)
		}
	}
	if owner != "" && owner != p.ID {
		detail := fmt.Sprintf("category %s is owned by producer %s", category, owner)
		if owned != "" && owned != category {
			detail += ", the owner of " + owned
		}
		pr := problem.New(http.StatusLocked, "category-owned", detail)
		pr.Owner = owner
		pr.Errors = []problem.FieldError{{Pointer: at + "/category", Detail: "is owned by another producer"}}
		return pr
	}
	return nil
}

// allowed reports whether one of p's patterns matches tag. A tag is a
// pattern without wildcards, so "covers" is "matches".
func allowed(p *producer.Producer, tag string) bool {
	for _, pat := range p.Tags {
		if subject.Covers(pat, tag) {
			return true
		}
	}
	return false
}

// pointer is the JSON pointer of event i of a request.
func pointer(batch bool, i int) string {
	if !batch {
		return ""
	}
	return "/" + strconv.Itoa(i)
}
