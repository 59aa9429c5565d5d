package notifier

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/webhook"
	"github.com/eventsync/eventsync/services/notifier/internal/sink"
)

func TestWildcardRouting(t *testing.T) {
	e := newEnv(t, testConfig())
	patterns := map[string][]string{
		"db":    {"DATABASE.*"},
		"lost":  {"*.CONNECTION_LOST"},
		"test":  {"TEST.>"},
		"multi": {"DATABASE.PRIMARY.*", "AUTH.INVALID_TOKEN"},
	}
	recv := map[string]*receiver{}
	for name, tags := range patterns {
		rc := newReceiver(t)
		s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": tags})
		rc.secret = s.Secret
		recv[name] = rc
	}
	tags := []string{
		"DATABASE.CONNECTION_LOST",         // db, lost
		"DATABASE.DEADLOCK",                // db
		"AUTH.CONNECTION_LOST",             // lost
		"AUTH.INVALID_TOKEN",               // multi
		"TEST.NETWORK.TIMEOUT",             // test (multi-token category)
		"TEST.FLAKY",                       // test
		"DATABASE.PRIMARY.CONNECTION_LOST", // multi (category DATABASE.PRIMARY); not db, not lost
		"BILLING.CHARGED",                  // nobody
	}
	for _, tag := range tags {
		e.publish(tag)
	}
	want := map[string][]string{
		"db":    {"DATABASE.CONNECTION_LOST", "DATABASE.DEADLOCK"},
		"lost":  {"AUTH.CONNECTION_LOST", "DATABASE.CONNECTION_LOST"},
		"test":  {"TEST.FLAKY", "TEST.NETWORK.TIMEOUT"},
		"multi": {"AUTH.INVALID_TOKEN", "DATABASE.PRIMARY.CONNECTION_LOST"},
	}
	for name, rc := range recv {
		got := rc.wait(len(want[name]), 10*time.Second)
		var gotTags []string
		for _, ev := range got {
			gotTags = append(gotTags, ev.Tag)
		}
		sort.Strings(gotTags)
		if diff := cmp.Diff(want[name], gotTags); diff != "" {
			t.Errorf("%s %v received (-want +got):\n%s", name, patterns[name], diff)
		}
		rc.quiet(200 * time.Millisecond)
		if _, bad, _ := rc.snapshot(); bad != 0 {
			t.Errorf("%s: %d deliveries failed signature verification", name, bad)
		}
	}
}

func TestDeliveryIsTheStoredEventSigned(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}, "headers": map[string]string{"X-Team": "payments"}})
	rc.secret = s.Secret
	if !strings.HasPrefix(s.Secret, "whsec_") {
		t.Errorf("secret = %q; want a whsec_ secret", s.Secret)
	}
	sent := e.publish("ORDER.PLACED")
	got := rc.wait(1, 10*time.Second)[0]
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Errorf("delivered event differs from the stored one (-want +got):\n%s", diff)
	}
	rc.mu.Lock()
	h := rc.headers[0]
	rc.mu.Unlock()
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if h.Get(name) == "" {
			t.Errorf("header %s missing", name)
		}
	}
	if h.Get("X-Team") != "payments" {
		t.Errorf("X-Team = %q; want the subscription's header", h.Get("X-Team"))
	}
	// The secret is shown once: reads never return it.
	var raw map[string]any
	e.call("GET", "/v1/subscriptions/"+s.ID, nil, &raw)
	for _, k := range []string{"secret", "secrets"} {
		if _, ok := raw[k]; ok {
			t.Errorf("GET returned %q", k)
		}
	}
}

