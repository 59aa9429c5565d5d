package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventsync/eventsync/pkg/access"
	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/natsembed"
	"github.com/eventsync/eventsync/services/ingest"
)

// NATSUser is the user EventSync itself logs in as on the embedded NATS
// server when producer authentication is on. It may do anything; its
// password is made on first start and kept in NATSPasswordFile in the
// data directory.
const NATSUser = "eventsync"

// NATSPasswordFile is the file in the data directory that holds the
// password of NATSUser. It must be readable by its owner only (mode 0600):
// whoever reads it can read every bucket and write every stream.
const NATSPasswordFile = "nats-password"

// broker runs the embedded NATS server. With producer authentication on,
// nobody connects anonymously: EventSync logs in as NATSUser and each
// enabled producer with its id and Basic password (see userSync, which
// keeps those users in line with the registry while the server runs).
// With --auth=none the server is open, as it is on a laptop.
type broker struct {
	settings *settings
	auth     string // the auth mode, settled by the program's Validate
	log      *slog.Logger
	addr     string
	sync     string
	direct   bool

	cfg      natsembed.Config // as started, without users
	password string           // of NATSUser; empty while the server is open
	ns       *server.Server
}

func (b *broker) Flags(fs *conf.Set) {
	fs.String(&b.addr, "nats-addr", "NATS_ADDR", "127.0.0.1:4222", "listen address of the embedded NATS server, for NATS producers")
	fs.String(&b.sync, "nats-sync", "NATS_SYNC", "2m", "how often JetStream flushes to disk: a duration, or always (every write, before it is acknowledged); a host crash loses what was not flushed")
	fs.Bool(&b.direct, "nats-direct", "NATS_DIRECT", false, "with --auth=producers: producers may also publish straight to events.<their tag patterns> on the embedded NATS server, skipping schemas and rate limits")
}

// secured reports whether the server requires a user.
func (b *broker) secured() bool { return b.auth != access.AuthNone }

// Start starts the embedded server and returns how to connect to it in
// process.
func (b *broker) Start(context.Context) (string, []nats.Option, error) {
	sync, err := natsembed.ParseSync(b.sync)
	if err != nil {
		return "", nil, err
	}
	host, port, err := natsembed.SplitAddr(b.addr)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(b.settings.dataDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("data dir: %w", err)
	}
	b.cfg = natsembed.Config{Host: host, Port: port, StoreDir: filepath.Join(b.settings.dataDir, "nats"), Name: "eventsync", Sync: sync}
	c := b.cfg
	if b.secured() {
		if b.password, err = secretFile(filepath.Join(b.settings.dataDir, NATSPasswordFile), "nats password"); err != nil {
			return "", nil, err
		}
		c.Users = b.users(nil)
	}
	if b.ns, err = natsembed.Start(c); err != nil {
		return "", nil, err
	}
	opts := []nats.Option{nats.InProcessServer(b.ns)}
	if !b.secured() {
		b.log.Warn("embedded nats server accepts anonymous connections", "nats_addr", b.listenAddr(), "auth", b.auth,
			"detail", "anyone who reaches its port may read every bucket, producer secrets included, and publish to every stream; --auth=producers requires a user")
		return b.ns.ClientURL(), opts, nil
	}
	b.log.Info("embedded nats server requires a user", "nats_addr", b.listenAddr(), "nats_user", NATSUser, "password_file", filepath.Join(b.settings.dataDir, NATSPasswordFile), "direct", b.direct)
	return b.ns.ClientURL(), append(opts, nats.UserInfo(NATSUser, b.password)), nil
}

// Stop shuts the embedded server down.
func (b *broker) Stop() {
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
}

// users are the server's users: EventSync's own, which may do anything,
// and one per producer.
func (b *broker) users(producers []ingest.NATSUser) []*server.User {
	users := []*server.User{{Username: NATSUser, Password: b.password}}
	for _, p := range producers {
		pub := &server.SubjectPermission{Allow: p.PublishAllow, Deny: p.PublishDeny}
		users = append(users, &server.User{
			Username: p.User,
			Password: p.PasswordHash, // bcrypt: the server checks it as such
			Permissions: &server.Permissions{
				Publish:   pub,
				Subscribe: &server.SubjectPermission{Allow: p.SubscribeAllow},
			},
		})
	}
	return users
}

// setUsers makes the producers' users the running server's, beside
// EventSync's own. Connections of producers that are gone, disabled or
// whose password changed are closed.
func (b *broker) setUsers(producers []ingest.NATSUser) error {
	c := b.cfg
	c.Users = b.users(producers)
	return natsembed.Reload(b.ns, c)
}

// access says who may use the server, for the start-up banner.
func (b *broker) access() string {
	switch {
	case !b.secured():
		return "open: no authentication"
	case b.direct:
		return "producers log in with their id and password; they may publish to their tags directly"
	}
	return "producers log in with their id and password"
}

func (b *broker) listenAddr() string {
	if b.ns == nil || b.ns.Addr() == nil {
		return b.addr
	}
	return b.ns.Addr().(*net.TCPAddr).String()
}

func (b *broker) validate() error {
	_, err := natsembed.ParseSync(b.sync)
	return err
}

// secretFile returns the secret (what: "nats password", "secrets key")
// kept in path, making a random one (32 bytes in base64url, mode 0600) when
// there is no file yet, so that it stays the same across restarts. It refuses a file that others may read or write.
func secretFile(path, what string) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		return writePassword(f)
	case !errors.Is(err, fs.ErrExist):
		return "", fmt.Errorf(what+" file: %w", err)
	}
	f, err = os.Open(path)
	if err != nil {
		return "", fmt.Errorf(what+" file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf(what+" file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s file %s is not a regular file", what, path)
	}
	// Windows has no such mode bits; its ACLs are the operator's to set.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("%s file %s has mode %04o: others may read it; make it readable by its owner only (chmod 600 %s)", what, path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", fmt.Errorf(what+" file: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%s file %s is empty; delete it and a new one is made on the next start", what, path)
	}
	return pw, nil
}

// writePassword writes a new random password (32 bytes, base64url) to f
// and closes it.
func writePassword(f *os.File) (string, error) {
	key := make([]byte, 32)
	rand.Read(key) //nolint:errcheck // never fails (crypto/rand since Go 1.24)
	pw := base64.RawURLEncoding.EncodeToString(key)
	_, err := f.WriteString(pw + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name()) //nolint:errcheck // the write error is the one to report
		return "", fmt.Errorf("nats password file: %w", err)
	}
	return pw, nil
}
