package problem

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	tests := []struct {
		name, contentType, body string
		status                  int
		pointer                 string
	}{
		{"ok", "application/json", `{"name":"a","n":1}`, 0, ""},
		{"no content type", "", `{"name":"a"}`, 0, ""},
		{"other content type", "text/plain", `{}`, 415, ""},
		{"too large", "", `{"name":"` + strings.Repeat("a", 100) + `"}`, 413, ""},
		{"empty", "", ``, 400, ""},
		{"malformed", "", `{"name":`, 400, ""},
		{"duplicate name", "", `{"name":"a","name":"b"}`, 400, ""},
		{"trailing data", "", `{"name":"a"} {}`, 400, ""},
		{"unknown member", "", `{"nam":"a"}`, 422, "/nam"},
		{"wrong type", "", `{"n":"1"}`, 422, "/n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var v body
			err := DecodeJSON(r, &v, 64)
			var p *Problem
			switch {
			case tt.status == 0 && err != nil:
				t.Fatalf("DecodeJSON(%q) = %v; want nil", tt.body, err)
			case tt.status == 0:
				return
			case !errors.As(err, &p) || p.Status != tt.status:
				t.Fatalf("DecodeJSON(%q) = %v; want a %d problem", tt.body, err, tt.status)
			}
			if tt.pointer != "" && (len(p.Errors) != 1 || p.Errors[0].Pointer != tt.pointer) {
				t.Errorf("DecodeJSON(%q) errors = %+v; want pointer %s", tt.body, p.Errors, tt.pointer)
			}
		})
	}
}
