package httpserve_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/eventsync/eventsync/pkg/httpserve"
)

// TestStackEarly413: a request announcing a body over the limit with
// Expect: 100-continue is refused with 413 before the client sends it,
// not invited with 100 Continue.
func TestStackEarly413(t *testing.T) {
	r := httpserve.NewRouter(httpserve.StackOptions{Log: slog.New(slog.DiscardHandler), MaxBody: 1 << 10})
	read := false
	r.Post("/v1/events", func(w http.ResponseWriter, r *http.Request) {
		read = true
		_, _ = io.Copy(io.Discard, r.Body)
	})
	srv, err := httpserve.Listen("127.0.0.1:0", r, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Run(t.Context()) }()

	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", 2<<20)
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 413") {
		t.Errorf("first answer = %q; want 413 before the body is sent", strings.TrimSpace(status))
	}
	if read {
		t.Error("the handler ran")
	}
}
