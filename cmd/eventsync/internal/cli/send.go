package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/schollz/progressbar/v3"
)

const sendAbout = `Sends events to EventSync (POST /v1/events).

With --tag (or --category and --code) and --message it sends one event made
of the flags. Otherwise it reads events from --file, or from stdin: a JSON
array, one JSON object, or NDJSON (one object a line), with the fields of
the HTTP API (id, tag or category and code, message, timestamp, session_id,
source, severity, data; other fields, such as the seq of "eventsync query
--json", are ignored). Events are streamed in batches of up to 1,000, so a
file of any size is sent in bounded memory; events without an id get one
before they are sent, so that retries never store one twice.

It prints how many events the server accepted and how many it already had
(duplicates: same id inside the dedupe window). Events the server refuses
are listed with the problem, and the command fails.
`

// sendFlags are the flags of send that make one event.
type sendFlags struct {
	tag, category, code, message string
	id, session, source          string
	severity, data, timestamp    string
}

func (s *sendFlags) flags(fs *conf.Set) {
	fs.String(&s.tag, "tag", "", "", "tag of the event: CATEGORY.CODE")
	fs.String(&s.category, "category", "", "", "category of the event (with --code, instead of --tag)")
	fs.String(&s.code, "code", "", "", "code of the event (with --category, instead of --tag)")
	fs.String(&s.message, "message", "", "", "message of the event")
	fs.String(&s.id, "id", "", "", "id of the event (default: a new UUIDv7)")
	fs.String(&s.session, "session", "", "", "session id of the event")
	fs.String(&s.source, "source", "", "", "source of the event")
	fs.String(&s.severity, "severity", "", "", "debug, info, notice, warning, error or critical (default info)")
	fs.String(&s.data, "data", "", "", "data of the event: a JSON object")
	fs.String(&s.timestamp, "timestamp", "", "", "time of the event, RFC 3339 (default: when the server receives it)")
}

// given reports whether any flag that makes an event was given.
func (s *sendFlags) given() bool {
	return *s != sendFlags{}
}

// event builds the event the flags describe.
func (s *sendFlags) event() (client.Event, error) {
	e := client.Event{ID: s.id, Tag: s.tag, Category: s.category, Code: s.code, Message: s.message, SessionID: s.session, Source: s.source}
	var errs []error
	if s.severity != "" {
		sev, err := event.ParseSeverity(s.severity)
		if err != nil {
			errs = append(errs, fmt.Errorf("--severity: %w", err))
		}
		e.Severity = sev
	}
	if s.data != "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s.data), &obj); err != nil || obj == nil {
			errs = append(errs, fmt.Errorf("--data: want a JSON object, got %q", s.data))
		}
		e.Data = json.RawMessage(s.data)
	}
	if s.timestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, s.timestamp)
		if err != nil {
			errs = append(errs, fmt.Errorf("--timestamp: want an RFC 3339 time, got %q", s.timestamp))
		}
		e.Timestamp = t
	}
	return e, errors.Join(errs...)
}

// sendSummary is what send prints with --json.
type sendSummary struct {
	Accepted   int64           `json:"accepted"`
	Duplicates int64           `json:"duplicates"`
	Refused    int64           `json:"refused"`
	NotSent    int64           `json:"not_sent"` // still buffered when send stopped
	Events     []client.Result `json:"events,omitempty"`
}

