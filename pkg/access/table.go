package access

import "net/http"

// Rule is the scope one route needs. Pattern is the route's chi pattern.
type Rule struct {
	Method  string
	Pattern string
	Scope   Scope
	// Token: the route also accepts an access token in the access_token
	// query parameter (browsers' EventSource cannot send headers).
	Token bool
	// Why says in a few words what the route does, for the README's table.
	Why string
}

// Routes is the access table of every route of every EventSync service.
// A route missing here is refused with 403 by the Gate, and a test walks
// the routers of every service and fails on it. Handlers narrow further:
// reads to the principal's patterns, subscriptions and consumers to their
// owner.
var Routes = []Rule{
	// ops
	{http.MethodGet, "/healthz", Public, false, "liveness"},
	{http.MethodGet, "/readyz", Public, false, "readiness"},
	{http.MethodGet, "/metrics", Metrics, false, "Prometheus metrics (open on --metrics-addr instead, when set)"},

	// ingest
	{http.MethodPost, "/v1/events", Write, false, "publish events"},
	{http.MethodPost, "/v1/events:validate", Write, false, "validate events without publishing"},
	{http.MethodPost, "/internal/log", Write, false, "publish one event (log-sync format)"},
	{http.MethodPost, "/api/v1/streams/{stream}/events", Write, false, "publish (event server format)"},
	{http.MethodPost, "/v1/producers", Admin, false, "create a client"},
	{http.MethodGet, "/v1/producers", Admin, false, "list clients"},
	{http.MethodGet, "/v1/producers/nats-config", Admin, false, "NATS users of the clients"},
	{http.MethodGet, "/v1/producers/{id}", Admin, false, "get a client"},
	{http.MethodPatch, "/v1/producers/{id}", Admin, false, "change a client"},
	{http.MethodDelete, "/v1/producers/{id}", Admin, false, "delete a client"},
	{http.MethodPost, "/v1/producers/{id}/disable", Admin, false, "disable a client"},
	{http.MethodPost, "/v1/producers/{id}/enable", Admin, false, "enable a client"},
	{http.MethodPost, "/v1/producers/{id}/rotate", Admin, false, "rotate a client's credential"},
	{http.MethodGet, "/v1/schemas", Admin, false, "list schemas"},
	{http.MethodPut, "/v1/schemas/{category}", Admin, false, "set a category's schema"},
	{http.MethodGet, "/v1/schemas/{category}", Admin, false, "get a category's schema"},
	{http.MethodDelete, "/v1/schemas/{category}", Admin, false, "delete a category's schema"},
	{http.MethodPut, "/v1/schemas/{category}/{code}", Admin, false, "set a tag's schema"},
	{http.MethodGet, "/v1/schemas/{category}/{code}", Admin, false, "get a tag's schema"},
	{http.MethodDelete, "/v1/schemas/{category}/{code}", Admin, false, "delete a tag's schema"},

	// query
	{http.MethodGet, "/v1/events", Read, false, "read events (cursor, filters)"},
	{http.MethodGet, "/v1/events/{id}", Read, false, "read one event"},
	{http.MethodGet, "/v1/sessions/{session_id}/events", Read, false, "read a session's events"},
	{http.MethodGet, "/v1/stats", Read, false, "count events per tag over time"},
	{http.MethodGet, "/api/logs", Read, false, "read events (log-sync format)"},
	{http.MethodGet, "/api/v1/streams/{stream}/events", Read, false, "read (event server format)"},
	{http.MethodPost, "/api/v1/streams/{stream}/events/{eventID}", Read, false, "acknowledge (event server format)"},
	{http.MethodGet, "/v1/stream", Read, true, "live tail (Server-Sent Events)"},
	{http.MethodPost, "/v1/tokens", Read, false, "short-lived access token for the live tail"},
	{http.MethodGet, "/v1/events/{id}/deliveries", Subscribe, false, "delivery attempts of an event to own subscriptions"},
	{http.MethodGet, "/v1/subscriptions/{id}/deliveries", Subscribe, false, "delivery attempts of an own subscription"},
	{http.MethodGet, "/v1/consumers", Consume, false, "list own consumers"},
	{http.MethodPut, "/v1/consumers/{name}", Consume, false, "create or change an own consumer"},
	{http.MethodGet, "/v1/consumers/{name}", Consume, false, "get an own consumer"},
	{http.MethodDelete, "/v1/consumers/{name}", Consume, false, "delete an own consumer"},
	{http.MethodGet, "/v1/consumers/{name}/events", Consume, false, "read an own consumer's events"},
	{http.MethodPost, "/v1/consumers/{name}/ack", Consume, false, "acknowledge an own consumer's events"},
	{http.MethodPost, "/v1/consumers/{name}/seek", Consume, false, "move an own consumer"},

	// notifier
	{http.MethodPost, "/v1/subscriptions", Subscribe, false, "create a subscription"},
	{http.MethodGet, "/v1/subscriptions", Subscribe, false, "list own subscriptions"},
	{http.MethodGet, "/v1/subscriptions/{id}", Subscribe, false, "get an own subscription"},
	{http.MethodPatch, "/v1/subscriptions/{id}", Subscribe, false, "change an own subscription"},
	{http.MethodDelete, "/v1/subscriptions/{id}", Subscribe, false, "delete an own subscription"},
	{http.MethodPost, "/v1/subscriptions/{id}/pause", Subscribe, false, "pause an own subscription"},
	{http.MethodPost, "/v1/subscriptions/{id}/resume", Subscribe, false, "resume an own subscription"},
	{http.MethodPost, "/v1/subscriptions/{id}/rotate-secret", Subscribe, false, "rotate an own subscription's signing secret"},
	{http.MethodPost, "/v1/subscriptions/{id}/replay", Subscribe, false, "replay events to an own subscription"},
	{http.MethodPost, "/v1/dead-letters/replay", Admin, false, "redeliver dead letters"},

	// old clients: the log-sync service

	// old clients: The Eye and the session collector
	{http.MethodPost, "/events/", Write, false, "publish events (The Eye's format)"},
	{http.MethodOptions, "/events/", Public, false, "CORS preflight of The Eye's intake (any origin)"},
	{http.MethodGet, "/sessions/{session_id}/events", Read, false, "read a session's events (the session collector's format)"},
	{http.MethodGet, "/categories/{category}/events", Read, false, "read a category's events (the session collector's format)"},
	{http.MethodGet, "/events/range", Read, false, "read events in a time range (the session collector's format)"},

	// old clients: the dispatcher's canonical events and inbound portals
	{http.MethodPost, "/v1/dispatcher/events", Write, false, "publish one event (the dispatcher's canonical event)"},
	{http.MethodGet, "/v1/portals", Admin, false, "list inbound portals"},
	{http.MethodPut, "/v1/portals/{name}", Admin, false, "create or replace an inbound portal"},
	{http.MethodGet, "/v1/portals/{name}", Admin, false, "get an inbound portal (secret masked)"},
	{http.MethodDelete, "/v1/portals/{name}", Admin, false, "delete an inbound portal"},
	{http.MethodPost, "/v1/portals/{name}/webhook", Signed, false, "receive a webhook (GitLab, GitHub, Standard Webhooks), checked by the sender's signature"},
}
