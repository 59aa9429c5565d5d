package bench

// eventsync bench, deliveries: how fast the notifier drains a backlog of
// events to a webhook, and how long an event takes from its POST to the
// webhook at a steady rate. The all-in-one runs in this process with its
// embedded store; the receiver is an HTTP server in this process on
// loopback that verifies every signature.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/webhook"
)

// Tags of the delivery benchmark's events; each phase subscribes to its own.
const (
	throughputTag = "BENCH.THROUGHPUT"
	latencyTag    = "BENCH.LATENCY"
)

// deliveryConfig is the configuration of the delivery benchmark.
type deliveryConfig struct {
	Enabled   bool
	Only      bool
	Events    int
	Rate      int
	Duration  time.Duration
	Producers int
}

func (c *deliveryConfig) flags(fs *conf.Set) {
	fs.Bool(&c.Enabled, "deliveries", "BENCH_DELIVERIES", true, "measure webhook deliveries after the end-to-end targets (all-in-one with the embedded store)")
	fs.Bool(&c.Only, "deliveries-only", "BENCH_DELIVERIES_ONLY", false, "measure only webhook deliveries")
	fs.Int(&c.Events, "delivery-events", "BENCH_DELIVERY_EVENTS", 50000, "events queued for a paused subscription and delivered when it resumes (throughput)")
	fs.Int(&c.Rate, "delivery-rate", "BENCH_DELIVERY_RATE", 1000, "events per second, one per POST, while delivery latency is measured")
	fs.Duration(&c.Duration, "delivery-duration", "BENCH_DELIVERY_DURATION", 20*time.Second, "how long delivery latency is measured; 0 skips it")
	fs.Int(&c.Producers, "delivery-producers", "BENCH_DELIVERY_PRODUCERS", 8, "concurrent producers sharing the paced rate of the latency phase")
}

func (c *deliveryConfig) validate() error {
	if !c.Enabled && !c.Only {
		return nil
	}
	var errs []error
	if c.Events < 1 {
		errs = append(errs, fmt.Errorf("-delivery-events %d: want at least 1", c.Events))
	}
	if c.Rate < 1 || c.Producers < 1 {
		errs = append(errs, errors.New("-delivery-rate and -delivery-producers must be at least 1"))
	}
	if c.Duration < 0 {
		errs = append(errs, errors.New("-delivery-duration must not be negative"))
	}
	return errors.Join(errs...)
}

