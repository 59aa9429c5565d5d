package subject

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
)

// tok returns a token of n bytes.
func tok(c string, n int) string { return strings.Repeat(c, n) }

// longCategory is three 64-byte tokens: 194 bytes. With "events." and a
// dot it leaves room for a code of 53 bytes in a 255-byte subject.
var longCategory = tok("A", 64) + "." + tok("B", 64) + "." + tok("C", 64)

// invalidTokens break the token rule; each is given with the error it
// yields as a category, as a code and inside a tag or pattern.
var invalidTokens = []struct {
	tok  string
	want error
}{
	{"A B", ErrBadChar},
	{" A", ErrBadChar},
	{"A\t", ErrBadChar},
	{"A\n", ErrBadChar},
	{"A\x00", ErrBadChar},
	{"*", ErrBadChar},
	{">", ErrBadChar},
	{"A*", ErrBadChar},
	{"A>", ErrBadChar},
	{"É", ErrBadChar},
	{"A\xff", ErrBadChar},
	{"ＡＢ", ErrBadChar}, // full-width letters
	{"A/B", ErrBadChar},
	{"A:B", ErrBadChar},
	{"A$", ErrBadChar},
	{"A+B", ErrBadChar},
	{tok("A", 65), ErrTokenTooLong},
}

func TestValidateCategory(t *testing.T) {
	tests := []struct {
		category string
		want     error
	}{
		{"A", nil},
		{"TEST", nil},
		{"TEST.NETWORK", nil},
		{"a.b.c.d.e", nil},
		{"Db_1-x", nil},
		{"0", nil},
		{"_", nil},
		{"-", nil},
		{tok("A", 64), nil},
		{longCategory, nil},
		{"", ErrEmpty},
		{".", ErrEmptyToken},
		{".A", ErrEmptyToken},
		{"A.", ErrEmptyToken},
		{"A..B", ErrEmptyToken},
		{"A.B C", ErrBadChar},
		{"A.*", ErrBadChar},
		{"A.>", ErrBadChar},
		{"A." + tok("B", 65), ErrTokenTooLong},
	}
	for _, it := range invalidTokens {
		tests = append(tests, struct {
			category string
			want     error
		}{it.tok, it.want})
	}
	for _, tt := range tests {
		t.Run(tt.category, func(t *testing.T) {
			if err := ValidateCategory(tt.category); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("ValidateCategory(%q) = %v; want %v", tt.category, err, tt.want)
			}
		})
	}
}

func TestValidateCode(t *testing.T) {
	tests := []struct {
		code string
		want error
	}{
		{"TIMEOUT", nil},
		{"CONNECTION_LOST", nil},
		{"x", nil},
		{"404", nil},
		{"a-b_C", nil},
		{tok("Z", 64), nil},
		{"", ErrEmpty},
		{".", ErrCodeDots},
		{"A.B", ErrCodeDots},
		{".A", ErrCodeDots},
		{"A.", ErrCodeDots},
	}
	for _, it := range invalidTokens {
		tests = append(tests, struct {
			code string
			want error
		}{it.tok, it.want})
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if err := ValidateCode(tt.code); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("ValidateCode(%q) = %v; want %v", tt.code, err, tt.want)
			}
		})
	}
}