func runSend(ctx context.Context, args []string, con Console) error {
	c := clientCommand(con, "send", "send --tag CATEGORY.CODE --message TEXT [--session ID --source S --severity LEVEL --data JSON]\n  eventsync send [--file PATH] < events.ndjson", sendAbout)
	var (
		one  sendFlags
		file string
	)
	one.flags(c.fs)
	c.fs.String(&file, "file", "", "", "read events from this file (- or no flag: stdin) instead of the flags")
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	if one.given() {
		if file != "" {
			return c.fail(errors.New("give either an event's flags or --file, not both"))
		}
		return sendOne(ctx, c, cl, one)
	}

	in, size := con.In, int64(-1)
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return c.fail(err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in = f
	}
	if in == nil {
		return c.fail(errors.New("no events: give --tag and --message, --file, or events on stdin"))
	}
	sum, err := sendStream(ctx, c, cl, in, size)
	if c.json {
		if jerr := printJSON(con.Out, sum); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		fmt.Fprintf(con.Out, "Sent %s: %d accepted, %d duplicates", plural(sum.Accepted+sum.Duplicates, "event"), sum.Accepted, sum.Duplicates)
		if sum.Refused > 0 {
			fmt.Fprintf(con.Out, ", %d refused", sum.Refused)
		}
		if sum.NotSent > 0 {
			fmt.Fprintf(con.Out, ", %d not sent", sum.NotSent)
		}
		fmt.Fprintln(con.Out, ".")
	}
	return err
}

// sendOne sends the event the flags make.
func sendOne(ctx context.Context, c *command, cl *client.Client, one sendFlags) error {
	e, err := one.event()
	if err != nil {
		return c.fail(err)
	}
	res, err := cl.Send(ctx, e)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return printJSON(c.con.Out, sendSummary{Accepted: int64(res.Accepted), Duplicates: int64(res.Duplicates), Events: res.Events})
	}
	fmt.Fprintf(c.con.Out, "Sent 1 event: %d accepted, %d duplicates.\n", res.Accepted, res.Duplicates)
	rows := make([][]string, len(res.Events))
	for i, r := range res.Events {
		rows[i] = []string{"id " + r.ID, "seq " + strconv.FormatUint(r.Seq, 10), "subject " + r.Subject}
	}
	return printDetails(c.con.Out, rows)
}

// maxTemporaryFailures is how many failed sends in a row (each already
// retried by the client) make send give up on an unavailable server.
const maxTemporaryFailures = 3

// sendStream sends the events read from r through a client.Producer, so
// that at most a buffer of them is in memory. size is the length of r in
// bytes, or -1 when unknown; it sizes the progress bar.
func sendStream(ctx context.Context, c *command, cl *client.Client, r io.Reader, size int64) (*sendSummary, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		sum       sendSummary
		accepted  atomic.Int64
		dups      atomic.Int64
		refused   atomic.Int64
		unsent    atomic.Int64
		failures  atomic.Int32 // temporary failures in a row
		mu        sync.Mutex
		problems  []error // requests the server refused
		unsentErr error   // why the last events not sent were given up on
	)
	p := client.NewProducer(cl, client.ProducerOptions{
		OnSent: func(sent []client.Result) {
			failures.Store(0)
			for _, r := range sent {
				if r.Duplicate {
					dups.Add(1)
				} else {
					accepted.Add(1)
				}
			}
		},
		OnError: func(err error, dropped []string) {
			if len(dropped) == 0 { // temporary: the producer tries again
				if failures.Add(1) >= maxTemporaryFailures {
					cancel(fmt.Errorf("server unavailable: %w", err))
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			var e *client.Error
			if !errors.As(err, &e) || e.Temporary() { // given up on by Close, not refused
				unsent.Add(int64(len(dropped)))
				unsentErr = err
				return
			}
			refused.Add(int64(len(dropped)))
			if len(problems) < 10 {
				problems = append(problems, err)
			}
		},
	})
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = p.Run(ctx) // returns nil
	}()

	var bar *progressbar.ProgressBar
	if c.con.progress() {
		bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(c.con.Err),
			progressbar.OptionSetDescription("sending"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSpinnerType(14),
		)
		rd := progressbar.NewReader(r, bar)
		r = &rd
	}
	start := time.Now()
	n, readErr := readEvents(r, func(i int, e client.Event) error {
		if bar != nil && i%500 == 0 {
			rate := float64(i) / max(time.Since(start).Seconds(), 1e-3)
			bar.Describe(fmt.Sprintf("sending: %d events (%.0f/s)", i, rate))
		}
		return p.Publish(ctx, e)
	})
	closeErr := p.Close(ctx)
	cancel(nil)
	<-runDone
	if bar != nil {
		_ = bar.Finish()
	}

	sum.Accepted, sum.Duplicates, sum.Refused, sum.NotSent = accepted.Load(), dups.Load(), refused.Load(), unsent.Load()
	// Run and Close are done: no callback touches problems or unsentErr.
	var errs []error
	if readErr != nil {
		errs = append(errs, c.fail(fmt.Errorf("%w (after %d events)", readErr, n)))
	}
	if sum.Refused > 0 {
		errs = append(errs, c.fail(fmt.Errorf("the server refused %s (the others were sent):", plural(sum.Refused, "event"))))
		for _, e := range problems {
			errs = append(errs, c.fail(e))
		}
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, context.Canceled) {
		cause = unsentErr
	}
	switch {
	case sum.NotSent > 0 && cause != nil:
		errs = append(errs, c.failAs(fmt.Sprintf("%s: %s not sent", c.name, plural(sum.NotSent, "event")), cause))
	case sum.NotSent > 0:
		errs = append(errs, c.fail(fmt.Errorf("%s not sent", plural(sum.NotSent, "event"))))
	case closeErr != nil && sum.Refused == 0 && readErr == nil:
		errs = append(errs, c.fail(closeErr))
	}
	return &sum, errors.Join(errs...)
}

