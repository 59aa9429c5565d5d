package problem

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxJSONBody is the default size limit of DecodeJSON.
const MaxJSONBody = 64 << 10

// FieldDetailer is implemented by errors of custom JSON decoders (an
// UnmarshalJSON method) that know how to say what is wrong with the value.
type FieldDetailer interface {
	FieldDetail() string
}

// DecodeJSON strictly decodes a JSON request body of at most limit bytes
// into v, a pointer to a struct or map, and returns every failure as a
// problem: 415 for another content type, 413 for a larger body, 400 for
// an empty, malformed or non-object one, 422 naming the member for unknown
// members and wrong types. Duplicate names and trailing data are errors
// too. Details say in JSON terms what is wrong ("/tags must be an array,
// not a string") and never name Go types or packages.
func DecodeJSON(r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return New(http.StatusUnsupportedMediaType, "unsupported-media-type", "send application/json")
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return New(http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body must be at most %d bytes", limit))
		}
		return BadRequest("could not read the body")
	}
	switch string(bytes.TrimSpace(b)) {
	case "":
		return BadRequest("the body is empty; send a JSON object")
	case "null":
		return BadRequest("the body must be a JSON object, not null")
	}
	if err := jsonv2.Unmarshal(b, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return decodeError(err)
	}
	return nil
}

// decodeError turns an error of jsonv2.Unmarshal into a problem.
func decodeError(err error) error {
	var (
		syn *jsontext.SyntacticError
		sem *jsonv2.SemanticError
	)
	switch {
	case errors.As(err, &syn):
		switch {
		case errors.Is(err, jsontext.ErrDuplicateName):
			return BadRequest(fmt.Sprintf("the body is not valid JSON: %s appears twice", syn.JSONPointer))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return BadRequest("the body is not valid JSON: it ends early")
		case syn.JSONPointer != "":
			return BadRequest(fmt.Sprintf("the body is not valid JSON: %v in %s (offset %d)", syn.Err, syn.JSONPointer, syn.ByteOffset))
		default:
			return BadRequest(fmt.Sprintf("the body is not valid JSON: %v (offset %d)", syn.Err, syn.ByteOffset))
		}
	case errors.As(err, &sem):
		ptr := string(sem.JSONPointer)
		var fd FieldDetailer
		switch {
		case errors.Is(err, jsonv2.ErrUnknownName):
			return Invalid(ptr+" is not a known member", FieldError{Pointer: ptr, Detail: "is not a known member"})
		case ptr == "":
			if got := kindName(sem.JSONKind); got != "" {
				return BadRequest("the body must be a JSON object, not " + got)
			}
			return BadRequest("the body must be a JSON object")
		case errors.As(err, &fd):
			return Invalid(ptr+" "+fd.FieldDetail(), FieldError{Pointer: ptr, Detail: fd.FieldDetail()})
		default:
			detail := expected(sem)
			return Invalid(ptr+" "+detail, FieldError{Pointer: ptr, Detail: detail})
		}
	}
	return BadRequest("the body is not valid JSON")
}

// expected says what a value that could not be decoded should have been,
// and what it was when that was another kind of JSON value: "must be an
// array, not a string", "must be a non-negative integer".
func expected(sem *jsonv2.SemanticError) string {
	t := sem.GoType
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "has the wrong type"
	}
	var (
		want string
		kind jsontext.Kind // the JSON kind that would have been right
	)
	switch t.Kind() {
	case reflect.String:
		want, kind = "a string", '"'
	case reflect.Bool:
		want, kind = "true or false", 't'
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		want, kind = "an integer", '0'
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want, kind = "a non-negative integer", '0'
	case reflect.Float32, reflect.Float64:
		want, kind = "a number", '0'
	case reflect.Slice, reflect.Array:
		want, kind = "an array", '['
	case reflect.Map, reflect.Struct:
		want, kind = "an object", '{'
	default:
		return "has the wrong type"
	}
	if t == reflect.TypeFor[time.Time]() {
		want, kind = "an RFC 3339 time such as 2025-01-02T15:04:05Z", '"'
	}
	got := sem.JSONKind
	if got == 'f' {
		got = 't'
	}
	switch {
	case got == kind && errors.Is(sem.Err, strconv.ErrRange):
		return "is out of range"
	case got == kind || kindName(got) == "":
		return "must be " + want
	default:
		return "must be " + want + ", not " + kindName(got)
	}
}

// kindName names a JSON kind as a person would.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return ""
}
