package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/eventstore"
)

func TestMerkleRoot(t *testing.T) {
	leaf := func(i int) audit.Leaf {
		h := sha256.Sum256([]byte{byte(i)})
		return audit.Leaf{Stream: fmt.Sprintf("s%d", i), Version: int64(i + 1), Hash: h[:]}
	}
	empty := sha256.Sum256(nil)
	if !bytes.Equal(audit.MerkleRoot(nil), empty[:]) {
		t.Fatal("the empty tree's root is not sha256 of nothing")
	}
	// Three leaves, by hand: RFC 6962 puts the first two in the left subtree.
	l := []audit.Leaf{leaf(0), leaf(1), leaf(2)}
	lh := func(x audit.Leaf) []byte {
		var b []byte
		b = append(b, 0)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, byte(len(x.Stream)))
		b = append(b, x.Stream...)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, byte(x.Version))
		b = append(b, 0, 0, 0, 0, 0, 0, 0, byte(len(x.Hash)))
		b = append(b, x.Hash...)
		s := sha256.Sum256(b)
		return s[:]
	}
	node := func(a, b []byte) []byte {
		s := sha256.Sum256(append(append([]byte{1}, a...), b...))
		return s[:]
	}
	want := node(node(lh(l[0]), lh(l[1])), lh(l[2]))
	if got := audit.MerkleRoot([]audit.Leaf{l[2], l[0], l[1]}); !bytes.Equal(got, want) {
		t.Fatalf("root %x, want %x (leaves in any order are sorted by stream)", got, want)
	}
	if !bytes.Equal(audit.MerkleRoot(l[:1]), lh(l[0])) {
		t.Fatal("one leaf's root is not its leaf hash")
	}
	// Every field of every leaf counts.
	for i := range l {
		for _, change := range []func(*audit.Leaf){
			func(x *audit.Leaf) { x.Stream += "x" },
			func(x *audit.Leaf) { x.Version++ },
			func(x *audit.Leaf) { x.Hash = append(bytes.Clone(x.Hash[:31]), x.Hash[31]^1) },
		} {
			changed := []audit.Leaf{leaf(0), leaf(1), leaf(2)}
			change(&changed[i])
			if bytes.Equal(audit.MerkleRoot(changed), want) {
				t.Fatalf("a change to leaf %d left the root as it was", i)
			}
		}
	}
}

func testSeal(t *testing.T) (audit.Seal, ed25519.PublicKey) {
	f := newFixture(t)
	f.pay("order1", 2)
	return f.seal(), f.pub
}

