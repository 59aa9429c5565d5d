package event

import (
	"bytes"
	"errors"
	"io"
	"iter"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/subject"
)

// fuzzNow is the clock of FuzzParseBodyRoundTrip's parser.
var fuzzNow = time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)

// wireEvent is what a producer sends, rebuilt from a parsed event.
type wireEvent struct {
	ID        string         `json:"id"`
	Category  string         `json:"category"`
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Timestamp string         `json:"timestamp"`
	SessionID string         `json:"session_id,omitempty"`
	Source    string         `json:"source,omitempty"`
	Severity  string         `json:"severity"`
	Data      jsontext.Value `json:"data,omitzero"`
}

// FuzzParseBodyRoundTrip checks on arbitrary JSON and NDJSON bodies that
// ParseBody never panics, fails only with *SyntaxError or
// *ValidationError, and that every event it returns keeps every rule,
// survives Encode and Decode, and is accepted again, unchanged, when sent
// back in the producer's form. (FuzzParseBody checks the error contract
// with a smaller corpus.)
func FuzzParseBodyRoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"category":"A","code":"B","message":"m"}`,
		`{"tag":"DATABASE.CONNECTION_LOST","message":"lost db-1","timestamp":"2026-03-04T05:06:07.5Z","session_id":"s-1","source":"billing","severity":"error","data":{"host":"db-1","attempts":[1,2]},"id":"0190c1e8-3b5c-7d2a-9f3e-5a1b2c3d4e5f"}`,
		`[{"tag":"A.B","message":"one"},{"category":"A.B","code":"C","message":"two","name":"n","severity":"debug"}]`,
		`{"tag":"A.B","message":"m","timestamp":"2026-03-04 05:06:07.123456"}`,
		`{"tag":"A.B","message":"\u0000\ud83d\ude00 ünï","data":null}`,
		`{"tag":"A.B","message":"m","data":{"a":{"b":{"c":[[[]]]}}}}`,
		`{"tag":"A.B","message":"m","timestamp":"2099-01-01T00:00:00Z"}`,
		`{"tag":"A.B","message":"m","data":{"k":1,"k":2}}`,
		`{"tag":"A.B","message":"m","severity":"fatal"}`,
		`{"tag":"A..B","message":"m"}`,
		`{"tag":"A.B","message":1e999}`,
		`{"tag":"A.B","message":"m","extra":true}`,
		`{"tag":"A.B","message":"m","data":{"a":[1e308,-1e309],"s\\":"\"1e999\\","n":12345678901234567890123456789012345678901234567890123456789012345}}`,
		`{"tag":"A.B","message":"m"}` + "\n\n" + `{"tag":"C.D","message":"n"}`,
		"[]", "{}", "null", "[null]", "\"A.B\"", "", " ", "[", "{\"tag\":\"A.B\",\"message\":\"\xff\"}",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, nd bool) {
		format := JSON
		if nd {
			format = NDJSON
		}
		p := NewParser(Limits{MaxBatch: 50, MaxMessage: 1 << 10}, func() time.Time { return fuzzNow })
		events, batch, err := p.ParseBody(body, format)
		if err != nil {
			checkParseError(t, body, events, err)
			return
		}
		if len(events) == 0 || len(events) > 50 {
			t.Fatalf("ParseBody(%q) = %d events and no error; want 1 to 50", body, len(events))
		}
		if wantBatch := nd || bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("[")); batch != wantBatch {
			t.Fatalf("ParseBody(%q) batch = %v; want %v", body, batch, wantBatch)
		}
		for i := range events {
			e := &events[i]
			checkEvent(t, body, e)
			checkEncode(t, e)
			checkResend(t, p, e)
		}
	})
}

// checkParseError checks the error contract of ParseBody.
func checkParseError(t *testing.T, body []byte, events []Event, err error) {
	t.Helper()
	var se *SyntaxError
	var ve *ValidationError
	switch {
	case errors.As(err, &se):
		if se.Detail == "" {
			t.Fatalf("ParseBody(%q) = SyntaxError without detail", body)
		}
		checkPointer(t, body, se.Pointer)
	case errors.As(err, &ve):
		if len(ve.Errors) == 0 || len(ve.Errors) > MaxErrors || ve.More < 0 || ve.More > 0 && len(ve.Errors) < MaxErrors {
			t.Fatalf("ParseBody(%q) = ValidationError listing %d errors and %d more; want 1 to %d, and more only after %[4]d", body, len(ve.Errors), ve.More, MaxErrors)
		}
		for _, fe := range ve.Errors {
			if fe.Detail == "" || fe.Pointer != "" && !strings.HasPrefix(fe.Pointer, "/") {
				t.Fatalf("ParseBody(%q) field error %+v; want a JSON pointer and a detail", body, fe)
			}
			checkPointer(t, body, fe.Pointer)
		}
	default:
		t.Fatalf("ParseBody(%q) error = %v (%T); want *SyntaxError or *ValidationError", body, err, err)
	}
	if events != nil {
		t.Fatalf("ParseBody(%q) = %d events and an error", body, len(events))
	}
}

// checkPointer checks that an error's pointer is bounded and valid UTF-8.
func checkPointer(t *testing.T, body []byte, ptr string) {
	t.Helper()
	if len(ptr) > MaxEchoLen+len("…") || !utf8.ValidString(ptr) {
		t.Fatalf("ParseBody(%q) error pointer %q (%d bytes); want valid UTF-8 of at most %d bytes", body, ptr, len(ptr), MaxEchoLen+len("…"))
	}
}

// checkEvent checks that a parsed event keeps every rule.
func checkEvent(t *testing.T, body []byte, e *Event) {
	t.Helper()
	now := fuzzNow.Truncate(time.Microsecond)
	cat, code, err := subject.SplitTag(e.Tag)
	if err != nil || cat != e.Category || code != e.Code {
		t.Fatalf("ParseBody(%q) tag %q splits to %q, %q, %v; want %q, %q", body, e.Tag, cat, code, err, e.Category, e.Code)
	}
	if subj, err := subject.Build(e.Category, e.Code); err != nil || subj != e.Subject {
		t.Fatalf("ParseBody(%q) subject %q; Build = %q, %v", body, e.Subject, subj, err)
	}
	if err := validID(e.ID); err != nil {
		t.Fatalf("ParseBody(%q) id %q: %v", body, e.ID, err)
	}
	if len(e.Message) > 1<<10 { // optional: may be empty
		t.Fatalf("ParseBody(%q) message of %d bytes; want at most %d", body, len(e.Message), 1<<10)
	}
	if len(e.SessionID) > MaxFieldLen || len(e.Source) > MaxFieldLen {
		t.Fatalf("ParseBody(%q) session_id %d bytes, source %d bytes; want at most %d", body, len(e.SessionID), len(e.Source), MaxFieldLen)
	}
	for _, s := range []string{e.Message, e.SessionID, e.Source} {
		if !utf8.ValidString(s) {
			t.Fatalf("ParseBody(%q) kept invalid UTF-8 %q", body, s)
		}
	}
	if _, err := ParseSeverity(e.Severity.String()); err != nil {
		t.Fatalf("ParseBody(%q) severity %d: %v", body, e.Severity, err)
	}
	if e.Timestamp.After(now.Add(DefaultClockSkew)) || !e.ReceivedAt.Equal(now) {
		t.Fatalf("ParseBody(%q) timestamp %v, received %v; want at most %v and exactly %v", body, e.Timestamp, e.ReceivedAt, now.Add(DefaultClockSkew), now)
	}
	if e.Data != nil && jsontext.Value(e.Data).Kind() != '{' {
		t.Fatalf("ParseBody(%q) data %s; want an object or nothing", body, e.Data)
	}
	if e.Data != nil && !jsontext.Value(e.Data).IsValid() {
		t.Fatalf("ParseBody(%q) data %s is not valid JSON", body, e.Data)
	}
	if e.Data != nil {
		for num := range numbers(t, e.Data) {
			if f, err := strconv.ParseFloat(num, 64); err != nil || math.IsInf(f, 0) || len(num) > MaxNumberLen {
				t.Fatalf("ParseBody(%q) kept the number %.80s (%d characters) in data; want a finite double of at most %d", body, num, len(num), MaxNumberLen)
			}
		}
	}
}

// numbers yields the numbers in v, a valid JSON value, as written.
func numbers(t *testing.T, v []byte) iter.Seq[string] {
	t.Helper()
	return func(yield func(string) bool) {
		dec := jsontext.NewDecoder(bytes.NewReader(v))
		for {
			if dec.PeekKind() == '0' {
				num, err := dec.ReadValue()
				if err != nil {
					t.Fatalf("read %s: %v", v, err)
				}
				if !yield(string(num)) {
					return
				}
				continue
			}
			if _, err := dec.ReadToken(); err == io.EOF {
				return
			} else if err != nil {
				t.Fatalf("read %s: %v", v, err)
			}
		}
	}
}

// checkEncode checks that an event survives publishing: Encode, then
// Decode, gives it back.
func checkEncode(t *testing.T, e *Event) {
	t.Helper()
	b, err := Encode(e)
	if err != nil {
		t.Fatalf("Encode(%+v) error = %v", e, err)
	}
	var got Event
	if err := Decode(b, &got); err != nil {
		t.Fatalf("Decode(%s) error = %v", b, err)
	}
	want := *e
	want.Data, got.Data = compact(t, want.Data), compact(t, got.Data)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Decode(Encode(e)) mismatch (-want +got):\n%s", diff)
	}
}

// checkResend checks that an event sent again in the producer's form is
// accepted and unchanged.
func checkResend(t *testing.T, p *Parser, e *Event) {
	t.Helper()
	w := wireEvent{
		ID: e.ID, Category: e.Category, Code: e.Code, Message: e.Message,
		Timestamp: e.Timestamp.Format(time.RFC3339Nano), SessionID: e.SessionID,
		Source: e.Source, Severity: e.Severity.String(), Data: jsontext.Value(e.Data),
	}
	b, err := jsonv2.Marshal(w)
	if err != nil {
		t.Fatalf("marshal %+v: %v", w, err)
	}
	again, batch, err := p.ParseBody(b, JSON)
	if err != nil || batch || len(again) != 1 {
		t.Fatalf("ParseBody(%s) of a parsed event = %d events, batch %v, %v; want it accepted", b, len(again), batch, err)
	}
	want, got := *e, again[0]
	want.Data, got.Data = compact(t, want.Data), compact(t, got.Data)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ParseBody(%s) of a parsed event mismatch (-want +got):\n%s", b, diff)
	}
}

// compact returns data without insignificant white space.
func compact(t *testing.T, data []byte) []byte {
	t.Helper()
	if data == nil {
		return nil
	}
	v := jsontext.Value(bytes.Clone(data))
	if err := v.Compact(); err != nil {
		t.Fatalf("compact %s: %v", data, err)
	}
	return v
}