func TestReceiverDownThenUpGetsEverythingOnce(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	var mu sync.Mutex
	down := true
	rc.script(func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"DATABASE.>"}})
	rc.secret = s.Secret
	var sent []event.Event
	for range 30 {
		sent = append(sent, e.publish("DATABASE.CONNECTION_LOST"))
	}
	// Let every event fail at least twice.
	eventually(t, 10*time.Second, "failed attempts", func() bool {
		n, _, _ := rc.snapshot()
		return n >= 60
	})
	if st := e.getSub(s.ID); st.FailingSince.IsZero() {
		t.Errorf("failing_since is not set while the receiver fails")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	got := rc.wait(len(sent), 20*time.Second)
	if diff := cmp.Diff(ids(sent), ids(got)); diff != "" {
		t.Errorf("events after recovery (-want +got):\n%s", diff)
	}
	rc.quiet(300 * time.Millisecond)
	_, bad, seen := rc.snapshot()
	if bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	if len(seen) != len(sent) {
		t.Errorf("accepted %d distinct webhook-ids; want %d", len(seen), len(sent))
	}
	eventually(t, 5*time.Second, "failing_since cleared", func() bool { return e.getSub(s.ID).FailingSince.IsZero() })

	// Every attempt is audited: failures as retrying, then one delivered
	// record per event.
	eventually(t, 5*time.Second, "audit complete", func() bool {
		delivered := 0
		for _, a := range e.attempts(s.ID) {
			if a.Outcome == delivery.Delivered {
				delivered++
			}
		}
		return delivered == len(sent)
	})
	retrying := 0
	for _, a := range e.attempts(s.ID) {
		if a.Outcome == delivery.Retrying {
			retrying++
			if a.StatusCode != http.StatusServiceUnavailable || a.Attempt < 1 || a.URL != rc.srv.URL || a.EventID == "" || a.Response == "" {
				t.Errorf("retrying attempt = %+v; want status 503, attempt number, url, event id and response", a)
			}
		}
	}
	if retrying < 60 {
		t.Errorf("%d retrying attempts audited; want at least 60", retrying)
	}
}

func TestRetryScheduleExhaustedDeadLetters(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	rc.script(func(int) int { return http.StatusInternalServerError })
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"JOB.*"}})
	rc.secret = s.Secret
	ev := e.publish("JOB.FAILED")
	eventually(t, 10*time.Second, "dead letter", func() bool { return len(e.deadLetters(s.ID)) == 1 })
	n, _, _ := rc.snapshot()
	if n != testSchedule.Attempts() {
		t.Errorf("receiver saw %d attempts; want the schedule's %d", n, testSchedule.Attempts())
	}
	dl := e.deadLetters(s.ID)[0]
	if want := stream.NotifyDeadLetterSubject(s.ID, "JOB.FAILED"); dl.Subject != want {
		t.Errorf("dead letter subject = %q; want %q", dl.Subject, want)
	}
	if got := dl.Header.Get(stream.HeaderStatus); got != "500" {
		t.Errorf("dead letter status header = %q; want 500", got)
	}
	if dl.Header.Get(stream.HeaderReason) == "" {
		t.Errorf("dead letter has no reason header")
	}
	var stored event.Event
	if err := event.Decode(dl.Data, &stored); err != nil || stored.ID != ev.ID || stored.Seq != ev.Seq {
		t.Errorf("dead letter body = %+v (%v); want the stored event %s seq %d", stored, err, ev.ID, ev.Seq)
	}
	var last delivery.Attempt
	eventually(t, 5*time.Second, "final attempt audited", func() bool {
		as := e.attempts(s.ID)
		if len(as) != testSchedule.Attempts() {
			return false
		}
		last = as[len(as)-1]
		return true
	})
	if last.Outcome != delivery.DeadLettered || last.Attempt != testSchedule.Attempts() {
		t.Errorf("last attempt = %s #%d; want dead_lettered #%d", last.Outcome, last.Attempt, testSchedule.Attempts())
	}

	// Re-drive the dead letter once the receiver is fixed: it is delivered
	// through the same path, with the same webhook-id, and leaves the DLQ.
	rc.script(nil)
	var res replayed
	if code := e.call("POST", "/v1/dead-letters/replay?subscription="+s.ID, nil, &res); code != http.StatusAccepted || res.Queued != 1 {
		t.Fatalf("re-drive = %d %+v; want 202 with 1 queued", code, res)
	}
	got := rc.wait(1, 10*time.Second)
	if got[0].ID != ev.ID || got[0].Seq != ev.Seq {
		t.Errorf("re-driven event = %s seq %d; want %s seq %d", got[0].ID, got[0].Seq, ev.ID, ev.Seq)
	}
	eventually(t, 5*time.Second, "dead letter removed", func() bool { return len(e.deadLetters(s.ID)) == 0 })
}

