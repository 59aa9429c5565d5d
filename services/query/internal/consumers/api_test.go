package consumers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
)

func TestValidation(t *testing.T) {
	e := newEnv(t)
	e.publish("ORDER.CREATED")
	e.create("orders", []string{"ORDER.*"}, "all")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tags := []string{"ORDER.*"}

	tests := []struct {
		name        string
		method      string
		path        string
		body        any
		want        int
		wantPointer string // the first error's pointer, if any
	}{
		{"name with a dot", "PUT", "/v1/consumers/a.b", map[string]any{"tags": tags}, 400, "name"},
		{"name too long", "PUT", "/v1/consumers/" + strings.Repeat("a", 65), map[string]any{"tags": tags}, 400, "name"},
		{"name not ascii", "GET", "/v1/consumers/caf%C3%A9", nil, 400, "name"},
		{"not json", "PUT", "/v1/consumers/c", `{"tags": [`, 400, ""},
		{"empty body", "PUT", "/v1/consumers/c", "", 400, ""},
		{"bad pattern", "PUT", "/v1/consumers/c", map[string]any{"tags": []string{"ORDER.*", "ORDER..X"}}, 422, "/tags/1"},
		{"overlapping tags", "PUT", "/v1/consumers/c", map[string]any{"tags": []string{"ORDER.*", "*.CREATED"}}, 422, "/tags"},
		{"too many tags", "PUT", "/v1/consumers/c", map[string]any{"tags": manyTags(MaxTags + 1)}, 422, "/tags"},
		{"tags of the wrong type", "PUT", "/v1/consumers/c", map[string]any{"tags": "ORDER.*"}, 422, "/tags"},
		{"unknown member", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "colour": "red"}, 422, "/colour"},
		{"unknown start", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "start": "latest"}, 422, "/start"},
		{"both starts", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "start": map[string]any{"since_seq": 1, "from": future}}, 422, "/start"},
		{"bad from", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "start": map[string]any{"from": "yesterday"}}, 422, "/start"},
		{"from in the future", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "start": map[string]any{"from": future}}, 422, "/start/from"},
		{"since_seq after the stream", "PUT", "/v1/consumers/c", map[string]any{"tags": tags, "start": map[string]any{"since_seq": 99}}, 409, "/start/since_seq"},
		{"another definition", "PUT", "/v1/consumers/orders", map[string]any{"tags": []string{"USER.*"}, "start": "all"}, 409, ""},
		{"get unknown", "GET", "/v1/consumers/nope", nil, 404, ""},
		{"read unknown", "GET", "/v1/consumers/nope/events?limit=1", nil, 404, ""},
		{"ack unknown", "POST", "/v1/consumers/nope/ack", map[string]any{"seq": 1}, 404, ""},
		{"seek unknown", "POST", "/v1/consumers/nope/seek", map[string]any{"seq": 1}, 404, ""},
		{"delete unknown", "DELETE", "/v1/consumers/nope", nil, 404, ""},
		{"no limit", "GET", "/v1/consumers/orders/events", nil, 400, "limit"},
		{"limit zero", "GET", "/v1/consumers/orders/events?limit=0", nil, 400, "limit"},
		{"limit too big", "GET", "/v1/consumers/orders/events?limit=10001", nil, 400, "limit"},
		{"limit not a number", "GET", "/v1/consumers/orders/events?limit=ten", nil, 400, "limit"},
		{"wait too long", "GET", "/v1/consumers/orders/events?limit=1&wait=31s", nil, 400, "wait"},
		{"wait negative", "GET", "/v1/consumers/orders/events?limit=1&wait=-1s", nil, 400, "wait"},
		{"wait not a duration", "GET", "/v1/consumers/orders/events?limit=1&wait=soon", nil, 400, "wait"},
		{"ack without seq", "POST", "/v1/consumers/orders/ack", map[string]any{}, 422, "/seq"},
		{"ack seq not a number", "POST", "/v1/consumers/orders/ack", map[string]any{"seq": "1"}, 422, "/seq"},
		{"ack not json", "POST", "/v1/consumers/orders/ack", "seq=1", 400, ""},
		{"ack undelivered", "POST", "/v1/consumers/orders/ack", map[string]any{"seq": 1}, 409, "/seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, raw := e.call(tt.method, tt.path, tt.body, nil)
			if code != tt.want {
				t.Fatalf("%s %s = %d %s; want %d", tt.method, tt.path, code, raw, tt.want)
			}
			p := decodeProblem(t, raw)
			if p.Status != tt.want || p.Detail == "" {
				t.Errorf("%s %s problem = %+v; want status %d and a detail", tt.method, tt.path, p, tt.want)
			}
			if tt.wantPointer != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != tt.wantPointer) {
				t.Errorf("%s %s errors = %+v; want the first at %q", tt.method, tt.path, p.Errors, tt.wantPointer)
			}
		})
	}

	t.Run("content type", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), "PUT", e.url+"/v1/consumers/c", strings.NewReader(`{"tags":["A.*"]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnsupportedMediaType || res.Header.Get("Content-Type") != problem.ContentType {
			t.Errorf("PUT text/plain = %d %s; want 415 %s", res.StatusCode, res.Header.Get("Content-Type"), problem.ContentType)
		}
	})

	t.Run("covered tags are folded", func(t *testing.T) {
		c := e.create("folded", []string{"ORDER.CREATED", "ORDER.*", "USER.>", "USER.LOGIN"}, "new")
		if diff := cmp.Diff([]string{"ORDER.*", "USER.>"}, c.Tags); diff != "" {
			t.Errorf("folded tags (-want +got):\n%s", diff)
		}
	})
}

func manyTags(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "T" + strings.Repeat("X", i) + ".CODE"
	}
	return out
}

func TestStartJSON(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 30, 0, 123456000, time.UTC)
	tests := []struct {
		in      string
		want    Start
		wantOut string
	}{
		{`"new"`, Start{Kind: StartNew}, `"new"`},
		{`"all"`, Start{Kind: StartAll}, `"all"`},
		{`{"since_seq": 42}`, Start{Kind: StartSinceSeq, SinceSeq: 42}, `{"since_seq":42}`},
		{`{"from": "2025-03-01T13:30:00.123456+01:00"}`, Start{Kind: StartFrom, From: at}, `{"from":"2025-03-01T12:30:00.123456Z"}`},
	}
	for _, tt := range tests {
		var got Start
		if err := jsonv2.Unmarshal([]byte(tt.in), &got); err != nil {
			t.Errorf("Unmarshal(%s) = %v; want nil", tt.in, err)
			continue
		}
		if !got.equal(tt.want) || got.Kind != tt.want.Kind {
			t.Errorf("Unmarshal(%s) = %+v; want %+v", tt.in, got, tt.want)
		}
		out, err := jsonv2.Marshal(got)
		if err != nil || string(out) != tt.wantOut {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", got, out, err, tt.wantOut)
		}
	}
	for _, in := range []string{`"latest"`, `3`, `{}`, `{"since_seq": 1, "from": "2025-03-01T00:00:00Z"}`, `{"since_seq": -1}`, `{"seq": 1}`, `{"from": "soon"}`} {
		var got Start
		if err := jsonv2.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, nil; want an error", in, got)
		}
	}
}
