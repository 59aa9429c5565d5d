package ingest

import (
	"errors"
	"fmt"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/auth"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
)

// toProblem returns the problem an error of the ingest path is answered
// with, over HTTP and NATS alike, or nil for an internal error. A
// *problem.Problem is answered as is.
func toProblem(err error) *problem.Problem {
	var (
		p  *problem.Problem
		ae *auth.Error
		se *event.SyntaxError
		ve *event.ValidationError
	)
	switch {
	case errors.As(err, &ae):
		return access.Problem(ae).(*problem.Problem)
	case errors.As(err, &p):
		return p
	case errors.As(err, &se):
		p = problem.BadRequest(se.Error())
		if se.Pointer != "" {
			p.Errors = []problem.FieldError{{Pointer: se.Pointer, Detail: se.Detail}}
		}
		return p
	case errors.As(err, &ve):
		errs := make([]problem.FieldError, len(ve.Errors))
		for i, fe := range ve.Errors {
			errs[i] = problem.FieldError{Pointer: fe.Pointer, Detail: fe.Detail}
		}
		detail := fmt.Sprintf("%d rule(s) broken; nothing was published", len(errs))
		if ve.More > 0 {
			detail = fmt.Sprintf("%d rule(s) broken; the first %d are listed; nothing was published", len(errs)+ve.More, len(errs))
		}
		return problem.Invalid(detail, errs...)
	case errors.Is(err, errUnavailable), errors.Is(err, auth.ErrUnavailable):
		return problem.Unavailable("the event stream did not acknowledge in time; retry with the same ids", retryAfter)
	}
	return nil
}