func TestBadRequestDeadLettersAtOnce(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	rc.script(func(int) int { return http.StatusBadRequest })
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"JOB.*"}})
	rc.secret = s.Secret
	e.publish("JOB.FAILED")
	eventually(t, 10*time.Second, "dead letter", func() bool { return len(e.deadLetters(s.ID)) == 1 })
	time.Sleep(300 * time.Millisecond) // longer than the whole test schedule's first waits
	if n, _, _ := rc.snapshot(); n != 1 {
		t.Errorf("receiver saw %d attempts; want 1 (no retry after 400)", n)
	}
	if st := e.getSub(s.ID); st.State != Active {
		t.Errorf("state = %s; a 400 must not disable the subscription", st.State)
	}
}

func TestGoneDisablesSubscription(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	rc.script(func(int) int { return http.StatusGone })
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"JOB.*"}})
	rc.secret = s.Secret
	e.publish("JOB.DONE")
	eventually(t, 10*time.Second, "disabled", func() bool { return e.getSub(s.ID).State == Disabled })
	if got := e.getSub(s.ID); !strings.Contains(got.StateReason, "410") {
		t.Errorf("state reason = %q; want it to name the 410", got.StateReason)
	}
	// Events published while disabled wait; resuming delivers them.
	eventually(t, 5*time.Second, "worker stopped", func() bool { return e.svc.running() == 0 })
	n, _, _ := rc.snapshot()
	waiting := e.publish("JOB.DONE")
	time.Sleep(300 * time.Millisecond)
	if m, _, _ := rc.snapshot(); m != n {
		t.Fatalf("receiver got %d requests while the subscription was disabled", m-n)
	}
	rc.script(nil)
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/resume", nil, nil); code != http.StatusOK {
		t.Fatalf("resume = %d", code)
	}
	if got := rc.wait(1, 10*time.Second); got[0].ID != waiting.ID {
		t.Errorf("after resume got %s; want %s", got[0].ID, waiting.ID)
	}
}

func TestFailingTooLongDisables(t *testing.T) {
	cfg := testConfig()
	cfg.DisableAfter = 500 * time.Millisecond
	cfg.Schedule = Schedule{0, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond,
		100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	e := newEnv(t, cfg)
	rc := newReceiver(t)
	rc.script(func(int) int { return http.StatusBadGateway })
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"JOB.*"}})
	e.publish("JOB.DONE")
	eventually(t, 10*time.Second, "disabled", func() bool { return e.getSub(s.ID).State == Disabled })
	got := e.getSub(s.ID)
	if !strings.Contains(got.StateReason, "failed continuously") || got.FailingSince.IsZero() {
		t.Errorf("subscription = %+v; want disabled for failing continuously, with failing_since", got)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	cfg := testConfig()
	cfg.Schedule = Schedule{0, 10 * time.Millisecond, 2 * time.Second}
	e := newEnv(t, cfg)
	rc := newReceiver(t)
	rc.script(func(n int) int {
		if n == 1 {
			return http.StatusTooManyRequests // with Retry-After: 1
		}
		return http.StatusOK
	})
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"JOB.*"}})
	rc.secret = s.Secret
	e.publish("JOB.DONE")
	rc.wait(1, 10*time.Second)
	rc.mu.Lock()
	gap := rc.arrivals[1].Sub(rc.arrivals[0])
	rc.mu.Unlock()
	// The schedule says 10 ms; the receiver asked for a second.
	if gap < 900*time.Millisecond {
		t.Errorf("second attempt came %s after the 429; want Retry-After's 1s to be honoured", gap)
	}
}

