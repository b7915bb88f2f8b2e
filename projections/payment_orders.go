package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// PaymentOrders maintains payment_orders (one row per payment) and payment_order_lines (one
// row per line). Each row remembers the stream version it reflects, so applying an event twice
// (a replay, two runners) changes nothing.
//
// The rules (applyPaymentOrders) read and write rows through paymentOrdersStore: Apply gives
// them the SQL store on the runner's transaction, a replay gives them its in-memory store and
// bulk-loads what they built (replay.go). There is no second copy of the rules.
type PaymentOrders struct{}

var _ Projection = PaymentOrders{}

// PaymentOrdersName is the payment_orders projection's checkpoint name.
const PaymentOrdersName = "payment_orders"

// Name implements Projection.
func (PaymentOrders) Name() string { return PaymentOrdersName }

// Apply implements Projection.
func (PaymentOrders) Apply(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent) error {
	e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		return err
	}
	return applyPaymentOrders(ctx, sqlPaymentOrders{tx}, r, e)
}

// paymentOrderRow is a payment_orders row; nullable columns are pointers.
type paymentOrderRow struct {
	OrderID            domain.OrderID
	MerchantID         domain.MerchantID
	BuyerID            domain.BuyerID
	OrderName          string
	Currency           domain.Currency
	TotalAmount        decimal.Decimal
	Status             domain.Status
	PaymentKey         *string
	Method             *string
	Attempt            int
	ApprovedAt         *time.Time
	LastTransactionKey *string
	FailureCode        *string
	FailureMessage     *string
	FailureSource      *string
	ExpiresAt          time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
	Version            int64
	NeedsReview        bool
	CanceledAmount     decimal.Decimal
	CancelPending      bool
	CancelInRecovery   bool
}

const paymentOrderColumns = `order_id, merchant_id, buyer_id, order_name, currency, total_amount, status, payment_key,
	method, attempt, approved_at, last_transaction_key, failure_code, failure_message, failure_source, expires_at,
	created_at, updated_at, version, needs_review, canceled_amount, cancel_pending, cancel_in_recovery`

// values lists the row's columns in paymentOrderColumns order.
func (o *paymentOrderRow) values() []any {
	return []any{o.OrderID, o.MerchantID, o.BuyerID, o.OrderName, o.Currency, o.TotalAmount, o.Status, o.PaymentKey,
		o.Method, o.Attempt, o.ApprovedAt, o.LastTransactionKey, o.FailureCode, o.FailureMessage, o.FailureSource, o.ExpiresAt,
		o.CreatedAt, o.UpdatedAt, o.Version, o.NeedsReview, o.CanceledAmount, o.CancelPending, o.CancelInRecovery}
}

func (o *paymentOrderRow) pointers() []any {
	return []any{&o.OrderID, &o.MerchantID, &o.BuyerID, &o.OrderName, &o.Currency, &o.TotalAmount, &o.Status, &o.PaymentKey,
		&o.Method, &o.Attempt, &o.ApprovedAt, &o.LastTransactionKey, &o.FailureCode, &o.FailureMessage, &o.FailureSource, &o.ExpiresAt,
		&o.CreatedAt, &o.UpdatedAt, &o.Version, &o.NeedsReview, &o.CanceledAmount, &o.CancelPending, &o.CancelInRecovery}
}

// paymentOrderLineRow is a payment_order_lines row.
type paymentOrderLineRow struct {
	OrderID   domain.OrderID
	LineID    domain.LineID
	SellerID  domain.SellerID
	ProductID domain.ProductID
	Amount    decimal.Decimal
	Status    domain.Status
}

const paymentOrderLineColumns = `order_id, line_id, seller_id, product_id, amount, status`

func (l *paymentOrderLineRow) values() []any {
	return []any{l.OrderID, l.LineID, l.SellerID, l.ProductID, l.Amount, l.Status}
}

// paymentOrdersStore is where the rules read and write the read model. get returns nil when the
// payment has no row. insert writes a new payment and its lines unless the payment has a row
// already (then it changes nothing). update writes every column of a row get returned, and when
// linesStatus is set copies its status to its lines.
type paymentOrdersStore interface {
	get(ctx context.Context, id domain.OrderID) (*paymentOrderRow, error)
	insert(ctx context.Context, o *paymentOrderRow, lines []paymentOrderLineRow) error
	update(ctx context.Context, o *paymentOrderRow, linesStatus bool) error
}

