package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// testNow is the injected clock: nanoseconds show that received_at is
// truncated to microseconds.
var testNow = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// nowUS is testNow as the parser stamps it.
var nowUS = testNow.Truncate(time.Microsecond)

// newTestParser returns a parser on the test clock whose generated IDs
// are gen-1, gen-2, …
func newTestParser(l Limits) *Parser {
	p := NewParser(l, func() time.Time { return testNow })
	n := 0
	p.newID = func() string { n++; return "gen-" + strconv.Itoa(n) }
	return p
}

// obj returns an event object with category A, code B and message m plus
// extra members (each starting with a comma).
func obj(extra string) string {
	return `{"category":"A","code":"B","message":"m"` + extra + `}`
}

// base is the event obj("") yields from newTestParser.
func base() Event {
	return Event{
		ID:         "gen-1",
		Subject:    "events.A.B",
		Tag:        "A.B",
		Category:   "A",
		Code:       "B",
		Message:    "m",
		Timestamp:  nowUS,
		ReceivedAt: nowUS,
		Severity:   Info,
	}
}

// str returns s as a JSON string.
func str(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParseBodyFullEvent(t *testing.T) {
	body := `{
		"id": "order-42",
		"category": "DATABASE",
		"code": "CONNECTION_LOST",
		"message": "lost connection to db-1",
		"timestamp": "2024-05-06T09:00:00.5+02:00",
		"session_id": "sess-1",
		"source": "billing",
		"severity": "error",
		"data": {"host": "db-1", "attempts": [1, 2]}
	}`
	got, batch, err := newTestParser(Limits{}).ParseBody([]byte(body), JSON)
	if err != nil {
		t.Fatalf("ParseBody(%s) error = %v", body, err)
	}
	if batch {
		t.Errorf("ParseBody(%s) batch = true; want false", body)
	}
	want := []Event{{
		ID:         "order-42",
		Subject:    "events.DATABASE.CONNECTION_LOST",
		Tag:        "DATABASE.CONNECTION_LOST",
		Category:   "DATABASE",
		Code:       "CONNECTION_LOST",
		Message:    "lost connection to db-1",
		Timestamp:  time.Date(2024, 5, 6, 7, 0, 0, 500_000_000, time.UTC),
		ReceivedAt: nowUS,
		SessionID:  "sess-1",
		Source:     "billing",
		Severity:   Error,
		Data:       json.RawMessage(`{"host": "db-1", "attempts": [1, 2]}`),
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseBody mismatch (-want +got):\n%s", diff)
	}
	if loc := got[0].Timestamp.Location(); loc != time.UTC {
		t.Errorf("Timestamp location = %v; want UTC", loc)
	}
}

// TestParseBodyValid covers each rule's accepted inputs on a single object.
func TestParseBodyValid(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		limits Limits
		body   string
		want   func(e *Event) // edits base()
	}{
		{"minimal", Limits{}, obj(""), func(e *Event) {}},
		{"nested category", Limits{}, `{"category":"TEST.NETWORK","code":"TIMEOUT","message":"m"}`, func(e *Event) {
			e.Category, e.Code, e.Tag, e.Subject = "TEST.NETWORK", "TIMEOUT", "TEST.NETWORK.TIMEOUT", "events.TEST.NETWORK.TIMEOUT"
		}},
		{"tag instead of category and code", Limits{}, `{"tag":"TEST.NETWORK.TIMEOUT","message":"m"}`, func(e *Event) {
			e.Category, e.Code, e.Tag, e.Subject = "TEST.NETWORK", "TIMEOUT", "TEST.NETWORK.TIMEOUT", "events.TEST.NETWORK.TIMEOUT"
		}},
		{"tag agreeing with category and code", Limits{}, `{"tag":"A.B","category":"A","code":"B","message":"m"}`, func(e *Event) {}},
		{"tag agreeing with category", Limits{}, `{"tag":"A.B","category":"A","message":"m"}`, func(e *Event) {}},
		{"lower case tokens", Limits{}, `{"category":"db-1","code":"conn_lost","message":"m"}`, func(e *Event) {
			e.Category, e.Code, e.Tag, e.Subject = "db-1", "conn_lost", "db-1.conn_lost", "events.db-1.conn_lost"
		}},
		{"message missing", Limits{}, `{"category":"A","code":"B"}`, func(e *Event) { e.Message = "" }},
		{"message empty", Limits{}, `{"category":"A","code":"B","message":""}`, func(e *Event) { e.Message = "" }},
		{"message null", Limits{}, `{"category":"A","code":"B","message":null}`, func(e *Event) { e.Message = "" }},
		{"message at max bytes", Limits{MaxMessage: 16}, `{"category":"A","code":"B","message":"éééééééé"}`, func(e *Event) { e.Message = "éééééééé" }},
		{"message with unicode escapes", Limits{}, `{"category":"A","code":"B","message":"\u00e9\n"}`, func(e *Event) { e.Message = "é\n" }},

		{"timestamp null means now", Limits{}, obj(`,"timestamp":null`), func(e *Event) {}},
		{"timestamp RFC 3339 Z", Limits{}, obj(`,"timestamp":"2024-05-06T07:00:00Z"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
		}},
		{"timestamp RFC 3339 fraction", Limits{}, obj(`,"timestamp":"2024-05-06T07:00:00.25Z"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 250_000_000, time.UTC)
		}},
		{"timestamp RFC 3339 positive offset", Limits{}, obj(`,"timestamp":"2024-05-06T09:30:00+02:30"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
		}},
		{"timestamp RFC 3339 negative offset", Limits{}, obj(`,"timestamp":"2024-05-05T23:00:00.000001-08:00"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 1000, time.UTC)
		}},
		{"timestamp RFC 3339 +00:00", Limits{}, obj(`,"timestamp":"2024-05-06T07:00:00+00:00"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
		}},
		{"timestamp RFC 3339 nanoseconds truncated", Limits{}, obj(`,"timestamp":"2024-05-06T07:00:00.123456789Z"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 123456000, time.UTC)
		}},
		{"timestamp zoneless is UTC", Limits{}, obj(`,"timestamp":"2024-05-06 07:00:00"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
		}},
		{"timestamp zoneless microseconds", Limits{}, obj(`,"timestamp":"2024-05-06 07:00:00.654321"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 654321000, time.UTC)
		}},
		{"timestamp zoneless milliseconds", Limits{}, obj(`,"timestamp":"2024-05-06 07:00:00.5"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 500_000_000, time.UTC)
		}},
		{"timestamp zoneless nanoseconds truncated", Limits{}, obj(`,"timestamp":"2024-05-06 07:00:00.999999999"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 999999000, time.UTC)
		}},
		{"timestamp zoneless with T", Limits{}, obj(`,"timestamp":"2024-05-06T07:00:00"`), func(e *Event) {
			e.Timestamp = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
		}},
		{"timestamp long ago", Limits{}, obj(`,"timestamp":"1970-01-01T00:00:00Z"`), func(e *Event) {
			e.Timestamp = time.Unix(0, 0).UTC()
		}},
		{"timestamp exactly at the clock skew", Limits{}, obj(`,"timestamp":"2024-05-06T07:09:09.123456Z"`), func(e *Event) {
			e.Timestamp = nowUS.Add(DefaultClockSkew)
		}},
		{"timestamp at the skew, sub-microsecond part truncated", Limits{}, obj(`,"timestamp":"2024-05-06T07:09:09.123456999Z"`), func(e *Event) {
			e.Timestamp = nowUS.Add(DefaultClockSkew)
		}},
		{"timestamp at a custom skew", Limits{ClockSkew: time.Second}, obj(`,"timestamp":"2024-05-06T09:08:10.123456+02:00"`), func(e *Event) {
			e.Timestamp = nowUS.Add(time.Second)
		}},

		{"session_id", Limits{}, obj(`,"session_id":"s-1"`), func(e *Event) { e.SessionID = "s-1" }},
		{"session_id at max", Limits{}, obj(`,"session_id":` + str(long(MaxFieldLen))), func(e *Event) { e.SessionID = long(MaxFieldLen) }},
		{"session_id null", Limits{}, obj(`,"session_id":null`), func(e *Event) {}},
		{"source", Limits{}, obj(`,"source":"billing"`), func(e *Event) { e.Source = "billing" }},
		{"source at max", Limits{}, obj(`,"source":` + str(long(MaxFieldLen))), func(e *Event) { e.Source = long(MaxFieldLen) }},
		{"name is an alias of source", Limits{}, obj(`,"name":"billing"`), func(e *Event) { e.Source = "billing" }},
		{"name at max", Limits{}, obj(`,"name":` + str(long(MaxFieldLen))), func(e *Event) { e.Source = long(MaxFieldLen) }},
		{"name agreeing with source", Limits{}, obj(`,"name":"billing","source":"billing"`), func(e *Event) { e.Source = "billing" }},

		{"severity debug", Limits{}, obj(`,"severity":"debug"`), func(e *Event) { e.Severity = Debug }},
		{"severity info", Limits{}, obj(`,"severity":"info"`), func(e *Event) { e.Severity = Info }},
		{"severity notice", Limits{}, obj(`,"severity":"notice"`), func(e *Event) { e.Severity = Notice }},
		{"severity warning", Limits{}, obj(`,"severity":"warning"`), func(e *Event) { e.Severity = Warning }},
		{"severity error", Limits{}, obj(`,"severity":"error"`), func(e *Event) { e.Severity = Error }},
		{"severity critical", Limits{}, obj(`,"severity":"critical"`), func(e *Event) { e.Severity = Critical }},
		{"severity ignores case", Limits{}, obj(`,"severity":"CRITICAL"`), func(e *Event) { e.Severity = Critical }},
		{"severity null is info", Limits{}, obj(`,"severity":null`), func(e *Event) {}},

		{"data object", Limits{}, obj(`,"data":{"a":1,"b":{"c":[true,null]}}`), func(e *Event) { e.Data = json.RawMessage(`{"a":1,"b":{"c":[true,null]}}`) }},
		{"data empty object", Limits{}, obj(`,"data":{}`), func(e *Event) { e.Data = json.RawMessage(`{}`) }},
		{"data with spaces", Limits{}, obj(`,"data":  { "a" : 1 }  `), func(e *Event) { e.Data = json.RawMessage(`{ "a" : 1 }`) }},
		{"data null is absent", Limits{}, obj(`,"data":null`), func(e *Event) {}},

		{"id", Limits{}, obj(`,"id":"order-42"`), func(e *Event) { e.ID = "order-42" }},
		{"id one character", Limits{}, obj(`,"id":"x"`), func(e *Event) { e.ID = "x" }},
		{"id printable punctuation", Limits{}, obj(`,"id":"!~{}[]:/\"\\"`), func(e *Event) { e.ID = `!~{}[]:/"\` }},
		{"id at max", Limits{}, obj(`,"id":` + str(long(MaxIDLen))), func(e *Event) { e.ID = long(MaxIDLen) }},
		{"id null is generated", Limits{}, obj(`,"id":null`), func(e *Event) {}},

		{"members in any order", Limits{}, `{"message":"m","code":"B","severity":"info","category":"A"}`, func(e *Event) {}},
		{"surrounding whitespace", Limits{}, " \n\t" + obj("") + "\r\n ", func(e *Event) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, batch, err := newTestParser(tt.limits).ParseBody([]byte(tt.body), JSON)
			if err != nil {
				t.Fatalf("ParseBody(%s) error = %v", tt.body, err)
			}
			if batch {
				t.Errorf("ParseBody(%s) batch = true; want false", tt.body)
			}
			want := base()
			tt.want(&want)
			if diff := cmp.Diff([]Event{want}, got); diff != "" {
				t.Errorf("ParseBody(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// wantFieldErrors checks that err is a *ValidationError whose errors have
// exactly the wanted pointers, in order, and details containing the wanted
// details.
func wantFieldErrors(t *testing.T, call string, err error, want []FieldError) {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("%s error = %v (%T); want *ValidationError %v", call, err, err, want)
	}
	match := len(verr.Errors) == len(want)
	for i := 0; match && i < len(want); i++ {
		match = verr.Errors[i].Pointer == want[i].Pointer && strings.Contains(verr.Errors[i].Detail, want[i].Detail)
	}
	if !match {
		t.Errorf("%s errors = %q; want pointers and details containing %q", call, verr.Errors, want)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "invalid events: ") {
		t.Errorf("%s error text = %q; want prefix %q", call, msg, "invalid events: ")
	}
}

// TestParseBodyInvalid covers each rule's rejected inputs on a single
// object: a *ValidationError with pointers naming the fields.
func TestParseBodyInvalid(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	// A category and code that are valid tokens but make a 256-byte subject.
	longCat := strings.Repeat("C", 64) + "." + strings.Repeat("C", 64) + "." + strings.Repeat("C", 64)
	fe := func(ptr, detail string) FieldError { return FieldError{Pointer: ptr, Detail: detail} }
	tests := []struct {
		name   string
		limits Limits
		body   string
		want   []FieldError
	}{
		{"category missing", Limits{}, `{"code":"B","message":"m"}`, []FieldError{fe("/category", "is required")}},
		{"code missing", Limits{}, `{"category":"A","message":"m"}`, []FieldError{fe("/code", "is required")}},
		{"category null", Limits{}, `{"category":null,"code":"B","message":"m"}`, []FieldError{fe("/category", "is required")}},
		{"empty object", Limits{}, `{}`, []FieldError{fe("/category", "required"), fe("/code", "required")}},
		{"category empty", Limits{}, `{"category":"","code":"B","message":"m"}`, []FieldError{fe("/category", "empty")}},
		{"code empty", Limits{}, `{"category":"A","code":"","message":"m"}`, []FieldError{fe("/code", "empty")}},
		{"category with space", Limits{}, `{"category":"A B","code":"B","message":"m"}`, []FieldError{fe("/category", "ASCII letters")}},
		{"category with wildcard", Limits{}, `{"category":"*","code":"B","message":"m"}`, []FieldError{fe("/category", "ASCII letters")}},
		{"category with empty token", Limits{}, `{"category":"A..B","code":"B","message":"m"}`, []FieldError{fe("/category", "empty tokens")}},
		{"category with trailing dot", Limits{}, `{"category":"A.","code":"B","message":"m"}`, []FieldError{fe("/category", "empty tokens")}},
		{"category non-ASCII", Limits{}, `{"category":"DATENBANKÄ","code":"B","message":"m"}`, []FieldError{fe("/category", "ASCII letters")}},
		{"category token too long", Limits{}, `{"category":"` + long(65) + `","code":"B","message":"m"}`, []FieldError{fe("/category", "at most 64")}},
		{"code with dot", Limits{}, `{"category":"A","code":"X.Y","message":"m"}`, []FieldError{fe("/code", "one token")}},
		{"code with wildcard", Limits{}, `{"category":"A","code":">","message":"m"}`, []FieldError{fe("/code", "ASCII letters")}},
		{"category and code both bad", Limits{}, `{"category":"A B","code":"*","message":"m"}`, []FieldError{fe("/category", "ASCII"), fe("/code", "ASCII")}},
		{"subject too long", Limits{}, `{"category":"` + longCat + `","code":"` + long(54) + `","message":"m"}`, []FieldError{fe("/category", "at most 255")}},
		{"tag invalid", Limits{}, `{"tag":"A","message":"m"}`, []FieldError{fe("/tag", "CATEGORY.CODE")}},
		{"tag empty", Limits{}, `{"tag":"","message":"m"}`, []FieldError{fe("/tag", "empty")}},
		{"tag with wildcard", Limits{}, `{"tag":"A.*","message":"m"}`, []FieldError{fe("/tag", "ASCII")}},
		{"tag too long", Limits{}, `{"tag":"` + longCat + "." + long(54) + `","message":"m"}`, []FieldError{fe("/tag", "at most 255")}},
		{"tag disagreeing with category", Limits{}, `{"tag":"TEST.NETWORK.TIMEOUT","category":"TEST","message":"m"}`, []FieldError{fe("/category", "disagrees with tag")}},
		{"tag disagreeing with code", Limits{}, `{"tag":"A.B","category":"A","code":"C","message":"m"}`, []FieldError{fe("/code", "disagrees with tag")}},
		{"tag disagreeing with both", Limits{}, `{"tag":"A.B","category":"X","code":"Y","message":"m"}`, []FieldError{fe("/category", "disagrees"), fe("/code", "disagrees")}},

		{"message over max bytes", Limits{MaxMessage: 16}, `{"category":"A","code":"B","message":"ééééééééx"}`, []FieldError{fe("/message", "at most 16 bytes")}},
		{"message over default max", Limits{}, `{"category":"A","code":"B","message":"` + long(DefaultMaxMessage+1) + `"}`, []FieldError{fe("/message", "at most 65536 bytes")}},

		{"timestamp empty", Limits{}, obj(`,"timestamp":""`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp words", Limits{}, obj(`,"timestamp":"yesterday"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp date only", Limits{}, obj(`,"timestamp":"2024-05-06"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp without seconds", Limits{}, obj(`,"timestamp":"2024-05-06 07:08"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp offset without colon", Limits{}, obj(`,"timestamp":"2024-05-06T07:08:09+0200"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp space and zone", Limits{}, obj(`,"timestamp":"2024-05-06 07:08:09Z"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp comma fraction", Limits{}, obj(`,"timestamp":"2024-05-06T07:08:09,5Z"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp zoneless comma fraction", Limits{}, obj(`,"timestamp":"2024-05-06 07:08:09,5"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp empty fraction", Limits{}, obj(`,"timestamp":"2024-05-06T07:08:09.Z"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp month 13", Limits{}, obj(`,"timestamp":"2024-13-06T07:08:09Z"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp hour 24", Limits{}, obj(`,"timestamp":"2024-05-06T24:00:00Z"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp leading space", Limits{}, obj(`,"timestamp":" 2024-05-06T07:08:09Z"`), []FieldError{fe("/timestamp", "RFC 3339")}},
		{"timestamp Unix seconds", Limits{}, obj(`,"timestamp":1714979289`), []FieldError{fe("/timestamp", "must be a string")}},
		{"timestamp beyond the clock skew", Limits{}, obj(`,"timestamp":"2024-05-06T07:09:09.123457Z"`), []FieldError{fe("/timestamp", "more than 1m0s in the future")}},
		{"timestamp far future", Limits{}, obj(`,"timestamp":"2999-01-01T00:00:00Z"`), []FieldError{fe("/timestamp", "in the future")}},
		{"timestamp beyond a custom skew", Limits{ClockSkew: time.Second}, obj(`,"timestamp":"2024-05-06 07:08:10.123457"`), []FieldError{fe("/timestamp", "more than 1s in the future")}},

		{"session_id too long", Limits{}, obj(`,"session_id":` + str(long(MaxFieldLen+1))), []FieldError{fe("/session_id", "at most 256 bytes")}},
		{"session_id number", Limits{}, obj(`,"session_id":7`), []FieldError{fe("/session_id", "must be a string")}},
		{"source too long", Limits{}, obj(`,"source":` + str(long(MaxFieldLen+1))), []FieldError{fe("/source", "at most 256 bytes")}},
		{"name too long", Limits{}, obj(`,"name":` + str(long(MaxFieldLen+1))), []FieldError{fe("/name", "at most 256 bytes")}},
		{"name disagreeing with source", Limits{}, obj(`,"name":"a","source":"b"`), []FieldError{fe("/name", "disagrees with source")}},

		{"severity unknown", Limits{}, obj(`,"severity":"fatal"`), []FieldError{fe("/severity", "must be one of debug, info, notice, warning, error, critical")}},
		{"severity empty", Limits{}, obj(`,"severity":""`), []FieldError{fe("/severity", "must be one of")}},
		{"severity number", Limits{}, obj(`,"severity":3`), []FieldError{fe("/severity", "must be a string")}},

		{"data array", Limits{}, obj(`,"data":[1,2]`), []FieldError{fe("/data", "must be a JSON object")}},
		{"data string", Limits{}, obj(`,"data":"{}"`), []FieldError{fe("/data", "must be a JSON object")}},
		{"data number", Limits{}, obj(`,"data":5`), []FieldError{fe("/data", "must be a JSON object")}},
		{"data bool", Limits{}, obj(`,"data":false`), []FieldError{fe("/data", "must be a JSON object")}},

		{"id empty", Limits{}, obj(`,"id":""`), []FieldError{fe("/id", "1 to 128")}},
		{"id too long", Limits{}, obj(`,"id":` + str(long(MaxIDLen+1))), []FieldError{fe("/id", "1 to 128")}},
		{"id with space", Limits{}, obj(`,"id":"a b"`), []FieldError{fe("/id", "printable ASCII")}},
		{"id with tab", Limits{}, obj(`,"id":"a\tb"`), []FieldError{fe("/id", "printable ASCII")}},
		{"id with NUL", Limits{}, obj(`,"id":"a\u0000"`), []FieldError{fe("/id", "printable ASCII")}},
		{"id with DEL", Limits{}, obj(`,"id":"a\u007f"`), []FieldError{fe("/id", "printable ASCII")}},
		{"id non-ASCII", Limits{}, obj(`,"id":"café"`), []FieldError{fe("/id", "printable ASCII")}},
		{"id number", Limits{}, obj(`,"id":42`), []FieldError{fe("/id", "must be a string")}},

		{"unknown field", Limits{}, obj(`,"foo":1`), []FieldError{fe("/foo", "not a known field")}},
		{"unknown field null", Limits{}, obj(`,"foo":null`), []FieldError{fe("/foo", "not a known field")}},
		{"field names are case-sensitive", Limits{}, obj(`,"Severity":"info"`), []FieldError{fe("/Severity", "not a known field")}},
		{"stamped field seq", Limits{}, obj(`,"seq":1`), []FieldError{fe("/seq", "not a known field")}},
		{"stamped field received_at", Limits{}, obj(`,"received_at":"2024-05-06T07:00:00Z"`), []FieldError{fe("/received_at", "not a known field")}},
		{"stamped field producer", Limits{}, obj(`,"producer":"p"`), []FieldError{fe("/producer", "not a known field")}},
		{"stamped field subject", Limits{}, obj(`,"subject":"events.A.B"`), []FieldError{fe("/subject", "not a known field")}},
		{"category number", Limits{}, `{"category":5,"code":"B","message":"m"}`, []FieldError{fe("/category", "must be a string")}},
		{"code bool", Limits{}, `{"category":"A","code":true,"message":"m"}`, []FieldError{fe("/code", "must be a string")}},
		{"tag array", Limits{}, `{"tag":["A","B"],"message":"m"}`, []FieldError{fe("/tag", "must be a string")}},
		{"message object", Limits{}, `{"category":"A","code":"B","message":{"text":"m"}}`, []FieldError{fe("/message", "must be a string")}},
		{"source number", Limits{}, obj(`,"source":1`), []FieldError{fe("/source", "must be a string")}},
		{"name number", Limits{}, obj(`,"name":1`), []FieldError{fe("/name", "must be a string")}},

		{"top-level number", Limits{}, `5`, []FieldError{fe("", "must be a JSON object")}},
		{"top-level string", Limits{}, `"A.B"`, []FieldError{fe("", "must be a JSON object")}},
		{"top-level null", Limits{}, `null`, []FieldError{fe("", "must be a JSON object")}},
		{"top-level true", Limits{}, `true`, []FieldError{fe("", "must be a JSON object")}},

		{"several rules at once", Limits{}, `{"category":"A B","code":"B","timestamp":"x","severity":"loud","data":[],"id":""}`, []FieldError{
			fe("/category", "ASCII"), fe("/timestamp", "RFC 3339"),
			fe("/severity", "must be one of"), fe("/data", "object"), fe("/id", "1 to 128"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := newTestParser(tt.limits).ParseBody([]byte(tt.body), JSON)
			call := fmt.Sprintf("ParseBody(%.200s)", tt.body)
			if got != nil {
				t.Errorf("%s = %d events; want none", call, len(got))
			}
			wantFieldErrors(t, call, err, tt.want)
		})
	}
}

// TestParseBodySyntax covers bodies that are not acceptable JSON.
func TestParseBodySyntax(t *testing.T) {
	tests := []struct {
		name        string
		format      Format
		body        string
		wantPointer string
		wantDetail  string
	}{
		{"empty body", JSON, ``, "", "unexpected end"},
		{"blank body", JSON, " \n ", "", "unexpected end"},
		{"truncated object", JSON, `{"category":"A"`, "", ""},
		{"missing value", JSON, `{"category":}`, "/category", ""},
		{"single quotes", JSON, `{'category':'A'}`, "", ""},
		{"trailing comma", JSON, `{"category":"A",}`, "", ""},
		{"bare word", JSON, `category`, "", ""},
		{"NaN", JSON, obj(`,"data":{"x":NaN}`), "/data/x", ""},
		{"comment", JSON, `// hi` + "\n" + obj(""), "", ""},
		{"duplicate key", JSON, `{"category":"A","category":"A","code":"B","message":"m"}`, "/category", "duplicate object key"},
		{"duplicate key differing value", JSON, `{"message":"m","category":"A","code":"B","message":"n"}`, "/message", "duplicate object key"},
		{"duplicate key in data", JSON, obj(`,"data":{"a":1,"a":2}`), "/data/a", "duplicate object key"},
		{"duplicate key via escape", JSON, `{"category":"A","c\u0061tegory":"A","code":"B","message":"m"}`, "/category", "duplicate object key"},
		{"trailing object", JSON, obj("") + obj(""), "", ""},
		{"trailing object after space", JSON, obj("") + "\n" + obj(""), "", ""},
		{"trailing garbage", JSON, obj("") + "x", "", ""},
		{"trailing bracket", JSON, obj("") + "]", "", ""},
		{"trailing data after array", JSON, "[" + obj("") + "] []", "", ""},
		{"invalid UTF-8 in message", JSON, obj(`,"session_id":"a` + "\xff" + `"`), "/session_id", "invalid UTF-8"},
		{"invalid UTF-8 in key", JSON, `{"categ` + "\xc3" + `":"A"}`, "", "invalid UTF-8"},
		{"invalid UTF-8 in data", JSON, obj(`,"data":{"a":"` + "\xed\xa0\x80" + `"}`), "/data/a", "invalid UTF-8"},
		{"array truncated", JSON, "[" + obj(""), "", ""},
		{"array trailing comma", JSON, "[" + obj("") + ",]", "", ""},
		{"lone surrogate escape", JSON, obj(`,"source":"\ud800"`), "/source", ""},
		{"NDJSON lone surrogate escape", NDJSON, obj(`,"source":"\udc00x"`), "/0/source", ""},
		{"array lone surrogate escape", JSON, "[" + obj(`,"data":{"\ud800":1}`) + "]", "/0/data", ""},
		{"array malformed item", JSON, "[" + obj("") + "," + obj("") + `,{"category":}]`, "/2", ""},
		{"array duplicate key in item", JSON, "[" + obj("") + `,{"code":"B","code":"B"}]`, "/1/code", "duplicate object key"},
		{"array invalid UTF-8 in item", JSON, "[" + obj("") + "," + obj(`,"source":"`+"\x80"+`"`) + "]", "/1/source", "invalid UTF-8"},
		{"NDJSON malformed line", NDJSON, obj("") + "\n" + `{"category":}` + "\n", "/1/category", "line 2"},
		{"NDJSON malformed line after blank lines", NDJSON, obj("") + "\n\n\n" + `{"category":"A"` + "\n", "/1", "line 4"},
		{"NDJSON two objects on a line", NDJSON, obj("") + " " + obj("") + "\n", "/0", ""},
		{"NDJSON object split over lines", NDJSON, "{\n" + `"category":"A","code":"B","message":"m"}` + "\n", "/0", ""},
		{"NDJSON duplicate key", NDJSON, obj("") + "\n" + `{"code":"B","code":"B"}`, "/1/code", "duplicate object key"},
		{"NDJSON invalid UTF-8", NDJSON, obj(`,"source":"`+"\xff"+`"`) + "\n", "/0/source", "invalid UTF-8"},
		// Syntax is checked before rules: a malformed line with an unknown
		// field is still a syntax error.
		{"NDJSON malformed line with unknown field", NDJSON, `{"foo":1,"category":}`, "/0/category", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := newTestParser(Limits{}).ParseBody([]byte(tt.body), tt.format)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseBody(%q) error = %v (%T); want *SyntaxError", tt.body, err, err)
			}
			if got != nil {
				t.Errorf("ParseBody(%q) = %d events; want none", tt.body, len(got))
			}
			if !strings.HasPrefix(se.Pointer, tt.wantPointer) {
				t.Errorf("ParseBody(%q) error pointer = %q; want prefix %q", tt.body, se.Pointer, tt.wantPointer)
			}
			if !strings.Contains(se.Detail, tt.wantDetail) {
				t.Errorf("ParseBody(%q) error detail = %q; want it to contain %q", tt.body, se.Detail, tt.wantDetail)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "malformed JSON") {
				t.Errorf("ParseBody(%q) error text = %q; want prefix %q", tt.body, msg, "malformed JSON")
			}
		})
	}
}

// lines returns n event objects, the i-th with message "m<i>".
func items(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = `{"category":"A","code":"B","message":"m` + strconv.Itoa(i) + `"}`
	}
	return out
}

func array(items []string) string { return "[" + strings.Join(items, ",") + "]" }

func ndjson(items []string) string { return strings.Join(items, "\n") + "\n" }

func TestParseBodyBatch(t *testing.T) {
	five := items(5)
	tests := []struct {
		name   string
		format Format
		body   string
		batch  bool
		n      int
	}{
		{"object", JSON, five[0], false, 1},
		{"array of one", JSON, array(five[:1]), true, 1},
		{"array of five", JSON, array(five), true, 5},
		{"array with whitespace", JSON, " [\n" + strings.Join(five, ",\n ") + "\n] \n", true, 5},
		{"NDJSON of one", NDJSON, five[0], true, 1},
		{"NDJSON of five", NDJSON, ndjson(five), true, 5},
		{"NDJSON without final newline", NDJSON, strings.Join(five, "\n"), true, 5},
		{"NDJSON with CRLF and blank lines", NDJSON, "\r\n" + strings.Join(five, "\r\n\r\n") + "\r\n\r\n", true, 5},
		{"NDJSON with indented lines", NDJSON, "  " + strings.Join(five, "  \n\t"), true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, batch, err := newTestParser(Limits{}).ParseBody([]byte(tt.body), tt.format)
			if err != nil {
				t.Fatalf("ParseBody(%q) error = %v", tt.body, err)
			}
			if batch != tt.batch {
				t.Errorf("ParseBody(%q) batch = %v; want %v", tt.body, batch, tt.batch)
			}
			var want []Event
			for i := range tt.n {
				e := base()
				e.ID = "gen-" + strconv.Itoa(i+1)
				e.Message = "m" + strconv.Itoa(i)
				want = append(want, e)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseBody(%q) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestParseBodyBatchLimits(t *testing.T) {
	p := newTestParser(Limits{MaxBatch: 3})
	tests := []struct {
		name   string
		format Format
		body   string
		want   string // detail of the one error at pointer ""; empty if valid
	}{
		{"empty array", JSON, `[]`, "at least one event"},
		{"empty array with spaces", JSON, " [ \n ] ", "at least one event"},
		{"empty NDJSON", NDJSON, ``, "at least one event"},
		{"blank NDJSON", NDJSON, "\n \r\n\t\n", "at least one event"},
		{"array at max", JSON, array(items(3)), ""},
		{"array over max", JSON, array(items(4)), "at most 3 events, got 4"},
		{"NDJSON at max", NDJSON, ndjson(items(3)), ""},
		{"NDJSON over max", NDJSON, ndjson(items(4)), "at most 3 events, got 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, batch, err := p.ParseBody([]byte(tt.body), tt.format)
			if !batch {
				t.Errorf("ParseBody(%q) batch = false; want true", tt.body)
			}
			if tt.want == "" {
				if err != nil || len(got) != 3 {
					t.Errorf("ParseBody(%q) = %d events, %v; want 3, nil", tt.body, len(got), err)
				}
				return
			}
			if got != nil {
				t.Errorf("ParseBody(%q) = %d events; want none", tt.body, len(got))
			}
			wantFieldErrors(t, fmt.Sprintf("ParseBody(%q)", tt.body), err, []FieldError{{Pointer: "", Detail: tt.want}})
		})
	}

	// The default limit.
	body := array(items(DefaultMaxBatch + 1))
	_, _, err := newTestParser(Limits{}).ParseBody([]byte(body), JSON)
	wantFieldErrors(t, "ParseBody(1001 events)", err, []FieldError{{Pointer: "", Detail: "at most 1000 events, got 1001"}})
}

// TestParseBodyAllOrNothing checks that one bad item rejects the whole
// batch and that the errors of every bad item are reported with the item's
// index in the pointer.
func TestParseBodyAllOrNothing(t *testing.T) {
	tests := []struct {
		name string
		bad  map[int]string // item index → replacement
		want []FieldError
	}{
		{
			name: "one bad timestamp",
			bad:  map[int]string{3: obj(`,"timestamp":"soon"`)},
			want: []FieldError{{"/3/timestamp", "RFC 3339"}},
		},
		{
			name: "first and last bad",
			bad:  map[int]string{0: `{"code":"B","message":"m"}`, 5: obj(`,"severity":"loud"`)},
			want: []FieldError{{"/0/category", "required"}, {"/5/severity", "must be one of"}},
		},
		{
			name: "several rules in several items",
			bad: map[int]string{
				1: obj(`,"foo":1`),
				2: `{"category":"A B","code":"B"}`,
				4: `7`,
			},
			want: []FieldError{
				{"/1/foo", "not a known field"},
				{"/2/category", "ASCII"},
				{"/4", "must be a JSON object"},
			},
		},
		{
			name: "item in the future",
			bad:  map[int]string{2: obj(`,"timestamp":"2030-01-01T00:00:00Z"`)},
			want: []FieldError{{"/2/timestamp", "in the future"}},
		},
		{
			name: "null item",
			bad:  map[int]string{1: `null`},
			want: []FieldError{{"/1", "must be a JSON object"}},
		},
	}
	for _, tt := range tests {
		its := items(6)
		for i, s := range tt.bad {
			its[i] = s
		}
		for _, f := range []struct {
			name   string
			format Format
			body   string
		}{{"array", JSON, array(its)}, {"NDJSON", NDJSON, ndjson(its)}} {
			t.Run(tt.name+"/"+f.name, func(t *testing.T) {
				got, batch, err := newTestParser(Limits{}).ParseBody([]byte(f.body), f.format)
				if got != nil {
					t.Errorf("ParseBody(%s) = %d events; want none", f.body, len(got))
				}
				if !batch {
					t.Errorf("ParseBody(%s) batch = false; want true", f.body)
				}
				wantFieldErrors(t, fmt.Sprintf("ParseBody(%s)", f.body), err, tt.want)
			})
		}
	}

	// A single object's pointers carry no index.
	_, _, err := newTestParser(Limits{}).ParseBody([]byte(obj(`,"timestamp":"soon"`)), JSON)
	wantFieldErrors(t, "ParseBody(object)", err, []FieldError{{"/timestamp", "RFC 3339"}})
}

// TestParseBodyErrorsBounded checks that what a rejected request is told
// stays small however much it gets wrong: the first MaxErrors rules broken
// plus a count of the rest, with pointers and echoed values cut to about
// MaxEchoLen bytes.
func TestParseBodyErrorsBounded(t *testing.T) {
	// repeat returns an array, or NDJSON, of n copies of item.
	repeat := func(f Format, n int, item string) string {
		its := make([]string, n)
		for i := range its {
			its[i] = item
		}
		if f == NDJSON {
			return ndjson(its)
		}
		return array(its)
	}
	unknown := func(key string) string { return obj("," + str(key) + ":1") }
	const severalRules = `{"category":"A B","code":"B","severity":"loud","data":[],"id":""}` // 4 rules
	tests := []struct {
		name    string
		format  Format
		body    string
		listed  int
		more    int
		maxJSON int // bytes of the error's JSON encoding
	}{
		{"1000 unknown 900-byte keys", JSON, repeat(JSON, 1000, unknown(strings.Repeat("k", 900))), MaxErrors, 900, 32 << 10},
		{"1000 unknown 900-byte keys in NDJSON", NDJSON, repeat(NDJSON, 1000, unknown(strings.Repeat("k", 900))), MaxErrors, 900, 32 << 10},
		{"1000 unknown keys of 450 two-byte runes", JSON, repeat(JSON, 1000, unknown(strings.Repeat("é", 450))), MaxErrors, 900, 32 << 10},
		{"1000 unknown keys of 225 four-byte runes", JSON, repeat(JSON, 1000, unknown(strings.Repeat("😀", 225))), MaxErrors, 900, 32 << 10},
		// Each byte of these keys takes 6 bytes in JSON (\u003c, \u0001):
		// the worst case.
		{"1000 unknown keys JSON escapes", JSON, repeat(JSON, 1000, unknown(strings.Repeat("<\x01", 450))), MaxErrors, 900, 64 << 10},
		{"1000 900-byte timestamps JSON escapes", JSON, repeat(JSON, 1000, obj(`,"timestamp":`+str(strings.Repeat("<\x01", 450)))), MaxErrors, 900, 64 << 10},
		{"1000 900-byte timestamps", JSON, repeat(JSON, 1000, obj(`,"timestamp":"`+strings.Repeat("t", 900)+`"`)), MaxErrors, 900, 32 << 10},
		{"1000 numbers of 900 digits", JSON, repeat(JSON, 1000, obj(`,"data":{"`+strings.Repeat("n", 900)+`":1`+strings.Repeat("0", 900)+`}`)), MaxErrors, 900, 32 << 10},
		{"several rules in each of 1000 events", JSON, repeat(JSON, 1000, severalRules), MaxErrors, 3900, 32 << 10},
		{"many bad numbers in one event", JSON, obj(`,"data":{"a":[` + strings.Repeat("1e999,", 999) + `1e999]}`), MaxErrors, 900, 32 << 10},
		{"exactly MaxErrors", JSON, repeat(JSON, MaxErrors, unknown("k")), MaxErrors, 0, 32 << 10},
		{"one more than MaxErrors", JSON, repeat(JSON, MaxErrors+1, unknown("k")), MaxErrors, 1, 32 << 10},
		{"MaxErrors over 25 events", JSON, repeat(JSON, 25, severalRules), MaxErrors, 0, 32 << 10},
		{"MaxErrors+1 in one event", JSON, obj(`,"data":{"a":[` + strings.Repeat("1e999,", MaxErrors) + `1e999]}`), MaxErrors, 1, 32 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := newTestParser(Limits{}).ParseBody([]byte(tt.body), tt.format)
			call := fmt.Sprintf("ParseBody(%.100s…)", tt.body)
			var ve *ValidationError
			if !errors.As(err, &ve) || got != nil {
				t.Fatalf("%s = %d events, %v; want a *ValidationError", call, len(got), err)
			}
			if len(ve.Errors) != tt.listed || ve.More != tt.more {
				t.Errorf("%s lists %d errors and %d more; want %d and %d", call, len(ve.Errors), ve.More, tt.listed, tt.more)
			}
			if !strings.HasPrefix(ve.Errors[0].Pointer, "/0") && !strings.HasPrefix(ve.Errors[0].Pointer, "/data") {
				t.Errorf("%s first error at %q; want the first event's", call, ve.Errors[0].Pointer)
			}
			for _, fe := range ve.Errors {
				if len(fe.Pointer) > MaxEchoLen+len("…") || !utf8.ValidString(fe.Pointer) || !strings.HasPrefix(fe.Pointer, "/") {
					t.Fatalf("%s pointer %q (%d bytes); want a valid UTF-8 pointer of at most %d bytes", call, fe.Pointer, len(fe.Pointer), MaxEchoLen+len("…"))
				}
				if len(fe.Detail) > 512 || !utf8.ValidString(fe.Detail) {
					t.Fatalf("%s detail %q (%d bytes); want valid UTF-8 of at most 512 bytes", call, fe.Detail, len(fe.Detail))
				}
			}
			b, merr := json.Marshal(ve)
			if merr != nil {
				t.Fatalf("json.Marshal(%s error) error = %v", call, merr)
			}
			if len(b) >= tt.maxJSON {
				t.Errorf("%s error encodes to %d bytes of JSON; want under %d", call, len(b), tt.maxJSON)
			}
			if more := fmt.Sprintf("; and %d more", tt.more); tt.more > 0 && !strings.HasSuffix(err.Error(), more) {
				t.Errorf("%s error text ends %q; want %q", call, err.Error()[max(0, len(err.Error())-40):], more)
			}
		})
	}
}

// TestParseBodySyntaxErrorBounded checks that a syntax error's pointer is
// cut to about MaxEchoLen bytes too.
func TestParseBodySyntaxErrorBounded(t *testing.T) {
	key := str(strings.Repeat("ü", 450))
	dup := `{"category":"A","code":"B","message":"m","data":{` + key + `:1,` + key + `:2}}`
	for _, tt := range []struct {
		name   string
		format Format
		body   string
		prefix string
	}{
		{"object", JSON, dup, "/data/ü"},
		{"array", JSON, array([]string{obj(""), dup}), "/1/data/ü"},
		{"NDJSON", NDJSON, ndjson([]string{obj(""), dup}), "/1/data/ü"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newTestParser(Limits{}).ParseBody([]byte(tt.body), tt.format)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseBody(duplicate long key) error = %v (%T); want *SyntaxError", err, err)
			}
			if len(se.Pointer) > MaxEchoLen+len("…") || !utf8.ValidString(se.Pointer) || !strings.HasPrefix(se.Pointer, tt.prefix) {
				t.Errorf("ParseBody(duplicate long key) pointer %q (%d bytes); want %q… of at most %d bytes", se.Pointer, len(se.Pointer), tt.prefix, MaxEchoLen+len("…"))
			}
		})
	}
}

func TestParseBodyStamps(t *testing.T) {
	// A clock in another zone: received_at is still UTC.
	loc := time.FixedZone("UTC+5", 5*3600)
	calls := 0
	p := NewParser(Limits{}, func() time.Time { calls++; return testNow.In(loc) })
	got, _, err := p.ParseBody([]byte(array(items(3))), JSON)
	if err != nil {
		t.Fatalf("ParseBody error = %v", err)
	}
	if calls != 1 {
		t.Errorf("ParseBody read the clock %d times; want once per body", calls)
	}
	for i, e := range got {
		if !e.ReceivedAt.Equal(nowUS) || e.ReceivedAt.Location() != time.UTC {
			t.Errorf("event %d ReceivedAt = %v; want %v", i, e.ReceivedAt, nowUS)
		}
		if !e.Timestamp.Equal(e.ReceivedAt) {
			t.Errorf("event %d Timestamp = %v; want ReceivedAt %v when absent", i, e.Timestamp, e.ReceivedAt)
		}
		if e.Seq != 0 || e.Producer != "" {
			t.Errorf("event %d Seq, Producer = %d, %q; want them left to the publisher", i, e.Seq, e.Producer)
		}
	}

	// A nil clock uses the time of day.
	before := time.Now().Add(-time.Second)
	got, _, err = NewParser(Limits{}, nil).ParseBody([]byte(obj("")), JSON)
	if err != nil {
		t.Fatalf("ParseBody error = %v", err)
	}
	if ra := got[0].ReceivedAt; ra.Before(before) || ra.After(time.Now().Add(time.Second)) {
		t.Errorf("ReceivedAt = %v with a nil clock; want about now", ra)
	}
}

// TestParseBodyGeneratedIDs uses the real generator: UUIDv7, unique and in
// creation order.
func TestParseBodyGeneratedIDs(t *testing.T) {
	p := NewParser(Limits{}, nil)
	var ids []string
	for range 5 {
		body := array(items(DefaultMaxBatch))
		got, _, err := p.ParseBody([]byte(body), JSON)
		if err != nil {
			t.Fatalf("ParseBody error = %v", err)
		}
		for _, e := range got {
			ids = append(ids, e.ID)
		}
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || u.String() != id {
			t.Fatalf("generated ID %q: version %d, %v; want a canonical UUIDv7", id, u.Version(), err)
		}
		if seen[id] {
			t.Fatalf("generated ID %q twice", id)
		}
		seen[id] = true
		if err := validID(id); err != nil {
			t.Errorf("generated ID %q breaks the producer ID rule: %v", id, err)
		}
	}
	// UUIDv7 strings sort by creation time; google/uuid keeps them
	// monotonic within a process.
	if !slices.IsSorted(ids) {
		t.Errorf("generated IDs are not in increasing order")
	}

	// A producer's ID is kept as is, next to generated ones.
	got, _, err := p.ParseBody([]byte(array([]string{obj(`,"id":"mine"`), obj("")})), JSON)
	if err != nil {
		t.Fatalf("ParseBody error = %v", err)
	}
	if got[0].ID != "mine" || got[1].ID <= ids[len(ids)-1] {
		t.Errorf("IDs = %q, %q; want \"mine\" and a generated ID after %q", got[0].ID, got[1].ID, ids[len(ids)-1])
	}
}

// TestParseBodyDoesNotAliasBody checks that events stay valid when the
// caller reuses the body's buffer.
func TestParseBodyDoesNotAliasBody(t *testing.T) {
	for _, f := range []Format{JSON, NDJSON} {
		body := []byte(array([]string{obj(`,"data":{"k":"v"},"source":"s"`)}))
		if f == NDJSON {
			body = []byte(obj(`,"data":{"k":"v"},"source":"s"`))
		}
		got, _, err := newTestParser(Limits{}).ParseBody(body, f)
		if err != nil {
			t.Fatalf("ParseBody(%s) error = %v", body, err)
		}
		for i := range body {
			body[i] = 'X'
		}
		if string(got[0].Data) != `{"k":"v"}` || got[0].Source != "s" || got[0].Message != "m" {
			t.Errorf("after overwriting the body: Data, Source, Message = %s, %q, %q; want {\"k\":\"v\"}, \"s\", \"m\"",
				got[0].Data, got[0].Source, got[0].Message)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: error
	}{
		{"2024-05-06T07:08:09Z", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{"2024-05-06T07:08:09.1Z", time.Date(2024, 5, 6, 7, 8, 9, 100_000_000, time.UTC)},
		{"2024-05-06T07:08:09.1234567Z", time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)},
		{"2024-05-06T07:08:09+01:00", time.Date(2024, 5, 6, 6, 8, 9, 0, time.UTC)},
		{"2024-05-06T07:08:09.5-01:30", time.Date(2024, 5, 6, 8, 38, 9, 500_000_000, time.UTC)},
		{"2024-05-06 07:08:09", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{"2024-05-06 07:08:09.000001", time.Date(2024, 5, 6, 7, 8, 9, 1000, time.UTC)},
		{"2024-05-06 07:08:09.0000009", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{"2024-05-06T07:08:09.123", time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)},
		{"2024-02-29 00:00:00", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"", time.Time{}},
		{"2023-02-29 00:00:00", time.Time{}},
		{"2024-05-06T07:08:09", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{"2024-05-06T07:08:09z", time.Time{}},
		{"2024-05-06t07:08:09Z", time.Time{}},
		{"2024-05-06T07:08:09,1Z", time.Time{}},
		{"2024-05-06 07:08:09,1", time.Time{}},
		{"2024-05-06T07:08:09 +01:00", time.Time{}},
		{"2024-05-06 07:08:09 UTC", time.Time{}},
		{"Mon, 06 May 2024 07:08:09 GMT", time.Time{}},
		{"1714979289", time.Time{}},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("ParseTime(%q) = %v, nil; want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
				t.Errorf("ParseTime(%q) error = %q; want it to quote the input", tt.in, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&SyntaxError{Detail: "unexpected end of JSON input"}, "malformed JSON: unexpected end of JSON input"},
		{&SyntaxError{Pointer: "/2/code", Detail: "x"}, "malformed JSON at /2/code: x"},
		{&ValidationError{Errors: []FieldError{{"/0/code", "is required"}, {"/1/id", "bad"}}}, "invalid events: /0/code: is required; /1/id: bad"},
		{&ValidationError{Errors: []FieldError{{"/0/code", "is required"}}, More: 7}, "invalid events: /0/code: is required; and 7 more"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
}

func TestElide(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 8, ""},
		{"/a/b", 8, "/a/b"},
		{"/abcdefg", 8, "/abcdefg"},
		{"/abcdefgh", 8, "/abc…efgh"},
		{"/0/" + strings.Repeat("k", 900), 8, "/0/k…kkkk"},
		{"/0/" + strings.Repeat("k", 900), 64, "/0/" + strings.Repeat("k", 29) + "…" + strings.Repeat("k", 32)},
		// UTF-8: never half a rune.
		{"/éééééé", 8, "/é…éé"},
		{"/😀😀😀", 8, "/…😀"},
		{"😀😀😀", 3, "…"},
		// JSON pointer escapes stay whole.
		{"/a~1b~0c~1d", 8, "/a~1…c~1d"},
		{"/ab~1c~0de", 8, "/ab…~0de"},
		{"/~1~1~1~1~1x", 8, "/~1…~1x"},
		{"/~0~0~0~0~0~", 7, "/~0…~0~"},
	}
	for _, tt := range tests {
		got := elide(tt.s, tt.n)
		if got != tt.want {
			t.Errorf("elide(%q, %d) = %q; want %q", tt.s, tt.n, got, tt.want)
		}
		if len(got) > tt.n+len("…") || !utf8.ValidString(got) {
			t.Errorf("elide(%q, %d) = %q (%d bytes); want valid UTF-8 of at most %d bytes", tt.s, tt.n, got, len(got), tt.n+len("…"))
		}
	}
}

func TestNewParserDefaults(t *testing.T) {
	tests := []struct {
		in, want Limits
	}{
		{Limits{}, Limits{DefaultMaxMessage, DefaultMaxBatch, DefaultClockSkew}},
		{Limits{-1, -1, -1}, Limits{DefaultMaxMessage, DefaultMaxBatch, DefaultClockSkew}},
		{Limits{10, 2, time.Second}, Limits{10, 2, time.Second}},
	}
	for _, tt := range tests {
		if got := NewParser(tt.in, nil).limits; got != tt.want {
			t.Errorf("NewParser(%+v).limits = %+v; want %+v", tt.in, got, tt.want)
		}
	}
}

// benchBody returns an array of n realistic events.
func benchBody(n int) []byte {
	its := make([]string, n)
	for i := range its {
		its[i] = fmt.Sprintf(`{"category":"DATABASE","code":"CONNECTION_LOST","message":"lost connection to db-%d after 3 attempts","timestamp":"2024-05-06T07:08:09.%06dZ","session_id":"sess-%d","source":"billing-api","severity":"error","data":{"host":"db-%d","port":5432,"attempts":[1,2,3],"tls":true}}`, i, i, i/10, i%4)
	}
	if n == 1 {
		return []byte(its[0])
	}
	return []byte(array(its))
}

func BenchmarkParseBody(b *testing.B) {
	for _, bb := range []struct {
		name   string
		format Format
		body   []byte
		n      int
	}{
		{"array100", JSON, benchBody(100), 100},
		{"ndjson100", NDJSON, []byte(strings.ReplaceAll(strings.Trim(string(benchBody(100)), "[]"), "},{\"category", "}\n{\"category")), 100},
		{"single", JSON, benchBody(1), 1},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := NewParser(Limits{}, func() time.Time { return testNow })
			if got, _, err := p.ParseBody(bb.body, bb.format); err != nil || len(got) != bb.n {
				b.Fatalf("ParseBody = %d events, %v; want %d, nil", len(got), err, bb.n)
			}
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := p.ParseBody(bb.body, bb.format); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bb.n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// FuzzParseBody checks ParseBody's contract on arbitrary bodies: either
// every event, each with a valid subject, or a *SyntaxError or
// *ValidationError and no events.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{
		obj(""), array(items(3)), ndjson(items(2)), `[]`, `{}`, `null`, `[1]`,
		obj(`,"tag":"A.B","timestamp":"2024-05-06 07:00:00.5","data":{"a":[1]}`),
		`{"category":"A","category":"A"}`, obj("") + "x", `{"message":"` + "\xff" + `"}`,
		obj(`,"data":{"a":[1e999,-0.5e-999],"b\\":"\"1","c":` + strings.Repeat("9", 70) + `}`),
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, nd bool) {
		format := JSON
		if nd {
			format = NDJSON
		}
		events, _, err := newTestParser(Limits{MaxBatch: 50}).ParseBody(body, format)
		if err != nil {
			var se *SyntaxError
			var ve *ValidationError
			if !errors.As(err, &se) && !errors.As(err, &ve) {
				t.Fatalf("ParseBody(%q) error = %v (%T); want *SyntaxError or *ValidationError", body, err, err)
			}
			if events != nil {
				t.Fatalf("ParseBody(%q) = %d events and an error", body, len(events))
			}
			if ve != nil && (len(ve.Errors) == 0 || len(ve.Errors) > MaxErrors) {
				t.Fatalf("ParseBody(%q) = ValidationError listing %d errors; want 1 to %d", body, len(ve.Errors), MaxErrors)
			}
			return
		}
		if len(events) == 0 {
			t.Fatalf("ParseBody(%q) = no events and no error", body)
		}
		for _, e := range events {
			if e.Subject != "events."+e.Tag || e.Tag != e.Category+"."+e.Code || len(e.Message) > DefaultMaxMessage || e.Severity == 0 || e.ID == "" {
				t.Fatalf("ParseBody(%q) event %+v breaks an invariant", body, e)
			}
			if e.Timestamp.After(nowUS.Add(DefaultClockSkew)) {
				t.Fatalf("ParseBody(%q) timestamp %v is in the future", body, e.Timestamp)
			}
			if _, err := Encode(&e); err != nil {
				t.Fatalf("Encode(%+v) error = %v", e, err)
			}
		}
	})
}
