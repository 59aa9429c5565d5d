package schema_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/natstest"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest/internal/schema"
)

// watchDeadline is how soon every instance must apply a change.
const watchDeadline = time.Second

// bucket returns the schemas bucket on a fresh server and that server, so
// that a test can connect more instances.
func bucket(t testing.TB) (jetstream.KeyValue, *natstest.Server) {
	t.Helper()
	srv := natstest.Start(t)
	return connect(t, srv), srv
}

// connect opens the schemas bucket on its own connection.
func connect(t testing.TB, srv *natstest.Server) jetstream.KeyValue {
	t.Helper()
	js, err := stream.JetStream(srv.Connect(t), 5*time.Second)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), stream.SchemasConfig(stream.Config{}))
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return kv
}

// run runs r until the test ends and waits until it loaded the bucket.
func run(t testing.TB, r *schema.Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run() = %v; want nil", err)
		}
	})
	select {
	case <-r.Synced():
	case err := <-errc:
		t.Fatalf("Run() = %v before it synced", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run() did not load the bucket")
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, deadline)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readSchema reads a schema from testdata.
func readSchema(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// put stores a schema or fails the test.
func put(t testing.TB, r *schema.Registry, category, code string, doc []byte) schema.Entry {
	t.Helper()
	e, _, err := r.Put(context.Background(), category, code, doc)
	if err != nil {
		t.Fatalf("Put(%q, %q) = %v", category, code, err)
	}
	return e
}

// fixedClock returns a clock that reads the same time until moved.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestPutGetDelete(t *testing.T) {
	ctx := context.Background()
	kv, _ := bucket(t)
	clock := &fixedClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	r := schema.New(kv, schema.WithClock(clock.now))

	e, created, err := r.Put(ctx, "ORDERS.EU", "", []byte(`{ "type": "object" }`))
	if err != nil {
		t.Fatalf("Put() = %v", err)
	}
	want := schema.Entry{Category: "ORDERS.EU", Version: 1, UpdatedAt: clock.now(), Schema: json.RawMessage(`{"type":"object"}`)}
	if diff := cmp.Diff(want, e); diff != "" || !created {
		t.Fatalf("Put() = %v (-want +got):\n%s", created, diff)
	}

	clock.advance(time.Minute)
	e, created, err = r.Put(ctx, "ORDERS.EU", "", []byte(`{"type":"array"}`))
	if err != nil {
		t.Fatalf("Put() again = %v", err)
	}
	want = schema.Entry{Category: "ORDERS.EU", Version: 2, UpdatedAt: clock.now(), Schema: json.RawMessage(`{"type":"array"}`)}
	if diff := cmp.Diff(want, e); diff != "" || created {
		t.Fatalf("Put() again = %v (-want +got):\n%s", created, diff)
	}
	got, err := r.Get(ctx, "ORDERS.EU", "")
	if err != nil {
		t.Fatalf("Get() = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get() (-want +got):\n%s", diff)
	}

	// The category+code schema is a different key, even though
	// "ORDERS.EU" + "" and "ORDERS" + "EU" spell the same tag.
	if _, err := r.Get(ctx, "ORDERS", "EU"); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("Get(ORDERS, EU) = %v; want ErrNotFound", err)
	}
	e = put(t, r, "ORDERS", "EU", []byte(`true`))
	if e.Version != 1 || e.Code != "EU" {
		t.Errorf("Put(ORDERS, EU) = %+v; want version 1 of code EU", e)
	}

	if err := r.Delete(ctx, "ORDERS.EU", ""); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	if _, err := r.Get(ctx, "ORDERS.EU", ""); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("Get() after Delete = %v; want ErrNotFound", err)
	}
	if err := r.Delete(ctx, "ORDERS.EU", ""); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("Delete() twice = %v; want ErrNotFound", err)
	}
	if _, err := r.Get(ctx, "ORDERS", "EU"); err != nil {
		t.Errorf("Get(ORDERS, EU) after deleting ORDERS.EU = %v; want it kept", err)
	}

	// A schema written again after a delete continues its versions.
	e, created, err = r.Put(ctx, "ORDERS.EU", "", []byte(`{}`))
	if err != nil || e.Version != 3 || !created {
		t.Errorf("Put() after Delete = %+v, %v, %v; want version 3, created", e, created, err)
	}
}

