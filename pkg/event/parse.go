package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/eventsync/eventsync/pkg/subject"
)

// Defaults of Limits.
const (
	DefaultMaxMessage = 64 << 10
	DefaultMaxBatch   = 1000
	DefaultClockSkew  = 60 * time.Second
	MaxIDLen          = 128
	MaxFieldLen       = 256 // session_id and source
)

// Bounds of what errors tell back, so that a request that breaks many
// rules, or breaks them with long names or values, cannot make its answer
// large: a ValidationError encodes to about 12 KB of JSON when 1,000
// events each name an unknown 900-byte member, and to under 64 KiB even
// when every byte echoed takes 6 in JSON (\u0001, \u003c).
const (
	// MaxErrors is the most field errors a ValidationError lists; the
	// rest are only counted.
	MaxErrors = 100
	// MaxEchoLen is about the most bytes of a pointer, or of a value
	// echoed in a detail, that errors keep: longer ones lose their
	// middle, marked with "…".
	MaxEchoLen = 64
)

// Limits bound what a Parser accepts.
type Limits struct {
	MaxMessage int           // bytes of message; default 64 KiB
	MaxBatch   int           // events per request; default 1,000
	ClockSkew  time.Duration // how far in the future a timestamp may be; default 60 s
}

// Parser decodes and validates what producers send and stamps the fields
// EventSync owns. The zero value is not usable; use NewParser.
type Parser struct {
	limits Limits
	now    func() time.Time
	newID  func() string
}

// NewParser returns a Parser; zero limits take their defaults and a nil now
// uses time.Now.
func NewParser(l Limits, now func() time.Time) *Parser {
	if l.MaxMessage <= 0 {
		l.MaxMessage = DefaultMaxMessage
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	if l.ClockSkew <= 0 {
		l.ClockSkew = DefaultClockSkew
	}
	if now == nil {
		now = time.Now
	}
	return &Parser{limits: l, now: now, newID: newID}
}

// newID returns a UUIDv7: unique and sortable by creation time.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil { // only if the system's random source fails
		return uuid.NewString()
	}
	return id.String()
}

// SyntaxError means the body is not acceptable JSON: malformed, duplicate
// keys, invalid UTF-8 or trailing data. HTTP answers 400.
type SyntaxError struct {
	Pointer string
	Detail  string
}

func (e *SyntaxError) Error() string {
	if e.Pointer == "" {
		return "malformed JSON: " + e.Detail
	}
	return fmt.Sprintf("malformed JSON at %s: %s", e.Pointer, e.Detail)
}

// FieldError names one rule an event breaks.
type FieldError struct {
	Pointer string // JSON pointer: /timestamp for one event, /3/timestamp in a batch
	Detail  string
}

// ValidationError lists the rules the events of a request break: the
// first MaxErrors in body order, and how many more. HTTP answers 422.
type ValidationError struct {
	Errors []FieldError
	More   int // rules broken beyond Errors, counted but not listed
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors), len(e.Errors)+1)
	for i, fe := range e.Errors {
		parts[i] = fe.Pointer + ": " + fe.Detail
	}
	if e.More > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", e.More))
	}
	return "invalid events: " + strings.Join(parts, "; ")
}

// fieldErrors collects the rules a request breaks: the first MaxErrors in
// full, the rest only counted.
type fieldErrors struct {
	batch bool // whether pointers start with the event's index
	index int  // of the event in a batch
	list  []FieldError
	more  int
}

// full reports whether further rules broken are only counted.
func (c *fieldErrors) full() bool { return len(c.list) >= MaxErrors }

// add records that the value at ptr in the current event breaks a rule.
func (c *fieldErrors) add(ptr, detail string) {
	if c.full() {
		c.more++
		return
	}
	c.list = append(c.list, FieldError{Pointer: c.pointer(ptr), Detail: detail})
}

// pointer returns ptr, a pointer into the current event, as a pointer into
// the body, cut to about MaxEchoLen bytes.
func (c *fieldErrors) pointer(ptr string) string {
	if c.batch {
		ptr = "/" + strconv.Itoa(c.index) + ptr
	}
	return elide(ptr, MaxEchoLen)
}

