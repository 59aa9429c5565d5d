package sink

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/eventsync/eventsync/pkg/event"
)

// mailServer is a real SMTP server on loopback that keeps what it receives
// and answers scripted errors.
type mailServer struct {
	addr string

	mu       sync.Mutex
	received []receivedMail
	rcptErr  map[string]*smtp.SMTPError // by recipient
	dataErr  *smtp.SMTPError
	user     string // AUTH PLAIN/LOGIN required when set
	pass     string
}

type receivedMail struct {
	From string
	To   []string
	Data []byte
	User string
	TLS  bool
}

type mailServerOptions struct {
	startTLS *tls.Config // offer STARTTLS with this configuration
	implicit *tls.Config // TLS from the first byte
	user     string
	pass     string
}

func startMailServer(t *testing.T, o mailServerOptions) *mailServer {
	t.Helper()
	ms := &mailServer{rcptErr: make(map[string]*smtp.SMTPError), user: o.user, pass: o.pass}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{ms: ms, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.TLSConfig = o.startTLS
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicit != nil {
		ln = tls.NewListener(ln, o.implicit)
	}
	ms.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		ln.Close() // Close misses a listener that Serve has not registered yet
		<-done
	})
	return ms
}

func (ms *mailServer) failRcpt(addr string, code int, enhanced smtp.EnhancedCode, msg string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.rcptErr[addr] = &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

func (ms *mailServer) mails() []receivedMail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]receivedMail(nil), ms.received...)
}

type mailSession struct {
	ms   *mailServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *mailSession) AuthMechanisms() []string {
	if s.ms.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.ms.user || pass != s.ms.pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ms.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	if err := s.ms.rcptErr[to]; err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	if s.ms.dataErr != nil {
		return s.ms.dataErr
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.ms.received = append(s.ms.received, receivedMail{From: s.from, To: s.to, Data: b, User: s.user, TLS: isTLS})
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// testCert returns a certificate for 127.0.0.1 and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mx.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

var (
	testTime = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

	testEvent = event.Event{
		Seq:       42,
		ID:        "0194a3b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b",
		Subject:   "events.DATABASE.CONNECTION_LOST",
		Tag:       "DATABASE.CONNECTION_LOST",
		Category:  "DATABASE",
		Code:      "CONNECTION_LOST",
		Message:   "lost connection to primary",
		Timestamp: testTime,
		SessionID: "sess-7",
		Source:    "db-1",
		Severity:  event.Error,
	}
)

// testMessage is a delivery of events to target.
func testMessage(t *testing.T, id, target string, events ...event.Event) *Message {
	t.Helper()
	var body []byte
	if len(events) == 1 {
		b, err := event.Encode(&events[0])
		if err != nil {
			t.Fatal(err)
		}
		body = b
	} else {
		body = []byte{'['}
		for i := range events {
			b, err := event.Encode(&events[i])
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, b...)
		}
		body = append(body, ']')
	}
	return &Message{ID: id, Time: testTime, Target: target, Body: body, Events: events}
}

func newTestEmail(t *testing.T, cfg EmailConfig) *Email {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "EventSync <alerts@eventsync.test>"
	}
	if cfg.TLS == "" {
		cfg.TLS = "none"
	}
	e, err := NewEmail(cfg)
	if err != nil {
		t.Fatalf("NewEmail(%+v) = %v", cfg, err)
	}
	return e
}

// parsedMail is a received message, decoded.
type parsedMail struct {
	Header mail.Header
	Body   string
}

func parseMail(t *testing.T, data []byte) parsedMail {
	t.Helper()
	if i := bytes.IndexFunc(data, func(r rune) bool { return r == '\n' }); i > 0 && data[i-1] != '\r' {
		t.Errorf("message lines end in LF, want CRLF")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("mail.ReadMessage = %v\n%s", err, data)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("read quoted-printable body: %v", err)
	}
	return parsedMail{Header: msg.Header, Body: string(body)}
}

func decodedSubject(t *testing.T, h mail.Header) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject %q: %v", h.Get("Subject"), err)
	}
	return s
}