func TestPutConcurrentVersions(t *testing.T) {
	kv, _ := bucket(t)
	r := schema.New(kv)
	const writers = 4
	versions := make(chan int64, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			e, _, err := r.Put(context.Background(), "ORDERS", "", fmt.Appendf(nil, `{"maxProperties": %d}`, i))
			if err != nil {
				t.Errorf("Put() = %v", err)
				return
			}
			versions <- e.Version
		})
	}
	wg.Wait()
	close(versions)
	var got []int64
	for v := range versions {
		got = append(got, v)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4}, got, cmpopts.SortSlices(func(a, b int64) bool { return a < b })); diff != "" {
		t.Errorf("versions of concurrent writes (-want +got):\n%s", diff)
	}
}

func TestPutInvalid(t *testing.T) {
	kv, _ := bucket(t)
	r := schema.New(kv)
	tests := []struct {
		name   string
		doc    string
		reason string
		errs   []schema.FieldError
	}{
		{"not JSON", `{"type":`, "the schema is not JSON: unexpected EOF", nil},
		{"trailing data", `{} {}`, "the schema is not JSON: invalid character after top-level value", nil},
		{"not a schema", `"object"`, "not a valid JSON Schema", []schema.FieldError{
			{Pointer: "", Detail: "got string, want boolean or object"},
		}},
		{"unknown type", `{"type":"strin"}`, "not a valid JSON Schema", []schema.FieldError{
			{Pointer: "/type", Detail: "value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'"},
			{Pointer: "/type", Detail: "got string, want array"},
		}},
		{"nested keyword", `{"properties":{"a":{"minimum":"x"}}}`, "not a valid JSON Schema", []schema.FieldError{
			{Pointer: "/properties/a/minimum", Detail: "got string, want number"},
		}},
		{"bad regexp", `{"pattern":"(?<=x)"}`, "not a valid JSON Schema", []schema.FieldError{
			{Pointer: "/pattern", Detail: "'(?<=x)' is not valid regex: error parsing regexp: invalid named capture: `(?<=x)`"},
		}},
		{"remote ref", `{"$ref":"https://example.com/order.json"}`,
			`it references "https://example.com/order.json": schemas may reference only themselves and the standard meta-schemas`, nil},
		{"file ref", `{"$ref":"file:///etc/passwd"}`,
			`it references "file:///etc/passwd": schemas may reference only themselves and the standard meta-schemas`, nil},
		{"relative ref", `{"$ref":"other.json"}`,
			`it references "eventsync:///schemas/other.json": schemas may reference only themselves and the standard meta-schemas`, nil},
		{"remote meta-schema", `{"$schema":"https://example.com/meta"}`,
			`it references "https://example.com/meta": schemas may reference only themselves and the standard meta-schemas`, nil},
		{"missing target", `{"$ref":"#/$defs/missing"}`, `json-pointer in "#/$defs/missing" not found`, nil},
		{"member twice", `{"type":"object","type":"string"}`, "the schema names a member twice in one object or holds invalid UTF-8", nil},
		{"invalid UTF-8", "{\"description\":\"\xff\"}", "the schema names a member twice in one object or holds invalid UTF-8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.Put(context.Background(), "ORDERS", "", []byte(tt.doc))
			var inv *schema.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Put(%q) = %v; want an *InvalidError", tt.doc, err)
			}
			if inv.Reason != tt.reason {
				t.Errorf("Put(%q) reason = %q; want %q", tt.doc, inv.Reason, tt.reason)
			}
			if diff := cmp.Diff(tt.errs, inv.Errors); diff != "" {
				t.Errorf("Put(%q) errors (-want +got):\n%s", tt.doc, diff)
			}
		})
	}
	if _, err := r.Get(context.Background(), "ORDERS", ""); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("Get() after invalid puts = %v; want ErrNotFound", err)
	}
}

func TestBadNames(t *testing.T) {
	kv, _ := bucket(t)
	r := schema.New(kv)
	tests := []struct{ category, code string }{
		{"", ""},
		{"ORDERS.", ""},
		{"OR DERS", ""},
		{"ORDERS", "A.B"},
		{"ORDERS", "*"},
		{"ORDERS", ">"},
	}
	for _, tt := range tests {
		if _, _, err := r.Put(context.Background(), tt.category, tt.code, []byte(`{}`)); err == nil {
			t.Errorf("Put(%q, %q) = nil; want an error", tt.category, tt.code)
		}
		if _, err := r.Get(context.Background(), tt.category, tt.code); err == nil || errors.Is(err, schema.ErrNotFound) {
			t.Errorf("Get(%q, %q) = %v; want a name error", tt.category, tt.code, err)
		}
	}
}

