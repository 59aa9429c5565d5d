package oldclients

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
	"github.com/eventsync/eventsync/pkg/eventserver"
)

// The event server's answers are checked byte for byte against its API
// (docs/coming-from/event-server.md): every documented status of every
// route, with Content-Type application/json; charset=utf-8.

const esAdminToken = "eventserver-admin-token-0123456789"

// esTarget is an EventSync serving the event server's API: ingest serves
// the publish and the admin API, query the reads and ACKs (one process
// for the all-in-one).
type esTarget struct {
	ingest, query string
}

// esClient is a client of the event server's API: its Basic credentials.
type esClient struct {
	id, password string
}

func (c esClient) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.password))
}

// withPassword is c with another password.
func (c esClient) withPassword(p string) esClient { return esClient{c.id, p} }

// esCreate registers a client with the admin API.
func esCreate(t *testing.T, tg esTarget, spec string) esClient {
	t.Helper()
	r := esDo(t, http.MethodPost, tg.ingest+"/v1/producers", spec, "Content-Type", "application/json", "Authorization", "Bearer "+esAdminToken)
	var out struct {
		ID          string `json:"id"`
		Credentials struct {
			Password string `json:"password"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); r.status != http.StatusCreated || err != nil || out.ID == "" {
		t.Fatalf("create client %s = %d %s", spec, r.status, r.body)
	}
	return esClient{out.ID, out.Credentials.Password}
}

// esReply is an answer.
type esReply struct {
	status int
	header http.Header
	body   string
}

// esDo sends a request with headers given as name, value pairs.
func esDo(t *testing.T, method, url, body string, header ...string) esReply {
	t.Helper()
	status, h, b := send(t, method, url, []byte(body), header...)
	return esReply{status, h, string(b)}
}

// The old client's requests, with the headers the event server's API
// lists.
func (tg esTarget) publish(t *testing.T, c esClient, stream, producerID, body string) esReply {
	t.Helper()
	h := []string{"Accept", eventserver.ContentType, "Content-Type", eventserver.ContentType, "Authorization", c.basic()}
	if producerID != "" {
		h = append(h, "X-Producer-ID", producerID)
	}
	return esDo(t, http.MethodPost, tg.ingest+"/api/v1/streams/"+stream+"/events", body, h...)
}

func (tg esTarget) read(t *testing.T, c esClient, stream, query, consumer string) esReply {
	t.Helper()
	h := []string{"Accept", eventserver.ContentType, "Content-Type", eventserver.ContentType, "Authorization", c.basic()}
	if consumer != "" {
		h = append(h, "X-Consumer-ID", consumer)
	}
	return esDo(t, http.MethodGet, tg.query+"/api/v1/streams/"+stream+"/events?"+query, "", h...)
}

func (tg esTarget) ack(t *testing.T, c esClient, stream, eventID, consumer, form string) esReply {
	t.Helper()
	h := []string{"Accept", eventserver.ContentType, "Content-Type", "application/x-www-form-urlencoded", "Authorization", c.basic()}
	if consumer != "" {
		h = append(h, "X-Consumer-ID", consumer)
	}
	return esDo(t, http.MethodPost, tg.query+"/api/v1/streams/"+stream+"/events/"+url.PathEscape(eventID), form, h...)
}

// esExact fails unless r is status with exactly body and the event
// server's Content-Type.
func esExact(t *testing.T, what string, r esReply, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Errorf("%s = %d %s; want %d %s", what, r.status, r.body, status, body)
	}
	if ct := r.header.Get("Content-Type"); ct != eventserver.ContentType {
		t.Errorf("%s: Content-Type = %q; want %q", what, ct, eventserver.ContentType)
	}
}

// esGate checks a refusal the access gate makes before the event
// server's handler runs, which eventserver.Refusals (wrapped around the
// process's router by the ingest and query parts) answers in the event
// server's format: "Unauthorized" with its challenge, or "Forbidden - …".
func esGate(t *testing.T, what string, r esReply, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s = %d %s; want %d", what, r.status, r.body, status)
	}
	switch status {
	case http.StatusUnauthorized:
		if r.body != `"Unauthorized"` || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s = %s (WWW-Authenticate %q); want \"Unauthorized\" with a challenge", what, r.body, r.header.Get("WWW-Authenticate"))
		}
	case http.StatusForbidden:
		if !strings.HasPrefix(r.body, `"Forbidden - `) {
			t.Errorf("%s = %s; want \"Forbidden - <reason>\"", what, r.body)
		}
	}
	if ct := r.header.Get("Content-Type"); ct != eventserver.ContentType {
		t.Errorf("%s: Content-Type = %q; want %q", what, ct, eventserver.ContentType)
	}
}

