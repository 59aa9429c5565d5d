package sink

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/eventsync/eventsync/pkg/delivery"
	"github.com/eventsync/eventsync/pkg/event"
)

// Transport security modes of EmailConfig.TLS.
const (
	smtpTLSNone     = "none"     // plain SMTP; credentials only to a loopback server
	smtpTLSStartTLS = "starttls" // STARTTLS required (the default)
	smtpTLSImplicit = "tls"      // TLS from the first byte (port 465)
)

const (
	defaultSMTPTimeout = 30 * time.Second
	maxMailRecipients  = 20  // addresses in one mailto: target
	maxMailSubject     = 200 // runes of a subject, given or generated
	maxSubjectMessage  = 120 // runes of an event message quoted in a subject
)

// Password is a secret that prints and logs redacted.
type Password string

// String returns a redaction marker, never the password.
func (p Password) String() string {
	if p == "" {
		return ""
	}
	return "[redacted]"
}

// GoString returns a redaction marker, never the password.
func (p Password) GoString() string { return strconv.Quote(p.String()) }

// LogValue implements slog.LogValuer.
func (p Password) LogValue() slog.Value { return slog.StringValue(p.String()) }

// EmailConfig configures delivery by email over SMTP.
type EmailConfig struct {
	// Addr is the host:port of the SMTP server (a relay or submission
	// server, not the recipients' MX).
	Addr string
	// From is the sender, e.g. "EventSync <alerts@example.com>": the
	// envelope sender and the From header.
	From string
	// Username and Password authenticate with AUTH PLAIN (or LOGIN when the
	// server offers only that). Both or neither.
	Username string
	Password Password
	// TLS is the transport security: "starttls" (the default: the server
	// must offer STARTTLS, the session upgrades before anything else is
	// sent), "tls" (implicit TLS, usually port 465) or "none" (plain text,
	// for a local relay; credentials are then refused unless the server is
	// on a loopback address).
	TLS string
	// Timeout bounds one delivery attempt, connection to QUIT; default 30 s.
	// The caller's context may end it sooner.
	Timeout time.Duration
	// TLSConfig is the client TLS configuration, e.g. with a private CA;
	// nil uses the system roots. ServerName defaults to the host of Addr.
	TLSConfig *tls.Config
}

// LogValue implements slog.LogValuer, leaving the password out.
func (c EmailConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("from", c.From),
		slog.String("username", c.Username),
		slog.String("password", c.Password.String()),
		slog.String("tls", c.TLS),
		slog.Duration("timeout", c.Timeout),
	)
}

// Email delivers messages to mailto: targets through one SMTP server.
type Email struct {
	addr      string
	from      *mail.Address
	domain    string // for Message-IDs
	username  string
	password  Password
	mode      string
	timeout   time.Duration
	tlsConfig *tls.Config
}

// NewEmail validates cfg and returns an email sender. It does not connect.
func NewEmail(cfg EmailConfig) (*Email, error) {
	var errs []error
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		errs = append(errs, fmt.Errorf("smtp addr %q: want host:port", cfg.Addr))
	}
	from, err := parseBareAddress(cfg.From, true)
	if err != nil {
		errs = append(errs, fmt.Errorf("smtp from %q: %w", cfg.From, err))
	}
	mode := strings.ToLower(strings.TrimSpace(cfg.TLS))
	if mode == "" {
		mode = smtpTLSStartTLS
	}
	switch mode {
	case smtpTLSNone, smtpTLSStartTLS, smtpTLSImplicit:
	default:
		errs = append(errs, fmt.Errorf("smtp tls %q: want starttls, tls or none", cfg.TLS))
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		errs = append(errs, errors.New("smtp auth: set both username and password, or neither"))
	}
	if cfg.Username != "" && mode == smtpTLSNone && host != "" && !loopbackHost(host) {
		errs = append(errs, fmt.Errorf("smtp auth: refusing to send a password in plain text to %s; use tls or starttls", host))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("smtp timeout %v: must not be negative", cfg.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("email config: %w", err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultSMTPTimeout
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return &Email{
		addr:      cfg.Addr,
		from:      from,
		domain:    messageIDDomain(from.Address),
		username:  cfg.Username,
		password:  cfg.Password,
		mode:      mode,
		timeout:   timeout,
		tlsConfig: tc,
	}, nil
}

// LogValue implements slog.LogValuer, leaving the password out.
func (e *Email) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", e.addr),
		slog.String("from", e.from.Address),
		slog.String("tls", e.mode),
		slog.Bool("auth", e.username != ""),
	)
}

// Format prints the sender without its password, whatever the verb.
func (e *Email) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "sink.Email{addr: %q, from: %q, tls: %q, auth: %t}", e.addr, e.from.Address, e.mode, e.username != "")
}

