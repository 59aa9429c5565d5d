package eventserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// envelope is the event server's event as a producer sends it.
type envelope struct {
	Event struct {
		Name    string          `json:"name"`
		Version json.RawMessage `json:"version"`
	} `json:"event"`
	System  json.RawMessage `json:"system"`
	Trigger json.RawMessage `json:"trigger"`
	Payload json.RawMessage `json:"payload"`
}

// The data keys that keep the envelope beside the payload.
const (
	keyVersion = "_version"
	keySystem  = "_system"
	keyTrigger = "_trigger"
)

var reserved = []string{keyVersion, keySystem, keyTrigger}

// member is one member of a JSON object.
type member struct {
	key   string
	value json.RawMessage
}

// members returns the members of the JSON object raw in their order; null
// or nothing is an empty object.
func members(raw json.RawMessage) ([]member, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string) // object keys are strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the object")
	}
	return out, nil
}

// object encodes members as a JSON object in their order.
func object(ms []member) []byte {
	b := []byte{'{'}
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := marshal(m.key) // a string always encodes
		b = append(b, k...)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return append(b, '}')
}

// present reports whether a member was sent with a value other than null.
func present(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && string(v) != "null"
}

// data is the EventSync event's data of env: the payload's members in
// their order, then the envelope's version, system and trigger as
// _version, _system and _trigger. A payload that is not an object, or
// that has one of those keys itself, is refused: it could not be read
// back as it was sent.
func data(env envelope) ([]byte, error) {
	ms, err := members(env.Payload)
	if err != nil {
		return nil, errors.New("payload must be a JSON object")
	}
	for _, m := range ms {
		if slices.Contains(reserved, m.key) {
			return nil, fmt.Errorf("payload keys %s are reserved", strings.Join(reserved, ", "))
		}
	}
	for _, m := range []member{{keyVersion, env.Event.Version}, {keySystem, env.System}, {keyTrigger, env.Trigger}} {
		if present(m.value) {
			ms = append(ms, m)
		}
	}
	return object(ms), nil
}

// stored is an event as the translated consumer reads answer it.
type stored struct {
	ID   string          `json:"id"`
	Seq  uint64          `json:"seq"`
	Code string          `json:"code"`
	Data json.RawMessage `json:"data"`
}

// outEvent is an event as the event server answers it: what its
// producer sent, with its id.
type outEvent struct {
	// EventID is the event's id, as the Go event server gave it.
	EventID string `json:"eventId"`
	Event   struct {
		Name    string          `json:"name"`
		Version json.RawMessage `json:"version,omitempty"`
		// ID is the event's id again, where the Python event server gave it.
		ID string `json:"id"`
	} `json:"event"`
	System  json.RawMessage `json:"system,omitempty"`
	Trigger json.RawMessage `json:"trigger,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// render returns the event server's event of e: the data's members but
// _version, _system and _trigger are the payload, in their order.
func render(e stored) outEvent {
	var out outEvent
	out.EventID, out.Event.ID, out.Event.Name = e.ID, e.ID, e.Code
	ms, err := members(e.Data)
	if err != nil {
		ms = nil // data of EventSync is always an object; be safe
	}
	payload := make([]member, 0, len(ms))
	for _, m := range ms {
		switch m.key {
		case keyVersion:
			out.Event.Version = m.value
		case keySystem:
			out.System = m.value
		case keyTrigger:
			out.Trigger = m.value
		default:
			payload = append(payload, m)
		}
	}
	out.Payload = object(payload)
	return out
}
