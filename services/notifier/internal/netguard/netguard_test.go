package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// resolver answers from a fixed table, like a DNS server an attacker runs.
func resolver(table map[string][]string) func(context.Context, string, string) ([]netip.Addr, error) {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		list, ok := table[strings.ToLower(host)] // DNS names are case-insensitive
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, s := range list {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

// internalURLs are URL forms of internal addresses; every one must be
// refused.
var internalURLs = []string{
	"http://127.0.0.1",
	"http://127.0.0.1:8080/hook",
	"http://127.255.255.254",
	"http://127.1",
	"http://2130706433",
	"http://0x7f000001",
	"http://0X7F000001",
	"http://0177.0.0.1",
	"http://0x7f.0.0.1",
	"http://127.0.0.1.",
	"http://[::1]",
	"http://[::ffff:127.0.0.1]",
	"http://[::ffff:7f00:1]",
	"http://[0:0:0:0:0:ffff:127.0.0.1]",
	"http://[::127.0.0.1]",
	"http://[::ffff:169.254.169.254]",
	"http://[::ffff:10.0.0.1]",
	"http://0.0.0.0",
	"http://0",
	"http://[::]",
	"http://10.1.2.3",
	"http://172.16.0.1",
	"http://172.31.255.255",
	"http://192.168.1.1",
	"http://100.64.0.1",
	"http://100.127.255.254",
	"http://169.254.169.254/latest/meta-data/",
	"http://169.254.170.2/v2/credentials",
	"http://[fe80::1%25eth0]",
	"http://[fe80::1]",
	"http://[fd00::1]",
	"http://[fd00:ec2::254]",
	"http://[fc00::1]",
	"http://[fec0::1]",
	"http://224.0.0.1",
	"http://239.255.255.250",
	"http://[ff02::1]",
	"http://[64:ff9b::7f00:1]",
	"http://[64:ff9b::a9fe:a9fe]",
	"http://[64:ff9b:1::808:808]",
	"http://[2002:7f00:1::]",
	"http://[2002:5db8:d822::1]",
	"http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
	"http://[2001:db8::1]",
	"http://[100::1]",
	"http://255.255.255.255",
	"http://240.0.0.1",
	"http://localhost",
	"http://localhost:9000/hook",
	"http://198.18.0.1",
	"http://198.19.255.255",
	"http://192.0.0.8",
	"http://192.0.2.1",
	"http://198.51.100.7",
	"http://203.0.113.9",
	"https://10.0.0.1:8443",
}

func TestCheckURLRefusesInternal(t *testing.T) {
	g := New(nil)
	for _, raw := range internalURLs {
		t.Run(raw, func(t *testing.T) {
			err := g.CheckURL(t.Context(), raw)
			if !errors.Is(err, ErrForbidden) {
				t.Errorf("CheckURL(%q) = %v; want %v", raw, err, ErrForbidden)
			}
		})
	}
}

func TestCheckURLAcceptsPublic(t *testing.T) {
	g := New(nil)
	g.LookupNetIP = resolver(map[string][]string{
		"hooks.example.com": {"93.184.216.34", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"dns64.example.com": {"64:ff9b::5db8:d822"},
	})
	for _, raw := range []string{
		"https://hooks.example.com/eventsync",
		"http://hooks.example.com:8080/eventsync?token=abc",
		"https://HOOKS.example.com/",
		"https://dns64.example.com/",
		"http://93.184.216.34/",
		"https://[2606:4700::1]/",
		"https://[2001:4860:4860::8888]:443/",
		"https://[::ffff:93.184.216.34]/",
		"https://1.1.1.1/",
	} {
		t.Run(raw, func(t *testing.T) {
			if err := g.CheckURL(t.Context(), raw); err != nil {
				t.Errorf("CheckURL(%q) = %v; want nil", raw, err)
			}
		})
	}
}

func TestCheckURLResolvesNames(t *testing.T) {
	g := New(nil)
	g.LookupNetIP = resolver(map[string][]string{
		"evil.example":  {"127.0.0.1"},
		"mixed.example": {"93.184.216.34", "10.0.0.5"},
		"meta.example":  {"169.254.169.254"},
		"v6.example":    {"2606:4700::1", "::1"},
	})
	for _, raw := range []string{"http://evil.example/", "https://mixed.example/", "http://meta.example/", "https://v6.example/"} {
		err := g.CheckURL(t.Context(), raw)
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("CheckURL(%q) = %v; want %v", raw, err, ErrForbidden)
		}
	}

	err := g.CheckURL(t.Context(), "https://nowhere.example/")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || errors.Is(err, ErrForbidden) {
		t.Errorf("CheckURL(unresolvable) = %v; want the *net.DNSError", err)
	}
}

func TestCheckURLMalformed(t *testing.T) {
	g := New(nil)
	for _, raw := range []string{
		"ftp://example.com/",
		"file:///etc/passwd",
		"gopher://127.0.0.1:25/",
		"javascript:alert(1)",
		"//example.com/",
		"http://",
		"http:///path",
		"http://[::1",
		"not a url",
	} {
		if err := g.CheckURL(t.Context(), raw); err == nil {
			t.Errorf("CheckURL(%q) = nil; want an error", raw)
		}
	}
}

func TestCheckURLErrorMessage(t *testing.T) {
	g := New(nil)
	tests := []struct{ raw, want string }{
		{"http://127.0.0.1/", "address 127.0.0.1 is loopback: deliveries to internal addresses are refused"},
		{"http://[::ffff:127.0.0.1]/", "address ::ffff:127.0.0.1 is loopback (IPv4-mapped 127.0.0.1)"},
		{"http://169.254.169.254/", "is link-local"},
		{"http://2130706433/", `host "2130706433" is a numeric form`},
	}
	for _, tt := range tests {
		err := g.CheckURL(t.Context(), tt.raw)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckURL(%q) = %v; want an error containing %q", tt.raw, err, tt.want)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	g := New(nil)
	refused := []string{
		"0.0.0.0", "0.1.2.3", "127.0.0.1", "10.255.255.255", "172.16.0.0", "192.168.0.1",
		"100.64.0.0", "169.254.169.254", "192.0.0.170", "192.0.2.0", "192.88.99.1", "198.18.0.0",
		"198.51.100.255", "203.0.113.1", "224.0.0.251", "255.255.255.255", "250.1.2.3",
		"::", "::1", "::2", "::ffff:0.0.0.0", "::ffff:192.168.0.1", "::10.0.0.1",
		"64:ff9b::10.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::1", "100::", "2001::1", "2001:2::1",
		"2001:10::1", "2001:db8::", "2002::1", "3fff::1", "fc00::", "fdff:ffff::1", "fe80::1",
		"fe80::1%eth0", "febf::1", "fec0::1", "ff02::fb", "5f00::1", "1::1", "::1:2:3:4:5",
	}
	for _, s := range refused {
		if err := g.CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrForbidden) {
			t.Errorf("CheckAddr(%s) = %v; want %v", s, err, ErrForbidden)
		}
	}
	allowed := []string{
		"1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.15.255.255",
		"172.32.0.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
		"223.255.255.255", "::ffff:1.1.1.1", "64:ff9b::808:808", "2606:4700::1", "2001:4860:4860::8888",
		"2a00:1450:4001::200e",
	}
	for _, s := range allowed {
		if err := g.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v; want nil", s, err)
		}
	}
	if err := g.CheckAddr(netip.Addr{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("CheckAddr(zero Addr) = %v; want %v", err, ErrForbidden)
	}
}

func TestAllow(t *testing.T) {
	allow, err := ParseAllow("127.0.0.0/8,::1/128")
	if err != nil {
		t.Fatalf("ParseAllow: %v", err)
	}
	g := New(allow)
	for _, raw := range []string{"http://127.0.0.1:8080/", "http://127.9.9.9/", "http://[::1]/", "http://localhost/", "http://[::ffff:127.0.0.1]/"} {
		if err := g.CheckURL(t.Context(), raw); err != nil {
			t.Errorf("CheckURL(%q) with 127.0.0.0/8 allowed = %v; want nil", raw, err)
		}
	}
	for _, raw := range []string{"http://10.0.0.1/", "http://169.254.169.254/", "http://2130706433/", "http://[64:ff9b::7f00:1]/"} {
		if err := g.CheckURL(t.Context(), raw); !errors.Is(err, ErrForbidden) {
			t.Errorf("CheckURL(%q) with 127.0.0.0/8 allowed = %v; want %v", raw, err, ErrForbidden)
		}
	}
}

func TestParseAllow(t *testing.T) {
	tests := []struct {
		in   string
		want []netip.Prefix
	}{
		{"", nil},
		{" , ", nil},
		{"127.0.0.0/8,::1/128", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		{" 10.20.0.0/16 , fd00:1::/64 ", []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00:1::/64")}},
		{"10.1.2.3/8", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{"192.168.1.10", []netip.Prefix{netip.MustParsePrefix("192.168.1.10/32")}},
		{"fd00::5", []netip.Prefix{netip.MustParsePrefix("fd00::5/128")}},
	}
	for _, tt := range tests {
		got, err := ParseAllow(tt.in)
		if err != nil {
			t.Errorf("ParseAllow(%q) = %v; want nil error", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("ParseAllow(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, in := range []string{"10.0.0.0/33", "not-a-cidr", "10.0.0.0/8,,x/8", "127.1/8"} {
		if _, err := ParseAllow(in); err == nil {
			t.Errorf("ParseAllow(%q) = nil error; want an error", in)
		}
	}
}

// receiver starts a loopback HTTP server and reports whether it was called.
func receiver(t *testing.T) (*httptest.Server, func() int) {
	t.Helper()
	calls := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { return len(calls) }
}

func client(g *Guard) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: g.DialContext}}
}

func TestDialContext(t *testing.T) {
	srv, calls := receiver(t)

	t.Run("refused", func(t *testing.T) {
		_, err := New(nil).DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("DialContext(%s) = %v; want %v", srv.Listener.Addr(), err, ErrForbidden)
		}
		resp, err := client(New(nil)).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("Get(%s) through the guard = %v; want %v", srv.URL, err, ErrForbidden)
		}
		if n := calls(); n != 0 {
			t.Errorf("receiver saw %d requests; want 0", n)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		g := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
		resp, err := client(g).Get(srv.URL)
		if err != nil {
			t.Fatalf("Get(%s) with 127.0.0.0/8 allowed = %v; want nil", srv.URL, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || calls() != 1 {
			t.Errorf("Get(%s) = %d with %d requests received; want 204 and 1", srv.URL, resp.StatusCode, calls())
		}
	})

	t.Run("udp", func(t *testing.T) {
		if _, err := New(nil).DialContext(t.Context(), "udp", "8.8.8.8:53"); err == nil {
			t.Errorf("DialContext(udp) = nil error; want an error")
		}
	})
}

// TestDNSRebinding: a name that resolves to a public address when the
// subscription is registered and to loopback at delivery time is refused at
// dial time.
func TestDNSRebinding(t *testing.T) {
	srv, calls := receiver(t)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	target := (&url.URL{Scheme: "http", Host: net.JoinHostPort("localhost", port), Path: "/hook"}).String()

	g := New(nil)
	g.LookupNetIP = resolver(map[string][]string{"localhost": {"93.184.216.34"}}) // the first, public answer
	if err := g.CheckURL(t.Context(), target); err != nil {
		t.Fatalf("CheckURL(%q) with a public answer = %v; want nil", target, err)
	}

	resp, err := client(g).Post(target, "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("Post(%q) after rebinding = %v; want %v", target, err, ErrForbidden)
	}
	if n := calls(); n != 0 {
		t.Errorf("receiver saw %d requests; want 0", n)
	}
}