func TestSealJSONRoundTripAndSignature(t *testing.T) {
	s, pub := testSeal(t)
	line, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(line, '\n') {
		t.Fatalf("a seal is not one line: %s", line)
	}
	var back audit.Seal
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(pub); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if !bytes.Equal(back.Digest(), s.Digest()) {
		t.Fatal("the round trip changed the checkpoint")
	}
	// Any field changed in the file breaks the signature.
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"seq": 7, "streams": 99, "events": 99, "changed": 99, "position": "1/1", "running": []uint64{1},
		"sealedAt": "2030-01-01T00:00:00Z", "root": strings.Repeat("ab", 32), "changedRoot": strings.Repeat("ab", 32),
		"prev": strings.Repeat("cd", 32),
	} {
		edited := map[string]any{}
		for k, x := range fields {
			edited[k] = x
		}
		edited[name] = v
		b, _ := json.Marshal(edited)
		var forged audit.Seal
		if err := json.Unmarshal(b, &forged); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := forged.Verify(pub); err == nil {
			t.Errorf("a seal with %s changed still verifies", name)
		}
	}
	for _, bad := range []string{`{"seq":1}`, `{`, strings.Replace(string(line), `"seq"`, `"sequence"`, 1)} {
		var s audit.Seal
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestSealLockAndScheduler(t *testing.T) {
	f := newFixture(t)
	f.pay("order1", 2)
	ctx := context.Background()

	// While another process holds the seal lock, no seal is made.
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(x'5ea10001'::bigint)`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sealer().Seal(ctx); !errors.Is(err, audit.ErrSealing) {
		t.Fatalf("seal under another's lock: %v, want ErrSealing", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(x'5ea10001'::bigint)`); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	// Two instances, one clock: the first seals at start, the second finds that seal.
	var (
		mu  sync.Mutex
		now = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	var instances []*audit.Scheduler
	for range 2 {
		s := f.sealer()
		audit.SetClock(s, clock)
		sched, err := audit.NewScheduler(s, time.Hour, logger)
		if err != nil {
			t.Fatal(err)
		}
		instances = append(instances, sched)
	}
	seals := func() int {
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM audit_seals`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	audit.SealOnce(ctx, instances[0])
	audit.SealOnce(ctx, instances[1])
	if n := seals(); n != 1 {
		t.Fatalf("%d seals after both instances started, want 1\n%s", n, logs.String())
	}
	// Half an interval later, with new events, the other instance seals.
	f.pay("order2", 1)
	advance(20 * time.Minute)
	audit.SealOnce(ctx, instances[1])
	if n := seals(); n != 1 {
		t.Fatalf("a seal 20 minutes after the last: %d seals", n)
	}
	advance(20 * time.Minute)
	audit.SealOnce(ctx, instances[1])
	if n := seals(); n != 2 {
		t.Fatalf("%d seals 40 minutes after the first, with new events; want 2\n%s", n, logs.String())
	}
	// Nothing new: no seal, however long.
	advance(5 * time.Hour)
	audit.SealOnce(ctx, instances[0])
	if n := seals(); n != 2 {
		t.Fatalf("a seal of nothing new: %d seals", n)
	}
	wantOK(t, f.audit(f.file))

	if _, err := audit.NewScheduler(f.sealer(), 0, nil); err == nil {
		t.Fatal("a zero interval was accepted")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := instances[0].Run(done); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

// A seal covers what its snapshot saw: a transaction still running then, which commits later
// with a position before the seal's, is not covered, and is no finding.
func TestSealCoversItsSnapshotOnly(t *testing.T) {
	f := newFixture(t)
	f.pay("order1", 2)
	ctx := context.Background()
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	// The running transaction takes its ID before the seal's events; it writes a stream by
	// hand, as the store would.
	var xid uint64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	f.pay("order2", 2)
	late := paymentEvents(t, "order3", "s", 5000, 1, f.at)
	data := eventData(t, late)
	e := data[0]
	meta, _ := json.Marshal(e.Metadata)
	rec := eventstore.RecordedEvent{StreamID: "payment-order3", Version: 1, ID: e.ID, Type: e.Type, SchemaVersion: 1,
		Data: e.Data, Metadata: e.Metadata, MetadataJSON: meta, RecordedAt: time.Now().UTC().Truncate(time.Microsecond),
		PrevHash: make([]byte, 32)}
	sum := sha256.Sum256(append(bytes.Clone(rec.PrevHash), eventstore.CanonicalBytes(rec)...))
	rec.Hash = sum[:]
	if _, err := tx.Exec(ctx, `INSERT INTO event_streams (stream_id, version, last_hash) VALUES ($1, 1, $2)`, rec.StreamID, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (stream_id, version, event_id, event_type, schema_version, data, metadata,
			recorded_at, prev_hash, hash) VALUES ($1, 1, $2, $3, 1, $4, $5, $6, $7, $8)`,
		rec.StreamID, rec.ID, rec.Type, string(rec.Data), string(meta), rec.RecordedAt, rec.PrevHash, rec.Hash); err != nil {
		t.Fatal(err)
	}
	s := f.seal()
	if !slices.Contains(s.Running, xid) || s.Streams != 3 {
		t.Fatalf("seal while transaction %d runs: %+v", xid, s.Checkpoint)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantOK(t, f.audit(f.file))
	// The next seal covers it, as a change.
	if s2 := f.seal(); s2.Changed != 1 || s2.Streams != 4 {
		t.Fatalf("next seal %+v", s2.Checkpoint)
	}
	wantOK(t, f.audit(f.file))
}