// Send mails m to the addresses of its mailto: target.
//
// Replies of the mail transaction (MAIL, RCPT, DATA) are classified by
// their code: 2xx Delivered, 4xx Retry, 5xx Reject. Everything before the
// transaction (connection, greeting, STARTTLS, AUTH) concerns the server and
// this sender's configuration rather than the message, so it is Retry
// whatever the code. A recipient refused with any code aborts the whole
// message before DATA: a retry never mails the same recipient twice.
func (e *Email) Send(ctx context.Context, m *Message) Result {
	to, subject, err := ParseMailto(m.Target)
	if err != nil {
		return Result{Verdict: Reject, Err: fmt.Errorf("email target: %w", err)}
	}
	msg := e.compose(m, to, subject)
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	return e.deliver(ctx, to, msg)
}

// smtpPhase names the step of an SMTP session, for errors and
// classification.
type smtpPhase string

const (
	phaseConnect  smtpPhase = "connect"
	phaseStartTLS smtpPhase = "starttls"
	phaseHello    smtpPhase = "hello"
	phaseAuth     smtpPhase = "auth"
	phaseMail     smtpPhase = "mail from"
	phaseRcpt     smtpPhase = "rcpt to"
	phaseData     smtpPhase = "data"
)

// inTransaction tells whether replies in phase concern this message.
func (p smtpPhase) inTransaction() bool {
	return p == phaseMail || p == phaseRcpt || p == phaseData
}