// elide returns s, or if s is longer than n bytes, about n bytes of it: its
// start and its end around "…", so that a long pointer still shows both
// the event and the member. The cuts fall on UTF-8 boundaries and keep the
// ~0 and ~1 escapes of JSON pointers whole.
// Elide shortens a JSON pointer or an echoed value to about MaxEchoLen
// bytes for an error detail, keeping its start and its end.
func Elide(s string) string { return elide(s, MaxEchoLen) }

func elide(s string, n int) string {
	if len(s) <= n {
		return s
	}
	head := n / 2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	if head > 0 && s[head-1] == '~' {
		head--
	}
	tail := len(s) - (n - n/2)
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	if s[tail-1] == '~' && tail < len(s) {
		tail++
	}
	return s[:head] + "…" + s[tail:]
}

// Format tells ParseBody how events are framed.
type Format int

// Body formats.
const (
	// JSON is one event object or an array of them.
	JSON Format = iota
	// NDJSON is one event object per line.
	NDJSON
)

// ParseBody decodes a request body holding one event, an array of events or
// NDJSON. Validation is all or nothing: it returns either every event,
// stamped, or an error (*SyntaxError or *ValidationError) that lists what is
// wrong. batch reports whether the body was a list (array or NDJSON), in
// which case pointers are prefixed with the item index.
func (p *Parser) ParseBody(body []byte, f Format) (events []Event, batch bool, err error) {
	var items [][]byte
	switch f {
	case NDJSON:
		items, err = splitLines(body)
		batch = true
	default:
		items, batch, err = splitJSON(body)
	}
	if err != nil {
		if se, ok := err.(*SyntaxError); ok {
			se.Pointer = elide(se.Pointer, MaxEchoLen)
		}
		return nil, batch, err
	}
	if len(items) == 0 {
		return nil, batch, &ValidationError{Errors: []FieldError{{Pointer: "", Detail: "must hold at least one event"}}}
	}
	if len(items) > p.limits.MaxBatch {
		return nil, batch, &ValidationError{Errors: []FieldError{{Pointer: "", Detail: fmt.Sprintf("must hold at most %d events, got %d", p.limits.MaxBatch, len(items))}}}
	}
	now := p.now().UTC().Truncate(time.Microsecond)
	events = make([]Event, len(items))
	errs := fieldErrors{batch: batch}
	for i, raw := range items {
		errs.index = i
		if err := p.parse(raw, now, &events[i], &errs); err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				se.Pointer = errs.pointer(se.Pointer)
			}
			return nil, batch, err
		}
	}
	if len(errs.list) > 0 {
		return nil, batch, &ValidationError{Errors: errs.list, More: errs.more}
	}
	return events, batch, nil
}

// splitJSON splits a body into its event objects: the body itself, or the
// items of a top-level array. It rejects trailing data.
func splitJSON(body []byte) (items [][]byte, batch bool, err error) {
	// A bytes.Buffer lets the decoder read body in place. The Value that
	// ReadValue returns is only valid until the next read (the decoder
	// may reuse or poison its buffer), so items are sliced out of body by
	// offset instead of being kept.
	dec := jsontext.NewDecoder(bytes.NewBuffer(body))
	next := func() ([]byte, error) {
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		end := dec.InputOffset()
		return body[end-int64(len(v)) : end : end], nil
	}
	switch dec.PeekKind() {
	case '[':
		batch = true
		if _, err := dec.ReadToken(); err != nil {
			return nil, batch, syntaxError(err)
		}
		for dec.PeekKind() != ']' {
			v, err := next()
			if err != nil {
				return nil, batch, syntaxError(err)
			}
			items = append(items, v)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, batch, syntaxError(err)
		}
	default:
		v, err := next()
		if err != nil {
			return nil, batch, syntaxError(err)
		}
		items = [][]byte{v}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			return nil, batch, &SyntaxError{Detail: "unexpected data after the top-level value"}
		}
		return nil, batch, syntaxError(err)
	}
	return items, batch, nil
}

