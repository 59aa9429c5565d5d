package httpserve

import (
	"net/http/httptest"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		status   int
		wantBody string
		wantType string
		wantErr  bool
	}{
		{"body", map[string]int{"n": 1}, 201, "{\"n\":1}\n", "application/json", false},
		{"no body", nil, 204, "", "", false},
		{"unencodable", make(chan int), 200, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := WriteJSON(w, tt.status, tt.v)
			if (err != nil) != tt.wantErr {
				t.Fatalf("WriteJSON(%v) error = %v; want error %v", tt.v, err, tt.wantErr)
			}
			if tt.wantErr {
				if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
					t.Errorf("WriteJSON wrote %q before failing; want nothing", w.Body)
				}
				return
			}
			if w.Code != tt.status || w.Body.String() != tt.wantBody || w.Header().Get("Content-Type") != tt.wantType {
				t.Errorf("WriteJSON(%v) = %d %q %q; want %d %q %q", tt.v, w.Code, w.Header().Get("Content-Type"), w.Body, tt.status, tt.wantType, tt.wantBody)
			}
		})
	}
}
