package accessmatrix

import (
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

// TestServices runs the matrix on the four services run separately, as
// their binaries assemble them, against one NATS server and ClickHouse.
func TestServices(t *testing.T) {
	s := apptest.StartServices(t, env)
	var routes []chi.Routes
	for _, name := range apptest.ServiceNames {
		routes = append(routes, s.Routes[name])
	}
	// Where each route is served: the README's routing table.
	serviceOf := func(method, pattern string) string {
		for _, name := range apptest.ServiceNames {
			if s.Routes[name].Find(chi.NewRouteContext(), method, pattern) == pattern {
				return name
			}
		}
		return "ingest"
	}
	run(t, target{base: func(method, pattern string) string { return s.Base[serviceOf(method, pattern)] }, routes: routes})
}
