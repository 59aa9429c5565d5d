package logsync

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/subject"
)

func TestTag(t *testing.T) {
	tests := []struct {
		category, code, want string
	}{
		{"TEST.NETWORK", "TIMEOUT", "TEST.NETWORK.TIMEOUT"},
		{"TEST.NETWORK.TIMEOUT", "", "TEST.NETWORK.TIMEOUT"},
		{"DATABASE", "CONNECTION_LOST", "DATABASE.CONNECTION_LOST"},
		{"TEST", "", "TEST.EVENT"},
		{"page interaction", "", "page_20interaction.EVENT"},
		{"page interaction", "click", "page_20interaction.click"},
		{"ui.page interaction", "", "ui.page_20interaction"},
		{"ui.page view", "double click", "ui.page_20view.double_20click"},
		{"AUTH", "token.expired", "AUTH.token_2Eexpired"},
		{"AUTH", "504", "AUTH.504"},
		{"a..b", "", "a_2E_2Eb.EVENT"},
		{".hidden", "X", "_2Ehidden.X"},
		{"trailing.", "", "trailing_2E.EVENT"},
		{"under_score-dash", "", "under_score-dash.EVENT"},
		{"café", "", "caf_C3_A9.EVENT"},
		{"100%", "ok!", "100_25.ok_21"},
		{"A*", ">", "A_2A._3E"},
	}
	for _, tt := range tests {
		if got := Tag(tt.category, tt.code); got != tt.want {
			t.Errorf("Tag(%q, %q) = %q; want %q", tt.category, tt.code, got, tt.want)
		}
	}
}

