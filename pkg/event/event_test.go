package event

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	want = bytes.TrimSuffix(want, []byte("\n"))
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
	return want
}

// published is an event as ingest publishes it: every field but Seq.
func published() Event {
	return Event{
		ID:         "0190c1e8-3b5c-7d2a-9f3e-5a1b2c3d4e5f",
		Subject:    "events.DATABASE.CONNECTION_LOST",
		Tag:        "DATABASE.CONNECTION_LOST",
		Category:   "DATABASE",
		Code:       "CONNECTION_LOST",
		Message:    "lost connection to db-1 <primary> & \"replica\"",
		Timestamp:  time.Date(2024, 5, 6, 7, 0, 0, 500_000_000, time.UTC),
		ReceivedAt: time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
		SessionID:  "sess-1",
		Source:     "billing",
		Severity:   Error,
		Producer:   "billing-prod",
		Data:       json.RawMessage(`{"host":"db-1","attempts":[1,2]}`),
	}
}

func TestEncodeGolden(t *testing.T) {
	e := published()
	got, err := Encode(&e)
	if err != nil {
		t.Fatalf("Encode(%+v) error = %v", e, err)
	}
	want := golden(t, "published.json", got)

	var back Event
	if err := Decode(want, &back); err != nil {
		t.Fatalf("Decode(%s) error = %v", want, err)
	}
	if diff := cmp.Diff(e, back); diff != "" {
		t.Errorf("Decode(golden) mismatch (-want +got):\n%s", diff)
	}
}

func TestEncodeOmits(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(e *Event)
		present []string
		absent  []string
	}{
		{"seq zero omitted", func(e *Event) {}, nil, []string{`"seq"`}},
		{"seq set", func(e *Event) { e.Seq = 42 }, []string{`"seq":42`}, nil},
		{"optional fields empty", func(e *Event) { e.SessionID, e.Source, e.Producer, e.Data = "", "", "", nil },
			[]string{`"id"`, `"subject"`, `"tag"`, `"category"`, `"code"`, `"message"`, `"timestamp"`, `"received_at"`, `"severity"`},
			[]string{`"session_id"`, `"source"`, `"producer"`, `"data"`}},
		{"severity as name", func(e *Event) { e.Severity = Critical }, []string{`"severity":"critical"`}, nil},
		{"times in RFC 3339", func(e *Event) {}, []string{`"timestamp":"2024-05-06T07:00:00.5Z"`, `"received_at":"2024-05-06T07:08:09.123456Z"`}, nil},
		{"data verbatim", func(e *Event) { e.Data = json.RawMessage(`{"b":1,"a":[]}`) }, []string{`"data":{"b":1,"a":[]}`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := published()
			tt.edit(&e)
			b, err := Encode(&e)
			if err != nil {
				t.Fatalf("Encode(%+v) error = %v", e, err)
			}
			for _, s := range tt.present {
				if !bytes.Contains(b, []byte(s)) {
					t.Errorf("Encode = %s; want it to contain %s", b, s)
				}
			}
			for _, s := range tt.absent {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("Encode = %s; want no %s", b, s)
				}
			}
		})
	}
}

