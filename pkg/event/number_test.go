package event

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestParseBodyNumbers covers the number rule: every number in data must
// be a finite IEEE 754 double written in at most MaxNumberLen characters.
func TestParseBodyNumbers(t *testing.T) {
	digits := func(n int) string { return "1" + strings.Repeat("0", n-1) }
	fe := func(ptr string) FieldError { return FieldError{Pointer: ptr, Detail: numberDetail} }
	tests := []struct {
		name   string
		format Format
		body   string
		want   []FieldError // none: accepted
	}{
		{"exponent overflow", JSON, obj(`,"data":{"amount":1e999999}`), []FieldError{fe("/data/amount")}},
		{"negative overflow", JSON, obj(`,"data":{"amount":-1e400}`), []FieldError{fe("/data/amount")}},
		{"just beyond the largest double", JSON, obj(`,"data":{"x":1.7976931348623159e308}`), []FieldError{fe("/data/x")}},
		{"capital E and plus", JSON, obj(`,"data":{"x":2E+308}`), []FieldError{fe("/data/x")}},
		{"100,000-digit integer", JSON, obj(`,"data":{"n":` + digits(100_000) + `}`), []FieldError{fe("/data/n")}},
		{"65 characters", JSON, obj(`,"data":{"n":` + digits(MaxNumberLen+1) + `}`), []FieldError{fe("/data/n")}},
		{"65 characters with a sign", JSON, obj(`,"data":{"n":-` + digits(MaxNumberLen) + `}`), []FieldError{fe("/data/n")}},
		{"long fraction", JSON, obj(`,"data":{"n":0.` + strings.Repeat("3", MaxNumberLen) + `}`), []FieldError{fe("/data/n")}},
		{"long zero", JSON, obj(`,"data":{"n":0.` + strings.Repeat("0", MaxNumberLen) + `}`), []FieldError{fe("/data/n")}},
		{"in an array", JSON, obj(`,"data":{"a":[1,2,1e999]}`), []FieldError{fe("/data/a/2")}},
		{"deeply nested", JSON, obj(`,"data":{"a":{"b":[{"c":[[1e999]]}]}}`), []FieldError{fe("/data/a/b/0/c/0/0")}},
		{"escaped key", JSON, obj(`,"data":{"x/y~z":1e999}`), []FieldError{fe("/data/x~1y~0z")}},
		{"key with escapes", JSON, obj(`,"data":{"q\"\\":1e999}`), []FieldError{fe(`/data/q"\`)}},
		{"every bad number", JSON, obj(`,"data":{"a":1e999,"b":[2,-1e999,{"c":1e400}],"d":3}`), []FieldError{fe("/data/a"), fe("/data/b/1"), fe("/data/b/2/c")}},
		{"with other rules", JSON, `{"category":"A","code":"B","data":{"a":1e999},"id":""}`, []FieldError{
			fe("/data/a"), {"/id", "1 to 128"},
		}},
		{"fourth event of an array", JSON, array([]string{obj(""), obj(""), obj(""), obj(`,"data":{"a":[1e999]}`)}), []FieldError{fe("/3/data/a/0")}},
		{"second NDJSON line", NDJSON, ndjson([]string{obj(`,"data":{"a":1}`), obj(`,"data":{"a":{"b":-1e999}}`)}), []FieldError{fe("/1/data/a/b")}},
		{"after a string ending in a backslash", JSON, obj(`,"data":{"s":"a\\","n":1e999}`), []FieldError{fe("/data/n")}},

		{"largest double", JSON, obj(`,"data":{"x":1.7976931348623157e308,"y":-1.7976931348623157e308}`), nil},
		{"underflow to zero", JSON, obj(`,"data":{"x":1e-400,"y":-4e-324}`), nil},
		{"zero with a huge exponent", JSON, obj(`,"data":{"x":0e999999}`), nil},
		{"64 characters", JSON, obj(`,"data":{"n":` + digits(MaxNumberLen) + `,"m":-` + digits(MaxNumberLen-1) + `}`), nil},
		{"integers beyond 2^53", JSON, obj(`,"data":{"n":9007199254740993,"m":-18446744073709551615}`), nil},
		{"ordinary numbers", JSON, obj(`,"data":{"a":0,"b":-0,"c":1.5,"d":-2.5e-3,"e":6E23,"f":[1,2,{"g":3}]}`), nil},
		{"number-like strings and keys", JSON, obj(`,"data":{"s":"1e999","1e999":"` + digits(100) + `","t":"a\"1e999\\\"1e999"}`), nil},
		{"literals", JSON, obj(`,"data":{"t":true,"f":false,"n":null,"e":{},"a":[]}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := newTestParser(Limits{}).ParseBody([]byte(tt.body), tt.format)
			call := fmt.Sprintf("ParseBody(%.200s)", tt.body)
			if tt.want == nil {
				if err != nil || len(got) == 0 {
					t.Fatalf("%s = %d events, %v; want them accepted", call, len(got), err)
				}
				return
			}
			if got != nil {
				t.Errorf("%s = %d events; want none", call, len(got))
			}
			wantFieldErrors(t, call, err, tt.want)
		})
	}
}

// TestNumberDetail checks that the detail states the limit it enforces.
func TestNumberDetail(t *testing.T) {
	if want := fmt.Sprintf("at most %d characters", MaxNumberLen); !strings.Contains(numberDetail, want) {
		t.Errorf("numberDetail = %q; want it to say %q", numberDetail, want)
	}
}

// FuzzBadNumbers checks the byte scan of badNumbers against a token walk
// on arbitrary valid JSON, and that addNumberErrors accounts for every
// number the scan counts.
func FuzzBadNumbers(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":1e999}`, `[1,-1e400,"1e999",{"1e999":1e-999}]`,
		`{"s":"a\\","n":1e999}`, `{"s":"a\"1e999\\\"1e999","n":-0}`, `"\u0022 1e999"`,
		`{"n":` + strings.Repeat("1", 70) + `}`, `[true,false,null,0.5E+308,2E+308]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if !jsontext.Value(v).IsValid() {
			return
		}
		want := 0
		for num := range numbers(t, v) {
			x, err := strconv.ParseFloat(num, 64)
			if err != nil || math.IsInf(x, 0) || len(num) > MaxNumberLen {
				want++
			}
		}
		if got := badNumbers(v); got != want {
			t.Fatalf("badNumbers(%q) = %d; want %d", v, got, want)
		}
		var c fieldErrors
		addNumberErrors(&c, "/data", v, want)
		if len(c.list)+c.more != want || want > MaxErrors && len(c.list) != MaxErrors {
			t.Fatalf("addNumberErrors(%q, %d) lists %d and counts %d more; want %d in all", v, want, len(c.list), c.more, want)
		}
	})
}

// BenchmarkBadNumbers measures what the number rule adds to each event
// with data.
func BenchmarkBadNumbers(b *testing.B) {
	for _, bb := range []struct{ name, data string }{
		{"small", `{"host":"db-1","port":5432,"attempts":[1,2,3],"tls":true}`},
		{"1KiB", `{"order":{"id":"ord-20240506-000123","total":1234.56,"currency":"EUR","lines":[` +
			strings.Repeat(`{"sku":"SKU-000123","qty":2,"price":19.99,"discount":0.1,"tags":["a","b"]},`, 11) +
			`{"sku":"SKU-000124","qty":1,"price":5e2}]},"note":"said \"hi\" \\ bye","ts":1714979289123}`},
	} {
		b.Run(bb.name, func(b *testing.B) {
			v := []byte(bb.data)
			if !jsontext.Value(v).IsValid() {
				b.Fatalf("invalid benchmark data %s", v)
			}
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if badNumbers(v) != 0 {
					b.Fatal("bad numbers in benchmark data")
				}
			}
		})
	}
}
