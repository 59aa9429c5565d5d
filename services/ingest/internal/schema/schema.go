// Package schema keeps the JSON Schemas that an event's data must match:
// one per category and one per category and code, stored versioned in the
// JetStream key-value bucket "schemas" and applied from an in-memory cache
// of compiled schemas that a KV watch keeps current.
//
// An event is checked against its category's schema and its
// category+code schema when they exist; it must pass both. An event with
// neither passes. Absent or null data is checked as the JSON value null, so
// a schema requiring an object rejects it.
//
// Schemas default to draft 2020-12 (a "$schema" member may name another
// draft the library knows: 2019-09, 7, 6, 4). They are compiled without any
// network or file access: a schema may reference itself ("#/$defs/…",
// embedded "$id"s) and the standard meta-schemas, and is refused when it
// references anything else. "format" is asserted (a "date-time" that is not
// one fails), and "pattern" uses Go's linear-time regular expressions.
//
// # Keys
//
// Categories have one or more dot-separated tokens, so the bucket's keys
// start with a token that says what follows and cannot be confused:
//
//	category.<CATEGORY>        the schema of every event of CATEGORY
//	tag.<CATEGORY>.<CODE>      the schema of the events tagged CATEGORY.CODE
//
// Each value is an Entry in JSON. Its Version counts the writes of the key
// from 1 and keeps counting after a delete (history permitting).
package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/eventsync/eventsync/pkg/subject"
)

// MaxErrors is how many schema errors Validate reports for one event; an
// extra entry says how many more were left out.
const MaxErrors = 20

// Entry is one stored schema.
type Entry struct {
	Category  string          `json:"category"`
	Code      string          `json:"code,omitempty"` // empty for a category's schema
	Version   int64           `json:"version"`        // 1 for the first write of the key, then increasing
	UpdatedAt time.Time       `json:"updated_at"`
	Schema    json.RawMessage `json:"schema,omitempty"` // omitted by List
}

// ErrNotFound is returned for a category or category+code without a
// schema.
var ErrNotFound = errors.New("no schema")

// FieldError is one rule a JSON document breaks: event data that fails a
// schema, or a schema document that fails the meta-schema.
type FieldError struct {
	Pointer string // JSON pointer into the document (into the event at /data/… for event data)
	Detail  string
}

// InvalidError is a schema document that cannot be used: not JSON, not a
// valid JSON Schema, or referencing a document other than itself.
type InvalidError struct {
	Reason string
	// Errors point into the schema document where the meta-schema
	// validation failed; empty for other reasons.
	Errors []FieldError
}

// Error returns the reason and the first field error.
func (e *InvalidError) Error() string {
	if len(e.Errors) == 0 {
		return "invalid schema: " + e.Reason
	}
	return fmt.Sprintf("invalid schema: %s: %s: %s", e.Reason, e.Errors[0].Pointer, e.Errors[0].Detail)
}

// compiled is a schema ready to validate with.
type compiled struct {
	name string // ORDERS or ORDERS.CREATED, for error details
	sch  *jsonschema.Schema
}

// refusingLoader is the compiler's only URL loader: it loads nothing, so a
// schema cannot make EventSync fetch a URL or read a file. The standard
// meta-schemas are built into the library and never reach it.
type refusingLoader struct{}

// Load refuses every URL.
func (refusingLoader) Load(string) (any, error) {
	return nil, errors.New("schemas may reference only themselves")
}

// baseURL is the location a schema is compiled at. It has a path, so that
// relative references resolve (and are refused) instead of pointing back at
// the schema itself, and a scheme nothing could ever load.
func baseURL(name string) string { return "eventsync:///schemas/" + name }

// compile parses and compiles a schema document.
func compile(name string, doc []byte) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, &InvalidError{Reason: "the schema is not JSON: " + err.Error()}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refusingLoader{})
	base := baseURL(name)
	if err := c.AddResource(base, v); err != nil {
		return nil, fmt.Errorf("add schema %s: %w", name, err)
	}
	sch, err := c.Compile(base)
	if err != nil {
		return nil, compileError(base, err)
	}
	return sch, nil
}

