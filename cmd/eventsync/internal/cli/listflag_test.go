package cli

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

// Every list flag (the tags of subs create, consumers create, producers
// create and update; the owned categories of producers) takes repeated
// flags, comma-separated lists, or both. `subs create --tags 'A.*' --tags
// 'B.>'` used to keep only B.>.
func TestCLIListFlags(t *testing.T) {
	base := apptest.Start(t, map[string]string{"ADMIN_TOKEN": adminToken}, apptest.Fast...).Base
	env := map[string]string{"EVENTSYNC_SERVER": base, "EVENTSYNC_ADMIN_TOKEN": adminToken}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)
	producer := decodeCLI[cliProducer](t, mustCLI(t, env, "create", "--json", "--name", "to-update"))

	type lists struct {
		Tags  []string `json:"tags"`
		Owned []string `json:"owned"`
	}
	tests := []struct {
		name string
		args []string
		want lists
	}{
		{"subs create, repeated", []string{"subs", "create", "--url", hook.URL, "--tags", "A.*", "--tags", "B.>"},
			lists{Tags: []string{"A.*", "B.>"}}},
		{"subs create, comma list and repeated", []string{"subs", "create", "--url", hook.URL, "--tags", "C.*, D.>", "--tags", "E.X"},
			lists{Tags: []string{"C.*", "D.>", "E.X"}}},
		{"consumers create, repeated", []string{"consumers", "create", "lists", "--tags", "A.*", "--tags", "B.>,C.X"},
			lists{Tags: []string{"A.*", "B.>", "C.X"}}},
		{"producers create, repeated", []string{"producers", "create", "--name", "lists", "--tags", "A.>", "--tags", "B.*,C.*", "--owns", "A", "--owns", "B,C"},
			lists{Tags: []string{"A.>", "B.*", "C.*"}, Owned: []string{"A", "B", "C"}}},
		{"producers update, repeated", []string{"producers", "update", producer.ID, "--tags", "X.>,Y.*", "--tags", "Z.*", "--owns", "X", "--owns", "Z"},
			lists{Tags: []string{"X.>", "Y.*", "Z.*"}, Owned: []string{"X", "Z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := clientCLIEnv(t, env, "", append(tt.args, "--json")...)
			if err != nil {
				t.Fatalf("eventsync %q = %v", tt.args, err)
			}
			got := decodeCLI[lists](t, out)
			slices.Sort(got.Tags)
			slices.Sort(got.Owned)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("eventsync %q (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
func TestListFlag(t *testing.T) {
	tests := []struct {
		sets []string
		want []string
	}{
		{nil, nil},
		{[]string{"A.*"}, []string{"A.*"}},
		{[]string{"A.*", "B.>"}, []string{"A.*", "B.>"}},
		{[]string{"A.*,B.>"}, []string{"A.*", "B.>"}},
		{[]string{" A.* , B.> ", "C.X"}, []string{"A.*", "B.>", "C.X"}},
		{[]string{""}, []string{}},
		{[]string{",,"}, []string{}},
		{[]string{"", "A.*"}, []string{"A.*"}},
	}
	for _, tt := range tests {
		var l listFlag
		for _, s := range tt.sets {
			if err := l.Set(s); err != nil {
				t.Fatalf("Set(%q) = %v", s, err)
			}
		}
		if !cmp.Equal(l.items, tt.want) || l.given != (tt.sets != nil) {
			t.Errorf("Set %q = %q (given %v); want %q (given %v)", tt.sets, l.items, l.given, tt.want, tt.sets != nil)
		}
	}
}
