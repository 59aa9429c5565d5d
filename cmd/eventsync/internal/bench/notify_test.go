package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/event"
)

func TestDeliveryConfigValidate(t *testing.T) {
	valid := deliveryConfig{Enabled: true, Events: 500, Rate: 200, Duration: time.Second, Producers: 2}
	tests := []struct {
		name    string
		edit    func(*deliveryConfig)
		wantErr bool
	}{
		{"valid", func(*deliveryConfig) {}, false},
		{"latency skipped", func(c *deliveryConfig) { c.Duration = 0 }, false},
		{"off ignores the rest", func(c *deliveryConfig) { c.Enabled, c.Events, c.Rate = false, 0, 0 }, false},
		{"only", func(c *deliveryConfig) { c.Enabled, c.Only = false, true }, false},
		{"no events", func(c *deliveryConfig) { c.Events = 0 }, true},
		{"no rate", func(c *deliveryConfig) { c.Rate = 0 }, true},
		{"no producers", func(c *deliveryConfig) { c.Only, c.Producers = true, 0 }, true},
		{"negative duration", func(c *deliveryConfig) { c.Duration = -time.Second }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			if err := c.validate(); (err != nil) != tt.wantErr {
				t.Errorf("validate(%+v) = %v; want error %v", c, err, tt.wantErr)
			}
		})
	}
}

// The generated events must be valid, carry the ids the receiver keys on
// and the tag the phase subscribes to.
func TestEventGen(t *testing.T) {
	gen, err := newEventGen(latencyTag, "run-l")
	if err != nil {
		t.Fatal(err)
	}
	p := event.NewParser(event.Limits{}, nil)
	for _, n := range []int{0, 63, 64, 123456} {
		events, _, err := p.ParseBody(gen.event(n), event.JSON)
		if err != nil {
			t.Fatalf("ParseBody(event(%d)) = %v", n, err)
		}
		if got := events[0]; got.ID != gen.id(n) || got.Tag != latencyTag {
			t.Errorf("event(%d) = id %q, tag %q; want %q, %q", n, got.ID, got.Tag, gen.id(n), latencyTag)
		}
	}
	if size := gen.eventBytes(); size < 250 || size > 400 {
		t.Errorf("eventBytes() = %d; want about 300", size)
	}
}

// TestBenchDeliveries runs the delivery benchmark at a tiny size and checks
// that every event reached the receiver, signed, and that the figures are
// printed. It asserts no rates or latencies.
func TestBenchDeliveries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the delivery benchmark for a few seconds; skipped with -short")
	}
	var out bytes.Buffer
	args := []string{"-deliveries-only", "-delivery-events", "500", "-delivery-rate", "200", "-delivery-duration", "1s",
		"-delivery-producers", "2", "-drain-timeout", "30s"}
	getenv := func(string) string { return "" }
	if err := Main(context.Background(), args, getenv, &out); err != nil {
		t.Fatalf("Main(%q) = %v\n%s", args, err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"throughput: 500 events",
		"delivered    500 events in",
		"deliveries/s",
		"latency at 200 events/s",
		"sent         200 events",
		"latency      p50",
		"receiver     OK: 500 of 500 accepted events arrived, 0 missing",
		"receiver     OK: 200 of 200 accepted events arrived, 0 missing",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Main output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "raw JetStream ceiling") {
		t.Errorf("Main -deliveries-only ran the raw benchmark:\n%s", got)
	}
}
