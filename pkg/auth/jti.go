package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keyCreator creates a key-value entry that expires after a TTL, failing
// with jetstream.ErrKeyExists when the key is already there.
type keyCreator interface {
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
}

// ReplayStore remembers accepted JWT ids in a JetStream key-value bucket
// with per-key TTLs (stream.JTIConfig): the first Create of a key wins, so
// a jti is accepted once across every ingest instance, and the key expires
// when the token could no longer be accepted anyway.
type ReplayStore struct {
	kv keyCreator
}

// NewReplayStore returns a ReplayStore over the jti bucket.
func NewReplayStore(kv keyCreator) *ReplayStore {
	return &ReplayStore{kv: kv}
}

// Remember records producerID's jti until the given time and reports
// whether it was the first time. The server keeps keys for whole seconds,
// at least one; the TTL is rounded up so that a jti is never forgotten
// early.
func (s *ReplayStore) Remember(ctx context.Context, producerID, jti string, until time.Time) (bool, error) {
	ttl := max(time.Until(until), time.Second)
	if r := ttl % time.Second; r != 0 {
		ttl += time.Second - r
	}
	key := jtiKey(producerID, jti)
	_, err := s.kv.Create(ctx, key, []byte(until.UTC().Format(time.RFC3339)), jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create jti key %s: %w", key, err)
	}
	return true, nil
}

// jtiKey is the bucket key of a jti: the producer id, a dot and the hex
// SHA-256 of the jti, since a jti may hold any character and keys may not.
// A producer id that is not a plain key token is hashed too.
func jtiKey(producerID, jti string) string {
	j := sha256.Sum256([]byte(jti))
	if !keyToken(producerID) {
		p := sha256.Sum256([]byte(producerID))
		producerID = hex.EncodeToString(p[:])
	}
	return producerID + "." + hex.EncodeToString(j[:])
}

// keyToken reports whether s is a non-empty run of the characters a
// key-value key may hold, without dots.
func keyToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return true
}
