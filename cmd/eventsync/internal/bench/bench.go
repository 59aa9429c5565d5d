// Package bench is `eventsync bench`: the raw JetStream publish ceiling of
// this machine, then EventSync end to end (HTTP ingest → JetStream → store
// → query) against the all-in-one started in this process, with its
// embedded store and, when a server is given, ClickHouse; then, or alone,
// webhook deliveries.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/app"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/natsembed"
)

// Targets of the end-to-end benchmark.
const (
	targetEmbedded   = "embedded"
	targetClickHouse = "clickhouse"
	targetAll        = "all"
)

// Fixed shape of the raw benchmark, the equivalent of
// `nats bench js pub async --dedup --size 300`.
const (
	rawMsgSize = 300
	rawWindow  = 4096
)

// benchConfig is the configuration of `eventsync bench`.
type benchConfig struct {
	Target          string
	ClickHouseURL   string
	Producers       int
	Batch           int
	Duration        time.Duration
	SingleProducers int
	SingleDuration  time.Duration
	RawOnly         bool
	RawMsgs         int
	RawDuration     time.Duration
	DrainTimeout    time.Duration
	CPUProfile      string
	KeepDB          bool
	LogLevel        string
	Sync            string
	Deliveries      deliveryConfig
}

func (c *benchConfig) flags(fs *conf.Set) {
	fs.String(&c.Target, "target", "BENCH_TARGET", targetAll, "end-to-end target: embedded, clickhouse or all (all: clickhouse too when a ClickHouse URL is set)")
	fs.String(&c.ClickHouseURL, "clickhouse-url", "CLICKHOUSE_URL", "", "ClickHouse server, e.g. clickhouse://127.0.0.1:9000/eventsync_bench; each run uses a fresh database <name>_<time>")
	fs.Int(&c.Producers, "producers", "BENCH_PRODUCERS", 8, "concurrent HTTP producers posting arrays")
	fs.Int(&c.Batch, "batch", "BENCH_BATCH", 100, "events per POST (at most 1000)")
	fs.Duration(&c.Duration, "duration", "BENCH_DURATION", 20*time.Second, "how long the producers post arrays")
	fs.Int(&c.SingleProducers, "single-producers", "BENCH_SINGLE_PRODUCERS", 8, "concurrent HTTP producers in single-event mode")
	fs.Duration(&c.SingleDuration, "single-duration", "BENCH_SINGLE_DURATION", 10*time.Second, "how long the single-event mode (one event per POST) runs; 0 skips it")
	fs.Bool(&c.RawOnly, "raw-only", "BENCH_RAW_ONLY", false, "measure only the raw JetStream ceiling")
	fs.Int(&c.RawMsgs, "raw-msgs", "BENCH_RAW_MSGS", 0, "messages the raw benchmark publishes (0: publish for -raw-duration)")
	fs.Duration(&c.RawDuration, "raw-duration", "BENCH_RAW_DURATION", 5*time.Second, "how long the raw benchmark publishes when -raw-msgs is 0")
	fs.Duration(&c.DrainTimeout, "drain-timeout", "BENCH_DRAIN_TIMEOUT", 2*time.Minute, "how long to wait after the producers stop for every accepted event to become queryable")
	fs.String(&c.CPUProfile, "cpuprofile", "BENCH_CPUPROFILE", "", "write a CPU profile of the whole process during each end-to-end array phase to this file (with several targets: <file>.<target>)")
	fs.Bool(&c.KeepDB, "keep-db", "BENCH_KEEP_DB", false, "keep the ClickHouse database afterwards instead of dropping it")
	fs.String(&c.LogLevel, "log-level", "LOG_LEVEL", "error", "log level of the EventSync services under test: debug, info, warn, error")
	fs.String(&c.Sync, "nats-sync", "NATS_SYNC", "2m", "how often JetStream flushes to disk, for the raw benchmark and the all-in-one: a duration, or always (every write)")
	c.Deliveries.flags(fs)
}

