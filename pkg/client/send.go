package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
)

// Event is an event as a producer sends it. Give either Tag
// ("CATEGORY.CODE") or Category and Code, and a Message; the rest is
// optional. Without an ID, Send assigns one (NewID) before the first try,
// so that its retries are deduplicated by the server.
type Event struct {
	ID        string         `json:"id,omitempty"`
	Tag       string         `json:"tag,omitempty"`
	Category  string         `json:"category,omitempty"`
	Code      string         `json:"code,omitempty"`
	Message   string         `json:"message"`
	Timestamp time.Time      `json:"timestamp,omitzero"` // zero: when the server receives it
	SessionID string         `json:"session_id,omitempty"`
	Source    string         `json:"source,omitempty"`
	Severity  event.Severity `json:"severity,omitzero"` // zero: info
	// Data is a JSON object: a map, a struct or a json.RawMessage.
	Data any `json:"data,omitempty"`
}

// Result is what the server answered for one event.
type Result struct {
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"` // its stream sequence
	Subject   string `json:"subject"`
	Duplicate bool   `json:"duplicate"` // stored before, under the same id
}

// SendResult is the outcome of Send: one Result per event stored, in the
// order they were given.
type SendResult struct {
	Accepted   int // stored by this call
	Duplicates int // stored before under the same id
	Events     []Result
}

// ingestAnswer is the body of a 202 of POST /v1/events.
type ingestAnswer struct {
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Events     []Result `json:"events"`
}

// Send sends events and returns once the server has stored them all. It
// sends batches of at most MaxBatch events and the body limit
// (WithMaxBatchBytes), one after another; each batch is stored whole or not
// at all. Batches are retried after 429 (waiting what Retry-After says),
// 502–504 and network errors with the same ids, so a retry never stores an
// event twice.
//
// If a batch fails, Send stops: the result lists the events stored by the
// batches before it (a prefix of events) and the error says which events
// were not sent. Other 4xx answers are an *Error whose Errors name the
// events at fault by their index in events (/3/timestamp).
func (c *Client) Send(ctx context.Context, events ...Event) (*SendResult, error) {
	items := make([][]byte, len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = NewID()
		}
		b, err := marshal(e)
		if err != nil {
			return &SendResult{}, fmt.Errorf("encode event %d: %w", i, err)
		}
		items[i] = b
	}
	res := &SendResult{Events: make([]Result, 0, len(events))}
	for lo := 0; lo < len(items); {
		hi := c.batchEnd(items, lo, MaxBatch)
		a, err := c.sendBatch(ctx, items[lo:hi], lo)
		if err != nil {
			return res, fmt.Errorf("send events %d to %d of %d: %w", lo, hi-1, len(items), err)
		}
		res.Accepted += a.Accepted
		res.Duplicates += a.Duplicates
		res.Events = append(res.Events, a.Events...)
		lo = hi
	}
	return res, nil
}

// batchEnd returns the end of the batch that starts at lo: at most
// maxEvents items whose JSON array fits the body limit, and at least one.
func (c *Client) batchEnd(items [][]byte, lo, maxEvents int) int {
	size := 2 // [ ]
	hi := lo
	for hi < len(items) && hi-lo < maxEvents {
		n := len(items[hi])
		if hi > lo {
			n++ // comma
		}
		if hi > lo && size+n > c.maxBatchBytes {
			break
		}
		size += n
		hi++
	}
	return hi
}

// sendBatch posts encoded events as one JSON array. An array, even of one
// event, makes the server's pointers name items by index; first is the
// index of the first item among all those sent, which the pointers of an
// error answer are moved by.
func (c *Client) sendBatch(ctx context.Context, items [][]byte, first int) (*ingestAnswer, error) {
	size := 1 + len(items)
	for _, it := range items {
		size += len(it)
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, it := range items {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it...)
	}
	body = append(body, ']')
	var a ingestAnswer
	r := request{method: http.MethodPost, path: "/v1/events", body: body, idempotent: true, compress: true}
	if first > 0 {
		r.adjust = func(e *Error) { shiftPointers(e, first) }
	}
	err := c.do(ctx, r, &a)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// itemIndex returns the index of the batch item a pointer names: 3 for
// /3/timestamp.
func itemIndex(pointer string) (int, bool) {
	rest, ok := strings.CutPrefix(pointer, "/")
	if !ok {
		return 0, false
	}
	seg, _, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(seg)
	if err != nil || n < 0 || strconv.Itoa(n) != seg {
		return 0, false
	}
	return n, true
}

// shiftPointers makes the item indexes of e's pointers count from the
// start of everything sent rather than from the start of the batch.
func shiftPointers(e *Error, by int) {
	for i, fe := range e.Errors {
		if n, ok := itemIndex(fe.Pointer); ok {
			rest := fe.Pointer[1+len(strconv.Itoa(n)):] // "/timestamp" or ""
			e.Errors[i].Pointer = "/" + strconv.Itoa(n+by) + rest
		}
	}
}
