package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
)

// Comparing and swapping a shadow with the live read model.
//
// The two are comparable only at one position of the log, and both move: the live tables with
// paymentd's runner, the shadow with nothing (it stops where the replay stopped). So Compare and
// Swap first bring the shadow up to the live checkpoint with the projection's own Apply (the
// runner's SQL path, on the shadow tables through the search_path) in ordinary short
// transactions, then do the rest in one transaction that brings whichever side is behind to the
// other's position:
//
//   - Compare runs in a REPEATABLE READ snapshot: the live tables and their checkpoint as one
//     consistent state, without stopping the runner. When the live projection is behind the
//     shadow (paymentd is down or lagging), it locks the live tables against writes first and
//     applies the missing events to the live tables inside its transaction, which it rolls back.
//     Compare changes nothing live.
//   - Swap takes ACCESS EXCLUSIVE locks on the live tables (the runner and the queries wait),
//     applies to the shadow what the live tables have and it has not, moves the live tables out
//     to an archive schema and the shadow tables in (their sequences, indexes, constraints and
//     triggers move with them), sets the checkpoint to the shadow's position and commits; then
//     it drops the archive. A runner that was applying a batch when the locks were taken waits,
//     then finds the new tables by name (PostgreSQL re-resolves names, prepared statements
//     included, after DDL); its conditional checkpoint update goes through when the checkpoint
//     is where it left it, and fails with ErrCheckpointMoved (it then resumes from the new
//     checkpoint) when the swap moved the checkpoint forward to a shadow that was ahead of it.

// Difference is a row that is on one side only or differs. Live and Shadow are the rows as JSON
// (surrogate ids left out), "" on the side that lacks the row.
type Difference struct {
	Table   string
	Key     string   // the row's natural key
	Live    string   // the live row; "" when missing there
	Shadow  string   // the shadow row; "" when missing there
	Columns []string // the columns that differ when both sides have the row
}

// TableComparison is one table's result.
type TableComparison struct {
	Table       string
	LiveRows    int64
	ShadowRows  int64
	Differing   int64        // rows missing on a side or different
	Differences []Difference // the first ones by key, at most the limit given to Compare
}

// Comparison is the result of comparing a shadow with the live read model.
type Comparison struct {
	Projection string
	Shadow     string
	Position   eventstore.Position // both sides were compared as of this position
	Tables     []TableComparison
}

// Differing is the number of rows that differ, over all tables.
func (c Comparison) Differing() int64 {
	var n int64
	for _, t := range c.Tables {
		n += t.Differing
	}
	return n
}

// Differences lists the differences reported, table by table.
func (c Comparison) Differences() []Difference {
	var out []Difference
	for _, t := range c.Tables {
		out = append(out, t.Differences...)
	}
	return out
}

// errRollback ends a transaction that must leave nothing behind.
var errRollback = errors.New("roll back")

// errLiveBehind: the live checkpoint was found behind the shadow in a snapshot taken without
// the lock that catching it up needs.
var errLiveBehind = errors.New("live projection behind the shadow")

// lockTimeout bounds each wait for the live tables' locks: while Swap waits for its lock, the
// queries behind it wait too.
const lockTimeout = "5s"

// Compare compares a shadow left by Replay with the live read model, table by table, row by
// row (an md5 checksum of each row's content), as of one position of the log, and reports at
// most limit differences per table (every one is counted). It changes neither side, apart from
// bringing the shadow up to the live checkpoint.
func Compare(ctx context.Context, pool *pgxpool.Pool, shadow string, limit int) (Comparison, error) {
	st, m, live, err := openShadow(ctx, pool, shadow)
	if err != nil {
		return Comparison{}, err
	}
	if _, err := catchUpShadow(ctx, pool, m, shadow, st); err != nil {
		return Comparison{}, err
	}
	var res Comparison
	lockLive := false
	for attempt := 1; ; attempt++ {
		res, err = compareOnce(ctx, pool, m, live, shadow, limit, lockLive)
		switch {
		case errors.Is(err, errLiveBehind) && !lockLive:
			lockLive = true
			continue
		case isLockFailure(err) && attempt < 5:
			continue
		case err != nil:
			return Comparison{}, fmt.Errorf("projections: compare %s: %w", shadow, err)
		}
		return res, nil
	}
}

