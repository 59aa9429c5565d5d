package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/schollz/progressbar/v3"
)

// What the commands print: with --json, one JSON value a line (what the
// API answered, or a stream of events); otherwise tables (a header row of
// capitals, then a row per item) and details (an indented name and value
// a line), aligned by printRows.

// printJSON prints v as one line of JSON, leaving tag patterns such as
// BILLING.> readable.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// printRows prints rows of cells aligned in columns, each row after indent.
func printRows(w io.Writer, indent string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s%s\n", indent, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// printTable prints a table: header, then rows.
func printTable(w io.Writer, header []string, rows [][]string) error {
	return printRows(w, "", append([][]string{header}, rows...))
}

// printDetails prints the details of one item: a name and its value (and
// any further cells) a line.
func printDetails(w io.Writer, rows [][]string) error {
	return printRows(w, "  ", rows)
}

// timeLayout is how tables show times: RFC 3339 to the millisecond.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// localTime shows t in local time, RFC 3339; "-" when zero.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// oneLine makes text fit one line, with no control characters (which could
// drive the terminal) left in it.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// joined joins a list for a table cell (sep ",") or a detail (", ");
// "-" when empty.
func joined(ss []string, sep string) string {
	if len(ss) == 0 {
		return "-"
	}
	return strings.Join(ss, sep)
}

// plural writes a count of things: 1 event, 2 events.
func plural(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.FormatInt(n, 10) + " " + thing + "s"
}

// spinner shows an indeterminate progress bar with the elapsed time on
// stderr, when on a terminal, until the returned stop is called.
func spinner(ctx context.Context, con Console, what string) (stop func()) {
	if !con.progress() {
		return func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(con.Err),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
	)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = bar.Add(1)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		_ = bar.Finish()
	}
}