func (c *benchConfig) validate() error {
	var errs []error
	switch c.Target {
	case targetEmbedded, targetAll:
	case targetClickHouse:
		if c.ClickHouseURL == "" {
			errs = append(errs, errors.New("-target clickhouse needs -clickhouse-url or $CLICKHOUSE_URL"))
		}
	default:
		errs = append(errs, fmt.Errorf("-target %q: want embedded, clickhouse or all", c.Target))
	}
	if c.Producers < 1 || c.SingleProducers < 1 {
		errs = append(errs, errors.New("-producers and -single-producers must be at least 1"))
	}
	if c.Batch < 1 || c.Batch > 1000 {
		errs = append(errs, fmt.Errorf("-batch %d: want 1 to 1000", c.Batch))
	}
	if c.Duration <= 0 || c.SingleDuration < 0 || c.RawDuration <= 0 || c.RawMsgs < 0 || c.DrainTimeout <= 0 {
		errs = append(errs, errors.New("durations and counts must be positive"))
	}
	errs = append(errs, c.Deliveries.validate())
	return errors.Join(errs...)
}

// targets lists the end-to-end targets to run.
func (c *benchConfig) targets() []string {
	switch {
	case c.Target == targetAll && c.ClickHouseURL != "":
		return []string{targetEmbedded, targetClickHouse}
	case c.Target == targetAll:
		return []string{targetEmbedded}
	}
	return []string{c.Target}
}

// Main is `eventsync bench`: it parses args and the environment, runs
// the benchmarks and prints their results to stdout.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var bc benchConfig
	fs := conf.New("eventsync bench", getenv, stdout)
	bc.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := bc.validate(); err != nil {
		return err
	}
	log, err := conf.NewLogger(stdout, bc.LogLevel)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "eventsync bench  (%s %s/%s, %d CPUs, GOMAXPROCS %d%s)\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), loadAverage())
	if bc.Deliveries.Only {
		return benchDeliveries(ctx, bc, log, stdout)
	}
	raw, err := benchRaw(ctx, bc)
	if err != nil {
		return fmt.Errorf("raw benchmark: %w", err)
	}
	raw.print(stdout)
	if bc.RawOnly {
		return nil
	}
	if bc.Target == targetAll && bc.ClickHouseURL == "" {
		fmt.Fprintln(stdout, "\nno ClickHouse URL (-clickhouse-url or $CLICKHOUSE_URL): benching the embedded store only")
	}
	targets := bc.targets()
	for _, t := range targets {
		prof := bc.CPUProfile
		if prof != "" && len(targets) > 1 {
			prof += "." + t
		}
		if err := benchTarget(ctx, bc, t, prof, raw, log, stdout); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	if bc.Deliveries.Enabled {
		return benchDeliveries(ctx, bc, log, stdout)
	}
	return nil
}

// rawResult is the raw JetStream publish ceiling.
type rawResult struct {
	sent, failed int
	elapsed      time.Duration
}

func (r rawResult) rate() float64 { return perSecond(r.sent-r.failed, r.elapsed) }

func (r rawResult) print(w io.Writer) {
	fmt.Fprintf(w, "raw JetStream ceiling  (async publish, window %d, Nats-Msg-Id on each, %d-byte messages, file storage, loopback TCP)\n",
		rawWindow, rawMsgSize)
	fmt.Fprintf(w, "  %s msgs acked in %s = %s msgs/s  (failed %d)\n",
		group(r.sent-r.failed), seconds(r.elapsed), group(int(r.rate())), r.failed)
}