func TestSplitTag(t *testing.T) {
	tests := []struct {
		tag            string
		category, code string
		want           error
	}{
		{"DATABASE.CONNECTION_LOST", "DATABASE", "CONNECTION_LOST", nil},
		{"TEST.NETWORK.TIMEOUT", "TEST.NETWORK", "TIMEOUT", nil},
		{"a.b.c.d", "a.b.c", "d", nil},
		{"A-1.b_2", "A-1", "b_2", nil},
		{longCategory + "." + tok("D", 53), longCategory, tok("D", 53), nil}, // 248 bytes: subject of 255
		{longCategory + "." + tok("D", 54), "", "", ErrTooLong},              // subject of 256
		{"", "", "", ErrEmpty},
		{"DATABASE", "", "", ErrNoCode},
		{".", "", "", ErrEmptyToken},
		{".A", "", "", ErrEmptyToken},
		{"A.", "", "", ErrEmptyToken},
		{"A..B", "", "", ErrEmptyToken},
		{"..", "", "", ErrEmptyToken},
		{".A.B", "", "", ErrEmptyToken},
		{"A.B.", "", "", ErrEmptyToken},
		{"A.B C", "", "", ErrBadChar},
		{"A B.C", "", "", ErrBadChar},
		{" A.B", "", "", ErrBadChar},
		{"A.B ", "", "", ErrBadChar},
		{"A.*", "", "", ErrBadChar},
		{"*.B", "", "", ErrBadChar},
		{"A.>", "", "", ErrBadChar},
		{">", "", "", ErrNoCode},
		{"Ä.B", "", "", ErrBadChar},
		{"A.ß", "", "", ErrBadChar},
		{"A." + tok("B", 65), "", "", ErrTokenTooLong},
		{tok("A", 65) + ".B", "", "", ErrTokenTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			category, code, err := SplitTag(tt.tag)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("SplitTag(%q) error = %v; want %v", tt.tag, err, tt.want)
			}
			if category != tt.category || code != tt.code {
				t.Errorf("SplitTag(%q) = %q, %q; want %q, %q", tt.tag, category, code, tt.category, tt.code)
			}
			if err == nil && Tag(category, code) != tt.tag {
				t.Errorf("Tag(%q, %q) = %q; want %q", category, code, Tag(category, code), tt.tag)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		category, code string
		want           string
		wantErr        error
		errPrefix      string // the error names the part at fault
	}{
		{"DATABASE", "CONNECTION_LOST", "events.DATABASE.CONNECTION_LOST", nil, ""},
		{"TEST.NETWORK", "TIMEOUT", "events.TEST.NETWORK.TIMEOUT", nil, ""},
		{longCategory, tok("D", 53), "events." + longCategory + "." + tok("D", 53), nil, ""},
		{longCategory, tok("D", 54), "", ErrTooLong, ""},
		{"", "X", "", ErrEmpty, "category "},
		{"A", "", "", ErrEmpty, "code "},
		{"A B", "X", "", ErrBadChar, "category "},
		{"A..B", "X", "", ErrEmptyToken, "category "},
		{"A.", "X", "", ErrEmptyToken, "category "},
		{"*", "X", "", ErrBadChar, "category "},
		{"A", "*", "", ErrBadChar, "code "},
		{"A", ">", "", ErrBadChar, "code "},
		{"A", "X.Y", "", ErrCodeDots, "code "},
		{"A", "É", "", ErrBadChar, "code "},
		{"A", tok("X", 65), "", ErrTokenTooLong, "code "},
	}
	for _, tt := range tests {
		t.Run(tt.category+"|"+tt.code, func(t *testing.T) {
			got, err := Build(tt.category, tt.code)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Build(%q, %q) error = %v; want %v", tt.category, tt.code, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Build(%q, %q) = %q; want %q", tt.category, tt.code, got, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), tt.errPrefix) {
				t.Errorf("Build(%q, %q) error = %q; want prefix %q", tt.category, tt.code, err, tt.errPrefix)
			}
			if err == nil && !server.IsValidLiteralSubject(got) {
				t.Errorf("Build(%q, %q) = %q, which NATS does not take as a literal subject", tt.category, tt.code, got)
			}
		})
	}
}

