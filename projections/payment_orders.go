package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// PaymentOrders maintains payment_orders (one row per payment) and payment_order_lines (one
// row per line). Each row remembers the stream version it reflects, so applying an event twice
// (a replay, two runners) changes nothing.
type PaymentOrders struct{}

var _ Projection = PaymentOrders{}

// Name implements Projection.
func (PaymentOrders) Name() string { return "payment_orders" }

// Apply implements Projection.
func (PaymentOrders) Apply(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent) error {
	e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		return err
	}
	switch e := e.(type) {
	case domain.CheckoutCreated:
		return insertCheckout(ctx, tx, e, r.Version)
	case domain.ConfirmationStarted:
		return update(ctx, tx, e.OrderID, r.Version, e.At, domain.StatusExecuting,
			`payment_key = $5, attempt = $6`, e.PaymentKey, e.Attempt)
	case domain.PaymentApproved:
		return update(ctx, tx, e.OrderID, r.Version, e.At, domain.StatusSuccess,
			`payment_key = $5, approved_at = $6, method = $7, last_transaction_key = $8,
			 failure_code = NULL, failure_message = NULL, failure_source = NULL, needs_review = false`,
			e.PaymentKey, e.ApprovedAt, e.Method, e.LastTransactionKey)
	case domain.PaymentRejected:
		return update(ctx, tx, e.OrderID, r.Version, e.At, domain.StatusFailure,
			`payment_key = COALESCE(NULLIF($5, ''), payment_key), failure_code = $6, failure_message = $7, failure_source = $8,
			 needs_review = false`,
			e.PaymentKey, e.Code, e.Message, e.Source)
	case domain.PaymentOutcomeUnknown:
		return update(ctx, tx, e.OrderID, r.Version, e.At, domain.StatusUnknown,
			`failure_code = $5, failure_message = $6, failure_source = 'unknown'`, e.Code, e.Message)
	case domain.PaymentExpired:
		return update(ctx, tx, e.OrderID, r.Version, e.At, domain.StatusExpired,
			`failure_code = 'EXPIRED', failure_message = $5, failure_source = NULL, needs_review = false`, e.Reason)
	case domain.PaymentApprovedAtPSP:
		return update(ctx, tx, e.OrderID, r.Version, e.At, domain.StatusSuccess,
			`payment_key = $5, approved_at = $6, method = $7, last_transaction_key = $8,
			 failure_code = NULL, failure_message = NULL, failure_source = NULL, needs_review = false`,
			e.PaymentKey, e.ApprovedAt, e.Method, e.LastTransactionKey)
	case domain.PaymentCanceledAtPSP: // a cancel made at Toss: ours, if one is pending, is still pending
		status := domain.StatusPartiallyCanceled
		if e.BalanceAfter.IsZero() {
			status = domain.StatusCanceled
		}
		return update(ctx, tx, e.OrderID, r.Version, e.At, status, `canceled_amount = canceled_amount + $5`, e.Amount)
	case domain.CancelRequested:
		return update(ctx, tx, e.OrderID, r.Version, e.At, "", `cancel_pending = true, cancel_in_recovery = false`)
	case domain.PaymentCanceled:
		status := domain.StatusPartiallyCanceled
		if e.BalanceAfter.IsZero() {
			status = domain.StatusCanceled
		}
		return update(ctx, tx, e.OrderID, r.Version, e.At, status,
			`cancel_pending = false, cancel_in_recovery = false, canceled_amount = canceled_amount + $5, needs_review = false`, e.Amount)
	case domain.CancelRejected:
		return update(ctx, tx, e.OrderID, r.Version, e.At, "", `cancel_pending = false, cancel_in_recovery = false, needs_review = false`)
	case domain.CancelOutcomeUnknown, domain.CancelRetried:
		h := e.Header()
		return update(ctx, tx, h.OrderID, r.Version, h.At, "", `cancel_in_recovery = true`)
	case domain.CancelRecoveryExhausted:
		return update(ctx, tx, e.OrderID, r.Version, e.At, "", `needs_review = true`)
	case domain.SettlementRecorded: // no column changes; the version moves
		h := e.Header()
		return update(ctx, tx, h.OrderID, r.Version, h.At, "", `cancel_pending = cancel_pending`)
	case domain.RecoveryExhausted:
		return update(ctx, tx, e.OrderID, r.Version, e.At, domain.StatusUnknown,
			`needs_review = true, failure_code = 'RECOVERY_EXHAUSTED', failure_message = $5, failure_source = 'recovery'`,
			fmt.Sprintf("recovery gave up after %d attempts: %s", e.Attempts, e.LastError))
	}
	return nil
}

func insertCheckout(ctx context.Context, tx pgx.Tx, e domain.CheckoutCreated, version int64) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO payment_orders (order_id, merchant_id, buyer_id, order_name, currency, total_amount,
		                            status, expires_at, created_at, updated_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
		ON CONFLICT (order_id) DO NOTHING`,
		e.OrderID, e.MerchantID, e.BuyerID, e.OrderName, e.Currency, e.TotalAmount,
		domain.StatusNotStarted, e.ExpiresAt, e.At, version)
	if err != nil {
		return fmt.Errorf("insert payment_orders: %w", err)
	}
	batch := &pgx.Batch{}
	for _, l := range e.Lines {
		batch.Queue(`
			INSERT INTO payment_order_lines (order_id, line_id, seller_id, product_id, amount, status)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (order_id, line_id) DO NOTHING`,
			e.OrderID, l.LineID, l.SellerID, l.ProductID, l.Amount, domain.StatusNotStarted)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("insert payment_order_lines: %w", err)
	}
	return nil
}

// update sets the status (unless it is "") and the columns in set ($5… are args) on a payment
// row that has not yet seen version, and copies the status to its lines.
func update(ctx context.Context, tx pgx.Tx, id domain.OrderID, version int64, at any, status domain.Status, set string, args ...any) error {
	all := append([]any{id, version, at, status}, args...)
	tag, err := tx.Exec(ctx, `
		UPDATE payment_orders SET status = COALESCE(NULLIF($4, ''), status), updated_at = $3, version = $2, `+set+`
		WHERE order_id = $1 AND version < $2`, all...)
	if err != nil {
		return fmt.Errorf("update payment_orders %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // already applied
	}
	if status == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE payment_order_lines SET status = $2 WHERE order_id = $1`, id, status); err != nil {
		return fmt.Errorf("update payment_order_lines %s: %w", id, err)
	}
	return nil
}
