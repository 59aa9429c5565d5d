package subject

import (
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes, 240 once escaped
	for _, tt := range []struct{ in, want string }{
		{"page interaction", "page_20interaction"},
		{"PAGE", "PAGE"},
		{"a_b-c9", "a_b-c9"},
		{"a.b", "a_2Eb"},
		{"é", "_C3_A9"},
		{"*>", "_2A_3E"},
		{"\x00\x7f\xff", "_00_7F_FF"},
	} {
		if got := Token(tt.in); got != tt.want {
			t.Errorf("Token(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
	a, b := Token(long), Token(long+"x")
	if len(a) > MaxTokenLen || validToken(a) != nil || a == b {
		t.Errorf("Token of long names = %q, %q; want two different valid tokens", a, b)
	}
}

func TestMapCategory(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"page interaction", "page_20interaction"},
		{"TEST.NETWORK", "TEST.NETWORK"},
		{"web.page view", "web.page_20view"},
		{"a..b", "a_2E_2Eb"},
		{"trailing.", "trailing_2E"},
		{"*", "_2A"},
	} {
		got := MapCategory(tt.in)
		if got != tt.want {
			t.Errorf("MapCategory(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if err := ValidateCategory(got); err != nil {
			t.Errorf("MapCategory(%q) = %q, not a category: %v", tt.in, got, err)
		}
	}
}