// benchDeliveries starts the all-in-one with the embedded store on free
// loopback ports in a temporary data dir, then measures delivery throughput
// and latency to a receiver in this process, and prints both.
func benchDeliveries(ctx context.Context, bc benchConfig, log *slog.Logger, w io.Writer) error {
	dc := bc.Deliveries
	dir, err := os.MkdirTemp("", "eventsync-bench-deliveries-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The receiver is on loopback.
	base, stop, err := startAllInOne(ctx, bc, w, "--data-dir", dir, "--notify-allow-nets", "127.0.0.0/8,::1/128")
	if err != nil {
		return err
	}
	defer stop()
	hc := newHTTPClient(dc.Producers + 2)
	if err := waitReady(ctx, hc, base); err != nil {
		return err
	}
	run, err := runID()
	if err != nil {
		return err
	}
	b := &deliveryBench{hc: hc, base: base, run: run, drainTimeout: bc.DrainTimeout}
	fmt.Fprintf(w, "\ndeliveries  (all-in-one in this process, embedded store; signed webhooks to a receiver in this process on loopback)\n")

	profile := ""
	if bc.CPUProfile != "" {
		profile = bc.CPUProfile + ".deliveries"
	}
	tr, err := b.throughput(ctx, dc.Events, dc.Producers, profile)
	if err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	tr.print(w)
	if profile != "" {
		fmt.Fprintf(w, "    profile      %s (go tool pprof -top %s)\n", profile, profile)
	}
	if dc.Duration == 0 {
		return nil
	}
	lr, err := b.latency(ctx, dc.Rate, dc.Producers, dc.Duration)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	lr.print(w)
	return nil
}

// runID is a random prefix for event ids, so that no run's events are
// taken for duplicates of another's.
func runID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// deliveryBench runs the delivery phases against one all-in-one.
type deliveryBench struct {
	hc           *http.Client
	base         string
	run          string
	drainTimeout time.Duration
}

// throughputResult is what the throughput phase measured. Times are
// offsets from the resume request.
type throughputResult struct {
	events       int
	eventBytes   int
	accepted     int
	statuses     map[string]int // ingest answers other than 202
	first        time.Duration  // until the first delivery arrived
	last         time.Duration  // until the last accepted event arrived
	drained      bool
	drainTimeout time.Duration
	recv         receiverCounts
	wall, cpu    time.Duration
}

// throughput queues events for a paused subscription, resumes it and times
// until the receiver has every accepted event.
func (b *deliveryBench) throughput(ctx context.Context, events, producers int, profile string) (*throughputResult, error) {
	rc, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer rc.close()
	sub, err := b.subscribe(ctx, rc, throughputTag)
	if err != nil {
		return nil, err
	}
	defer b.unsubscribe(sub.ID)
	// The notifier applies changes in order: see the worker start before
	// pausing, so that it cannot start after the pause took effect.
	if err := b.waitWorker(ctx, sub.ID, true); err != nil {
		return nil, err
	}
	if err := b.subscriptionState(ctx, sub.ID, "pause"); err != nil {
		return nil, err
	}
	if err := b.waitWorker(ctx, sub.ID, false); err != nil {
		return nil, err
	}

	gen, err := newEventGen(throughputTag, b.run+"-t")
	if err != nil {
		return nil, err
	}
	res := &throughputResult{events: events, eventBytes: gen.eventBytes(), drainTimeout: b.drainTimeout, statuses: map[string]int{}}
	accepted, lastSeq, err := b.publishArrays(ctx, gen, events, producers, res.statuses)
	if err != nil {
		return nil, err
	}
	res.accepted = len(accepted)
	if res.accepted == 0 {
		return nil, fmt.Errorf("no event accepted: %s", formatStatuses(res.statuses))
	}
	// The store writes the backlog to its table meanwhile; let it finish so
	// that the timed part measures the notifier, not the store catching up.
	if err := b.waitStored(ctx, lastSeq); err != nil {
		return nil, err
	}
	if early := rc.counts(nil).requests; early > 0 {
		return nil, fmt.Errorf("%d deliveries arrived while the subscription was paused", early)
	}

	if profile != "" {
		stopProfile, err := startCPUProfile(profile)
		if err != nil {
			return nil, err
		}
		defer stopProfile()
	}
	cpu0, cpuOK := processCPU()
	start := time.Now()
	if err := b.subscriptionState(ctx, sub.ID, "resume"); err != nil {
		return nil, err
	}
	res.drained = rc.wait(ctx, len(accepted), b.drainTimeout)
	res.wall = time.Since(start)
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.cpu = cpu1 - cpu0
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.recv = rc.counts(accepted)
	first, last := rc.span(accepted)
	res.first, res.last = first.Sub(start), last.Sub(start)
	return res, nil
}

func (r *throughputResult) print(w io.Writer) {
	fmt.Fprintf(w, "  throughput: %s events (~%d bytes each) queued while the subscription was paused, then resumed\n",
		group(r.events), r.eventBytes)
	fmt.Fprintf(w, "    delivered    %s events in %s = %s deliveries/s  (first %s after the resume; ingest non-202: %s)\n",
		group(r.recv.delivered), seconds(r.last), group(int(perSecond(r.recv.delivered, r.last))), millis(r.first), formatStatuses(r.statuses))
	if r.cpu > 0 {
		fmt.Fprintf(w, "    cpu          %.2f of %d cores busy (process CPU %s over %s, receiver included): %s deliveries per CPU-second\n",
			r.cpu.Seconds()/r.wall.Seconds(), runtime.NumCPU(), seconds(r.cpu), seconds(r.wall), group(int(perSecond(r.recv.delivered, r.cpu))))
	}
	r.recv.print(w, r.accepted, r.drained, r.drainTimeout)
}

// latencyResult is what the latency phase measured.
type latencyResult struct {
	rate, producers int
	duration        time.Duration
	sent, accepted  int
	loadTime        time.Duration // until the last producer stopped
	statuses        map[string]int
	posts           []time.Duration // ingest request latencies
	latencies       []time.Duration // POST sent → webhook received, per accepted event
	drained         bool
	drainTimeout    time.Duration
	recv            receiverCounts
	wall, cpu       time.Duration
}

// sent is one event a producer posted.
type sent struct {
	id       string
	at       time.Time // when its POST was sent
	accepted bool
}

// latency posts single events paced at rate per second for d from
// producers goroutines to an active subscription and measures, per event,
// the time from sending its POST to its arrival at the receiver.
func (b *deliveryBench) latency(ctx context.Context, rate, producers int, d time.Duration) (*latencyResult, error) {
	rc, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer rc.close()
	sub, err := b.subscribe(ctx, rc, latencyTag)
	if err != nil {
		return nil, err
	}
	defer b.unsubscribe(sub.ID)
	if err := b.waitWorker(ctx, sub.ID, true); err != nil {
		return nil, err
	}
	gen, err := newEventGen(latencyTag, b.run+"-l")
	if err != nil {
		return nil, err
	}
	// One event through the whole path first, so that no measured event
	// waits for a connection to be opened.
	warm, err := newEventGen(latencyTag, b.run+"-warm")
	if err != nil {
		return nil, err
	}
	wp := &producer{hc: b.hc, url: b.base + "/v1/events"}
	if status, _, err := wp.post(ctx, warm.event(0)); err != nil || status != http.StatusAccepted {
		return nil, fmt.Errorf("warm-up event: status %d, %v", status, err)
	}
	if !rc.wait(ctx, 1, b.drainTimeout) {
		return nil, fmt.Errorf("warm-up event not delivered within %s", seconds(b.drainTimeout))
	}
	rc.reset()

	res := &latencyResult{rate: rate, producers: producers, duration: d, drainTimeout: b.drainTimeout, statuses: map[string]int{}}
	total := int64(d.Seconds() * float64(rate))
	var next atomic.Int64
	logs := make([][]sent, producers)
	posts := make([][]time.Duration, producers)
	statuses := make([]map[string]int, producers)
	cpu0, cpuOK := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range producers {
		statuses[p] = map[string]int{}
		pr := &producer{hc: b.hc, url: b.base + "/v1/events"}
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				// Event i is due at start + i/rate; a producer that fell
				// behind sends at once.
				if sleep(ctx, time.Until(start.Add(time.Duration(i)*time.Second/time.Duration(rate)))) != nil {
					return
				}
				body := gen.event(int(i))
				t0 := time.Now()
				status, _, err := pr.post(ctx, body)
				posts[p] = append(posts[p], time.Since(t0))
				switch {
				case err != nil:
					statuses[p][errorClass(err)]++
				case status != http.StatusAccepted:
					statuses[p][strconv.Itoa(status)]++
				}
				logs[p] = append(logs[p], sent{id: gen.id(int(i)), at: t0, accepted: err == nil && status == http.StatusAccepted})
			}
		})
	}
	wg.Wait()
	res.loadTime = time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	sentAt := map[string]time.Time{}
	for p := range producers {
		res.posts = append(res.posts, posts[p]...)
		for k, n := range statuses[p] {
			res.statuses[k] += n
		}
		for _, s := range logs[p] {
			res.sent++
			if s.accepted {
				sentAt[s.id] = s.at
			}
		}
	}
	res.accepted = len(sentAt)
	slices.Sort(res.posts)
	res.drained = rc.wait(ctx, len(sentAt), b.drainTimeout)
	res.wall = time.Since(start)
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.cpu = cpu1 - cpu0
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.recv = rc.counts(sentAt)
	res.latencies = rc.latencies(sentAt)
	return res, nil
}

