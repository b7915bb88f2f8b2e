package tosssim

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/shopspring/decimal"
)

//go:embed sql/*.sql
var migrationFiles embed.FS

// Every table of the simulator, goose's version table included, is in the schema tosssim, so
// nothing of it meets the project's own tables (public.goose_db_version among them).
const (
	// ownerLockKey is the session advisory lock a persisted simulator holds on its database
	// for as long as it is open: the ASCII bytes of "tosssim". PostgreSQL scopes advisory locks
	// to a database, so the lock stands for "this database's tosssim schema".
	ownerLockKey int64 = 0x746f737373696d
	// storeTimeout bounds one save, or Open's migrations and load. A save that runs out of it
	// loses the connection (pgx closes a connection whose query is canceled).
	storeTimeout = 10 * time.Second
)

// ErrSchemaOwned is the error of Open when another simulator, in this process or any other,
// holds the database. Test it with errors.Is.
var ErrSchemaOwned = errors.New("tosssim: another simulator owns this database's tosssim schema")

var (
	errStoreClosed    = errors.New("tosssim: store closed (the simulator was closed)")
	errConnectionLost = errors.New("tosssim: the store's connection was lost, so the last change may or may not be saved and the owner lock is gone; every change is refused until the simulator is reopened")
)

// Open returns a Simulator whose truth is saved in the tosssim schema of pool's database, and
// reloaded from it: a restarted simulator answers as the previous one would have. The doc of
// the package lists what is saved and what is not.
//
// Open connects once more to pool's database, with pool's connection settings, and keeps that
// connection until Close: it holds the owner lock (a session advisory lock) and carries every
// write, so a simulator that lost its lock cannot write either. It then creates or migrates
// the schema (goose, version table tosssim.goose_db_version) and loads the state. The pool
// itself serves the migrations only; Open does not keep it, and the caller may close it once
// Open has returned. The database role must be allowed to create a schema on first use.
//
// If another simulator holds the database, Open fails at once with an error wrapping
// ErrSchemaOwned. Other errors wrap the cause. ctx bounds Open only; the simulator's writes
// do not depend on it. On error nothing is left open. cfg is used as by New, except that the
// clock is read to the microsecond, PostgreSQL's resolution, so what is reloaded is exactly
// what was decided on.
func Open(ctx context.Context, cfg Config, pool *pgxpool.Pool) (*Simulator, error) {
	st, err := openStore(ctx, pool)
	if err != nil {
		return nil, err
	}
	s := newSimulator(cfg)
	clock := s.cfg.Now
	s.cfg.Now = func() time.Time { return clock().Truncate(time.Microsecond) }
	if err := st.load(ctx, s); err != nil {
		st.close()
		return nil, err
	}
	s.store = st
	s.startWebhooks()
	return s, nil
}

// pgStore saves the changes of one simulator. Its connection holds the owner lock; every
// write goes through it, one at a time.
type pgStore struct {
	mu   sync.Mutex
	conn *pgx.Conn
	// broken is why every save fails from now on: the store was closed, or its connection
	// was lost. Nil while the store works.
	broken error
}

func openStore(ctx context.Context, pool *pgxpool.Pool) (*pgStore, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("tosssim: connect: %w", err)
	}
	st := &pgStore{conn: conn}
	if err := st.lock(ctx); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	if err := migrate(ctx, conn, pool); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// lock takes the owner lock, or says who holds it.
func (st *pgStore) lock(ctx context.Context) error {
	var ok bool
	if err := st.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", ownerLockKey).Scan(&ok); err != nil {
		return fmt.Errorf("tosssim: take the owner lock: %w", err)
	}
	if ok {
		return nil
	}
	// A bigint advisory lock shows in pg_locks as classid (high half), objid (low half) and
	// objsubid 1.
	var (
		db  string
		pid *int32
	)
	err := st.conn.QueryRow(ctx, `
		SELECT current_database(),
		       (SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		         WHERE l.locktype = 'advisory' AND d.datname = current_database()
		           AND l.classid = ($1::bigint >> 32)::oid
		           AND l.objid = ($1::bigint & 4294967295)::oid
		           AND l.objsubid = 1 AND l.granted
		         LIMIT 1)`, ownerLockKey).Scan(&db, &pid)
	switch {
	case err != nil:
		return ErrSchemaOwned
	case pid == nil: // released since: still refused, as the simulator that had it may go on
		return fmt.Errorf("%w (database %q)", ErrSchemaOwned, db)
	default:
		return fmt.Errorf("%w (database %q, held by server process %d)", ErrSchemaOwned, db, *pid)
	}
}

