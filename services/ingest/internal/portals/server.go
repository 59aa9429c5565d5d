package portals

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/httpserve"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/sealed"
	"github.com/eventsync/eventsync/pkg/stream"
)

// Routes of the package.
const (
	DispatcherRoute = "/v1/dispatcher/events"
	AdminRoute      = "/v1/portals/{name}"
	ListRoute       = "/v1/portals"
	WebhookRoute    = "/v1/portals/{name}/webhook"
)

// Config holds the dispatcher's kind rules.
type Config struct {
	Kinds Kinds
}

// Flags defines the settings on fs.
func (c *Config) Flags(fs *conf.Set) {
	c.Kinds.Unknown = DefaultUnknownTag
	fs.Var(&c.Kinds.Map, "dispatcher-kind-map", "INGEST_DISPATCHER_KIND_MAP",
		"tags of the dispatcher's kinds: comma-separated prefix=CATEGORY entries; the longest prefix a kind starts with gives the category, "+
			"the kind's parts after it the rest of the tag (urn:acme:billing=BILLING makes urn:acme:billing:invoice:paid BILLING.INVOICE.PAID); "+
			"unmapped URNs urn:<ns>:<a>:<b>:<c> become A.B.C")
	fs.Var(&c.Kinds.Unknown, "dispatcher-unknown-tag", "INGEST_DISPATCHER_UNKNOWN_TAG",
		"tag of dispatcher events without a kind (or of kind unknown); its category also takes the kinds that are neither URNs nor mapped")
}

// ingester mounts ingest's POST /v1/events.
type ingester interface {
	Mount(r chi.Router)
}

// Server serves the dispatcher's canonical events, the inbound portals
// and their admin API.
type Server struct {
	cfg    Config
	store  *store
	ingest http.Handler // ingest's own routes, without the gate
	now    func() time.Time
	log    *slog.Logger
}

// Open opens the portals bucket (creating it). Secrets are sealed with
// keyring (nil: kept in clear). It starts no goroutines.
func Open(ctx context.Context, js jetstream.KeyValueManager, keyring *sealed.Keyring, cfg Config, sc stream.Config, log *slog.Logger) (*Server, error) {
	kv, err := stream.EnsurePortals(ctx, js, sc)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, store: &store{kv: kv, keyring: keyring}, now: time.Now, log: log.With("component", "portals")}, nil
}

// Mount adds the routes to r; ing is the ingest service, whose
// POST /v1/events the routes publish through.
func (s *Server) Mount(r chi.Router, ing ingester) {
	api := chi.NewRouter()
	ing.Mount(api)
	s.ingest = api
	s.mountAdmin(r)
	r.Post(DispatcherRoute, s.dispatch)
	r.Post(WebhookRoute, s.webhook)
}

// dispatch serves the dispatcher's canonical event: translated (see
// Kinds.Translate) and published as the client that sent it.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	ev, err := s.cfg.Kinds.Translate(body)
	if err != nil {
		problem.Write(w, err)
		return
	}
	res := s.forward(r.Context(), ev)
	if res.Status >= 400 {
		repoint(res)
	}
	res.Relay(w)
}

// portalPrincipal is who a portal's events are written as: no client
// (like the admin token), so neither a client's patterns, ownership nor
// rate limit apply; the portal's category bounds the tags.
var portalPrincipal = &access.Principal{}

// webhook serves an inbound portal: the sender's signature is verified
// (401 and nothing stored otherwise), then the webhook is published as an
// event of the portal's category.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	p, _, err := s.store.get(r.Context(), name)
	if err != nil {
		problem.Write(w, s.problem(r, err))
		return
	}
	body, err := readBody(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if err := verify(p, r.Header, body, s.now()); err != nil {
		s.log.Warn("webhook refused", "portal", name, "err", err)
		problem.Write(w, s.problem(r, err))
		return
	}
	d, err := deliveryOf(p, r.Header, body)
	if err != nil {
		problem.Write(w, err)
		return
	}
	data := map[string]any{"_portal": p.Name, "_event": d.event, "payload": d.payload}
	if d.id != "" {
		data["_delivery"] = d.id
	}
	ev := map[string]any{"tag": d.tag, "message": d.message, "source": p.Name, "data": data}
	if id := eventID(p.Name, d.id); id != "" {
		ev["id"] = id
	}
	b, err := jsonv2.Marshal(ev, jsonv2.Deterministic(true))
	if err != nil {
		problem.Write(w, err)
		return
	}
	res := s.forward(access.NewContext(r.Context(), portalPrincipal), b)
	if res.Status < 300 {
		s.log.Debug("webhook accepted", "portal", name, "event_id", ev["id"], "tag", d.tag)
	}
	res.Relay(w)
}

// readBody reads a request body; the server's stack bounds it.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, problem.New(http.StatusRequestEntityTooLarge, "too-large", "the body is larger than the limit of "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
	case err != nil:
		return nil, problem.BadRequest("reading the body: " + err.Error())
	}
	return b, nil
}

// forward serves body as POST /v1/events on ingest's own handler, as the
// principal of ctx. The gate is not run again: it let the original
// request in (a JWT would not pass twice).
func (s *Server) forward(ctx context.Context, body []byte) *httpserve.Answer {
	return httpserve.Forward(ctx, s.ingest, nil, http.MethodPost, "/v1/events", body)
}

// repoint points the field errors of a problem ingest answered back at
// the fields of the dispatcher's event.
func repoint(r *httpserve.Answer) {
	var p map[string]json.RawMessage
	if json.Unmarshal(r.Body.Bytes(), &p) != nil {
		return
	}
	var errs []problem.FieldError
	if json.Unmarshal(p["errors"], &errs) != nil || len(errs) == 0 {
		return
	}
	for i := range errs {
		errs[i].Pointer = canonicalPointer(errs[i].Pointer)
	}
	p["errors"], _ = json.Marshal(errs)
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	r.Body.Reset()
	r.Body.Write(b)
	r.Header().Del("Content-Length")
}
