package consumers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
)

// TestProblemDetails checks the whole detail of every kind of bad request
// body: each reads as a person would write it, names the member at fault
// and no Go type.
func TestProblemDetails(t *testing.T) {
	e := newEnv(t)
	e.publish("ORDER.CREATED")
	e.create("orders", []string{"ORDER.*"}, "all")
	tags := []string{"ORDER.*"}
	fe := func(ptr, detail string) []problem.FieldError {
		return []problem.FieldError{{Pointer: ptr, Detail: detail}}
	}

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		detail string
		errs   []problem.FieldError
	}{
		{"array body", "PUT", "/v1/consumers/c", `[]`, 400, "the body must be a JSON object, not an array", nil},
		{"null body", "PUT", "/v1/consumers/c", `null`, 400, "the body must be a JSON object, not null", nil},
		{"not json", "POST", "/v1/consumers/orders/ack", `seq=1`, 400, "the body is not valid JSON: invalid character 's' at start of value (offset 0)", nil},
		{"cut short", "PUT", "/v1/consumers/c", `{"tags": [`, 400, "the body is not valid JSON: it ends early", nil},
		{"duplicate member", "PUT", "/v1/consumers/c", `{"tags":["A.*"],"tags":["B.*"]}`, 400, "the body is not valid JSON: /tags appears twice", nil},
		{"unknown member", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "colour": "red"}, 422,
			"/colour is not a known member", fe("/colour", "is not a known member")},
		{"tags of the wrong type", "PUT", "/v1/consumers/c", map[string]any{"tags": "ORDER.*"}, 422,
			"/tags must be an array, not a string", fe("/tags", "must be an array, not a string")},
		{"tag of the wrong type", "PUT", "/v1/consumers/c", map[string]any{"tags": []any{"ORDER.*", 7}}, 422,
			"/tags/1 must be a string, not a number", fe("/tags/1", "must be a string, not a number")},
		{"too many tags", "PUT", "/v1/consumers/c", map[string]any{"tags": manyTags(MaxTags + 1)}, 422,
			"/tags must have at most 32 patterns", fe("/tags", "must have at most 32 patterns")},
		{"bad patterns", "PUT", "/v1/consumers/c", map[string]any{"tags": []string{"ORDER.*", "ORDER..X", "A B.*"}}, 422,
			`/tags/1 "ORDER..X" must not have empty tokens (leading, trailing or double dots)`,
			[]problem.FieldError{
				{Pointer: "/tags/1", Detail: `"ORDER..X" must not have empty tokens (leading, trailing or double dots)`},
				{Pointer: "/tags/2", Detail: `"A B.*" tokens may hold only ASCII letters, digits, '_' and '-'`},
			}},
		{"overlapping tags", "PUT", "/v1/consumers/c", map[string]any{"tags": []string{"ORDER.*", "*.CREATED"}}, 422,
			`/tags patterns "*.CREATED" and "ORDER.*" overlap (some tag matches both); combine them into one pattern or use two consumers`,
			fe("/tags", `patterns "*.CREATED" and "ORDER.*" overlap (some tag matches both); combine them into one pattern or use two consumers`)},
		{"unknown start", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "start": "latest"}, 422,
			`/start must be "new", "all", {"since_seq": N} or {"from": "<RFC 3339 time>"}`,
			fe("/start", `must be "new", "all", {"since_seq": N} or {"from": "<RFC 3339 time>"}`)},
		{"ack without seq", "POST", "/v1/consumers/orders/ack", map[string]any{}, 422, "/seq is required", fe("/seq", "is required")},
		{"ack seq as a string", "POST", "/v1/consumers/orders/ack", map[string]any{"seq": "1"}, 422,
			"/seq must be a non-negative integer, not a string", fe("/seq", "must be a non-negative integer, not a string")},
		{"ack negative seq", "POST", "/v1/consumers/orders/ack", map[string]any{"seq": -1}, 422,
			"/seq must be a non-negative integer", fe("/seq", "must be a non-negative integer")},
		{"seek seq too large", "POST", "/v1/consumers/orders/seek", `{"seq": 1e30}`, 422,
			"/seq must be a non-negative integer", fe("/seq", "must be a non-negative integer")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, raw := e.call(tt.method, tt.path, tt.body, nil)
			if code != tt.status {
				t.Fatalf("%s %s %v = %d %s; want %d", tt.method, tt.path, tt.body, code, raw, tt.status)
			}
			p := decodeProblem(t, raw)
			if p.Detail != tt.detail {
				t.Errorf("%s %s %v detail = %q; want %q", tt.method, tt.path, tt.body, p.Detail, tt.detail)
			}
			if diff := cmp.Diff(tt.errs, p.Errors); diff != "" {
				t.Errorf("%s %s %v errors (-want +got):\n%s", tt.method, tt.path, tt.body, diff)
			}
		})
	}
}
