package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/google/go-cmp/cmp"
)

// clientCLI runs a client command against the server at base with stdin as
// its input, and returns what it printed.
func clientCLI(t *testing.T, base, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	env := map[string]string{"EVENTSYNC_SERVER": base}
	return clientCLIEnv(t, env, stdin, args...)
}

func clientCLIEnv(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runCLI(t.Context(), env, strings.NewReader(stdin), &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

// runCLI runs the client command args name, as `eventsync args…` does,
// with env as its environment.
func runCLI(ctx context.Context, env map[string]string, stdin io.Reader, stdout, stderr io.Writer, args ...string) error {
	return Run(ctx, args[0], args[1:], Console{In: stdin, Out: stdout, Err: stderr, Getenv: func(k string) string { return env[k] }})
}

// startApp starts the all-in-one with its embedded store and the test
// settings of apptest.Fast, and returns its base URL.
func startApp(t *testing.T) string {
	t.Helper()
	return apptest.Start(t, nil, apptest.Fast...).Base
}

// mustClientCLI is clientCLI that fails the test on an error.
func mustClientCLI(t *testing.T, base, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := clientCLI(t, base, stdin, args...)
	if err != nil {
		t.Fatalf("eventsync %q = %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	return out
}

// jsonLines decodes NDJSON events.
func jsonLines(t *testing.T, out string) []event.Event {
	t.Helper()
	var events []event.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("--json line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	return events
}

// queryUntil runs query --json with args until it prints want events.
func queryUntil(t *testing.T, base string, want int, args ...string) []event.Event {
	t.Helper()
	args = append([]string{"query", "--json", "--limit", "0"}, args...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := jsonLines(t, mustClientCLI(t, base, "", args...))
		if len(got) >= want || time.Now().After(deadline) {
			if len(got) != want {
				t.Fatalf("eventsync %q: %d events; want %d", args, len(got), want)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCLISendAndQuery(t *testing.T) {
	base := startApp(t)

	out := mustClientCLI(t, base, "", "send", "--tag", "DATABASE.CONNECTION_LOST", "--message", "primary unreachable",
		"--session", "s-1", "--source", "db-1", "--severity", "error", "--data", `{"host":"db-1","port":5432}`)
	if !strings.Contains(out, "1 accepted, 0 duplicates") {
		t.Errorf("send by flags printed %q; want 1 accepted", out)
	}
	got := queryUntil(t, base, 1, "--tag", "DATABASE.*")
	e := got[0]
	if e.Tag != "DATABASE.CONNECTION_LOST" || e.Message != "primary unreachable" || e.SessionID != "s-1" ||
		e.Source != "db-1" || e.Severity != event.Error || string(e.Data) != `{"host":"db-1","port":5432}` {
		t.Errorf("stored event = %+v; want the flags' event", e)
	}

	// 5,000 events from an NDJSON file, streamed: each stored once, and
	// sending the file again stores nothing new.
	const n = 5000
	var file bytes.Buffer
	for i := range n {
		fmt.Fprintf(&file, `{"id":"load-%05d","tag":"LOAD.TEST","message":"event %d","session_id":"load","data":{"i":%d}}`+"\n", i, i, i)
	}
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustClientCLI(t, base, "", "send", "--file", path)
	if want := fmt.Sprintf("Sent %d events: %d accepted, 0 duplicates.", n, n); !strings.Contains(out, want) {
		t.Errorf("send --file printed %q; want %q", out, want)
	}
	loaded := queryUntil(t, base, n, "--tag", "LOAD.>")
	ids := map[string]bool{}
	for _, e := range loaded {
		ids[e.ID] = true
	}
	if len(ids) != n {
		t.Errorf("query found %d distinct ids among %d events; want %d", len(ids), len(loaded), n)
	}
	out = mustClientCLI(t, base, "", "send", "--file", path, "--json")
	var sum sendSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("send --json printed %q: %v", out, err)
	}
	if diff := cmp.Diff(sendSummary{Duplicates: n}, sum); diff != "" {
		t.Errorf("send of the same file again (-want +got):\n%s", diff)
	}

	t.Run("query table", func(t *testing.T) {
		out := mustClientCLI(t, base, "", "query", "--category", "DATABASE", "--severity", "warning")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("query printed %d lines; want header, one row, footer:\n%s", len(lines), out)
		}
		if f := strings.Fields(lines[0]); !cmp.Equal(f, []string{"SEQ", "TIME", "TAG", "SEVERITY", "MESSAGE"}) {
			t.Errorf("header = %q", lines[0])
		}
		row := strings.Fields(lines[1])
		if len(row) < 5 || row[0] != fmt.Sprint(e.Seq) || row[2] != "DATABASE.CONNECTION_LOST" || row[3] != "error" ||
			!strings.HasSuffix(lines[1], "primary unreachable") {
			t.Errorf("row = %q; want seq %d, the tag, error, the message", lines[1], e.Seq)
		}
		if want := fmt.Sprintf("1 event; continue with --since %d", e.Seq); lines[2] != want {
			t.Errorf("footer = %q; want %q", lines[2], want)
		}
	})
	t.Run("query limit and order", func(t *testing.T) {
		got := jsonLines(t, mustClientCLI(t, base, "", "query", "--json", "--tag", "LOAD.TEST", "--limit", "3", "--order", "desc"))
		var msgs []string
		for _, e := range got {
			msgs = append(msgs, e.Message)
		}
		if want := []string{"event 4999", "event 4998", "event 4997"}; !cmp.Equal(msgs, want) {
			t.Errorf("query --order desc --limit 3 = %q; want %q", msgs, want)
		}
		got = jsonLines(t, mustClientCLI(t, base, "", "query", "--json", "--tag", "LOAD.TEST", "--limit", "2", "--since", fmt.Sprint(loaded[9].Seq)))
		if len(got) != 2 || got[0].Seq != loaded[10].Seq || got[1].Seq != loaded[11].Seq {
			t.Errorf("query --since %d --limit 2 = %v; want seqs %d, %d", loaded[9].Seq, got, loaded[10].Seq, loaded[11].Seq)
		}
	})
	t.Run("sessions", func(t *testing.T) {
		out := mustClientCLI(t, base, "", "sessions", "s-1")
		if !strings.Contains(out, "primary unreachable") || strings.Count(out, "\n") != 2 {
			t.Errorf("sessions s-1 printed:\n%s\nwant a header and the one event", out)
		}
		got := jsonLines(t, mustClientCLI(t, base, "", "sessions", "--json", "load"))
		if len(got) != n {
			t.Errorf("sessions --json load: %d events; want %d", len(got), n)
		}
	})
	t.Run("stats", func(t *testing.T) {
		var s client.Stats
		out := mustClientCLI(t, base, "", "stats", "--json", "--tag", "LOAD.>", "--bucket", "day", "--from", "48h")
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("stats --json printed %q: %v", out, err)
		}
		var total uint64
		for _, c := range s.Counts {
			total += c.Count
		}
		if total != n || s.Bucket != "day" {
			t.Errorf("stats --json = %+v; want %d LOAD events by day", s, n)
		}
		out = mustClientCLI(t, base, "", "stats", "--tag", "LOAD.>")
		if !regexp.MustCompile(`(?m)^total\s+5000$`).MatchString(out) {
			t.Errorf("stats printed:\n%s\nwant a total of 5000", out)
		}
	})
}

func TestCLISendInput(t *testing.T) {
	base := startApp(t)
	tests := []struct {
		name  string
		input string
		want  int
	}{
		{"one object", `{"tag":"INPUT.ONE","message":"a"}`, 1},
		{"array", `[{"tag":"INPUT.ARRAY","message":"a"}, {"category":"INPUT","code":"ARRAY","message":"b","severity":"warning"}]`, 2},
		{"ndjson", "{\"tag\":\"INPUT.NDJSON\",\"message\":\"a\"}\n\n{\"tag\":\"INPUT.NDJSON\",\"message\":\"b\",\"timestamp\":\"2026-01-02T03:04:05Z\"}\n", 2},
		{"query output", `{"seq":7,"id":"round-trip-1","subject":"events.INPUT.ROUND","tag":"INPUT.ROUND","category":"INPUT","code":"ROUND","message":"m","received_at":"2026-01-02T03:04:05Z","data":null}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := mustClientCLI(t, base, tt.input, "send")
			if want := fmt.Sprintf("Sent %s: %d accepted, 0 duplicates.", plural(int64(tt.want), "event"), tt.want); !strings.Contains(out, want) {
				t.Errorf("send < %s printed %q; want %q", tt.input, out, want)
			}
		})
	}
	queryUntil(t, base, 6, "--category", "INPUT")
}

func TestCLIErrors(t *testing.T) {
	base := startApp(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens at its address any more
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string // in the error
	}{
		{"server down", `{"tag":"A.B","message":"m"}`, []string{"send", "--server", dead.URL}, []string{"1 event not sent", "connection refused"}},
		{"invalid event", "", []string{"send", "--tag", "NODOT", "--message", "m"}, []string{"send: 422", "/0/tag"}},
		{"refused events in a file", "{\"tag\":\"OK.ONE\",\"message\":\"m\"}\n{\"tag\":\"OK..TWO\"}\n", []string{"send"}, []string{"refused 1 event (the others", "send: 422", "/1/tag"}},
		{"bad json", "{\"tag\":\"OK.ONE\",\"message\":\"m\"}\n{nope\n", []string{"send"}, []string{"event 1", "after 1 events"}},
		{"no input", "", []string{"send"}, []string{"no events"}},
		{"bad data flag", "", []string{"send", "--tag", "A.B", "--message", "m", "--data", "[1]"}, []string{"--data: want a JSON object"}},
		{"bad severity", "", []string{"query", "--severity", "loud"}, []string{"--severity"}},
		{"bad pattern", "", []string{"query", "--tag", "A.>.B"}, []string{"query: 400", "tag"}},
		{"unknown session flag", "", []string{"sessions"}, []string{"takes a session id"}},
		{"unknown consumer", "", []string{"consumers", "next", "nobody", "--wait", "0s"}, []string{"consumers next: 404"}},
		{"replay needs a start", "", []string{"subs", "replay", "sub_x"}, []string{"--since-seq or --from"}},
		{"unknown subcommand", "", []string{"subs", "frobnicate"}, []string{`unknown subs command "frobnicate"`}},
		{"bad server", "", []string{"query", "--server", "localhost:1"}, []string{"--server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := clientCLI(t, base, tt.stdin, tt.args...)
			if err == nil {
				t.Fatalf("eventsync %q succeeded; want an error", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("eventsync %q = %v; want it to contain %q", tt.args, err, w)
				}
			}
		})
	}
}

func TestCLICredentials(t *testing.T) {
	base := apptest.Start(t, nil, "--auth", "producers", "--admin-token", "admin-secret", "--claim-on-first-write").Base
	admin, err := client.New(base, client.WithAdminToken("admin-secret"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := admin.CreateProducer(t.Context(), client.ProducerSpec{Name: "cli-sender", Tags: []string{"CLI.>"}})
	if err != nil {
		t.Fatalf("create producer: %v", err)
	}
	creds := struct{ id, password, apiKey string }{p.ID, p.Credentials.Password, p.Credentials.APIKey}
	env := func(token string) map[string]string {
		return map[string]string{"EVENTSYNC_SERVER": base, "EVENTSYNC_TOKEN": token}
	}
	tests := []struct {
		name    string
		token   string
		wantErr string
	}{
		{"api key", creds.apiKey, ""},
		{"id and password", creds.id + ":" + creds.password, ""},
		{"no credential", "", "send: 401"},
		{"wrong password", creds.id + ":nope", "send: 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := clientCLIEnv(t, env(tt.token), "", "send", "--tag", "CLI.SECURED", "--message", tt.name)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("send with %s = %v", tt.name, err)
			case tt.wantErr == "" && !strings.Contains(out, "1 accepted"):
				t.Errorf("send with %s printed %q; want 1 accepted", tt.name, out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("send with %s = %v; want %q", tt.name, err, tt.wantErr)
			}
		})
	}
	// A tag the producer may not write: 403 naming the event.
	_, _, err = clientCLIEnv(t, env(creds.apiKey), "", "send", "--tag", "OTHER.TAG", "--message", "m")
	if err == nil || !strings.Contains(err.Error(), "send: 403") {
		t.Errorf("send of a tag not allowed = %v; want a 403", err)
	}
}

func TestCLISubscriptions(t *testing.T) {
	base := startApp(t)
	var mu sync.Mutex
	var received int
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	out := mustClientCLI(t, base, "", "subs", "create", "--url", hook.URL, "--tags", "HOOK.*,TEST.>",
		"--description", "on-call", "--header", "X-Team: db")
	id := regexp.MustCompile(`(?m)^Created subscription (\S+)\.$`).FindStringSubmatch(out)
	secret := regexp.MustCompile(`(?m)^  (whsec_\S+)$`).FindStringSubmatch(out)
	if id == nil || secret == nil {
		t.Fatalf("subs create printed:\n%s\nwant the id and the secret", out)
	}

	out = mustClientCLI(t, base, "", "subs", "list")
	if !strings.Contains(out, id[1]) || !strings.Contains(out, "HOOK.*,TEST.>") || strings.Contains(out, "whsec_") {
		t.Errorf("subs list printed:\n%s\nwant %s with its tags and no secret", out, id[1])
	}
	var list struct {
		Subscriptions []client.Subscription `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(mustClientCLI(t, base, "", "subs", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Subscriptions) != 1 || list.Subscriptions[0].Headers["X-Team"] != "********" || list.Subscriptions[0].Description != "on-call" {
		t.Errorf("subs list --json = %+v; want the one subscription with its header (value masked) and description", list.Subscriptions)
	}

	mustClientCLI(t, base, "", "send", "--tag", "HOOK.FIRED", "--message", "m")
	queryUntil(t, base, 1, "--tag", "HOOK.*")
	out = mustClientCLI(t, base, "", "subs", "replay", id[1], "--since-seq", "0")
	if !regexp.MustCompile(`^Queued \d+ events for delivery to `).MatchString(out) {
		t.Errorf("subs replay printed %q", out)
	}

	out = mustClientCLI(t, base, "", "subs", "delete", id[1])
	if want := "Deleted subscription " + id[1] + ".\n"; out != want {
		t.Errorf("subs delete printed %q; want %q", out, want)
	}
	if out := mustClientCLI(t, base, "", "subs", "list"); out != "No subscriptions.\n" {
		t.Errorf("subs list after delete printed %q", out)
	}
	if _, _, err := clientCLI(t, base, "", "subs", "get", id[1]); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("subs get of a deleted subscription = %v; want a 404", err)
	}
}

func TestCLIConsumers(t *testing.T) {
	base := startApp(t)
	for i := range 3 {
		mustClientCLI(t, base, "", "send", "--tag", "ORDER.CREATED", "--message", fmt.Sprint("order ", i))
	}
	mustClientCLI(t, base, "", "send", "--tag", "OTHER.THING", "--message", "skipped")
	queryUntil(t, base, 4)

	out := mustClientCLI(t, base, "", "consumers", "create", "billing", "--tags", "ORDER.*", "--start", "all")
	if !strings.Contains(out, "Created consumer billing.") {
		t.Errorf("consumers create printed:\n%s", out)
	}
	var b client.Batch
	if err := json.Unmarshal([]byte(mustClientCLI(t, base, "", "consumers", "next", "billing", "--json", "--limit", "10")), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 3 || b.Events[0].Message != "order 0" {
		t.Fatalf("consumers next --json = %+v; want the 3 ORDER events", b)
	}
	// Not acknowledged: the same events again, as a table.
	out = mustClientCLI(t, base, "", "consumers", "next", "billing")
	if strings.Count(out, "ORDER.CREATED") != 3 || !strings.Contains(out, fmt.Sprintf("eventsync consumers ack billing %d", b.LastDelivered)) {
		t.Errorf("consumers next printed:\n%s\nwant 3 events and how to ack %d", out, b.LastDelivered)
	}
	out = mustClientCLI(t, base, "", "consumers", "ack", "billing", fmt.Sprint(b.LastDelivered))
	if want := fmt.Sprintf("Consumer billing: acked %d, delivered %d.\n", b.LastDelivered, b.LastDelivered); out != want {
		t.Errorf("consumers ack printed %q; want %q", out, want)
	}
	if out := mustClientCLI(t, base, "", "consumers", "next", "billing", "--wait", "10ms"); out != "No new events.\n" {
		t.Errorf("consumers next after ack printed %q", out)
	}
	out = mustClientCLI(t, base, "", "consumers", "list")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^billing\s+ORDER\.\*\s+%d\s`, b.LastDelivered)).MatchString(out) {
		t.Errorf("consumers list printed:\n%s", out)
	}

	// Seek back and read again, acknowledging with --ack.
	mustClientCLI(t, base, "", "consumers", "seek", "billing", "0")
	out = mustClientCLI(t, base, "", "consumers", "next", "billing", "--ack")
	if strings.Count(out, "ORDER.CREATED") != 3 || !strings.Contains(out, fmt.Sprintf("Acknowledged through seq %d.", b.LastDelivered)) {
		t.Errorf("consumers next --ack printed:\n%s", out)
	}
	mustClientCLI(t, base, "", "consumers", "delete", "billing")
	if out := mustClientCLI(t, base, "", "consumers", "list"); out != "No consumers.\n" {
		t.Errorf("consumers list after delete printed %q", out)
	}
}

// syncBuffer is a bytes.Buffer that a command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCLITail(t *testing.T) {
	base := startApp(t)
	mustClientCLI(t, base, "", "send", "--tag", "TAIL.BEFORE", "--message", "stored before")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	env := map[string]string{"EVENTSYNC_SERVER": base}
	go func() {
		done <- runCLI(ctx, env, nil, &out, &errOut, "tail", "--json", "--tag", "TAIL.*", "--since", "0")
	}()
	for i := range 3 {
		mustClientCLI(t, base, "", "send", "--tag", "TAIL.LIVE", "--message", fmt.Sprint("live ", i))
	}
	mustClientCLI(t, base, "", "send", "--tag", "OTHER.LIVE", "--message", "not matching")

	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "\n") < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail = %v\n%s", err, errOut.String())
	}
	var msgs []string
	for _, e := range jsonLines(t, out.String()) {
		msgs = append(msgs, e.Message)
	}
	if want := []string{"stored before", "live 0", "live 1", "live 2"}; !cmp.Equal(msgs, want) {
		t.Errorf("tail --json printed %q; want %q", msgs, want)
	}
}

func TestTailLine(t *testing.T) {
	e := event.Event{
		Seq: 42, Tag: "DATABASE.CONNECTION_LOST", Message: "primary\nunreachable\x1b[2J", Severity: event.Warning,
		Timestamp: time.Date(2026, 11, 23, 10, 4, 5, 120e6, time.Local), SessionID: "s-1", Data: json.RawMessage(`{"a":1}`),
	}
	tests := []struct {
		color bool
		want  string
	}{
		{false, "10:04:05.120 #42 WARNING  DATABASE.CONNECTION_LOST  primary unreachable [2J  session=s-1 data={\"a\":1}\n"},
		{true, "\x1b[2m10:04:05.120\x1b[0m \x1b[2m#42\x1b[0m \x1b[33mWARNING \x1b[0m \x1b[1mDATABASE.CONNECTION_LOST\x1b[0m  primary unreachable [2J  \x1b[2msession=s-1 data={\"a\":1}\x1b[0m\n"},
	}
	for _, tt := range tests {
		if got := tailLine(e, tt.color); got != tt.want {
			t.Errorf("tailLine(color %v) = %q; want %q", tt.color, got, tt.want)
		}
	}
}

func TestReadEvents(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    []string // messages
		wantErr string
	}{
		{"object", ` {"tag":"A.B","message":"one"} `, []string{"one"}, ""},
		{"array", "\uFEFF[{\"tag\":\"A.B\",\"message\":\"one\"},\n{\"tag\":\"A.B\",\"message\":\"two\"}]\n", []string{"one", "two"}, ""},
		{"empty array", `[]`, nil, ""},
		{"ndjson", "{\"message\":\"one\"}\r\n{\"message\":\"two\"}\n{\"message\":\"three\"}", []string{"one", "two", "three"}, ""},
		{"empty", " \n", nil, "no events"},
		{"not an object", `"text"`, nil, "event 0"},
		{"bad severity", `{"message":"one","severity":"loud"}`, nil, "event 0"},
		{"after the array", `[{"message":"one"}] {"message":"two"}`, []string{"one"}, "data after the array"},
		{"unterminated array", `[{"message":"one"}`, []string{"one"}, "end of array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			n, err := readEvents(strings.NewReader(tt.input), func(i int, e client.Event) error {
				if i != len(got) {
					t.Errorf("event index %d; want %d", i, len(got))
				}
				got = append(got, e.Message)
				return nil
			})
			if n != len(got) || !cmp.Equal(got, tt.want) {
				t.Errorf("readEvents(%q) = %d, %q; want %q", tt.input, n, got, tt.want)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("readEvents(%q) error = %v; want %q", tt.input, err, tt.wantErr)
			}
		})
	}
}
