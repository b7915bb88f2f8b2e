package projections_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
)

var everyProjection = []projections.Projection{projections.PaymentOrders{}, projections.Ledger{}, projections.Merchants{}}

// runAll runs a runner per projection, as paymentd does; stop stops them.
func runAll(t testing.TB, pool *pgxpool.Pool, store *eventstore.Postgres) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range everyProjection {
		r := projections.NewRunner(pool, store, p, nil)
		r.BatchSize = 16
		r.RetryDelay = 20 * time.Millisecond
		wg.Go(func() { _ = r.Run(ctx) })
	}
	return func() { cancel(); wg.Wait() }
}

// logHead is the position of the last event appended (every append of these tests has
// committed when it is called).
func logHead(t testing.TB, pool *pgxpool.Pool) eventstore.Position {
	t.Helper()
	var head eventstore.Position
	if err := pool.QueryRow(context.Background(), `SELECT transaction_id, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&head.Transaction, &head.Sequence); err != nil {
		t.Fatal(err)
	}
	return head
}

// waitAllAtHead waits until every projection's checkpoint is at the last event appended.
func waitAllAtHead(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	head := logHead(t, pool)
	testenv.WaitFor(t, 60*time.Second, "every projection at the head of the log", func() bool {
		for _, p := range everyProjection {
			if pos, err := projections.Checkpoint(context.Background(), pool, p.Name()); err != nil || pos != head {
				return false
			}
		}
		return true
	})
}

// waitReadable waits until every event appended so far is below the xmin horizon, so that a
// replay reads all of them: a transaction open anywhere on the server (another test's) holds
// the horizon back.
func waitReadable(t testing.TB, pool *pgxpool.Pool, store *eventstore.Postgres) {
	t.Helper()
	head := logHead(t, pool)
	testenv.WaitFor(t, 60*time.Second, "the log readable up to its head", func() bool {
		pos, err := store.Head(context.Background())
		return err == nil && pos == head
	})
}

func shadowSchemas(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'replay\_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func compare(t testing.TB, pool *pgxpool.Pool, shadow string) projections.Comparison {
	t.Helper()
	c, err := projections.Compare(context.Background(), pool, shadow, 50)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func countWhere(t testing.TB, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplayEqualsTheRunners: on a rich history (see history), the read models a replay builds
// in memory and bulk-loads are, table by table and row by row, those the runners built event by
// event with SQL; and the history is rich: every status, every kind of entry and movement.
func TestReplayEqualsTheRunners(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	appendHistory(t, store, history(1, 160))
	stop := runAll(t, pool, store)
	waitAllAtHead(t, pool)
	stop()

	for query, want := range map[string]int{
		`SELECT count(DISTINCT status) FROM payment_orders`:           8,
		`SELECT count(*) FROM payment_orders WHERE needs_review`:      1,
		`SELECT count(*) FROM payment_orders WHERE cancel_pending`:    1,
		`SELECT count(DISTINCT kind) FROM journal_entries`:            4,
		`SELECT count(DISTINCT (kind, bucket)) FROM wallet_movements`: 4,
		`SELECT count(DISTINCT merchant_id) FROM journal_entries`:     3,
		`SELECT count(DISTINCT commission_rate) FROM ledger_orders`:   2,
		`SELECT count(*) FROM journal_entries e WHERE kind = 'settlement' AND NOT EXISTS (
			SELECT 1 FROM journal_entries p WHERE p.event_id = e.event_id AND p.kind = 'payout')`: 1,
		`SELECT count(*) FROM merchants WHERE toss_key_hint IS NOT NULL`: 3,
	} {
		if got := countWhere(t, pool, query); got < want {
			t.Errorf("the history is not rich enough: %s = %d, want at least %d", query, got, want)
		}
	}

	waitReadable(t, pool, store)
	var phases []projections.ReplayPhase
	res, err := projections.Replay(ctx, pool, nil, projections.ReplayOptions{PageSize: 97, CopyChunk: 50, Progress: func(p projections.ReplayProgress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(phases, []projections.ReplayPhase{projections.PhaseRead, projections.PhaseLoad, projections.PhaseFinish}) {
		t.Errorf("progress phases %v", phases)
	}
	if head := logHead(t, pool); res.Position != head || res.Events != int64(countWhere(t, pool, `SELECT count(*) FROM events`)) {
		t.Fatalf("replay read %d events up to %s; the log has its head at %s", res.Events, res.Position, head)
	}
	if len(res.Shadows) != 3 {
		t.Fatalf("shadows %+v", res.Shadows)
	}
	for _, sh := range res.Shadows {
		c := compare(t, pool, sh.Schema)
		if c.Differing() != 0 {
			t.Errorf("%s: %d differences: %+v", sh.Projection, c.Differing(), c.Differences())
		}
		for _, tc := range c.Tables {
			if tc.LiveRows == 0 || tc.LiveRows != tc.ShadowRows {
				t.Errorf("%s.%s: %d live rows, %d shadow rows", sh.Projection, tc.Table, tc.LiveRows, tc.ShadowRows)
			}
		}
		if err := projections.DropShadow(ctx, pool, sh.Schema); err != nil {
			t.Fatal(err)
		}
	}
	if left := shadowSchemas(t, pool); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestShadowHasTheLiveDefinitions: the shadow tables carry the live tables' columns, keys,
// indexes, foreign keys (to the shadow copies), triggers and sequences of their own.
func TestShadowHasTheLiveDefinitions(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	appendHistory(t, store, history(2, 30))
	waitReadable(t, pool, store)
	res, err := projections.Replay(ctx, pool, []string{"ledger"}, projections.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shadow := res.Shadows[0].Schema
	t.Cleanup(func() { _ = projections.DropShadow(context.Background(), pool, shadow) })
	definitions := func(schema string) string {
		t.Helper()
		rows, err := pool.Query(ctx, `
			SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
			  || COALESCE(' default ' || regexp_replace(pg_get_expr(d.adbin, d.adrelid), '^nextval.*', 'nextval'), '')
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> 'replay_state'
			UNION ALL
			SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || replace(pg_get_constraintdef(k.oid), $1 || '.', '')
			FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname <> 'replay_state'
			UNION ALL
			SELECT 'index ' || replace(pg_get_indexdef(i.indexrelid), $1 || '.', '')
			FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname <> 'replay_state'
			UNION ALL
			SELECT 'trigger ' || replace(pg_get_triggerdef(g.oid), $1 || '.', '')
			FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND NOT g.tgisinternal
			UNION ALL
			SELECT 'sequence ' || s.relname || ' owned by ' || c.relname
			FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
			JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a' JOIN pg_class c ON c.oid = d.refobjid
			WHERE n.nspname = $1 AND s.relkind = 'S'
			ORDER BY 1`, schema)
		if err != nil {
			t.Fatal(err)
		}
		defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		var ledger []string
		for _, d := range defs {
			for _, table := range []string{"ledger_", "journal_entries", "postings", "wallet_movements"} {
				if strings.Contains(d, " "+table) {
					ledger = append(ledger, d)
					break
				}
			}
		}
		return strings.Join(ledger, "\n")
	}
	live, sh := definitions("public"), definitions(shadow)
	if live != sh {
		t.Fatalf("live definitions:\n%s\n\nshadow definitions:\n%s", live, sh)
	}
	for _, want := range []string{"trigger CREATE CONSTRAINT TRIGGER postings_balanced", "constraint postings postings_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES journal_entries(id)",
		"sequence journal_entries_id_seq owned by journal_entries"} {
		if !strings.Contains(sh, want) {
			t.Errorf("shadow lacks %q:\n%s", want, sh)
		}
	}
	// Its own sequences, past the loaded ids: the live ones are untouched.
	var next, maxID, liveLast int64
	if err := pool.QueryRow(ctx, `SELECT nextval('`+shadow+`.journal_entries_id_seq'), (SELECT max(id) FROM `+shadow+`.journal_entries),
		(SELECT last_value FROM public.journal_entries_id_seq)`).Scan(&next, &maxID, &liveLast); err != nil {
		t.Fatal(err)
	}
	if next != maxID+1 || liveLast != 1 {
		t.Fatalf("shadow sequence gives %d after max id %d; the live sequence is at %d (nothing projected live)", next, maxID, liveLast)
	}
}