func TestReplay(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}})
	rc.secret = s.Secret
	var sent []event.Event
	for range 5 {
		sent = append(sent, e.publish("ORDER.PLACED"))
		e.publish("OTHER.THING") // not for this subscription
	}
	rc.wait(5, 10*time.Second)

	rc.mu.Lock()
	before := len(rc.bodies)
	rc.mu.Unlock()
	var res replayed
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/replay", map[string]any{"since_seq": sent[1].Seq}, &res); code != http.StatusAccepted || res.Queued != 3 {
		t.Fatalf("replay since_seq = %d %+v; want 202 with 3 queued", code, res)
	}
	eventually(t, 10*time.Second, "replayed deliveries", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.bodies) == before+3
	})
	rc.mu.Lock()
	var replayedIDs []string
	for _, b := range rc.bodies[before:] {
		replayedIDs = append(replayedIDs, b[0].ID)
	}
	rc.mu.Unlock()
	slices.Sort(replayedIDs)
	if diff := cmp.Diff(ids(sent[2:]), replayedIDs); diff != "" {
		t.Errorf("replayed events (-want +got):\n%s", diff)
	}
	// A replay carries the original webhook-id: a deduplicating receiver
	// can tell it has seen it.
	_, _, seen := rc.snapshot()
	dups := 0
	for _, n := range seen {
		if n == 2 {
			dups++
		}
	}
	if dups != 3 {
		t.Errorf("%d webhook-ids seen twice; want the 3 replayed", dups)
	}

	// By time: everything from before the first event to now.
	from := sent[0].ReceivedAt.Add(-time.Second)
	to := time.Now().Add(time.Second)
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/replay", map[string]any{"from": from, "to": to}, &res); code != http.StatusAccepted || res.Queued != 5 {
		t.Fatalf("replay from/to = %d %+v; want 202 with 5 queued", code, res)
	}
	// A window before any event holds nothing.
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/replay", map[string]any{"from": from.Add(-time.Hour), "to": from}, &res); code != http.StatusAccepted || res.Queued != 0 {
		t.Errorf("replay of an empty window = %d %+v; want 202 with 0 queued", code, res)
	}
}

func TestBatchDelivery(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"METRIC.*"}, "batch": map[string]any{"max_events": 10, "max_wait_ms": 200}})
	rc.secret = s.Secret
	var sent []event.Event
	for range 25 {
		sent = append(sent, e.publish("METRIC.SAMPLE"))
	}
	got := rc.wait(25, 10*time.Second)
	if diff := cmp.Diff(ids(sent), ids(got)); diff != "" {
		t.Errorf("batched events (-want +got):\n%s", diff)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.bodies {
		if len(b) > 10 {
			t.Errorf("a batch held %d events; want at most 10", len(b))
		}
	}
	if len(rc.bodies) >= 25 {
		t.Errorf("%d requests for 25 events; want batches", len(rc.bodies))
	}
}

func TestRotateSecretSignsWithBoth(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"A.*"}})
	var rotated withSecret
	rotated.Subscription = &Subscription{}
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/rotate-secret", nil, &rotated); code != http.StatusOK || rotated.Secret == "" || rotated.Secret == s.Secret {
		t.Fatalf("rotate = %d, secret %q; want 200 and a new secret", code, rotated.Secret)
	}
	// Wait for the workers to pick up the new secret, then check that a
	// delivery verifies with the old and with the new secret.
	eventually(t, 5*time.Second, "new secret in use", func() bool {
		e.svc.mu.Lock()
		defer e.svc.mu.Unlock()
		w := e.svc.workers[s.ID]
		return w != nil && len(w.sub.Load().Secrets) == 2
	})
	e.publish("A.B")
	rc.wait(1, 10*time.Second)
	rc.mu.Lock()
	h := rc.headers[len(rc.headers)-1]
	rc.mu.Unlock()
	if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
		t.Errorf("webhook-signature has %d signatures; want 2 during rotation", n)
	}
	body, _ := event.Encode(&rc.events[0])
	for _, sec := range []string{s.Secret, rotated.Secret} {
		if err := webhook.Verify(sec, h, body); err != nil {
			t.Errorf("Verify with %s… = %v; want both secrets to verify", sec[:10], err)
		}
	}
}

