package schemas

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// While JetStream has no leader for the schemas bucket (an election in a
// cluster, a lost quorum) the schema API answers 503, never 500.
func TestUnavailableIs503(t *testing.T) {
	a := &API{log: slog.New(slog.DiscardHandler)}
	err := fmt.Errorf("put schema: %w", jetstream.ErrNoStreamResponse)
	if got := a.toProblem(httptest.NewRequest("PUT", "/v1/schemas/A", nil), err); got == nil || got.Status != http.StatusServiceUnavailable {
		t.Errorf("toProblem(%v) = %v; want a 503 problem", err, got)
	}
}
