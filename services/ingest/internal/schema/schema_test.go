package schema_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/services/ingest/internal/schema"
)

// loaded returns a running Registry holding the testdata schemas:
// ORDERS, ORDERS.CREATED and DATABASE.CONNECTION_LOST.
func loaded(t testing.TB) *schema.Registry {
	t.Helper()
	kv, _ := bucket(t)
	r := schema.New(kv)
	put(t, r, "ORDERS", "", readSchema(t, "orders.schema.json"))
	put(t, r, "ORDERS", "CREATED", readSchema(t, "orders.created.schema.json"))
	put(t, r, "DATABASE", "CONNECTION_LOST", readSchema(t, "connection_lost.schema.json"))
	run(t, r)
	return r
}

func TestValidate(t *testing.T) {
	r := loaded(t)
	manyBadPrices := `{"id":"o1","items":[` + strings.Repeat(`{"sku":"a","price":-1},`, 24) + `{"sku":"a","price":-1}]}`
	tests := []struct {
		name           string
		category, code string
		data           string
		want           []schema.FieldError
	}{
		{"valid", "ORDERS", "SHIPPED", `{"id":"o1","items":[{"sku":"a","price":1.5,"qty":2}]}`, nil},
		{"no schema", "METRICS", "CPU", `"anything"`, nil},
		{"no schema, no data", "METRICS", "CPU", ``, nil},
		{"type", "ORDERS", "SHIPPED", `{"id":5,"items":[]}`, []schema.FieldError{
			{Pointer: "/data/id", Detail: "got number, want string (schema ORDERS, keyword /properties/id/type)"},
		}},
		{"required", "ORDERS", "SHIPPED", `{"items":[]}`, []schema.FieldError{
			{Pointer: "/data", Detail: "missing property 'id' (schema ORDERS, keyword /required)"},
		}},
		{"nested through $ref", "ORDERS", "SHIPPED", `{"id":"o1","items":[{"sku":"a","price":1},{"sku":"b","price":2},{"sku":"c","price":"3"}]}`, []schema.FieldError{
			{Pointer: "/data/items/2/price", Detail: "got string, want number (schema ORDERS, keyword /properties/items/items/$ref/properties/price/type)"},
		}},
		{"escaped pointer", "ORDERS", "SHIPPED", `{"id":"o1","items":[],"a/b~c":"x"}`, []schema.FieldError{
			{Pointer: "/data/a~1b~0c", Detail: "got string, want integer (schema ORDERS, keyword /properties/a~1b~0c/type)"},
		}},
		{"category and code both apply", "ORDERS", "CREATED", `{"items":[],"customer":{"email":"nope"}}`, []schema.FieldError{
			{Pointer: "/data", Detail: "missing property 'id' (schema ORDERS, keyword /required)"},
			{Pointer: "/data/customer/email", Detail: "'nope' is not valid email: missing @ (schema ORDERS.CREATED, keyword /properties/customer/properties/email/format)"},
		}},
		{"code schema alone", "DATABASE", "CONNECTION_LOST", `{"host":"db1","since":"yesterday","extra":1}`, []schema.FieldError{
			{Pointer: "/data", Detail: "additional properties 'extra' not allowed (schema DATABASE.CONNECTION_LOST, keyword /additionalProperties)"},
			{Pointer: "/data/since", Detail: "'yesterday' is not valid date-time: less than 20 characters long (schema DATABASE.CONNECTION_LOST, keyword /properties/since/format)"},
		}},
		{"other code of the category", "DATABASE", "QUERY_SLOW", `{"anything":true}`, nil},
		{"data null", "ORDERS", "SHIPPED", `null`, []schema.FieldError{
			{Pointer: "/data", Detail: "got null, want object (schema ORDERS, keyword /type)"},
		}},
		{"data absent", "ORDERS", "SHIPPED", ``, []schema.FieldError{
			{Pointer: "/data", Detail: "got null, want object (schema ORDERS, keyword /type)"},
		}},
		{"not JSON", "ORDERS", "SHIPPED", `{"id":`, []schema.FieldError{
			{Pointer: "/data", Detail: "is not valid JSON"},
		}},
		{"capped", "ORDERS", "SHIPPED", manyBadPrices, capped()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			if tt.data != "" {
				data = []byte(tt.data)
			}
			got := r.Validate(tt.category, tt.code, data)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate(%q, %q, %s) (-want +got):\n%s", tt.category, tt.code, tt.data, diff)
			}
		})
	}
}

// capped is what Validate reports for 25 negative prices: the first
// MaxErrors, then how many more.
func capped() []schema.FieldError {
	var want []schema.FieldError
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19} {
		want = append(want, schema.FieldError{
			Pointer: fmt.Sprintf("/data/items/%d/price", i),
			Detail:  "minimum: got -1, want 0 (schema ORDERS, keyword /properties/items/items/$ref/properties/price/minimum)",
		})
	}
	return append(want, schema.FieldError{Pointer: "/data", Detail: "5 more schema error(s) not shown"})
}

func TestValidateBeforeRun(t *testing.T) {
	kv, _ := bucket(t)
	r := schema.New(kv)
	put(t, r, "ORDERS", "", []byte(`false`))
	if errs := r.Validate("ORDERS", "CREATED", nil); errs != nil {
		t.Errorf("Validate() before Run = %v; want nil (nothing loaded yet)", errs)
	}
}

// BenchmarkValidate checks a typical small event against one schema (its
// category's), two (category and category+code) and none.
func BenchmarkValidate(b *testing.B) {
	r := loaded(b)
	data := []byte(`{"id":"o-1842","items":[{"sku":"A-1","price":12.5,"qty":2},{"sku":"B-7","price":3,"qty":1}],"customer":{"email":"ann@example.com"}}`)
	for _, bb := range []struct{ name, category, code string }{
		{"category", "ORDERS", "SHIPPED"},
		{"category+code", "ORDERS", "CREATED"},
		{"none", "METRICS", "CPU"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			if errs := r.Validate(bb.category, bb.code, data); errs != nil {
				b.Fatalf("Validate() = %v; want nil", errs)
			}
			b.ReportAllocs()
			for b.Loop() {
				if errs := r.Validate(bb.category, bb.code, data); errs != nil {
					b.Fatal(errs)
				}
			}
		})
	}
}