// applyPaymentOrders is the payment_orders projection's rules: a checkout creates the rows; a
// later event of the payment changes them once (the row's version must be below the event's).
func applyPaymentOrders(ctx context.Context, st paymentOrdersStore, r eventstore.RecordedEvent, e domain.Event) error {
	if co, ok := e.(domain.CheckoutCreated); ok {
		o := &paymentOrderRow{OrderID: co.OrderID, MerchantID: co.MerchantID, BuyerID: co.BuyerID, OrderName: co.OrderName,
			Currency: co.Currency, TotalAmount: co.TotalAmount, Status: domain.StatusNotStarted, ExpiresAt: co.ExpiresAt,
			CreatedAt: co.At, UpdatedAt: co.At, Version: r.Version, CanceledAmount: decimal.Zero}
		lines := make([]paymentOrderLineRow, 0, len(co.Lines))
		for _, l := range co.Lines {
			if slices.ContainsFunc(lines, func(x paymentOrderLineRow) bool { return x.LineID == l.LineID }) {
				continue // a line id given twice: the first one is the line
			}
			lines = append(lines, paymentOrderLineRow{OrderID: co.OrderID, LineID: l.LineID, SellerID: l.SellerID,
				ProductID: l.ProductID, Amount: l.Amount, Status: domain.StatusNotStarted})
		}
		return st.insert(ctx, o, lines)
	}
	status, change := paymentOrderChange(e)
	if change == nil {
		return nil // not an event of this read model
	}
	h := e.Header()
	o, err := st.get(ctx, h.OrderID)
	if err != nil || o == nil || o.Version >= r.Version {
		return err // no checkout seen, or already applied
	}
	change(o)
	o.UpdatedAt, o.Version = h.At, r.Version
	if status != "" {
		o.Status = status
	}
	return st.update(ctx, o, status != "")
}

func ptr[T any](v T) *T { return &v }

// paymentOrderChange says how e changes a payment's row: the new status ("" keeps it) and the
// other columns. change is nil for events this read model does not record.
func paymentOrderChange(e domain.Event) (status domain.Status, change func(*paymentOrderRow)) {
	switch e := e.(type) {
	case domain.ConfirmationStarted:
		return domain.StatusExecuting, func(o *paymentOrderRow) {
			o.PaymentKey, o.Attempt = ptr(string(e.PaymentKey)), e.Attempt
		}
	case domain.PaymentApproved:
		return domain.StatusSuccess, func(o *paymentOrderRow) {
			o.PaymentKey, o.ApprovedAt, o.Method, o.LastTransactionKey = ptr(string(e.PaymentKey)), ptr(e.ApprovedAt), ptr(e.Method), ptr(e.LastTransactionKey)
			o.FailureCode, o.FailureMessage, o.FailureSource, o.NeedsReview = nil, nil, nil, false
		}
	case domain.PaymentRejected:
		return domain.StatusFailure, func(o *paymentOrderRow) {
			if e.PaymentKey != "" {
				o.PaymentKey = ptr(string(e.PaymentKey))
			}
			o.FailureCode, o.FailureMessage, o.FailureSource, o.NeedsReview = ptr(e.Code), ptr(e.Message), ptr(string(e.Source)), false
		}
	case domain.PaymentOutcomeUnknown:
		return domain.StatusUnknown, func(o *paymentOrderRow) {
			o.FailureCode, o.FailureMessage, o.FailureSource = ptr(e.Code), ptr(e.Message), ptr("unknown")
		}
	case domain.PaymentExpired:
		return domain.StatusExpired, func(o *paymentOrderRow) {
			o.FailureCode, o.FailureMessage, o.FailureSource, o.NeedsReview = ptr("EXPIRED"), ptr(e.Reason), nil, false
		}
	case domain.PaymentApprovedAtPSP: // Toss approved what we had not booked (a read-back)
		return domain.StatusSuccess, func(o *paymentOrderRow) {
			o.PaymentKey, o.ApprovedAt, o.Method, o.LastTransactionKey = ptr(string(e.PaymentKey)), ptr(e.ApprovedAt), ptr(e.Method), ptr(e.LastTransactionKey)
			o.FailureCode, o.FailureMessage, o.FailureSource, o.NeedsReview = nil, nil, nil, false
		}
	case domain.PaymentCanceledAtPSP: // a cancel made at Toss: ours, if one is pending, is still pending
		status := domain.StatusPartiallyCanceled
		if e.BalanceAfter.IsZero() {
			status = domain.StatusCanceled
		}
		return status, func(o *paymentOrderRow) { o.CanceledAmount = o.CanceledAmount.Add(e.Amount) }
	case domain.CancelRequested:
		return "", func(o *paymentOrderRow) { o.CancelPending, o.CancelInRecovery = true, false }
	case domain.PaymentCanceled:
		status := domain.StatusPartiallyCanceled
		if e.BalanceAfter.IsZero() {
			status = domain.StatusCanceled
		}
		return status, func(o *paymentOrderRow) {
			o.CancelPending, o.CancelInRecovery, o.NeedsReview = false, false, false
			o.CanceledAmount = o.CanceledAmount.Add(e.Amount)
		}
	case domain.CancelRejected:
		return "", func(o *paymentOrderRow) { o.CancelPending, o.CancelInRecovery, o.NeedsReview = false, false, false }
	case domain.CancelOutcomeUnknown, domain.CancelRetried:
		return "", func(o *paymentOrderRow) { o.CancelInRecovery = true }
	case domain.CancelRecoveryExhausted:
		return "", func(o *paymentOrderRow) { o.NeedsReview = true }
	case domain.SettlementRecorded: // no column changes; the version moves
		return "", func(*paymentOrderRow) {}
	case domain.RecoveryExhausted:
		return domain.StatusUnknown, func(o *paymentOrderRow) {
			o.NeedsReview, o.FailureCode, o.FailureSource = true, ptr("RECOVERY_EXHAUSTED"), ptr("recovery")
			o.FailureMessage = ptr(fmt.Sprintf("recovery gave up after %d attempts: %s", e.Attempts, e.LastError))
		}
	}
	return "", nil
}

