package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/paymentledger/ledger/psp/toss"
)

// Toss's side, page by page with the merchant's own client.

// Lister is what reconciliation needs of a merchant's Toss client: one page of the transactions
// list and one of the settlement report. An error stops the run; nothing is compared from a
// partial list.
type Lister interface {
	ListTransactions(ctx context.Context, q toss.TransactionsQuery) ([]toss.Transaction, error)
	ListSettlements(ctx context.Context, q toss.SettlementsQuery) ([]toss.Settlement, error)
}

var _ Lister = (*toss.Client)(nil)

// transactions pages GET /v1/transactions over the window with startingAfter until a short page.
func transactions(ctx context.Context, l Lister, w window, size int, progress func(page, rows int)) ([]toss.Transaction, error) {
	var all []toss.Transaction
	after := ""
	for page := 1; ; page++ {
		rows, err := l.ListTransactions(ctx, toss.TransactionsQuery{StartDate: w.start, EndDate: w.end.Add(-time.Second), StartingAfter: after, Limit: size})
		if err != nil {
			return nil, fmt.Errorf("the Toss transactions %s..%s, page %d: %w", w.from, w.to, page, err)
		}
		all = append(all, rows...)
		if progress != nil {
			progress(page, len(all))
		}
		if len(rows) < size {
			return all, nil
		}
		last := rows[len(rows)-1].TransactionKey
		// A server that ignored startingAfter would send the same page forever.
		if last == "" || last == after {
			return nil, fmt.Errorf("the Toss transactions %s..%s, page %d: the page does not move past %q", w.from, w.to, page, after)
		}
		after = last
	}
}

// settlementRows pages GET /v1/settlements by soldDate from w.from to w.to + settlementDays
// (capped at today) until a short page.
func settlementRows(ctx context.Context, l Lister, w window, size int, progress func(page, rows int)) ([]toss.Settlement, error) {
	to, err := time.Parse(time.DateOnly, w.to)
	if err != nil {
		return nil, err
	}
	end := min(to.AddDate(0, 0, w.settlementDays).Format(time.DateOnly), w.today) // yyyy-MM-dd sorts as text
	var all []toss.Settlement
	prevFirst := ""
	for page := 1; ; page++ {
		rows, err := l.ListSettlements(ctx, toss.SettlementsQuery{StartDate: w.from, EndDate: end, Page: page, Size: size})
		if err != nil {
			return nil, fmt.Errorf("the Toss settlements %s..%s, page %d: %w", w.from, end, page, err)
		}
		// A server that ignored page would send the same rows forever.
		if len(rows) > 0 && page > 1 && rows[0].TransactionKey == prevFirst {
			return nil, fmt.Errorf("the Toss settlements %s..%s: page %d repeats page %d", w.from, end, page, page-1)
		}
		if len(rows) > 0 {
			prevFirst = rows[0].TransactionKey
		}
		all = append(all, rows...)
		if progress != nil {
			progress(page, len(all))
		}
		if len(rows) < size {
			return all, nil
		}
	}
}