// TestRoundTrip checks that what the parser produces survives publishing.
func TestRoundTrip(t *testing.T) {
	body := array([]string{
		obj(""),
		`{"tag":"TEST.NETWORK.TIMEOUT","message":"ünïcödé ✓","timestamp":"2024-05-06 07:00:00.654321","session_id":"s","name":"n","severity":"debug","data":{"x":{"y":[1,"2",null]}},"id":"my-id"}`,
	})
	events, _, err := NewParser(Limits{}, func() time.Time { return testNow }).ParseBody([]byte(body), JSON)
	if err != nil {
		t.Fatalf("ParseBody error = %v", err)
	}
	for _, e := range events {
		e.Seq = 7
		e.Producer = "p"
		b, err := Encode(&e)
		if err != nil {
			t.Fatalf("Encode(%+v) error = %v", e, err)
		}
		var got Event
		if err := Decode(b, &got); err != nil {
			t.Fatalf("Decode(%s) error = %v", b, err)
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("Decode(Encode(e)) mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestDecode(t *testing.T) {
	// Lenient: unknown fields from newer writers are ignored.
	in := `{"seq":3,"id":"x","tag":"A.B","severity":"warning","new_field":{"a":1},"timestamp":"2024-05-06T07:00:00Z"}`
	var got Event
	if err := Decode([]byte(in), &got); err != nil {
		t.Fatalf("Decode(%s) error = %v", in, err)
	}
	want := Event{Seq: 3, ID: "x", Tag: "A.B", Severity: Warning, Timestamp: time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode(%s) mismatch (-want +got):\n%s", in, diff)
	}

	for _, in := range []string{
		``,
		`{`,
		`[]`,
		`{"severity":"loud"}`,
		`{"seq":"1"}`,
		`{"timestamp":"yesterday"}`,
		`{"data":[1]`,
	} {
		var e Event
		err := Decode([]byte(in), &e)
		if err == nil {
			t.Errorf("Decode(%q) = nil; want an error", in)
		} else if !strings.HasPrefix(err.Error(), "decode event: ") {
			t.Errorf("Decode(%q) error = %q; want prefix %q", in, err, "decode event: ")
		}
	}
}

func TestSeverityText(t *testing.T) {
	tests := []struct {
		s    Severity
		name string
	}{
		{Debug, "debug"},
		{Info, "info"},
		{Notice, "notice"},
		{Warning, "warning"},
		{Error, "error"},
		{Critical, "critical"},
	}
	for i, tt := range tests {
		if got := tt.s.String(); got != tt.name {
			t.Errorf("Severity(%d).String() = %q; want %q", uint8(tt.s), got, tt.name)
		}
		b, err := tt.s.MarshalText()
		if string(b) != tt.name || err != nil {
			t.Errorf("Severity(%d).MarshalText() = %q, %v; want %q, nil", uint8(tt.s), b, err, tt.name)
		}
		for _, in := range []string{tt.name, strings.ToUpper(tt.name), strings.ToUpper(tt.name[:1]) + tt.name[1:]} {
			var s Severity
			if err := s.UnmarshalText([]byte(in)); s != tt.s || err != nil {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v, nil", in, s, err, tt.s)
			}
			if s, err := ParseSeverity(in); s != tt.s || err != nil {
				t.Errorf("ParseSeverity(%q) = %v, %v; want %v, nil", in, s, err, tt.s)
			}
		}
		if i > 0 && !(tests[i-1].s < tt.s) {
			t.Errorf("%v < %v = false; severities must be ordered by importance", tests[i-1].s, tt.s)
		}
	}

	for _, s := range []Severity{0, Critical + 1, 255} {
		if b, err := s.MarshalText(); err == nil {
			t.Errorf("Severity(%d).MarshalText() = %q, nil; want an error", uint8(s), b)
		}
	}
	if got, want := Severity(0).String(), ""; got != want {
		t.Errorf("Severity(0).String() = %q; want %q", got, want)
	}
	if got, want := Severity(9).String(), "severity(9)"; got != want {
		t.Errorf("Severity(9).String() = %q; want %q", got, want)
	}

	for _, in := range []string{"", "fatal", "warn", "err", " info", "info ", "0", "3"} {
		s := Notice
		err := s.UnmarshalText([]byte(in))
		if err == nil || s != Notice {
			t.Errorf("UnmarshalText(%q) = %v, %v; want an error and the value untouched", in, s, err)
		}
		if _, err := ParseSeverity(in); err == nil || !strings.Contains(err.Error(), "debug, info, notice, warning, error, critical") {
			t.Errorf("ParseSeverity(%q) error = %v; want one listing the names", in, err)
		}
	}
}