func TestPauseResumePatchDelete(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"A.*"}})
	rc.secret = s.Secret
	eventually(t, 5*time.Second, "worker started", func() bool { return e.svc.running() == 1 })
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/pause", nil, nil); code != http.StatusOK {
		t.Fatalf("pause = %d", code)
	}
	eventually(t, 5*time.Second, "worker stopped", func() bool { return e.svc.running() == 0 })
	held := e.publish("A.X")
	rc.quiet(300 * time.Millisecond)
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/resume", nil, nil); code != http.StatusOK {
		t.Fatalf("resume = %d", code)
	}
	if got := rc.wait(1, 10*time.Second); got[0].ID != held.ID {
		t.Errorf("after resume got %s; want %s", got[0].ID, held.ID)
	}

	// PATCH the tags: routing follows at once.
	var patched Subscription
	if code := e.call("PATCH", "/v1/subscriptions/"+s.ID, map[string]any{"tags": []string{"B.*"}, "description": "b only"}, &patched); code != http.StatusOK {
		t.Fatalf("patch = %d", code)
	}
	if diff := cmp.Diff([]string{"B.*"}, patched.Tags); diff != "" || patched.Description != "b only" {
		t.Errorf("patched = %+v", patched)
	}
	e.publish("A.Y")
	b := e.publish("B.Y")
	if got := rc.wait(1, 10*time.Second); got[0].ID != b.ID {
		t.Errorf("after patch got %s (%s); want B.Y", got[0].ID, got[0].Tag)
	}
	rc.quiet(300 * time.Millisecond)

	var list struct {
		Subscriptions []Subscription `json:"subscriptions"`
	}
	if e.call("GET", "/v1/subscriptions", nil, &list); len(list.Subscriptions) != 1 || list.Subscriptions[0].ID != s.ID {
		t.Errorf("list = %+v; want the one subscription", list)
	}
	if code := e.call("DELETE", "/v1/subscriptions/"+s.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete = %d", code)
	}
	if code := e.call("GET", "/v1/subscriptions/"+s.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("GET after delete = %d; want 404", code)
	}
	if _, err := e.js.Consumer(t.Context(), stream.Events, stream.NotifyConsumer(s.ID)); err == nil {
		t.Errorf("the subscription's consumer still exists after delete")
	}
	e.publish("B.Z")
	rc.quiet(300 * time.Millisecond)
}

func TestRestartMidDeliveryLosesNothing(t *testing.T) {
	e := newEnv(t, testConfig())
	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}})
	rc.secret = s.Secret
	// A second instance comes and goes while events flow.
	_, stop := e.startStoppable(testConfig())
	var sent []event.Event
	for i := range 200 {
		sent = append(sent, e.publish("ORDER.PLACED"))
		if i == 100 {
			stop()
		}
	}
	got := rc.wait(len(sent), 30*time.Second)
	if diff := cmp.Diff(ids(sent), ids(got)); diff != "" {
		t.Errorf("events delivered across the restart (-want +got):\n%s", diff)
	}
}

func TestNotifierKilledAndRestarted(t *testing.T) {
	e := newBareEnv(t)
	rc := newReceiver(t)
	// The receiver is slow, so deliveries are in flight when the notifier stops.
	rc.script(func(int) int { time.Sleep(20 * time.Millisecond); return http.StatusOK })
	_, stopFirst := e.startStoppable(testConfig())
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}})
	rc.secret = s.Secret
	var sent []event.Event
	for range 300 {
		sent = append(sent, e.publish("ORDER.PLACED"))
	}
	rc.wait(20, 10*time.Second)
	stopFirst()
	e.start(testConfig())
	rc.wait(len(sent)-20, 30*time.Second)
	rc.mu.Lock()
	got := append([]event.Event(nil), rc.events...)
	rc.mu.Unlock()
	if diff := cmp.Diff(ids(sent), ids(got)); diff != "" {
		t.Errorf("events delivered across the restart (-want +got):\n%s", diff)
	}
}

func TestTwoInstancesShareWithoutDuplicates(t *testing.T) {
	e := newEnv(t, testConfig())
	e.start(testConfig())
	rc := newReceiver(t)
	s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"ORDER.*"}})
	rc.secret = s.Secret
	var sent []event.Event
	for range 500 {
		sent = append(sent, e.publish("ORDER.PLACED"))
	}
	rc.wait(len(sent), 30*time.Second)
	rc.quiet(300 * time.Millisecond)
	requests, _, seen := rc.snapshot()
	if requests != len(sent) {
		t.Errorf("receiver got %d requests for %d events; want each delivered once", requests, len(sent))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("webhook-id %s delivered %d times", id, n)
		}
	}
}