func TestParse(t *testing.T) {
	type parsed struct{ Tag, Category, Code string }
	tests := []struct {
		subj    string
		want    parsed
		wantErr error
	}{
		{"events.DATABASE.CONNECTION_LOST", parsed{"DATABASE.CONNECTION_LOST", "DATABASE", "CONNECTION_LOST"}, nil},
		{"events.TEST.NETWORK.TIMEOUT", parsed{"TEST.NETWORK.TIMEOUT", "TEST.NETWORK", "TIMEOUT"}, nil},
		{"events.events.X", parsed{"events.X", "events", "X"}, nil},
		{"events." + longCategory + "." + tok("D", 53), parsed{longCategory + "." + tok("D", 53), longCategory, tok("D", 53)}, nil},
		{"events." + longCategory + "." + tok("D", 54), parsed{}, ErrTooLong},
		{"", parsed{}, ErrNotEvent},
		{"events", parsed{}, ErrNotEvent},
		{"events.", parsed{}, ErrEmpty},
		{"event.A.B", parsed{}, ErrNotEvent},
		{"eventsA.B", parsed{}, ErrNotEvent},
		{"EVENTS.A.B", parsed{}, ErrNotEvent},
		{"deliveries.A.B", parsed{}, ErrNotEvent},
		{" events.A.B", parsed{}, ErrNotEvent},
		{"events.A", parsed{}, ErrNoCode},
		{"events..A.B", parsed{}, ErrEmptyToken},
		{"events.A.B.", parsed{}, ErrEmptyToken},
		{"events.A.*", parsed{}, ErrBadChar},
		{"events.>", parsed{}, ErrNoCode},
		{"events.A.>", parsed{}, ErrBadChar},
		{"events.A B.C", parsed{}, ErrBadChar},
	}
	for _, tt := range tests {
		t.Run(tt.subj, func(t *testing.T) {
			var got parsed
			var err error
			got.Tag, got.Category, got.Code, err = Parse(tt.subj)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Parse(%q) error = %v; want %v", tt.subj, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.subj, diff)
			}
			if err != nil && !strings.Contains(err.Error(), tt.subj) {
				t.Errorf("Parse(%q) error = %q; want it to quote the subject", tt.subj, err)
			}
			if err == nil {
				if subj, err := Build(got.Category, got.Code); subj != tt.subj || err != nil {
					t.Errorf("Build(%q, %q) = %q, %v; want %q, nil", got.Category, got.Code, subj, err, tt.subj)
				}
			}
		})
	}
}

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		pattern string
		want    error
	}{
		{">", nil},
		{"*", nil},
		{"DATABASE.*", nil},
		{"*.CONNECTION_LOST", nil},
		{"TEST.>", nil},
		{"TEST.NETWORK.TIMEOUT", nil},
		{"*.*", nil},
		{"*.>", nil},
		{"A.*.B.>", nil},
		{"a-b_c.*", nil},
		{longCategory + "." + tok("D", 53), nil},
		{longCategory + "." + tok("D", 54), ErrTooLong},
		{longCategory + strings.Repeat(".*", 26) + ".>", nil},           // 248 bytes: filter of 255
		{longCategory + strings.Repeat(".*", 26) + ".A>", ErrBadChar},   // characters before length
		{longCategory + strings.Repeat(".*", 25) + ".*.AB", ErrTooLong}, // 249 bytes
		{longCategory + strings.Repeat(".*", 27) + ".>", ErrTooLong},    // 250 bytes
		{"", ErrEmpty},
		{">.A", ErrWildcard},
		{"A.>.B", ErrWildcard},
		{">.>", ErrWildcard},
		{".", ErrEmptyToken},
		{".A", ErrEmptyToken},
		{"A.", ErrEmptyToken},
		{"A..B", ErrEmptyToken},
		{"A.*.", ErrEmptyToken},
		{"A.>.", ErrWildcard},
		{"A*", ErrBadChar},
		{"A.B*", ErrBadChar},
		{"**", ErrBadChar},
		{">>", ErrBadChar},
		{"A.>>", ErrBadChar},
		{"*A.B", ErrBadChar},
		{"A B.*", ErrBadChar},
		{" *", ErrBadChar},
		{"A.* ", ErrBadChar},
		{"Ä.*", ErrBadChar},
		{tok("A", 65) + ".>", ErrTokenTooLong},
	}
	for _, it := range invalidTokens {
		if it.tok == "*" || it.tok == ">" {
			continue
		}
		tests = append(tests, struct {
			pattern string
			want    error
		}{it.tok + ".*", it.want})
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			err := ValidatePattern(tt.pattern)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("ValidatePattern(%q) = %v; want %v", tt.pattern, err, tt.want)
			}
			if err == nil && !server.IsValidSubject(Filter(tt.pattern)) {
				t.Errorf("Filter(%q) = %q, which NATS does not take as a subject", tt.pattern, Filter(tt.pattern))
			}
		})
	}
}

