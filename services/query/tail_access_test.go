package query_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/eventstore"
	"github.com/eventsync/eventsync/pkg/producer"
)

// TestTailLimitedToReadPatterns: the live tail sends only events the
// client may read, whatever it asks for, and resuming with Last-Event-ID
// does not reach other tags. Each stream ends with a sentinel event that
// the client may read: reading it right after the expected events proves
// that nothing else came in between.
func TestTailLimitedToReadPatterns(t *testing.T) {
	g := newGated(t, openSQLite(t).(eventstore.Store))
	db := g.client("db-reader", producer.Scopes{Read: []string{"DATABASE.>"}})
	// Overlapping read patterns, which JetStream refuses as filters.
	overlap := g.client("overlap-reader", producer.Scopes{Read: []string{"AUTH.*", "*.INSERT"}})
	g.publish(mixedTags...)
	insert := []string{"DATABASE.INSERT", "DATABASE.INSERT", "DATABASE.INSERT"}

	tests := []struct {
		name  string
		c     client
		query string
		want  []string
	}{
		{"no tag", db, "", only(mixedTags, isDatabase)},
		{"every tag", db, "&tag=" + url.QueryEscape(">"), only(mixedTags, isDatabase)},
		{"tag inside", db, "&tag=DATABASE.INSERT", insert},
		{"partial overlap", db, "&tag=*.INSERT", insert},
		{"overlapping read patterns", overlap, "", only(mixedTags, func(t string) bool { return t != "DATABASE.DELETE" })},
		{"overlapping read patterns, a tag", overlap, "&tag=DATABASE.*", insert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := g.openStream("/v1/stream?since=0"+tt.query, "Authorization", tt.c.bearer())
			if diff := cmp.Diff(tt.want, s.nextTags(t, len(tt.want))); diff != "" {
				t.Errorf("stream (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("outside", func(t *testing.T) {
		want := `tag "AUTH.*" selects no tag within the client's read patterns`
		if d := g.problemOf("GET", "/v1/stream?tag=AUTH.*", db.bearer(), nil, http.StatusForbidden); d != want {
			t.Errorf("tail of AUTH.* detail = %q; want %q", d, want)
		}
	})

	t.Run("live and resumed", func(t *testing.T) {
		s := g.openStream("/v1/stream?since=0", "Authorization", db.bearer())
		first, e := s.next(t)
		if e.Tag != "DATABASE.INSERT" {
			t.Fatalf("first event = %s; want DATABASE.INSERT", e.Tag)
		}
		g.publish("AUTH.LOGIN", "DATABASE.END")
		want := append(only(mixedTags, isDatabase)[1:], "DATABASE.END")
		if diff := cmp.Diff(want, s.nextTags(t, len(want))); diff != "" {
			t.Errorf("stream (-want +got):\n%s", diff)
		}
		// A browser reconnecting after the first event.
		r := g.openStream("/v1/stream?since=0", "Authorization", db.bearer(), "Last-Event-ID", strconv.FormatUint(first, 10))
		if diff := cmp.Diff(want, r.nextTags(t, len(want))); diff != "" {
			t.Errorf("resumed stream (-want +got):\n%s", diff)
		}
		g.publish("AUTH.LOGOUT", "DATABASE.END")
		if _, e := r.next(t); e.Tag != "DATABASE.END" {
			t.Errorf("next live event = %s; want DATABASE.END", e.Tag)
		}
	})
}

// TestTokenOpensTheTail: a client with read scope on DATABASE.> gets an
// access token from POST /v1/tokens, served by the query service with the
// tail, and opens the tail with it in the query string, without an
// Authorization header: it receives DATABASE events only. The token is
// refused everywhere else (401).
func TestTokenOpensTheTail(t *testing.T) {
	g := newGated(t, openSQLite(t).(eventstore.Store))
	db := g.client("dashboard", producer.Scopes{Read: []string{"DATABASE.>"}})
	g.publish(mixedTags...)

	tok := gjson[struct {
		Token string   `json:"token"`
		Read  []string `json:"read"`
		Param string   `json:"param"`
	}](g, "POST", "/v1/tokens", db.bearer(), nil, http.StatusCreated)
	if tok.Token == "" || tok.Param != "access_token" || !cmp.Equal(tok.Read, []string{"DATABASE.>"}) {
		t.Fatalf("POST /v1/tokens = %+v; want a token reading DATABASE.>", tok)
	}
	g.problemOf("POST", "/v1/tokens", db.bearer(), map[string]any{"read": []string{">"}}, http.StatusForbidden)

	s := g.openStream("/v1/stream?since=0&access_token=" + url.QueryEscape(tok.Token))
	g.publish("AUTH.LOGIN", "DATABASE.END")
	want := append(only(mixedTags, isDatabase), "DATABASE.END")
	if diff := cmp.Diff(want, s.nextTags(t, len(want))); diff != "" {
		t.Errorf("stream with a token (-want +got):\n%s", diff)
	}

	g.problemOf("GET", "/v1/stream?tag=AUTH.*&access_token="+url.QueryEscape(tok.Token), "", nil, http.StatusForbidden)
	g.problemOf("GET", "/v1/events?access_token="+url.QueryEscape(tok.Token), "", nil, http.StatusUnauthorized)
	g.problemOf("GET", "/v1/events", "Bearer "+tok.Token, nil, http.StatusUnauthorized)
	g.problemOf("POST", "/v1/tokens", "Bearer "+tok.Token, nil, http.StatusUnauthorized)
	g.problemOf("GET", "/v1/stream?access_token=est_forged", "", nil, http.StatusUnauthorized)
}