func TestOneDeadReceiverDoesNotHoldBackOthers(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 3 * time.Second
	e := newEnv(t, cfg)
	// The dead receiver hangs every request until the test ends.
	release := make(chan struct{})
	dead := newReceiver(t)
	dead.script(func(int) int {
		<-release
		return http.StatusServiceUnavailable
	})
	t.Cleanup(func() { close(release) })
	e.subscribe(map[string]any{"url": dead.srv.URL, "tags": []string{"LOAD.*"}})
	var healthy []*receiver
	for range 19 {
		rc := newReceiver(t)
		s := e.subscribe(map[string]any{"url": rc.srv.URL, "tags": []string{"LOAD.*"}})
		rc.secret = s.Secret
		healthy = append(healthy, rc)
	}
	const n = 100
	sentAt := map[string]time.Time{}
	for range n {
		ev := e.publish("LOAD.TICK")
		sentAt[ev.ID] = time.Now()
		time.Sleep(2 * time.Millisecond)
	}
	var lat []time.Duration
	for _, rc := range healthy {
		for _, ev := range rc.wait(n, 20*time.Second) {
			lat = append(lat, time.Since(sentAt[ev.ID]))
		}
	}
	slices.Sort(lat)
	t.Logf("19 healthy receivers beside a hanging one: %d deliveries, p50 %s, p99 %s",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100])
	if got, _, _ := dead.snapshot(); got == 0 {
		t.Errorf("the dead receiver got no request; the test did not exercise it")
	}
}

func TestAPIValidation(t *testing.T) {
	cfg := testConfig()
	cfg.AllowNets = "" // as in production: internal addresses are refused
	e := newEnv(t, cfg)
	tests := []struct {
		name    string
		body    any
		status  int
		pointer string
	}{
		{"bad pattern", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"DATABASE.>.X"}}, 422, "/tags/0"},
		{"empty token", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A..B"}}, 422, "/tags/0"},
		{"no tags", map[string]any{"url": "https://93.184.216.34/hook"}, 422, "/tags"},
		{"overlapping tags", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"DATABASE.*", "*.CONNECTION_LOST"}}, 422, "/tags"},
		{"no url", map[string]any{"tags": []string{"A.*"}}, 422, "/url"},
		{"loopback url", map[string]any{"url": "http://127.0.0.1:9/hook", "tags": []string{"A.*"}}, 422, "/url"},
		{"metadata url", map[string]any{"url": "http://169.254.169.254/latest/meta-data", "tags": []string{"A.*"}}, 422, "/url"},
		{"localhost name", map[string]any{"url": "http://localhost:8080/hook", "tags": []string{"A.*"}}, 422, "/url"},
		{"ftp url", map[string]any{"url": "ftp://93.184.216.34/x", "tags": []string{"A.*"}}, 422, "/url"},
		{"slack over http", map[string]any{"url": "http://93.184.216.34/services/x", "type": "slack", "tags": []string{"A.*"}}, 422, "/url"},
		{"unknown type", map[string]any{"url": "https://93.184.216.34/hook", "type": "pager", "tags": []string{"A.*"}}, 422, "/type"},
		{"email unconfigured", map[string]any{"url": "mailto:ops@example.com", "tags": []string{"A.*"}}, 422, "/type"},
		{"reserved header", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A.*"}, "headers": map[string]string{"webhook-signature": "x"}}, 422, "/headers/webhook-signature"},
		{"header injection", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A.*"}, "headers": map[string]string{"X-A": "a\r\nX-B: b"}}, 422, "/headers/X-A"},
		{"batch too big", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A.*"}, "batch": map[string]any{"max_events": 5000}}, 422, "/batch/max_events"},
		{"bad secret", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A.*"}, "secret": "whsec_!!"}, 422, "/secret"},
		{"unknown member", map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"A.*"}, "filter": "x"}, 422, "/filter"},
		{"wrong type", map[string]any{"url": "https://93.184.216.34/hook", "tags": "A.*"}, 422, "/tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p struct {
				Errors []struct {
					Pointer string `json:"pointer"`
					Detail  string `json:"detail"`
				} `json:"errors"`
			}
			code := e.call("POST", "/v1/subscriptions", tt.body, &p)
			if code != tt.status {
				t.Fatalf("POST %v = %d; want %d", tt.body, code, tt.status)
			}
			if len(p.Errors) == 0 || p.Errors[0].Pointer != tt.pointer || p.Errors[0].Detail == "" {
				t.Errorf("errors = %+v; want the first to point at %s with a detail", p.Errors, tt.pointer)
			}
		})
	}
	// Covered patterns are folded into the pattern that covers them.
	s := e.subscribe(map[string]any{"url": "https://93.184.216.34/hook", "tags": []string{"DATABASE.*", "DATABASE.CONNECTION_LOST", "TEST.>", "TEST.A.B"}})
	if diff := cmp.Diff([]string{"DATABASE.*", "TEST.>"}, s.Tags); diff != "" {
		t.Errorf("normalized tags (-want +got):\n%s", diff)
	}
	for _, path := range []string{"/v1/subscriptions/sub_nope", "/v1/subscriptions/..%2f..", "/v1/subscriptions/sub_0000/pause"} {
		method := "GET"
		if strings.HasSuffix(path, "pause") {
			method = "POST"
		}
		if code := e.call(method, path, nil, nil); code != http.StatusNotFound {
			t.Errorf("%s %s = %d; want 404", method, path, code)
		}
	}
	if code := e.call("POST", "/v1/subscriptions/"+s.ID+"/replay", map[string]any{"since_seq": 1, "from": time.Now()}, nil); code != 422 {
		t.Errorf("replay with since_seq and from = %d; want 422", code)
	}
	if code := e.call("POST", "/v1/dead-letters/replay?subscription=sub_nope", nil, nil); code != 400 {
		t.Errorf("dead-letter replay of an unknown subscription = %d; want 400", code)
	}
}

