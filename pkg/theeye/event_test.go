package theeye

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
)

func ptr(s string) *string { return &s }

// TestTranslate checks the mapping field by field, as golden JSON: what
// POST /v1/events receives for each event of The Eye.
func TestTranslate(t *testing.T) {
	const ts = `,"timestamp":"2024-05-06T07:08:09Z"`
	tests := []struct {
		name, in string
		want     string // without the id
	}{
		{"spaces in category and name", `{"session_id":"s-1","category":"page interaction","name":"button click","data":{"x":1}` + ts + `}`,
			`{"category":"page_20interaction","code":"button_20click","message":"","timestamp":"2024-05-06T07:08:09Z","session_id":"s-1","data":{"_category":"page interaction","_name":"button click","x":1}}`},
		{"valid category and name", `{"session_id":"s-1","category":"checkout","name":"PAID","data":{"x":1}` + ts + `}`,
			`{"category":"checkout","code":"PAID","message":"","timestamp":"2024-05-06T07:08:09Z","session_id":"s-1","data":{"_name":"PAID","x":1}}`},
		{"dotted category kept", `{"category":"TEST.NETWORK","name":"timeout"}`,
			`{"category":"TEST.NETWORK","code":"timeout","message":"","data":{"_name":"timeout"}}`},
		{"dotted name mapped", `{"category":"app","name":"v1.2"}`,
			`{"category":"app","code":"v1_2E2","message":"","data":{"_name":"v1.2"}}`},
		{"no name", `{"category":"page interaction"}`,
			`{"category":"page_20interaction","code":"EVENT","message":"","data":{"_category":"page interaction"}}`},
		{"no name, valid category, no data", `{"category":"app"}`, `{"category":"app","code":"EVENT","message":""}`},
		{"no name, valid category, null data", `{"category":"app","data":null}`, `{"category":"app","code":"EVENT","message":"","data":null}`},
		{"empty name", `{"category":"app","name":""}`, `{"category":"app","code":"EVENT","message":""}`},
		{"no category", `{"name":"x"}`, `{"code":"x","message":"","data":{"_name":"x"}}`},
		{"array data", `{"category":"app","name":"x","data":[1,2]}`,
			`{"category":"app","code":"x","message":"","data":{"_name":"x","_data":[1,2]}}`},
		{"string data", `{"category":"app","name":"x","data":"hello"}`,
			`{"category":"app","code":"x","message":"","data":{"_name":"x","_data":"hello"}}`},
		{"string data without anything kept", `{"category":"app","data":"hello"}`,
			`{"category":"app","code":"EVENT","message":"","data":{"_data":"hello"}}`},
		{"object data holding a translation key", `{"category":"app","name":"x","data":{"_name":"mine","y":2}}`,
			`{"category":"app","code":"x","message":"","data":{"_name":"x","_data":{"_name":"mine","y":2}}}`},
		{"empty object data", `{"category":"app","name":"x","data":{ }}`,
			`{"category":"app","code":"x","message":"","data":{"_name":"x"}}`},
		{"object data kept byte for byte", `{"category":"app","name":"x","data":{"b":1.50,"a":"\u00e9"}}`,
			`{"category":"app","code":"x","message":"","data":{"_name":"x","b":1.50,"a":"\u00e9"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			if err := json.Unmarshal([]byte(tt.in), &e); err != nil {
				t.Fatal(err)
			}
			tr := Translate(e)
			if (tr.ID != "") != (e.Timestamp != nil) || tr.ID != NaturalKey(e) {
				t.Errorf("Translate(%s).ID = %q; want NaturalKey %q", tt.in, tr.ID, NaturalKey(e))
			}
			tr.ID = ""
			got, err := json.Marshal(tr)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Translate(%s) =\n%s\nwant\n%s", tt.in, got, tt.want)
			}
		})
	}
}

func TestNaturalKey(t *testing.T) {
	base := Event{SessionID: ptr("s-1"), Category: ptr("page interaction"), Name: ptr("click"), Timestamp: ptr("2024-05-06T07:08:09Z")}
	key := NaturalKey(base)
	if !strings.HasPrefix(key, IDPrefix) || len(key) != len(IDPrefix)+64 {
		t.Fatalf("NaturalKey = %q; want %q and 64 hex digits", key, IDPrefix)
	}
	same := []Event{
		{SessionID: ptr("s-1"), Category: ptr("page interaction"), Name: ptr("click"), Timestamp: ptr("2024-05-06T09:08:09+02:00"), Data: []byte(`{"other":"data"}`)},
		{SessionID: ptr("s-1"), Category: ptr("page interaction"), Name: ptr("click"), Timestamp: ptr("2024-05-06 07:08:09")},
	}
	for _, e := range same {
		if got := NaturalKey(e); got != key {
			t.Errorf("NaturalKey(%s) = %q; want the key of the same instant %q", *e.Timestamp, got, key)
		}
	}
	different := []Event{
		{SessionID: ptr("s-2"), Category: ptr("page interaction"), Name: ptr("click"), Timestamp: ptr("2024-05-06T07:08:09Z")},
		{SessionID: ptr("s-1"), Category: ptr("page_20interaction"), Name: ptr("click"), Timestamp: ptr("2024-05-06T07:08:09Z")},
		{SessionID: ptr("s-1"), Category: ptr("page interaction"), Name: ptr("clicks"), Timestamp: ptr("2024-05-06T07:08:09Z")},
		{SessionID: ptr("s-1"), Category: ptr("page interaction"), Name: ptr("click"), Timestamp: ptr("2024-05-06T07:08:09.000001Z")},
		// Length prefixes: moving a byte from one field to the next is another key.
		{SessionID: ptr("s-1p"), Category: ptr("age interaction"), Name: ptr("click"), Timestamp: ptr("2024-05-06T07:08:09Z")},
	}
	for _, e := range different {
		if got := NaturalKey(e); got == key {
			t.Errorf("NaturalKey(%v %v %v %v) = the key of another event", *e.SessionID, *e.Category, *e.Name, *e.Timestamp)
		}
	}
	if got := NaturalKey(Event{Category: ptr("a")}); got != "" {
		t.Errorf("NaturalKey without a timestamp = %q; want none", got)
	}
}

// TestRestore checks that a translated event, stored, reads back as its
// sender wrote it.
func TestRestore(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		in   string
		want Original
	}{
		{`{"session_id":"s","category":"page interaction","name":"button click","data":{"x":1,"y":[true]}}`,
			Original{SessionID: "s", Category: "page interaction", Name: "button click", Data: json.RawMessage(`{"x":1,"y":[true]}`)}},
		{`{"category":"app","name":"x","data":[1,2]}`, Original{Category: "app", Name: "x", Data: json.RawMessage(`[1,2]`)}},
		{`{"category":"a b","data":"hi"}`, Original{Category: "a b", Name: "EVENT", Data: json.RawMessage(`"hi"`)}},
		{`{"category":"app","name":"x","data":{"_name":"mine","y":2}}`, Original{Category: "app", Name: "x", Data: json.RawMessage(`{"_name":"mine","y":2}`)}},
		{`{"category":"app","name":"v1.2"}`, Original{Category: "app", Name: "v1.2", Data: json.RawMessage(`{}`)}},
		{`{"category":"app"}`, Original{Category: "app", Name: "EVENT", Data: json.RawMessage(`{}`)}},
	}
	for _, tt := range tests {
		var e Event
		if err := json.Unmarshal([]byte(tt.in), &e); err != nil {
			t.Fatal(err)
		}
		tr := Translate(e)
		stored := event.Event{Code: tr.Code, Timestamp: at, Data: json.RawMessage(tr.Data)}
		if tr.Category != nil {
			stored.Category = *tr.Category
		}
		if tr.SessionID != nil {
			stored.SessionID = *tr.SessionID
		}
		if string(stored.Data) == "null" {
			stored.Data = nil
		}
		tt.want.Timestamp = at
		if diff := cmp.Diff(tt.want, Restore(stored)); diff != "" {
			t.Errorf("Restore(Translate(%s)) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
	native := event.Event{Category: "DATABASE", Code: "CONNECTION_LOST", Data: json.RawMessage(`{"host":"db1"}`), Timestamp: at}
	want := Original{Category: "DATABASE", Name: "CONNECTION_LOST", Data: json.RawMessage(`{"host":"db1"}`), Timestamp: at}
	if diff := cmp.Diff(want, Restore(native)); diff != "" {
		t.Errorf("Restore(an EventSync event) mismatch (-want +got):\n%s", diff)
	}
}

func TestPointer(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/code", "/name"},
		{"/3/code", "/3/name"},
		{"/category", "/category"},
		{"/timestamp", "/timestamp"},
		{"/2/timestamp", "/2/timestamp"},
		{"/data/x", "/data/x"},
		{"/data/_data/0", "/data/0"},
		{"/1/data/_data", "/1/data"},
		{"/data/_database", "/data/_database"},
		{"", ""},
		{"/0", "/0"},
	} {
		if got := Pointer(tt.in); got != tt.want {
			t.Errorf("Pointer(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestDecode checks what the body decoder refuses, with the answers
// POST /events/ gives, before anything is translated.
func TestDecode(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		pointer    string
		events     int
		batch      bool
	}{
		{"one event", `{"category":"a","name":"b"}`, 0, "", 1, false},
		{"an array", `[{"category":"a"},{"category":"b","data":[1]}]`, 0, "", 2, true},
		{"unknown field", `{"category":"a","message":"m"}`, http.StatusUnprocessableEntity, "/message", 0, false},
		{"unknown field in an item", `[{"category":"a"},{"category":"b","code":"c"}]`, http.StatusUnprocessableEntity, "/1/code", 0, false},
		{"number timestamp", `{"category":"a","timestamp":1715000000}`, http.StatusUnprocessableEntity, "/timestamp", 0, false},
		{"duplicate key", `{"category":"a","category":"b"}`, http.StatusBadRequest, "", 0, false},
		{"not JSON", `category=a`, http.StatusBadRequest, "", 0, false},
		{"a number", `5`, http.StatusBadRequest, "", 0, false},
		{"trailing data", `{"category":"a"} {}`, http.StatusBadRequest, "", 0, false},
		{"empty", ``, http.StatusBadRequest, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in body
			err := problem.DecodeJSON(httptest.NewRequest(http.MethodPost, Route, strings.NewReader(tt.body)), &in, 1<<20)
			if tt.status == 0 {
				if err != nil || len(in.events) != tt.events || in.batch != tt.batch {
					t.Fatalf("decode %s = %d events, batch %t, %v; want %d, %t", tt.body, len(in.events), in.batch, err, tt.events, tt.batch)
				}
				return
			}
			var p *problem.Problem
			if !errors.As(err, &p) || p.Status != tt.status {
				t.Fatalf("decode %s error = %v; want a %d problem", tt.body, err, tt.status)
			}
			if tt.pointer != "" && (len(p.Errors) != 1 || p.Errors[0].Pointer != tt.pointer) {
				t.Errorf("decode %s errors = %v; want one at %s", tt.body, p.Errors, tt.pointer)
			}
		})
	}
}
