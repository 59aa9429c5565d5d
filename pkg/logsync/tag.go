package logsync

import (
	"strings"

	"github.com/eventsync/eventsync/pkg/subject"
)

// DefaultCode is the code of an event sent with a one-token category and
// no code (TEST → TEST.EVENT): a tag needs a category and a code.
const DefaultCode = "EVENT"

// Tag returns the tag of an event the emitter sent with category and code
// (both already trimmed; code may be empty):
//
//	category               code      tag
//	TEST.NETWORK           TIMEOUT   TEST.NETWORK.TIMEOUT
//	TEST.NETWORK.TIMEOUT             TEST.NETWORK.TIMEOUT (the last token is the code)
//	TEST                             TEST.EVENT (DefaultCode)
//	page interaction       click     page_20interaction.click
//	page interaction                 page_20interaction.EVENT
//	a..b                             a_2E_2Eb.EVENT
//
// A category or code that is not a valid token sequence is mapped token
// by token: every byte outside [A-Za-z0-9_-] becomes _XX (its value in
// uppercase hex). A category with an empty token (a leading, trailing or
// double dot) is mapped as one token, its dots included. A token longer
// than subject.MaxTokenLen bytes is cut and ends with "-" and 8 hex digits
// of its hash, so that different long tokens stay different. Tag does not
// check the subject's total length (subject.MaxSubjectLen): ingest refuses
// a longer one.
func Tag(category, code string) string {
	cat := subject.MapCategory(category)
	switch {
	case code != "":
		return cat + "." + subject.Token(code)
	case strings.Contains(cat, "."):
		return cat
	}
	return cat + "." + DefaultCode
}

// display is the category the log-sync service showed for category and
// code: the category, and the code after a dot when there was one.
func display(category, code string) string {
	if code == "" {
		return category
	}
	return category + "." + code
}
