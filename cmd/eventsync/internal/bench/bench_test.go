package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/event"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		d := make([]time.Duration, len(ns))
		for i, n := range ns {
			d[i] = time.Duration(n) * time.Millisecond
		}
		return d
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 1, 4 * time.Millisecond},
		{ms(1, 2, 3, 4), 0, 1 * time.Millisecond},
		{hundred, 0.5, 50 * time.Millisecond},
		{hundred, 0.99, 99 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.q); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v; want %v", tt.sorted, tt.q, got, tt.want)
		}
	}
}

func TestGroup(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {123456, "123,456"}, {1234567, "1,234,567"}, {-45678, "-45,678"},
	}
	for _, tt := range tests {
		if got := group(tt.n); got != tt.want {
			t.Errorf("group(%d) = %q; want %q", tt.n, got, tt.want)
		}
	}
}

// The generated events must be valid (or the benchmark measures 422s) and
// about 300 bytes.
func TestMakeBodies(t *testing.T) {
	p := event.NewParser(event.Limits{}, nil)
	for _, batch := range []int{1, 100, 1000} {
		bodies, size, err := makeBodies(batch, 4)
		if err != nil {
			t.Fatalf("makeBodies(%d) error: %v", batch, err)
		}
		if size < 250 || size > 350 {
			t.Errorf("makeBodies(%d): events of %d bytes; want about 300", batch, size)
		}
		tags := map[string]bool{}
		for _, b := range bodies {
			events, isBatch, err := p.ParseBody(b, event.JSON)
			if err != nil {
				t.Fatalf("makeBodies(%d): ParseBody = %v", batch, err)
			}
			if len(events) != batch || isBatch != (batch > 1) {
				t.Errorf("makeBodies(%d): body of %d events (array %v)", batch, len(events), isBatch)
			}
			for _, e := range events {
				tags[e.Tag] = true
			}
		}
		if batch >= 100 && len(tags) < 5 {
			t.Errorf("makeBodies(%d): only %d distinct tags", batch, len(tags))
		}
	}
}

func TestBenchTargets(t *testing.T) {
	tests := []struct {
		target, url string
		want        []string
		wantErr     bool
	}{
		{"all", "", []string{"embedded"}, false},
		{"all", "clickhouse://h:9000/b", []string{"embedded", "clickhouse"}, false},
		{"embedded", "clickhouse://h:9000/b", []string{"embedded"}, false},
		{"clickhouse", "clickhouse://h:9000/b", []string{"clickhouse"}, false},
		{"clickhouse", "", nil, true},
		{"sqlite", "", nil, true},
	}
	for _, tt := range tests {
		c := benchConfig{Target: tt.target, ClickHouseURL: tt.url, Producers: 8, SingleProducers: 8, Batch: 100,
			Duration: time.Second, RawDuration: time.Second, DrainTimeout: time.Second}
		err := c.validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("validate(target %q, url %q) = %v; want error %v", tt.target, tt.url, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if diff := cmp.Diff(tt.want, c.targets()); diff != "" {
			t.Errorf("targets(%q, %q) mismatch (-want +got):\n%s", tt.target, tt.url, diff)
		}
	}
}

// TestBench runs a short benchmark of the embedded target end to end.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a benchmark for a few seconds; skipped with -short")
	}
	var out bytes.Buffer
	args := []string{"-target", "embedded", "-deliveries=false", "-producers", "2", "-batch", "50", "-duration", "1s",
		"-single-producers", "2", "-single-duration", "500ms", "-raw-msgs", "5000"}
	getenv := func(string) string { return "" }
	if err := Main(context.Background(), args, getenv, &out); err != nil {
		t.Fatalf("Main(%q) = %v\n%s", args, err, out.String())
	}
	got := out.String()
	for _, want := range []string{"raw JetStream ceiling", "5,000 msgs acked", "arrays of 50 events", "single events", "non-202      none"} {
		if !strings.Contains(got, want) {
			t.Errorf("Main output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "check        OK"); n != 2 {
		t.Errorf("Main output has %d OK checks; want 2:\n%s", n, got)
	}
}
