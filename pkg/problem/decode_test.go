package problem

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// detailed is a value whose decoder says what is wrong with it.
type detailed struct{}

type detailError struct{}

func (detailError) Error() string       { return "bad" }
func (detailError) FieldDetail() string { return `must be "a" or "b"` }

func (*detailed) UnmarshalJSON(b []byte) error {
	if string(b) != `"a"` && string(b) != `"b"` {
		return detailError{}
	}
	return nil
}

func TestDecodeJSON(t *testing.T) {
	type inner struct {
		Max int `json:"max"`
	}
	type body struct {
		Name   string            `json:"name"`
		N      int               `json:"n"`
		Seq    *uint64           `json:"seq"`
		Ratio  float64           `json:"ratio"`
		On     bool              `json:"on"`
		Tags   []string          `json:"tags"`
		Labels map[string]string `json:"labels"`
		Inner  *inner            `json:"inner"`
		From   *time.Time        `json:"from"`
		Mode   detailed          `json:"mode"`
	}
	tests := []struct {
		name, contentType, body string
		status                  int
		detail                  string
		errs                    []FieldError
	}{
		{name: "ok", contentType: "application/json", body: `{"name":"a","n":1,"seq":2,"from":"2025-01-02T15:04:05Z","mode":"a"}`},
		{name: "no content type", body: `{"name":"a"}`},
		{name: "members may be null", body: `{"name":null,"inner":null}`},
		{name: "other content type", contentType: "text/plain", body: `{}`, status: 415, detail: "send application/json"},
		{name: "too large", body: `{"name":"` + strings.Repeat("a", 200) + `"}`, status: 413, detail: "the body must be at most 128 bytes"},
		{name: "empty", body: ``, status: 400, detail: "the body is empty; send a JSON object"},
		{name: "blank", body: " \n", status: 400, detail: "the body is empty; send a JSON object"},
		{name: "null", body: `null`, status: 400, detail: "the body must be a JSON object, not null"},
		{name: "array", body: `[]`, status: 400, detail: "the body must be a JSON object, not an array"},
		{name: "string", body: `"x"`, status: 400, detail: "the body must be a JSON object, not a string"},
		{name: "number", body: `1`, status: 400, detail: "the body must be a JSON object, not a number"},
		{name: "cut short", body: `{"name":`, status: 400, detail: "the body is not valid JSON: it ends early"},
		{name: "trailing comma", body: `{"name":"a",}`, status: 400, detail: "the body is not valid JSON: invalid character ',' at start of value (offset 11)"},
		{name: "single quotes", body: `{"name":'a'}`, status: 400, detail: `the body is not valid JSON: invalid character '\'' at start of value in /name (offset 8)`},
		{name: "invalid UTF-8", body: "{\"name\":\"\xff\"}", status: 400, detail: "the body is not valid JSON: invalid UTF-8 in /name (offset 9)"},
		{name: "duplicate name", body: `{"name":"a","name":"b"}`, status: 400, detail: "the body is not valid JSON: /name appears twice"},
		{name: "nested duplicate", body: `{"inner":{"max":1,"max":2}}`, status: 400, detail: "the body is not valid JSON: /inner/max appears twice"},
		{name: "trailing data", body: `{"name":"a"} {}`, status: 400, detail: "the body is not valid JSON: invalid character '{' after top-level value (offset 13)"},
		{name: "unknown member", body: `{"nam":"a"}`, status: 422, detail: "/nam is not a known member",
			errs: []FieldError{{"/nam", "is not a known member"}}},
		{name: "member in another case", body: `{"Name":"a"}`, status: 422, detail: "/Name is not a known member",
			errs: []FieldError{{"/Name", "is not a known member"}}},
		{name: "nested unknown member", body: `{"inner":{"min":1}}`, status: 422, detail: "/inner/min is not a known member",
			errs: []FieldError{{"/inner/min", "is not a known member"}}},
		{name: "string for integer", body: `{"n":"1"}`, status: 422, detail: "/n must be an integer, not a string",
			errs: []FieldError{{"/n", "must be an integer, not a string"}}},
		{name: "fraction for integer", body: `{"n":1.5}`, status: 422, detail: "/n must be an integer",
			errs: []FieldError{{"/n", "must be an integer"}}},
		{name: "integer too large", body: `{"n":99999999999999999999}`, status: 422, detail: "/n is out of range",
			errs: []FieldError{{"/n", "is out of range"}}},
		{name: "negative for unsigned", body: `{"seq":-1}`, status: 422, detail: "/seq must be a non-negative integer",
			errs: []FieldError{{"/seq", "must be a non-negative integer"}}},
		{name: "boolean for number", body: `{"ratio":true}`, status: 422, detail: "/ratio must be a number, not a boolean",
			errs: []FieldError{{"/ratio", "must be a number, not a boolean"}}},
		{name: "number for boolean", body: `{"on":1}`, status: 422, detail: "/on must be true or false, not a number",
			errs: []FieldError{{"/on", "must be true or false, not a number"}}},
		{name: "string for array", body: `{"tags":"A.*"}`, status: 422, detail: "/tags must be an array, not a string",
			errs: []FieldError{{"/tags", "must be an array, not a string"}}},
		{name: "number in array", body: `{"tags":["A.*",1]}`, status: 422, detail: "/tags/1 must be a string, not a number",
			errs: []FieldError{{"/tags/1", "must be a string, not a number"}}},
		{name: "array for object", body: `{"labels":[]}`, status: 422, detail: "/labels must be an object, not an array",
			errs: []FieldError{{"/labels", "must be an object, not an array"}}},
		{name: "number in map", body: `{"labels":{"a/b":1}}`, status: 422, detail: "/labels/a~1b must be a string, not a number",
			errs: []FieldError{{"/labels/a~1b", "must be a string, not a number"}}},
		{name: "array for struct", body: `{"inner":[]}`, status: 422, detail: "/inner must be an object, not an array",
			errs: []FieldError{{"/inner", "must be an object, not an array"}}},
		{name: "bad time", body: `{"from":"yesterday"}`, status: 422, detail: "/from must be an RFC 3339 time such as 2025-01-02T15:04:05Z",
			errs: []FieldError{{"/from", "must be an RFC 3339 time such as 2025-01-02T15:04:05Z"}}},
		{name: "number for time", body: `{"from":1}`, status: 422, detail: "/from must be an RFC 3339 time such as 2025-01-02T15:04:05Z, not a number",
			errs: []FieldError{{"/from", "must be an RFC 3339 time such as 2025-01-02T15:04:05Z, not a number"}}},
		{name: "custom detail", body: `{"mode":"c"}`, status: 422, detail: `/mode must be "a" or "b"`,
			errs: []FieldError{{"/mode", `must be "a" or "b"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var v body
			err := DecodeJSON(r, &v, 128)
			var p *Problem
			switch {
			case tt.status == 0 && err != nil:
				t.Fatalf("DecodeJSON(%q) = %v; want nil", tt.body, err)
			case tt.status == 0:
				return
			case !errors.As(err, &p) || p.Status != tt.status:
				t.Fatalf("DecodeJSON(%q) = %v; want a %d problem", tt.body, err, tt.status)
			}
			if p.Detail != tt.detail {
				t.Errorf("DecodeJSON(%q) detail = %q; want %q", tt.body, p.Detail, tt.detail)
			}
			if diff := cmp.Diff(tt.errs, p.Errors); diff != "" {
				t.Errorf("DecodeJSON(%q) errors (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}
