package auth

import (
	"container/list"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of ThrottleConfig.
const (
	DefaultMaxFailures   = 10
	DefaultFailureWindow = time.Minute
	DefaultCoolDown      = time.Minute
	DefaultMaxClients    = 65536
)

// ThrottleConfig limits failed authentications per client, so that
// anonymous clients cannot spend every core on bcrypt: once a client has
// failed MaxFailures times within Window, its attempts are refused with
// ErrThrottled, before any credential is checked, until CoolDown has
// passed since its last counted failure. Successful authentications do not
// count. A client is its network address (an IPv6 address with the other
// addresses of its /64), see WithRemote; without one, as on the NATS
// request path, a Basic attempt is counted against the producer id it
// claims, and every id no producer has shares one count.
type ThrottleConfig struct {
	// MaxFailures is the number of failures that starts a cool-down; 0 or
	// less: no limit.
	MaxFailures int
	// Window is how long failures add up; default 1 minute.
	Window time.Duration
	// CoolDown is how long a client that reached MaxFailures is refused;
	// default 1 minute.
	CoolDown time.Duration
	// MaxClients bounds the clients remembered at once (about 200 bytes
	// each); default 65,536. Only clients with failures in their window or
	// checks in flight are remembered; when they are that many, the one
	// seen least recently is forgotten, its cool-down with it.
	MaxClients int
}

// inFlightWait is what a client waits when its checks in flight already
// reach its limit: they decide within a bcrypt check.
const inFlightWait = time.Second

// throttle counts failures per client, in an LRU list of bounded length.
// Each attempt is counted before it is checked and taken back if it
// succeeded, so concurrent attempts cannot slip past the limit. It is safe
// for concurrent use; a nil *throttle allows everything.
type throttle struct {
	cfg ThrottleConfig
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*list.Element // of *client
	lru     list.List                // front: seen most recently
}

// client is the record of one client.
type client struct {
	key      string
	since    time.Time // start of the window
	failures int       // in the window
	inFlight int       // attempts admitted and not yet done
	until    time.Time // end of the cool-down; zero: none
}

// newThrottle returns a throttle, or nil when cfg sets no limit.
func newThrottle(cfg ThrottleConfig, now func() time.Time) *throttle {
	if cfg.MaxFailures <= 0 {
		return nil
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultFailureWindow
	}
	if cfg.CoolDown <= 0 {
		cfg.CoolDown = DefaultCoolDown
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	return &throttle{cfg: cfg, now: now, clients: make(map[string]*list.Element)}
}

// admit counts an attempt of the client with the given key, or returns
// how long it must wait first. Every admitted attempt must be followed by
// done. An empty key is not throttled.
func (t *throttle) admit(key string) (wait time.Duration) {
	if t == nil || key == "" {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	c := t.get(key, now)
	switch {
	case now.Before(c.until):
		return c.until.Sub(now)
	case c.failures+c.inFlight >= t.cfg.MaxFailures:
		return inFlightWait
	}
	c.inFlight++
	return 0
}

// done records the outcome of an admitted attempt.
func (t *throttle) done(key string, failed bool) {
	if t == nil || key == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	c := t.get(key, now) // a client forgotten meanwhile starts afresh
	c.inFlight = max(c.inFlight-1, 0)
	if failed {
		if c.failures++; c.failures >= t.cfg.MaxFailures {
			c.until = now.Add(t.cfg.CoolDown)
		}
	}
	if c.failures == 0 && c.inFlight == 0 {
		t.forget(key)
	}
}

// get returns the client's record, made current: a new one if there was
// none (forgetting the least recent client when full), and a fresh window
// once the last one or the cool-down has passed. It marks the client as
// seen. t.mu must be held.
func (t *throttle) get(key string, now time.Time) *client {
	if e, ok := t.clients[key]; ok {
		t.lru.MoveToFront(e)
		c := e.Value.(*client)
		cooled := !c.until.IsZero() && !now.Before(c.until)
		if cooled || c.until.IsZero() && now.Sub(c.since) >= t.cfg.Window {
			c.since, c.failures, c.until = now, 0, time.Time{}
		}
		return c
	}
	for len(t.clients) >= t.cfg.MaxClients {
		t.forget(t.lru.Back().Value.(*client).key)
	}
	c := &client{key: key, since: now}
	t.clients[key] = t.lru.PushFront(c)
	return c
}

// forget drops a client's record. t.mu must be held.
func (t *throttle) forget(key string) {
	if e, ok := t.clients[key]; ok {
		t.lru.Remove(e)
		delete(t.clients, key)
	}
}

// len returns the number of clients remembered.
func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}

// remote is where a request came from, as WithRemote stored it.
type remote struct {
	addr         string
	forwardedFor []string
}

// remoteKey is the context key of a remote.
type remoteKey struct{}

// WithRemote returns ctx carrying where an HTTP request came from: the
// network address of its peer (http.Request.RemoteAddr, host:port) and
// the values of its X-Forwarded-For headers. Authenticate counts failures
// against that client (see ThrottleConfig). X-Forwarded-For is believed
// only from a peer in Config.TrustedProxies; Forwarded (RFC 7239) is never
// read.
func WithRemote(ctx context.Context, remoteAddr string, forwardedFor []string) context.Context {
	return context.WithValue(ctx, remoteKey{}, remote{addr: remoteAddr, forwardedFor: forwardedFor})
}

// throttleKey names the client an attempt is counted against: its
// address when ctx carries one (see WithRemote); else, for Basic
// credentials, the producer id they claim, ids nobody has sharing one key;
// else "", not throttled: bearer credentials cost no bcrypt and name
// nobody before they are verified.
func (a *Authenticator) throttleKey(ctx context.Context, c credentials) string {
	if r, ok := ctx.Value(remoteKey{}).(remote); ok {
		if addr, ok := clientAddr(r.addr, r.forwardedFor, a.cfg.TrustedProxies); ok {
			return "address " + addr
		}
	}
	if c.kind != kindBasic {
		return ""
	}
	if _, ok := a.dir.Get(c.id); ok {
		return "producer " + c.id
	}
	return "unknown producer"
}

// clientAddr returns the address of the client a request came from: its
// peer's, or when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not (every proxy appends the address of its
// own peer; what lies left of the last trusted one was written by the
// client). An entry that is not an address is answered for by the proxy
// that passed it on. IPv6 addresses are reduced to their /64, which one
// client usually holds whole. ok is false when remoteAddr is no IP
// address (a Unix socket).
func clientAddr(remoteAddr string, forwardedFor []string, trusted Prefixes) (key string, ok bool) {
	addr, ok := parseAddr(remoteAddr)
	if !ok {
		return "", false
	}
	if trusted.contains(addr) {
	walk:
		for i := len(forwardedFor) - 1; i >= 0; i-- {
			hops := strings.Split(forwardedFor[i], ",")
			for j := len(hops) - 1; j >= 0; j-- {
				hop, ok := parseAddr(strings.TrimSpace(hops[j]))
				if !ok {
					break walk
				}
				addr = hop
				if !trusted.contains(hop) {
					break walk
				}
			}
		}
	}
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String(), true
	}
	return addr.String(), true
}

// parseAddr reads an IP address with or without a port.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// Prefixes is a list of networks; as a flag.Value it is read from
// addresses and CIDR prefixes separated by commas
// ("10.0.0.0/8, 192.0.2.7").
type Prefixes []netip.Prefix

// Set replaces the list with the networks in s.
func (p *Prefixes) Set(s string) error {
	var ps Prefixes
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			a = a.Unmap().WithZone("")
			ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(f)
		if err != nil {
			return fmt.Errorf("%q is neither an IP address nor a CIDR prefix", f)
		}
		if pf.Masked() != pf {
			return fmt.Errorf("%q has bits set past its prefix length; did you mean %s?", f, pf.Masked())
		}
		ps = append(ps, pf)
	}
	*p = ps
	return nil
}

// String lists the networks, separated by commas.
func (p Prefixes) String() string {
	s := make([]string, len(p))
	for i, pf := range p {
		s[i] = pf.String()
	}
	return strings.Join(s, ",")
}

// contains reports whether one of the networks holds a.
func (p Prefixes) contains(a netip.Addr) bool {
	for _, pf := range p {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}
