package query

import (
	"net/url"
	"strconv"
	"time"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/subject"
)

// parseFilter reads the filters common to event reads. Every bad parameter
// is a 400 naming it.
func parseFilter(q url.Values) (eventstore.Filter, error) {
	var f eventstore.Filter
	var err error
	if f.After, err = parseUint(q, "since"); err != nil {
		return f, problem.BadParam("since", "must be an integer")
	}
	if f.Limit, err = parseLimit(q, DefaultLimit); err != nil {
		return f, err
	}
	if f.Category = q.Get("category"); f.Category != "" {
		if err := subject.ValidateCategory(f.Category); err != nil {
			return f, problem.BadParam("category", err.Error())
		}
	}
	if f.Code = q.Get("code"); f.Code != "" {
		if err := subject.ValidateCode(f.Code); err != nil {
			return f, problem.BadParam("code", err.Error())
		}
	}
	if f.TagPattern = q.Get("tag"); f.TagPattern != "" {
		if err := subject.ValidatePattern(f.TagPattern); err != nil {
			return f, problem.BadParam("tag", err.Error())
		}
	}
	f.SessionID = q.Get("session_id")
	f.Source = q.Get("source")
	if v := q.Get("severity"); v != "" {
		if f.MinSeverity, err = event.ParseSeverity(v); err != nil {
			return f, problem.BadParam("severity", err.Error())
		}
	}
	if f.From, err = parseTime(q, "from", time.Time{}); err != nil {
		return f, err
	}
	if f.To, err = parseTime(q, "to", time.Time{}); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, problem.BadParam("from", "must be before to")
	}
	return f, nil
}

func parseUint(q url.Values, name string) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	return strconv.ParseUint(v, 10, 64)
}

func parseLimit(q url.Values, def int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, problem.BadParam("limit", "must be an integer from 1 to 10000")
	}
	return n, nil
}

func parseTime(q url.Values, name string, def time.Time) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	t, err := event.ParseTime(v)
	if err != nil {
		return time.Time{}, problem.BadParam(name, err.Error())
	}
	return t, nil
}

// parseDeliveryFilter reads the parameters of delivery attempt reads:
// status (all, delivered or failed), since and limit.
func parseDeliveryFilter(q url.Values) (delivery.Filter, error) {
	var f delivery.Filter
	var err error
	if f.After, err = parseUint(q, "since"); err != nil {
		return f, problem.BadParam("since", "must be an integer")
	}
	if f.Limit, err = parseLimit(q, DefaultLimit); err != nil {
		return f, err
	}
	switch q.Get("status") {
	case "", "all":
		f.Status = delivery.Any
	case "delivered":
		f.Status = delivery.OK
	case "failed":
		f.Status = delivery.Failed
	default:
		return f, problem.BadParam("status", "must be all, delivered or failed")
	}
	return f, nil
}
