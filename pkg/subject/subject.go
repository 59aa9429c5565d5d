// Package subject is the only place that builds and parses the NATS subjects
// EventSync publishes on (events.<CATEGORY>.<CODE>) and the tag patterns that
// select them (DATABASE.*, *.CONNECTION_LOST, TEST.>).
//
// A tag is CATEGORY.CODE where the category is one or more tokens and the code
// exactly one. A token is 1–64 bytes of ASCII letters, digits, '_' and '-'.
package subject

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Prefix is the first token of every event subject.
const Prefix = "events"

// Limits of tags and subjects.
const (
	MaxTokenLen   = 64
	MaxSubjectLen = 255
)

// Sentinel errors describe why a token, tag or pattern is invalid.
var (
	ErrEmpty        = errors.New("must not be empty")
	ErrTokenTooLong = fmt.Errorf("tokens must be at most %d bytes", MaxTokenLen)
	ErrTooLong      = fmt.Errorf("the subject must be at most %d bytes", MaxSubjectLen)
	ErrEmptyToken   = errors.New("must not have empty tokens (leading, trailing or double dots)")
	ErrBadChar      = errors.New("tokens may hold only ASCII letters, digits, '_' and '-'")
	ErrNoCode       = errors.New("must be CATEGORY.CODE (at least two tokens)")
	ErrCodeDots     = errors.New("must be exactly one token (no dots)")
	ErrWildcard     = errors.New("'>' may only be the last token")
	ErrNotEvent     = errors.New("is not an event subject")
)

// validToken reports why tok is not a literal token, or nil.
func validToken(tok string) error {
	if tok == "" {
		return ErrEmptyToken
	}
	if len(tok) > MaxTokenLen {
		return ErrTokenTooLong
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return ErrBadChar
		}
	}
	return nil
}

// ValidateCategory checks a category: one or more dot-separated tokens.
func ValidateCategory(category string) error {
	if category == "" {
		return ErrEmpty
	}
	for tok := range strings.SplitSeq(category, ".") {
		if err := validToken(tok); err != nil {
			return err
		}
	}
	return nil
}

// ValidateCode checks a code: exactly one token.
func ValidateCode(code string) error {
	if code == "" {
		return ErrEmpty
	}
	if strings.Contains(code, ".") {
		return ErrCodeDots
	}
	return validToken(code)
}

// SplitTag splits CATEGORY.CODE at its last dot and validates both halves.
func SplitTag(tag string) (category, code string, err error) {
	if tag == "" {
		return "", "", ErrEmpty
	}
	i := strings.LastIndexByte(tag, '.')
	if i < 0 {
		return "", "", ErrNoCode
	}
	category, code = tag[:i], tag[i+1:]
	if category == "" || code == "" { // ".CODE" or "CATEGORY."
		return "", "", ErrEmptyToken
	}
	if err := ValidateCategory(category); err != nil {
		return "", "", err
	}
	if err := ValidateCode(code); err != nil {
		return "", "", err
	}
	if len(Prefix)+1+len(tag) > MaxSubjectLen {
		return "", "", ErrTooLong
	}
	return category, code, nil
}

// Tag joins a category and a code. It does not validate them.
func Tag(category, code string) string {
	return category + "." + code
}

// Build returns the subject for a validated category and code, or an error
// naming the rule they break.
func Build(category, code string) (string, error) {
	if err := ValidateCategory(category); err != nil {
		return "", fmt.Errorf("category %w", err)
	}
	if err := ValidateCode(code); err != nil {
		return "", fmt.Errorf("code %w", err)
	}
	s := Prefix + "." + category + "." + code
	if len(s) > MaxSubjectLen {
		return "", ErrTooLong
	}
	return s, nil
}

// Parse returns the tag, category and code of an event subject.
func Parse(subj string) (tag, category, code string, err error) {
	tag, ok := strings.CutPrefix(subj, Prefix+".")
	if !ok {
		return "", "", "", fmt.Errorf("%q %w", subj, ErrNotEvent)
	}
	category, code, err = SplitTag(tag)
	if err != nil {
		return "", "", "", fmt.Errorf("%q: %w", subj, err)
	}
	return tag, category, code, nil
}

// ValidatePattern checks a tag pattern with NATS wildcard semantics: '*'
// matches one token, '>' (last token only) one or more.
func ValidatePattern(pattern string) error {
	if pattern == "" {
		return ErrEmpty
	}
	toks := strings.Split(pattern, ".")
	for i, tok := range toks {
		switch tok {
		case "*":
		case ">":
			if i != len(toks)-1 {
				return ErrWildcard
			}
		default:
			if err := validToken(tok); err != nil {
				return err
			}
		}
	}
	if len(Prefix)+1+len(pattern) > MaxSubjectLen {
		return ErrTooLong
	}
	return nil
}

// Filter returns the NATS filter subject for a validated tag pattern.
func Filter(pattern string) string {
	return Prefix + "." + pattern
}

// All is the filter subject that matches every event.
const All = Prefix + ".>"

// Regexp returns an anchored RE2 expression that matches the tags selected
// by a pattern. Stores use it where the NATS server cannot do the matching
// for them (SQL over stored events); RE2 syntax works in Go and ClickHouse.
func Regexp(pattern string) (string, error) {
	if err := ValidatePattern(pattern); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("^")
	for i, tok := range strings.Split(pattern, ".") {
		if i > 0 && tok != ">" {
			b.WriteString(`\.`)
		}
		switch tok {
		case "*":
			b.WriteString(`[^.]+`)
		case ">":
			if i > 0 {
				b.WriteString(`(\.[^.]+)+`)
			} else {
				b.WriteString(`[^.]+(\.[^.]+)*`)
			}
		default:
			b.WriteString(regexp.QuoteMeta(tok))
		}
	}
	b.WriteString("$")
	return b.String(), nil
}

// Covers reports whether every tag matched by pattern b is also matched by
// pattern a. Both must be valid patterns.
func Covers(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i, tok := range at {
		if tok == ">" {
			return i < len(bt) // '>' needs at least one token of b
		}
		if i >= len(bt) || bt[i] == ">" {
			return false
		}
		if tok != "*" && (bt[i] == "*" || bt[i] != tok) {
			return false
		}
	}
	return len(at) == len(bt)
}

// Overlap reports whether some tag is matched by both patterns. NATS refuses
// a consumer whose filter subjects overlap.
func Overlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(at) && i < len(bt); i++ {
		if at[i] == ">" || bt[i] == ">" {
			return true
		}
		if at[i] != "*" && bt[i] != "*" && at[i] != bt[i] {
			return false
		}
	}
	return len(at) == len(bt)
}