// benchRaw publishes to a fresh embedded server the way
// `nats bench js pub async --dedup` does: asynchronously, with at most
// rawWindow acks outstanding, a message id on every message.
func benchRaw(ctx context.Context, bc benchConfig) (rawResult, error) {
	dir, err := os.MkdirTemp("", "eventsync-bench-raw-")
	if err != nil {
		return rawResult{}, err
	}
	defer os.RemoveAll(dir)
	sync, err := natsembed.ParseSync(bc.Sync)
	if err != nil {
		return rawResult{}, err
	}
	ns, err := natsembed.Start(natsembed.Config{Host: "127.0.0.1", Port: -1, StoreDir: dir, Name: "bench-raw", Sync: sync})
	if err != nil {
		return rawResult{}, err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("eventsync-bench-raw"))
	if err != nil {
		return rawResult{}, fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()

	var failed atomic.Int64
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(rawWindow),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }),
	)
	if err != nil {
		return rawResult{}, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		return rawResult{}, fmt.Errorf("create stream: %w", err)
	}

	payload := bytes.Repeat([]byte("x"), rawMsgSize)
	more := func(n int, start time.Time) bool {
		if bc.RawMsgs > 0 {
			return n < bc.RawMsgs
		}
		return time.Since(start) < bc.RawDuration
	}
	start := time.Now()
	n := 0
	for ; more(n, start) && ctx.Err() == nil; n++ {
		msg := &nats.Msg{Subject: "bench.raw", Data: payload}
		// The window is full while acks are pending; wait for room rather
		// than failing after the default 200 ms on a busy machine.
		_, err := js.PublishMsgAsync(msg, jetstream.WithMsgID("raw-"+strconv.Itoa(n)), jetstream.WithStallWait(10*time.Second))
		if err != nil {
			return rawResult{}, fmt.Errorf("publish %d: %w", n, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return rawResult{}, fmt.Errorf("%d publishes still unacknowledged after 30s", js.PublishAsyncPending())
	case <-ctx.Done():
		return rawResult{}, ctx.Err()
	}
	return rawResult{sent: n, failed: int(failed.Load()), elapsed: time.Since(start)}, nil
}

// benchTarget starts the all-in-one on free loopback ports in a temporary
// data dir, runs the array phase and the single-event phase against it and
// prints both.
func benchTarget(ctx context.Context, bc benchConfig, target, profile string, raw rawResult, log *slog.Logger, w io.Writer) error {
	dir, err := os.MkdirTemp("", "eventsync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	args := []string{"--data-dir", dir}
	storeName := "embedded store"
	if target == targetClickHouse {
		dsn, drop, err := freshDatabase(ctx, bc.ClickHouseURL)
		if err != nil {
			return err
		}
		if !bc.KeepDB {
			defer drop()
		}
		args = append(args, "--clickhouse-url", dsn)
		storeName = "ClickHouse, database " + databaseOf(dsn)
	}
	base, stop, err := startAllInOne(ctx, bc, w, args...)
	if err != nil {
		return err
	}
	defer stop()

	hc := newHTTPClient(max(bc.Producers, bc.SingleProducers) + 2)
	if err := waitReady(ctx, hc, base); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s  (all-in-one in this process, %s)\n", target, storeName)

	arrays := phase{producers: bc.Producers, batch: bc.Batch, duration: bc.Duration, drainTimeout: bc.DrainTimeout, profile: profile}
	res, err := runPhase(ctx, hc, base, arrays)
	if err != nil {
		return err
	}
	res.print(w, raw)
	if profile != "" {
		fmt.Fprintf(w, "    profile      %s (go tool pprof -top %s)\n", profile, profile)
	}
	if bc.SingleDuration == 0 {
		return nil
	}
	single := phase{producers: bc.SingleProducers, batch: 1, duration: bc.SingleDuration, drainTimeout: bc.DrainTimeout, since: res.cursor}
	res, err = runPhase(ctx, hc, base, single)
	if err != nil {
		return err
	}
	res.print(w, raw)
	return nil
}

// freshDatabase creates a database named after the URL's database and the
// current time on the server, so that runs never mix, and returns the DSN
// that uses it and a function that drops it.
func freshDatabase(ctx context.Context, serverURL string) (dsn string, drop func(), err error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("clickhouse url: %w", err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix == "" {
		prefix = "eventsync_bench"
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	name := prefix + "_" + time.Now().UTC().Format("20060102_150405") + "_" + hex.EncodeToString(suffix[:])
	if !validDatabaseName(name) {
		return "", nil, fmt.Errorf("clickhouse url: database %q: use letters, digits and '_'", prefix)
	}
	admin := *u
	admin.Path = "/default"
	exec := func(ctx context.Context, query string) error {
		opts, err := clickhouse.ParseDSN(admin.String())
		if err != nil {
			return fmt.Errorf("clickhouse url: %w", err)
		}
		conn, err := clickhouse.Open(opts)
		if err != nil {
			return fmt.Errorf("open clickhouse: %w", err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, query); err != nil {
			return fmt.Errorf("%s: %w", query, err)
		}
		return nil
	}
	if err := exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	drop = func() { _ = exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name) }
	u.Path = "/" + name
	return u.String(), drop, nil
}

func validDatabaseName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// databaseOf returns the database a ClickHouse DSN names.
func databaseOf(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return strings.Trim(u.Path, "/")
}

// newHTTPClient returns a client that keeps a connection per producer:
// Go's default of 2 idle connections per host would make most requests
// open a new one.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

func waitReady(ctx context.Context, hc *http.Client, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("eventsync not ready after 30s")
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// phase is one load run: producers post arrays of batch events for
// duration while a poller follows the cursor API from since.
type phase struct {
	producers    int
	batch        int
	duration     time.Duration
	drainTimeout time.Duration
	since        uint64
	profile      string
}

// phaseResult is what a phase measured. Times are offsets from its start.
type phaseResult struct {
	phase
	eventBytes   int // average JSON size of one event
	requests     int
	accepted     int
	duplicates   int
	statuses     map[string]int // answers other than 202, by status or error
	latencies    []time.Duration
	loadTime     time.Duration // until the last producer stopped
	queryableAt  time.Duration // until the last accepted event was read by the poller
	queryable    int           // accepted events the poller read
	seen         int           // distinct seqs the poller read
	eventLags    []time.Duration
	drained      bool // every accepted event was read before the drain timeout
	cursor       uint64
	pollRequests int
	pollErrors   int
	wall, cpu    time.Duration // the whole phase and the CPU time it used
}

// runPhase runs one phase and collects its figures.
func runPhase(ctx context.Context, hc *http.Client, base string, p phase) (*phaseResult, error) {
	bodies, eventBytes, err := makeBodies(p.batch, 64)
	if err != nil {
		return nil, err
	}
	if p.profile != "" {
		stopProfile, err := startCPUProfile(p.profile)
		if err != nil {
			return nil, err
		}
		defer stopProfile()
	}

	cpu0, cpuOK := processCPU()
	start := time.Now()
	pl := &poller{hc: hc, url: base + "/v1/events", start: start, since: p.since}
	until := make(chan uint64, 1)
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	reached := make(chan bool, 1)
	go func() { reached <- pl.run(pollCtx, until) }()

	producers := make([]*producer, p.producers)
	var wg sync.WaitGroup
	for i := range producers {
		pr := &producer{hc: hc, url: base + "/v1/events", start: start, bodies: bodies, next: i * len(bodies) / len(producers), statuses: map[string]int{}}
		producers[i] = pr
		wg.Go(func() { pr.run(ctx, start.Add(p.duration)) })
	}
	wg.Wait()
	loadTime := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &phaseResult{phase: p, eventBytes: eventBytes, loadTime: loadTime, statuses: map[string]int{}}
	acks := res.collect(producers)
	var last uint64
	for _, a := range acks {
		last = max(last, a.seq)
	}
	until <- last
	drain := time.AfterFunc(p.drainTimeout, stopPoll)
	res.drained = <-reached
	drain.Stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.wall = time.Since(start)
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.cpu = cpu1 - cpu0
	}
	res.match(acks, pl)
	return res, nil
}

// collect merges what the producers recorded and returns their acks.
func (r *phaseResult) collect(producers []*producer) []ack {
	var acks []ack
	for _, pr := range producers {
		r.requests += len(pr.latencies)
		r.accepted += pr.accepted
		r.duplicates += pr.duplicates
		r.latencies = append(r.latencies, pr.latencies...)
		for k, n := range pr.statuses {
			r.statuses[k] += n
		}
		acks = append(acks, pr.acks...)
	}
	slices.Sort(r.latencies)
	return acks
}

// match pairs the acks with what the poller read: per-event lag, the time
// the last accepted event became queryable, and the counts to verify.
func (r *phaseResult) match(acks []ack, pl *poller) {
	seenAt := make(map[uint64]time.Duration, len(acks))
	for _, pg := range pl.pages {
		for _, seq := range pg.seqs {
			if _, dup := seenAt[seq]; !dup {
				seenAt[seq] = pg.at
			}
		}
	}
	r.seen = len(seenAt)
	r.cursor = pl.since
	r.pollRequests, r.pollErrors = pl.requests, pl.errors
	r.eventLags = make([]time.Duration, 0, len(acks))
	for _, a := range acks {
		at, ok := seenAt[a.seq]
		if !ok {
			continue
		}
		r.queryable++
		r.queryableAt = max(r.queryableAt, at)
		// The poller can read an event before its 202 has arrived.
		r.eventLags = append(r.eventLags, max(at-a.at, 0))
	}
	slices.Sort(r.eventLags)
}

// ok reports whether the poller read exactly the accepted events.
func (r *phaseResult) ok() bool {
	return r.drained && r.seen == r.accepted && r.queryable == r.accepted
}

func (r *phaseResult) print(w io.Writer, raw rawResult) {
	if r.batch == 1 {
		fmt.Fprintf(w, "  single events (1 per POST), %d producers, %s\n", r.producers, seconds(r.duration))
	} else {
		fmt.Fprintf(w, "  arrays of %d events (~%d bytes each), %d producers, %s\n", r.batch, r.eventBytes, r.producers, seconds(r.duration))
	}
	acceptedRate := perSecond(r.accepted, r.loadTime)
	fmt.Fprintf(w, "    accepted     %s events in %s = %s events/s  (%s requests/s, %d duplicates)\n",
		group(r.accepted), seconds(r.loadTime), group(int(acceptedRate)), group(int(perSecond(r.requests, r.loadTime))), r.duplicates)
	fmt.Fprintf(w, "    latency      p50 %s  p90 %s  p99 %s  max %s  (%s requests)\n",
		millis(percentile(r.latencies, 0.50)), millis(percentile(r.latencies, 0.90)),
		millis(percentile(r.latencies, 0.99)), millis(percentile(r.latencies, 1)), group(r.requests))
	fmt.Fprintf(w, "    non-202      %s\n", formatStatuses(r.statuses))
	if r.queryable > 0 {
		fmt.Fprintf(w, "    queryable    %s events in %s = %s events/s\n",
			group(r.queryable), seconds(r.queryableAt), group(int(perSecond(r.queryable, r.queryableAt))))
		drain := "all queryable " + millis(max(r.queryableAt-r.loadTime, 0)) + " after the producers stopped"
		if !r.drained {
			drain = "NOT all queryable " + seconds(r.drainTimeout) + " after the producers stopped"
		}
		fmt.Fprintf(w, "    lag          %s; per event (202 → read by poller) p50 %s  p99 %s\n",
			drain, millis(percentile(r.eventLags, 0.50)), millis(percentile(r.eventLags, 0.99)))
	}
	if raw.rate() > 0 {
		fmt.Fprintf(w, "    vs raw       accepted %.2f×, queryable %.2f× of the raw JetStream ceiling (%s msgs/s)\n",
			acceptedRate/raw.rate(), perSecond(r.queryable, r.queryableAt)/raw.rate(), group(int(raw.rate())))
	}
	if r.cpu > 0 {
		// On a shared machine the rates follow the CPU the run got; events
		// per CPU-second compare runs regardless.
		fmt.Fprintf(w, "    cpu          %.2f of %d cores busy (process CPU %s over %s, load generator included): %s events per CPU-second\n",
			r.cpu.Seconds()/r.wall.Seconds(), runtime.NumCPU(), seconds(r.cpu), seconds(r.wall), group(int(perSecond(r.accepted, r.cpu))))
	}
	verdict := "OK"
	if !r.ok() {
		verdict = "MISMATCH"
	}
	note := ""
	if !r.drained {
		note = fmt.Sprintf(" (gave up waiting after %s)", seconds(r.drainTimeout))
	}
	fmt.Fprintf(w, "    check        %s: poller read %s distinct seqs (%s of them accepted here), producers got %s accepted%s; %d polls, %d failed\n",
		verdict, group(r.seen), group(r.queryable), group(r.accepted), note, r.pollRequests, r.pollErrors)
}

// ack is one accepted event: its stream seq and when its 202 arrived.
type ack struct {
	seq uint64
	at  time.Duration
}

// producer posts request bodies in turn until the deadline.
type producer struct {
	hc     *http.Client
	url    string
	start  time.Time
	bodies [][]byte
	next   int

	latencies  []time.Duration
	acks       []ack
	accepted   int
	duplicates int
	statuses   map[string]int
}

// ingestAnswer is the part of a 202 body the benchmark reads.
type ingestAnswer struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Events     []struct {
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	} `json:"events"`
}

func (p *producer) run(ctx context.Context, deadline time.Time) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		body := p.bodies[p.next%len(p.bodies)]
		p.next++
		t0 := time.Now()
		status, answer, err := p.post(ctx, body)
		done := time.Now()
		p.latencies = append(p.latencies, done.Sub(t0))
		switch {
		case err != nil:
			p.statuses[errorClass(err)]++
			_ = sleep(ctx, 10*time.Millisecond) // do not spin on a refused connection
		case status != http.StatusAccepted:
			p.statuses[strconv.Itoa(status)]++
		default:
			p.accepted += answer.Accepted
			p.duplicates += answer.Duplicates
			at := done.Sub(p.start)
			for _, e := range answer.Events {
				if !e.Duplicate {
					p.acks = append(p.acks, ack{seq: e.Seq, at: at})
				}
			}
		}
	}
}

func (p *producer) post(ctx context.Context, body []byte) (int, *ingestAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, nil, nil
	}
	var a ingestAnswer
	if err := jsonv2.Unmarshal(b, &a); err != nil {
		return 0, nil, fmt.Errorf("decode 202 body: %w", err)
	}
	return resp.StatusCode, &a, nil
}

