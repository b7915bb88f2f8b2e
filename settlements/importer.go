// Package settlements imports Toss's settlement report (GET /v1/settlements) into the event
// store: every row becomes one SettlementRecorded event on its payment's stream, once per
// transactionKey, so an import can be repeated at will. It owns the importer and the daily
// schedule paymentd runs; the ledger posts the recorded settlements.
package settlements

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// Lister is the PSP call the importer needs: one page of the settlement report. It returns an
// error when the page cannot be read; the importer stops there.
type Lister interface {
	ListSettlements(ctx context.Context, q toss.SettlementsQuery) ([]toss.Settlement, error)
}

// Recorder records one row of a merchant's settlement report. recorded is false for a row
// already recorded. A *domain.Error is about that row alone (an order the merchant does not
// have, a payment not approved, bad figures); any other error means the store is failing and the
// import stops.
type Recorder interface {
	RecordSettlement(ctx context.Context, merchant domain.MerchantID, row toss.Settlement) (recorded bool, err error)
}

var (
	_ Lister   = (*toss.Client)(nil)
	_ Recorder = (*commands.Service)(nil)
)

// PageSize is the page size the importer asks for.
const PageSize = 500

// maxProblems bounds Summary.Problems; the counters stay exact.
const maxProblems = 100

// Summary is what an import did. Rows = Recorded + AlreadyRecorded + UnknownOrders + Errors.
type Summary struct {
	From, To        string // the soldDate range, yyyy-MM-dd
	Pages           int    // pages read, the last (short) one included
	Rows            int
	Recorded        int // new SettlementRecorded events
	AlreadyRecorded int // rows whose transactionKey was recorded before
	UnknownOrders   int // rows for an orderId the ledger does not have: skipped
	Errors          int // rows refused (see Problems)
	Problems        []Problem
}

// Problem is one row that was not recorded.
type Problem struct {
	TransactionKey, OrderID string
	Err                     error
}

// Progress is reported after each page, with the totals so far.
type Progress struct {
	Page     int // 1-based number of the page just processed
	PageRows int
	Summary  Summary
}

// Importer reads one merchant's settlement report page by page (with the merchant's Toss
// client) and records each row. It is safe for concurrent use; concurrent imports of the same
// dates record each row once.
type Importer struct {
	client   Lister
	rec      Recorder
	merchant domain.MerchantID
	logger   *slog.Logger
}

// NewImporter returns an Importer of merchant's report, read through client. logger may be nil.
func NewImporter(client Lister, rec Recorder, merchant domain.MerchantID, logger *slog.Logger) *Importer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Importer{client: client, rec: rec, merchant: merchant, logger: logger.With("merchantId", merchant)}
}

// Source is one merchant whose report to import, with its Toss client.
type Source struct {
	Merchant domain.MerchantID
	Client   Lister
}

// AllMerchants imports the report of every merchant Sources lists (those with a Toss key), one
// after the other; the scheduler runs it. A merchant whose import fails does not stop the
// others: the errors are joined.
type AllMerchants struct {
	Sources func(ctx context.Context) ([]Source, error)
	Rec     Recorder
	Logger  *slog.Logger
}

