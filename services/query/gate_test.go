package query_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/access/accesstest"
	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/producer"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/pkg/subject"
	"github.com/eventsync/eventsync/services/query"
)

// adminToken is the admin token of gated services.
const adminToken = "admin-token-of-the-tests"

// gated is the query part behind a real gate, on a real JetStream and a
// real event store, over real HTTP, built the way a process builds it:
// a router with the gate's middleware and the part mounted on it.
// Events reach the store the way the store service writes them: published
// to EVENTS, read by the store's durable consumer, inserted, acknowledged
// (so the part's watermark is the real one).
type gated struct {
	t     *testing.T
	url   string
	js    jetstream.JetStream
	gate  *access.Gate
	store eventstore.Store
	subs  jetstream.KeyValue
	ids   int
	seq   map[string]uint64 // event id → stream seq
}

// gatedBackends are the stores gated tests run on.
var gatedBackends = []struct {
	name string
	open func(t *testing.T) eventstore.Store
}{
	{"sqlite", func(t *testing.T) eventstore.Store { return openSQLite(t).(eventstore.Store) }},
	{"clickhouse", func(t *testing.T) eventstore.Store { return openClickHouse(t).(eventstore.Store) }},
}

// forEachGated runs fn as a subtest per store backend.
func forEachGated(t *testing.T, fn func(t *testing.T, g *gated)) {
	t.Helper()
	for _, b := range gatedBackends {
		t.Run(b.name, func(t *testing.T) { fn(t, newGated(t, b.open(t))) })
	}
}

func newGated(t *testing.T, st eventstore.Store) *gated {
	t.Helper()
	ns := natstest.Start(t)
	nc := ns.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := stream.EnsureAll(ctx, js, stream.Config{}); err != nil {
		t.Fatalf("stream.EnsureAll = %v", err)
	}
	log := slog.New(slog.NewJSONHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	gate := accesstest.Start(t, js, access.Config{Auth: access.AuthClients, AdminToken: adminToken})
	part := query.NewPart()
	if err := part.Open(ctx, service.Deps{NC: nc, JS: js, Store: st, Gate: gate, Log: log}); err != nil {
		t.Fatalf("part.Open = %v", err)
	}
	wg.Go(func() { _ = part.Run(ctx) })
	r := accesstest.Router(gate)
	part.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	subs, err := js.KeyValue(ctx, stream.SubscriptionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &gated{t: t, url: srv.URL, js: js, gate: gate, store: st, subs: subs, seq: map[string]uint64{}}
}

// client is a registered client and its credentials.
type client struct {
	id       string
	apiKey   string
	password string
}

// bearer is the Authorization value of its API key.
func (c client) bearer() string { return "Bearer " + c.apiKey }

// basic is the Authorization value of its password.
func (c client) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.password))
}

// admin is the Authorization value of the admin token.
const admin = "Bearer " + adminToken

// client registers a client with scopes.
func (g *gated) client(name string, scopes producer.Scopes) client {
	g.t.Helper()
	p, sec, err := g.gate.Registry().Create(g.t.Context(), producer.Spec{Name: name, Scopes: scopes})
	if err != nil {
		g.t.Fatalf("Create(%s) = %v", name, err)
	}
	return client{id: p.ID, apiKey: sec.APIKey, password: sec.Password}
}

// publish publishes one event per tag and has the store write them; it
// returns their ids in order.
func (g *gated) publish(tags ...string) []string {
	g.t.Helper()
	ctx := g.t.Context()
	var ids []string
	for _, tag := range tags {
		category, code, err := subject.SplitTag(tag)
		if err != nil {
			g.t.Fatal(err)
		}
		subj, err := subject.Build(category, code)
		if err != nil {
			g.t.Fatal(err)
		}
		g.ids++
		ev := event.Event{
			ID: "ev-" + strconv.Itoa(g.ids), Tag: tag, Category: category, Code: code, Subject: subj,
			Message: "m", SessionID: "s1", Timestamp: t0.Add(time.Duration(g.ids) * time.Second), Severity: event.Info,
		}
		b, err := event.Encode(&ev)
		if err != nil {
			g.t.Fatal(err)
		}
		ack, err := g.js.Publish(ctx, subj, b, jetstream.WithMsgID(ev.ID))
		if err != nil {
			g.t.Fatalf("publish %s: %v", subj, err)
		}
		g.seq[ev.ID] = ack.Sequence
		ids = append(ids, ev.ID)
	}
	g.storeAll(stream.Events, stream.StoreConsumerConfig(time.Minute, 1000), func(ms []jetstream.Msg) error {
		evs := make([]event.Event, 0, len(ms))
		for _, m := range ms {
			e, err := stream.DecodeEvent(m)
			if err != nil {
				return err
			}
			evs = append(evs, e)
		}
		return g.store.Insert(ctx, evs)
	})
	return ids
}

