package collector

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventsync/eventsync/pkg/problem"
)

// TestParams checks what a read's parameters and body become in the
// translated request, and what is refused.
func TestParams(t *testing.T) {
	tests := []struct {
		name, target, body string
		cursor             bool
		want               string // the translated query, encoded
		status             int    // of the refusal, when refused
		pointer            string
	}{
		{"defaults", "/events/range", "", true, "limit=1000", 0, ""},
		{"limit and since", "/events/range?limit=5&since=42", "", true, "limit=5&since=42", 0, ""},
		{"range in parameters, end included", "/events/range?start_time=2024-05-06T07:00:00Z&end_time=2024-05-06T08:00:00Z", "", true,
			"from=2024-05-06T07%3A00%3A00Z&limit=1000&to=2024-05-06T08%3A00%3A00.000001Z", 0, ""},
		{"range in a body, any zone", "/events/range", `{"start_time":"2024-05-06T09:00:00+02:00","end_time":"2024-05-06 08:00:00.5"}`, true,
			"from=2024-05-06T07%3A00%3A00Z&limit=1000&to=2024-05-06T08%3A00%3A00.500001Z", 0, ""},
		{"body and parameter agreeing", "/events/range?end_time=2024-05-06T08:00:00Z", `{"end_time":"2024-05-06 08:00:00"}`, true,
			"limit=1000&to=2024-05-06T08%3A00%3A00.000001Z", 0, ""},
		{"blank body", "/events/range", " \n", true, "limit=1000", 0, ""},
		{"body and parameter differ", "/events/range?end_time=2024-05-06T08:00:00Z", `{"end_time":"2024-05-06T08:00:01Z"}`, true, "", http.StatusBadRequest, "end_time"},
		{"end before start", "/events/range?start_time=2024-05-06T08:00:00Z&end_time=2024-05-06T07:00:00Z", "", true, "", http.StatusBadRequest, "end_time"},
		{"bad time", "/events/range?start_time=noon", "", true, "", http.StatusBadRequest, "start_time"},
		{"limit 0", "/events/range?limit=0", "", true, "", http.StatusBadRequest, "limit"},
		{"limit over the most", "/events/range?limit=10001", "", true, "", http.StatusBadRequest, "limit"},
		{"since on a session", "/sessions/s/events?since=1", "", false, "", http.StatusBadRequest, "since"},
		{"negative since", "/events/range?since=-1", "", true, "", http.StatusBadRequest, "since"},
		{"unknown member", "/events/range", `{"from":"2024-05-06T07:00:00Z"}`, true, "", http.StatusUnprocessableEntity, "/from"},
		{"time of the wrong type", "/events/range", `{"start_time":1715000000}`, true, "", http.StatusUnprocessableEntity, "/start_time"},
		{"body too large", "/events/range", `{"start_time":"` + strings.Repeat(" ", maxBody) + `"}`, true, "", http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "text/plain") // whatever it says, a body is JSON
			q, err := params(r, tt.cursor)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("params(%s %s) error = %v", tt.target, tt.body, err)
				}
				if got := q.values.Encode(); got != tt.want {
					t.Errorf("params(%s %s) = %s; want %s", tt.target, tt.body, got, tt.want)
				}
				return
			}
			var p *problem.Problem
			if !errors.As(err, &p) || p.Status != tt.status {
				t.Fatalf("params(%s %s) error = %v; want a %d problem", tt.target, tt.body, err, tt.status)
			}
			if tt.pointer != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != tt.pointer) {
				t.Errorf("params(%s %s) errors = %v; want one at %s", tt.target, tt.body, p.Errors, tt.pointer)
			}
		})
	}
}