// inputEvent is an event as send reads it: the fields producers set, with
// data kept as it is written.
type inputEvent struct {
	ID        string          `json:"id"`
	Tag       string          `json:"tag"`
	Category  string          `json:"category"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Timestamp time.Time       `json:"timestamp"`
	SessionID string          `json:"session_id"`
	Source    string          `json:"source"`
	Severity  event.Severity  `json:"severity"`
	Data      json.RawMessage `json:"data"`
}

func (in *inputEvent) event() client.Event {
	e := client.Event{
		ID: in.ID, Tag: in.Tag, Category: in.Category, Code: in.Code, Message: in.Message,
		Timestamp: in.Timestamp, SessionID: in.SessionID, Source: in.Source, Severity: in.Severity,
	}
	if len(in.Data) > 0 && string(in.Data) != "null" {
		e.Data = in.Data
	}
	if e.Tag != "" && (e.Category != "" || e.Code != "") {
		// Stored events carry all three; the tag says the same.
		e.Category, e.Code = "", ""
	}
	return e
}

// readEvents decodes a JSON array of events, one event, or a stream of
// them (NDJSON), calling fn with each in turn, and returns how many it
// passed to fn.
func readEvents(r io.Reader, fn func(i int, e client.Event) error) (int, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	first, err := firstByte(br)
	if err == io.EOF {
		return 0, errors.New("no events in the input")
	}
	if err != nil {
		return 0, fmt.Errorf("read events: %w", err)
	}
	dec := json.NewDecoder(br)
	n := 0
	decodeOne := func() error {
		var in inputEvent
		if err := dec.Decode(&in); err != nil {
			return err
		}
		if err := fn(n, in.event()); err != nil {
			return err
		}
		n++
		return nil
	}
	if first == '[' {
		if _, err := dec.Token(); err != nil {
			return 0, fmt.Errorf("read events: %w", err)
		}
		for dec.More() {
			if err := decodeOne(); err != nil {
				return n, fmt.Errorf("event %d (byte %d): %w", n, dec.InputOffset(), err)
			}
		}
		if _, err := dec.Token(); err != nil {
			return n, fmt.Errorf("read events: end of array: %w", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return n, fmt.Errorf("read events: data after the array (byte %d)", dec.InputOffset())
		}
		return n, nil
	}
	for {
		err := decodeOne()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("event %d (byte %d): %w", n, dec.InputOffset(), err)
		}
	}
}

// firstByte returns the first byte of r that is not white space (or a
// byte order mark), leaving it unread.
func firstByte(r *bufio.Reader) (byte, error) {
	if b, err := r.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = r.Discard(3)
	}
	for {
		b, err := r.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = r.Discard(1)
		default:
			return b[0], nil
		}
	}
}