func compareOnce(ctx context.Context, pool *pgxpool.Pool, m *readModel, live, shadow string, limit int, lockLive bool) (Comparison, error) {
	res := Comparison{Projection: m.proj.Name(), Shadow: shadow}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if lockLive {
			// Before the snapshot is taken (by the first query), so that it sees the live
			// tables as the lock leaves them.
			if err := lockTables(ctx, tx, live, m, "SHARE ROW EXCLUSIVE"); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '`+compareWorkMem+`'`); err != nil {
			return err
		}
		p, err := Checkpoint(ctx, tx, m.proj.Name())
		if err != nil {
			return err
		}
		st, err := readState(ctx, tx, shadow)
		if err != nil {
			return err
		}
		switch {
		case st.position.Less(p):
			if _, _, err := applyIn(ctx, tx, m, shadow, st.position, p, 0); err != nil {
				return err
			}
			res.Position = p
		case p.Less(st.position):
			if !lockLive {
				return errLiveBehind
			}
			if _, _, err := applyIn(ctx, tx, m, "", p, st.position, 0); err != nil {
				return err
			}
			res.Position = st.position
		default:
			res.Position = p
		}
		for _, t := range m.tables {
			tc, err := compareTable(ctx, tx, t, live, shadow, limit)
			if err != nil {
				return err
			}
			res.Tables = append(res.Tables, tc)
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return res, err
}

// compareTable compares one table in two passes. The first reads every row of both sides once,
// as a key and an md5 of its compared columns (tableSpec.checksum), and finds the differing rows (counted, the first limit
// kept); rows are paired by key and, within a key that is not unique, by checksum order. Only
// the second pass, over the few keys kept, reads rows whole. Keys sort in the "C" collation
// (bytewise, several times faster than a linguistic one), and the transaction gets the memory
// to sort and join in RAM (compareWorkMem).
func compareTable(ctx context.Context, tx pgx.Tx, t tableSpec, live, shadow string, limit int) (TableComparison, error) {
	tc := TableComparison{Table: t.name}
	from := func(schema string) string { return fmt.Sprintf(t.from, ident(schema)) }
	key := `ROW(` + t.key + `)::text COLLATE "C"`
	var columns []string
	rows, err := tx.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
		ident(live, t.name))
	if err == nil {
		columns, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return tc, fmt.Errorf("columns of %s: %w", t.name, err)
	}
	sum := `md5(` + t.checksum(columns) + `) COLLATE "C"`
	side := func(schema string) string {
		return fmt.Sprintf(`SELECT k, row_number() OVER (PARTITION BY k ORDER BY h) AS n, h FROM (
			SELECT %s AS k, %s AS h FROM %s) x`, key, sum, from(schema))
	}
	if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %s), (SELECT count(*) FROM %s)`,
		from(live), from(shadow))).Scan(&tc.LiveRows, &tc.ShadowRows); err != nil {
		return tc, fmt.Errorf("count %s: %w", t.name, err)
	}
	rows, err = tx.Query(ctx, `WITH l AS (`+side(live)+`), s AS (`+side(shadow)+`)
		SELECT COALESCE(l.k, s.k), l.n, s.n, count(*) OVER ()
		FROM l FULL JOIN s ON l.k = s.k AND l.n = s.n
		WHERE l.h IS DISTINCT FROM s.h
		ORDER BY 1, 2, 3
		LIMIT $1`, max(limit, 1))
	if err != nil {
		return tc, fmt.Errorf("compare %s: %w", t.name, err)
	}
	type pair struct {
		key            string
		liveN, shadowN *int64
	}
	var pairs []pair
	var p pair
	_, err = pgx.ForEachRow(rows, []any{&p.key, &p.liveN, &p.shadowN, &tc.Differing}, func() error {
		if len(pairs) < limit {
			pairs = append(pairs, p)
		}
		return nil
	})
	if err != nil {
		return tc, fmt.Errorf("compare %s: %w", t.name, err)
	}
	if len(pairs) == 0 {
		return tc, nil
	}
	keys := make([]string, len(pairs))
	for i, p := range pairs {
		keys[i] = p.key
	}
	// The rows of the differing keys, in the order of the first pass's numbering.
	content := func(schema string) (map[string][]string, error) {
		rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT k, c FROM (SELECT %s AS k, %s AS h, (%s)::text AS c FROM %s) x
			WHERE k = ANY($1) ORDER BY k, h`, key, sum, t.display(), from(schema)), keys)
		if err != nil {
			return nil, err
		}
		out := map[string][]string{}
		var k, c string
		_, err = pgx.ForEachRow(rows, []any{&k, &c}, func() error {
			out[k] = append(out[k], c)
			return nil
		})
		return out, err
	}
	liveRows, err := content(live)
	if err != nil {
		return tc, fmt.Errorf("compare %s: %w", t.name, err)
	}
	shadowRows, err := content(shadow)
	if err != nil {
		return tc, fmt.Errorf("compare %s: %w", t.name, err)
	}
	nth := func(rows map[string][]string, k string, n *int64) string {
		if n == nil || *n < 1 || *n > int64(len(rows[k])) {
			return ""
		}
		return rows[k][*n-1]
	}
	for _, p := range pairs {
		d := Difference{Table: t.name, Key: p.key, Live: nth(liveRows, p.key, p.liveN), Shadow: nth(shadowRows, p.key, p.shadowN)}
		d.Columns = differingColumns(d.Live, d.Shadow)
		tc.Differences = append(tc.Differences, d)
	}
	return tc, nil
}

// compareWorkMem is the memory a compare's transaction may use per sort or hash: enough to keep
// a table's keys and checksums (about 100 bytes a row) in RAM at a few hundred thousand rows.
const compareWorkMem = "256MB"

// differingColumns names the fields whose values differ between two rows given as jsonb text
// (canonical: equal values print the same).
func differingColumns(live, shadow string) []string {
	if live == "" || shadow == "" {
		return nil
	}
	var l, s map[string]json.RawMessage
	if json.Unmarshal([]byte(live), &l) != nil || json.Unmarshal([]byte(shadow), &s) != nil {
		return nil
	}
	var out []string
	for k, v := range l {
		if w, ok := s[k]; !ok || string(v) != string(w) {
			out = append(out, k)
		}
	}
	for k := range s {
		if _, ok := l[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// SwapResult says what Swap did.
type SwapResult struct {
	Projection string
	Position   eventstore.Position // the checkpoint the projection resumes from
	CaughtUp   int                 // events applied to the shadow after the replay, before it went live
	Unparked   int                 // parked and held events of the projection cleared (their effects are in the new tables)
}

// Swap makes a shadow left by Replay the live read model. It first builds what the shadow lacks
// to go live (every index, foreign key and trigger of the live tables, statistics) and applies
// to it the events the live projection has applied since the replay; then in one transaction it
// moves the live tables out and the shadow's in and sets the projection's checkpoint, while paymentd keeps
// serving (queries wait for the swap's locks, for as long as it takes to apply the few events
// the shadow lacks; each wait for the locks is bounded by lockTimeout and retried). Then it
// drops the old tables and the shadow schema.
//
// It refuses a read model that other objects depend on (a foreign key from another table, a
// view): after a swap they would point at the old tables.
//
// The projection's parked and held events (parked.go) are deleted by the swap: the new tables
// hold their effects. An event that still fails makes the replay or the swap fail, naming it
// (an *EventError); the live tables and the parked rows then stay as they were.
func Swap(ctx context.Context, pool *pgxpool.Pool, shadow string) (SwapResult, error) {
	st, m, live, err := openShadow(ctx, pool, shadow)
	if err != nil {
		return SwapResult{}, err
	}
	res := SwapResult{Projection: m.proj.Name()}
	if err := checkDependents(ctx, pool, m, live); err != nil {
		return res, err
	}
	if err := ensureComplete(ctx, pool, m, live, shadow); err != nil {
		return res, err
	}
	// Statistics before the tables serve queries (a replay leaves them out: a shadow that is
	// only compared never needs them).
	for _, t := range m.tables {
		if _, err := pool.Exec(ctx, `ANALYZE `+ident(shadow, t.name)); err != nil {
			return res, fmt.Errorf("projections: analyze %s.%s: %w", shadow, t.name, err)
		}
	}
	if res.CaughtUp, err = catchUpShadow(ctx, pool, m, shadow, st); err != nil {
		return res, err
	}
	archive := strings.Replace(shadow, shadowPrefix, shadowPrefix+"old_", 1)
	for attempt := 1; ; attempt++ {
		var n int
		n, res.Unparked, res.Position, err = swapOnce(ctx, pool, m, live, shadow, archive)
		if isLockFailure(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("projections: swap %s: %w", shadow, err)
		}
		res.CaughtUp += n
		break
	}
	var errs []error
	for _, s := range []string{archive, shadow} {
		if _, err := pool.Exec(ctx, `DROP SCHEMA `+ident(s)+` CASCADE`); err != nil {
			errs = append(errs, fmt.Errorf("projections: swapped %s, but dropping %s failed (drop it by hand): %w", m.proj.Name(), s, err))
		}
	}
	return res, errors.Join(errs...)
}

func swapOnce(ctx context.Context, pool *pgxpool.Pool, m *readModel, live, shadow, archive string) (int, int, eventstore.Position, error) {
	var n, unparked int
	var pos eventstore.Position
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The parked rows first: a runner's batch holds them shared until it commits, and may be
		// waiting for the tables (parked.go).
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+lockTimeout+`'`); err != nil {
			return err
		}
		if err := lockParked(ctx, tx, m.proj.Name()); err != nil {
			return err
		}
		if err := lockTables(ctx, tx, live, m, "ACCESS EXCLUSIVE"); err != nil {
			return err
		}
		// The checkpoint row too, in case a writer updates it without touching the tables.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, m.proj.Name()); err != nil {
			return err
		}
		p, err := Checkpoint(ctx, tx, m.proj.Name())
		if err != nil {
			return err
		}
		if err := sameColumns(ctx, tx, m, live, shadow); err != nil {
			return err
		}
		st, err := readState(ctx, tx, shadow)
		if err != nil {
			return err
		}
		pos = st.position
		if pos.Less(p) {
			if n, pos, err = applyIn(ctx, tx, m, shadow, pos, p, 0); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+ident(archive)); err != nil {
			return err
		}
		for _, t := range m.tables {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(live, t.name)+` SET SCHEMA `+ident(archive)); err != nil {
				return err
			}
		}
		for _, t := range m.tables {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(shadow, t.name)+` SET SCHEMA `+ident(live)); err != nil {
				return err
			}
		}
		// The projection's parked and held events are applied to the new tables: the replay and
		// applyIn above fail on an event that fails, and this position is at or after every
		// parked row (they are written with the checkpoint that passes them). Kept, they would be
		// stale, and a redrive would apply them a second time. (Re-evaluating them instead
		// would need a failure to re-evaluate: there is none, since every one applied.)
		tag, err := tx.Exec(ctx, `DELETE FROM projection_parked WHERE projection = $1`, m.proj.Name())
		if err != nil {
			return err
		}
		unparked = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`, m.proj.Name(), pos.String())
		return err
	})
	return n, unparked, pos, err
}

// sameColumns refuses a shadow whose tables' columns are not the live tables' (a migration ran
// after the replay): swapped in, they would break every statement written for the new columns.
func sameColumns(ctx context.Context, tx pgx.Tx, m *readModel, live, shadow string) error {
	for _, t := range m.tables {
		var differ bool
		err := tx.QueryRow(ctx, `
			WITH cols AS (
				SELECT n.nspname AS schema, a.attname, format_type(a.atttypid, a.atttypmod) AS typ, a.attnotnull,
				       row_number() OVER (PARTITION BY n.nspname ORDER BY a.attnum) AS place
				FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE c.relname = $3 AND n.nspname IN ($1, $2) AND a.attnum > 0 AND NOT a.attisdropped)
			SELECT EXISTS (
				(SELECT attname, typ, attnotnull, place FROM cols WHERE schema = $1
				 EXCEPT SELECT attname, typ, attnotnull, place FROM cols WHERE schema = $2)
				UNION ALL
				(SELECT attname, typ, attnotnull, place FROM cols WHERE schema = $2
				 EXCEPT SELECT attname, typ, attnotnull, place FROM cols WHERE schema = $1))`, live, shadow, t.name).Scan(&differ)
		if err != nil {
			return err
		}
		if differ {
			return fmt.Errorf("projections: the columns of %s.%s are not those of %s.%s (a migration since the replay?): replay again", shadow, t.name, live, t.name)
		}
	}
	return nil
}

// openShadow reads a shadow's state, its read model and the live tables' schema.
func openShadow(ctx context.Context, pool *pgxpool.Pool, shadow string) (replayState, *readModel, string, error) {
	st, err := readState(ctx, pool, shadow)
	if err != nil {
		return st, nil, "", err
	}
	m, err := modelNamed(st.projection)
	if err != nil {
		return st, nil, "", err
	}
	live, err := liveSchema(ctx, pool, m)
	return st, m, live, err
}

// catchUpShadow applies to the shadow, in ordinary transactions of at most catchUpPage events
// each, the events between its position and the live checkpoint, if the live projection is
// ahead; it returns how many. It keeps the locked part of Compare and Swap short.
func catchUpShadow(ctx context.Context, pool *pgxpool.Pool, m *readModel, shadow string, st replayState) (int, error) {
	target, err := Checkpoint(ctx, pool, m.proj.Name())
	if err != nil {
		return 0, err
	}
	total := 0
	for pos := st.position; pos.Less(target); {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			n, last, err := applyIn(ctx, tx, m, shadow, pos, target, catchUpPage)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE `+ident(shadow, "replay_state")+` SET position = $1`, last.String()); err != nil {
				return err
			}
			total, pos = total+n, last
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("projections: bring %s up to %s: %w", shadow, target, err)
		}
	}
	return total, nil
}

