package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/domain"
)

// saveRun writes the run's summary (reconciliation_runs, migration 0016) and, for a run that
// finished (complete), brings the needs-review list (reconciliation_differences, 0017) up to
// date in the same transaction: the needs-review differences found are opened or refreshed, and
// the open rows of the compared orders that the run no longer finds are closed. A difference the
// run reports with resolution "none" keeps an open row open, since it is still there. A run that
// stopped early compared only part of the range, so it leaves the list alone.
func saveRun(ctx context.Context, pool *pgxpool.Pool, rep *Report, trigger string, examined []domain.OrderID, complete bool) error {
	// The summary of a run cut short by its context is saved all the same: it says why.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	counts, err := json.Marshal(rep.Counts)
	if err != nil {
		return err
	}
	var errText *string
	if rep.Err != "" {
		errText = &rep.Err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			INSERT INTO reconciliation_runs (merchant_id, from_date, to_date, apply, trigger, started_at, finished_at,
			                                 payments, toss_transactions, toss_settlements, counts, unresolved, applied, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
			rep.Merchant, rep.From, rep.To, rep.Apply, trigger, rep.StartedAt, rep.FinishedAt,
			rep.Payments, rep.TossTransactions, rep.TossSettlements, counts, rep.Unresolved, rep.Applied, errText).Scan(&rep.RunID); err != nil {
			return err
		}
		if !complete {
			return nil
		}
		batch := &pgx.Batch{}
		var orders, categories, txKeys []string
		for _, d := range rep.Differences {
			if d.Resolution == Applied {
				continue
			}
			orders, categories, txKeys = append(orders, d.OrderID), append(categories, string(d.Category)), append(txKeys, d.TransactionKey)
			if d.Resolution != NeedsReview {
				continue
			}
			batch.Queue(`
				INSERT INTO reconciliation_differences (merchant_id, order_id, category, transaction_key, payment_key, ours, toss, detail,
				                                        first_run_id, last_run_id, first_seen, last_seen)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $10)
				ON CONFLICT (merchant_id, order_id, category, transaction_key) DO UPDATE SET
					payment_key = EXCLUDED.payment_key, ours = EXCLUDED.ours, toss = EXCLUDED.toss, detail = EXCLUDED.detail,
					last_run_id = EXCLUDED.last_run_id, last_seen = EXCLUDED.last_seen,
					first_run_id = CASE WHEN reconciliation_differences.resolved_at IS NULL THEN reconciliation_differences.first_run_id ELSE EXCLUDED.first_run_id END,
					first_seen = CASE WHEN reconciliation_differences.resolved_at IS NULL THEN reconciliation_differences.first_seen ELSE EXCLUDED.first_seen END,
					resolved_at = NULL, resolved_run_id = NULL`,
				rep.Merchant, d.OrderID, d.Category, d.TransactionKey, d.PaymentKey, d.Ours, d.Toss, d.Detail, rep.RunID, rep.FinishedAt)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		ids := make([]string, len(examined))
		for i, id := range examined {
			ids[i] = string(id)
		}
		_, err := tx.Exec(ctx, `
			UPDATE reconciliation_differences d SET resolved_at = $3, resolved_run_id = $4
			WHERE d.merchant_id = $1 AND d.resolved_at IS NULL AND d.order_id = ANY($2)
			  AND NOT EXISTS (SELECT 1 FROM unnest($5::text[], $6::text[], $7::text[]) AS k(o, c, t)
			                  WHERE k.o = d.order_id AND k.c = d.category AND k.t = d.transaction_key)`,
			rep.Merchant, ids, rep.FinishedAt, rep.RunID, orders, categories, txKeys)
		return err
	})
	if err != nil {
		return fmt.Errorf("reconcile: save the run of %s: %w", rep.Merchant, err)
	}
	return nil
}
