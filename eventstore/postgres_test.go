package eventstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/eventstore/eventstoretest"
	"github.com/paymentledger/ledger/internal/pgtest"
)

// newPostgres returns a store on a fresh, migrated database, with the pool configured as
// production configures it.
func newPostgres(t testing.TB) (*eventstore.Postgres, *pgxpool.Pool) {
	t.Helper()
	return newPostgresWithConns(t, 0)
}

// newPostgresWithConns is newPostgres with a pool of maxConns connections (0: pgxpool's default).
func newPostgresWithConns(t testing.TB, maxConns int32) (*eventstore.Postgres, *pgxpool.Pool) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	eventstore.ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return eventstore.NewPostgres(pool), pool
}

func TestPostgresConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		s, _ := newPostgres(t)
		return s
	})
}

func TestPostgresConformanceKeyed(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		_, pool := newPostgres(t)
		return eventstore.NewPostgres(pool, eventstore.WithChainKey(newChainKey(t)))
	})
}

func TestConfigurePool(t *testing.T) {
	_, pool := newPostgres(t)
	var got string
	if err := pool.QueryRow(t.Context(), "SHOW idle_in_transaction_session_timeout").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != eventstore.IdleInTransactionTimeout {
		t.Fatalf("idle_in_transaction_session_timeout = %q, want %q", got, eventstore.IdleInTransactionTimeout)
	}

	cfg, err := pgxpool.ParseConfig("postgres://localhost/db?idle_in_transaction_session_timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	eventstore.ConfigurePool(cfg)
	if got := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; got != "5s" {
		t.Fatalf("an explicit setting was replaced by %q", got)
	}
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) {
	t.Helper()
	if _, err := s.Append(t.Context(), stream, expected, events); err != nil {
		t.Fatalf("append to %q: %v", stream, err)
	}
}

func TestPostgresEventsAreAppendOnly(t *testing.T) {
	s, pool := newPostgres(t)
	mustAppend(t, s, "immutable", eventstore.NoStream, eventstoretest.NewEvents(2))
	before, err := s.ReadStream(t.Context(), "immutable", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE events SET data = '{"forged":true}' WHERE stream_id = 'immutable'`,
		`UPDATE events SET event_type = 'Other'`,
		`DELETE FROM events WHERE version = 2`,
		`DELETE FROM events`,
		`TRUNCATE events`,
		`TRUNCATE events, event_streams`,
	} {
		_, err := pool.Exec(t.Context(), stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: got %v, want insufficient_privilege from the append-only trigger", stmt, err)
		}
	}
	after, err := s.ReadStream(t.Context(), "immutable", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || !bytes.Equal(after[1].Data, before[1].Data) {
		t.Fatal("events changed")
	}
}

func TestPostgresHashChain(t *testing.T) {
	s, pool := newPostgres(t)
	for i, n := range []int{1, 3, 2} {
		mustAppend(t, s, "chain-a", eventstore.Any, eventstoretest.NewEvents(n))
		mustAppend(t, s, "chain-b", eventstore.Any, eventstoretest.NewEvents(i+1))
	}
	a, err := s.ReadStream(t.Context(), "chain-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ReadStream(t.Context(), "chain-b", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, events := range [][]eventstore.RecordedEvent{a, b} {
		if err := eventstore.VerifyChain(events); err != nil {
			t.Fatalf("stored chain: %v", err)
		}
	}

	// The documented formula, independently of VerifyChain.
	prev := make([]byte, sha256.Size)
	for _, e := range a {
		if !bytes.Equal(e.PrevHash, prev) {
			t.Fatalf("version %d: prev_hash %x, want %x", e.Version, e.PrevHash, prev)
		}
		sum := sha256.Sum256(append(bytes.Clone(prev), eventstore.CanonicalBytes(e)...))
		if !bytes.Equal(e.Hash, sum[:]) {
			t.Fatalf("version %d: hash is not sha256(prev_hash || canonical bytes)", e.Version)
		}
		prev = e.Hash
	}
	// The stream head holds the last event's version and hash.
	var version int64
	var lastHash []byte
	if err := pool.QueryRow(t.Context(), `SELECT version, last_hash FROM event_streams WHERE stream_id = 'chain-a'`).
		Scan(&version, &lastHash); err != nil {
		t.Fatal(err)
	}
	if last := a[len(a)-1]; version != last.Version || !bytes.Equal(lastHash, last.Hash) {
		t.Fatalf("stream head: version %d hash %x; last event: version %d hash %x", version, lastHash, last.Version, last.Hash)
	}

	// Tampering with a copy (the table cannot be changed) breaks the chain.
	tamper := map[string]func([]eventstore.RecordedEvent) []eventstore.RecordedEvent{
		"data": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			ev[2].Data = []byte(`{"n":0}`)
			return ev
		},
		"type": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			ev[1].Type = "PaymentApproved"
			return ev
		},
		"recorded at": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			ev[3].RecordedAt = ev[3].RecordedAt.Add(time.Microsecond)
			return ev
		},
		"metadata shown": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			ev[0].Metadata.Actor = "recovery"
			return ev
		},
		"metadata stored": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			m := ev[0].Metadata
			m.Actor = "recovery"
			ev[0].Metadata = m
			ev[0].MetadataJSON, _ = json.Marshal(m)
			return ev
		},
		"schema version": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			ev[1].SchemaVersion = 2
			return ev
		},
		"event removed": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			return append(ev[:2], ev[3:]...)
		},
		"first event removed": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent { return ev[1:] },
		"events swapped": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			ev[1], ev[2] = ev[2], ev[1]
			return ev
		},
		"version renumbered": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			ev = append(ev[:2], ev[3:]...)
			for i := range ev {
				ev[i].Version = int64(i + 1)
			}
			return ev
		},
		"event from another stream": func(ev []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			return append(ev, b[len(ev)%len(b)])
		},
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			events := make([]eventstore.RecordedEvent, len(a))
			for i, e := range a {
				e.Data = bytes.Clone(e.Data)
				events[i] = e
			}
			if err := eventstore.VerifyChain(f(events)); !errors.Is(err, eventstore.ErrChainBroken) {
				t.Fatalf("got %v, want ErrChainBroken", err)
			}
		})
	}
	if err := eventstore.VerifyChain(a); err != nil {
		t.Fatalf("tampering with copies changed the original: %v", err)
	}
}

func TestPostgresFailedAppendLeavesNoStreamRow(t *testing.T) {
	s, pool := newPostgres(t)
	mustAppend(t, s, "taken", eventstore.NoStream, eventstoretest.NewEvents(1))
	stored, err := s.ReadStream(t.Context(), "taken", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), "ghost", eventstore.StreamExists, eventstoretest.NewEvents(2)); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("got %v, want ErrWrongExpectedVersion", err)
	}
	reuse := []eventstore.EventData{eventstoretest.NewEvent("TestEvent"), {ID: stored[0].ID, Type: "TestEvent", SchemaVersion: 1, Data: []byte(`{}`)}}
	if _, err := s.Append(t.Context(), "ghost", eventstore.NoStream, reuse); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("got %v, want ErrDuplicateEventID", err)
	}
	var rows int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM event_streams WHERE stream_id = 'ghost'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("failed appends left %d event_streams rows", rows)
	}

	// Refused appends are rolled back on their connection, which goes back to the pool: a
	// conflict (the common failure) must not cost a reconnect.
	conns := pool.Stat().NewConnsCount()
	for range 20 {
		if _, err := s.Append(t.Context(), "taken", eventstore.NoStream, eventstoretest.NewEvents(1)); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("got %v, want ErrWrongExpectedVersion", err)
		}
	}
	if opened := pool.Stat().NewConnsCount() - conns; opened != 0 {
		t.Fatalf("20 refused appends opened %d new connections", opened)
	}
}

// TestPostgresCommitOrder holds a transaction open that has written an event to stream A, while
// an append to stream B commits. B's event sorts after A's (A's transaction ID is older), so no
// reader may see B before A is resolved: otherwise a reader that moved past B would skip A when
// A commits.
func TestPostgresCommitOrder(t *testing.T) {
	for _, commitA := range []bool{true, false} {
		name := "A commits"
		if !commitA {
			name = "A rolls back"
		}
		t.Run(name, func(t *testing.T) {
			s, pool := newPostgres(t)
			// Only re-polling for pending events, not the safety timer, may deliver B.
			eventstore.SetSafetyInterval(s, time.Hour)
			ctx := t.Context()

			mustAppend(t, s, "C", eventstore.NoStream, eventstoretest.NewEvents(1))
			sub := eventstoretest.Subscribe(t, s, eventstore.Start, 10)
			c := sub.Next(t, 1)[0]

			// A: written by hand (no notification), left open.
			txA, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer txA.Rollback(context.Background()) //nolint:errcheck
			eventA := rawEvent(t, "A")
			if _, err := txA.Exec(ctx, `INSERT INTO event_streams (stream_id, version, last_hash) VALUES ($1, 1, $2)`,
				eventA.StreamID, eventA.Hash); err != nil {
				t.Fatal(err)
			}
			if _, err := txA.Exec(ctx, `INSERT INTO events (stream_id, version, event_id, event_type, schema_version,
					data, metadata, recorded_at, prev_hash, hash) VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				eventA.StreamID, eventA.ID, eventA.Type, eventA.SchemaVersion, string(eventA.Data),
				string(eventA.MetadataJSON), eventA.RecordedAt, eventA.PrevHash, eventA.Hash); err != nil {
				t.Fatal(err)
			}
			var xidA uint64
			if err := txA.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&xidA); err != nil {
				t.Fatal(err)
			}

			// B: committed, and it notifies subscribers.
			eventB := eventstoretest.NewEvent("TestEvent")
			mustAppend(t, s, "B", eventstore.NoStream, []eventstore.EventData{eventB})
			var committedB int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = 'B'`).Scan(&committedB); err != nil {
				t.Fatal(err)
			}
			if committedB != 1 {
				t.Fatalf("B's event is not committed (%d rows)", committedB)
			}

			// While A is open, B is behind it: not readable, not the head, not delivered.
			if got, err := s.ReadAll(ctx, c.Position, 10); err != nil || len(got) != 0 {
				t.Fatalf("ReadAll while A is open returned %d events (%v), want none", len(got), err)
			}
			if head, err := s.Head(ctx); err != nil || head != c.Position {
				t.Fatalf("Head while A is open = %s (%v), want %s", head, err, c.Position)
			}
			if early := sub.Delivered(); len(early) > 0 {
				t.Fatalf("subscriber received %s while A was open", early[0].StreamID)
			}

			want := []uuid.UUID{eventB.ID}
			if commitA {
				if err := txA.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				want = []uuid.UUID{eventA.ID, eventB.ID}
			} else if err := txA.Rollback(ctx); err != nil {
				t.Fatal(err)
			}

			// Neither outcome notifies: the subscriber must find B (and A) by itself.
			got := sub.Next(t, len(want))
			for i := range want {
				if got[i].ID != want[i] {
					t.Fatalf("subscriber got %s as event %d, want %s", got[i].StreamID, i, want[i])
				}
			}
			if commitA && (got[0].Position.Transaction != xidA || !got[0].Position.Less(got[1].Position)) {
				t.Fatalf("A at %s (transaction %d), B at %s", got[0].Position, xidA, got[1].Position)
			}
			all, err := s.ReadAll(ctx, c.Position, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != len(want) || all[0].ID != want[0] || all[len(all)-1].ID != eventB.ID {
				t.Fatalf("ReadAll after A ended: %d events", len(all))
			}
			if head, err := s.Head(ctx); err != nil || head != all[len(all)-1].Position {
				t.Fatalf("Head = %s (%v), want %s", head, err, all[len(all)-1].Position)
			}
			if commitA {
				streamA, err := s.ReadStream(ctx, "A", 1)
				if err != nil {
					t.Fatal(err)
				}
				if err := eventstore.VerifyChain(streamA); err != nil {
					t.Fatalf("hand-written chain: %v", err)
				}
			}
		})
	}
}

// rawEvent builds the first event of stream as the store would record it, hash included.
func rawEvent(t *testing.T, stream string) eventstore.RecordedEvent {
	t.Helper()
	d := eventstoretest.NewEvent("TestEvent")
	meta, err := json.Marshal(d.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	e := eventstore.RecordedEvent{
		StreamID: stream, Version: 1, ID: d.ID, Type: d.Type, SchemaVersion: d.SchemaVersion,
		Data: d.Data, Metadata: d.Metadata, MetadataJSON: meta,
		RecordedAt: time.Now().UTC().Truncate(time.Microsecond), PrevHash: make([]byte, sha256.Size),
	}
	sum := sha256.Sum256(append(bytes.Clone(e.PrevHash), eventstore.CanonicalBytes(e)...))
	e.Hash = sum[:]
	return e
}

// listeners returns the backend PIDs of this database's notifier connections.
func listeners(t *testing.T, pool *pgxpool.Pool) []int32 {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'eventstore-notifier' ORDER BY pid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var pids []int32
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return pids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestPostgresSubscribersShareOneListener(t *testing.T) {
	s, pool := newPostgres(t)
	var subs []*eventstoretest.Subscription
	for range 3 {
		subs = append(subs, eventstoretest.Subscribe(t, s, eventstore.Start, 10))
	}
	mustAppend(t, s, "shared", eventstore.NoStream, eventstoretest.NewEvents(1))
	for _, sub := range subs {
		sub.Next(t, 1)
	}
	if pids := listeners(t, pool); len(pids) != 1 {
		t.Fatalf("%d listener connections for 3 subscribers, want 1", len(pids))
	}
	for _, sub := range subs {
		sub.Stop(t)
	}
	waitFor(t, "the listener to close after the last subscriber left", func() bool { return len(listeners(t, pool)) == 0 })
}

// TestPostgresListenerReconnects kills the listening connection and checks that subscribers are
// woken by notifications again. The safety timer is made long, so only a notification (or the
// wake-up after re-LISTEN) can deliver.
func TestPostgresListenerReconnects(t *testing.T) {
	s, pool := newPostgres(t)
	eventstore.SetSafetyInterval(s, time.Hour)
	sub := eventstoretest.Subscribe(t, s, eventstore.Start, 10)
	var first []int32
	waitFor(t, "the listener to connect", func() bool { first = listeners(t, pool); return len(first) == 1 })
	mustAppend(t, s, "live", eventstore.NoStream, eventstoretest.NewEvents(1))
	sub.Next(t, 1)

	if _, err := pool.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, first[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new listener", func() bool {
		pids := listeners(t, pool)
		return len(pids) == 1 && pids[0] != first[0]
	})
	mustAppend(t, s, "live", eventstore.Exact(1), eventstoretest.NewEvents(2))
	if got := sub.Next(t, 2); got[1].Version != 3 {
		t.Fatalf("got version %d, want 3", got[1].Version)
	}
}

// TestPostgresSubscribeReturnsReadErrors: an error that no retry can fix ends the subscription.
func TestPostgresSubscribeReturnsReadErrors(t *testing.T) {
	s, pool := newPostgres(t)
	eventstore.SetSafetyInterval(s, 10*time.Millisecond) // re-read soon after the table is gone
	mustAppend(t, s, "s", eventstore.NoStream, eventstoretest.NewEvents(1))
	sub := eventstoretest.Subscribe(t, s, eventstore.Start, 10)
	sub.Next(t, 1)
	if _, err := pool.Exec(t.Context(), `ALTER TABLE events RENAME TO events_gone`); err != nil {
		t.Fatal(err)
	}
	err := sub.Err(t)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
		t.Fatalf("subscription ended with %v, want undefined_table", err)
	}
}

func TestPostgresHeadEmpty(t *testing.T) {
	s, _ := newPostgres(t)
	head, err := s.Head(t.Context())
	if err != nil || head != eventstore.Start {
		t.Fatalf("Head of an empty store = %s (%v), want %s", head, err, eventstore.Start)
	}
}

func TestPostgresAppendCanceledMidway(t *testing.T) {
	// A context that ends while the append waits for the stream lock aborts it: nothing stored.
	s, pool := newPostgres(t)
	mustAppend(t, s, "locked", eventstore.NoStream, eventstoretest.NewEvents(1))
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM event_streams WHERE stream_id = 'locked' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = s.Append(ctx, "locked", eventstore.Any, eventstoretest.NewEvents(1))
	if !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
		t.Fatalf("append blocked on the lock: got %v, want a deadline error", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	events, err := s.ReadStream(t.Context(), "locked", 1)
	if err != nil || len(events) != 1 {
		t.Fatalf("stream has %d events (%v), want 1", len(events), err)
	}
}

// tamper runs sql with the append-only trigger disabled, as someone with the database's keys
// (a superuser, or a migration gone wrong) could.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_no_update_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE events ENABLE TRIGGER events_no_update_delete`); err != nil {
		t.Fatal(err)
	}
}