const catchUpPage = 1000

// applyIn applies the events after from up to and including to (at most limit of them when
// limit > 0) with the projection's Apply, the runner's SQL, to the tables of schema, or to the
// live ones when schema is "". For a shadow it puts the schema first on the transaction's
// search_path until the transaction ends, so that the projection's unqualified table names, and
// the trigger functions its writes fire at commit, find the shadow's tables. It returns how
// many events it applied and the position of the last.
func applyIn(ctx context.Context, tx pgx.Tx, m *readModel, schema string, from, to eventstore.Position, limit int) (int, eventstore.Position, error) {
	if schema != "" {
		if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1 || ', ' || current_setting('search_path'), true)`, ident(schema)); err != nil {
			return 0, from, err
		}
	}
	n, pos := 0, from
	for pos.Less(to) && (limit <= 0 || n < limit) {
		page, err := readLog(ctx, tx, pos, to, catchUpPage)
		if err != nil {
			return n, pos, err
		}
		if len(page) == 0 {
			return n, pos, fmt.Errorf("events after %s up to %s are not readable", pos, to)
		}
		for _, r := range page {
			if err := m.proj.Apply(ctx, tx, r); err != nil {
				return n, pos, newEventError(m.proj.Name(), r, err)
			}
			n, pos = n+1, r.Position
		}
	}
	return n, pos, nil
}

func lockTables(ctx context.Context, tx pgx.Tx, schema string, m *readModel, mode string) error {
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+lockTimeout+`'`); err != nil {
		return err
	}
	names := make([]string, len(m.tables))
	for i, t := range m.tables {
		names[i] = ident(schema, t.name)
	}
	_, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN `+mode+` MODE`)
	return err
}

// isLockFailure reports a lock wait that timed out or a deadlock (with a runner taking the same
// tables in another order): worth another try.
func isLockFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01")
}

// checkDependents refuses a read model that objects outside it depend on.
func checkDependents(ctx context.Context, pool *pgxpool.Pool, m *readModel, live string) error {
	names := make([]string, len(m.tables))
	for i, t := range m.tables {
		names[i] = ident(live, t.name)
	}
	rows, err := pool.Query(ctx, `
		SELECT format('foreign key %s of %s', conname, conrelid::regclass) FROM pg_constraint
		WHERE contype = 'f' AND confrelid = ANY($1::regclass[]) AND NOT conrelid = ANY($1::regclass[])
		UNION ALL
		SELECT DISTINCT format('view %s', r.ev_class::regclass) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
		WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = ANY($1::regclass[]) AND NOT r.ev_class = ANY($1::regclass[])`, names)
	if err != nil {
		return fmt.Errorf("projections: dependents of %s: %w", m.proj.Name(), err)
	}
	deps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("projections: dependents of %s: %w", m.proj.Name(), err)
	}
	if len(deps) > 0 {
		return fmt.Errorf("projections: cannot swap %s: %s depend on its tables", m.proj.Name(), strings.Join(deps, ", "))
	}
	return nil
}

// VerifyOptions adjust Verify.
type VerifyOptions struct {
	Replay ReplayOptions
	// Limit is the number of differences reported per table (default 20).
	Limit int
}

// Verify is the check that leaves nothing behind, for audits of projection drift: it replays the
// named projections (see Replay), compares each shadow with its live read model and drops the
// shadows, whatever happens.
func Verify(ctx context.Context, pool *pgxpool.Pool, projections []string, opts VerifyOptions) ([]Comparison, error) {
	if opts.Limit <= 0 {
		opts.Limit = 20
	}
	res, err := Replay(ctx, pool, projections, opts.Replay)
	if err != nil {
		return nil, err
	}
	var out []Comparison
	var errs []error
	for _, sh := range res.Shadows {
		c, err := Compare(ctx, pool, sh.Schema, opts.Limit)
		if err != nil {
			errs = append(errs, err)
		} else {
			out = append(out, c)
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if err := DropShadow(cleanup, pool, sh.Schema); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return out, errors.Join(errs...)
}