func TestEmailSendOne(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	e := newTestEmail(t, EmailConfig{Addr: ms.addr})

	res := e.Send(t.Context(), testMessage(t, "msg_1", "mailto:ops@example.com", testEvent))
	if res.Verdict != Delivered || res.Status != 250 || res.Err != nil {
		t.Fatalf("Send = %+v; want delivered with 250", res)
	}
	if res.Response == "" {
		t.Errorf("Send Response is empty; want the server's reply")
	}
	mails := ms.mails()
	if len(mails) != 1 {
		t.Fatalf("server received %d messages; want 1", len(mails))
	}
	got := mails[0]
	if got.From != "alerts@eventsync.test" || !cmp.Equal(got.To, []string{"ops@example.com"}) {
		t.Errorf("envelope = from %q to %q; want from alerts@eventsync.test to [ops@example.com]", got.From, got.To)
	}
	pm := parseMail(t, got.Data)
	wantHeaders := map[string]string{
		"From":                      `"EventSync" <alerts@eventsync.test>`,
		"To":                        "<ops@example.com>",
		"Subject":                   "[EventSync] DATABASE.CONNECTION_LOST: lost connection to primary",
		"Date":                      "Fri, 02 Jan 2026 15:04:05 +0000",
		"Message-Id":                "<msg_1@eventsync.test>",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
	}
	gotHeaders := make(map[string]string)
	for k := range pm.Header {
		gotHeaders[k] = pm.Header.Get(k)
	}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	for _, want := range []string{
		"DATABASE.CONNECTION_LOST [error]",
		"time:     2026-01-02T15:04:05Z",
		"session:  sess-7",
		"source:   db-1",
		"message:  lost connection to primary",
		"id:       0194a3b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b",
		"seq:      42",
		`"id": "0194a3b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b"`,
		`"session_id": "sess-7"`,
	} {
		if !strings.Contains(pm.Body, want) {
			t.Errorf("body does not contain %q:\n%s", want, pm.Body)
		}
	}
}

func TestEmailSendBatch(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	e := newTestEmail(t, EmailConfig{Addr: ms.addr})
	events := make([]event.Event, 3)
	for i := range events {
		events[i] = testEvent
		events[i].Seq = uint64(100 + i)
		events[i].Message = fmt.Sprintf("failure %d", i)
	}
	events[2].Tag = "AUTH.LOGIN_FAILED"

	tests := []struct {
		target      string
		wantTo      []string
		wantSubject string
	}{
		{"mailto:ops@example.com", []string{"ops@example.com"}, "[EventSync] 3 events"},
		{"mailto:ops@example.com,dev@example.com?subject=Nightly%20alerts", []string{"ops@example.com", "dev@example.com"}, "Nightly alerts"},
	}
	for i, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := e.Send(t.Context(), testMessage(t, fmt.Sprintf("batch_%d", i), tt.target, events...))
			if res.Verdict != Delivered {
				t.Fatalf("Send(%q) = %+v; want delivered", tt.target, res)
			}
			mails := ms.mails()
			got := mails[len(mails)-1]
			if !cmp.Equal(got.To, tt.wantTo) {
				t.Errorf("envelope recipients = %q; want %q", got.To, tt.wantTo)
			}
			pm := parseMail(t, got.Data)
			if s := decodedSubject(t, pm.Header); s != tt.wantSubject {
				t.Errorf("Subject = %q; want %q", s, tt.wantSubject)
			}
			addrs, err := pm.Header.AddressList("To")
			if err != nil || len(addrs) != len(tt.wantTo) {
				t.Errorf("To header = %v, %v; want %d addresses", addrs, err, len(tt.wantTo))
			}
			for _, want := range []string{"EventSync delivered 3 events", "failure 0", "failure 1", "AUTH.LOGIN_FAILED [error]", "seq:      102", `"seq": 101`} {
				if !strings.Contains(pm.Body, want) {
					t.Errorf("body does not contain %q:\n%s", want, pm.Body)
				}
			}
		})
	}
}

