package notifier

import (
	"errors"
	"net/http"
	"time"

	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/stream"
)

// toProblem maps the errors of the subscription API to their answers; nil
// for an internal error. Invalid requests are problems already.
func toProblem(_ *http.Request, err error) *problem.Problem {
	switch {
	case errors.Is(err, errNotFound):
		return problem.NotFound("no subscription has this id")
	case stream.Unavailable(err):
		return problem.Unavailable("JetStream is unavailable", time.Second)
	}
	return nil
}
