package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// While JetStream has no leader for a bucket or stream (an election in a
// cluster, a lost quorum) the subscription API answers 503 with
// Retry-After, never 500.
func TestAPIUnavailableIs503(t *testing.T) {
	s := &Service{log: slog.New(slog.DiscardHandler)}
	for _, err := range []error{
		fmt.Errorf("update subscription sub_1: %w", jetstream.ErrNoStreamResponse),
		fmt.Errorf("consumer notify-sub_1: %w", context.DeadlineExceeded),
		fmt.Errorf("consumer notify-sub_1: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}),
	} {
		rec := httptest.NewRecorder()
		s.handle(func(*http.Request) (response, error) { return response{}, err })(rec, httptest.NewRequest("POST", "/v1/subscriptions/sub_1/pause", nil))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("answer to %v = %d, Retry-After %q; want 503 with Retry-After", err, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
}
