package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/webhook"
	"github.com/eventsync/eventsync/services/notifier"
)

// startNotifier runs a notifier instance with its own connection and
// metrics registry, as a separate process would have, and returns it with
// the registry.
func (e *clusterEnv) startNotifier(t *testing.T) (*notifier.Service, *prometheus.Registry) {
	t.Helper()
	js := e.connect(t, "eventsync-notifier")
	kv, err := stream.EnsureNotify(t.Context(), js, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc, err := notifier.New(notifier.Config{
		Timeout:   2 * time.Second,
		AckWait:   10 * time.Second,
		Schedule:  notifier.Schedule{0, 50 * time.Millisecond, 100 * time.Millisecond},
		AllowNets: "127.0.0.0/8,::1/128", // the receiver is a loopback test server
		Stream:    e.cfg,
	}, js, kv, reg, testLogger(t, "notifier"))
	if err != nil {
		t.Fatal(err)
	}
	runService(t, "notifier", svc.Run)
	return svc, reg
}

// counter reads a counter of reg with the given label value.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// hookReceiver is a webhook endpoint that verifies each delivery's signature
// and records which event each webhook-id carried, and whether two
// deliveries of one webhook-id were ever in flight at once.
type hookReceiver struct {
	t *testing.T

	mu         sync.Mutex
	secret     string
	inFlight   map[string]bool     // webhook-id → being delivered now
	deliveries map[string][]string // event id → webhook-ids of its deliveries
	eventOf    map[string]string   // webhook-id → event id
	overlaps   []string            // webhook-ids delivered twice at once
	bad        []string            // deliveries that failed verification
}

func newHookReceiver(t *testing.T) (*hookReceiver, string) {
	r := &hookReceiver{t: t, inFlight: map[string]bool{}, deliveries: map[string][]string{}, eventOf: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *hookReceiver) setSecret(s string) {
	r.mu.Lock()
	r.secret = s
	r.mu.Unlock()
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	if err == nil {
		err = webhook.Verify(secret, req.Header, body)
	}
	var ev struct {
		ID string `json:"id"`
	}
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	id := req.Header.Get(webhook.HeaderID)
	if err != nil || ev.ID == "" {
		r.mu.Lock()
		r.bad = append(r.bad, fmt.Sprintf("%s: %v: %s", id, err, body))
		r.mu.Unlock()
		http.Error(w, "bad delivery", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	if r.inFlight[id] {
		r.overlaps = append(r.overlaps, id)
	}
	r.inFlight[id] = true
	r.mu.Unlock()
	// Hold the delivery a moment, so that a second one of the same
	// webhook-id would overlap it.
	time.Sleep(time.Millisecond)
	r.mu.Lock()
	delete(r.inFlight, id)
	r.deliveries[ev.ID] = append(r.deliveries[ev.ID], id)
	if prev, ok := r.eventOf[id]; ok && prev != ev.ID {
		r.bad = append(r.bad, fmt.Sprintf("webhook-id %s carried event %s and event %s", id, prev, ev.ID))
	}
	r.eventOf[id] = ev.ID
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *hookReceiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deliveries)
}

// TestClusterSharedConsumers runs two store and two notifier instances
// against the same durable consumers on the cluster, as two replicas of
// each deployment would: both instances of each do part of the work,
// every event is stored once and delivered once, and no event is ever
// being delivered by both notifiers at the same time.
func TestClusterSharedConsumers(t *testing.T) {
	dsn := chtest.DSN(t)
	e := newClusterEnv(t)
	base := e.startIngest(t)

	// Two store processes writing to one ClickHouse database.
	var stores []*countingWriter
	var db storeDB
	for range 2 {
		s, err := chstore.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db = s
		stores = append(stores, e.startStore(t, s, 100))
	}

	recv, url := newHookReceiver(t)
	first, reg1 := e.startNotifier(t)
	_, reg2 := e.startNotifier(t)
	regs := []*prometheus.Registry{reg1, reg2}
	r := chi.NewRouter()
	first.Mount(r)
	api := httptest.NewServer(r)
	t.Cleanup(api.Close)
	c, err := client.New(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.CreateSubscription(t.Context(), client.SubscriptionSpec{URL: url, Tags: []string{"LOAD.>"}})
	if err != nil {
		t.Fatalf("create subscription: %v; want 201", err)
	}
	recv.setSecret(sub.Secret)

	// Load until each instance of both services has done some of the work.
	l := startLoad(t, base, 4, 5)
	delivered := func(reg *prometheus.Registry) float64 {
		return counter(t, reg, "eventsync_notifier_attempts_total", "outcome", "delivered")
	}
	deadline := time.Now().Add(clusterWait)
	for {
		accepted := 0
		for _, o := range l.snapshot() {
			if o.status == http.StatusAccepted {
				accepted += len(o.ids)
			}
		}
		if accepted >= 1000 && stores[0].inserted() > 0 && stores[1].inserted() > 0 && delivered(reg1) > 0 && delivered(reg2) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d events accepted, stored by the two stores %d and %d, delivered by the two notifiers %v and %v; want every instance to do some",
				clusterWait, accepted, stores[0].inserted(), stores[1].inserted(), delivered(reg1), delivered(reg2))
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.finish()
	outs := l.snapshot()
	checkStatuses(t, outs)
	checkStored(t, db, outs)

	want := map[string]bool{}
	for _, o := range outs {
		for _, id := range o.ids {
			want[id] = true
		}
	}
	deadline = time.Now().Add(clusterWait)
	for recv.delivered() < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for id := range want {
		if n := len(recv.deliveries[id]); n != 1 {
			t.Errorf("event %s delivered %d times; want once", id, n)
		}
	}
	for id, hooks := range recv.deliveries {
		if !want[id] {
			t.Errorf("event %s delivered (webhook-ids %v) but never sent", id, hooks)
		}
	}
	for _, id := range recv.overlaps {
		t.Errorf("webhook-id %s was being delivered twice at the same time", id)
	}
	for _, b := range recv.bad {
		t.Errorf("bad delivery: %s", b)
	}
	var total float64
	for i, reg := range regs {
		total += delivered(reg)
		t.Logf("notifier %d delivered %v events; store %d inserted %d", i+1, delivered(reg), i+1, stores[i].inserted())
	}
	if int(total) != len(want) {
		t.Errorf("the notifiers delivered %v events in all; want %d (each once)", total, len(want))
	}
}