func (r *latencyResult) print(w io.Writer) {
	fmt.Fprintf(w, "  latency at %s events/s: single-event POSTs from %d producers for %s, subscription active\n",
		group(r.rate), r.producers, seconds(r.duration))
	fmt.Fprintf(w, "    sent         %s events in %s = %s events/s  (POST p50 %s  p99 %s; non-202: %s)\n",
		group(r.sent), seconds(r.loadTime), group(int(perSecond(r.sent, r.loadTime))),
		millis(percentile(r.posts, 0.50)), millis(percentile(r.posts, 0.99)), formatStatuses(r.statuses))
	fmt.Fprintf(w, "    latency      p50 %s  p90 %s  p99 %s  max %s  (POST sent → webhook received, %s events)\n",
		millis(percentile(r.latencies, 0.50)), millis(percentile(r.latencies, 0.90)),
		millis(percentile(r.latencies, 0.99)), millis(percentile(r.latencies, 1)), group(len(r.latencies)))
	if r.cpu > 0 {
		fmt.Fprintf(w, "    cpu          %.2f of %d cores busy (process CPU %s over %s, producers and receiver included)\n",
			r.cpu.Seconds()/r.wall.Seconds(), runtime.NumCPU(), seconds(r.cpu), seconds(r.wall))
	}
	r.recv.print(w, r.accepted, r.drained, r.drainTimeout)
}