// splitLines splits NDJSON into its non-blank lines, each one JSON value.
// Each line is checked to be exactly one well-formed JSON value here, so
// that a malformed line is a *SyntaxError (pointer /N, N counting events,
// not lines) even when it also breaks a rule that decoding would report
// first, such as an unknown field.
func splitLines(body []byte) ([][]byte, error) {
	var items [][]byte
	var dec jsontext.Decoder
	n := 0
	for line := range bytes.Lines(body) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := checkValue(&dec, line); err != nil {
			se := err.(*SyntaxError)
			se.Pointer = "/" + strconv.Itoa(len(items)) + se.Pointer
			se.Detail = fmt.Sprintf("line %d: %s", n, se.Detail)
			return nil, se
		}
		items = append(items, line)
	}
	return items, nil
}

// checkValue reports as a *SyntaxError why b is not exactly one JSON value,
// reusing dec.
func checkValue(dec *jsontext.Decoder, b []byte) error {
	dec.Reset(bytes.NewBuffer(b))
	if err := dec.SkipValue(); err != nil {
		return syntaxError(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			return &SyntaxError{Detail: "unexpected data after the top-level value"}
		}
		return syntaxError(err)
	}
	return nil
}

// syntaxError converts a jsontext error into a *SyntaxError.
func syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &SyntaxError{Detail: "unexpected end of JSON input"}
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		detail := se.Err.Error()
		switch {
		case errors.Is(err, jsontext.ErrDuplicateName):
			detail = "duplicate object key"
		}
		return &SyntaxError{Pointer: string(se.JSONPointer), Detail: fmt.Sprintf("%s (byte offset %d)", detail, se.ByteOffset)}
	}
	return &SyntaxError{Detail: err.Error()}
}

// input is the wire form of an event as producers send it. Pointers tell
// "absent or null" from "empty".
type input struct {
	ID        *string        `json:"id"`
	Category  *string        `json:"category"`
	Code      *string        `json:"code"`
	Tag       *string        `json:"tag"`
	Message   *string        `json:"message"`
	Timestamp *string        `json:"timestamp"`
	SessionID *string        `json:"session_id"`
	Source    *string        `json:"source"`
	Name      *string        `json:"name"`
	Severity  *string        `json:"severity"`
	Data      jsontext.Value `json:"data"`
}