// TestTagIsAlwaysValid: whatever the emitter sends, the tag is one
// EventSync accepts (short of the subject's total length), and different
// long tokens stay different.
func TestTagIsAlwaysValid(t *testing.T) {
	long := strings.Repeat("x", 100)
	inputs := []struct{ category, code string }{
		{long, ""},
		{long + "y", ""},
		{strings.Repeat("é", 40), ""},
		{strings.Repeat("a", 54) + " b", ""},
		{strings.Repeat("a", 55) + " b", ""},
		{"A", strings.Repeat(" ", 30)},
		{"A." + long, long},
		{"\x00\x01\xff", "\t"},
		{"...", ""},
		{".", "."},
	}
	seen := map[string]string{}
	for _, in := range inputs {
		tag := Tag(in.category, in.code)
		if _, _, err := subject.SplitTag(tag); err != nil {
			t.Errorf("Tag(%q, %q) = %q: %v; want a valid tag", in.category, in.code, tag, err)
		}
		key := in.category + "\x00" + in.code
		if prev, ok := seen[tag]; ok && prev != key {
			t.Errorf("Tag(%q) = Tag(%q) = %q; want different tags", key, prev, tag)
		}
		seen[tag] = key
	}
	if got, want := Tag(long, ""), strings.Repeat("x", 55)+"-"; !strings.HasPrefix(got, want) || len(got) != 64+len(".EVENT") {
		t.Errorf("Tag(100 x) = %q; want %q and 8 hex digits, then .EVENT", got, want)
	}
	// An escape is never cut in two.
	if got := Tag(strings.Repeat("a", 53)+" "+strings.Repeat("b", 10), ""); !strings.HasPrefix(got, strings.Repeat("a", 53)+"-") {
		t.Errorf("Tag(53 a, space, 10 b) = %q; want the escape of the space dropped whole", got)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, body string
		want       *published
	}{
		{"category and code", `{"category":"TEST.NETWORK","code":"TIMEOUT","message":"slow"}`,
			&published{Category: "TEST.NETWORK", Code: "TIMEOUT", Message: "slow"}},
		{"full tag as category", `{"category":"TEST.NETWORK.TIMEOUT","message":"slow"}`,
			&published{Category: "TEST.NETWORK", Code: "TIMEOUT", Message: "slow"}},
		{"trimmed", `{"category":"  TEST.NETWORK ","code":"\tTIMEOUT\n","message":"  slow  "}`,
			&published{Category: "TEST.NETWORK", Code: "TIMEOUT", Message: "slow"}},
		{"blank code", `{"category":"A.B","code":"  ","message":"m"}`,
			&published{Category: "A", Code: "B", Message: "m"}},
		{"null code", `{"category":"A.B","code":null,"message":"m"}`,
			&published{Category: "A", Code: "B", Message: "m"}},
		{"number code", `{"category":"HTTP","code":504,"message":"m"}`,
			&published{Category: "HTTP", Code: "504", Message: "m"}},
		{"one token", `{"category":"TEST","message":"m"}`,
			&published{Category: "TEST", Code: "EVENT", Message: "m", Data: map[string]any{"_category": "TEST"}}},
		{"spaces", `{"category":"page interaction","message":"m"}`,
			&published{Category: "page_20interaction", Code: "EVENT", Message: "m", Data: map[string]any{"_category": "page interaction"}}},
		{"spaces with a code", `{"category":"page interaction","code":"double click","message":"m"}`,
			&published{Category: "page_20interaction", Code: "double_20click", Message: "m",
				Data: map[string]any{"_category": "page interaction", "_code": "double click"}}},
		{"unknown fields ignored", `{"category":"A.B","message":"m","level":"warn","ts":1}`,
			&published{Category: "A", Code: "B", Message: "m"}},
		{"missing category", `{"message":"m"}`, &published{Message: "m"}},
		{"blank message", `{"category":"A.B","message":" \t"}`, &published{Category: "A", Code: "B"}},
		{"empty object", `{}`, &published{}},
		{"empty body", ``, &published{}},
		{"null body", ` null `, &published{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("decode(%q) = %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decode(%q) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		pointer    string
	}{
		{"array", `[{"category":"A.B","message":"m"}]`, http.StatusBadRequest, ""},
		{"string", `"A.B"`, http.StatusBadRequest, ""},
		{"malformed", `{"category":`, http.StatusBadRequest, ""},
		{"trailing data", `{"category":"A.B","message":"m"} {}`, http.StatusBadRequest, ""},
		{"duplicate key", `{"category":"A.B","message":"m","message":"n"}`, http.StatusBadRequest, ""},
		{"invalid utf-8", "{\"category\":\"A.B\",\"message\":\"\xff\"}", http.StatusBadRequest, ""},
		{"number category", `{"category":5,"message":"m"}`, http.StatusUnprocessableEntity, "/category"},
		{"object message", `{"category":"A.B","message":{"text":"m"}}`, http.StatusUnprocessableEntity, "/message"},
		{"bool code", `{"category":"A","code":true,"message":"m"}`, http.StatusUnprocessableEntity, "/code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.body))
			var p *problem.Problem
			if !errors.As(err, &p) {
				t.Fatalf("decode(%q) = %v; want a problem", tt.body, err)
			}
			if p.Status != tt.status || p.Detail == "" {
				t.Errorf("decode(%q) = %+v; want status %d with a detail", tt.body, p, tt.status)
			}
			var ptr string
			if len(p.Errors) > 0 {
				ptr = p.Errors[0].Pointer
			}
			if ptr != tt.pointer {
				t.Errorf("decode(%q): pointer %q; want %q", tt.body, ptr, tt.pointer)
			}
		})
	}
}

func TestCategoryOf(t *testing.T) {
	tests := []struct {
		tag, data, want string
	}{
		{"TEST.NETWORK.TIMEOUT", ``, "TEST.NETWORK.TIMEOUT"},
		{"TEST.NETWORK.TIMEOUT", `{"host":"h"}`, "TEST.NETWORK.TIMEOUT"},
		{"TEST.EVENT", `{"_category":"TEST"}`, "TEST"},
		{"page_20interaction.EVENT", `{"_category":"page interaction"}`, "page interaction"},
		{"page_20interaction.double_20click", `{"_category":"page interaction","_code":"double click"}`, "page interaction.double click"},
		// Kept values that do not give the tag (another client's data)
		// are not shown.
		{"A.B", `{"_category":"something else"}`, "A.B"},
		{"A.B", `{"_category":5}`, "A.B"},
		{"A.B", `{"_category":""}`, "A.B"},
	}
	for _, tt := range tests {
		if got := categoryOf(tt.tag, jsontext.Value(tt.data)); got != tt.want {
			t.Errorf("categoryOf(%q, %s) = %q; want %q", tt.tag, tt.data, got, tt.want)
		}
	}
}
