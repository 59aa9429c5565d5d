package notifier

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/problem"
)

// send makes an API request with a raw JSON body and returns the status
// and the answer's problem (zero unless the answer is one).
func (e *env) send(method, path, body string) (int, problem.Problem) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.api.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var p problem.Problem
	if res.Header.Get("Content-Type") == problem.ContentType {
		if err := jsonv2.Unmarshal(raw, &p); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return res.StatusCode, p
}

// TestProblemDetails checks the whole detail of every kind of bad request
// to the subscription API: each reads as a person would write it, names
// the member at fault, and names no Go type and no operation.
func TestProblemDetails(t *testing.T) {
	cfg := testConfig()
	cfg.AllowNets = ""
	e := newEnv(t, cfg)
	const hook = `"url": "https://93.184.216.34/hook"`
	sub := e.subscribe(map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A.*"}})
	shortSecret := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	secretRule := "must be whsec_ followed by the base64 of 24 to 64 random bytes; leave it out to have one generated"
	maxEvents := `must be from 1 to 1000 (use "batch": null for no batching)`
	fe := func(ptr, detail string) []problem.FieldError {
		return []problem.FieldError{{Pointer: ptr, Detail: detail}}
	}

	tests := []struct {
		name, method, path, body string
		status                   int
		detail                   string
		errs                     []problem.FieldError
	}{
		{"array body", "POST", "/v1/subscriptions", `[]`, 400,
			"the body must be a JSON object, not an array", nil},
		{"null body", "POST", "/v1/subscriptions", `null`, 400,
			"the body must be a JSON object, not null", nil},
		{"duplicate member", "POST", "/v1/subscriptions", `{` + hook + `, ` + hook + `}`, 400,
			"the body is not valid JSON: /url appears twice", nil},
		{"unknown member", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "filter": "x"}`, 422,
			"/filter is not a known member", fe("/filter", "is not a known member")},
		{"tags of the wrong type", "POST", "/v1/subscriptions", `{` + hook + `, "tags": "A.*"}`, 422,
			"/tags must be an array, not a string", fe("/tags", "must be an array, not a string")},
		{"no tags", "POST", "/v1/subscriptions", `{` + hook + `}`, 422,
			"/tags is required: at least one tag pattern such as DATABASE.* or TEST.>",
			fe("/tags", "is required: at least one tag pattern such as DATABASE.* or TEST.>")},
		{"bad pattern", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["DATABASE.>.X", "A.*", "A..B"]}`, 422,
			`/tags/0 "DATABASE.>.X" '>' may only be the last token`,
			[]problem.FieldError{
				{Pointer: "/tags/0", Detail: `"DATABASE.>.X" '>' may only be the last token`},
				{Pointer: "/tags/2", Detail: `"A..B" must not have empty tokens (leading, trailing or double dots)`},
			}},
		{"overlapping tags", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["DATABASE.*", "*.CONNECTION_LOST"]}`, 422,
			`/tags patterns "*.CONNECTION_LOST" and "DATABASE.*" overlap (some tag matches both); combine them into one pattern or use two subscriptions`,
			fe("/tags", `patterns "*.CONNECTION_LOST" and "DATABASE.*" overlap (some tag matches both); combine them into one pattern or use two subscriptions`)},
		{"secret not base64", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "secret": "whsec_!!"}`, 422,
			"/secret " + secretRule, fe("/secret", secretRule)},
		{"secret too short", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "secret": "` + shortSecret + `"}`, 422,
			"/secret " + secretRule, fe("/secret", secretRule)},
		{"bad secret beside other errors", "POST", "/v1/subscriptions", `{` + hook + `, "type": "pager", "tags": ["A.*"], "secret": "x"}`, 422,
			"/type must be webhook, slack or email",
			[]problem.FieldError{{Pointer: "/type", Detail: "must be webhook, slack or email"}, {Pointer: "/secret", Detail: secretRule}}},
		{"reserved header", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "headers": {"webhook-signature": "x"}}`, 422,
			"/headers/webhook-signature is set by EventSync and cannot be overridden",
			fe("/headers/webhook-signature", "is set by EventSync and cannot be overridden")},
		{"header injection", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "headers": {"X-A": "a\r\nX-B: b"}}`, 422,
			"/headers/X-A must be at most 4096 bytes without CR, LF or NUL",
			fe("/headers/X-A", "must be at most 4096 bytes without CR, LF or NUL")},
		{"header name", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "headers": {"a/b~c": "x"}}`, 422,
			"/headers/a~1b~0c is not a valid header name: names hold ASCII letters, digits and !#$%&'*+-.^_`|~",
			fe("/headers/a~1b~0c", "is not a valid header name: names hold ASCII letters, digits and !#$%&'*+-.^_`|~")},
		{"header value of the wrong type", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "headers": {"X-A": 1}}`, 422,
			"/headers/X-A must be a string, not a number", fe("/headers/X-A", "must be a string, not a number")},
		{"batch of zero", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "batch": {"max_events": 0}}`, 422,
			"/batch/max_events " + maxEvents, fe("/batch/max_events", maxEvents)},
		{"empty batch", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "batch": {}}`, 422,
			"/batch/max_events " + maxEvents, fe("/batch/max_events", maxEvents)},
		{"batch too big", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "batch": {"max_events": 5000, "max_wait_ms": -1}}`, 422,
			"/batch/max_events " + maxEvents,
			[]problem.FieldError{{Pointer: "/batch/max_events", Detail: maxEvents}, {Pointer: "/batch/max_wait_ms", Detail: "must be from 0 to 60000"}}},
		{"batch size as a string", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "batch": {"max_events": "5"}}`, 422,
			"/batch/max_events must be an integer, not a string", fe("/batch/max_events", "must be an integer, not a string")},
		{"batch unknown member", "POST", "/v1/subscriptions", `{` + hook + `, "tags": ["A.*"], "batch": {"size": 5}}`, 422,
			"/batch/size is not a known member", fe("/batch/size", "is not a known member")},

		{"url scheme", "POST", "/v1/subscriptions", `{"url": "ftp://93.184.216.34/x", "tags": ["A.*"]}`, 422,
			`/url must be an http or https URL, not "ftp"`, fe("/url", `must be an http or https URL, not "ftp"`)},
		{"url without host", "POST", "/v1/subscriptions", `{"url": "https:///x", "tags": ["A.*"]}`, 422,
			"/url must name a host", fe("/url", "must name a host")},
		{"email url", "POST", "/v1/subscriptions", `{"url": "mailto:", "type": "email", "tags": ["A.*"]}`, 422,
			"/url must name a recipient", fe("/url", "must name a recipient")},
		{"email field", "POST", "/v1/subscriptions", `{"url": "mailto:a@example.com?cc=b@example.com", "type": "email", "tags": ["A.*"]}`, 422,
			`/url may have the fields to and subject only, not "cc"`, fe("/url", `may have the fields to and subject only, not "cc"`)},

		{"patch array body", "PATCH", "/v1/subscriptions/" + sub.ID, `[]`, 400,
			"the body must be a JSON object, not an array", nil},
		{"patch unknown member", "PATCH", "/v1/subscriptions/" + sub.ID, `{"secret": "x"}`, 422,
			"/secret is not a known member", fe("/secret", "is not a known member")},
		{"patch url null", "PATCH", "/v1/subscriptions/" + sub.ID, `{"url": null, "tags": null}`, 422,
			"/url is required and cannot be null; leave it out to keep it",
			[]problem.FieldError{
				{Pointer: "/url", Detail: "is required and cannot be null; leave it out to keep it"},
				{Pointer: "/tags", Detail: "is required and cannot be null; leave it out to keep it"},
			}},
		{"patch url of the wrong type", "PATCH", "/v1/subscriptions/" + sub.ID, `{"url": 5}`, 422,
			"/url must be a string, not a number", fe("/url", "must be a string, not a number")},
		{"patch batch of zero", "PATCH", "/v1/subscriptions/" + sub.ID, `{"batch": {"max_events": 0}}`, 422,
			"/batch/max_events " + maxEvents, fe("/batch/max_events", maxEvents)},
		{"patch batch unknown member", "PATCH", "/v1/subscriptions/" + sub.ID, `{"batch": {"size": 5}}`, 422,
			"/batch/size is not a known member", fe("/batch/size", "is not a known member")},
		{"patch empty tags", "PATCH", "/v1/subscriptions/" + sub.ID, `{"tags": []}`, 422,
			"/tags is required: at least one tag pattern such as DATABASE.* or TEST.>",
			fe("/tags", "is required: at least one tag pattern such as DATABASE.* or TEST.>")},

		{"replay seq as a string", "POST", "/v1/subscriptions/" + sub.ID + "/replay", `{"since_seq": "1"}`, 422,
			"/since_seq must be a non-negative integer, not a string", fe("/since_seq", "must be a non-negative integer, not a string")},
		{"replay bad time", "POST", "/v1/subscriptions/" + sub.ID + "/replay", `{"from": "yesterday"}`, 422,
			"/from must be an RFC 3339 time such as 2025-01-02T15:04:05Z", fe("/from", "must be an RFC 3339 time such as 2025-01-02T15:04:05Z")},
		{"replay both", "POST", "/v1/subscriptions/" + sub.ID + "/replay", `{"since_seq": 1, "from": "2025-01-02T15:04:05Z"}`, 422,
			"give either since_seq or from/to, not both", fe("/since_seq", "cannot be combined with from/to")},
		{"dead letters of an unknown subscription", "POST", "/v1/dead-letters/replay?subscription=sub_nope", `{}`, 400,
			"subscription must be the id of an existing subscription", fe("subscription", "must be the id of an existing subscription")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, p := e.send(tt.method, tt.path, tt.body)
			if code != tt.status {
				t.Fatalf("%s %s %s = %d %+v; want %d", tt.method, tt.path, tt.body, code, p, tt.status)
			}
			if p.Detail != tt.detail {
				t.Errorf("%s %s %s detail = %q; want %q", tt.method, tt.path, tt.body, p.Detail, tt.detail)
			}
			if diff := cmp.Diff(tt.errs, p.Errors); diff != "" {
				t.Errorf("%s %s %s errors (-want +got):\n%s", tt.method, tt.path, tt.body, diff)
			}
		})
	}
}

// TestBatchRule checks that creation and PATCH follow one batch rule:
// null means no batching, max_events 0 is refused by both, and a batch
// object replaces the stored one whole.
func TestBatchRule(t *testing.T) {
	cfg := testConfig()
	cfg.AllowNets = ""
	e := newEnv(t, cfg)
	s := e.subscribe(map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A.*"}, "batch": map[string]any{"max_events": 10, "max_wait_ms": 200}})
	if s.Batch == nil || *s.Batch != (Batch{MaxEvents: 10, MaxWaitMS: 200}) {
		t.Fatalf("created batch = %+v; want 10 events, 200 ms", s.Batch)
	}
	path := "/v1/subscriptions/" + s.ID
	steps := []struct {
		name   string
		body   string
		status int
		want   *Batch
	}{
		{"other members keep the batch", `{"description": "d"}`, 200, &Batch{MaxEvents: 10, MaxWaitMS: 200}},
		{"zero is refused", `{"batch": {"max_events": 0}}`, 422, &Batch{MaxEvents: 10, MaxWaitMS: 200}},
		{"a batch without max_events is refused", `{"batch": {"max_wait_ms": 500}}`, 422, &Batch{MaxEvents: 10, MaxWaitMS: 200}},
		{"a batch replaces the batch whole", `{"batch": {"max_events": 5}}`, 200, &Batch{MaxEvents: 5}},
		{"one event per request is kept as asked", `{"batch": {"max_events": 1}}`, 200, &Batch{MaxEvents: 1}},
		{"null turns batching off", `{"batch": null}`, 200, nil},
		{"null again changes nothing", `{"batch": null}`, 200, nil},
		{"batching on again", `{"batch": {"max_events": 3, "max_wait_ms": 100}}`, 200, &Batch{MaxEvents: 3, MaxWaitMS: 100}},
	}
	for _, st := range steps {
		if code, p := e.send("PATCH", path, st.body); code != st.status {
			t.Fatalf("%s: PATCH %s = %d %+v; want %d", st.name, st.body, code, p, st.status)
		}
		if got := e.getSub(s.ID).Batch; !cmp.Equal(got, st.want) {
			t.Errorf("%s: after PATCH %s batch = %+v; want %+v", st.name, st.body, got, st.want)
		}
	}
	if code, _ := e.send("POST", "/v1/subscriptions", `{"url": "https://93.184.216.34/hook", "tags": ["B.*"], "batch": null}`); code != http.StatusCreated {
		t.Errorf(`POST with "batch": null = %d; want 201`, code)
	}
}

// TestPatchNull checks what null does to the members of a PATCH.
func TestPatchNull(t *testing.T) {
	cfg := testConfig()
	cfg.AllowNets = ""
	e := newEnv(t, cfg)
	s := e.subscribe(map[string]any{
		"url": "https://93.184.216.34/hook", "type": "webhook", "tags": []string{"B.*", "A.*"},
		"description": "d", "headers": map[string]string{"X-Team": "ops"},
	})
	if diff := cmp.Diff([]string{"A.*", "B.*"}, s.Tags); diff != "" {
		t.Errorf("created tags (-want +got):\n%s", diff)
	}
	if code, p := e.send("PATCH", "/v1/subscriptions/"+s.ID, `{"description": null, "headers": null, "type": null}`); code != http.StatusOK {
		t.Fatalf("PATCH nulls = %d %+v; want 200", code, p)
	}
	got := e.getSub(s.ID)
	if got.Description != "" || got.Headers != nil || got.Type != Webhook || got.URL != s.URL || !cmp.Equal(got.Tags, s.Tags) {
		t.Errorf("after PATCH nulls = %+v; want no description, no headers, type webhook, url and tags kept", got)
	}
}