// esID returns the new event's id of a publish answered 200 with it as a
// JSON string.
func esID(t *testing.T, what string, r esReply) string {
	t.Helper()
	var id string
	if err := json.Unmarshal([]byte(r.body), &id); err != nil || !esIDPattern.MatchString(id) {
		t.Fatalf("%s = %d %s; want 200 with the new event id as a JSON string", what, r.status, r.body)
	}
	esExact(t, what, r, http.StatusOK, `"`+id+`"`)
	return id
}

var esIDPattern = regexp.MustCompile(`^[0-9A-Za-z-]{8,}$`)

// The spec's example event, as a producer sends it.
const esEvent = `{
	"event": {
		"name" : "OrderPlaced",
		"version" : 1
	},
	"system" : {
		"id" : "alv123",
		"name" :"codello alvine",
		"time": "2017-09-06 13:58:12",
		"timezone" : "Europe/Berlin"
	},
	"trigger" : {
		"type": "system",
		"name": "/path/to/script.php"
	},
	"payload" : {"order": 42, "items": [1, 2], "note": "<a & b>"}
}`

// esRendered is esEvent with id as the event server answers it in a read.
func esRendered(id string) string {
	return `{"eventId":"` + id + `","event":{"name":"OrderPlaced","version":1,"id":"` + id + `"},` +
		`"system":{"id":"alv123","name":"codello alvine","time":"2017-09-06 13:58:12","timezone":"Europe/Berlin"},` +
		`"trigger":{"type":"system","name":"/path/to/script.php"},` +
		`"payload":{"order":42,"items":[1,2],"note":"<a & b>"}}`
}

