package consumers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/stream"
)

func TestUnacknowledgedEventsComeBack(t *testing.T) {
	e := newEnv(t)
	o1 := e.publish("ORDER.CREATED")
	e.publish("USER.LOGIN")
	o2 := e.publish("ORDER.PAID")
	o3 := e.publish("ORDER.SHIPPED")
	c := e.create("orders", []string{"ORDER.*"}, "all")
	if c.Acked != 0 || c.LastDelivered != 0 || c.Pending != 3 {
		t.Fatalf("created = acked %d, last delivered %d, pending %d; want 0, 0, 3", c.Acked, c.LastDelivered, c.Pending)
	}

	steps := []struct {
		name      string
		limit     int
		ack       uint64 // acknowledged before reading, if not 0
		want      []uint64
		wantAcked uint64
		wantLast  uint64
	}{
		{"first page", 2, 0, []uint64{o1, o2}, 0, o2},
		{"everything", 10, 0, []uint64{o1, o2, o3}, 0, o3},
		{"again without ack", 10, 0, []uint64{o1, o2, o3}, 0, o3},
		{"after ack", 10, o2, []uint64{o3}, o2, o3},
		{"all acknowledged", 10, o3, []uint64{}, o3, o3},
	}
	for _, s := range steps {
		if s.ack != 0 {
			e.ack("orders", s.ack)
		}
		b := e.read("orders", s.limit)
		if diff := cmp.Diff(s.want, seqs(b)); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
		}
		if b.Acked != s.wantAcked || b.LastDelivered != s.wantLast {
			t.Errorf("%s: position = %d, %d; want %d, %d", s.name, b.Acked, b.LastDelivered, s.wantAcked, s.wantLast)
		}
	}

	// Events of other tags move last_delivered, so that acknowledging it
	// brings the lag to zero.
	u := e.publish("USER.LOGOUT")
	b := e.read("orders", 10)
	if len(b.Events) != 0 || b.LastDelivered != u {
		t.Fatalf("read after other tags = %d events, last delivered %d; want 0, %d", len(b.Events), b.LastDelivered, u)
	}
	e.ack("orders", b.LastDelivered)
	if got := e.get("orders"); got.Pending != 0 || got.Lag.Events != 0 {
		t.Errorf("after acknowledging everything: pending %d, lag %d; want 0, 0", got.Pending, got.Lag.Events)
	}
	if n := e.readers(); n != 0 {
		t.Errorf("EVENTS has %d consumers after the reads; want 0", n)
	}
}

func TestAckOutsideDelivered(t *testing.T) {
	e := newEnv(t)
	for range 4 {
		e.publish("ORDER.CREATED")
	}
	e.create("orders", []string{"ORDER.*"}, "all")
	e.read("orders", 3) // delivers 1–3

	steps := []struct {
		seq        uint64
		want       int
		wantDetail string
	}{
		{4, http.StatusConflict, "from 0 to 3"},
		{2, http.StatusOK, ""},
		{1, http.StatusConflict, "from 2 to 3"},
		{2, http.StatusOK, ""}, // acknowledging again is a no-op
		{3, http.StatusOK, ""},
		{4, http.StatusConflict, "from 3 to 3"},
	}
	for _, s := range steps {
		var p Position
		code, raw := e.call("POST", "/v1/consumers/orders/ack", map[string]any{"seq": s.seq}, &p)
		if code != s.want {
			t.Fatalf("ack %d = %d %s; want %d", s.seq, code, raw, s.want)
		}
		if s.want != http.StatusOK {
			pr := decodeProblem(t, raw)
			if !strings.Contains(pr.Detail, s.wantDetail) || len(pr.Errors) != 1 || pr.Errors[0].Pointer != "/seq" {
				t.Errorf("ack %d = %+v; want a detail with %q pointing at /seq", s.seq, pr, s.wantDetail)
			}
			continue
		}
		if p.Acked != s.seq || p.LastDelivered != 3 {
			t.Errorf("ack %d = %+v; want acked %d, last delivered 3", s.seq, p, s.seq)
		}
	}
}

func TestPositionsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	o1 := e.publish("ORDER.CREATED")
	o2 := e.publish("ORDER.PAID")
	o3 := e.publish("ORDER.SHIPPED")
	e.create("orders", []string{"ORDER.*"}, "all")
	e.read("orders", 2)
	e.ack("orders", o1)

	e.ns.Shutdown()
	e.ns.Restart()
	e.serve() // a new connection and a new API instance

	c := e.get("orders")
	if c.Acked != o1 || c.LastDelivered != o2 {
		t.Fatalf("after restart: acked %d, last delivered %d; want %d, %d", c.Acked, c.LastDelivered, o1, o2)
	}
	b := e.read("orders", 10)
	if diff := cmp.Diff([]uint64{o2, o3}, seqs(b)); diff != "" {
		t.Errorf("read after restart (-want +got):\n%s", diff)
	}
	if p := e.ack("orders", o3); p.Acked != o3 {
		t.Errorf("ack after restart = %+v; want acked %d", p, o3)
	}
}

func TestConsumersSeeTheirOwnTags(t *testing.T) {
	e := newEnv(t)
	e.create("orders", []string{"ORDER.*"}, "new")
	e.create("users", []string{"USER.>"}, "new")
	e.create("mixed", []string{"ORDER.CREATED", "USER.*"}, "new")
	want := map[string][]uint64{}
	for _, tag := range []string{"ORDER.CREATED", "USER.LOGIN", "ORDER.PAID", "USER.ADMIN.LOGIN", "BILLING.DUE"} {
		seq := e.publish(tag)
		switch {
		case strings.HasPrefix(tag, "ORDER."):
			want["orders"] = append(want["orders"], seq)
		case strings.HasPrefix(tag, "USER."):
			want["users"] = append(want["users"], seq)
		}
		if tag == "ORDER.CREATED" || tag == "USER.LOGIN" {
			want["mixed"] = append(want["mixed"], seq)
		}
	}
	for name, w := range want {
		b := e.read(name, 100)
		if diff := cmp.Diff(w, seqs(b)); diff != "" {
			t.Errorf("read(%q) (-want +got):\n%s", name, diff)
		}
		for _, ev := range b.Events {
			if ev.Tag == "" || ev.ID == "" || ev.Message != "event of "+ev.Tag {
				t.Errorf("read(%q) event = %+v; want a stored event with tag, id and message", name, ev)
			}
		}
	}
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t)
	e.create("orders", []string{"ORDER.*"}, "new")

	t.Run("returns empty after wait", func(t *testing.T) {
		e.publish("USER.LOGIN") // another tag does not end the wait
		b := e.readWait("orders", 10, "200ms")
		if len(b.Events) != 0 {
			t.Errorf("read = %v; want no events", seqs(b))
		}
	})

	t.Run("returns when an event arrives", func(t *testing.T) {
		got := make(chan Batch, 1)
		go func() {
			var b Batch
			code, raw := e.call("GET", "/v1/consumers/orders/events?limit=10&wait=30s", nil, &b)
			if code != http.StatusOK {
				t.Errorf("long poll = %d %s; want 200", code, raw)
			}
			got <- b
		}()
		e.waitForPull()
		seq := e.publish("ORDER.CREATED")
		b := <-got
		if diff := cmp.Diff([]uint64{seq}, seqs(b)); diff != "" {
			t.Errorf("long poll (-want +got):\n%s", diff)
		}
		if b.LastDelivered != seq {
			t.Errorf("long poll last delivered = %d; want %d", b.LastDelivered, seq)
		}
	})
}

