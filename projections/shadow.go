package projections

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/paymentledger/ledger/eventstore"
)

// Shadow schemas. A replay builds a projection's tables in a schema of their own,
// replay_<projection>_<UTC time>_<random>, as copies of the live tables' definitions read from
// the catalog (so whatever the migrations made is copied, and nothing is written twice):
//
//   - CREATE TABLE ... (LIKE live INCLUDING DEFAULTS, CONSTRAINTS, ...) before the load: columns
//     in the same order, NOT NULL, CHECK constraints, defaults;
//   - each bigserial column gets a sequence of its own in the shadow schema, owned by the shadow
//     column (LIKE copies the default, which still calls the live table's sequence), set past
//     the highest id after the load;
//   - after the load: every index (those of primary keys and unique constraints too, which
//     then become constraints USING INDEX), foreign keys between the read model's tables
//     (pointing at the shadow copies), the triggers (the ledger's deferred balance check, which
//     a check query stands in for over the loaded rows), the owner and the grants; the keys
//     always, the rest when the shadow is to go live (shadowDDL).
//
// Building indexes after the load is several times faster than maintaining them row by row.
// Because index, constraint and sequence names are per schema, the shadow objects carry the live
// names, and after a swap (Swap) the live schema holds objects named exactly as the migrations
// named them.
//
// The table replay_state (one row) records which projection the schema holds and up to which
// position of the log.

const shadowPrefix = "replay_"

