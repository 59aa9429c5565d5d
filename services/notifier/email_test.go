package notifier

import (
	"bytes"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailbox is a real SMTP server on loopback that hands every message it
// accepts to a channel.
type mailbox struct {
	addr string
	got  chan []byte
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{got: make(chan []byte, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailboxSession{mb}, nil }))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().String()
	go srv.Serve(ln) //nolint:errcheck // ends when the listener closes
	t.Cleanup(func() { srv.Close(); ln.Close() })
	return mb
}

type mailboxSession struct{ mb *mailbox }

func (s *mailboxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailboxSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailboxSession) Reset()                               {}
func (s *mailboxSession) Logout() error                        { return nil }
func (s *mailboxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.got <- b
	return nil
}

// TestEmailSubscription: a mailto: subscription is an email subscription,
// and a matching event arrives at the SMTP server through the same
// consumer, retry and audit path as webhooks.
func TestEmailSubscription(t *testing.T) {
	mb := startMailbox(t)
	cfg := testConfig()
	cfg.SMTP.Addr, cfg.SMTP.From, cfg.SMTP.TLS = mb.addr, "eventsync@example.com", "none"
	e := newEnv(t, cfg)
	s := e.subscribe(map[string]any{"url": "mailto:ops@example.com", "tags": []string{"DATABASE.*"}})
	if s.Type != Email {
		t.Fatalf("type = %q; want email inferred from mailto:", s.Type)
	}
	ev := e.publish("DATABASE.CONNECTION_LOST")
	select {
	case msg := <-mb.got:
		for _, want := range []string{"To: <ops@example.com>", "Subject: [EventSync] DATABASE.CONNECTION_LOST", ev.ID} {
			if !bytes.Contains(msg, []byte(want)) {
				t.Errorf("mail does not contain %q:\n%s", want, msg)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no mail within 10s")
	}
	eventually(t, 5*time.Second, "attempt audited", func() bool {
		as := e.attempts(s.ID)
		return len(as) == 1 && as[0].Outcome == "delivered" && strings.HasPrefix(as[0].URL, "mailto:")
	})
}
