package httpserve

import (
	"fmt"
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"
)

// WriteJSON answers status with v encoded as one line of JSON; a nil v
// answers the status with no body. Encoding happens before anything is
// written, so on an error the caller can still answer with a problem.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	if v == nil {
		w.WriteHeader(status)
		return nil
	}
	b, err := jsonv2.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}
