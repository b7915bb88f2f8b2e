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

// TestShadowHasTheLiveDefinitions: a complete shadow's tables carry the live tables' columns,
// keys, indexes, foreign keys (to the shadow copies), triggers and sequences of their own.
func TestShadowHasTheLiveDefinitions(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	appendHistory(t, store, history(2, 30))
	waitReadable(t, pool, store)
	res, err := projections.Replay(ctx, pool, []string{"ledger"}, projections.ReplayOptions{Complete: true})
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

// TestSwapWhileRunnersRun: hand edits in the live tables are reported by Compare (table, key,
// both rows) and repaired by Swap, while paymentd-style runners keep projecting events that
// are appended before, during and after the replay and the swaps. Right after a swap, a
// connection that prepared its statements on the old tables reads the new ones; afterwards the
// runners' tables equal a fresh replay, the sequences, foreign keys and the balance trigger
// work on the swapped-in tables, and nothing of the replay is left.
func TestSwapWhileRunnersRun(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	steps := history(3, 240)
	appendHistory(t, store, steps[:len(steps)/2])
	stop := runAll(t, pool, store)
	defer func() { stop() }()
	waitAllAtHead(t, pool)

	// A query connection of its own, whose prepared statements are cached on the old tables.
	cfg := pool.Config().Copy()
	cfg.MaxConns = 1
	queryPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer queryPool.Close()
	var edited string
	if err := pool.QueryRow(ctx, `SELECT order_id FROM payment_orders WHERE status = 'SUCCESS' ORDER BY order_id LIMIT 1`).Scan(&edited); err != nil {
		t.Fatal(err)
	}
	statusOf := func() string {
		t.Helper()
		var s string
		if err := queryPool.QueryRow(ctx, `SELECT status FROM payment_orders WHERE order_id = $1`, edited).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Hand edits: a changed row, a missing row, an extra row, a changed amount.
	for _, sql := range []string{
		`UPDATE payment_orders SET status = 'BOGUS' WHERE order_id = '` + edited + `'`,
		`DELETE FROM payment_order_lines WHERE (order_id, line_id) = (SELECT order_id, line_id FROM payment_order_lines ORDER BY 1, 2 LIMIT 1)`,
		`INSERT INTO merchants (merchant_id, name, mode, registered_at, updated_at, version) VALUES ('m-ghost', 'Ghost', 'test', now(), now(), 1)`,
		`UPDATE wallet_movements SET amount = amount + 1 WHERE id = (SELECT min(id) FROM wallet_movements)`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if s := statusOf(); s != "BOGUS" {
		t.Fatalf("status %s before the swap", s)
	}

	waitReadable(t, pool, store)
	res, err := projections.Replay(ctx, pool, nil, projections.ReplayOptions{PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	// The live projections move past the shadows: Compare and Swap must bring them along.
	third := len(steps) / 2
	appendHistory(t, store, steps[third:third+len(steps)/4])
	waitAllAtHead(t, pool)

	want := map[string]string{ // table → what must be reported
		"payment_orders":      "status",
		"payment_order_lines": "missing live",
		"merchants":           "missing replay",
		"wallet_movements":    "amount",
	}
	for _, sh := range res.Shadows {
		c := compare(t, pool, sh.Schema)
		if c.Position != logHead(t, pool) {
			t.Errorf("%s compared at %s, not at the live checkpoint %s", sh.Projection, c.Position, logHead(t, pool))
		}
		for _, tc := range c.Tables {
			w, edited := want[tc.Table]
			if !edited {
				if tc.Differing != 0 {
					t.Errorf("%s: %d unexpected differences: %+v", tc.Table, tc.Differing, tc.Differences)
				}
				continue
			}
			// An edited movement may have spread: a payout the runner booked after the edit
			// moves the edited amount.
			if tc.Differing != 1 && tc.Table != "wallet_movements" || tc.Differing == 0 || int64(len(tc.Differences)) != tc.Differing {
				t.Errorf("%s: %d differences, want the edit: %+v", tc.Table, tc.Differing, tc.Differences)
				continue
			}
			for _, d := range tc.Differences {
				switch {
				case d.Key == "" || d.Table != tc.Table:
					t.Errorf("%s: difference without its key: %+v", tc.Table, d)
				case w == "missing live" && (d.Live != "" || d.Shadow == ""):
					t.Errorf("%s: want the row missing live: %+v", tc.Table, d)
				case w == "missing replay" && (d.Live == "" || d.Shadow != "" || !strings.Contains(d.Live, "Ghost")):
					t.Errorf("%s: want the ghost row missing from the replay: %+v", tc.Table, d)
				case !strings.HasPrefix(w, "missing") && !slices.Equal(d.Columns, []string{w}):
					t.Errorf("%s: want %s to differ: %+v", tc.Table, w, d)
				}
			}
		}
	}

	// Swap with events arriving all along.
	appending := make(chan struct{})
	go func() {
		defer close(appending)
		appendHistory(t, store, steps[third+len(steps)/4:])
	}()
	var maxEntry int64
	for _, sh := range res.Shadows {
		if sh.Projection == projections.LedgerName {
			if err := pool.QueryRow(ctx, `SELECT max(id) FROM `+sh.Schema+`.journal_entries`).Scan(&maxEntry); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := projections.Swap(ctx, pool, sh.Schema); err != nil {
			t.Fatal(err)
		}
		if sh.Projection == projections.PaymentOrdersName {
			if s := statusOf(); s != "SUCCESS" && s != "PARTIALLY_CANCELED" && s != "CANCELED" {
				t.Fatalf("right after the swap, the cached statement reads status %s", s)
			}
		}
	}
	<-appending
	waitAllAtHead(t, pool)
	stop()
	stop = func() {}

	if left := shadowSchemas(t, pool); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	comparisons, err := projections.Verify(ctx, pool, nil, projections.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range comparisons {
		if c.Differing() != 0 {
			t.Errorf("%s after the swap: %+v", c.Projection, c.Differences())
		}
	}
	if left := shadowSchemas(t, pool); len(left) != 0 {
		t.Fatalf("Verify left behind: %v", left)
	}

	// The swapped-in tables: their own sequence (past the replayed ids, used by the runner
	// since), foreign keys between them, the balance trigger.
	var seq, fkTarget string
	var newer int
	if err := pool.QueryRow(ctx, `SELECT pg_get_serial_sequence('journal_entries', 'id'),
		(SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = 'postings_entry_id_fkey'),
		(SELECT count(*) FROM journal_entries WHERE id > $1)`, maxEntry).Scan(&seq, &fkTarget, &newer); err != nil {
		t.Fatal(err)
	}
	if seq != "public.journal_entries_id_seq" || fkTarget != "journal_entries" || newer == 0 {
		t.Errorf("sequence %s, postings reference %s, %d entries written by the runner after the swap", seq, fkTarget, newer)
	}
	_, err = pool.Exec(ctx, `INSERT INTO postings (entry_id, merchant_id, account, account_type, debit, credit, currency, occurred_at)
		SELECT id, merchant_id, 'psp_fees:toss', 'expense', 1, 0, currency, occurred_at FROM journal_entries LIMIT 1`)
	if err == nil || !strings.Contains(err.Error(), "unbalanced") {
		t.Errorf("an unbalancing posting after the swap: %v, want the trigger's refusal", err)
	}
}

// TestSwapWhenTheLiveProjectionIsBehind: paymentd is down while events arrive. Compare brings
// the live tables up to the shadow inside a transaction it rolls back (nothing changes), and
// Swap moves the checkpoint to the shadow's position: the runners, started again, go on from
// there.
func TestSwapWhenTheLiveProjectionIsBehind(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	steps := history(4, 90)
	appendHistory(t, store, steps[:len(steps)/2])
	stop := runAll(t, pool, store)
	waitAllAtHead(t, pool)
	stop()
	behind := logHead(t, pool)
	appendHistory(t, store, steps[len(steps)/2:len(steps)*3/4])
	waitReadable(t, pool, store)

	res, err := projections.Replay(ctx, pool, nil, projections.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range res.Shadows {
		if c := compare(t, pool, sh.Schema); c.Differing() != 0 || c.Position != res.Position {
			t.Errorf("%s: %d differences at %s: %+v", sh.Projection, c.Differing(), c.Position, c.Differences())
		}
		if pos, err := projections.Checkpoint(ctx, pool, sh.Projection); err != nil || pos != behind {
			t.Fatalf("Compare moved %s's checkpoint to %s (%v)", sh.Projection, pos, err)
		}
		sr, err := projections.Swap(ctx, pool, sh.Schema)
		if err != nil {
			t.Fatal(err)
		}
		if sr.Position != res.Position {
			t.Errorf("%s resumes from %s, want the shadow's %s", sh.Projection, sr.Position, res.Position)
		}
	}
	stop = runAll(t, pool, store)
	appendHistory(t, store, steps[len(steps)*3/4:])
	waitAllAtHead(t, pool)
	stop()
	comparisons, err := projections.Verify(ctx, pool, nil, projections.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range comparisons {
		if c.Differing() != 0 {
			t.Errorf("%s: %+v", c.Projection, c.Differences())
		}
	}
}

// TestSwapRefusesAShadowOfOtherColumns: a migration between the replay and the swap changes the
// live tables; the shadow, built to the old definition, must not replace them.
func TestSwapRefusesAShadowOfOtherColumns(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	appendHistory(t, store, history(5, 10))
	waitReadable(t, pool, store)
	res, err := projections.Replay(ctx, pool, []string{projections.MerchantsName}, projections.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE merchants ADD COLUMN country text`); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Swap(ctx, pool, res.Shadows[0].Schema); err == nil || !strings.Contains(err.Error(), "replay again") {
		t.Fatalf("swap after a migration: %v", err)
	}
	if n := countWhere(t, pool, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'merchants' AND column_name = 'country'`); n != 1 {
		t.Fatal("the live table was replaced")
	}
	if err := projections.DropShadow(ctx, pool, res.Shadows[0].Schema); err != nil {
		t.Fatal(err)
	}
}
