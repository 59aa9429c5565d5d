// Package event defines the canonical EventSync event and the strict
// decoding and validation of what producers send.
package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// Event is an event as EventSync publishes, stores and serves it.
//
// Producers set ID (optional), Category and Code, Message, Timestamp,
// SessionID, Source, Severity and Data. EventSync stamps Subject, Tag,
// ReceivedAt and Producer before publishing; Seq is the JetStream stream
// sequence and is known only once the publish is acknowledged, so it is
// absent from the published payload and filled in by readers.
type Event struct {
	Seq        uint64          `json:"seq,omitzero"`
	ID         string          `json:"id"`
	Subject    string          `json:"subject"`
	Tag        string          `json:"tag"`
	Category   string          `json:"category"`
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	Timestamp  time.Time       `json:"timestamp"`
	ReceivedAt time.Time       `json:"received_at"`
	SessionID  string          `json:"session_id,omitempty"`
	Source     string          `json:"source,omitempty"`
	Severity   Severity        `json:"severity,omitzero"`
	Producer   string          `json:"producer,omitempty"`
	Data       json.RawMessage `json:"data,omitzero"` // omitzero: an empty object {} is kept
}

// Encode returns the JSON payload published to JetStream.
func Encode(e *Event) ([]byte, error) {
	return jsonv2.Marshal(e)
}

// Decode parses a published payload. It is lenient about unknown fields so
// that older readers accept events written by newer producers.
func Decode(b []byte, e *Event) error {
	if err := jsonv2.Unmarshal(b, e); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	return nil
}

// Severity orders events by importance. The zero value means "not set".
type Severity uint8

// Severities from least to most important.
const (
	Debug Severity = iota + 1
	Info
	Notice
	Warning
	Error
	Critical
)

var severityNames = [...]string{"", "debug", "info", "notice", "warning", "error", "critical"}

// ParseSeverity parses a severity name, ignoring case.
func ParseSeverity(s string) (Severity, error) {
	for i, name := range severityNames[1:] {
		if strings.EqualFold(s, name) {
			return Severity(i + 1), nil
		}
	}
	return 0, fmt.Errorf("must be one of %s", strings.Join(severityNames[1:], ", "))
}

// String returns the lower-case name.
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) {
	if s == 0 || int(s) >= len(severityNames) {
		return nil, fmt.Errorf("invalid severity %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
