package producer

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Producer ids are generated (IDPrefix and 32 hex digits) or imported: an
// administrator moving a client of another system (The Eye's client
// credentials) keeps its id, so that the tokens it signs (sub = its id)
// keep working.
//
// An imported id is 1 to MaxImportedIDLen characters of [A-Za-z0-9._-],
// does not start with IDPrefix (those are generated) and is none of the
// reserved ids. Its dots are what needs care: a key of the producers
// bucket, a NATS subject token and an inbox prefix may not hold them as
// they are, so the bucket keeps an imported producer under
// importedKeyPrefix + the id with every '.' written as '=' (a character no
// id holds, so the mapping is one to one and cannot meet a generated id or
// a name reservation), and its inbox prefix is written the same way (see
// InboxPrefix).
const (
	// MaxImportedIDLen is the longest imported id.
	MaxImportedIDLen = 128
	// importedKeyPrefix starts the bucket keys of imported producers.
	importedKeyPrefix = "imp."
	// MinImportedSecretLen is the fewest bytes of an imported JWT secret
	// (after base64url decoding). RFC 7518 asks for 32 with HS256; a
	// client moved from another system keeps the key it has, but one
	// shorter than 16 bytes is refused: it could be guessed offline from a
	// single token.
	MinImportedSecretLen = 16
	// MaxImportedSecretLen is the most bytes of an imported JWT secret.
	MaxImportedSecretLen = 1024
)

// reservedIDs are ids no producer may be imported with: "admin" is the id
// access gives the admin token's principal (owners and audit records would
// mix them up), and "." and ".." are path segments, not ids.
var reservedIDs = []string{"admin", ".", ".."}

// ErrIDTaken is returned when an imported id is another producer's.
var ErrIDTaken = errors.New("id is taken")

// isGenerated reports whether id has the form of a generated producer id.
func isGenerated(id string) bool {
	hexPart, ok := strings.CutPrefix(id, IDPrefix)
	if !ok || len(hexPart) != 32 {
		return false
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validImportedID returns why id cannot be imported, or "".
func validImportedID(id string) string {
	if id == "" || len(id) > MaxImportedIDLen {
		return fmt.Sprintf("must be 1 to %d characters", MaxImportedIDLen)
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return "may hold only ASCII letters, digits, '.', '_' and '-'"
		}
	}
	if strings.HasPrefix(id, IDPrefix) {
		return fmt.Sprintf("must not start with %q: such ids are generated", IDPrefix)
	}
	for _, r := range reservedIDs {
		if strings.EqualFold(id, r) {
			return fmt.Sprintf("%q is reserved", id)
		}
	}
	return ""
}

// validID reports whether id has the form of a producer id, generated or
// imported (and so has a key in the bucket).
func validID(id string) bool {
	return isGenerated(id) || validImportedID(id) == ""
}

// recordKey is the bucket key of producer id's record.
func recordKey(id string) string {
	if strings.HasPrefix(id, IDPrefix) {
		return id
	}
	return importedKeyPrefix + strings.ReplaceAll(id, ".", "=")
}

// idOfKey returns the producer id whose record a bucket key holds; false
// for the other keys of the bucket (name reservations).
func idOfKey(key string) (string, bool) {
	if strings.HasPrefix(key, IDPrefix) {
		return key, true
	}
	if rest, ok := strings.CutPrefix(key, importedKeyPrefix); ok && rest != "" {
		return strings.ReplaceAll(rest, "=", "."), true
	}
	return "", false
}

// importedSecret checks a JWT secret given by an administrator: base64url
// (padded or not) of MinImportedSecretLen to MaxImportedSecretLen bytes,
// the HMAC key itself. It returns the secret as the registry stores it
// (unpadded base64url), or why it is refused.
func importedSecret(s string) (string, string) {
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	switch {
	case err != nil:
		return "", "must be base64url (the HMAC key's bytes, encoded; the CLI's --jwt-secret-raw encodes a plain secret)"
	case len(key) < MinImportedSecretLen || len(key) > MaxImportedSecretLen:
		return "", fmt.Sprintf("must encode %d to %d bytes, got %d", MinImportedSecretLen, MaxImportedSecretLen, len(key))
	}
	return base64.RawURLEncoding.EncodeToString(key), ""
}