func TestScheduleParse(t *testing.T) {
	sc, err := ParseSchedule("0, 5s,30s,2m")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Schedule{0, 5 * time.Second, 30 * time.Second, 2 * time.Minute}, sc); diff != "" {
		t.Errorf("ParseSchedule (-want +got):\n%s", diff)
	}
	if got := DefaultSchedule.String(); got != "0,5s,30s,2m,10m,30m,1h,3h,6h" {
		t.Errorf("DefaultSchedule = %s", got)
	}
	var total time.Duration
	for _, d := range DefaultSchedule {
		total += d
	}
	if total < 10*time.Hour || total > 11*time.Hour {
		t.Errorf("default schedule spans %s; want about 10 h", total)
	}
	for _, bad := range []string{"", "x", "-1s", "5s,,"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) = nil error; want one", bad)
		}
	}
}

func TestDecide(t *testing.T) {
	s := &Service{cfg: Config{Schedule: Schedule{0, time.Second, time.Minute}}}
	tests := []struct {
		name     string
		verdict  int
		attempt  int
		retryAft time.Duration
		want     delivery.Outcome
		min, max time.Duration
	}{
		{"delivered", 0, 1, 0, delivery.Delivered, 0, 0},
		{"first retry", 1, 1, 0, delivery.Retrying, 800 * time.Millisecond, 1200 * time.Millisecond},
		{"second retry", 1, 2, 0, delivery.Retrying, 48 * time.Second, 72 * time.Second},
		{"exhausted", 1, 3, 0, delivery.DeadLettered, 0, 0},
		{"retry-after longer", 1, 1, 30 * time.Second, delivery.Retrying, 30 * time.Second, 30 * time.Second},
		{"retry-after capped", 1, 1, time.Hour, delivery.Retrying, time.Minute, time.Minute},
		{"reject", 2, 1, 0, delivery.DeadLettered, 0, 0},
		{"gone", 3, 1, 0, delivery.Disabled, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d := s.decide(sinkResult(tt.verdict, tt.retryAft), tt.attempt)
			if got != tt.want || d < tt.min || d > tt.max {
				t.Errorf("decide(attempt %d) = %s, %s; want %s within [%s, %s]", tt.attempt, got, d, tt.want, tt.min, tt.max)
			}
		})
	}
}

func sinkResult(v int, retryAfter time.Duration) sink.Result {
	return sink.Result{Verdict: sink.Verdict(v), RetryAfter: retryAfter}
}
