package stream

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestSubscriptionOfDelivery(t *testing.T) {
	tests := []struct {
		subj   string
		want   string
		wantOK bool
	}{
		{DeliverySubject("sub_0197"), "sub_0197", true},
		{"deliveries.sub-1", "sub-1", true},
		{"deliveries.", "", false},
		{"deliveries", "", false},
		{"deliveries.a.b", "", false},
		{"redrive.sub_0197", "", false},
		{"events.A.B", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := SubscriptionOfDelivery(tt.subj)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("SubscriptionOfDelivery(%q) = %q, %v; want %q, %v", tt.subj, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseNotifyDeadLetter(t *testing.T) {
	tests := []struct {
		subj    string
		wantSub string
		wantTag string
		wantOK  bool
	}{
		{NotifyDeadLetterSubject("sub_0197", "DATABASE.CONNECTION_LOST"), "sub_0197", "DATABASE.CONNECTION_LOST", true},
		{NotifyDeadLetterSubject("sub_1", "TEST.NETWORK.TIMEOUT"), "sub_1", "TEST.NETWORK.TIMEOUT", true},
		{"dlq.notify.sub_1", "", "", false},
		{"dlq.notify.sub_1.", "", "", false},
		{"dlq.notify..A.B", "", "", false},
		{"dlq.notify.", "", "", false},
		{StoreDeliveriesDeadLetterSubject, "", "", false},
		{"dlq.store", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		sub, tag, ok := ParseNotifyDeadLetter(tt.subj)
		if sub != tt.wantSub || tag != tt.wantTag || ok != tt.wantOK {
			t.Errorf("ParseNotifyDeadLetter(%q) = %q, %q, %v; want %q, %q, %v", tt.subj, sub, tag, ok, tt.wantSub, tt.wantTag, tt.wantOK)
		}
	}
}

// TestSubjectsFitTheirStreams checks that every subject built here is one
// its stream takes and its filter selects.
func TestSubjectsFitTheirStreams(t *testing.T) {
	const id, tag = "sub_0197", "DATABASE.CONNECTION_LOST"
	tests := []struct {
		subj, stream, filter string
	}{
		{DeliverySubject(id), DeliveriesConfig(Config{}).Subjects[0], DeliverySubject(id)},
		{RedriveSubject(id), RedriveConfig(Config{}).Subjects[0], RedriveSubject(id)},
		{NotifyDeadLetterSubject(id, tag), DeadLettersConfig(1).Subjects[0], NotifyDeadLetterFilter(id)},
		{NotifyDeadLetterSubject(id, tag), DeadLettersConfig(1).Subjects[0], AllNotifyDeadLetters},
		{StoreDeliveriesDeadLetterSubject, DeadLettersConfig(1).Subjects[0], StoreDeliveriesDeadLetterSubject},
	}
	for _, tt := range tests {
		if !server.IsValidLiteralSubject(tt.subj) {
			t.Errorf("%q is not a literal subject", tt.subj)
		}
		if !server.SubjectMatchesFilter(tt.subj, tt.stream) {
			t.Errorf("%q is not a subject of its stream (%s)", tt.subj, tt.stream)
		}
		if !server.SubjectMatchesFilter(tt.subj, tt.filter) {
			t.Errorf("%q does not match its filter %s", tt.subj, tt.filter)
		}
	}
	if server.SubjectMatchesFilter(NotifyDeadLetterSubject(id, tag), NotifyDeadLetterFilter("sub_0198")) {
		t.Errorf("another subscription's filter selects %s", NotifyDeadLetterSubject(id, tag))
	}
	if server.SubjectMatchesFilter(StoreDeliveriesDeadLetterSubject, AllNotifyDeadLetters) {
		t.Errorf("%s selects the store's dead letters", AllNotifyDeadLetters)
	}
}
