package queries

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paymentledger/ledger/domain"
)

// ReconciliationRun is the summary of one reconciliation run of one merchant
// (reconciliation_runs): what it compared, how many differences of each category it found, how
// many it corrected from Toss's truth (applied) and how many it left (unresolved).
type ReconciliationRun struct {
	ID               int64          `json:"id"`
	From             string         `json:"from"` // KST days, yyyy-MM-dd
	To               string         `json:"to"`
	Apply            bool           `json:"apply"`
	Trigger          string         `json:"trigger"` // cli or daily
	StartedAt        time.Time      `json:"startedAt"`
	FinishedAt       time.Time      `json:"finishedAt"`
	Payments         int            `json:"payments"`
	TossTransactions int            `json:"tossTransactions"`
	TossSettlements  int            `json:"tossSettlements"`
	Counts           map[string]int `json:"counts"`
	Unresolved       int            `json:"unresolved"`
	Applied          int            `json:"applied"`
	Error            string         `json:"error,omitempty"`
}

// RunsQuery selects a page of runs, newest first.
type RunsQuery struct {
	Limit  int    // 1–100, default 20
	Cursor string // from the previous page's NextCursor; empty for the first page
}

// RunsPage is one page of runs. NextCursor is empty on the last page.
type RunsPage struct {
	Runs       []ReconciliationRun `json:"runs"`
	NextCursor string              `json:"nextCursor,omitempty"`
}

// ReconciliationRuns returns the merchant's reconciliation runs, newest first (by start), with
// keyset pagination.
func (s *Service) ReconciliationRuns(ctx context.Context, merchant domain.MerchantID, q RunsQuery) (RunsPage, error) {
	if merchant == "" {
		return RunsPage{}, errors.New("queries: runs without a merchant")
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return RunsPage{}, domain.Errorf(domain.ErrInvalidInput, "limit must be between 1 and %d", MaxPageSize)
	}
	var after *time.Time
	var afterID int64
	if q.Cursor != "" {
		f, err := decodeCursorFields(q.Cursor, 3)
		if err != nil {
			return RunsPage{}, err
		}
		t, timeOK := cursorTime(f[1])
		id, err := strconv.ParseInt(f[2], 10, 64)
		if f[0] != "runs" || !timeOK || err != nil {
			return RunsPage{}, domain.Errorf(domain.ErrInvalidInput, "cursor %q is not one this list returned", clip(q.Cursor, 40))
		}
		after, afterID = &t, id
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, from_date::text, to_date::text, apply, trigger, started_at, finished_at, payments, toss_transactions,
		       toss_settlements, counts, unresolved, applied, COALESCE(error, '')
		FROM reconciliation_runs
		WHERE merchant_id = $1 AND ($2::timestamptz IS NULL OR (started_at, id) < ($2, $3))
		ORDER BY started_at DESC, id DESC
		LIMIT $4`, merchant, after, afterID, q.Limit+1)
	if err != nil {
		return RunsPage{}, fmt.Errorf("list reconciliation runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReconciliationRun, error) {
		var run ReconciliationRun
		err := r.Scan(&run.ID, &run.From, &run.To, &run.Apply, &run.Trigger, &run.StartedAt, &run.FinishedAt, &run.Payments,
			&run.TossTransactions, &run.TossSettlements, &run.Counts, &run.Unresolved, &run.Applied, &run.Error)
		run.StartedAt, run.FinishedAt = run.StartedAt.In(domain.KST), run.FinishedAt.In(domain.KST)
		return run, err
	})
	if err != nil {
		return RunsPage{}, fmt.Errorf("list reconciliation runs: %w", err)
	}
	page := RunsPage{Runs: runs}
	if len(runs) > q.Limit {
		page.Runs = runs[:q.Limit]
		last := page.Runs[q.Limit-1]
		page.NextCursor = encodeCursorFields("runs", strconv.FormatInt(last.StartedAt.UnixMicro(), 10), strconv.FormatInt(last.ID, 10))
	}
	if page.Runs == nil {
		page.Runs = []ReconciliationRun{}
	}
	return page, nil
}

// MaxOpenDifferences bounds OpenDifferences: the list is a person's work queue, not an export.
const MaxOpenDifferences = 200

// OrderDifference is an open difference with the order it belongs to.
type OrderDifference struct {
	OrderID string `json:"orderId"`
	OpenDifference
	LastRunID int64 `json:"lastRunId"`
}

// OpenDifferences lists the merchant's differences with Toss that reconciliation left open,
// most recently seen first, at most MaxOpenDifferences (more reports whether there are more).
func (s *Service) OpenDifferences(ctx context.Context, merchant domain.MerchantID) (diffs []OrderDifference, more bool, err error) {
	rows, err := s.pool.Query(ctx, `
		SELECT order_id, category, transaction_key, ours, toss, detail, first_seen, last_run_id
		FROM reconciliation_differences
		WHERE merchant_id = $1 AND resolved_at IS NULL
		ORDER BY last_seen DESC, order_id, category, transaction_key
		LIMIT $2`, merchant, MaxOpenDifferences+1)
	if err != nil {
		return nil, false, fmt.Errorf("open differences: %w", err)
	}
	diffs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderDifference, error) {
		var d OrderDifference
		err := r.Scan(&d.OrderID, &d.Category, &d.TransactionKey, &d.Ours, &d.Toss, &d.Detail, &d.Since, &d.LastRunID)
		d.Since = d.Since.In(domain.KST)
		return d, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("open differences: %w", err)
	}
	if len(diffs) > MaxOpenDifferences {
		return diffs[:MaxOpenDifferences], true, nil
	}
	return diffs, false, nil
}