// errorClass names a transport error compactly for the report.
func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "error"
}

// poller follows GET /v1/events?since=… the way a dashboard tails new
// events, and records when it first read each seq.
type poller struct {
	hc    *http.Client
	url   string
	start time.Time
	since uint64

	pages    []page
	requests int
	errors   int
}

// page is one poll's seqs and when they were read.
type page struct {
	at   time.Duration
	seqs []uint64
}

// queryPage is the part of a GET /v1/events answer the poller reads.
type queryPage struct {
	Events []struct {
		Seq uint64 `json:"seq"`
	} `json:"events"`
	NextSince uint64 `json:"next_since"`
}

// pollIdle is how long the poller waits after an empty page; it bounds the
// resolution of the measured lag.
const pollIdle = 10 * time.Millisecond

// run polls until the cursor reaches the seq received on until (and
// reports true) or ctx ends (false).
func (p *poller) run(ctx context.Context, until <-chan uint64) bool {
	target := ^uint64(0)
	for {
		select {
		case t := <-until:
			target, until = t, nil
		default:
		}
		if p.since >= target {
			return true
		}
		n, err := p.poll(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			p.errors++
			n = 0
		}
		if n == 0 && sleep(ctx, pollIdle) != nil {
			return false
		}
	}
}

// poll reads one page and returns how many events it held.
func (p *poller) poll(ctx context.Context) (int, error) {
	p.requests++
	u := p.url + "?limit=10000&since=" + strconv.FormatUint(p.since, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	// Pages are megabytes: decode from the stream rather than buffering.
	var qp queryPage
	if err := jsonv2.UnmarshalRead(resp.Body, &qp); err != nil {
		return 0, fmt.Errorf("decode page: %w", err)
	}
	at := time.Since(p.start)
	seqs := make([]uint64, len(qp.Events))
	for i, e := range qp.Events {
		seqs[i] = e.Seq
	}
	if len(seqs) > 0 {
		p.pages = append(p.pages, page{at: at, seqs: seqs})
	}
	p.since = max(p.since, qp.NextSince)
	return len(seqs), nil
}

// Varied content for generated events.
var (
	benchTags = []string{
		"DATABASE.CONNECTION_LOST", "DATABASE.SLOW_QUERY", "AUTH.LOGIN_FAILED", "AUTH.TOKEN_EXPIRED",
		"PAYMENT.DECLINED", "PAYMENT.REFUNDED", "HTTP.TIMEOUT", "HTTP.SERVER_ERROR",
		"CACHE.EVICTION", "QUEUE.BACKLOG", "STORAGE.DISK_FULL", "APP.CRASH",
	}
	benchSeverities = []string{"debug", "info", "notice", "warning", "error", "critical"}
	benchRegions    = []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"}
)

// benchEvent is one generated event as a producer sends it.
type benchEvent struct {
	Tag       string         `json:"tag"`
	Message   string         `json:"message"`
	SessionID string         `json:"session_id"`
	Source    string         `json:"source"`
	Severity  string         `json:"severity"`
	Data      map[string]any `json:"data"`
}

// makeBodies returns n request bodies of batch events each (a bare object
// when batch is 1) and the average size of an event. Events are about
// 300 bytes, with tags, sessions and sources varying across them.
func makeBodies(batch, n int) ([][]byte, int, error) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	bodies := make([][]byte, n)
	total := 0
	for i := range bodies {
		events := make([]benchEvent, batch)
		for j := range events {
			events[j] = newBenchEvent(rng)
		}
		var v any = events
		if batch == 1 {
			v = events[0]
		}
		b, err := jsonv2.Marshal(v)
		if err != nil {
			return nil, 0, err
		}
		bodies[i] = b
		total += len(b)
	}
	return bodies, total / (n * batch), nil
}