func TestFilter(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{">", "events.>"},
		{"DATABASE.*", "events.DATABASE.*"},
		{"*.CONNECTION_LOST", "events.*.CONNECTION_LOST"},
		{"TEST.NETWORK.TIMEOUT", "events.TEST.NETWORK.TIMEOUT"},
	}
	for _, tt := range tests {
		if got := Filter(tt.pattern); got != tt.want {
			t.Errorf("Filter(%q) = %q; want %q", tt.pattern, got, tt.want)
		}
	}
	if All != Filter(">") {
		t.Errorf("All = %q; want Filter(\">\") = %q", All, Filter(">"))
	}
}

// natsMatch reports whether the NATS server delivers an event with this
// tag to a consumer filtered by this pattern.
func natsMatch(pattern, tag string) bool {
	return server.SubjectMatchesFilter(Prefix+"."+tag, Filter(pattern))
}

// regexpMatch reports whether Regexp(pattern) matches tag.
func regexpMatch(t testing.TB, pattern, tag string) bool {
	t.Helper()
	expr, err := Regexp(pattern)
	if err != nil {
		t.Fatalf("Regexp(%q) error = %v", pattern, err)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		t.Fatalf("Regexp(%q) = %q, which does not compile: %v", pattern, expr, err)
	}
	return re.MatchString(tag)
}

func TestRegexp(t *testing.T) {
	tests := []struct {
		pattern, tag string
		want         bool
	}{
		{">", "A.B", true},
		{">", "A.B.C.D", true},
		{"*", "A.B", false},
		{"*.*", "A.B", true},
		{"*.*", "A.B.C", false},
		{"*.>", "A.B", true},
		{"*.>", "A.B.C", true},
		{"A.>", "A.B", true},
		{"A.>", "A.B.C", true},
		{"A.>", "AB.C", false},
		{"A.>", "B.A.C", false},
		{"A.*", "A.B", true},
		{"A.*", "A.B.C", false},
		{"A.*", "AX.B", false},
		{"A.*", "B.A", false},
		{"*.B", "A.B", true},
		{"*.B", "X.Y.B", false},
		{"*.B", "A.BC", false},
		{"*.*.B", "X.Y.B", true},
		{"A.B", "A.B", true},
		{"A.B", "a.b", false}, // subjects are case-sensitive
		{"A.B", "A.B.C", false},
		{"A.B", "AxB", false}, // the dot is literal
		{"A.B.>", "A.B", false},
		{"A.B.>", "A.B.C", true},
		{"A.*.C", "A.B.C", true},
		{"A.*.C", "A.B.D.C", false},
		{"TEST.NETWORK.*", "TEST.NETWORK.TIMEOUT", true},
		{"TEST.>", "TEST.NETWORK.TIMEOUT", true},
		{"*.TIMEOUT", "TEST.NETWORK.TIMEOUT", false},
		{"*.*.TIMEOUT", "TEST.NETWORK.TIMEOUT", true},
		{"a-b.*", "a-b.c_d", true},
		{"a-b.*", "a_b.c_d", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.tag, func(t *testing.T) {
			if got := regexpMatch(t, tt.pattern, tt.tag); got != tt.want {
				t.Errorf("Regexp(%q) matches %q = %v; want %v", tt.pattern, tt.tag, got, tt.want)
			}
			if got := natsMatch(tt.pattern, tt.tag); got != tt.want {
				t.Errorf("NATS: filter %q matches %q = %v; want %v (the table is wrong)", Filter(tt.pattern), tt.tag, got, tt.want)
			}
		})
	}
}

