package query

import (
	"errors"
	"net/http"
	"time"

	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/problem"
)

// toProblem maps the errors of the event store to their answers; nil for
// an internal error. Bad parameters and missing events are problems
// already.
func toProblem(_ *http.Request, err error) *problem.Problem {
	if errors.Is(err, eventstore.ErrUnavailable) {
		return problem.Unavailable("the event store is unavailable", time.Second)
	}
	return nil
}