// receiverCounts is what the receiver saw, checked against the events
// ingest accepted.
type receiverCounts struct {
	requests      int // deliveries that reached the receiver
	deliveryIDs   int // distinct webhook-ids among them
	badSignatures int
	undecodable   int
	delivered     int // accepted events that arrived
	unexpected    int // events that arrived but were not accepted in this phase
}

// ok reports whether every accepted event arrived, signed, and nothing
// else did. Repeated deliveries are allowed (delivery is at least once)
// but printed.
func (c receiverCounts) ok(accepted int) bool {
	return c.delivered == accepted && c.unexpected == 0 && c.badSignatures == 0 && c.undecodable == 0
}

func (c receiverCounts) print(w io.Writer, accepted int, drained bool, timeout time.Duration) {
	verdict := "OK"
	if !c.ok(accepted) {
		verdict = "MISMATCH"
	}
	note := ""
	if !drained {
		note = fmt.Sprintf(" (gave up after %s without a new arrival)", seconds(timeout))
	}
	fmt.Fprintf(w, "    receiver     %s: %s of %s accepted events arrived, %s missing%s; %s requests, %s distinct webhook-ids, %s repeated, %d bad signatures, %d undecodable, %d unexpected\n",
		verdict, group(c.delivered), group(accepted), group(accepted-c.delivered), note,
		group(c.requests), group(c.deliveryIDs), group(c.requests-c.deliveryIDs-c.badSignatures-c.undecodable),
		c.badSignatures, c.undecodable, c.unexpected)
}

// subscription is the part of a created subscription the benchmark reads.
type subscription struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// subscribe creates a webhook subscription to tag delivering to rc and
// gives rc its secret.
func (b *deliveryBench) subscribe(ctx context.Context, rc *receiver, tag string) (subscription, error) {
	body := fmt.Sprintf(`{"url":%q,"tags":[%q],"description":"eventsync bench"}`, rc.url, tag)
	var sub subscription
	// The receiver refuses deliveries until it knows the secret; none can
	// come before any event is published.
	status, answer, err := b.do(ctx, http.MethodPost, "/v1/subscriptions", body)
	if err != nil {
		return sub, err
	}
	if status != http.StatusCreated {
		return sub, fmt.Errorf("create subscription: %d %s", status, answer)
	}
	if err := jsonv2.Unmarshal(answer, &sub); err != nil {
		return sub, fmt.Errorf("decode subscription: %w", err)
	}
	rc.setSecret(sub.Secret)
	return sub, nil
}