func TestEmailClassification(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		script     func(*mailServer)
		want       Verdict
		wantStatus int
		wantResp   string
	}{
		{
			name:   "greylisted 451",
			target: "mailto:ops@example.com",
			script: func(ms *mailServer) {
				ms.failRcpt("ops@example.com", 451, smtp.EnhancedCode{4, 7, 1}, "greylisted, try again later")
			},
			want: Retry, wantStatus: 451, wantResp: "4.7.1 greylisted, try again later",
		},
		{
			name:   "mailbox full 452",
			target: "mailto:ops@example.com",
			script: func(ms *mailServer) {
				ms.failRcpt("ops@example.com", 452, smtp.EnhancedCode{4, 2, 2}, "mailbox full")
			},
			want: Retry, wantStatus: 452, wantResp: "4.2.2 mailbox full",
		},
		{
			name:   "unknown user 550",
			target: "mailto:ops@example.com",
			script: func(ms *mailServer) {
				ms.failRcpt("ops@example.com", 550, smtp.EnhancedCode{5, 1, 1}, "no such user")
			},
			want: Reject, wantStatus: 550, wantResp: "5.1.1 no such user",
		},
		{
			name:   "one of two recipients refused",
			target: "mailto:ops@example.com,gone@example.com",
			script: func(ms *mailServer) {
				ms.failRcpt("gone@example.com", 553, smtp.EnhancedCode{5, 1, 3}, "bad mailbox")
			},
			want: Reject, wantStatus: 553, wantResp: "5.1.3 bad mailbox",
		},
		{
			name:   "content refused 554",
			target: "mailto:ops@example.com",
			script: func(ms *mailServer) {
				ms.dataErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
			},
			want: Reject, wantStatus: 554, wantResp: "5.7.1 spam",
		},
		{
			name:   "data deferred 451",
			target: "mailto:ops@example.com",
			script: func(ms *mailServer) {
				ms.dataErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "local error"}
			},
			want: Retry, wantStatus: 451, wantResp: "4.3.0 local error",
		},
		{
			name:   "invalid target",
			target: "mailto:not-an-address",
			want:   Reject,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := startMailServer(t, mailServerOptions{})
			if tt.script != nil {
				tt.script(ms)
			}
			e := newTestEmail(t, EmailConfig{Addr: ms.addr})
			res := e.Send(t.Context(), testMessage(t, "msg_c", tt.target, testEvent))
			if res.Verdict != tt.want || res.Status != tt.wantStatus || res.Response != tt.wantResp || res.Err == nil {
				t.Errorf("Send(%q) = %+v; want %v, status %d, response %q and an error", tt.target, res, tt.want, tt.wantStatus, tt.wantResp)
			}
			if n := len(ms.mails()); n != 0 {
				t.Errorf("server accepted %d messages; want none", n)
			}
		})
	}
}

func TestEmailConnectionFailures(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		e := newTestEmail(t, EmailConfig{Addr: addr})
		res := e.Send(t.Context(), testMessage(t, "msg_x", "mailto:ops@example.com", testEvent))
		if res.Verdict != Retry || res.Status != 0 || res.Err == nil {
			t.Errorf("Send to a closed port = %+v; want retry, status 0 and an error", res)
		}
	})

	t.Run("context ends while the server is silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			cancel() // connected, never greeted: the attempt must end now
			io.Copy(io.Discard, c)
		}()
		e := newTestEmail(t, EmailConfig{Addr: ln.Addr().String()})
		res := e.Send(ctx, testMessage(t, "msg_x", "mailto:ops@example.com", testEvent))
		if res.Verdict != Retry || res.Status != 0 || !errors.Is(res.Err, context.Canceled) {
			t.Errorf("Send with a cancelled context = %+v; want retry, status 0, context.Canceled", res)
		}
	})
}

func TestEmailAuth(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{user: "notifier", pass: "s3cret"})

	t.Run("plain on loopback", func(t *testing.T) {
		e := newTestEmail(t, EmailConfig{Addr: ms.addr, Username: "notifier", Password: "s3cret"})
		res := e.Send(t.Context(), testMessage(t, "msg_a", "mailto:ops@example.com", testEvent))
		if res.Verdict != Delivered {
			t.Fatalf("Send with credentials = %+v; want delivered", res)
		}
		if got := ms.mails(); len(got) != 1 || got[0].User != "notifier" {
			t.Errorf("received %+v; want one message authenticated as notifier", got)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		e := newTestEmail(t, EmailConfig{Addr: ms.addr, Username: "notifier", Password: "wrong"})
		res := e.Send(t.Context(), testMessage(t, "msg_b", "mailto:ops@example.com", testEvent))
		// A bad password is the sender's configuration, not the message's fault.
		if res.Verdict != Retry || res.Status != 535 {
			t.Errorf("Send with a wrong password = %+v; want retry with 535", res)
		}
	})

	t.Run("no credentials", func(t *testing.T) {
		e := newTestEmail(t, EmailConfig{Addr: ms.addr})
		res := e.Send(t.Context(), testMessage(t, "msg_c", "mailto:ops@example.com", testEvent))
		if res.Verdict != Reject || res.Status != 502 {
			t.Errorf("Send without credentials = %+v; want reject with 502", res)
		}
	})
}