func TestList(t *testing.T) {
	kv, _ := bucket(t)
	clock := &fixedClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	r := schema.New(kv, schema.WithClock(clock.now))

	got, err := r.List(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("List() of an empty bucket = %v, %v; want none", got, err)
	}
	put(t, r, "ORDERS", "CREATED", []byte(`{}`))
	put(t, r, "ORDERS", "", []byte(`{}`))
	put(t, r, "ORDERS", "", []byte(`{"type":"object"}`))
	put(t, r, "DATABASE", "", []byte(`{}`))
	put(t, r, "ORDERS.EU", "", []byte(`{}`))
	put(t, r, "GONE", "", []byte(`{}`))
	if err := r.Delete(context.Background(), "GONE", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "not-a-schema", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	got, err = r.List(context.Background())
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	at := clock.now()
	want := []schema.Entry{
		{Category: "DATABASE", Version: 1, UpdatedAt: at},
		{Category: "ORDERS", Version: 2, UpdatedAt: at},
		{Category: "ORDERS", Code: "CREATED", Version: 1, UpdatedAt: at},
		{Category: "ORDERS.EU", Version: 1, UpdatedAt: at},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List() (-want +got):\n%s", diff)
	}
}

func TestWatchAppliesChangesOnEveryInstance(t *testing.T) {
	kv, srv := bucket(t)
	admin := schema.New(kv)
	run(t, admin)
	other := schema.New(connect(t, srv))
	run(t, other)

	data := []byte(`{"n": "1"}`)
	if errs := other.Validate("METRICS", "CPU", data); errs != nil {
		t.Fatalf("Validate() before any schema = %v; want nil", errs)
	}

	put(t, admin, "METRICS", "", []byte(`{"properties":{"n":{"type":"integer"}}}`))
	eventually(t, watchDeadline, "the other instance applies a new schema", func() bool {
		return len(other.Validate("METRICS", "CPU", data)) == 1
	})

	put(t, admin, "METRICS", "", []byte(`{"properties":{"n":{"type":"string"}}}`))
	eventually(t, watchDeadline, "the other instance applies a new version", func() bool {
		return other.Validate("METRICS", "CPU", data) == nil
	})

	put(t, admin, "METRICS", "CPU", []byte(`{"required":["host"]}`))
	eventually(t, watchDeadline, "the other instance applies a category+code schema", func() bool {
		return len(other.Validate("METRICS", "CPU", data)) == 1
	})

	if err := admin.Delete(context.Background(), "METRICS", "CPU"); err != nil {
		t.Fatal(err)
	}
	eventually(t, watchDeadline, "the other instance applies a delete", func() bool {
		return other.Validate("METRICS", "CPU", data) == nil
	})
}

func TestRunLoadsStoredSchemasAndReportsBadValues(t *testing.T) {
	kv, _ := bucket(t)
	put(t, schema.New(kv), "ORDERS", "", readSchema(t, "orders.schema.json"))
	ctx := context.Background()
	for k, v := range map[string]string{
		"unknown.ORDERS":  `{}`,
		"category.BROKEN": `not json`,
		"category.REMOTE": `{"category":"REMOTE","version":1,"schema":{"$ref":"https://example.com/s.json"}}`,
	} {
		if _, err := kv.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var bad []string
	r := schema.New(kv, schema.WithInvalidHandler(func(key string, err error) {
		mu.Lock()
		defer mu.Unlock()
		bad = append(bad, key)
	}))
	run(t, r)

	if errs := r.Validate("ORDERS", "CREATED", []byte(`{}`)); len(errs) != 1 {
		t.Errorf("Validate() with the stored ORDERS schema = %v; want 1 error", errs)
	}
	for _, category := range []string{"BROKEN", "REMOTE"} {
		if errs := r.Validate(category, "X", []byte(`1`)); errs != nil {
			t.Errorf("Validate(%q) = %v; want nil (the stored schema is unusable)", category, errs)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"category.BROKEN", "category.REMOTE", "unknown.ORDERS"}, bad, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("keys reported invalid (-want +got):\n%s", diff)
	}
}

func TestGetKeepsSchemaAsWritten(t *testing.T) {
	kv, _ := bucket(t)
	r := schema.New(kv)
	put(t, r, "ORDERS", "", []byte(`{"pattern": "^<a&b>$"}`))
	got, err := r.Get(context.Background(), "ORDERS", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pattern":"^<a&b>$"}`; string(got.Schema) != want {
		t.Errorf("Get().Schema = %s; want %s", got.Schema, want)
	}
}
