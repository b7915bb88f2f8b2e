package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// Ledger maintains the double-entry ledger (journal_entries, postings) and the seller wallets
// (wallet_movements) from PaymentApproved, PaymentCanceled and SettlementRecorded, with the
// posting rules of domain/ledger.go. It keeps what it needs in its own tables, so it never
// depends on another projection's progress: the checkout lines (ledger_orders,
// ledger_order_lines, filled on CheckoutCreated) and each merchant's commission rate
// (ledger_commission_rates, from CommissionRateChanged).
//
// Every row is kept under the merchant of its order: each merchant has its own books, and the
// same seller id under two merchants is two wallets.
//
// Idempotent per event: journal_entries is unique on (event_id, kind) and an event whose first
// entry exists is skipped whole (its second entry, line and wallet updates included, all
// written in the same transaction), so replays and two runners change nothing. The database
// re-checks at commit that every entry balances within one merchant and one moment (a deferred
// constraint trigger).
//
// Times: postings carry the time of the fact, never the time the projection ran: the PSP's
// approvedAt / canceledAt, and for a settlement row the end of its soldDate and the start of
// its paidOutDate in KST (domain.SettlementEntries). A row whose dates cannot be read stops the
// projection with an error rather than being booked at a guessed time.
//
// Commission: the log is read in order, so when a CheckoutCreated is applied
// ledger_commission_rates holds the rate its merchant had at that point of the log (0 without
// a CommissionRateChanged); the order keeps that rate. A rebuild from position 0 replays the
// rate changes in the same order and so books every order exactly as it was booked live.
type Ledger struct{}

var _ Projection = Ledger{}

// LedgerName is the ledger projection's checkpoint name.
const LedgerName = "ledger"

// Name implements Projection.
func (Ledger) Name() string { return LedgerName }

// Apply implements Projection.
func (Ledger) Apply(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent) error {
	e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		return err
	}
	switch e := domain.Booked(e).(type) {
	case domain.CommissionRateChanged:
		return ledgerCommissionRate(ctx, tx, r, e)
	case domain.CheckoutCreated:
		return ledgerCheckout(ctx, tx, e)
	case domain.PaymentApproved:
		o, err := loadLedgerOrder(ctx, tx, e.OrderID)
		if err != nil {
			return err
		}
		entry, err := domain.ApprovalEntry(o.currency, o.lines, e.TotalAmount)
		if err != nil {
			return fmt.Errorf("ledger: approval of %s: %w", e.OrderID, err)
		}
		id, ok, err := writeEntry(ctx, tx, r, o, entry, e.LastTransactionKey, eventTime(e.ApprovedAt, e.At))
		if err != nil || !ok {
			return err
		}
		return sellerMovements(ctx, tx, id, o, entry, e.LastTransactionKey, eventTime(e.ApprovedAt, e.At))
	case domain.PaymentCanceled:
		o, err := loadLedgerOrder(ctx, tx, e.OrderID)
		if err != nil {
			return err
		}
		entry, after, err := domain.CancelEntry(o.currency, o.lines, e.Amount)
		if err != nil {
			return fmt.Errorf("ledger: cancel %s of %s: %w", e.CancelID, e.OrderID, err)
		}
		at := eventTime(e.CanceledAt, e.At)
		id, ok, err := writeEntry(ctx, tx, r, o, entry, e.TransactionKey, at)
		if err != nil || !ok {
			return err
		}
		batch := &pgx.Batch{}
		for _, l := range after {
			batch.Queue(`UPDATE ledger_order_lines SET canceled = $3, commission_reversed = $4 WHERE order_id = $1 AND line_id = $2`,
				e.OrderID, l.LineID, l.Canceled, l.CommissionReversed)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("ledger: update lines of %s: %w", e.OrderID, err)
		}
		return sellerMovements(ctx, tx, id, o, entry, e.TransactionKey, at)
	case domain.SettlementRecorded:
		return ledgerSettlement(ctx, tx, r, e)
	}
	return nil
}