// Import implements the scheduler's job: the summaries of every merchant, added up.
func (a AllMerchants) Import(ctx context.Context, from, to string, progress func(Progress)) (Summary, error) {
	sources, err := a.Sources(ctx)
	if err != nil {
		return Summary{From: from, To: to}, fmt.Errorf("settlement import: merchants: %w", err)
	}
	total := Summary{From: from, To: to}
	var errs []error
	for _, src := range sources {
		sum, err := NewImporter(src.Client, a.Rec, src.Merchant, a.Logger).Import(ctx, from, to, progress)
		total.Pages += sum.Pages
		total.Rows += sum.Rows
		total.Recorded += sum.Recorded
		total.AlreadyRecorded += sum.AlreadyRecorded
		total.UnknownOrders += sum.UnknownOrders
		total.Errors += sum.Errors
		total.Problems = append(total.Problems, sum.Problems...)
		if err != nil {
			errs = append(errs, fmt.Errorf("merchant %s: %w", src.Merchant, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return total, errors.Join(errs...)
}

// ValidateRange checks that from and to are yyyy-MM-dd dates with from ≤ to.
func ValidateRange(from, to string) error {
	var errs []error
	for _, d := range []struct{ name, v string }{{"from", from}, {"to", to}} {
		if _, err := time.Parse(time.DateOnly, d.v); err != nil {
			errs = append(errs, fmt.Errorf("%s date %q is not yyyy-MM-dd", d.name, d.v))
		}
	}
	if len(errs) == 0 && to < from {
		errs = append(errs, fmt.Errorf("from %s is after to %s", from, to))
	}
	return errors.Join(errs...)
}

// Import records the rows sold from from to to (yyyy-MM-dd, both included). It reads pages 1,
// 2, … of PageSize rows until a short page. Rows of unknown orders and rows the domain refuses
// are counted and skipped; a page that cannot be read, a failing store or ctx's end stops the
// import with an error, and the Summary says how far it got. Rerunning is safe: recorded rows
// count as AlreadyRecorded. progress, if not nil, is called after each page.
func (im *Importer) Import(ctx context.Context, from, to string, progress func(Progress)) (Summary, error) {
	sum := Summary{From: from, To: to}
	if err := ValidateRange(from, to); err != nil {
		return sum, domain.Errorf(domain.ErrInvalidInput, "settlement import: %v", err)
	}
	var prevFirst string
	for page := 1; ; page++ {
		rows, err := im.client.ListSettlements(ctx, toss.SettlementsQuery{StartDate: from, EndDate: to, Page: page, Size: PageSize})
		if err != nil {
			return sum, fmt.Errorf("settlement import %s..%s: page %d: %w", from, to, page, err)
		}
		sum.Pages++
		// A server that ignored page would send the same rows forever.
		if len(rows) > 0 && page > 1 && rows[0].TransactionKey == prevFirst {
			return sum, fmt.Errorf("settlement import %s..%s: page %d repeats page %d", from, to, page, page-1)
		}
		if len(rows) > 0 {
			prevFirst = rows[0].TransactionKey
		}
		for _, row := range rows {
			if err := im.record(ctx, row, &sum); err != nil {
				return sum, fmt.Errorf("settlement import %s..%s: page %d: %w", from, to, page, err)
			}
		}
		if progress != nil {
			progress(Progress{Page: page, PageRows: len(rows), Summary: sum})
		}
		if len(rows) < PageSize {
			im.logger.Info("settlement import done", "from", from, "to", to, "pages", sum.Pages, "rows", sum.Rows,
				"recorded", sum.Recorded, "alreadyRecorded", sum.AlreadyRecorded, "unknownOrders", sum.UnknownOrders, "errors", sum.Errors)
			return sum, nil
		}
	}
}

// record records one row and counts it. It returns an error only when the import must stop.
func (im *Importer) record(ctx context.Context, row toss.Settlement, sum *Summary) error {
	sum.Rows++
	recorded, err := im.rec.RecordSettlement(ctx, im.merchant, row)
	var derr *domain.Error
	switch {
	case err == nil && recorded:
		sum.Recorded++
		return nil
	case err == nil:
		sum.AlreadyRecorded++
		return nil
	case ctx.Err() != nil:
		sum.Rows--
		return ctx.Err()
	case errors.Is(err, domain.ErrPaymentNotFound):
		sum.UnknownOrders++
		im.logger.Warn("settlement for an unknown order skipped", "orderId", row.OrderID, "transactionKey", row.TransactionKey)
	case errors.As(err, &derr):
		sum.Errors++
		im.logger.Error("settlement row refused", "orderId", row.OrderID, "transactionKey", row.TransactionKey, "error", err)
	default:
		sum.Rows--
		return fmt.Errorf("record %s of order %s: %w", row.TransactionKey, row.OrderID, err)
	}
	if len(sum.Problems) < maxProblems {
		sum.Problems = append(sum.Problems, Problem{TransactionKey: row.TransactionKey, OrderID: row.OrderID, Err: err})
	}
	return nil
}