func TestEmailTLS(t *testing.T) {
	cert, pool := testCert(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	clientTLS := &tls.Config{RootCAs: pool}

	t.Run("starttls with auth", func(t *testing.T) {
		ms := startMailServer(t, mailServerOptions{startTLS: serverTLS, user: "notifier", pass: "s3cret"})
		e := newTestEmail(t, EmailConfig{Addr: ms.addr, TLS: "starttls", TLSConfig: clientTLS, Username: "notifier", Password: "s3cret"})
		res := e.Send(t.Context(), testMessage(t, "msg_t", "mailto:ops@example.com", testEvent))
		if res.Verdict != Delivered {
			t.Fatalf("Send over STARTTLS = %+v; want delivered", res)
		}
		if got := ms.mails(); len(got) != 1 || !got[0].TLS || got[0].User != "notifier" {
			t.Errorf("received %+v; want one message over TLS, authenticated", got)
		}
	})

	t.Run("implicit tls", func(t *testing.T) {
		ms := startMailServer(t, mailServerOptions{implicit: serverTLS})
		e := newTestEmail(t, EmailConfig{Addr: ms.addr, TLS: "tls", TLSConfig: clientTLS})
		res := e.Send(t.Context(), testMessage(t, "msg_t", "mailto:ops@example.com", testEvent))
		if res.Verdict != Delivered {
			t.Fatalf("Send over implicit TLS = %+v; want delivered", res)
		}
		if got := ms.mails(); len(got) != 1 || !got[0].TLS {
			t.Errorf("received %+v; want one message over TLS", got)
		}
	})

	t.Run("starttls required but not offered", func(t *testing.T) {
		ms := startMailServer(t, mailServerOptions{})
		e := newTestEmail(t, EmailConfig{Addr: ms.addr, TLS: "starttls", TLSConfig: clientTLS})
		res := e.Send(t.Context(), testMessage(t, "msg_t", "mailto:ops@example.com", testEvent))
		if res.Verdict != Retry || res.Err == nil {
			t.Errorf("Send to a server without STARTTLS = %+v; want retry with an error", res)
		}
		if n := len(ms.mails()); n != 0 {
			t.Errorf("server accepted %d messages in plain text; want none", n)
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		ms := startMailServer(t, mailServerOptions{startTLS: serverTLS})
		e := newTestEmail(t, EmailConfig{Addr: ms.addr, TLS: "starttls", TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}})
		res := e.Send(t.Context(), testMessage(t, "msg_t", "mailto:ops@example.com", testEvent))
		if res.Verdict != Retry || res.Err == nil {
			t.Errorf("Send to an untrusted server = %+v; want retry with an error", res)
		}
		if n := len(ms.mails()); n != 0 {
			t.Errorf("server accepted %d messages; want none", n)
		}
	})
}

func TestEmailHeaderInjection(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	e := newTestEmail(t, EmailConfig{Addr: ms.addr})
	ev := testEvent
	ev.Tag = "APP.EVIL\r\nX-Tag-Injected: 1"
	ev.Message = "boom\r\nBcc: victim@example.com\r\nX-Injected: yes\r\n\r\nforged body"
	ev.SessionID = "s\nX-Session-Injected: 1"

	res := e.Send(t.Context(), testMessage(t, "msg_i\r\nX-Id-Injected: 1", "mailto:ops@example.com", ev))
	if res.Verdict != Delivered {
		t.Fatalf("Send = %+v; want delivered", res)
	}
	got := ms.mails()[0]
	if !cmp.Equal(got.To, []string{"ops@example.com"}) {
		t.Errorf("envelope recipients = %q; want only ops@example.com", got.To)
	}
	pm := parseMail(t, got.Data)
	for k := range pm.Header {
		switch k {
		case "From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted":
		default:
			t.Errorf("message has header %q: %q", k, pm.Header.Get(k))
		}
	}
	wantSubject := "[EventSync] APP.EVIL X-Tag-Injected: 1: boom Bcc: victim@example.com X-Injected: yes forged body"
	if s := decodedSubject(t, pm.Header); s != wantSubject {
		t.Errorf("Subject = %q; want %q", s, wantSubject)
	}
	if id := pm.Header.Get("Message-Id"); strings.ContainsAny(id, "\r\n ") || !strings.HasPrefix(id, "<eventsync.") {
		t.Errorf("Message-ID = %q; want a hashed id", id)
	}
}

func TestEmailNonASCIISubject(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	e := newTestEmail(t, EmailConfig{Addr: ms.addr})
	ev := testEvent
	ev.Message = "Verbindung zur Primärdatenbank verloren — 数据库"
	if res := e.Send(t.Context(), testMessage(t, "msg_u", "mailto:ops@example.com", ev)); res.Verdict != Delivered {
		t.Fatalf("Send = %+v; want delivered", res)
	}
	data := ms.mails()[0].Data
	for i, c := range data {
		if c >= 0x80 {
			t.Fatalf("message byte %d is %#x; want 7-bit text", i, c)
		}
	}
	pm := parseMail(t, data)
	if raw := pm.Header.Get("Subject"); !strings.HasPrefix(raw, "=?utf-8?q?") {
		t.Errorf("raw Subject = %q; want RFC 2047 encoded words", raw)
	}
	want := "[EventSync] DATABASE.CONNECTION_LOST: " + ev.Message
	if s := decodedSubject(t, pm.Header); s != want {
		t.Errorf("Subject = %q; want %q", s, want)
	}
	if !strings.Contains(pm.Body, ev.Message) {
		t.Errorf("body does not contain %q:\n%s", ev.Message, pm.Body)
	}
}

func TestEmailMessageIDStable(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	e := newTestEmail(t, EmailConfig{Addr: ms.addr})
	send := func(id string, at time.Time) string {
		t.Helper()
		m := testMessage(t, id, "mailto:ops@example.com", testEvent)
		m.Time = at
		if res := e.Send(t.Context(), m); res.Verdict != Delivered {
			t.Fatalf("Send(%q) = %+v; want delivered", id, res)
		}
		mails := ms.mails()
		return parseMail(t, mails[len(mails)-1].Data).Header.Get("Message-Id")
	}
	first := send("msg_2Rx", testTime)
	retry := send("msg_2Rx", testTime.Add(time.Minute))
	other := send("msg_9Zq", testTime)
	hashed := send("id with spaces", testTime)
	hashedAgain := send("id with spaces", testTime.Add(time.Hour))
	if first != retry || first != "<msg_2Rx@eventsync.test>" {
		t.Errorf("Message-IDs of two attempts = %q, %q; want both <msg_2Rx@eventsync.test>", first, retry)
	}
	if other == first {
		t.Errorf("Message-ID of another delivery = %q; want it to differ from %q", other, first)
	}
	if hashed != hashedAgain || strings.Contains(hashed, " ") {
		t.Errorf("Message-IDs of an unsafe id = %q, %q; want the same, without spaces", hashed, hashedAgain)
	}
}

func TestParseMailto(t *testing.T) {
	tests := []struct {
		target      string
		wantTo      []string
		wantSubject string
		wantErr     bool
	}{
		{target: "mailto:ops@example.com", wantTo: []string{"ops@example.com"}},
		{target: "mailto:" + manyRecipients(20), wantTo: strings.Split(manyRecipients(20), ",")},
		{target: "MAILTO:ops@example.com", wantTo: []string{"ops@example.com"}},
		{target: "mailto:ops@example.com,dev@example.org", wantTo: []string{"ops@example.com", "dev@example.org"}},
		{target: "mailto:ops@example.com, dev@example.org", wantTo: []string{"ops@example.com", "dev@example.org"}},
		{target: "mailto:ops@example.com,OPS@example.com", wantTo: []string{"ops@example.com"}},
		{target: "mailto:ops@example.com?subject=Disk%20full", wantTo: []string{"ops@example.com"}, wantSubject: "Disk full"},
		{target: "mailto:ops@example.com?subject=a+b", wantTo: []string{"ops@example.com"}, wantSubject: "a+b"},
		{target: "mailto:ops@example.com?Subject=%C3%BCber", wantTo: []string{"ops@example.com"}, wantSubject: "über"},
		{target: "mailto:?to=ops@example.com&subject=x", wantTo: []string{"ops@example.com"}, wantSubject: "x"},
		{target: "mailto:ops@example.com?to=dev@example.org", wantTo: []string{"ops@example.com", "dev@example.org"}},
		{target: "mailto:ops%2Boncall@example.com", wantTo: []string{"ops+oncall@example.com"}},
		{target: "mailto:ops+oncall@example.com", wantTo: []string{"ops+oncall@example.com"}},

		{target: "", wantErr: true},
		{target: "https://example.com", wantErr: true},
		{target: "mailto:", wantErr: true},
		{target: "mailto:not-an-address", wantErr: true},
		{target: "mailto:ops@example.com,", wantErr: true},
		{target: "mailto://ops@example.com", wantErr: true},
		{target: "mailto:Ops%20Team%20%3Cops@example.com%3E", wantErr: true},
		{target: "mailto:ops@example.com?cc=dev@example.org", wantErr: true},
		{target: "mailto:ops@example.com?bcc=dev@example.org", wantErr: true},
		{target: "mailto:ops@example.com?body=hello", wantErr: true},
		{target: "mailto:ops@example.com?subject=a%0D%0ABcc:%20x@example.org", wantErr: true},
		{target: "mailto:ops@example.com?subject=a&subject=b", wantErr: true},
		{target: "mailto:ops@example.com?subject=%ZZ", wantErr: true},
		{target: "mailto:ops@example.com#frag", wantErr: true},
		{target: "mailto:ops@example.com%0D%0ARCPT%20TO:x@example.org", wantErr: true},
		{target: "mailto:" + manyRecipients(21), wantErr: true},
		{target: "mailto:ops@example.com?subject=" + strings.Repeat("x", 201), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			to, subject, err := ParseMailto(tt.target)
			if tt.wantErr {
				if err == nil {
					t.Errorf("ParseMailto(%q) = %q, %q, nil; want an error", tt.target, to, subject)
				}
				return
			}
			if err != nil || !cmp.Equal(to, tt.wantTo) || subject != tt.wantSubject {
				t.Errorf("ParseMailto(%q) = %q, %q, %v; want %q, %q, nil", tt.target, to, subject, err, tt.wantTo, tt.wantSubject)
			}
		})
	}
}

