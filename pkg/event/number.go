package event

import (
	"bytes"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxNumberLen is the most characters a number in data may be written in.
//
// Every number in data must parse as a finite IEEE 754 double and be
// written in at most MaxNumberLen characters. Events are served as JSON to
// clients that decode numbers as doubles (JavaScript's JSON.parse, Go's
// float64): 1e400 would reach them as Infinity or fail to decode, and a
// number of thousands of digits costs every reader time for nothing. 64
// characters hold any double in its shortest form (at most 24), every
// 64-bit integer and decimals far beyond a double's precision. Integers
// beyond ±2^53 and long fractions are accepted and stored as written;
// clients that read them as doubles round them. Numbers too small for a
// double (1e-400) are accepted too: they read as zero.
const MaxNumberLen = 64

// numberDetail states the number rule; it must name MaxNumberLen.
const numberDetail = "numbers must be finite IEEE 754 doubles written in at most 64 characters"

// badNumbers returns how many numbers in v, a valid JSON value, break the
// number rule. It runs on every event with data, so it scans bytes rather
// than tokens: outside strings, a number is the only thing that starts with
// '-' or a digit.
func badNumbers(v []byte) int {
	n := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c == '"' {
			i = stringEnd(v, i+1)
			continue
		}
		if c != '-' && (c < '0' || c > '9') {
			i++
			continue
		}
		j, exp := i+1, false
	number:
		for ; j < len(v); j++ {
			switch c := v[j]; {
			case '0' <= c && c <= '9', c == '.', c == '-', c == '+':
			case c == 'e', c == 'E':
				exp = true
			default:
				break number
			}
		}
		// Without an exponent, MaxNumberLen characters stay below 1e64:
		// only an exponent can overflow.
		if j-i > MaxNumberLen || exp && !finite(v[i:j]) {
			n++
		}
		i = j
	}
	return n
}

// stringEnd returns the index just past the closing quote of the JSON
// string whose contents start at v[i], or len(v) if there is none.
func stringEnd(v []byte, i int) int {
	for {
		q := bytes.IndexByte(v[i:], '"')
		if q < 0 {
			return len(v)
		}
		q += i
		// The quote is escaped if an odd number of backslashes precede it.
		k := q
		for k > i && v[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// finite reports whether num, a JSON number, is a finite double.
func finite(num []byte) bool {
	_, err := strconv.ParseFloat(string(num), 64) // fails only with ErrRange here: ±Inf
	return err == nil
}

// validNumber reports whether num, a JSON number, keeps the number rule.
func validNumber(num []byte) bool {
	return len(num) <= MaxNumberLen && finite(num)
}

// addNumberErrors adds to c an error for each of the n numbers in data,
// a valid JSON value, that break the number rule, its pointer prefixed with
// at; once c is full, it only counts them. It is the slow path of
// badNumbers, for the rare values that break the rule.
func addNumberErrors(c *fieldErrors, at string, data []byte, n int) {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for n > 0 && !c.full() {
		if dec.PeekKind() != '0' {
			if _, err := dec.ReadToken(); err != nil {
				break // cannot happen: data is valid and holds n more
			}
			continue
		}
		num, err := dec.ReadValue()
		if err != nil {
			break
		}
		if !validNumber(num) {
			c.add(at+string(dec.StackPointer()), numberDetail)
			n--
		}
	}
	c.more += n
}
