package theeye

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/subject"
)

// Event is an event as the applications of The Eye and of the session
// collector send it. Pointers tell "absent or null" from "empty".
type Event struct {
	SessionID *string        `json:"session_id"`
	Category  *string        `json:"category"`
	Name      *string        `json:"name"`
	Data      jsontext.Value `json:"data"`
	Timestamp *string        `json:"timestamp"`
}

// Keys of the event's data that keep what the mapping changed.
const (
	// KeyCategory holds the category as sent, when its token differs.
	KeyCategory = "_category"
	// KeyName holds the name as sent, whenever there is one (the code
	// comes from it).
	KeyName = "_name"
	// KeyData holds data that is not a JSON object, or an object that
	// has one of these keys itself.
	KeyData = "_data"
)

// DefaultCode is the code of an event sent without a name.
const DefaultCode = "EVENT"

// IDPrefix starts the ids of translated events.
const IDPrefix = "eye-"

// codeOf is the EventSync code of a name as sent: itself when it is a
// valid code, else subject.Token of it.
func codeOf(name string) string { return subject.Token(name) }

// Translated is an event of The Eye as POST /v1/events takes it.
type Translated struct {
	ID        string         `json:"id,omitempty"`
	Category  *string        `json:"category,omitempty"` // absent when it was: EventSync says it is required
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Timestamp *string        `json:"timestamp,omitempty"`
	SessionID *string        `json:"session_id,omitempty"`
	Data      jsontext.Value `json:"data,omitempty"`
}

// Translate maps an event of The Eye onto an EventSync event:
//
//	category    subject.MapCategory of the category
//	code        subject.Token of the name; no name: EVENT
//	message     empty
//	timestamp   as sent (EventSync parses it and refuses one in the future)
//	session_id  as sent
//	data        the data object, with _category (the category as sent, when
//	            its token differs) and _name (the name as sent) added; data
//	            that is not an object, or an object that has one of
//	            _category, _name or _data itself, goes under _data
//	id          NaturalKey, when the event has a timestamp
func Translate(e Event) Translated {
	t := Translated{SessionID: e.SessionID, Timestamp: e.Timestamp, ID: NaturalKey(e), Code: DefaultCode}
	var keep []member
	if e.Category != nil {
		c := subject.MapCategory(*e.Category)
		t.Category = &c
		if c != *e.Category {
			keep = append(keep, member{KeyCategory, *e.Category})
		}
	}
	if e.Name != nil && *e.Name != "" {
		t.Code = codeOf(*e.Name)
		keep = append(keep, member{KeyName, *e.Name})
	}
	t.Data = withMembers(e.Data, keep)
	return t
}

type member struct{ key, value string }

// withMembers returns data with the members added first: data itself
// when there are none, an object of them when data is absent or null,
// data as _data beside them when it is not an object or has one of the
// keys the translation adds itself. The object's own members are kept
// byte for byte and in order.
func withMembers(data jsontext.Value, add []member) jsontext.Value {
	absent := len(data) == 0 || data.Kind() == 'n'
	wrap := !absent && (data.Kind() != '{' || reservedKeys(data))
	if len(add) == 0 && !wrap {
		return data
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for _, m := range add {
		k, _ := json.Marshal(m.key)
		v, _ := json.Marshal(m.value)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		b.WriteByte(',')
	}
	switch {
	case wrap:
		b.WriteString(`"` + KeyData + `":`)
		b.Write(data)
	case !absent:
		b.Write(bytes.TrimSpace(data[1 : len(data)-1])) // the object's members
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte(","))
	return append(out, '}')
}

// reservedKeys reports whether the object data has one of the keys the
// translation adds.
func reservedKeys(data jsontext.Value) bool {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if _, err := dec.ReadToken(); err != nil {
		return false
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return false
		}
		switch tok.String() {
		case KeyCategory, KeyName, KeyData:
			return true
		}
		if err := dec.SkipValue(); err != nil {
			return false
		}
	}
	return false
}

// NaturalKey is the id of an event of The Eye: IDPrefix and the hex
// SHA-256 of its session_id, category, name and timestamp, each prefixed
// by its length, so that the event sent twice is one event (The Eye
// deduplicated on these four; EventSync does on ids, per producer, inside
// the dedupe window). A timestamp EventSync can parse counts as the
// instant it names ("…T07:00:00Z" and "…T07:00:00+00:00" are one key).
// An event without a timestamp has no natural key: "" (EventSync assigns
// an id and stamps the time received).
func NaturalKey(e Event) string {
	if e.Timestamp == nil {
		return ""
	}
	ts := *e.Timestamp
	if t, err := event.ParseTime(ts); err == nil {
		ts = t.Format(time.RFC3339Nano)
	}
	h := sha256.New()
	for _, p := range []*string{e.SessionID, e.Category, e.Name, &ts} {
		var s string
		if p != nil {
			s = *p
		}
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return IDPrefix + hex.EncodeToString(h.Sum(nil))
}

// Original is a stored EventSync event as its sender wrote it: the
// category and name from _category and _name when the translation kept
// them (else the category and the code), the data without the keys the
// translation added (the value of _data when it holds the data). It
// serves events that came another way too: their category and code are
// the category and name.
type Original struct {
	SessionID string          `json:"session_id"`
	Category  string          `json:"category"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
	Timestamp time.Time       `json:"timestamp"`
}

// Restore returns the original of a stored event.
func Restore(e event.Event) Original {
	o := Original{SessionID: e.SessionID, Category: e.Category, Name: e.Code, Timestamp: e.Timestamp, Data: json.RawMessage(`{}`)}
	if len(e.Data) == 0 {
		return o
	}
	o.Data = e.Data
	dec := jsontext.NewDecoder(bytes.NewReader(e.Data))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return o
	}
	// The members other than the translation's, byte for byte and in
	// order; or what it kept under _data.
	var (
		rest bytes.Buffer
		kept json.RawMessage
	)
	rest.WriteByte('{')
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return o
		}
		key := tok.String() // before the next read voids tok
		v, err := dec.ReadValue()
		if err != nil {
			return o
		}
		var s string
		switch {
		case key == KeyCategory && json.Unmarshal(v, &s) == nil:
			o.Category = s
		case key == KeyName && json.Unmarshal(v, &s) == nil:
			o.Name = s
		case key == KeyData:
			kept = bytes.Clone(v)
		default:
			if rest.Len() > 1 {
				rest.WriteByte(',')
			}
			k, _ := jsontext.AppendQuote(nil, key)
			rest.Write(k)
			rest.WriteByte(':')
			rest.Write(v)
		}
	}
	rest.WriteByte('}')
	o.Data = rest.Bytes()
	if kept != nil {
		o.Data = kept
	}
	return o
}
