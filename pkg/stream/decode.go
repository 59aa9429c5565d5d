package stream

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/subject"
)

// DecodeEvent turns a message of the EVENTS stream into the event as stored
// and served. Events published straight to events.> by trusted producers
// bypass ingest, so the subject is authoritative for the tag and missing
// stamps are filled from the message metadata.
func DecodeEvent(m jetstream.Msg) (event.Event, error) {
	var e event.Event
	meta, err := m.Metadata()
	if err != nil {
		return e, fmt.Errorf("metadata: %w", err)
	}
	if err := event.Decode(m.Data(), &e); err != nil {
		return e, err
	}
	tag, category, code, err := subject.Parse(m.Subject())
	if err != nil {
		return e, err
	}
	e.Seq = meta.Sequence.Stream
	e.Subject, e.Tag, e.Category, e.Code = m.Subject(), tag, category, code
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = meta.Timestamp.UTC().Truncate(time.Microsecond)
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = e.ReceivedAt
	}
	if e.ID == "" {
		e.ID = m.Headers().Get(jetstream.MsgIDHeader)
	}
	if e.ID == "" {
		e.ID = fmt.Sprintf("seq-%d", e.Seq)
	}
	if e.Severity == 0 {
		e.Severity = event.Info
	}
	return e, nil
}