// waitForPull waits until a read's consumer on EVENTS has a pull request
// waiting for messages.
func (e *env) waitForPull() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 20*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, stream.Events)
	if err != nil {
		e.t.Fatalf("stream: %v", err)
	}
	for {
		l := st.ListConsumers(ctx)
		for info := range l.Info() {
			if info.NumWaiting > 0 {
				return
			}
		}
		if err := l.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
			e.t.Fatalf("list consumers: %v", err)
		}
		select {
		case <-ctx.Done():
			e.t.Fatal("no read is waiting on EVENTS")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestPendingAndLag(t *testing.T) {
	e := newEnv(t)
	o1 := e.publish("ORDER.CREATED")
	e.publish("USER.LOGIN")
	o2 := e.publish("ORDER.PAID")
	o3 := e.publish("ORDER.SHIPPED")
	last := e.publish("USER.LOGOUT")
	e.create("orders", []string{"ORDER.*"}, "all")
	e.create("users", []string{"USER.*"}, "new")
	b := e.read("orders", 10)
	e.ack("orders", o1)
	if diff := cmp.Diff([]uint64{o1, o2, o3}, seqs(b)); diff != "" {
		t.Fatalf("read (-want +got):\n%s", diff)
	}
	e.clock.Set(b.Events[1].ReceivedAt.Add(90 * time.Second)) // o2 is the oldest pending

	var list List
	e.mustCall("GET", "/v1/consumers", nil, &list, http.StatusOK)
	type figures struct {
		Name          string
		Acked         uint64
		LastDelivered uint64
		Pending       uint64
		Lag           Lag
	}
	var got []figures
	for _, c := range list.Consumers {
		got = append(got, figures{c.Name, c.Acked, c.LastDelivered, c.Pending, c.Lag})
	}
	want := []figures{
		{"orders", o1, last, 2, Lag{Events: last - o1, AgeSeconds: 90}},
		{"users", last, last, 0, Lag{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /v1/consumers (-want +got):\n%s", diff)
	}

	e.ack("orders", o3)
	c := e.get("orders")
	if got, want := (figures{c.Name, c.Acked, c.LastDelivered, c.Pending, c.Lag}), (figures{"orders", o3, last, 0, Lag{Events: 1}}); got != want {
		t.Errorf("after ack = %+v; want %+v", got, want)
	}
	if n := e.readers(); n != 0 {
		t.Errorf("EVENTS has %d consumers after the listing; want 0", n)
	}
}

func TestSeek(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		e.publish("ORDER.CREATED")
	}
	st, err := e.js.Stream(t.Context(), stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context(), jetstream.WithPurgeSequence(3)); err != nil { // keeps 3–5
		t.Fatal(err)
	}
	if c := e.create("orders", []string{"ORDER.*"}, "all"); c.Acked != 2 {
		t.Fatalf("start all on a stream from 3 = acked %d; want 2", c.Acked)
	}

	tests := []struct {
		name     string
		body     any
		want     int
		wantRead []uint64
	}{
		{"after the last", map[string]any{"seq": 6}, http.StatusConflict, nil},
		{"before the first", map[string]any{"seq": 1}, http.StatusConflict, nil},
		{"to the last", map[string]any{"seq": 5}, http.StatusOK, []uint64{}},
		{"back to the start", map[string]any{"seq": 2}, http.StatusOK, []uint64{3, 4, 5}},
		{"into the middle", map[string]any{"seq": 3}, http.StatusOK, []uint64{4, 5}},
		{"no seq", map[string]any{}, http.StatusUnprocessableEntity, nil},
		{"negative", `{"seq": -1}`, http.StatusUnprocessableEntity, nil},
		{"not json", `{"seq": `, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.read("orders", 10) // deliver, so that a seek must also reset last_delivered
			var p Position
			code, raw := e.call("POST", "/v1/consumers/orders/seek", tt.body, &p)
			if code != tt.want {
				t.Fatalf("seek %v = %d %s; want %d", tt.body, code, raw, tt.want)
			}
			if code == http.StatusConflict && !strings.Contains(decodeProblem(t, raw).Detail, "from 2 to 5") {
				t.Errorf("seek %v = %s; want the range 2 to 5 in the detail", tt.body, raw)
			}
			if tt.wantRead == nil {
				return
			}
			if p.Acked != p.LastDelivered {
				t.Errorf("seek %v = %+v; want acked = last delivered", tt.body, p)
			}
			if diff := cmp.Diff(tt.wantRead, seqs(e.read("orders", 10))); diff != "" {
				t.Errorf("read after seek %v (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestStart(t *testing.T) {
	e := newEnv(t)
	s1 := e.publish("ORDER.CREATED")
	s2 := e.publish("ORDER.PAID")
	all := e.create("all", []string{"ORDER.*"}, "all")
	from := e.read("all", 10).Events[1].ReceivedAt
	tests := []struct {
		name      string
		start     any
		wantAcked uint64
	}{
		{"new", "new", s2},
		{"all", "all", 0},
		{"since_seq", map[string]any{"since_seq": s1}, s1},
		{"from", map[string]any{"from": from.Format(time.RFC3339Nano)}, s1},
		{"omitted", nil, s2},
	}
	for _, tt := range tests {
		if c := e.create("c-"+strings.ReplaceAll(tt.name, "_", "-"), []string{"ORDER.*"}, tt.start); c.Acked != tt.wantAcked || c.LastDelivered != tt.wantAcked {
			t.Errorf("start %v = acked %d, last delivered %d; want %d", tt.start, c.Acked, c.LastDelivered, tt.wantAcked)
		}
	}
	s3 := e.publish("ORDER.SHIPPED")
	if got := seqs(e.read("c-new", 10)); !cmp.Equal(got, []uint64{s3}) {
		t.Errorf("start new then read = %v; want [%d]", got, s3)
	}
	if got := seqs(e.read("c-from", 10)); !cmp.Equal(got, []uint64{s2, s3}) {
		t.Errorf("start from then read = %v; want [%d %d]", got, s2, s3)
	}
	if all.Start.Kind != StartAll {
		t.Errorf("created start = %+v; want all", all.Start)
	}

	// Creating again: the same definition is 200, another one 409.
	again := []struct {
		name string
		body map[string]any
		want int
	}{
		{"same", map[string]any{"tags": []string{"ORDER.*"}, "start": map[string]any{"since_seq": s1}}, http.StatusOK},
		{"same after folding", map[string]any{"tags": []string{"ORDER.PAID", "ORDER.*", "ORDER.*"}, "start": map[string]any{"since_seq": s1}}, http.StatusOK},
		{"other start", map[string]any{"tags": []string{"ORDER.*"}, "start": "all"}, http.StatusConflict},
		{"other tags", map[string]any{"tags": []string{"ORDER.>"}, "start": map[string]any{"since_seq": s1}}, http.StatusConflict},
	}
	for _, tt := range again {
		code, raw := e.call("PUT", "/v1/consumers/c-since-seq", tt.body, nil)
		if code != tt.want {
			t.Errorf("%s: PUT = %d %s; want %d", tt.name, code, raw, tt.want)
		}
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	seq := e.publish("ORDER.CREATED")
	e.create("orders", []string{"ORDER.*"}, "all")
	e.read("orders", 10)
	e.ack("orders", seq)
	e.mustCall("DELETE", "/v1/consumers/orders", nil, nil, http.StatusNoContent)
	e.mustCall("GET", "/v1/consumers/orders", nil, nil, http.StatusNotFound)
	e.mustCall("DELETE", "/v1/consumers/orders", nil, nil, http.StatusNotFound)
	// A consumer created again under the name starts afresh.
	if c := e.create("orders", []string{"ORDER.*"}, "all"); c.Acked != 0 || c.Pending != 1 {
		t.Errorf("created again = acked %d, pending %d; want 0, 1", c.Acked, c.Pending)
	}
	var list List
	e.mustCall("GET", "/v1/consumers", nil, &list, http.StatusOK)
	if len(list.Consumers) != 1 {
		t.Errorf("list = %+v; want one consumer", list)
	}
}

func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	e.create("orders", []string{"ORDER.*"}, "all")
	e.ns.Shutdown()
	for _, path := range []string{"/v1/consumers/orders", "/v1/consumers/orders/events?limit=1"} {
		code, raw := e.call("GET", path, nil, nil)
		if code != http.StatusServiceUnavailable {
			t.Errorf("GET %s with NATS down = %d %s; want 503", path, code, raw)
		}
	}
}