func TestRegexpInvalid(t *testing.T) {
	for _, pattern := range []string{"", "A.>.B", "A..B", "A*", "É.*"} {
		if got, err := Regexp(pattern); err == nil {
			t.Errorf("Regexp(%q) = %q, nil; want an error", pattern, got)
		}
	}
}

// TestRegexpAgreesWithNATS checks Regexp against the NATS server's own
// subject matching, exhaustively over small tags and patterns and then
// over random ones.
func TestRegexpAgreesWithNATS(t *testing.T) {
	// Every tag of 2–4 tokens over {A, B, C}; every pattern of 1–4 tokens
	// over {A, B, *}, and of 0–3 of them followed by '>'.
	alphabet := []string{"A", "B", "C"}
	var tags []string
	for n := 2; n <= 4; n++ {
		tags = append(tags, words(alphabet, n)...)
	}
	var patterns []string
	for n := 1; n <= 4; n++ {
		patterns = append(patterns, words([]string{"A", "B", "*"}, n)...)
	}
	patterns = append(patterns, ">")
	for n := 1; n <= 3; n++ {
		for _, p := range words([]string{"A", "B", "*"}, n) {
			patterns = append(patterns, p+".>")
		}
	}
	compare := func(pattern string, tags []string) {
		t.Helper()
		expr, err := Regexp(pattern)
		if err != nil {
			t.Fatalf("Regexp(%q) error = %v", pattern, err)
		}
		re := regexp.MustCompile(expr)
		for _, tag := range tags {
			if got, want := re.MatchString(tag), natsMatch(pattern, tag); got != want {
				t.Errorf("Regexp(%q) = %q matches %q = %v; NATS says %v", pattern, expr, tag, got, want)
			}
		}
	}
	matched := 0
	for _, p := range patterns {
		compare(p, tags)
		for _, tag := range tags {
			if natsMatch(p, tag) {
				matched++
			}
		}
	}
	// Guard against a generator that only produces non-matches.
	if matched < len(patterns) {
		t.Fatalf("only %d matching pairs of %d patterns × %d tags", matched, len(patterns), len(tags))
	}

	// Random tags, and patterns derived from them so that many match.
	r := rand.New(rand.NewPCG(1, 2))
	tokens := []string{"A", "B", "AB", "a", "b", "_", "-", "0", "9x", "A-B", "a_b", tok("L", 64)}
	randomTag := func() string {
		n := 2 + r.IntN(5)
		toks := make([]string, n)
		for i := range toks {
			toks[i] = tokens[r.IntN(len(tokens))]
		}
		return strings.Join(toks, ".")
	}
	for range 2000 {
		tag := randomTag()
		toks := strings.Split(tag, ".")
		for i := range toks {
			switch r.IntN(4) {
			case 0:
				toks[i] = "*"
			case 1:
				toks[i] = tokens[r.IntN(len(tokens))]
			}
		}
		if r.IntN(3) == 0 {
			toks = toks[:r.IntN(len(toks))]
			toks = append(toks, ">")
		}
		pattern := strings.Join(toks, ".")
		compare(pattern, []string{tag, randomTag(), randomTag()})
	}
}

// words returns every dot-joined sequence of n tokens from alphabet.
func words(alphabet []string, n int) []string {
	if n == 0 {
		return []string{""}
	}
	var out []string
	for _, prefix := range words(alphabet, n-1) {
		for _, a := range alphabet {
			if prefix == "" {
				out = append(out, a)
			} else {
				out = append(out, prefix+"."+a)
			}
		}
	}
	return out
}

