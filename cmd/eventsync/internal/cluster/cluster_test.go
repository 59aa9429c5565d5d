package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/sqlitestore"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest"
	"github.com/eventsync/eventsync/services/store"
)

// The tests in this file run EventSync's services against a three-node
// JetStream cluster in the test process, with every stream and bucket at
// three replicas, and take nodes away under load.

// clusterPublishTimeout is ingest's publish timeout in these tests: short,
// so that a request whose ack is lost is answered 503 soon.
const clusterPublishTimeout = 2 * time.Second

// clusterWait bounds every wait for a condition in these tests.
const clusterWait = 30 * time.Second

// clusterEnv is a JetStream deployment with the streams EventSync needs:
// a three-node cluster at three replicas, or for comparison a single
// server at one.
type clusterEnv struct {
	c   *natstest.Cluster // nil for a single server
	url string            // every node's client URL, comma-separated
	cfg stream.Config
}

func newClusterEnv(t testing.TB) *clusterEnv {
	t.Helper()
	c := natstest.StartCluster(t, 3)
	e := &clusterEnv{c: c, url: c.URL(), cfg: stream.Config{Replicas: 3}}
	e.ensure(t)
	return e
}

func newSingleEnv(t testing.TB) *clusterEnv {
	t.Helper()
	e := &clusterEnv{url: natstest.Start(t).URL(), cfg: stream.Config{Replicas: 1}}
	e.ensure(t)
	return e
}

