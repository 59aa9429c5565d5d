package subject

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// hashSuffix is the length of "-" and 8 hex digits, which end a token
// shortened to MaxTokenLen.
const hashSuffix = 9

// Token maps any string onto one token, for the names of older systems
// that are not tokens (categories with spaces, event names): a valid
// token is returned as it is; otherwise every byte outside
// [A-Za-z0-9_-] becomes '_' and its two uppercase hex digits
// ("page interaction" → "page_20interaction", "é" → "_C3_A9"), and a
// result longer than MaxTokenLen is cut and ends with "-" and 8 hex
// digits of a hash of s, so that different long names stay different.
// The mapping is not one to one ("a_20b" is its own token): callers keep
// the original next to the event.
func Token(s string) string {
	if validToken(s) == nil {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	keep := 0 // the length cut to when the token is too long: whole escapes only
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xF])
		}
		if b.Len() <= MaxTokenLen-hashSuffix {
			keep = b.Len()
		}
	}
	if b.Len() <= MaxTokenLen {
		return b.String()
	}
	h := sha256.Sum256([]byte(s))
	return b.String()[:keep] + "-" + hex.EncodeToString(h[:4])
}

// MapCategory maps any string onto a category: a valid category is
// returned as it is; otherwise each dot-separated part is mapped by Token
// ("page interaction" → "page_20interaction", "web.page view" →
// "web.page_20view"), and a string with an empty part (a leading,
// trailing or double dot) is mapped as one token, its dots included
// ("a..b" → "a_2E_2Eb").
func MapCategory(s string) string {
	if ValidateCategory(s) == nil {
		return s
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" {
			return Token(s)
		}
		toks[i] = Token(t)
	}
	return strings.Join(toks, ".")
}