// parse decodes and validates one event object into e. It adds the rules
// broken to errs, or returns an error if the JSON itself is unacceptable.
func (p *Parser) parse(raw []byte, now time.Time, e *Event, errs *fieldErrors) error {
	bad := errs.add
	// null would decode as an empty object; raw is a trimmed JSON value.
	if len(raw) == 0 || raw[0] != '{' {
		bad("", "must be a JSON object")
		return nil
	}
	var in input
	if err := jsonv2.Unmarshal(raw, &in, jsonv2.RejectUnknownMembers(true)); err != nil {
		var se *jsontext.SyntacticError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return syntaxError(err)
		}
		var sem *jsonv2.SemanticError
		if errors.As(err, &sem) {
			ptr := string(sem.JSONPointer)
			switch {
			case errors.Is(err, jsonv2.ErrUnknownName):
				bad(ptr, "is not a known field")
			case ptr == "":
				bad("", "must be a JSON object")
			default:
				bad(ptr, "must be a string")
			}
			return nil
		}
		return &SyntaxError{Detail: err.Error()}
	}

	// Tag: category + code, or tag, or both when they agree.
	switch {
	case in.Tag != nil:
		cat, code, err := subject.SplitTag(*in.Tag)
		if err != nil {
			bad("/tag", err.Error())
			break
		}
		if in.Category != nil && *in.Category != cat {
			bad("/category", "disagrees with tag")
		}
		if in.Code != nil && *in.Code != code {
			bad("/code", "disagrees with tag")
		}
		e.Category, e.Code = cat, code
	default:
		ok := true
		if in.Category == nil {
			bad("/category", "is required (or give tag)")
			ok = false
		} else if err := subject.ValidateCategory(*in.Category); err != nil {
			bad("/category", err.Error())
			ok = false
		}
		if in.Code == nil {
			bad("/code", "is required (or give tag)")
			ok = false
		} else if err := subject.ValidateCode(*in.Code); err != nil {
			bad("/code", err.Error())
			ok = false
		}
		// Only valid halves go on to Build, so that a bad category or
		// code is reported once, not again as a subject error.
		if ok {
			e.Category, e.Code = *in.Category, *in.Code
		}
	}
	if e.Category != "" && e.Code != "" {
		subj, err := subject.Build(e.Category, e.Code)
		if err != nil {
			if in.Tag != nil {
				bad("/tag", err.Error())
			} else {
				bad("/category", err.Error())
			}
		}
		e.Subject, e.Tag = subj, subject.Tag(e.Category, e.Code)
	}

	// The message is optional (events of the session collector and The
	// Eye have none): absent, null and empty all mean no message.
	if in.Message != nil {
		if len(*in.Message) > p.limits.MaxMessage {
			bad("/message", fmt.Sprintf("must be at most %d bytes", p.limits.MaxMessage))
		} else {
			e.Message = *in.Message
		}
	}

	e.ReceivedAt = now
	e.Timestamp = now
	if in.Timestamp != nil {
		ts, err := ParseTime(*in.Timestamp)
		switch {
		case err != nil:
			bad("/timestamp", err.Error())
		case ts.After(now.Add(p.limits.ClockSkew)):
			bad("/timestamp", fmt.Sprintf("is more than %s in the future", p.limits.ClockSkew))
		default:
			e.Timestamp = ts
		}
	}

	if in.SessionID != nil {
		if len(*in.SessionID) > MaxFieldLen {
			bad("/session_id", fmt.Sprintf("must be at most %d bytes", MaxFieldLen))
		} else if hasControl(*in.SessionID) {
			bad("/session_id", "must not contain control characters")
		}
		e.SessionID = *in.SessionID
	}
	srcPtr := "/source"
	switch {
	case in.Source != nil && in.Name != nil && *in.Source != *in.Name:
		bad("/name", "disagrees with source (name is an alias of source)")
	case in.Source != nil:
		e.Source = *in.Source
	case in.Name != nil:
		e.Source, srcPtr = *in.Name, "/name"
	}
	if len(e.Source) > MaxFieldLen {
		bad(srcPtr, fmt.Sprintf("must be at most %d bytes", MaxFieldLen))
	} else if hasControl(e.Source) {
		bad(srcPtr, "must not contain control characters")
	}

	e.Severity = Info
	if in.Severity != nil {
		s, err := ParseSeverity(*in.Severity)
		if err != nil {
			bad("/severity", err.Error())
		}
		e.Severity = s
	}

	if len(in.Data) > 0 && in.Data.Kind() != 'n' {
		if in.Data.Kind() != '{' {
			bad("/data", "must be a JSON object")
		} else {
			if n := badNumbers(in.Data); n > 0 {
				addNumberErrors(errs, "/data", in.Data, n)
			}
			e.Data = json.RawMessage(in.Data) // already a copy, not part of raw
		}
	}

	if in.ID != nil {
		if err := validID(*in.ID); err != nil {
			bad("/id", err.Error())
		}
		e.ID = *in.ID
	} else {
		e.ID = p.newID()
	}
	return nil
}

// validID checks a producer-chosen id: 1–128 printable ASCII characters.
func validID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("must be 1 to %d characters", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	return nil
}

// Layouts accepted for timestamps without a zone; they mean UTC.
var zonelessLayouts = [...]string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"}

// ParseTime parses an event timestamp: RFC 3339 with optional fraction, or
// "YYYY-MM-DD HH:MM:SS[.ffffff]" (or with a T) without a zone, meaning UTC.
// The result is UTC, truncated to microseconds. The error quotes s, cut to
// about MaxEchoLen bytes.
func ParseTime(s string) (time.Time, error) {
	// time.Parse also takes a comma before the fraction; neither RFC 3339
	// nor the zoneless form has one.
	if strings.IndexByte(s, ',') < 0 {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC().Truncate(time.Microsecond), nil
		}
		for _, layout := range zonelessLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Truncate(time.Microsecond), nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("must be RFC 3339 (2006-01-02T15:04:05.999999Z07:00) or \"YYYY-MM-DD HH:MM:SS[.ffffff]\" in UTC, got %q", elide(s, MaxEchoLen))
}

// hasControl reports whether s holds a control character (C0, DEL or C1):
// identifiers that end up in logs and headers must not carry line breaks
// or escape sequences.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return true
		}
	}
	return false
}
