// Package netguard keeps outgoing deliveries away from internal networks
// (server-side request forgery): a subscriber must not be able to point a
// webhook at the loopback interface, the private network, or a cloud
// metadata service and have EventSync call it.
//
// A Guard checks twice. CheckURL runs when a subscription is registered and
// refuses URLs whose host is, or resolves to, an internal address.
// DialContext runs on every delivery and checks the address actually being
// connected to, after resolution, so a name that resolved to a public
// address at registration and to an internal one later (DNS rebinding) is
// still refused.
//
// Addresses that embed an IPv4 address are judged by it where the embedding
// is fixed: IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96) and the
// well-known NAT64 prefix (64:ff9b::/96). Transition forms whose embedded
// address is not a plain copy, or that no receiver needs, are refused
// outright: 6to4 (2002::/16), Teredo (2001::/32, inside the refused IETF
// block 2001::/23) and local-use NAT64 (64:ff9b:1::/48). Outside those, an
// IPv6 address must be global unicast (2000::/3).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbidden is wrapped by every error that refuses an address.
var ErrForbidden = errors.New("deliveries to internal addresses are refused")

// Dial timeouts of DialContext. The caller's context may cut them shorter.
const (
	DialTimeout = 10 * time.Second
	KeepAlive   = 30 * time.Second
)

// Guard refuses internal addresses unless an allowed prefix contains them.
// Set its fields before first use; it is then safe for concurrent use.
type Guard struct {
	allow []netip.Prefix

	// LookupNetIP resolves host names for CheckURL; nil means
	// net.DefaultResolver.LookupNetIP. DialContext always resolves with the
	// system resolver and checks what it connects to.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)

	dialer net.Dialer
}

// New returns a Guard that lets addresses in allow through even when they
// are internal, for receivers on a private network (and for local
// development: 127.0.0.0/8 and ::1/128).
func New(allow []netip.Prefix) *Guard {
	g := &Guard{}
	for _, p := range allow {
		if p.IsValid() {
			g.allow = append(g.allow, p.Masked())
		}
	}
	g.dialer = net.Dialer{
		Timeout:   DialTimeout,
		KeepAlive: KeepAlive,
		Control:   g.control,
	}
	return g
}

// ParseAllow parses a comma-separated list of CIDR prefixes, such as
// "10.20.0.0/16,fd00:1::/64". A bare address stands for itself (/32 or
// /128). Empty items are ignored, so "" is an empty list.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("parse allowed network %q: %w", item, err)
			}
			out = append(out, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("parse allowed network %q: %w", item, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// CheckAddr returns nil if deliveries may connect to ip, and otherwise an
// error wrapping ErrForbidden that names the reason, such as
// "address 127.0.0.1 is loopback: deliveries to internal addresses are
// refused".
func (g *Guard) CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("invalid address: %w", ErrForbidden)
	}
	bare := ip.WithZone("")
	if g.allowed(bare) || g.allowed(bare.Unmap()) {
		return nil
	}
	if r := reason(bare); r != "" {
		return fmt.Errorf("address %s is %s: %w", ip, r, ErrForbidden)
	}
	return nil
}

func (g *Guard) allowed(ip netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckURL checks a webhook URL at registration: the scheme must be http or
// https, the host must not be a numeric form that some clients read as an
// IPv4 address (2130706433, 0x7f000001, 0177.0.0.1, 127.1), and the host,
// or every address it resolves to, must pass CheckAddr. Refusals wrap
// ErrForbidden; a failed lookup is returned wrapped as it came.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an http or https URL, not %s", schemeName(u.Scheme))
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("must name a host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := g.CheckAddr(ip); err != nil {
			return err
		}
		return nil
	}
	if numericHost(host) {
		return fmt.Errorf("host %q is a numeric form that some clients read as an IPv4 address; "+
			"write an address as four decimal octets (127.0.0.1) or use a name: %w", host, ErrForbidden)
	}
	lookup := g.LookupNetIP
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	addrs, err := lookup(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("host %s does not resolve: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("host %s resolves to no address", host)
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return fmt.Errorf("host %s: %w", host, err)
		}
	}
	return nil
}

// schemeName names a URL scheme for an error detail.
func schemeName(scheme string) string {
	if scheme == "" {
		return "a URL without a scheme"
	}
	return strconv.Quote(scheme)
}

// numericHost reports whether host ends in a label that URL parsers
// following the WHATWG URL standard (browsers, curl, some libraries) read as
// a number, making the whole host an IPv4 address in decimal, octal, hex or
// shortened form. No top-level domain is numeric, so nothing real is lost.
func numericHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// DialContext connects like net.Dialer.DialContext, refusing any address
// CheckAddr refuses. The check runs on the resolved address of each
// connection attempt, so it holds whatever DNS answers at delivery time.
// Only TCP is supported.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("dial %s %s: network not supported", network, addr)
	}
	return g.dialer.DialContext(ctx, network, addr)
}

// control runs after resolution and before connect, with the literal
// address being connected to.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("parse dial address %q: %w", address, ErrForbidden)
	}
	return g.CheckAddr(ap.Addr())
}

type block struct {
	prefix netip.Prefix
	reason string
}

// blocked4 lists the IPv4 ranges deliveries may not reach. The first match
// names the reason, so narrower ranges come before wider ones.
var blocked4 = []block{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata services live here)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved for IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "reserved (former 6to4 relay anycast)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved for benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// blocked6 lists the IPv6 ranges deliveries may not reach, after the
// embedded-IPv4 forms are handled.
var blocked6 = []block{
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (embeds an IPv4 address)"},
	{netip.MustParsePrefix("2001::/23"), "reserved for IETF protocol assignments"},
	{netip.MustParsePrefix("2001:db8::/32"), "reserved for documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (embeds an IPv4 address)"},
	{netip.MustParsePrefix("3fff::/20"), "reserved for documentation"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local (private)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	compat96  = netip.MustParsePrefix("::/96")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	global6   = netip.MustParsePrefix("2000::/3")
	loopback6 = netip.IPv6Loopback()
)

// reason returns why ip (without zone) is internal, or "" if it is not.
func reason(ip netip.Addr) string {
	if ip.Is4() {
		for _, b := range blocked4 {
			if b.prefix.Contains(ip) {
				return b.reason
			}
		}
		return ""
	}
	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip == loopback6:
		return "loopback"
	case ip.Is4In6():
		return embedded(ip, "IPv4-mapped")
	case compat96.Contains(ip):
		return embedded(ip, "IPv4-compatible")
	case nat64.Contains(ip):
		return embedded(ip, "NAT64")
	}
	for _, b := range blocked6 {
		if b.prefix.Contains(ip) {
			return b.reason
		}
	}
	if !global6.Contains(ip) {
		return "reserved (outside global unicast 2000::/3)"
	}
	return ""
}

// embedded judges an IPv6 address by the IPv4 address in its last 32 bits.
func embedded(ip netip.Addr, form string) string {
	b := ip.As16()
	v4 := netip.AddrFrom4([4]byte(b[12:]))
	if r := reason(v4); r != "" {
		return fmt.Sprintf("%s (%s %s)", r, form, v4)
	}
	return ""
}