// sqlPaymentOrders is the store on the read-model tables, inside the caller's transaction.
// Table names are unqualified: the transaction's search_path chooses the live tables or a
// replay's shadow copies (replay.go).
type sqlPaymentOrders struct{ tx pgx.Tx }

func (s sqlPaymentOrders) get(ctx context.Context, id domain.OrderID) (*paymentOrderRow, error) {
	o := &paymentOrderRow{}
	err := s.tx.QueryRow(ctx, `SELECT `+paymentOrderColumns+` FROM payment_orders WHERE order_id = $1`, id).Scan(o.pointers()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read payment_orders %s: %w", id, err)
	}
	return o, nil
}

func (s sqlPaymentOrders) insert(ctx context.Context, o *paymentOrderRow, lines []paymentOrderLineRow) error {
	tag, err := s.tx.Exec(ctx, `INSERT INTO payment_orders (`+paymentOrderColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		ON CONFLICT (order_id) DO NOTHING`, o.values()...)
	if err != nil {
		return fmt.Errorf("insert payment_orders %s: %w", o.OrderID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // already applied
	}
	batch := &pgx.Batch{}
	for _, l := range lines {
		batch.Queue(`INSERT INTO payment_order_lines (`+paymentOrderLineColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`, l.values()...)
	}
	if err := s.tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("insert payment_order_lines %s: %w", o.OrderID, err)
	}
	return nil
}

func (s sqlPaymentOrders) update(ctx context.Context, o *paymentOrderRow, linesStatus bool) error {
	_, err := s.tx.Exec(ctx, `UPDATE payment_orders SET (`+paymentOrderColumns+`) =
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		WHERE order_id = $1`, o.values()...)
	if err != nil {
		return fmt.Errorf("update payment_orders %s: %w", o.OrderID, err)
	}
	if !linesStatus {
		return nil
	}
	if _, err := s.tx.Exec(ctx, `UPDATE payment_order_lines SET status = $2 WHERE order_id = $1`, o.OrderID, o.Status); err != nil {
		return fmt.Errorf("update payment_order_lines %s: %w", o.OrderID, err)
	}
	return nil
}