// esReadStored reads until the stream is in the store (a 404 until the
// store wrote its first event) and returns the first other answer.
func (tg esTarget) readStored(t *testing.T, c esClient, stream, query, consumer string) esReply {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := tg.read(t, c, stream, query, consumer)
		if r.status != http.StatusNotFound || time.Now().After(deadline) {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// esSuite runs the old client's sequence and every documented answer of
// the event server's routes on tg.
func esSuite(t *testing.T, tg esTarget) {
	first := esCreate(t, tg, `{"name":"es-first","tags":["ORDERS.>","PAYMENTS.>","INVALID.>"],"scopes":{"read":[">"]}}`)
	second := esCreate(t, tg, `{"name":"es-second","tags":["ORDERS.>","PAYMENTS.>"],"scopes":{"read":["ORDERS.>"]}}`)
	outsider := esCreate(t, tg, `{"name":"es-outsider","tags":["OTHER.>"],"scopes":{"read":["OTHER.>"]}}`)
	reader := esCreate(t, tg, `{"name":"es-reader","scopes":{"read":["ORDERS.>"]}}`)
	slow := esCreate(t, tg, `{"name":"es-slow","tags":["SLOW.>"],"rate":{"per_second":0.001,"burst":1}}`)
	// A schema whose refusal (422 in EventSync) is the event server's 400.
	if r := esDo(t, http.MethodPut, tg.ingest+"/v1/schemas/INVALID", `{"type":"object","required":["order"]}`,
		"Content-Type", "application/json", "Authorization", "Bearer "+esAdminToken); r.status != http.StatusOK && r.status != http.StatusCreated {
		t.Fatalf("PUT schema = %d %s", r.status, r.body)
	}

	t.Run("produce, consume, ACK, consume again", func(t *testing.T) {
		id1 := esID(t, "first event", tg.publish(t, first, "ORDERS", "producer-1", esEvent))
		id2 := esID(t, "second event", tg.publish(t, first, "ORDERS", "producer-1", esEvent))
		both := "[" + esRendered(id1) + "," + esRendered(id2) + "]"

		esExact(t, "read", tg.readStored(t, first, "ORDERS", "eventName=OrderPlaced&limit=10", "c1"), http.StatusOK, both)
		esExact(t, "read again, nothing acknowledged", tg.read(t, first, "ORDERS", "eventName=OrderPlaced&limit=10", "c1"), http.StatusOK, both)
		esExact(t, "read with limit 1", tg.read(t, first, "ORDERS", "eventName=OrderPlaced&limit=1", "c1"), http.StatusOK, "["+esRendered(id1)+"]")
		esExact(t, "ACK the first", tg.ack(t, first, "ORDERS", id1, "c1", "action=ACK"), http.StatusOK, `"OK"`)
		esExact(t, "read after the first ACK", tg.read(t, first, "ORDERS", "eventName=OrderPlaced&limit=10", "c1"), http.StatusOK, "["+esRendered(id2)+"]")
		esExact(t, "ACK the second", tg.ack(t, first, "ORDERS", id2, "c1", "action=ACK"), http.StatusOK, `"OK"`)
		esExact(t, "read after the last ACK", tg.read(t, first, "ORDERS", "eventName=OrderPlaced&limit=10", "c1"), http.StatusOK, `[]`)
		// Another consumer has its own offset; another client with the
		// same consumer id too.
		esExact(t, "read as consumer c2", tg.read(t, first, "ORDERS", "eventName=OrderPlaced&limit=10", "c2"), http.StatusOK, both)
		esExact(t, "read as another client's c1", tg.read(t, second, "ORDERS", "eventName=OrderPlaced&limit=10", "c1"), http.StatusOK, both)
		// An event name nobody wrote yet in a known stream: nothing.
		esExact(t, "read another event name", tg.read(t, first, "ORDERS", "eventName=OrderShipped&limit=10", "c1"), http.StatusOK, `[]`)
	})

	t.Run("a stream belongs to its first writer", func(t *testing.T) {
		esExact(t, "second writer to ORDERS", tg.publish(t, second, "ORDERS", "producer-2", esEvent), http.StatusLocked, `"Locked - Second writers not allowed"`)
		esExact(t, "second writer to a sub-stream of ORDERS", tg.publish(t, second, "ORDERS.EU", "producer-2", esEvent), http.StatusLocked, `"Locked - Second writers not allowed"`)
		esID(t, "second's own stream", tg.publish(t, second, "PAYMENTS", "producer-2", esEvent))
		esExact(t, "first writer to second's stream", tg.publish(t, first, "PAYMENTS", "producer-1", esEvent), http.StatusLocked, `"Locked - Second writers not allowed"`)
		esID(t, "first writer again", tg.publish(t, first, "ORDERS", "producer-1", esEvent))
	})

	t.Run("publish refusals", func(t *testing.T) {
		for _, c := range []struct {
			what, stream, producerID, body string
			status                         int
			want                           string
		}{
			{"no X-Producer-ID", "ORDERS", "", esEvent, 400, `"Bad Request - X-Producer-ID is required"`},
			{"not JSON", "ORDERS", "p", `{`, 400, `"Bad Request - body is not a JSON event: unexpected EOF"`},
			{"no event name", "ORDERS", "p", `{"event":{},"payload":{}}`, 400, `"Bad Request - event.name is required"`},
			{"an event name with a dot", "ORDERS", "p", `{"event":{"name":"A.B"}}`, 400, `"Bad Request - event.name must be exactly one token (no dots)"`},
			{"a payload that is not an object", "ORDERS", "p", `{"event":{"name":"A"},"payload":[1]}`, 400, `"Bad Request - payload must be a JSON object"`},
			{"a reserved payload key", "ORDERS", "p", `{"event":{"name":"A"},"payload":{"_system":1}}`, 400, `"Bad Request - payload keys _version, _system, _trigger are reserved"`},
			{"a stream name EventSync cannot take", "ORDERS!", "p", esEvent, 400, `"Bad Request - stream tokens may hold only ASCII letters, digits, '_' and '-'"`},
			{"data against the stream's schema", "INVALID", "p", `{"event":{"name":"A"},"payload":{}}`, 400, `"Bad Request - data missing property 'order' (schema INVALID, keyword /required)"`},
		} {
			esExact(t, c.what, tg.publish(t, first, c.stream, c.producerID, c.body), c.status, c.want)
		}
		esExact(t, "a tag outside the client's", tg.publish(t, outsider, "ORDERS", "p", esEvent), http.StatusForbidden, `"Forbidden - tag is not allowed for this producer"`)
		esID(t, "a client's first event within its rate", tg.publish(t, slow, "SLOW", "p", esEvent))
		r := tg.publish(t, slow, "SLOW", "p", esEvent)
		esExact(t, "over the client's rate", r, http.StatusTooManyRequests, `"Too Many Requests"`)
		if r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		esGate(t, "no credentials", esDo(t, http.MethodPost, tg.ingest+"/api/v1/streams/ORDERS/events", esEvent, "X-Producer-ID", "p"), http.StatusUnauthorized)
		esGate(t, "wrong password", tg.publish(t, first.withPassword("wrong"), "ORDERS", "p", esEvent), http.StatusUnauthorized)
		esGate(t, "a client without write scope", tg.publish(t, reader, "ORDERS", "p", esEvent), http.StatusForbidden)
	})

	t.Run("read refusals", func(t *testing.T) {
		for _, c := range []struct {
			what, stream, query, consumer string
			status                        int
			want                          string
		}{
			{"no eventName", "ORDERS", "limit=10", "c1", 400, `"Bad Request - eventName is required"`},
			{"an eventName with a dot", "ORDERS", "eventName=A.B&limit=10", "c1", 400, `"Bad Request - eventName must be exactly one token (no dots)"`},
			{"no limit", "ORDERS", "eventName=OrderPlaced", "c1", 400, `"Bad Request - limit is required"`},
			{"limit 0", "ORDERS", "eventName=OrderPlaced&limit=0", "c1", 400, `"Bad Request - limit must be an integer from 1 to 10000"`},
			{"limit not a number", "ORDERS", "eventName=OrderPlaced&limit=ten", "c1", 400, `"Bad Request - limit must be an integer from 1 to 10000"`},
			{"no X-Consumer-ID", "ORDERS", "eventName=OrderPlaced&limit=10", "", 400, `"Bad Request - X-Consumer-ID is required"`},
			{"unknown stream", "NOPE", "eventName=OrderPlaced&limit=10", "c1", 404, `"Not Found"`},
		} {
			esExact(t, c.what, tg.read(t, first, c.stream, c.query, c.consumer), c.status, c.want)
		}
		esExact(t, "a stream outside the client's read patterns", tg.read(t, outsider, "ORDERS", "eventName=OrderPlaced&limit=10", "c1"),
			http.StatusForbidden, `"Forbidden - events OrderPlaced of stream ORDERS are outside the client's read patterns"`)
		esGate(t, "wrong password", tg.read(t, first.withPassword("wrong"), "ORDERS", "eventName=OrderPlaced&limit=10", "c1"), http.StatusUnauthorized)
		esGate(t, "no credentials", esDo(t, http.MethodGet, tg.query+"/api/v1/streams/ORDERS/events?eventName=OrderPlaced&limit=10", "", "X-Consumer-ID", "c1"), http.StatusUnauthorized)
		esGate(t, "a client without read scope", tg.read(t, slow, "ORDERS", "eventName=OrderPlaced&limit=10", "c1"), http.StatusForbidden)
	})

	t.Run("ACK refusals", func(t *testing.T) {
		id := esID(t, "an event to acknowledge", tg.publish(t, first, "ORDERS", "producer-1", esEvent))
		other := esID(t, "an event of another stream", tg.publish(t, second, "PAYMENTS", "producer-2", esEvent))
		for _, c := range []struct {
			what, stream, id, consumer, form string
			status                           int
			want                             string
		}{
			{"no action", "ORDERS", id, "c1", "", 400, `"Bad Request - action must be ACK"`},
			{"another action", "ORDERS", id, "c1", "action=NACK", 400, `"Bad Request - action must be ACK"`},
			{"no X-Consumer-ID", "ORDERS", id, "", "action=ACK", 400, `"Bad Request - X-Consumer-ID is required"`},
			{"unknown event", "ORDERS", "no-such-event", "c1", "action=ACK", 404, `"Not Found"`},
			{"an event of another stream", "ORDERS", other, "c1", "action=ACK", 404, `"Not Found"`},
			{"a consumer that never read the stream", "ORDERS", id, "never-read", "action=ACK", 404, `"Not Found"`},
		} {
			esExact(t, c.what, tg.ack(t, first, c.stream, c.id, c.consumer, c.form), c.status, c.want)
		}
		esExact(t, "a stream outside the client's read patterns", tg.ack(t, outsider, "ORDERS", id, "c1", "action=ACK"),
			http.StatusForbidden, `"Forbidden - stream ORDERS is outside the client's read patterns"`)
		esGate(t, "wrong password", tg.ack(t, first.withPassword("wrong"), "ORDERS", id, "c1", "action=ACK"), http.StatusUnauthorized)
		esGate(t, "no credentials", esDo(t, http.MethodPost, tg.query+"/api/v1/streams/ORDERS/events/"+id, "action=ACK",
			"Content-Type", "application/x-www-form-urlencoded", "X-Consumer-ID", "c1"), http.StatusUnauthorized)
		esGate(t, "a client without read scope", tg.ack(t, slow, "ORDERS", id, "c1", "action=ACK"), http.StatusForbidden)
		// The wrong password acknowledged nothing: c1 still reads the event.
		r := tg.read(t, first, "ORDERS", "eventName=OrderPlaced&limit=10", "c1")
		if r.status != http.StatusOK || !strings.Contains(r.body, `"eventId":"`+id+`"`) {
			t.Errorf("read after refused ACKs = %d %s; want the event %s still unacknowledged", r.status, r.body, id)
		}
	})
}

// TestEventServerAllInOne: the event server's API on the all-in-one with
// authentication by clients, without --claim-on-first-write.
func TestEventServerAllInOne(t *testing.T) {
	r := apptest.Start(t, map[string]string{"ADMIN_TOKEN": esAdminToken}, append([]string{"--auth", "clients"}, apptest.Fast...)...)
	esSuite(t, esTarget{ingest: r.Base, query: r.Base})
}

// TestEventServerServices: the same on ingest, store, query and notifier
// run separately against one NATS server and ClickHouse.
func TestEventServerServices(t *testing.T) {
	s := apptest.StartServices(t, map[string]string{"ADMIN_TOKEN": esAdminToken})
	tg := esTarget{ingest: s.Base["ingest"], query: s.Base["query"]}
	// Each route is served by its own service only.
	for _, c := range []struct{ method, url string }{
		{http.MethodPost, tg.query + "/api/v1/streams/ORDERS/events"},
		{http.MethodGet, tg.ingest + "/api/v1/streams/ORDERS/events?eventName=A&limit=1"},
	} {
		if r := esDo(t, c.method, c.url, "", "Authorization", "Bearer "+esAdminToken); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d; want it served elsewhere (404 or 405)", c.method, c.url, r.status)
		}
	}
	esSuite(t, tg)
}

// TestEventServerAuthNone: with --auth=none there are no credentials to
// check and no producer to own a stream: reads and ACKs need none, and a
// second writer is not refused.
func TestEventServerAuthNone(t *testing.T) {
	r := apptest.Start(t, nil, append([]string{"--auth", "none"}, apptest.Fast...)...)
	tg := esTarget{ingest: r.Base, query: r.Base}
	anyone := esClient{"whoever", "whatever"}
	id := esID(t, "a publish", tg.publish(t, anyone, "ORDERS", "producer-1", esEvent))
	esID(t, "a second writer", tg.publish(t, esClient{"other", "x"}, "ORDERS", "producer-2", esEvent))
	got := tg.readStored(t, anyone, "ORDERS", "eventName=OrderPlaced&limit=1", "c1")
	esExact(t, "read", got, http.StatusOK, "["+esRendered(id)+"]")
	esExact(t, "ACK without credentials", esDo(t, http.MethodPost, tg.query+"/api/v1/streams/ORDERS/events/"+id, "action=ACK",
		"Content-Type", "application/x-www-form-urlencoded", "X-Consumer-ID", "c1"), http.StatusOK, `"OK"`)
	if r := tg.read(t, anyone, "ORDERS", "eventName=OrderPlaced&limit=1", "c1"); r.status != http.StatusOK || strings.Contains(r.body, id) {
		t.Errorf("read after ACK = %d %s; want the second event only", r.status, r.body)
	}
}