// migrate creates the schema and applies the embedded migrations. Only the lock's holder
// runs it, so goose needs no lock of its own.
func migrate(ctx context.Context, conn *pgx.Conn, pool *pgxpool.Pool) error {
	// goose keeps its version table in the schema, so the schema comes first.
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS tosssim"); err != nil {
		return fmt.Errorf("tosssim: create schema tosssim: %w", err)
	}
	files, err := fs.Sub(migrationFiles, "sql")
	if err != nil {
		return fmt.Errorf("tosssim: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithTableName("tosssim.goose_db_version"),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("tosssim: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("tosssim: migrations: up: %w", err)
	}
	return nil
}

// close releases the owner lock and the connection. Unlocking first makes the release
// synchronous: after a mere close, the server ends the session (and frees the lock) only a
// moment later, and an Open right after Close could still find the lock held.
func (st *pgStore) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if errors.Is(st.broken, errStoreClosed) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if !st.conn.IsClosed() {
		_, _ = st.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", ownerLockKey)
	}
	_ = st.conn.Close(ctx)
	st.broken = errStoreClosed
}

// The upsert writes every field a payment can change; the others are set once, at insert.
const upsertPayment = `
INSERT INTO tosssim.payments (payment_key, order_id, order_name, method, total_amount,
    balance_amount, status, requested_at, authenticated_at, approved_at, approve_no,
    last_transaction_key, failure_code, failure_message, last_cancel_at, approvals,
    confirm_error, confirm_error_left, confirm_error_outcome, retired, settlement_fee_rate)
VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7, $8, $9, $10, $11, $12, $13, $14, $15,
    $16, $17, $18, $19, $20, $21::numeric)
ON CONFLICT (payment_key) DO UPDATE SET
    balance_amount = EXCLUDED.balance_amount,
    status = EXCLUDED.status,
    approved_at = EXCLUDED.approved_at,
    approve_no = EXCLUDED.approve_no,
    last_transaction_key = EXCLUDED.last_transaction_key,
    failure_code = EXCLUDED.failure_code,
    failure_message = EXCLUDED.failure_message,
    last_cancel_at = EXCLUDED.last_cancel_at,
    approvals = EXCLUDED.approvals,
    confirm_error_left = EXCLUDED.confirm_error_left,
    retired = EXCLUDED.retired,
    settlement_fee_rate = EXCLUDED.settlement_fee_rate`

// save writes c in one transaction: all of it or nothing. If the connection is lost on the
// way, the outcome is unknown (the commit may have reached the server) and the owner lock is
// gone with the session, so the store refuses every later change rather than let memory and
// the database drift apart; reopening the simulator reloads the truth.
func (st *pgStore) save(c *change) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.broken != nil {
		return st.broken
	}
	b := &pgx.Batch{}
	for _, p := range c.payments {
		var failCode, failMsg *string
		if p.failure != nil {
			failCode, failMsg = &p.failure.Code, &p.failure.Message
		}
		b.Queue(upsertPayment, p.key, p.orderID, p.orderName, p.method, p.total.String(),
			p.balance.String(), string(p.status), p.requestedAt, p.authenticatedAt,
			optTime(p.approvedAt), optString(p.approveNo), optString(p.lastTxKey), failCode, failMsg,
			optTime(p.lastCancelAt), p.approvals, optString(p.confirmErr), p.confirmErrLeft,
			optString(string(p.confirmOutcome)), p.retired, optDecimal(p.feeRate))
	}
	for _, tx := range c.txs {
		b.Queue(`INSERT INTO tosssim.transactions (transaction_key, payment_key, order_id, method,
			status, transaction_at, amount) VALUES ($1, $2, $3, $4, $5, $6, $7::numeric)`,
			tx.key, tx.paymentKey, tx.orderID, tx.method, string(tx.status), tx.at, tx.amount.String())
	}
	for _, nc := range c.cancels {
		r := nc.record
		b.Queue(`INSERT INTO tosssim.cancels (payment_key, seq, transaction_key, cancel_reason,
			canceled_at, cancel_amount, refundable_amount) VALUES ($1, $2, $3, $4, $5, $6::numeric, $7::numeric)`,
			nc.paymentKey, nc.seq, r.transactionKey, r.reason, r.at, r.amount.String(), r.refundable.String())
	}
	for orderID, n := range c.confirms {
		b.Queue(`INSERT INTO tosssim.confirm_counts (order_id, confirms) VALUES ($1, $2)
			ON CONFLICT (order_id) DO UPDATE SET confirms = EXCLUDED.confirms`, orderID, n)
	}
	if a := c.answer; a != nil {
		// An expired answer's scope may be claimed again: the new answer replaces it.
		b.Queue(`INSERT INTO tosssim.idempotent_answers (scope, first_use, status, body)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (scope) DO UPDATE SET first_use = EXCLUDED.first_use,
			    status = EXCLUDED.status, body = EXCLUDED.body`,
			a.scope, a.firstUse, a.resp.status, a.resp.body)
	}

	// Not the request's context: a client that goes away must not cancel a save half-way,
	// which would cost the connection.
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, st.conn, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil && st.conn.IsClosed() {
		st.broken = fmt.Errorf("%w: %w", errConnectionLost, err)
		return st.broken
	}
	if err != nil {
		return fmt.Errorf("tosssim: save: %w", err)
	}
	return nil
}