func (e *Email) deliver(ctx context.Context, to []string, msg []byte) Result {
	conn, raw, err := e.dial(ctx)
	if err != nil {
		return e.failure(ctx, phaseConnect, err)
	}
	// The SMTP client sets its own per-command deadlines, so the context
	// bounds the attempt by closing the connection instead.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	defer raw.Close()

	var c *smtp.Client
	if e.mode == smtpTLSStartTLS {
		c, err = smtp.NewClientStartTLS(conn, e.tlsConfig)
		if err != nil {
			return e.failure(ctx, phaseStartTLS, err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = e.timeout
	c.SubmissionTimeout = e.timeout

	res, replied := e.transact(ctx, c, to, msg)
	if replied {
		// The session is in a known state: end it politely.
		_ = c.Quit()
	}
	return res
}

// transact runs one session on c. replied reports whether the outcome is a
// reply of the server, after which the session can still be quit.
func (e *Email) transact(ctx context.Context, c *smtp.Client, to []string, msg []byte) (res Result, replied bool) {
	fail := func(p smtpPhase, err error) (Result, bool) {
		var se *smtp.SMTPError
		return e.failure(ctx, p, err), errors.As(err, &se)
	}
	if err := c.Hello("localhost"); err != nil {
		return fail(phaseHello, err)
	}
	if e.username != "" {
		if err := e.auth(c); err != nil {
			return fail(phaseAuth, err)
		}
	}
	opts := &smtp.MailOptions{Size: int64(len(msg))}
	if !asciiOnly(e.from.Address) || !allASCII(to) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return Result{Verdict: Reject, Err: errors.New("smtp: a non-ASCII address needs SMTPUTF8, which the server does not offer")}, true
		}
		opts.UTF8 = true
	}
	if err := c.Mail(e.from.Address, opts); err != nil {
		return fail(phaseMail, err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return fail(phaseRcpt, fmt.Errorf("<%s>: %w", rcpt, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return fail(phaseData, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail(phaseData, err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return fail(phaseData, err)
	}
	return Result{Verdict: Delivered, Status: 250, Response: clipUTF8(resp.StatusText, delivery.MaxResponse)}, true
}

// dial connects to the server, with the TLS handshake done for implicit
// TLS. raw is the TCP connection under conn, to close when ctx ends.
func (e *Email) dial(ctx context.Context) (conn, raw net.Conn, err error) {
	var d net.Dialer
	raw, err = d.DialContext(ctx, "tcp", e.addr)
	if err != nil || e.mode != smtpTLSImplicit {
		return raw, raw, err
	}
	tc := tls.Client(raw, e.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, raw, nil
}

// auth authenticates with PLAIN, or LOGIN when that is all the server
// offers.
func (e *Email) auth(c *smtp.Client) error {
	switch {
	case c.SupportsAuth(sasl.Plain):
		return c.Auth(sasl.NewPlainClient("", e.username, string(e.password)))
	case c.SupportsAuth(sasl.Login):
		return c.Auth(sasl.NewLoginClient(e.username, string(e.password)))
	}
	return errors.New("smtp: the server offers neither AUTH PLAIN nor AUTH LOGIN")
}

// failure classifies err from phase of a session.
func (e *Email) failure(ctx context.Context, p smtpPhase, err error) Result {
	res := Result{Verdict: Retry, Err: fmt.Errorf("smtp %s %s: %w", p, e.addr, err)}
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		if ctx.Err() != nil {
			// Closing the connection on ctx surfaces as a network error.
			res.Err = fmt.Errorf("smtp %s %s: %w", p, e.addr, context.Cause(ctx))
		}
		return res
	}
	res.Status = se.Code
	res.Response = clipUTF8(smtpReplyText(se), delivery.MaxResponse)
	if se.Code >= 500 && se.Code < 600 && p.inTransaction() {
		res.Verdict = Reject
	}
	return res
}

// smtpReplyText is the server's reply as it was sent, without the code.
func smtpReplyText(se *smtp.SMTPError) string {
	ec := se.EnhancedCode
	if ec == (smtp.EnhancedCode{}) || ec == smtp.NoEnhancedCode {
		return se.Message
	}
	return fmt.Sprintf("%d.%d.%d %s", ec[0], ec[1], ec[2], se.Message)
}

// ParseMailto parses an RFC 6068 mailto: URL into its recipients and
// optional subject. It accepts comma-separated bare addresses, further
// recipients in "to" fields and a "subject" field; it refuses display
// names, other header fields (cc, bcc, body …), more than 20 recipients
// and subjects with control characters.
func ParseMailto(target string) (to []string, subject string, err error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("is not a URL: %w", err)
	}
	if !strings.EqualFold(u.Scheme, "mailto") {
		return nil, "", errors.New("must be a mailto: URL for email")
	}
	if u.Host != "" || u.User != nil || u.Path != "" || u.Fragment != "" {
		return nil, "", errors.New("must have the form mailto:addr[,addr…][?subject=…]")
	}
	var raw []string
	if u.Opaque != "" {
		s, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return nil, "", fmt.Errorf("has a bad escape in its recipients: %w", err)
		}
		raw = append(raw, strings.Split(s, ",")...)
	}
	haveSubject := false
	if u.RawQuery != "" {
		for field := range strings.SplitSeq(u.RawQuery, "&") {
			name, value, _ := strings.Cut(field, "=")
			value, err := url.PathUnescape(value)
			if err != nil {
				return nil, "", fmt.Errorf("has a bad escape in its %s field: %w", name, err)
			}
			switch strings.ToLower(name) {
			case "to":
				raw = append(raw, strings.Split(value, ",")...)
			case "subject":
				if haveSubject {
					return nil, "", errors.New("may have one subject, not several")
				}
				haveSubject = true
				subject = value
			default:
				return nil, "", fmt.Errorf("may have the fields to and subject only, not %q", name)
			}
		}
	}
	seen := make(map[string]bool)
	for _, r := range raw {
		a, err := parseBareAddress(strings.TrimSpace(r), false)
		if err != nil {
			return nil, "", err
		}
		if key := strings.ToLower(a.Address); !seen[key] {
			seen[key] = true
			to = append(to, a.Address)
		}
	}
	if len(to) == 0 {
		return nil, "", errors.New("must name a recipient")
	}
	if len(to) > maxMailRecipients {
		return nil, "", fmt.Errorf("may name at most %d recipients, not %d", maxMailRecipients, len(to))
	}
	if !utf8.ValidString(subject) || strings.ContainsFunc(subject, unicode.IsControl) {
		return nil, "", errors.New("must have a subject of text on one line")
	}
	if n := utf8.RuneCountInString(subject); n > maxMailSubject {
		return nil, "", fmt.Errorf("must have a subject of at most %d characters, not %d", maxMailSubject, n)
	}
	return to, strings.TrimSpace(subject), nil
}

// parseBareAddress parses one address; a display name is allowed only when
// named is set ("EventSync <alerts@example.com>").
func parseBareAddress(s string, named bool) (*mail.Address, error) {
	if s == "" {
		return nil, errors.New("empty address")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", s, err)
	}
	if !named && (a.Name != "" || strings.ContainsAny(s, "<>")) {
		return nil, fmt.Errorf("address %q: want a bare address, without a name", s)
	}
	if !strings.Contains(a.Address, "@") {
		return nil, fmt.Errorf("address %q: no domain", s)
	}
	return a, nil
}

// compose renders m as an RFC 5322 message in CRLF lines.
func (e *Email) compose(m *Message, to []string, subject string) []byte {
	if subject == "" {
		subject = defaultSubject(m.Events)
	}
	date := m.Time
	if date.IsZero() {
		date = time.Now()
	}
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = (&mail.Address{Address: a}).String()
	}

	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("From", e.from.String())
	header("To", strings.Join(rcpts, ",\r\n "))
	header("Subject", encodeHeaderText(subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+messageIDLocal(m.ID)+"@"+e.domain+">")
	header("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	writeMailBody(qp, m)
	qp.Close() // writes to a buffer: cannot fail
	return b.Bytes()
}

// defaultSubject is "[EventSync] TAG: message" for one event and
// "[EventSync] N events" for a batch.
func defaultSubject(events []event.Event) string {
	switch len(events) {
	case 0:
		return "[EventSync] notification"
	case 1:
		ev := &events[0]
		s := "[EventSync] " + eventTag(ev)
		if msg := singleLine(ev.Message); msg != "" {
			s += ": " + clipRunes(msg, maxSubjectMessage)
		}
		return s
	}
	return fmt.Sprintf("[EventSync] %d events", len(events))
}

// encodeHeaderText makes s safe for an unstructured header: one line, no
// control characters, RFC 2047 encoded words when not ASCII, folded
// between encoded words.
func encodeHeaderText(s string) string {
	s = clipRunes(singleLine(s), maxMailSubject)
	enc := mime.QEncoding.Encode("utf-8", s)
	if enc == s {
		return s
	}
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

func writeMailBody(w io.Writer, m *Message) {
	switch n := len(m.Events); n {
	case 0:
		fmt.Fprint(w, "EventSync delivery.\n")
	case 1:
		fmt.Fprint(w, "EventSync event:\n")
	default:
		fmt.Fprintf(w, "EventSync delivered %d events:\n", n)
	}
	for i := range m.Events {
		ev := &m.Events[i]
		fmt.Fprintf(w, "\n%s", singleLine(eventTag(ev)))
		if ev.Severity != 0 {
			fmt.Fprintf(w, " [%s]", ev.Severity)
		}
		fmt.Fprint(w, "\n")
		field := func(name, value string) {
			if value != "" {
				fmt.Fprintf(w, "  %-9s %s\n", name+":", value)
			}
		}
		if !ev.Timestamp.IsZero() {
			field("time", ev.Timestamp.UTC().Format(time.RFC3339Nano))
		}
		field("session", singleLine(ev.SessionID))
		field("source", singleLine(ev.Source))
		field("message", indentLines(ev.Message, strings.Repeat(" ", 12)))
		field("id", singleLine(ev.ID))
		if ev.Seq != 0 {
			field("seq", strconv.FormatUint(ev.Seq, 10))
		}
	}
	if len(m.Body) == 0 {
		return
	}
	fmt.Fprint(w, "\nEvent JSON:\n\n")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, m.Body, "", "  "); err == nil {
		pretty.WriteTo(w)
	} else {
		w.Write(bytes.ToValidUTF8(m.Body, []byte("\uFFFD")))
	}
	fmt.Fprint(w, "\n")
}

// eventTag is the event's tag, CATEGORY.CODE when it has none.
func eventTag(ev *event.Event) string {
	if ev.Tag != "" {
		return ev.Tag
	}
	if ev.Category != "" || ev.Code != "" {
		return ev.Category + "." + ev.Code
	}
	return "event"
}

// singleLine turns s into valid UTF-8 on one line: control characters and
// line separators become spaces, runs of spaces one.
func singleLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// indentLines keeps the line breaks of s, indenting every line after the
// first, and drops other control characters.
func indentLines(s, indent string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = singleLine(l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"+indent))
}

// clipRunes shortens s to at most n runes, ending with an ellipsis when
// cut.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// clipUTF8 shortens s to at most n bytes without splitting a character.
func clipUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// messageIDLocal is the left part of the Message-ID of delivery id: the
// id itself when it is a safe dot-atom, a hash of it otherwise, so that
// every attempt of a delivery carries the same Message-ID.
func messageIDLocal(id string) string {
	if id == "" {
		return "eventsync." + rand.Text()
	}
	if len(id) <= 128 && !strings.HasPrefix(id, ".") && !strings.HasSuffix(id, ".") &&
		!strings.Contains(id, "..") && !strings.ContainsFunc(id, func(r rune) bool {
		return !(r < utf8.RuneSelf && (r == '.' || r == '-' || r == '_' || r == '+' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'))
	}) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "eventsync." + hex.EncodeToString(sum[:16])
}

// messageIDDomain is the right part of Message-IDs: the sender's domain
// when it is a plain ASCII host name.
func messageIDDomain(addr string) string {
	_, domain, _ := strings.Cut(addr, "@")
	if domain == "" || strings.ContainsFunc(domain, func(r rune) bool {
		return !(r < utf8.RuneSelf && (r == '.' || r == '-' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'))
	}) {
		return "eventsync.invalid"
	}
	return domain
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func asciiOnly(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !asciiOnly(s) {
			return false
		}
	}
	return true
}

// CheckTLSMode checks an --smtp-tls value (starttls, tls or none; empty
// means starttls) also when email is off, so that a typo is reported at
// start-up rather than when email is turned on.
func CheckTLSMode(mode string) error {
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "", smtpTLSNone, smtpTLSStartTLS, smtpTLSImplicit:
		return nil
	}
	return fmt.Errorf("smtp tls %q: want starttls, tls or none", mode)
}
