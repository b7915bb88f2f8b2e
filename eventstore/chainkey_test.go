package eventstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/eventstore/eventstoretest"
)

func newChainKey(t testing.TB) eventstore.ChainKey {
	t.Helper()
	secret := make([]byte, eventstore.MinChainKeyLen)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	k, err := eventstore.NewChainKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewChainKeyRefusesShortKeys(t *testing.T) {
	if _, err := eventstore.NewChainKey(make([]byte, eventstore.MinChainKeyLen-1)); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
	a, b := newChainKey(t), newChainKey(t)
	if a.ID() == b.ID() || len(a.ID()) != 16 || a.IsZero() || !(eventstore.ChainKey{}).IsZero() {
		t.Fatalf("key ids %q and %q", a.ID(), b.ID())
	}
}

func readAll(t *testing.T, s interface {
	ReadStream(context.Context, string, int64) ([]eventstore.RecordedEvent, error)
}, stream string) []eventstore.RecordedEvent {
	t.Helper()
	events, err := s.ReadStream(t.Context(), stream, 1)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func problemOf(t *testing.T, err error) *eventstore.ChainError {
	t.Helper()
	var ce *eventstore.ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *ChainError", err)
	}
	return ce
}

// The key arrives on a history hashed without it: old events keep their plain hashes and still
// verify, new events (in old and new streams) are keyed, and from then on a store without the
// key refuses to append and to hand out keyed streams.
func TestPostgresChainKeyArrivesOnPlainHistory(t *testing.T) {
	plain, pool := newPostgres(t)
	mustAppend(t, plain, "old", eventstore.NoStream, eventstoretest.NewEvents(2))
	mustAppend(t, plain, "old-only", eventstore.NoStream, eventstoretest.NewEvents(2))

	key := newChainKey(t)
	keyed := eventstore.NewPostgres(pool, eventstore.WithChainKey(key))
	mustAppend(t, keyed, "old", eventstore.Exact(2), eventstoretest.NewEvents(2))
	mustAppend(t, keyed, "new", eventstore.NoStream, eventstoretest.NewEvents(2))

	v, err := keyed.Verifier(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	activation, ok := v.Activation()
	if !ok || !v.Keyed() {
		t.Fatalf("keyed store's verifier: keyed %t, activated %t", v.Keyed(), ok)
	}
	old := readAll(t, keyed, "old")
	for i, want := range []eventstore.HashAlg{eventstore.HashSHA256, eventstore.HashSHA256, eventstore.HashHMACSHA256, eventstore.HashHMACSHA256} {
		if old[i].HashAlg != want {
			t.Fatalf("old version %d: %s, want %s", i+1, old[i].HashAlg, want)
		}
		if activation.Less(old[i].Position) != (want == eventstore.HashHMACSHA256) {
			t.Fatalf("old version %d at %s, activation %s", i+1, old[i].Position, activation)
		}
	}
	for _, stream := range []string{"old", "new", "old-only"} {
		if _, err := keyed.ReadVerified(t.Context(), stream); err != nil {
			t.Fatalf("keyed store reads %s: %v", stream, err)
		}
	}

	// Without the key: appends are refused anywhere (the history is keyed now), keyed streams
	// cannot be verified, a stream that is all plain still can.
	for _, stream := range []string{"old", "old-only", "brand-new"} {
		if _, err := plain.Append(t.Context(), stream, eventstore.Any, eventstoretest.NewEvents(1)); !errors.Is(err, eventstore.ErrChainKeyMissing) {
			t.Fatalf("append to %s without the key: %v, want ErrChainKeyMissing", stream, err)
		}
	}
	if _, err := plain.ReadVerified(t.Context(), "new"); !errors.Is(err, eventstore.ErrChainKeyMissing) || !errors.Is(err, eventstore.ErrChainBroken) {
		t.Fatalf("keyless read of a keyed stream: %v", err)
	}
	if _, broken, err := plain.ReadVerifiedMany(t.Context(), []string{"new"}); err != nil || !errors.Is(broken["new"], eventstore.ErrChainKeyMissing) {
		t.Fatalf("keyless bulk read of a keyed stream: %v, %v", broken, err)
	}
	// The reader lacks the key; the stream is fine: it is not recorded as broken.
	var flagged int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM broken_streams`).Scan(&flagged); err != nil || flagged != 0 {
		t.Fatalf("%d streams recorded broken by a reader without the key (%v)", flagged, err)
	}
	if _, err := plain.ReadVerified(t.Context(), "old-only"); err != nil {
		t.Fatalf("keyless read of an all-plain stream: %v", err)
	}

	// Another key is refused outright: it cannot verify what the first one keyed.
	other := eventstore.NewPostgres(pool, eventstore.WithChainKey(newChainKey(t)))
	if _, err := other.Append(t.Context(), "new", eventstore.Any, eventstoretest.NewEvents(1)); err == nil {
		t.Fatal("a store with another key appended")
	}
	if _, err := other.Verifier(t.Context()); err == nil {
		t.Fatal("a store with another key verified")
	}
}

// plainHashes recomputes every hash of stream from version `from` on with plain SHA-256 and
// stores them with hash_alg sha256 and the head moved along: what someone with database access
// but without the key can do.
func plainHashes(t *testing.T, pool *pgxpool.Pool, events []eventstore.RecordedEvent, from int64) {
	t.Helper()
	prev := make([]byte, sha256.Size)
	for i := range events {
		e := &events[i]
		if e.Version >= from {
			e.PrevHash, e.HashAlg = prev, eventstore.HashSHA256
			sum := sha256.Sum256(append(bytes.Clone(prev), eventstore.CanonicalBytes(*e)...))
			e.Hash = sum[:]
			tamper(t, pool, `UPDATE events SET prev_hash = $3, hash = $4, hash_alg = 'sha256' WHERE stream_id = $1 AND version = $2`,
				e.StreamID, e.Version, e.PrevHash, e.Hash)
		}
		prev = e.Hash
	}
	last := events[len(events)-1]
	if _, err := pool.Exec(t.Context(), `UPDATE event_streams SET last_hash = $2 WHERE stream_id = $1`, last.StreamID, last.Hash); err != nil {
		t.Fatal(err)
	}
}

// Downgrades: a keyed stream rewritten with plain hashes from its first event (refused by the
// activation rule) and from its third (refused by the stream rule too), and an edited keyed
// event whose plain predecessors were recomputed (its HMAC no longer matches).
func TestPostgresChainKeyRefusesDowngrades(t *testing.T) {
	plain, pool := newPostgres(t)
	mustAppend(t, plain, "mixed", eventstore.NoStream, eventstoretest.NewEvents(2))
	keyed := eventstore.NewPostgres(pool, eventstore.WithChainKey(newChainKey(t)))
	mustAppend(t, keyed, "mixed", eventstore.Exact(2), eventstoretest.NewEvents(2))
	for _, stream := range []string{"whole", "tail"} {
		mustAppend(t, keyed, stream, eventstore.NoStream, eventstoretest.NewEvents(4))
	}

	whole := readAll(t, keyed, "whole")
	whole[1].Data = []byte(`{"n":-1}`)
	tamper(t, pool, `UPDATE events SET data = $2 WHERE stream_id = 'whole' AND version = $1`, 2, `{"n":-1}`)
	plainHashes(t, pool, whole, 1)
	tail := readAll(t, keyed, "tail")
	plainHashes(t, pool, tail, 3)
	mixed := readAll(t, keyed, "mixed")
	tamper(t, pool, `UPDATE events SET data = $2 WHERE stream_id = 'mixed' AND version = $1`, 1, `{"n":-1}`)
	mixed[0].Data = []byte(`{"n":-1}`)
	plainHashes(t, pool, mixed[:2], 1)
	tamper(t, pool, `UPDATE events SET prev_hash = $1 WHERE stream_id = 'mixed' AND version = 3`, mixed[1].Hash)

	for stream, want := range map[string]struct {
		version int64
		problem eventstore.ChainProblem
	}{
		"whole": {1, eventstore.ProblemDowngrade},
		"tail":  {3, eventstore.ProblemDowngrade},
		"mixed": {3, eventstore.ProblemHash},
	} {
		_, err := keyed.ReadVerified(t.Context(), stream)
		if p := problemOf(t, err); p.Version != want.version || p.Problem != want.problem {
			t.Errorf("%s: %v, want problem %d at version %d", stream, err, want.problem, want.version)
		}
	}
	// The plain verifier sees a chain that holds: only the key tells.
	if err := eventstore.VerifyChain(whole); err != nil {
		t.Fatalf("the rewrite does not even hold without the key: %v", err)
	}
}

// The activation record cannot be altered, and a record replaced after its deletion leaves the
// keyed events before it refused.
func TestPostgresChainKeyActivationRecord(t *testing.T) {
	_, pool := newPostgres(t)
	key := newChainKey(t)
	keyed := eventstore.NewPostgres(pool, eventstore.WithChainKey(key))
	mustAppend(t, keyed, "s", eventstore.NoStream, eventstoretest.NewEvents(2))

	if _, err := pool.Exec(t.Context(), `UPDATE event_chain_keys SET activated_after = '1'`); err == nil {
		t.Fatal("the activation record was updated with the trigger on")
	}
	setTrigger := func(on bool) {
		verb := "DISABLE"
		if on {
			verb = "ENABLE"
		}
		if _, err := pool.Exec(t.Context(), `ALTER TABLE event_chain_keys `+verb+` TRIGGER event_chain_keys_no_update_delete`); err != nil {
			t.Fatal(err)
		}
	}
	setTrigger(false)
	if _, err := pool.Exec(t.Context(), `UPDATE event_chain_keys SET activated_after = (activated_after::text::bigint + 1000)::text::xid8`); err != nil {
		t.Fatal(err)
	}
	fresh := eventstore.NewPostgres(pool, eventstore.WithChainKey(key))
	if _, err := fresh.Verifier(t.Context()); !errors.Is(err, eventstore.ErrChainBroken) {
		t.Fatalf("a moved activation: %v, want ErrChainBroken", err)
	}

	if _, err := pool.Exec(t.Context(), `DELETE FROM event_chain_keys`); err != nil {
		t.Fatal(err)
	}
	setTrigger(true)
	again := eventstore.NewPostgres(pool, eventstore.WithChainKey(key))
	mustAppend(t, again, "later", eventstore.NoStream, eventstoretest.NewEvents(1))
	_, err := again.ReadVerified(t.Context(), "s")
	if p := problemOf(t, err); p.Problem != eventstore.ProblemKeyedEarly || p.Version != 1 {
		t.Fatalf("keyed events before a replaced activation: %v", err)
	}
}

// The memory store keys every event when built with a key and refuses none of its own.
func TestMemoryChainKey(t *testing.T) {
	key := newChainKey(t)
	s := eventstore.NewMemory(eventstore.WithChainKey(key))
	mustAppend(t, s, "m", eventstore.NoStream, eventstoretest.NewEvents(3))
	events, err := s.ReadVerified(t.Context(), "m")
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstore.VerifyChain(events); !errors.Is(err, eventstore.ErrChainKeyMissing) {
		t.Fatalf("plain verifier on keyed events: %v", err)
	}
	other, _ := eventstore.NewMemory(eventstore.WithChainKey(newChainKey(t))).Verifier(t.Context())
	if p := problemOf(t, other.VerifyChain(events)); p.Problem != eventstore.ProblemHash || p.Version != 1 {
		t.Fatalf("another key: %v", p)
	}
}
