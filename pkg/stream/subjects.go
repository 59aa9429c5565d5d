package stream

import "strings"

// Subjects of the notifier's streams and of the delivery audit. The
// functions here are the only place that builds or parses them; event
// subjects (events.CATEGORY.CODE) belong to package subject.
const (
	deliveriesPrefix       = "deliveries."
	redrivePrefix          = "redrive."
	notifyDeadLetterPrefix = "dlq.notify."
)

// AllNotifyDeadLetters is the filter subject of every notifier dead letter.
const AllNotifyDeadLetters = notifyDeadLetterPrefix + ">"

// StoreDeliveriesDeadLetterSubject is where the store parks delivery
// attempts it cannot decode.
const StoreDeliveriesDeadLetterSubject = "dlq." + StoreDeliveriesConsumer

// DeliverySubject is the subject of a subscription's delivery attempts:
// deliveries.<subscription id>.
func DeliverySubject(subscriptionID string) string { return deliveriesPrefix + subscriptionID }

// SubscriptionOfDelivery returns the subscription id a DELIVERIES subject
// names, and false when subj is not deliveries.<one token>.
func SubscriptionOfDelivery(subj string) (string, bool) {
	id, ok := strings.CutPrefix(subj, deliveriesPrefix)
	if !ok || id == "" || strings.Contains(id, ".") {
		return "", false
	}
	return id, true
}

// RedriveSubject is the subject of events queued again for a subscription:
// redrive.<subscription id>.
func RedriveSubject(subscriptionID string) string { return redrivePrefix + subscriptionID }

// NotifyDeadLetterSubject is where the notifier parks an event it gave up
// delivering: dlq.notify.<subscription id>.<tag>.
func NotifyDeadLetterSubject(subscriptionID, tag string) string {
	return notifyDeadLetterPrefix + subscriptionID + "." + tag
}

// NotifyDeadLetterFilter selects a subscription's dead letters.
func NotifyDeadLetterFilter(subscriptionID string) string {
	return notifyDeadLetterPrefix + subscriptionID + ".>"
}

// ParseNotifyDeadLetter returns the subscription id and the event tag of a
// notifier dead letter's subject, and false when subj is not
// dlq.notify.<subscription id>.<tag>.
func ParseNotifyDeadLetter(subj string) (subscriptionID, tag string, ok bool) {
	rest, ok := strings.CutPrefix(subj, notifyDeadLetterPrefix)
	if !ok {
		return "", "", false
	}
	subscriptionID, tag, ok = strings.Cut(rest, ".")
	if !ok || subscriptionID == "" || tag == "" {
		return "", "", false
	}
	return subscriptionID, tag, true
}