// load reads the saved state into s, which is not yet shared, and drops the idempotent
// answers whose TTL has passed by s's clock.
func (st *pgStore) load(ctx context.Context, s *Simulator) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, st.conn, func(tx pgx.Tx) error {
		payments, err := loadPayments(ctx, tx)
		if err != nil {
			return err
		}
		if err := loadCancels(ctx, tx, payments); err != nil {
			return err
		}
		for _, p := range payments {
			if p.retired {
				s.retiredKeys[p.key] = true
				continue
			}
			s.byKey[p.key] = p
			s.byOrder[p.orderID] = p
		}
		if s.txs, err = loadTransactions(ctx, tx); err != nil {
			return err
		}
		for _, t := range s.txs {
			s.txByKey[t.key] = t
		}
		if err := loadConfirmCounts(ctx, tx, s.byOrderN); err != nil {
			return err
		}
		return loadAnswers(ctx, tx, s.idem, s.cfg.Now().Add(-s.cfg.IdempotencyTTL))
	})
	if err != nil {
		return fmt.Errorf("tosssim: load: %w", err)
	}
	return nil
}

func loadPayments(ctx context.Context, tx pgx.Tx) (map[string]*payment, error) {
	rows, _ := tx.Query(ctx, `
		SELECT payment_key, order_id, order_name, method, total_amount::text, balance_amount::text,
		       status, requested_at, authenticated_at, approved_at, approve_no, last_transaction_key,
		       failure_code, failure_message, last_cancel_at, approvals, confirm_error,
		       confirm_error_left, confirm_error_outcome, retired, settlement_fee_rate::text
		  FROM tosssim.payments`)
	var (
		p                                             payment
		total, balance, status                        string
		approvedAt, lastCancelAt                      *time.Time
		approveNo, lastTx, failCode, failMsg, errCode *string
		errOutcome, feeRate                           *string
		payments                                      = map[string]*payment{}
	)
	_, err := pgx.ForEachRow(rows, []any{&p.key, &p.orderID, &p.orderName, &p.method, &total, &balance,
		&status, &p.requestedAt, &p.authenticatedAt, &approvedAt, &approveNo, &lastTx,
		&failCode, &failMsg, &lastCancelAt, &p.approvals, &errCode,
		&p.confirmErrLeft, &errOutcome, &p.retired, &feeRate}, func() error {
		q := p
		var err error
		if q.total, err = parseStoredAmount(total); err != nil {
			return fmt.Errorf("payment %s: total_amount: %w", q.key, err)
		}
		if q.balance, err = parseStoredAmount(balance); err != nil {
			return fmt.Errorf("payment %s: balance_amount: %w", q.key, err)
		}
		q.status = Status(status)
		q.approvedAt, q.lastCancelAt = deref(approvedAt), deref(lastCancelAt)
		q.approveNo, q.lastTxKey, q.confirmErr = deref(approveNo), deref(lastTx), deref(errCode)
		q.confirmOutcome = Status(deref(errOutcome))
		if feeRate != nil {
			rate, err := parseStoredAmount(*feeRate)
			if err != nil {
				return fmt.Errorf("payment %s: settlement_fee_rate: %w", q.key, err)
			}
			q.feeRate = &rate
		}
		if failCode != nil {
			q.failure = &failure{Code: *failCode, Message: deref(failMsg)}
		}
		payments[q.key] = &q
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	return payments, nil
}

func loadCancels(ctx context.Context, tx pgx.Tx, payments map[string]*payment) error {
	rows, _ := tx.Query(ctx, `
		SELECT payment_key, seq, transaction_key, cancel_reason, canceled_at,
		       cancel_amount::text, refundable_amount::text
		  FROM tosssim.cancels ORDER BY payment_key, seq`)
	var (
		paymentKey, amount, refundable string
		seq                            int
		r                              cancelRecord
	)
	_, err := pgx.ForEachRow(rows, []any{&paymentKey, &seq, &r.transactionKey, &r.reason, &r.at,
		&amount, &refundable}, func() error {
		p := payments[paymentKey] // the foreign key guarantees it exists
		if seq != len(p.cancels) {
			return fmt.Errorf("payment %s: cancel %d is missing", paymentKey, len(p.cancels))
		}
		var err error
		if r.amount, err = parseStoredAmount(amount); err != nil {
			return fmt.Errorf("payment %s: cancel %d: %w", paymentKey, seq, err)
		}
		if r.refundable, err = parseStoredAmount(refundable); err != nil {
			return fmt.Errorf("payment %s: cancel %d: %w", paymentKey, seq, err)
		}
		p.cancels = append(p.cancels, r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancels: %w", err)
	}
	return nil
}

func loadTransactions(ctx context.Context, tx pgx.Tx) ([]*transaction, error) {
	rows, _ := tx.Query(ctx, `
		SELECT transaction_key, payment_key, order_id, method, status, transaction_at, amount::text
		  FROM tosssim.transactions ORDER BY transaction_at, transaction_key`)
	var (
		t              transaction
		status, amount string
		txs            []*transaction
	)
	_, err := pgx.ForEachRow(rows, []any{&t.key, &t.paymentKey, &t.orderID, &t.method, &status,
		&t.at, &amount}, func() error {
		u := t
		u.status = Status(status)
		var err error
		if u.amount, err = parseStoredAmount(amount); err != nil {
			return fmt.Errorf("transaction %s: %w", u.key, err)
		}
		txs = append(txs, &u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("transactions: %w", err)
	}
	return txs, nil
}

func loadConfirmCounts(ctx context.Context, tx pgx.Tx, into map[string]int) error {
	rows, _ := tx.Query(ctx, `SELECT order_id, confirms FROM tosssim.confirm_counts`)
	var (
		orderID string
		n       int
	)
	_, err := pgx.ForEachRow(rows, []any{&orderID, &n}, func() error {
		into[orderID] = n
		return nil
	})
	if err != nil {
		return fmt.Errorf("confirm counts: %w", err)
	}
	return nil
}

// loadAnswers deletes the answers first used at or before cutoff (replay ends at firstUse +
// TTL) and restores the others.
func loadAnswers(ctx context.Context, tx pgx.Tx, into *idemStore, cutoff time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM tosssim.idempotent_answers WHERE first_use <= $1`, cutoff); err != nil {
		return fmt.Errorf("idempotent answers: drop expired: %w", err)
	}
	rows, _ := tx.Query(ctx, `SELECT scope, first_use, status, body FROM tosssim.idempotent_answers`)
	var a storedAnswer
	_, err := pgx.ForEachRow(rows, []any{&a.scope, &a.firstUse, &a.resp.status, &a.resp.body}, func() error {
		into.restore(a) // pgx scans each bytea into a new slice, so a's body is this row's own
		return nil
	})
	if err != nil {
		return fmt.Errorf("idempotent answers: %w", err)
	}
	return nil
}

// parseStoredAmount reads a numeric column sent as text, so the simulator needs no decimal
// codec on the connection.
func parseStoredAmount(v string) (decimal.Decimal, error) {
	return decimal.NewFromString(v)
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// optDecimal sends a nullable numeric as text, as the amounts are.
func optDecimal(d *decimal.Decimal) *string {
	if d == nil {
		return nil
	}
	v := d.String()
	return &v
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