// subscriptionState pauses or resumes a subscription (action "pause" or
// "resume").
func (b *deliveryBench) subscriptionState(ctx context.Context, id, action string) error {
	status, answer, err := b.do(ctx, http.MethodPost, "/v1/subscriptions/"+id+"/"+action, "")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s subscription: %d %s", action, status, answer)
	}
	return nil
}

// unsubscribe deletes a subscription, so that a later phase runs without
// its worker.
func (b *deliveryBench) unsubscribe(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, _ = b.do(ctx, http.MethodDelete, "/v1/subscriptions/"+id, "")
}

// waitWorker waits until the notifier runs a worker for the subscription
// (running) or no longer does. Its pending gauge on /metrics is listed
// exactly while a worker runs.
func (b *deliveryBench) waitWorker(ctx context.Context, id string, running bool) error {
	series := `eventsync_notifier_pending{subscription="` + id + `"}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, page, err := b.do(ctx, http.MethodGet, "/metrics", "")
		if err == nil && status == http.StatusOK && bytes.Contains(page, []byte(series)) == running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("subscription %s: worker running is not %v after 30s", id, running)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitStored waits until the store has stored the event with stream
// sequence seq: the query API returns only stored events.
func (b *deliveryBench) waitStored(ctx context.Context, seq uint64) error {
	path := "/v1/events?limit=1&since=" + strconv.FormatUint(seq-1, 10)
	deadline := time.Now().Add(b.drainTimeout)
	for {
		status, answer, err := b.do(ctx, http.MethodGet, path, "")
		if err == nil && status == http.StatusOK {
			var qp queryPage
			if err := jsonv2.Unmarshal(answer, &qp); err == nil && len(qp.Events) > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("event %d not stored after %s", seq, seconds(b.drainTimeout))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// do sends one request to the all-in-one and returns the status and body.
func (b *deliveryBench) do(ctx context.Context, method, path, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

// arrayEvents is the largest array ingest takes in one POST.
const arrayEvents = 1000

// publishArrays posts n events in arrays from producers goroutines and
// returns the ids ingest accepted, with the time of their POST, and the
// highest stream sequence it answered.
func (b *deliveryBench) publishArrays(ctx context.Context, gen *eventGen, n, producers int, statuses map[string]int) (map[string]time.Time, uint64, error) {
	arrays := (n + arrayEvents - 1) / arrayEvents
	var (
		mu       sync.Mutex
		accepted = make(map[string]time.Time, n)
		lastSeq  uint64
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range min(producers, arrays) {
		pr := &producer{hc: b.hc, url: b.base + "/v1/events"}
		wg.Go(func() {
			for ctx.Err() == nil {
				a := int(next.Add(1) - 1)
				if a >= arrays {
					return
				}
				ids := make([]string, 0, arrayEvents)
				var body bytes.Buffer
				body.WriteByte('[')
				for i := a * arrayEvents; i < min((a+1)*arrayEvents, n); i++ {
					if len(ids) > 0 {
						body.WriteByte(',')
					}
					body.Write(gen.event(i))
					ids = append(ids, gen.id(i))
				}
				body.WriteByte(']')
				t0 := time.Now()
				status, answer, err := pr.post(ctx, body.Bytes())
				mu.Lock()
				switch {
				case err != nil:
					statuses[errorClass(err)]++
				case status != http.StatusAccepted:
					statuses[strconv.Itoa(status)]++
				default:
					for i, id := range ids {
						if i < len(answer.Events) && answer.Events[i].Duplicate {
							statuses["duplicate"]++
							continue
						}
						accepted[id] = t0
					}
					for _, e := range answer.Events {
						lastSeq = max(lastSeq, e.Seq)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return accepted, lastSeq, ctx.Err()
}

// eventGen makes events of about 300 bytes whose ids carry the run and
// the phase.
type eventGen struct {
	prefix    string
	templates [][]byte // events without an id, the leading '{' cut off
}

func newEventGen(tag, prefix string) (*eventGen, error) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	g := &eventGen{prefix: "bench-" + prefix + "-"}
	for range 64 {
		e := newBenchEvent(rng)
		e.Tag = tag
		b, err := jsonv2.Marshal(e)
		if err != nil {
			return nil, err
		}
		g.templates = append(g.templates, b[1:])
	}
	return g, nil
}

// id returns the id of event n.
func (g *eventGen) id(n int) string { return g.prefix + strconv.Itoa(n) }

// event returns the JSON of event n.
func (g *eventGen) event(n int) []byte {
	t := g.templates[n%len(g.templates)]
	b := make([]byte, 0, len(t)+len(g.prefix)+32)
	b = append(b, `{"id":"`...)
	b = append(b, g.prefix...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `",`...)
	return append(b, t...)
}

// eventBytes is the average size of an event.
func (g *eventGen) eventBytes() int {
	total := 0
	for i := range g.templates {
		total += len(g.event(10000 + i))
	}
	return total / len(g.templates)
}

// receiver is a webhook endpoint on loopback: it verifies every delivery's
// signature, answers 204 and records when each event first arrived.
type receiver struct {
	srv *http.Server
	url string

	mu          sync.Mutex
	secret      string
	requests    int
	badSig      int
	undecodable int
	deliveries  map[string]int       // requests by webhook-id
	arrived     map[string]time.Time // first arrival by event id
	changed     chan struct{}        // signalled when an event arrives for the first time
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	rc := &receiver{url: "http://" + ln.Addr().String() + "/webhook", changed: make(chan struct{}, 1)}
	rc.reset()
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = rc.srv.Serve(ln) }()
	return rc, nil
}

