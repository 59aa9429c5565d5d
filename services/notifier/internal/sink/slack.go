package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
)

// Limits of a Slack message. Slack cuts text at 40,000 characters and
// advises staying under 4,000.
const (
	slackMaxEvents      = 20   // events listed in a batch; the rest are counted
	slackMaxText        = 3500 // bytes of text before further events are only counted
	slackMaxMessage     = 1500 // runes of the message of a single event
	slackMaxLineMessage = 200  // runes of an event's message in a batch line
	slackMaxField       = 100  // runes of a tag, session or source
)

// Slack delivers to Slack-compatible incoming webhooks (Slack, Mattermost,
// Rocket.Chat, and others that accept {"text": …}). It posts one text
// message per delivery, formatted with Slack's mrkdwn; it does not sign.
type Slack struct {
	client *http.Client
}

// NewSlack returns a Slack sender posting with client (see NewHTTPClient).
// A nil client gets one without the address guard, for tests.
func NewSlack(client *http.Client) *Slack {
	if client == nil {
		client = NewHTTPClient(nil)
	}
	return &Slack{client: client}
}

// slackPayload is the body of an incoming-webhook POST.
type slackPayload struct {
	Text string `json:"text"`
}

// Send posts the events of m to the incoming webhook at m.Target and
// classifies the outcome:
//
//	2xx                                    Delivered
//	408, 429, 5xx                          Retry (RetryAfter from 429 and 503)
//	timeout, connection or DNS error       Retry
//	410 (e.g. channel archived)            Gone
//	3xx, other 4xx and other statuses      Reject
//	internal address refused by the guard  Reject
//	unusable target URL                    Reject
//
// Errors name the target's host only: the path of an incoming-webhook URL
// is its credential.
func (s *Slack) Send(ctx context.Context, m *Message) Result {
	u, err := url.Parse(m.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Result{Verdict: Reject, Err: errors.New("slack target: want an http or https URL")}
	}
	body, err := json.Marshal(slackPayload{Text: slackText(m.Events)})
	if err != nil {
		return Result{Verdict: Reject, Err: fmt.Errorf("slack payload: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Result{Verdict: Reject, Err: fmt.Errorf("slack request to %s: %w", u.Host, redactURLError(err, u))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "EventSync-Notifier")

	resp, err := s.client.Do(req)
	if err != nil {
		res := transportResult(redactURLError(err, u))
		res.Err = fmt.Errorf("slack post to %s: %w", u.Host, res.Err)
		return res
	}
	defer resp.Body.Close()
	var buf [delivery.MaxResponse]byte
	n, _ := io.ReadFull(resp.Body, buf[:])
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)

	now := m.Time
	if now.IsZero() {
		now = time.Now()
	}
	res := Result{Status: resp.StatusCode, Response: responseText(buf[:n])}
	res.Verdict, res.RetryAfter = classifyHTTP(resp.StatusCode, resp.Header, now)
	if res.Verdict != Delivered {
		res.Err = fmt.Errorf("slack post to %s: receiver answered %s", u.Host, statusText(resp.StatusCode))
	}
	return res
}

// classifyHTTP maps the status of a response to a verdict, with the
// receiver's Retry-After for 429 and 503.
func classifyHTTP(status int, h http.Header, now time.Time) (Verdict, time.Duration) {
	switch {
	case status >= 200 && status < 300:
		return Delivered, 0
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return Retry, retryAfter(h, now)
	case status == http.StatusRequestTimeout || status >= 500 && status < 600:
		return Retry, 0
	case status == http.StatusGone:
		return Gone, 0
	}
	return Reject, 0
}

// redactURLError replaces the URL in a *url.Error from the client with
// its scheme and host.
func redactURLError(err error, u *url.URL) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: u.Scheme + "://" + u.Host + "/…", Err: ue.Err}
}

// slackText renders events as Slack mrkdwn: one event in full, a batch as
// a list of at most slackMaxEvents lines and a count of the rest.
func slackText(events []event.Event) string {
	switch len(events) {
	case 0:
		return "*EventSync* notification"
	case 1:
		return slackOne(&events[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d events* from EventSync", len(events))
	listed := 0
	for i := range events {
		line := slackLine(&events[i])
		if listed == slackMaxEvents || b.Len()+len(line) > slackMaxText {
			break
		}
		b.WriteString("\n")
		b.WriteString(line)
		listed++
	}
	if rest := len(events) - listed; rest > 0 {
		fmt.Fprintf(&b, "\n…and %d more", rest)
	}
	return b.String()
}

// slackOne is a single event:
//
//	*DATABASE.CONNECTION_LOST* · error
//	lost connection to primary
//	session s-1 · source db-1 · 2026-01-02 15:04:05 UTC
func slackOne(ev *event.Event) string {
	var b strings.Builder
	b.WriteString(slackHeading(ev))
	if msg := strings.TrimSpace(strings.ToValidUTF8(ev.Message, "\uFFFD")); msg != "" {
		b.WriteString("\n")
		b.WriteString(slackEscape(clipRunes(msg, slackMaxMessage)))
	}
	if ctx := slackContext(ev); ctx != "" {
		b.WriteString("\n")
		b.WriteString(ctx)
	}
	return b.String()
}

// slackLine is one event of a batch on one line: a bullet, the heading,
// the message and the context in parentheses.
func slackLine(ev *event.Event) string {
	line := "• " + slackHeading(ev)
	if msg := singleLine(ev.Message); msg != "" {
		line += " · " + slackEscape(clipRunes(msg, slackMaxLineMessage))
	}
	if ctx := slackContext(ev); ctx != "" {
		line += " (" + ctx + ")"
	}
	return line
}

// slackHeading is the tag in bold and the severity.
func slackHeading(ev *event.Event) string {
	s := "*" + slackField(eventTag(ev)) + "*"
	if ev.Severity != 0 {
		s += " · " + ev.Severity.String()
	}
	return s
}

// slackContext is where and when the event happened.
func slackContext(ev *event.Event) string {
	var parts []string
	if ev.SessionID != "" {
		parts = append(parts, "session "+slackField(ev.SessionID))
	}
	if ev.Source != "" {
		parts = append(parts, "source "+slackField(ev.Source))
	}
	if !ev.Timestamp.IsZero() {
		parts = append(parts, ev.Timestamp.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if ev.Seq != 0 {
		parts = append(parts, "seq "+strconv.FormatUint(ev.Seq, 10))
	}
	return strings.Join(parts, " · ")
}

// slackField is a short value on one line, escaped.
func slackField(s string) string {
	return slackEscape(clipRunes(singleLine(s), slackMaxField))
}

// slackEscape escapes the three characters Slack gives meaning to in text:
// & < > (so that no event can write <!channel>, <@U123> or a link).
func slackEscape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
