package app

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsync/eventsync/pkg/conf"
	"github.com/eventsync/eventsync/pkg/service"
	"github.com/eventsync/eventsync/pkg/stream"
	"github.com/eventsync/eventsync/services/ingest"
)

// userSync keeps the producers' users of the embedded NATS server in line
// with the producer registry: it watches the producers and owners buckets
// and reloads the server's users whenever what they grant changes (a
// producer created, disabled, enabled, deleted, its password rotated, its
// tags or, with direct publishing, a category owner changed).
//
// It is a part of the all-in-one rather than something the broker runs on
// its own: it runs on the process's connection (EventSync's own user),
// after the buckets exist, and the process is ready only once the
// producers registered before the start can log in.
type userSync struct {
	b      *broker
	log    *slog.Logger
	kv     jetstream.KeyValue // producers; nil while the server is open
	owners jetstream.KeyValue
	synced chan struct{} // closed once the registry's users are the server's
	once   sync.Once
}

func newUserSync(b *broker) *userSync { return &userSync{b: b, synced: make(chan struct{})} }

func (u *userSync) Flags(*conf.Set) {}

func (u *userSync) Validate() error { return nil }

func (u *userSync) Mount(chi.Router) {}

// Open finds the buckets, unless the server is open to anyone.
func (u *userSync) Open(ctx context.Context, d service.Deps) error {
	u.log = d.Log.With("component", "nats")
	if !u.b.secured() {
		return nil
	}
	var err error
	if u.kv, err = d.JS.KeyValue(ctx, stream.ProducersBucket); err != nil {
		return fmt.Errorf("bucket %s: %w", stream.ProducersBucket, err)
	}
	if u.owners, err = d.JS.KeyValue(ctx, stream.OwnersBucket); err != nil {
		return fmt.Errorf("bucket %s: %w", stream.OwnersBucket, err)
	}
	return nil
}

// Ready waits until the server has the users of the producers registered
// when the process started.
func (u *userSync) Ready(ctx context.Context) error {
	if u.kv == nil {
		return nil
	}
	select {
	case <-u.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run follows both buckets until ctx is done. A server whose users could
// not be changed is an error that stops the process: it would still let
// in producers that were disabled or deleted.
func (u *userSync) Run(ctx context.Context) error {
	if u.kv == nil {
		<-ctx.Done()
		return nil
	}
	pw, err := u.kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %s: %w", stream.ProducersBucket, err)
	}
	defer pw.Stop() //nolint:errcheck // nothing to do about it on the way out
	ow, err := u.owners.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %s: %w", stream.OwnersBucket, err)
	}
	defer ow.Stop() //nolint:errcheck // nothing to do about it on the way out

	producers, owners := map[string][]byte{}, map[string][]byte{}
	var applied []ingest.NATSUser
	loading := 2 // initial loads still running
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-pw.Updates():
			if !ok {
				return u.closed(ctx, stream.ProducersBucket)
			}
			loading -= apply(producers, e)
		case e, ok := <-ow.Updates():
			if !ok {
				return u.closed(ctx, stream.OwnersBucket)
			}
			loading -= apply(owners, e)
		}
		// One reload for the changes at hand: each one re-checks the
		// password (bcrypt) of every connected client.
		if loading > 0 || len(pw.Updates()) > 0 || len(ow.Updates()) > 0 {
			continue
		}
		users, err := ingest.NATSUsers(producers, owners, u.b.direct)
		if err != nil {
			u.log.Error("stored producers without a nats user", "err", err)
		}
		// Most writes (a producer's last_seen, name reservations) change
		// no user.
		if !reflect.DeepEqual(users, applied) {
			if err := u.b.setUsers(users); err != nil {
				return err
			}
			applied = users
			u.log.Info("nats users updated", "producers", len(users))
		}
		u.once.Do(func() { close(u.synced) })
	}
}

func (u *userSync) closed(ctx context.Context, bucket string) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("watch %s closed", bucket)
}

// apply records one entry of a bucket's watch in m; it returns 1 for the
// nil entry that ends the initial values, else 0.
func apply(m map[string][]byte, e jetstream.KeyValueEntry) int {
	switch {
	case e == nil:
		return 1
	case e.Operation() == jetstream.KeyValuePut:
		m[e.Key()] = e.Value()
	default:
		delete(m, e.Key())
	}
	return 0
}