func (rc *receiver) close() { _ = rc.srv.Close() }

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

// reset forgets everything received so far.
func (rc *receiver) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests, rc.badSig, rc.undecodable = 0, 0, 0
	rc.deliveries = map[string]int{}
	rc.arrived = map[string]time.Time{}
}

// ServeHTTP takes one delivery.
func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	secret := rc.secret
	rc.mu.Unlock()
	verr := webhook.Verify(secret, r.Header, body)
	var ev struct {
		ID string `json:"id"`
	}
	derr := jsonv2.Unmarshal(body, &ev)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	switch {
	case verr != nil:
		rc.badSig++
		http.Error(w, verr.Error(), http.StatusUnauthorized)
		return
	case derr != nil || ev.ID == "":
		rc.undecodable++
	default:
		rc.deliveries[r.Header.Get(webhook.HeaderID)]++
		if _, seen := rc.arrived[ev.ID]; !seen {
			rc.arrived[ev.ID] = at
			select {
			case rc.changed <- struct{}{}:
			default:
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// wait waits until n distinct events have arrived (true), or for timeout
// without a new one, or until ctx is done (false).
func (rc *receiver) wait(ctx context.Context, n int, timeout time.Duration) bool {
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	for {
		rc.mu.Lock()
		got := len(rc.arrived)
		rc.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-rc.changed:
			idle.Reset(timeout)
		case <-idle.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// counts checks what arrived against the events accepted (by id).
func (rc *receiver) counts(accepted map[string]time.Time) receiverCounts {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	c := receiverCounts{requests: rc.requests, deliveryIDs: len(rc.deliveries), badSignatures: rc.badSig, undecodable: rc.undecodable}
	for id := range rc.arrived {
		if _, ok := accepted[id]; ok {
			c.delivered++
		} else {
			c.unexpected++
		}
	}
	return c
}

// span returns the first and the last arrival among the accepted events.
func (rc *receiver) span(accepted map[string]time.Time) (first, last time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, at := range rc.arrived {
		if _, ok := accepted[id]; !ok {
			continue
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last
}

// latencies returns, sorted, each accepted event's time from its POST to
// its arrival.
func (rc *receiver) latencies(sentAt map[string]time.Time) []time.Duration {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	lat := make([]time.Duration, 0, len(sentAt))
	for id, t0 := range sentAt {
		if at, ok := rc.arrived[id]; ok {
			lat = append(lat, at.Sub(t0))
		}
	}
	slices.Sort(lat)
	return lat
}