// ledgerSettlement books a settlement row: the settlement entry, the payout entry when the
// payout is not zero, and the sellers' nets from pending to available at the payout.
func ledgerSettlement(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent, e domain.SettlementRecorded) error {
	o, err := loadLedgerOrder(ctx, tx, e.OrderID)
	if err != nil {
		return err
	}
	b, err := domain.SettlementEntries(o.currency, e)
	if err != nil {
		return fmt.Errorf("ledger: settlement %s of %s: %w", e.TransactionKey, e.OrderID, err)
	}
	if len(b.Settlement.Postings) == 0 {
		return nil // an all-zero row moves no money
	}
	id, ok, err := writeEntry(ctx, tx, r, o, b.Settlement, e.TransactionKey, b.SettledAt)
	if err != nil || !ok {
		return err
	}
	// The wallet movements hang on the entry that moves the money into the bank; a zero payout
	// has none, so they hang on the settlement entry, still at the payout's time.
	walletEntry := id
	if len(b.Payout.Postings) > 0 {
		payoutID, ok, err := writeEntry(ctx, tx, r, o, b.Payout, e.TransactionKey, b.PaidOutAt)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("ledger: settlement %s of %s: a payout entry exists without its settlement entry", e.TransactionKey, e.OrderID)
		}
		walletEntry = payoutID
	}
	return payOutWallets(ctx, tx, walletEntry, o, e.TransactionKey, b.PaidOutAt)
}

// eventTime is the PSP's time of the fact when known, else our clock's.
func eventTime(psp, ours time.Time) time.Time {
	if psp.IsZero() {
		return ours
	}
	return psp
}

type ledgerOrder struct {
	id       domain.OrderID
	merchant domain.MerchantID
	currency domain.Currency
	lines    []domain.LedgerLine
}