// manyRecipients is n distinct addresses, comma-separated.
func manyRecipients(n int) string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("user%d@example.com", i)
	}
	return strings.Join(addrs, ",")
}

func TestNewEmailValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     EmailConfig
		wantErr bool
	}{
		{"minimal", EmailConfig{Addr: "smtp.example.com:587", From: "alerts@example.com"}, false},
		{"named sender", EmailConfig{Addr: "smtp.example.com:465", From: "EventSync <alerts@example.com>", TLS: "tls"}, false},
		{"auth over starttls", EmailConfig{Addr: "smtp.example.com:587", From: "alerts@example.com", Username: "u", Password: "p"}, false},
		{"auth in plain text on loopback", EmailConfig{Addr: "127.0.0.1:25", From: "alerts@example.com", TLS: "none", Username: "u", Password: "p"}, false},
		{"no port", EmailConfig{Addr: "smtp.example.com", From: "alerts@example.com"}, true},
		{"no addr", EmailConfig{From: "alerts@example.com"}, true},
		{"bad from", EmailConfig{Addr: "smtp.example.com:587", From: "alerts"}, true},
		{"bad tls", EmailConfig{Addr: "smtp.example.com:587", From: "alerts@example.com", TLS: "ssl"}, true},
		{"username without password", EmailConfig{Addr: "smtp.example.com:587", From: "alerts@example.com", Username: "u"}, true},
		{"auth in plain text", EmailConfig{Addr: "smtp.example.com:25", From: "alerts@example.com", TLS: "none", Username: "u", Password: "p"}, true},
		{"negative timeout", EmailConfig{Addr: "smtp.example.com:587", From: "alerts@example.com", Timeout: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEmail(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewEmail(%v) = %v; want error %t", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestEmailPasswordNeverPrints(t *testing.T) {
	const secret = "hunter2-very-secret"
	cfg := EmailConfig{Addr: "smtp.example.com:587", From: "alerts@example.com", Username: "u", Password: secret}
	e, err := NewEmail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "smtp", cfg, "sender", e, "password", cfg.Password)
	outputs := []string{
		logged.String(),
		fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%+v", &cfg),
		fmt.Sprint(e), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e), fmt.Sprintf("%s", e),
		fmt.Sprint(cfg.Password), fmt.Sprintf("%#v", cfg.Password),
	}
	for _, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("printed config contains the password: %s", out)
		}
	}
}
