package httpserve_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsync/eventsync/pkg/httpserve"
)

// serve runs h on a loopback Server with the limits in o until the test
// ends, and returns its address.
func serve(t *testing.T, h http.Handler, o httpserve.Options) string {
	t.Helper()
	srv, err := httpserve.ListenWith("127.0.0.1:0", h, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv.Addr()
}

// slowWrite writes b one byte per second until it is done, the write fails
// or stop is closed, and returns how many bytes it wrote.
func slowWrite(conn net.Conn, b []byte, stop <-chan struct{}) int {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := range b {
		if _, err := conn.Write(b[i : i+1]); err != nil {
			return i
		}
		select {
		case <-tick.C:
		case <-stop:
			return i + 1
		}
	}
	return len(b)
}

// waitClosed reads from conn until the server closes it and returns what
// was read. A generous deadline turns a server that never closes into a
// failure instead of a hung test.
func waitClosed(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection of a slow client: %v", err)
	}
	return b
}

func TestReadHeaderTimeoutCutsOffSlowClients(t *testing.T) {
	var served atomic.Int64
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
	}), httpserve.Options{ReadHeaderTimeout: time.Second})

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := []byte("GET /healthz HTTP/1.1\r\nHost: eventsync.test\r\nX-Slow: one byte a second\r\n\r\n")
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() { sent <- slowWrite(conn, req, stop) }()

	got := waitClosed(t, conn)
	close(stop)
	n := <-sent
	if n >= len(req) {
		t.Errorf("the slow client sent all %d bytes of its headers; want it cut off before", len(req))
	}
	// net/http closes the connection, with or without a 400 first.
	if len(got) != 0 && !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
		t.Errorf("the slow client read %q; want the connection closed, at most with a 400", got)
	}
	if s := served.Load(); s != 0 {
		t.Errorf("the handler ran %d times; want 0", s)
	}

	// The server still answers clients that are not slow.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz after the slow client = %d; want 200", resp.StatusCode)
	}
}

func TestReadTimeoutCutsOffSlowBodies(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		results <- result{len(b), err}
	}), httpserve.Options{ReadTimeout: time.Second})

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const bodyLen = 60
	if _, err := io.WriteString(conn, "POST /v1/events HTTP/1.1\r\nHost: eventsync.test\r\nContent-Length: 60\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go slowWrite(conn, []byte(strings.Repeat("a", bodyLen)), stop)

	res := <-results
	if res.err == nil || res.n >= bodyLen {
		t.Errorf("reading a slow body = %d bytes, %v; want a timeout before %d bytes", res.n, res.err, bodyLen)
	}
}

func TestWriteTimeoutEndsSlowHandlers(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// Past the write deadline: the answer is never sent.
			select {
			case <-release:
			case <-time.After(2 * time.Second):
			}
		}
		_, _ = io.WriteString(w, "done")
	}), httpserve.Options{WriteTimeout: time.Second})

	resp, err := http.Get("http://" + addr + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /fast = %d; want 200", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr + "/slow"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Errorf("GET /slow = %d %q; want the connection closed by the write timeout", resp.StatusCode, b)
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), httpserve.Options{MaxHeaderBytes: 1 << 10})
	tests := []struct {
		name   string
		header int
		want   int
	}{
		{"small", 100, http.StatusOK},
		// net/http allows 4 KiB above MaxHeaderBytes.
		{"large", 64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "GET / HTTP/1.1\r\nHost: eventsync.test\r\nX-Big: " + strings.Repeat("a", tt.header) + "\r\nConnection: close\r\n\r\n"
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("a %d-byte header = %d; want %d", tt.header, resp.StatusCode, tt.want)
			}
		})
	}
}

func TestListenBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := httpserve.Listen(ln.Addr().String(), http.NotFoundHandler(), time.Second); err == nil {
		t.Errorf("Listen(%q) on a busy port = nil error; want one", ln.Addr())
	}
}