// ledgerCommissionRate records the merchant's rate from this point of the log on.
func ledgerCommissionRate(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent, e domain.CommissionRateChanged) error {
	if e.MerchantID == "" {
		return fmt.Errorf("ledger: commission rate change %s without a merchant", r.ID)
	}
	if err := domain.CheckCommissionRate(e.Rate); err != nil {
		return fmt.Errorf("ledger: commission rate of %s: %w", e.MerchantID, err)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO ledger_commission_rates (merchant_id, rate, changed_at, event_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (merchant_id) DO UPDATE SET rate = EXCLUDED.rate, changed_at = EXCLUDED.changed_at, event_id = EXCLUDED.event_id`,
		e.MerchantID, e.Rate, e.At, r.ID.String())
	if err != nil {
		return fmt.Errorf("ledger: commission rate of %s: %w", e.MerchantID, err)
	}
	return nil
}

func ledgerCheckout(ctx context.Context, tx pgx.Tx, e domain.CheckoutCreated) error {
	rate := decimal.Zero
	err := tx.QueryRow(ctx, `SELECT rate FROM ledger_commission_rates WHERE merchant_id = $1`, e.MerchantID).Scan(&rate)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("ledger: commission rate of %s: %w", e.MerchantID, err)
	}
	lines, err := domain.NewLedgerLines(e.Lines, rate, e.Currency)
	if err != nil {
		return fmt.Errorf("ledger: checkout %s: %w", e.OrderID, err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO ledger_orders (order_id, merchant_id, currency, total_amount, commission_rate)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING`,
		e.OrderID, e.MerchantID, e.Currency, e.TotalAmount, rate)
	if err != nil {
		return fmt.Errorf("ledger: insert ledger_orders %s: %w", e.OrderID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // already applied
	}
	batch := &pgx.Batch{}
	for i, l := range lines {
		batch.Queue(`INSERT INTO ledger_order_lines (order_id, seq, line_id, seller_id, amount, commission) VALUES ($1, $2, $3, $4, $5, $6)`,
			e.OrderID, i, l.LineID, l.SellerID, l.Amount, l.Commission)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("ledger: insert lines of %s: %w", e.OrderID, err)
	}
	return nil
}

func loadLedgerOrder(ctx context.Context, tx pgx.Tx, id domain.OrderID) (ledgerOrder, error) {
	o := ledgerOrder{id: id}
	err := tx.QueryRow(ctx, `SELECT merchant_id, currency FROM ledger_orders WHERE order_id = $1`, id).Scan(&o.merchant, &o.currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("ledger: order %s has no checkout in the ledger", id)
	}
	if err != nil {
		return o, fmt.Errorf("ledger: load order %s: %w", id, err)
	}
	rows, err := tx.Query(ctx, `
		SELECT line_id, seller_id, amount, commission, canceled, commission_reversed
		FROM ledger_order_lines WHERE order_id = $1 ORDER BY seq`, id)
	if err != nil {
		return o, fmt.Errorf("ledger: load lines of %s: %w", id, err)
	}
	o.lines, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.LedgerLine, error) {
		var l domain.LedgerLine
		return l, r.Scan(&l.LineID, &l.SellerID, &l.Amount, &l.Commission, &l.Canceled, &l.CommissionReversed)
	})
	if err != nil {
		return o, fmt.Errorf("ledger: load lines of %s: %w", id, err)
	}
	return o, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeEntry inserts the entry and its postings; ok is false when the event was already applied.
func writeEntry(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent, o ledgerOrder, entry domain.JournalEntry, txKey string, at time.Time) (id int64, ok bool, err error) {
	if err := entry.Balanced(); err != nil {
		return 0, false, err
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO journal_entries (event_id, order_id, merchant_id, kind, currency, transaction_key, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (event_id, kind) DO NOTHING RETURNING id`,
		r.ID.String(), o.id, o.merchant, entry.Kind, entry.Currency, nullIfEmpty(txKey), at).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("ledger: insert entry for %s: %w", o.id, err)
	}
	batch := &pgx.Batch{}
	for _, p := range entry.Postings {
		typ, err := domain.AccountTypeOf(p.Account)
		if err != nil {
			return 0, false, err
		}
		batch.Queue(`
			INSERT INTO postings (entry_id, merchant_id, account, account_type, seller_id, line_id, debit, credit, currency, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			id, o.merchant, p.Account, typ, nullIfEmpty(string(p.SellerID)), nullIfEmpty(string(p.LineID)), p.Debit, p.Credit, entry.Currency, at)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return 0, false, fmt.Errorf("ledger: insert postings for %s: %w", o.id, err)
	}
	return id, true, nil
}

// sellerMovements records the pending-bucket movement of every seller payable posting: an
// approval credits pending, a cancel debits it.
func sellerMovements(ctx context.Context, tx pgx.Tx, id int64, o ledgerOrder, entry domain.JournalEntry, txKey string, at time.Time) error {
	batch := &pgx.Batch{}
	for _, p := range entry.Postings {
		if p.SellerID == "" {
			continue
		}
		batch.Queue(`
			INSERT INTO wallet_movements (entry_id, merchant_id, seller_id, order_id, line_id, transaction_key, kind, bucket, amount, currency, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10)`,
			id, o.merchant, p.SellerID, o.id, p.LineID, nullIfEmpty(txKey), entry.Kind, p.Credit.Sub(p.Debit), entry.Currency, at)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("ledger: wallet movements of %s: %w", o.id, err)
	}
	return nil
}

// payOutWallets moves, for the paid-out transaction, each line's approval or cancel movement
// from pending to available at the payout (a cancel's negative movement moves money back). A
// transaction already paid out, or one the ledger has no movement for, moves nothing.
func payOutWallets(ctx context.Context, tx pgx.Tx, id int64, o ledgerOrder, txKey string, at time.Time) error {
	_, err := tx.Exec(ctx, `
		WITH moved AS (
			SELECT seller_id, line_id, sum(amount) AS amount, currency
			FROM wallet_movements
			WHERE order_id = $2 AND transaction_key = $3 AND kind IN ('approval', 'cancel')
			  AND NOT EXISTS (SELECT 1 FROM wallet_movements s
			                  WHERE s.order_id = $2 AND s.transaction_key = $3 AND s.kind = 'payout')
			GROUP BY seller_id, line_id, currency
			HAVING sum(amount) <> 0
		)
		INSERT INTO wallet_movements (entry_id, merchant_id, seller_id, order_id, line_id, transaction_key, kind, bucket, amount, currency, occurred_at)
		SELECT $1, $5, m.seller_id, $2, m.line_id, $3, 'payout', b.bucket, CASE b.bucket WHEN 'pending' THEN -m.amount ELSE m.amount END, m.currency, $4
		FROM moved m CROSS JOIN (VALUES ('pending'), ('available')) AS b(bucket)
		ORDER BY m.line_id, b.bucket DESC`,
		id, o.id, txKey, at, o.merchant)
	if err != nil {
		return fmt.Errorf("ledger: pay out wallets of %s %s: %w", o.id, txKey, err)
	}
	return nil
}

// ResetLedger deletes the ledger read model (the commission rates it applied included) and its
// checkpoint inside tx, so that the next runner rebuilds it from position 0.
func ResetLedger(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
		DELETE FROM wallet_movements;
		DELETE FROM postings;
		DELETE FROM journal_entries;
		DELETE FROM ledger_order_lines;
		DELETE FROM ledger_orders;
		DELETE FROM ledger_commission_rates;
		DELETE FROM projection_checkpoints WHERE name = 'ledger'`)
	if err != nil {
		return fmt.Errorf("ledger: reset: %w", err)
	}
	return nil
}
