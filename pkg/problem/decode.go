package problem

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"
)

// MaxJSONBody is the default size limit of DecodeJSON.
const MaxJSONBody = 64 << 10

// FieldDetailer is implemented by errors of custom JSON decoders (an
// UnmarshalJSON method) that know how to say what is wrong with the value.
type FieldDetailer interface {
	FieldDetail() string
}

// DecodeJSON strictly decodes a JSON request body of at most limit bytes
// into v and returns every failure as a problem: 415 for another content
// type, 413 for a larger body, 400 for an empty or malformed one, 422
// naming the member for unknown members and wrong types. Duplicate names
// and trailing data are errors too.
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
	if len(b) == 0 {
		return BadRequest("the body is empty; send a JSON object")
	}
	if err := jsonv2.Unmarshal(b, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		var se *jsonv2.SemanticError
		if errors.As(err, &se) && se.JSONPointer != "" {
			detail := "has the wrong type"
			var fd FieldDetailer
			switch {
			case errors.Is(err, jsonv2.ErrUnknownName):
				detail = "is not a known member"
			case errors.As(err, &fd):
				detail = fd.FieldDetail()
			}
			return Invalid(string(se.JSONPointer)+" "+detail, FieldError{Pointer: string(se.JSONPointer), Detail: detail})
		}
		return BadRequest("the body is not valid JSON: " + err.Error())
	}
	return nil
}