// ReadVerified hands out only untouched history: an edited payload, a deleted last event and a
// head moved by hand are each refused, naming the stream (and the version where there is one).
func TestReadVerifiedRefusesBrokenHistory(t *testing.T) {
	s, pool := newPostgres(t)
	ctx := context.Background()
	for _, stream := range []string{"edited", "cut", "moved", "intact"} {
		mustAppend(t, s, stream, eventstore.NoStream, eventstoretest.NewEvents(3))
	}
	if evs, err := s.ReadVerified(ctx, "intact"); err != nil || len(evs) != 3 {
		t.Fatalf("an intact stream: %d events, %v", len(evs), err)
	}
	if _, err := s.ReadVerified(ctx, "nothing"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("no such stream: %v", err)
	}
	tamper(t, pool, `UPDATE events SET data = '{"n": 999}' WHERE stream_id = 'edited' AND version = 2`)
	tamper(t, pool, `DELETE FROM events WHERE stream_id = 'cut' AND version = 3`)
	if _, err := pool.Exec(ctx, `UPDATE event_streams SET version = 2 WHERE stream_id = 'moved'`); err != nil {
		t.Fatal(err)
	}
	for stream, want := range map[string]string{
		"edited": `stream "edited" version 2: hash does not match`,
		"cut":    `stream "cut": its head is at version 3, its events end at version 2`,
		"moved":  `stream "moved": its head is at version 2, its events end at version 3`,
	} {
		_, err := s.ReadVerified(ctx, stream)
		if !errors.Is(err, eventstore.ErrChainBroken) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrChainBroken with %q", stream, err, want)
		}
	}
	// The bulk read sorts the same streams the same way, in one snapshot.
	ok, broken, err := s.ReadVerifiedMany(ctx, []string{"edited", "cut", "moved", "intact", "nothing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ok) != 1 || len(ok["intact"]) != 3 {
		t.Errorf("bulk read: verified streams %v, want only intact with 3 events", keys(ok))
	}
	if len(broken) != 3 {
		t.Errorf("bulk read: broken streams %v, want edited, cut and moved", keys(broken))
	}
	for _, stream := range []string{"edited", "cut", "moved"} {
		if !errors.Is(broken[stream], eventstore.ErrChainBroken) {
			t.Errorf("bulk read: %s: %v, want ErrChainBroken", stream, broken[stream])
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