func newBenchEvent(rng *mrand.Rand) benchEvent {
	tag := benchTags[rng.IntN(len(benchTags))]
	host := fmt.Sprintf("node-%02d", rng.IntN(40))
	return benchEvent{
		Tag: tag,
		Message: fmt.Sprintf("%s on %s after %d attempts; request %08x took %d ms and was retried by the client",
			strings.ToLower(tag), host, 1+rng.IntN(5), rng.Uint32(), rng.IntN(5000)),
		SessionID: fmt.Sprintf("sess-%06d", rng.IntN(50000)),
		Source:    fmt.Sprintf("svc-%s-%d", strings.ToLower(tag[:strings.IndexByte(tag, '.')]), rng.IntN(8)),
		Severity:  benchSeverities[rng.IntN(len(benchSeverities))],
		Data: map[string]any{
			"host":       host,
			"region":     benchRegions[rng.IntN(len(benchRegions))],
			"attempt":    1 + rng.IntN(5),
			"latency_ms": rng.IntN(5000),
		},
	}
}

// loadAverage describes the load of the machine before the run, where the
// system reports it: other work on the machine skews every figure.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return ", load average " + strings.Join(f[:3], " ")
}

// processCPU returns the CPU time (user and system) this process has used,
// where the system reports it. With the load generator in the same process
// on a shared machine, it tells how much of the machine the run got.
func processCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the line, in clock ticks of 1/100 s.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// startCPUProfile profiles the whole process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// percentile returns the q-quantile (0..1) of sorted by nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// group formats n with thousands separators: 1234567 → 1,234,567.
func group(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func millis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func formatStatuses(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s × %s", k, group(m[k]))
	}
	return strings.Join(parts, ", ")
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startAllInOne starts `eventsync run` in this process on free loopback
// ports with args, logging to w at the bench's log level, and returns its
// base URL once it is ready.
func startAllInOne(ctx context.Context, bc benchConfig, w io.Writer, args ...string) (base string, stop func(), err error) {
	args = append([]string{"--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1", "--log-level", bc.LogLevel, "--replicas", "1", "--nats-sync", bc.Sync}, args...)
	a, err := app.Start(ctx, args, func(string) string { return "" }, w, "bench")
	if err != nil {
		return "", nil, fmt.Errorf("start eventsync: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()
	stop = func() {
		cancel()
		if err := <-runErr; err != nil {
			fmt.Fprintf(w, "  (eventsync stopped with: %v)\n", err)
		}
	}
	select {
	case <-a.Started():
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
	return "http://" + a.HTTPAddr(), stop, nil
}
