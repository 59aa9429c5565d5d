package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/chstore"
	"github.com/eventsync/eventsync/pkg/chtest"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/service/servicetest"
	"github.com/eventsync/eventsync/pkg/stream"
)

func status(t *testing.T, method, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Request-ID") == "" {
		t.Errorf("%s %s: no X-Request-ID", method, url)
	}
	return resp.StatusCode, string(b)
}

// TestWaitsForClickHouse: the query service started while ClickHouse is
// down stays up and not ready, naming the store, and serves once it is
// back (it used to exit).
func TestWaitsForClickHouse(t *testing.T) {
	dsn := chtest.DSN(t)
	proxy := chtest.NewProxy(t, strings.SplitN(strings.TrimPrefix(dsn, "clickhouse://"), "/", 2)[0])
	proxy.Cut()
	ns := natstest.Start(t)
	p := servicetest.Start(t, run, map[string]string{"NATS_URL": ns.URL(), "CLICKHOUSE_URL": proxy.DSN(dsn), "LOG_LEVEL": "warn", "AUTH": "none"})
	p.WaitUntil(t, 20*time.Second, "waiting for the store", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "event store clickhouse")
	})
	time.Sleep(time.Second)
	select {
	case <-p.Done():
		t.Fatalf("query exited while ClickHouse was down: %v", p.Err())
	default:
	}
	proxy.Restore()
	p.WaitReady(t, 30*time.Second)
	if code, body := status(t, "GET", p.Base+"/v1/events?since=0", nil); code != http.StatusOK {
		t.Errorf("GET /v1/events = %d %s; want 200", code, body)
	}
}

// TestRoutesAndBuckets runs the query service on a three-node JetStream
// cluster with replicas 3: the consumers bucket it uses has three
// replicas (it used to be created with one), the event server's read and
// ACK endpoints are served here, and the delivery audit of an unknown
// subscription is a 404.
func TestRoutesAndBuckets(t *testing.T) {
	dsn := chtest.DSN(t)
	cluster := natstest.StartCluster(t, 3)
	cluster.WaitMetaLeader(t)
	p := servicetest.Start(t, run, map[string]string{"NATS_URL": cluster.URL(), "CLICKHOUSE_URL": dsn, "STREAM_REPLICAS": "3", "LOG_LEVEL": "warn", "AUTH": "none"})
	p.WaitReady(t, 60*time.Second)

	js, err := jetstream.New(cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{stream.ConsumersBucket, stream.SubscriptionsBucket} {
		kv, err := js.KeyValue(t.Context(), name)
		if err != nil {
			t.Fatalf("bucket %s: %v", name, err)
		}
		st, err := kv.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
		if info.Config.Replicas != 3 {
			t.Errorf("bucket %s has %d replicas; want 3", name, info.Config.Replicas)
		}
	}

	// The event server's read endpoint answers here (an unknown stream is
	// its 404, not "no endpoint").
	code, body := status(t, "GET", p.Base+"/api/v1/streams/NOPE/events?eventName=X&limit=1", map[string]string{"X-Consumer-ID": "c1"})
	if code != http.StatusNotFound || strings.Contains(body, "no endpoint") {
		t.Errorf("GET event server stream = %d %s; want its 404 for an unknown stream", code, body)
	}

	// Delivery audit: unknown → 404; existing → 200; deleted but audited → 200.
	if code, body := status(t, "GET", p.Base+"/v1/subscriptions/sub_unknown/deliveries", nil); code != http.StatusNotFound {
		t.Errorf("deliveries of an unknown subscription = %d %s; want 404", code, body)
	}
	var subs jetstream.KeyValue
	subs, err = js.KeyValue(t.Context(), stream.SubscriptionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subs.Put(t.Context(), "sub_live", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if code, body := status(t, "GET", p.Base+"/v1/subscriptions/sub_live/deliveries", nil); code != http.StatusOK {
		t.Errorf("deliveries of an existing subscription = %d %s; want 200", code, body)
	}
	db, err := chstore.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.InsertAttempts(t.Context(), []delivery.Attempt{{Seq: 1, SubscriptionID: "sub_gone", EventID: "e1", Attempt: 1, Time: time.Now().UTC().Truncate(time.Microsecond), Outcome: delivery.Delivered}}); err != nil {
		t.Fatal(err)
	}
	if code, body := status(t, "GET", p.Base+"/v1/subscriptions/sub_gone/deliveries", nil); code != http.StatusOK {
		t.Errorf("deliveries of a deleted subscription with an audit = %d %s; want 200", code, body)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("run = %v; want nil on a clean stop", err)
	}
}