// ensure creates the streams and the subscriptions bucket, as the
// services do at start-up.
func (e *clusterEnv) ensure(t testing.TB) {
	t.Helper()
	js := e.connect(t, "eventsync-setup")
	ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
	defer cancel()
	if err := stream.Ensure(ctx, js, e.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.EnsureNotify(ctx, js, e.cfg); err != nil {
		t.Fatal(err)
	}
}

// connect opens a connection the way a service does (stream.Connect, every
// node's URL) and returns its JetStream context. Each service instance in
// these tests has its own, as separate processes would.
func (e *clusterEnv) connect(t testing.TB, name string) jetstream.JetStream {
	t.Helper()
	nc := e.connectNATS(t, name)
	js, err := stream.JetStream(nc, clusterPublishTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (e *clusterEnv) connectNATS(t testing.TB, name string) *nats.Conn {
	t.Helper()
	nc, err := stream.Connect(e.url, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testLogger logs warnings and errors to the test log with -v, else
// nothing.
func testLogger(t testing.TB, name string) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", name)
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// runService runs a service's Run until the test ends, and fails the test
// if Run returns an error, before or at the end.
func runService(t testing.TB, name string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run = %v; want nil", name, err)
			}
		case <-time.After(clusterWait):
			t.Errorf("%s: Run did not return within %s of being stopped", name, clusterWait)
		}
	})
	go func() {
		// A Run that returns before the test ends is a service that died.
		select {
		case err := <-done:
			done <- err
			if ctx.Err() == nil {
				t.Errorf("%s: Run returned %v while the test was running", name, err)
			}
		case <-ctx.Done():
		}
	}()
}

// startIngest runs an ingest instance (HTTP and the NATS request path)
// wired the way cmd/eventsync wires it, and returns its base URL.
func (e *clusterEnv) startIngest(t testing.TB) string {
	t.Helper()
	nc := e.connectNATS(t, "eventsync-ingest")
	js, err := stream.JetStream(nc, clusterPublishTimeout)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t, "ingest")
	gate, err := access.Open(t.Context(), js, access.Config{Auth: access.AuthNone}, e.cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := ingest.OpenGuard(t.Context(), js, gate, ingest.GuardConfig{}, e.cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ingest.New(ingest.Config{PublishTimeout: clusterPublishTimeout}, nc, js, guard.Trust, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(gate.Middleware(r))
	svc.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	runService(t, "gate", gate.Run)
	runService(t, "guard", guard.Run)
	runService(t, "ingest", svc.Run)
	return srv.URL
}

// storeDB is an event store as these tests use it.
type storeDB interface {
	Insert(ctx context.Context, events []event.Event) error
	InsertAttempts(ctx context.Context, attempts []delivery.Attempt) error
	Events(ctx context.Context, f eventstore.Filter) ([]event.Event, error)
}

// clusterBackends are the stores the cluster tests run against: the
// embedded one, and ClickHouse (skipped locally without a server, a
// failure under CI).
var clusterBackends = []struct {
	name string
	open func(t *testing.T) storeDB
}{
	{"embedded", func(t *testing.T) storeDB {
		db, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
	{"clickhouse", func(t *testing.T) storeDB {
		db, err := chstore.Open(t.Context(), chtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
}

// countingWriter counts the events one store instance inserted.
type countingWriter struct {
	storeDB
	mu     sync.Mutex
	events int
}

func (w *countingWriter) Insert(ctx context.Context, events []event.Event) error {
	err := w.storeDB.Insert(ctx, events)
	if err == nil {
		w.mu.Lock()
		w.events += len(events)
		w.mu.Unlock()
	}
	return err
}

func (w *countingWriter) inserted() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events
}

// startStore runs a store instance writing to db in batches of up to
// batch events and returns its counting writer.
func (e *clusterEnv) startStore(t *testing.T, db storeDB, batch int) *countingWriter {
	t.Helper()
	js := e.connect(t, "eventsync-store")
	w := &countingWriter{storeDB: db}
	// A short AckWait: messages delivered by a consumer leader that went
	// away come back soon.
	svc, err := store.New(store.Config{BatchSize: batch, BatchWait: 20 * time.Millisecond, InsertTimeout: 3 * time.Second, AckWait: 5 * time.Second},
		js, w, testLogger(t, "store"))
	if err != nil {
		t.Fatal(err)
	}
	runService(t, "store", svc.Run)
	return w
}

// outcome is one HTTP request of the load and its answer.
type outcome struct {
	sent, answered time.Time
	status         int
	body           string
	err            error
	ids            []string
	seqs           []uint64 // with a 202, the seq of each id
	fresh          int      // with a 202, how many events were new (not duplicates)
}

// load posts events with client-chosen ids over HTTP from several clients
// at once and records every answer. A client retries a request answered
// 503 with the same body (the same ids) until it gets a 202.
type load struct {
	base    string
	clients int
	batch   int
	hc      *http.Client

	mu       sync.Mutex
	outcomes []outcome

	stop chan struct{}
	wg   sync.WaitGroup
}

// clusterPace is the pause of a load client between two requests: the
// load is continuous but leaves the two cores of a small machine room for
// the cluster's own work (elections, catching up), as production headroom
// would.
const clusterPace = 5 * time.Millisecond

// startLoad starts clients posting batches of batch events to base.
func startLoad(t *testing.T, base string, clients, batch int) *load {
	t.Helper()
	l := &load{
		base: base, clients: clients, batch: batch,
		// Ingest answers within its publish timeout; the client timeout
		// only keeps a broken test from hanging.
		hc:   &http.Client{Timeout: clusterWait, Transport: &http.Transport{MaxIdleConnsPerHost: clients}},
		stop: make(chan struct{}),
	}
	for c := range clients {
		l.wg.Go(func() { l.client(c) })
	}
	t.Cleanup(l.finish)
	return l
}

func (l *load) client(c int) {
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		case <-time.After(clusterPace):
		}
		ids := make([]string, l.batch)
		var body bytes.Buffer
		body.WriteByte('[')
		for i := range ids {
			ids[i] = fmt.Sprintf("c%d-%d-%d", c, n, i)
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"id":%q,"tag":"LOAD.C%d","message":"event %d of request %d","session_id":"s%d"}`, ids[i], c, i, n, c)
		}
		body.WriteByte(']')
		// Retry until accepted, after stop too, so that every event the
		// load made up ends up acknowledged (checkStored reports those that
		// never were). Sooner than the Retry-After of 1 s ingest asks for,
		// to keep the test short.
		for first := time.Now(); ; {
			o := l.post(body.Bytes(), ids)
			l.record(o)
			if o.err != nil || o.status != http.StatusServiceUnavailable || time.Since(first) > clusterWait {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (l *load) post(body []byte, ids []string) outcome {
	o := outcome{sent: time.Now(), ids: ids}
	resp, err := l.hc.Post(l.base+"/v1/events", "application/json", bytes.NewReader(body))
	if err != nil {
		o.answered, o.err = time.Now(), err
		return o
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	o.answered, o.status, o.body, o.err = time.Now(), resp.StatusCode, string(b), err
	if o.status == http.StatusAccepted && err == nil {
		var r ingest.Response
		if err := json.Unmarshal(b, &r); err != nil || len(r.Events) != len(ids) {
			o.err = fmt.Errorf("202 body %s: %v", b, err)
			return o
		}
		for i, ev := range r.Events {
			if ev.ID != ids[i] {
				o.err = fmt.Errorf("202 body %s: event %d is %q; want %q", b, i, ev.ID, ids[i])
				return o
			}
			o.seqs = append(o.seqs, ev.Seq)
			if !ev.Duplicate {
				o.fresh++
			}
		}
	}
	return o
}

func (l *load) record(o outcome) {
	l.mu.Lock()
	l.outcomes = append(l.outcomes, o)
	l.mu.Unlock()
}

// finish stops starting new requests and waits until every client's last
// request is accepted (or its client gave up after clusterWait).
func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// snapshot returns the outcomes so far.
func (l *load) snapshot() []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.outcomes)
}

// waitUntil waits until cond holds for the outcomes so far, failing the
// test after clusterWait with what was seen.
func (l *load) waitUntil(t *testing.T, what string, cond func([]outcome) bool) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		got := l.snapshot()
		if cond(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("load: %s: not the case after %s; statuses so far: %v", what, clusterWait, statusCounts(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// acceptedSince is a condition: at least n requests sent at or after
// since were accepted.
func acceptedSince(since time.Time, n int) func([]outcome) bool {
	return func(outs []outcome) bool {
		c := 0
		for _, o := range outs {
			if o.status == http.StatusAccepted && !o.sent.Before(since) {
				c++
			}
		}
		return c >= n
	}
}

// answeredSince is a condition: at least n requests were sent and
// answered at or after since.
func answeredSince(since time.Time, n int) func([]outcome) bool {
	return func(outs []outcome) bool {
		c := 0
		for _, o := range outs {
			if !o.sent.Before(since) {
				c++
			}
		}
		return c >= n
	}
}

func statusCounts(outs []outcome) map[string]int {
	m := map[string]int{}
	for _, o := range outs {
		switch {
		case o.err != nil:
			m["error"]++
		default:
			m[fmt.Sprint(o.status)]++
		}
	}
	return m
}

// checkStatuses fails the test for any answer other than 202 or 503, and
// for any transport error: ingest itself never went away.
func checkStatuses(t *testing.T, outs []outcome) {
	t.Helper()
	bad := 0
	for _, o := range outs {
		if o.err == nil && (o.status == http.StatusAccepted || o.status == http.StatusServiceUnavailable) {
			continue
		}
		if bad++; bad <= 10 {
			t.Errorf("POST /v1/events (ids %s…) = %d %s, %v; want 202 or 503", o.ids[0], o.status, o.body, o.err)
		}
	}
	if bad > 10 {
		t.Errorf("… %d answers other than 202 or 503 in all", bad)
	}
}

// checkNotAcceptedWithin fails the test for a request sent and answered
// inside [from, to] that was accepted: no stream leader existed then, so
// nothing could be acknowledged. With duplicatesOK, a 202 whose every event
// was a duplicate is allowed: a leader that has lost its quorum but not yet
// noticed still answers a retry of events stored before from its dedupe
// state, and those events are durable. It returns how many requests fell
// inside the window.
func checkNotAcceptedWithin(t *testing.T, outs []outcome, from, to time.Time, duplicatesOK bool) int {
	t.Helper()
	n := 0
	for _, o := range outs {
		if o.sent.Before(from) || o.answered.After(to) {
			continue
		}
		n++
		if o.status == http.StatusAccepted && (o.fresh > 0 || !duplicatesOK) {
			t.Errorf("POST /v1/events (ids %s…) sent %s and answered %s into a window without a leader: 202 %s; want 503",
				o.ids[0], o.sent.Sub(from), o.answered.Sub(from), o.body)
		}
	}
	return n
}

// checkStored waits until every accepted event is in db, then checks that
// each is stored exactly once with the seq its 202 reported, and that no
// event is stored twice (also ones whose every request was answered 503).
func checkStored(t *testing.T, db storeDB, outs []outcome) {
	t.Helper()
	accepted := map[string]uint64{} // id -> seq from the 202
	made := map[string]bool{}
	for _, o := range outs {
		for i, id := range o.ids {
			made[id] = true
			if o.status == http.StatusAccepted && o.err == nil {
				if seq, ok := accepted[id]; ok && seq != o.seqs[i] {
					t.Errorf("event %s was accepted with seq %d and again with seq %d", id, seq, o.seqs[i])
				}
				accepted[id] = o.seqs[i]
			}
		}
	}
	for id := range made {
		if _, ok := accepted[id]; !ok {
			t.Errorf("event %s was never accepted", id)
		}
	}
	var stored []event.Event
	deadline := time.Now().Add(clusterWait)
	for {
		var err error
		stored, err = db.Events(t.Context(), eventstore.Filter{Limit: 10 * (len(made) + 1)})
		if err != nil {
			t.Fatalf("query the store: %v", err)
		}
		if missing := missingIDs(accepted, stored); len(missing) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted events not stored after %s, e.g. %v", len(missing), len(accepted), clusterWait, missing[:min(5, len(missing))])
		}
		time.Sleep(50 * time.Millisecond)
	}
	byID := map[string][]uint64{}
	for _, e := range stored {
		byID[e.ID] = append(byID[e.ID], e.Seq)
	}
	for id, seqs := range byID {
		switch {
		case !made[id]:
			t.Errorf("stored event %s (seqs %v) was never sent", id, seqs)
		case len(seqs) != 1:
			t.Errorf("event %s is stored %d times (seqs %v); want once", id, len(seqs), seqs)
		case seqs[0] != accepted[id]:
			t.Errorf("event %s is stored with seq %d; its 202 said %d", id, seqs[0], accepted[id])
		}
	}
	t.Logf("%d events accepted, %d stored", len(accepted), len(stored))
}

func missingIDs(accepted map[string]uint64, stored []event.Event) []string {
	have := make(map[string]bool, len(stored))
	for _, e := range stored {
		have[e.ID] = true
	}
	var missing []string
	for id := range accepted {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	return missing
}

// leaderElections records the leader elected advisories of the EVENTS
// stream. A node sends one when it becomes the stream's leader, before it
// starts accepting publishes: its time is a lower bound of the first ack
// the new leader can give.
type leaderElections struct {
	mu  sync.Mutex
	got []server.JSStreamLeaderElectedAdvisory
}

// watchElections subscribes to the advisories on each node of urls alone:
// a node publishes its advisory to its own clients first, so subscribing
// on every candidate does not depend on interest reaching it over a route.
// The nodes may be in the test process or not.
func watchElections(t *testing.T, urls []string) *leaderElections {
	t.Helper()
	le := &leaderElections{}
	for _, url := range urls {
		nc, err := stream.Connect(url, "eventsync-test-elections")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		_, err = nc.Subscribe(server.JSAdvisoryStreamLeaderElectedPre+"."+stream.Events, func(m *nats.Msg) {
			var a server.JSStreamLeaderElectedAdvisory
			if err := json.Unmarshal(m.Data, &a); err != nil {
				t.Errorf("leader elected advisory %s: %v", m.Data, err)
				return
			}
			le.mu.Lock()
			le.got = append(le.got, a)
			le.mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return le
}

// firstAfter waits for an election at or after since and returns the
// earliest.
func (le *leaderElections) firstAfter(t *testing.T, since time.Time) server.JSStreamLeaderElectedAdvisory {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		var first server.JSStreamLeaderElectedAdvisory
		le.mu.Lock()
		for _, a := range le.got {
			if !a.Time.Before(since) && (first.Time.IsZero() || a.Time.Before(first.Time)) {
				first = a
			}
		}
		le.mu.Unlock()
		if !first.Time.IsZero() {
			return first
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader elected advisory for %s after %s", stream.Events, clusterWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClusterLeaderLoss shuts down the EVENTS stream leader under
// continuous ingest, then a second node so that no leader can exist, and
// brings both back. Ingest answers only 202 or 503, never 202 for a
// request sent and answered while there was no leader, recovers by itself
// once there is one again, and every accepted event is stored exactly once.
func TestClusterLeaderLoss(t *testing.T) {
	for _, b := range clusterBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newClusterEnv(t)
			base := e.startIngest(t)
			db := b.open(t)
			e.startStore(t, db, 1000)
			l := startLoad(t, base, 4, 3)
			l.waitUntil(t, "warm-up", acceptedSince(time.Time{}, 50))

			// 1. The leader goes away; the two others elect a new one.
			// Shutting down, it hands leadership over, so the window without
			// a leader may be short or empty; in it no 202 at all is
			// possible: the old leader is gone, the new one does not take
			// publishes yet.
			first := e.c.WaitStreamLeader(t, stream.Events)
			var others []string
			for _, n := range e.c.Nodes() {
				if n != first {
					others = append(others, n.URL())
				}
			}
			elections := watchElections(t, others)
			stopping := time.Now()
			first.Shutdown()
			down := time.Now()
			elected := elections.firstAfter(t, stopping)
			second := e.c.WaitStreamLeader(t, stream.Events)
			if second == first {
				t.Fatalf("stream leader after shutting down %s is still %s", first.Name(), second.Name())
			}
			l.waitUntil(t, "202s after the new leader", acceptedSince(time.Now(), 20))
			n := checkNotAcceptedWithin(t, l.snapshot(), down, elected.Time, false)
			t.Logf("%s shut down in %s; %s elected %s after that; %d requests sent and answered in between",
				first.Name(), down.Sub(stopping), elected.Leader, elected.Time.Sub(down), n)

			// 2. A second node goes away: one node of three has no quorum,
			// so until a node comes back no event can be newly stored.
			second.Shutdown()
			noQuorum := time.Now()
			l.waitUntil(t, "answers without a quorum", answeredSince(noQuorum, 2*l.clients))
			back := time.Now()
			first.Restart()
			if n := checkNotAcceptedWithin(t, l.snapshot(), noQuorum, back, true); n == 0 {
				t.Errorf("no request was sent and answered while the stream had no quorum")
			}
			l.waitUntil(t, "202s after a node came back", acceptedSince(time.Now(), 20))

			// 3. The last node comes back and catches up.
			second.Restart()
			e.c.WaitHealthy(t)
			l.waitUntil(t, "202s on the whole cluster", acceptedSince(time.Now(), 20))
			l.finish()
			outs := l.snapshot()
			checkStatuses(t, outs)
			checkStored(t, db, outs)
			t.Logf("statuses: %v", statusCounts(outs))
		})
	}
}

// TestClusterRollingRestart restarts the three nodes one after the other
// under continuous ingest, each only once the previous one has caught up
// on every stream and consumer: ingest answers only 202 or 503 throughout
// and every accepted event is stored exactly once. It runs on the embedded
// store only (TestClusterLeaderLoss covers ClickHouse): the store side is
// the same consumer code, and the suite stays short.
func TestClusterRollingRestart(t *testing.T) {
	e := newClusterEnv(t)
	base := e.startIngest(t)
	db := clusterBackends[0].open(t)
	e.startStore(t, db, 1000)
	l := startLoad(t, base, 4, 3)
	l.waitUntil(t, "warm-up", acceptedSince(time.Time{}, 50))
	for _, n := range e.c.Nodes() {
		n.Shutdown()
		l.waitUntil(t, "202s with "+n.Name()+" down", acceptedSince(time.Now(), 20))
		n.Restart()
		e.c.WaitHealthy(t)
		l.waitUntil(t, "202s after "+n.Name()+" came back", acceptedSince(time.Now(), 20))
	}
	l.finish()
	outs := l.snapshot()
	checkStatuses(t, outs)
	checkStored(t, db, outs)
	t.Logf("statuses: %v", statusCounts(outs))
}

// benchDeployments are what the cluster benchmarks compare: one server
// with every stream at one replica, and the three-node cluster at three.
var benchDeployments = []struct {
	name  string
	start func(testing.TB) *clusterEnv
}{
	{"R1", newSingleEnv},
	{"R3", newClusterEnv},
}

// clusterBenchEvent is an event as ingest publishes it, about size bytes encoded.
func clusterBenchEvent(b *testing.B, id string, size int) []byte {
	b.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := event.Event{
		ID: id, Subject: "events.BENCH.PUBLISH", Tag: "BENCH.PUBLISH", Category: "BENCH", Code: "PUBLISH",
		Timestamp: now, ReceivedAt: now, Severity: event.Info, SessionID: "bench",
	}
	data, err := event.Encode(&ev)
	if err != nil {
		b.Fatal(err)
	}
	ev.Message = strings.Repeat("x", max(1, size-len(data)))
	if data, err = event.Encode(&ev); err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkClusterPublish publishes 300-byte events the way ingest does
// (PublishMsgAsync with Nats-Msg-Id and the expected stream, up to 4096
// acks outstanding) and waits for every ack: the JetStream ceiling under
// ingest, on one server at R1 and on the three-node cluster at R3.
func BenchmarkClusterPublish(b *testing.B) {
	for _, d := range benchDeployments {
		e := d.start(b)
		nc := e.connectNATS(b, "eventsync-bench")
		b.Run(d.name, func(b *testing.B) {
			var failed atomic.Int64
			js, err := jetstream.New(nc,
				jetstream.WithPublishAsyncMaxPending(4096),
				jetstream.WithPublishAsyncTimeout(clusterWait),
				jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }),
			)
			if err != nil {
				b.Fatal(err)
			}
			data := clusterBenchEvent(b, "bench-00000000-0000", 300)
			run := strconv.FormatInt(time.Now().UnixNano(), 36) // message ids unique across rounds
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := range b.N {
				msg := &nats.Msg{Subject: "events.BENCH.PUBLISH", Data: data}
				_, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(run+"-"+strconv.Itoa(i)),
					jetstream.WithExpectStream(stream.Events), jetstream.WithStallWait(clusterWait))
				if err != nil {
					b.Fatalf("publish %d: %v", i, err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(clusterWait):
				b.Fatalf("%d publishes unacknowledged after %s", js.PublishAsyncPending(), clusterWait)
			}
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d publishes failed", n, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkClusterIngest posts events to ingest over HTTP in arrays of
// 100 (about 300 bytes each as published) from 8 clients at once, and
// counts events answered 202, on one server at R1 and on the three-node
// cluster at R3.
func BenchmarkClusterIngest(b *testing.B) {
	const batch, clients = 100, 8
	for _, d := range benchDeployments {
		e := d.start(b)
		base := e.startIngest(b)
		hc := &http.Client{Timeout: clusterWait, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		b.Run(d.name, func(b *testing.B) {
			run := strconv.FormatInt(time.Now().UnixNano(), 36)
			bodies := make([][]byte, (b.N+batch-1)/batch)
			message := strings.Repeat("x", 120) // about 300 bytes once ingest stamps the event
			for r := range bodies {
				var body bytes.Buffer
				body.WriteByte('[')
				for i := range batch {
					if i > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"id":"%s-%d-%d","tag":"BENCH.INGEST","message":%q,"session_id":"bench"}`, run, r, i, message)
				}
				body.WriteByte(']')
				bodies[r] = body.Bytes()
			}
			var next atomic.Int64
			var bad atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for r := next.Add(1) - 1; r < int64(len(bodies)); r = next.Add(1) - 1 {
						resp, err := hc.Post(base+"/v1/events", "application/json", bytes.NewReader(bodies[r]))
						if err != nil {
							bad.Add(1)
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusAccepted {
							bad.Add(1)
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if n := bad.Load(); n > 0 {
				b.Fatalf("%d of %d requests not answered 202", n, len(bodies))
			}
			b.ReportMetric(float64(len(bodies)*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