// attempt publishes a delivery attempt of an event to a subscription and
// has the store write it.
func (g *gated) attempt(sub, eventID, tag string) {
	g.t.Helper()
	ctx := g.t.Context()
	a := delivery.Attempt{
		SubscriptionID: sub, DeliveryID: "d-" + sub + "-" + eventID, EventID: eventID, EventSeq: g.seq[eventID], Tag: tag,
		Attempt: 1, URL: "https://example.com/hook", Outcome: delivery.Delivered, StatusCode: 200, Time: t0,
	}
	b, err := delivery.Encode(&a)
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := g.js.Publish(ctx, stream.DeliverySubject(sub), b); err != nil {
		g.t.Fatal(err)
	}
	g.storeAll(stream.Deliveries, stream.StoreDeliveriesConsumerConfig(time.Minute, 1000), func(ms []jetstream.Msg) error {
		as := make([]delivery.Attempt, 0, len(ms))
		for _, m := range ms {
			var a delivery.Attempt
			if err := delivery.Decode(m.Data(), &a); err != nil {
				return err
			}
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			a.Seq = meta.Sequence.Stream
			as = append(as, a)
		}
		return g.store.InsertAttempts(ctx, as)
	})
}

// storeAll reads every pending message of a stream with the store's
// durable consumer, writes them with write and acknowledges them, which
// moves the watermark the query service reads.
func (g *gated) storeAll(name string, cfg jetstream.ConsumerConfig, write func([]jetstream.Msg) error) {
	g.t.Helper()
	ctx := g.t.Context()
	cons, err := g.js.CreateOrUpdateConsumer(ctx, name, cfg)
	if err != nil {
		g.t.Fatalf("consumer on %s: %v", name, err)
	}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			g.t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		b, err := cons.FetchNoWait(1000)
		if err != nil {
			g.t.Fatal(err)
		}
		var ms []jetstream.Msg
		for m := range b.Messages() {
			ms = append(ms, m)
		}
		if len(ms) == 0 {
			continue
		}
		if err := write(ms); err != nil {
			g.t.Fatalf("store %d messages of %s: %v", len(ms), name, err)
		}
		for _, m := range ms {
			if err := m.DoubleAck(ctx); err != nil {
				g.t.Fatal(err)
			}
		}
	}
}

// subscription stores a subscription record of the notifier's shape.
func (g *gated) subscription(id, owner string) {
	g.t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "owner": owner, "type": "webhook", "url": "https://example.com/hook", "tags": []string{">"}})
	if _, err := g.subs.Put(g.t.Context(), id, b); err != nil {
		g.t.Fatal(err)
	}
}

// do performs a request with an Authorization value (none if empty) and
// returns the status and body.
func (g *gated) do(method, path, authorization string, body any, header ...string) (int, []byte) {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(g.t.Context(), method, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") == "text/event-stream" {
		// A stream that was expected to be refused: it would not end.
		return res.StatusCode, []byte("(an event stream)")
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return res.StatusCode, b
}

// json performs a request that must answer want and decodes the body.
func gjson[T any](g *gated, method, path, authorization string, body any, want int) T {
	g.t.Helper()
	var v T
	code, b := g.do(method, path, authorization, body)
	if code != want {
		g.t.Fatalf("%s %s = %d %s; want %d", method, path, code, b, want)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			g.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return v
}

// problemOf performs a request that must answer a problem with status
// want and returns its detail.
func (g *gated) problemOf(method, path, authorization string, body any, want int) string {
	g.t.Helper()
	p := gjson[problem.Problem](g, method, path, authorization, body, want)
	if p.Status != want {
		g.t.Errorf("%s %s problem status = %d; want %d", method, path, p.Status, want)
	}
	return p.Detail
}

// tags returns the tags of events in order.
func tags(evs []event.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Tag)
	}
	return out
}

// sse is an open live tail.
type sse struct {
	res *http.Response
	r   *bufio.Reader
}

// openStream opens GET path (the live tail) with the given headers; it
// must answer 200.
func (g *gated) openStream(path string, header ...string) *sse {
	g.t.Helper()
	ctx, cancel := context.WithCancel(g.t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { cancel(); res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		g.t.Fatalf("GET %s = %d %s; want 200", path, res.StatusCode, b)
	}
	return &sse{res: res, r: bufio.NewReader(res.Body)}
}

// next returns the next event of the stream (skipping comments and
// messages without data).
func (s *sse) next(t *testing.T) (uint64, event.Event) {
	t.Helper()
	var id uint64
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			id, _ = strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			var e event.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			return id, e
		}
	}
}

// nextTags reads n events and returns their tags.
func (s *sse) nextTags(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		_, e := s.next(t)
		out = append(out, e.Tag)
	}
	return out
}