// compileError explains why a schema did not compile.
func compileError(base string, err error) error {
	var (
		sv   *jsonschema.SchemaValidationError
		load *jsonschema.LoadURLError
	)
	switch {
	case errors.As(err, &sv):
		inv := &InvalidError{Reason: "not a valid JSON Schema"}
		var ve *jsonschema.ValidationError
		if errors.As(sv.Err, &ve) {
			// The meta-schema validated the part of the document at
			// sv.URL's fragment (the root, unless a nested resource).
			_, at, _ := strings.Cut(sv.URL, "#")
			p := newPrinter()
			for i, l := range collect(ve) {
				if i == MaxErrors {
					break
				}
				inv.Errors = append(inv.Errors, FieldError{Pointer: at + l.instance, Detail: l.err.ErrorKind.LocalizedString(p)})
			}
		}
		return inv
	case errors.As(err, &load):
		return &InvalidError{Reason: fmt.Sprintf("it references %q: schemas may reference only themselves and the standard meta-schemas", load.URL)}
	default:
		return &InvalidError{Reason: strings.ReplaceAll(err.Error(), base, "")}
	}
}

// validate checks a decoded instance and adds its errors to errs, until
// errs holds MaxErrors; it returns how many errors it found in all.
func (c *compiled) validate(v any, p *message.Printer, errs *[]FieldError) int {
	err := c.sch.Validate(v)
	if err == nil {
		return 0
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		*errs = append(*errs, FieldError{Pointer: "/data", Detail: fmt.Sprintf("%v (schema %s)", err, c.name)})
		return 1
	}
	leaves := collect(ve)
	for _, l := range leaves {
		if len(*errs) == MaxErrors {
			break
		}
		*errs = append(*errs, FieldError{
			Pointer: "/data" + l.instance,
			Detail:  fmt.Sprintf("%s (schema %s, keyword %s)", l.err.ErrorKind.LocalizedString(p), c.name, l.keyword),
		})
	}
	return len(leaves)
}

// leaf is an error without causes: the actual failed keyword.
type leaf struct {
	instance string // JSON pointer into the instance
	keyword  string // JSON pointer into the schema, as evaluated (through $ref)
	err      *jsonschema.ValidationError
}

// collect returns the errors without causes in e's tree in document order
// of their instance locations (array indexes compared as numbers), then by
// keyword location: the library's order follows Go map iteration. The
// parent errors only say that a subschema failed.
func collect(e *jsonschema.ValidationError) []leaf {
	var leaves []leaf
	walk(e, "", "", &leaves)
	slices.SortFunc(leaves, func(a, b leaf) int {
		if c := slices.CompareFunc(a.err.InstanceLocation, b.err.InstanceLocation, compareToken); c != 0 {
			return c
		}
		return strings.Compare(a.keyword, b.keyword)
	})
	return leaves
}

// compareToken orders pointer tokens, array indexes by their value.
func compareToken(a, b string) int {
	if isIndex(a) && isIndex(b) && len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// isIndex reports whether a pointer token is an array index.
func isIndex(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return false
		}
	}
	return true
}

// walk adds e's leaves to leaves, computing keyword locations as the
// library's own output formats do.
func walk(e *jsonschema.ValidationError, schemaURL, kwLoc string, leaves *[]leaf) {
	ref, isRef := e.ErrorKind.(*kind.Reference)
	if schemaURL != "" {
		if rest, ok := strings.CutPrefix(e.SchemaURL, schemaURL); ok {
			kwLoc += rest
		}
		if isRef {
			kwLoc += pointer(ref.KeywordPath())
		}
	}
	if isRef {
		schemaURL = ref.URL
	} else {
		schemaURL = e.SchemaURL
	}
	if len(e.Causes) == 0 {
		keyword := kwLoc
		if !isRef {
			keyword += pointer(e.ErrorKind.KeywordPath())
		}
		if keyword == "" {
			keyword = "/"
		}
		*leaves = append(*leaves, leaf{instance: pointer(e.InstanceLocation), keyword: keyword, err: e})
		return
	}
	for _, c := range e.Causes {
		walk(c, schemaURL, kwLoc, leaves)
	}
}

// newPrinter returns the printer of the library's messages. A Printer is
// safe for concurrent use.
func newPrinter() *message.Printer { return message.NewPrinter(language.English) }

// pointer joins tokens into a JSON pointer, escaping '~' and '/' (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		if strings.ContainsAny(t, "~/") {
			t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		}
		b.WriteString(t)
	}
	return b.String()
}

// moreErrors is the entry that says how many errors were left out.
func moreErrors(n int) FieldError {
	return FieldError{Pointer: "/data", Detail: strconv.Itoa(n) + " more schema error(s) not shown"}
}

// name is the category, or CATEGORY.CODE.
func name(category, code string) string {
	if code == "" {
		return category
	}
	return subject.Tag(category, code)
}
