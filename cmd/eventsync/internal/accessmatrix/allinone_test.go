package accessmatrix

import (
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

// TestAllInOne runs the matrix on `eventsync run --auth=clients`.
func TestAllInOne(t *testing.T) {
	r := apptest.Start(t, env, append([]string{"--auth", "clients"}, apptest.Fast...)...)
	run(t, target{base: func(string, string) string { return r.Base }, routes: []chi.Routes{r.Routes}})
}
