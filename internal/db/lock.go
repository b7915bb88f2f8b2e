package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Session advisory lock keys (pg_try_advisory_lock) of the jobs only one paymentd instance may
// run at a time. Arbitrary but fixed: every instance must use the same values, and no two jobs
// may share one. The in-process Toss simulator's owner lock is its own (tosssim).
const (
	LockSettlementImport int64 = 0x5e771e_0001
	LockReconciliation   int64 = 0x7ec0_c11e_0001
	LockAuditSeal        int64 = 0x5ea1_0001
	LockRelay            int64 = 0x7e1a_0001
)

// TryLocked runs fn while holding the session advisory lock key, on the connection that holds
// it (fn may use it, for a transaction of its own). It reports whether fn ran: false, with no
// error, when another session holds the lock. The lock is released on the same connection; if
// that fails, the connection is closed, which releases it too, and the failure is joined to
// fn's error.
func TryLocked(ctx context.Context, pool *pgxpool.Pool, key int64, fn func(conn *pgxpool.Conn) error) (ran bool, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("advisory lock %#x: %w", key, err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
		conn.Release()
		return false, fmt.Errorf("advisory lock %#x: %w", key, err)
	}
	if !locked {
		conn.Release()
		return false, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); uerr != nil {
			_ = conn.Conn().Close(uctx) // the pool drops a closed connection
			err = errors.Join(err, fmt.Errorf("advisory unlock %#x: %w", key, uerr))
		}
		conn.Release()
	}()
	return true, fn(conn)
}
