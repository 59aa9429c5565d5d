package stream

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestUnavailable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{fmt.Errorf("update subscription s: %w", jetstream.ErrNoStreamResponse), true},
		{fmt.Errorf("create consumer: %w", context.DeadlineExceeded), true},
		{nats.ErrTimeout, true},
		{nats.ErrNoResponders, true},
		{fmt.Errorf("put: %w", nats.ErrConnectionClosed), true},
		{nats.ErrConnectionReconnecting, true},
		{jetstream.ErrJetStreamNotEnabled, true},
		{fmt.Errorf("create consumer: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}), true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}, false},
		{jetstream.ErrKeyNotFound, false},
		{jetstream.ErrKeyExists, false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		if got := Unavailable(tt.err); got != tt.want {
			t.Errorf("Unavailable(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}