// FuzzRegexp checks that Regexp accepts exactly the valid patterns and
// agrees with the NATS server on every valid tag. The seed corpus runs in
// plain go test.
func FuzzRegexp(f *testing.F) {
	seeds := []struct{ pattern, tag string }{
		{">", "A.B"},
		{"*", "A.B"},
		{"A.*", "A.B"},
		{"A.>", "A.B.C"},
		{"*.B", "A.B"},
		{"*.*.>", "A.B"},
		{"A.B", "A.B"},
		{"A.>.B", "A.X.B"},
		{"A..B", "A.B"},
		{"A*", "A.B"},
		{"a-b.*", "a-b.c_d"},
		{"A.B", "A\nB"},
		{"A.\\d", "A.1"},
		{"A.(B|C)", "A.C"},
		{"A.[B]", "A.B"},
		{"^A.B$", "A.B"},
		{"É.*", "É.x"},
		{"", ""},
	}
	for _, s := range seeds {
		f.Add(s.pattern, s.tag)
	}
	f.Fuzz(func(t *testing.T, pattern, tag string) {
		expr, err := Regexp(pattern)
		verr := ValidatePattern(pattern)
		if (err == nil) != (verr == nil) {
			t.Fatalf("Regexp(%q) error = %v; ValidatePattern error = %v", pattern, err, verr)
		}
		if err != nil {
			return
		}
		if !server.IsValidSubject(Filter(pattern)) {
			t.Fatalf("ValidatePattern(%q) = nil, but NATS rejects the filter %q", pattern, Filter(pattern))
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			t.Fatalf("Regexp(%q) = %q, which does not compile: %v", pattern, expr, err)
		}
		if _, _, err := SplitTag(tag); err != nil {
			return
		}
		if got, want := re.MatchString(tag), natsMatch(pattern, tag); got != want {
			t.Fatalf("Regexp(%q) = %q matches %q = %v; NATS says %v", pattern, expr, tag, got, want)
		}
	})
}

// FuzzSplitTag checks that every tag SplitTag accepts builds, parses back
// and is a literal NATS subject within the limits.
func FuzzSplitTag(f *testing.F) {
	for _, tag := range []string{
		"A.B", "TEST.NETWORK.TIMEOUT", "a-b.c_d", "A", ".A", "A.", "A..B", "A.*", "A.>",
		"A B.C", "É.B", longCategory + "." + tok("D", 53), longCategory + "." + tok("D", 54), "",
	} {
		f.Add(tag)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		category, code, err := SplitTag(tag)
		subj := Prefix + "." + tag
		if err != nil {
			if _, _, _, perr := Parse(subj); perr == nil {
				t.Fatalf("SplitTag(%q) error = %v, but Parse(%q) succeeds", tag, err, subj)
			}
			return
		}
		if Tag(category, code) != tag {
			t.Fatalf("SplitTag(%q) = %q, %q; Tag of them = %q", tag, category, code, Tag(category, code))
		}
		if strings.Contains(code, ".") {
			t.Fatalf("SplitTag(%q) code = %q; want one token", tag, code)
		}
		if got, err := Build(category, code); got != subj || err != nil {
			t.Fatalf("Build(%q, %q) = %q, %v; want %q, nil", category, code, got, err, subj)
		}
		if len(subj) > MaxSubjectLen {
			t.Fatalf("SplitTag(%q) accepted a subject of %d bytes", tag, len(subj))
		}
		if !server.IsValidLiteralSubject(subj) {
			t.Fatalf("SplitTag(%q) accepted %q, which NATS does not take as a literal subject", tag, subj)
		}
		if gotTag, gotCat, gotCode, err := Parse(subj); gotTag != tag || gotCat != category || gotCode != code || err != nil {
			t.Fatalf("Parse(%q) = %q, %q, %q, %v; want %q, %q, %q, nil", subj, gotTag, gotCat, gotCode, err, tag, category, code)
		}
		if err := ValidatePattern(tag); err != nil {
			t.Fatalf("ValidatePattern(%q) = %v; a tag is a literal pattern", tag, err)
		}
		if !regexpMatch(t, tag, tag) {
			t.Fatalf("Regexp(%q) does not match %q", tag, tag)
		}
	})
}