func newShadowName(projection string, now time.Time) string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s%s_%s_%s", shadowPrefix, projection, now.UTC().Format("20060102_150405"), hex.EncodeToString(b))
}

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// liveSchema returns the schema of the read model's live tables (found through the
// search_path, as the projections' SQL finds them); they must all be in one.
func liveSchema(ctx context.Context, q querier, m *readModel) (string, error) {
	var schema string
	for _, t := range m.tables {
		var s *string
		if err := q.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = to_regclass($1)`, t.name).Scan(&s); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("projections: find table %s: %w", t.name, err)
		}
		switch {
		case s == nil:
			return "", fmt.Errorf("projections: table %s of %s not found: are the migrations applied?", t.name, m.proj.Name())
		case schema != "" && *s != schema:
			return "", fmt.Errorf("projections: the tables of %s are in schemas %s and %s", m.proj.Name(), schema, *s)
		}
		schema = *s
	}
	return schema, nil
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// createShadow creates the schema, replay_state and the bare tables (no index, no foreign key,
// no trigger) in one transaction.
func createShadow(ctx context.Context, pool *pgxpool.Pool, m *readModel, live, shadow string) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+ident(shadow)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE `+ident(shadow, "replay_state")+` (
			projection        text        NOT NULL,
			position          text        NOT NULL, -- the log position the tables reflect
			replayed_position text        NOT NULL, -- the last event the replay itself read
			events            bigint      NOT NULL,
			complete          boolean     NOT NULL, -- every definition built (shadowDDL)
			replayed_at       timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		for _, t := range m.tables {
			if _, err := tx.Exec(ctx, `CREATE TABLE `+ident(shadow, t.name)+` (LIKE `+ident(live, t.name)+`
				INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY
				INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)`); err != nil {
				return err
			}
			seqs, err := serialSequences(ctx, tx, live, t.name)
			if err != nil {
				return err
			}
			for _, s := range seqs {
				cycle := "NO CYCLE"
				if s.cycle {
					cycle = "CYCLE"
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE SEQUENCE %s AS %s INCREMENT %d MINVALUE %d MAXVALUE %d START %d CACHE %d %s OWNED BY %s.%s`,
					ident(shadow, s.name), s.typ, s.increment, s.min, s.max, s.start, s.cache, cycle, ident(shadow, t.name), ident(s.column))); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval('%s'::regclass)`,
					ident(shadow, t.name), ident(s.column), strings.ReplaceAll(ident(shadow, s.name), "'", "''"))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("projections: create shadow %s: %w", shadow, err)
	}
	return nil
}

type serialSequence struct {
	column, name, typ          string
	increment, min, max, start int64
	cache                      int64
	cycle                      bool
}

// serialSequences lists the table's columns whose values come from a sequence the column owns
// (bigserial), with the sequence's settings.
func serialSequences(ctx context.Context, q querier, schema, table string) ([]serialSequence, error) {
	rows, err := q.Query(ctx, `
		SELECT a.attname, s.relname, format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax, q.seqstart, q.seqcache, q.seqcycle
		FROM pg_attribute a
		JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass
		     AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
		JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
		JOIN pg_sequence q ON q.seqrelid = s.oid
		WHERE a.attrelid = ($1 || '.' || $2)::regclass AND a.attidentity = '' AND NOT a.attisdropped
		ORDER BY a.attnum`, ident(schema), ident(table))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (serialSequence, error) {
		var s serialSequence
		return s, r.Scan(&s.column, &s.name, &s.typ, &s.increment, &s.min, &s.max, &s.start, &s.cache, &s.cycle)
	})
}

// shadowDDL is what the shadow's tables get after the load, read from the live tables, in two
// parts. The keys are what the projection's own SQL needs to apply events to the shadow (Compare
// and Swap bring it up to the live checkpoint that way): the unique indexes (ON CONFLICT, lookups
// by key) and the read model's lookup indexes, with their constraints and the sequences'
// positions; every replay builds them. The rest (the other indexes, foreign keys, triggers,
// owner and grants, the checks) is what the tables need to go live: a shadow that is only
// compared and dropped never needs it, so it is built when asked (ReplayOptions.Complete) or by
// Swap.
type shadowDDL struct {
	keyIndexes, indexes []ddlStatement
	keys, rest          []string
}

// ddlStatement is a CREATE INDEX: it takes only a SHARE lock, so several build at once, even on
// one table; the biggest tables start first.
type ddlStatement struct {
	sql  string
	size int64 // the table's size in bytes
}

// runDDL builds the indexes two at a time (the database builds one per core), then runs the
// statements in order, each committing on its own: an index build is the longest transaction
// of a replay, and an open write transaction holds back every reader of the event log
// (eventstore.Postgres), so paymentd's runners see an event committed during a build only once
// that build ends (a few seconds for the largest tables at 100,000 payments). progress is told
// of each statement done.
func runDDL(ctx context.Context, pool *pgxpool.Pool, indexes []ddlStatement, after []string, progress func()) error {
	indexes = slices.Clone(indexes)
	slices.SortStableFunc(indexes, func(a, b ddlStatement) int { return cmp.Compare(b.size, a.size) })
	exec := func(ctx context.Context, sql string) error {
		if _, err := pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("projections: finish shadow: %s: %w", firstLine(sql), err)
		}
		return nil
	}
	finished := make(chan error, 1)
	dones := make(chan struct{})
	go func() {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(2)
		for _, ix := range indexes {
			g.Go(func() error {
				if err := exec(gctx, ix.sql); err != nil {
					return err
				}
				select {
				case dones <- struct{}{}:
				case <-gctx.Done():
				}
				return nil
			})
		}
		finished <- g.Wait()
	}()
	for waiting := true; waiting; {
		select {
		case <-dones:
			progress()
		case err := <-finished:
			if err != nil {
				return err
			}
			waiting = false
		}
	}
	for _, sql := range after {
		if err := exec(ctx, sql); err != nil {
			return err
		}
		progress()
	}
	return nil
}

// finishShadows gives every build's loaded tables their keys (and, when complete, the rest:
// see shadowDDL) and records the position.
func finishShadows(ctx context.Context, pool *pgxpool.Pool, builds []*build, st replayState, complete bool, progress func(done, total int)) error {
	var indexes []ddlStatement
	var after []string
	var rests []shadowDDL
	total := 0
	for _, b := range builds {
		d, err := readShadowDDL(ctx, pool, b.model, b.live, b.schema)
		if err != nil {
			return fmt.Errorf("projections: read the definitions of %s: %w", b.model.proj.Name(), err)
		}
		indexes = append(indexes, d.keyIndexes...)
		after = append(after, d.keys...)
		total += len(d.keyIndexes) + len(d.keys) + 1
		if complete {
			rests = append(rests, d)
			total += len(d.indexes) + len(d.rest) + len(b.model.checks)
		}
	}
	done := 0
	step := func() {
		done++
		progress(done, total)
	}
	if err := runDDL(ctx, pool, indexes, after, step); err != nil {
		return err
	}
	for i, b := range builds {
		if complete {
			if err := completeShadow(ctx, pool, b.model, b.schema, rests[i], step); err != nil {
				return err
			}
		}
		_, err := pool.Exec(ctx, `INSERT INTO `+ident(b.schema, "replay_state")+` (projection, position, replayed_position, events, complete)
			VALUES ($1, $2, $2, $3, $4)`, b.model.proj.Name(), st.position.String(), st.events, complete)
		if err != nil {
			return fmt.Errorf("projections: record the position of %s: %w", b.schema, err)
		}
		step()
	}
	return nil
}

// completeShadow builds the rest of a shadow's definitions (shadowDDL) and runs the read
// model's checks: what the triggers would have checked row by row had they been there during
// the load.
func completeShadow(ctx context.Context, pool *pgxpool.Pool, m *readModel, shadow string, d shadowDDL, step func()) error {
	if err := runDDL(ctx, pool, d.indexes, d.rest, step); err != nil {
		return err
	}
	for _, c := range m.checks {
		rows, err := pool.Query(ctx, fmt.Sprintf(c.query, ident(shadow)))
		if err != nil {
			return fmt.Errorf("projections: check %s of %s: %w", c.what, shadow, err)
		}
		bad, err := pgx.CollectRows(rows, pgx.RowTo[any])
		if err != nil {
			return fmt.Errorf("projections: check %s of %s: %w", c.what, shadow, err)
		}
		if len(bad) > 0 {
			return fmt.Errorf("projections: shadow %s has %s: %v", shadow, c.what, bad)
		}
		step()
	}
	return nil
}

// ensureComplete completes a shadow left by a replay that did not (Swap needs every
// definition).
func ensureComplete(ctx context.Context, pool *pgxpool.Pool, m *readModel, live, shadow string) error {
	var complete bool
	if err := pool.QueryRow(ctx, `SELECT complete FROM `+ident(shadow, "replay_state")).Scan(&complete); err != nil {
		return fmt.Errorf("projections: %s: %w", shadow, err)
	}
	if complete {
		return nil
	}
	d, err := readShadowDDL(ctx, pool, m, live, shadow)
	if err != nil {
		return fmt.Errorf("projections: read the definitions of %s: %w", m.proj.Name(), err)
	}
	if err := completeShadow(ctx, pool, m, shadow, d, func() {}); err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `UPDATE `+ident(shadow, "replay_state")+` SET complete = true`)
	return err
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// readShadowDDL reads from the catalog what the live tables have beyond columns, and returns
// the statements that give the same to the shadow tables.
func readShadowDDL(ctx context.Context, pool *pgxpool.Pool, m *readModel, live, shadow string) (shadowDDL, error) {
	var d shadowDDL
	var constraints, fks, triggers, owners, setvals []string
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// With only pg_catalog on the search path, the deparsing functions qualify every name,
		// so the one to point at the shadow can be found and replaced exactly.
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = pg_catalog`); err != nil {
			return err
		}
		inModel := map[string]string{} // live qualified name → shadow qualified name
		liveNames := map[string]string{}
		for _, t := range m.tables {
			var q string
			if err := tx.QueryRow(ctx, `SELECT ($1 || '.' || $2)::regclass::text`, ident(live), ident(t.name)).Scan(&q); err != nil {
				return err
			}
			inModel[q] = ident(shadow, t.name)
			liveNames[t.name] = q
		}
		for _, t := range m.tables {
			liveName, target := liveNames[t.name], ident(shadow, t.name)
			var size int64
			if err := tx.QueryRow(ctx, `SELECT pg_relation_size(($1 || '.' || $2)::regclass)`, ident(shadow), ident(t.name)).Scan(&size); err != nil {
				return err
			}
			// Every index, those that back constraints included.
			qrows, err := tx.Query(ctx, `SELECT c.relname, i.indisunique, pg_get_indexdef(i.indexrelid) FROM pg_index i
				JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY i.indexrelid`, liveName)
			if err != nil {
				return err
			}
			var name, def string
			var unique bool
			if _, err := pgx.ForEachRow(qrows, []any{&name, &unique, &def}, func() error {
				s, err := retarget(def, " ON "+liveName+" USING ", " ON "+target+" USING ")
				if unique || slices.Contains(m.lookups, name) {
					d.keyIndexes = append(d.keyIndexes, ddlStatement{sql: s, size: size})
				} else {
					d.indexes = append(d.indexes, ddlStatement{sql: s, size: size})
				}
				return err
			}); err != nil {
				return err
			}
			qrows, err = tx.Query(ctx, `SELECT conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint
				WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x', 'f') ORDER BY conname`, liveName)
			if err != nil {
				return err
			}
			var typ string
			if _, err := pgx.ForEachRow(qrows, []any{&name, &typ, &def}, func() error {
				switch typ {
				case "p":
					constraints = append(constraints, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s`, target, ident(name), ident(name)))
				case "u":
					constraints = append(constraints, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s`, target, ident(name), ident(name)))
				case "x":
					return fmt.Errorf("exclusion constraint %s: not supported by the replay", name)
				case "f":
					for from, to := range inModel {
						if strings.Contains(def, "REFERENCES "+from+"(") {
							def = strings.Replace(def, "REFERENCES "+from+"(", "REFERENCES "+to+"(", 1)
							break
						}
					}
					fks = append(fks, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s %s`, target, ident(name), def))
				}
				return nil
			}); err != nil {
				return err
			}
			qrows, err = tx.Query(ctx, `SELECT pg_get_triggerdef(oid) FROM pg_trigger
				WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`, liveName)
			if err != nil {
				return err
			}
			if _, err := pgx.ForEachRow(qrows, []any{&def}, func() error {
				s, err := retarget(def, " ON "+liveName+" ", " ON "+target+" ")
				triggers = append(triggers, s)
				return err
			}); err != nil {
				return err
			}
			owned, err := ownerAndGrants(ctx, tx, liveName, "TABLE", target)
			if err != nil {
				return err
			}
			owners = append(owners, owned...)
			seqs, err := serialSequences(ctx, tx, live, t.name)
			if err != nil {
				return err
			}
			for _, s := range seqs {
				var liveSeq string
				if err := tx.QueryRow(ctx, `SELECT ($1 || '.' || $2)::regclass::text`, ident(live), ident(s.name)).Scan(&liveSeq); err != nil {
					return err
				}
				grants, err := ownerAndGrants(ctx, tx, liveSeq, "SEQUENCE", ident(shadow, s.name))
				if err != nil {
					return err
				}
				owners = append(owners, grants...)
				setvals = append(setvals, fmt.Sprintf(`SELECT setval('%s', COALESCE(max(%s), 0) + 1, false) FROM %s`,
					strings.ReplaceAll(ident(shadow, s.name), "'", "''"), ident(s.column), target))
			}
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	d.keys = append(constraints, setvals...)
	d.rest = append(append(fks, triggers...), owners...)
	return d, nil
}

// retarget replaces the one occurrence of from in a deparsed definition.
func retarget(def, from, to string) (string, error) {
	if strings.Count(def, from) != 1 {
		return "", fmt.Errorf("cannot point %q at the shadow table", def)
	}
	return strings.Replace(def, from, to, 1), nil
}

// ownerAndGrants returns the statements that give target the owner and privileges of the live
// relation, when they differ from what creating it gave it (its creator, no grants).
func ownerAndGrants(ctx context.Context, tx pgx.Tx, liveName, kind, target string) ([]string, error) {
	var owner string
	var mine bool
	if err := tx.QueryRow(ctx, `SELECT pg_get_userbyid(relowner), relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
		FROM pg_class WHERE oid = $1::regclass`, liveName).Scan(&owner, &mine); err != nil {
		return nil, err
	}
	var out []string
	if !mine {
		out = append(out, fmt.Sprintf(`ALTER %s %s OWNER TO %s`, kind, target, ident(owner)))
	}
	rows, err := tx.Query(ctx, `SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
			a.privilege_type, a.is_grantable
		FROM pg_class c, aclexplode(c.relacl) a
		WHERE c.oid = $1::regclass AND a.grantee <> c.relowner`, liveName)
	if err != nil {
		return nil, err
	}
	var grantee, privilege string
	var grantable bool
	_, err = pgx.ForEachRow(rows, []any{&grantee, &privilege, &grantable}, func() error {
		s := fmt.Sprintf(`GRANT %s ON %s %s TO %s`, privilege, kind, target, grantee)
		if grantable {
			s += " WITH GRANT OPTION"
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// replayState is a shadow's replay_state row.
type replayState struct {
	projection string
	position   eventstore.Position // what the shadow's tables reflect
	replayed   eventstore.Position // the last event the replay read
	events     int64
}

// readState reads a shadow's replay_state; the schema must be a shadow (its name and table).
func readState(ctx context.Context, q querier, shadow string) (replayState, error) {
	var st replayState
	if !strings.HasPrefix(shadow, shadowPrefix) {
		return st, fmt.Errorf("projections: %q is not a replay shadow schema (they start with %s)", shadow, shadowPrefix)
	}
	var pos, replayed string
	err := q.QueryRow(ctx, `SELECT projection, position, replayed_position, events FROM `+ident(shadow, "replay_state")).
		Scan(&st.projection, &pos, &replayed, &st.events)
	if err != nil {
		return st, fmt.Errorf("projections: %s is not a finished replay shadow: %w", shadow, err)
	}
	if st.position, err = eventstore.ParsePosition(pos); err != nil {
		return st, err
	}
	if st.replayed, err = eventstore.ParsePosition(replayed); err != nil {
		return st, err
	}
	return st, nil
}

// DropShadow drops a shadow schema left by Replay, with everything in it. Only schemas that
// Replay made (the prefix and the replay_state table) are dropped.
func DropShadow(ctx context.Context, pool *pgxpool.Pool, shadow string) error {
	if !strings.HasPrefix(shadow, shadowPrefix) {
		return fmt.Errorf("projections: %q is not a replay shadow schema", shadow)
	}
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ident(shadow, "replay_state")).Scan(&ok); err != nil {
		return fmt.Errorf("projections: drop shadow %s: %w", shadow, err)
	}
	if !ok {
		return fmt.Errorf("projections: %q is not a replay shadow schema (no replay_state table)", shadow)
	}
	if _, err := pool.Exec(ctx, `DROP SCHEMA `+ident(shadow)+` CASCADE`); err != nil {
		return fmt.Errorf("projections: drop shadow %s: %w", shadow, err)
	}
	return nil
}
