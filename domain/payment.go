package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Status is a payment's place in the state machine of DESIGN.md.
type Status string

const (
	StatusNotStarted        Status = "NOT_STARTED"
	StatusExecuting         Status = "EXECUTING"
	StatusSuccess           Status = "SUCCESS"
	StatusFailure           Status = "FAILURE"
	StatusUnknown           Status = "UNKNOWN"
	StatusExpired           Status = "EXPIRED"
	StatusPartiallyCanceled Status = "PARTIALLY_CANCELED"
	StatusCanceled          Status = "CANCELED"
)

// Failure is why a payment failed.
type Failure struct {
	Code    string
	Message string
	Source  RejectionSource
}

// Payment is the state of one payment, rebuilt from its events by Rebuild. Only the deciders
// below produce new events; Apply never validates.
type Payment struct {
	OrderID     OrderID
	MerchantID  MerchantID
	BuyerID     BuyerID
	OrderName   string
	Currency    Currency
	TotalAmount decimal.Decimal
	Lines       []Line
	CreatedAt   time.Time
	ExpiresAt   time.Time

	Status            Status
	PaymentKey        PaymentKey
	Attempt           int    // the latest confirm attempt, 0 before any
	PSPIdempotencyKey string // the latest attempt's key
	ApprovedAt        time.Time
	Method            string
	LastTxKey         string
	Failure           *Failure
	LastUnknownCode   string
	AttemptStartedAt  time.Time // when the latest confirm attempt started
	NeedsReview       bool      // recovery gave up; a person must decide

	Balance        decimal.Decimal // what is left to cancel (the total once approved)
	CanceledAmount decimal.Decimal
	LastCanceledAt time.Time // when we recorded the latest refund (our clock); the PSP spaces cancels
	Cancels        map[CancelID]Cancel
	CancelOrder    []CancelID      // cancels in the order they were requested
	Settled        map[string]bool // transaction keys with a SettlementRecorded

	Version int64 // number of events applied: the stream's version
}

// Rebuild folds events (in stream order) into a Payment.
func Rebuild(events []Event) (Payment, error) {
	var p Payment
	for _, e := range events {
		if err := p.Apply(e); err != nil {
			return Payment{}, err
		}
	}
	return p, nil
}

// Apply evolves the state by one event. It does not check rules (the decider did); an unknown
// event type is an error.
func (p *Payment) Apply(e Event) error {
	switch e := e.(type) {
	case CheckoutCreated:
		p.OrderID, p.MerchantID, p.BuyerID = e.OrderID, e.MerchantID, e.BuyerID
		p.OrderName, p.Currency, p.TotalAmount = e.OrderName, e.Currency, e.TotalAmount
		p.Lines = append([]Line(nil), e.Lines...)
		p.CreatedAt, p.ExpiresAt = e.At, e.ExpiresAt
		p.Status = StatusNotStarted
	case ConfirmationStarted:
		p.Status = StatusExecuting
		p.PaymentKey, p.Attempt, p.PSPIdempotencyKey = e.PaymentKey, e.Attempt, e.PSPIdempotencyKey
		p.AttemptStartedAt = e.At
	case PaymentApproved:
		p.Status = StatusSuccess
		p.ApprovedAt, p.Method, p.LastTxKey = e.ApprovedAt, e.Method, e.LastTransactionKey
		p.Failure, p.NeedsReview = nil, false
		p.Balance = e.TotalAmount
	case PaymentRejected:
		p.Status = StatusFailure
		if e.PaymentKey != "" {
			p.PaymentKey = e.PaymentKey
		}
		p.Failure = &Failure{Code: e.Code, Message: e.Message, Source: e.Source}
		p.NeedsReview = false
	case PaymentOutcomeUnknown:
		p.Status = StatusUnknown
		p.LastUnknownCode = e.Code
	case PaymentExpired:
		p.Status, p.NeedsReview = StatusExpired, false
	case RecoveryExhausted:
		p.Status, p.NeedsReview = StatusUnknown, true
	default:
		if !p.applyCancelEvent(e) {
			return fmt.Errorf("domain: apply: unknown event %T", e)
		}
	}
	p.Version++
	return nil
}

// CheckoutLine is one requested line of a checkout.
type CheckoutLine struct {
	SellerID  string
	ProductID string
	Amount    decimal.Decimal
}

// CheckoutCommand asks for a new payment. The caller chooses the order id.
type CheckoutCommand struct {
	OrderID    OrderID
	MerchantID MerchantID
	BuyerID    string
	OrderName  string
	Currency   Currency
	Lines      []CheckoutLine
	TTL        time.Duration // how long the checkout may wait for a confirm
}

// Limits on a checkout.
const (
	MaxLines         = 100
	MaxOrderNameLen  = 100 // Toss's orderName limit
	MaxIdentifierLen = 64
)

// DefaultCheckoutTTL covers Toss's 30-minute payment window plus its 10-minute confirm window.
const DefaultCheckoutTTL = 40 * time.Minute

// Checkout decides a new payment: it validates every field (all problems at once) and computes
// the total from the lines.
func Checkout(cmd CheckoutCommand, now time.Time) (CheckoutCreated, error) {
	var errs []error
	if _, err := ParseOrderID(string(cmd.OrderID)); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("merchantId", string(cmd.MerchantID), MaxIdentifierLen); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("buyerId", cmd.BuyerID, MaxIdentifierLen); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("orderName", cmd.OrderName, MaxOrderNameLen); err != nil {
		errs = append(errs, err)
	}
	if cmd.Currency != KRW {
		errs = append(errs, Errorf(ErrInvalidInput, "currency %q is not supported; use KRW", cmd.Currency))
	}
	if len(cmd.Lines) == 0 || len(cmd.Lines) > MaxLines {
		errs = append(errs, Errorf(ErrInvalidInput, "lines must hold 1 to %d lines, got %d", MaxLines, len(cmd.Lines)))
	}
	total := decimal.Zero
	lines := make([]Line, 0, len(cmd.Lines))
	for i, l := range cmd.Lines {
		if err := checkText(fmt.Sprintf("lines[%d].sellerId", i), l.SellerID, MaxIdentifierLen); err != nil {
			errs = append(errs, err)
		}
		if err := checkText(fmt.Sprintf("lines[%d].productId", i), l.ProductID, MaxIdentifierLen); err != nil {
			errs = append(errs, err)
		}
		if err := CheckAmount(l.Amount, cmd.Currency); err != nil {
			errs = append(errs, Errorf(ErrInvalidAmount, "lines[%d].amount: %s", i, err.(*Error).Message))
		}
		total = total.Add(l.Amount)
		lines = append(lines, Line{
			LineID:    LineID(fmt.Sprintf("L%d", i+1)),
			SellerID:  SellerID(l.SellerID),
			ProductID: ProductID(l.ProductID),
			Amount:    l.Amount,
		})
	}
	if len(errs) == 0 {
		if err := CheckAmount(total, cmd.Currency); err != nil {
			errs = append(errs, Errorf(ErrInvalidAmount, "total: %s", err.(*Error).Message))
		}
	}
	if len(errs) > 0 {
		return CheckoutCreated{}, joinInvalid(errs)
	}
	ttl := cmd.TTL
	if ttl <= 0 {
		ttl = DefaultCheckoutTTL
	}
	return CheckoutCreated{
		EventHeader: EventHeader{OrderID: cmd.OrderID, MerchantID: cmd.MerchantID, At: now},
		BuyerID:     BuyerID(cmd.BuyerID),
		OrderName:   cmd.OrderName,
		Currency:    cmd.Currency,
		TotalAmount: total,
		Lines:       lines,
		ExpiresAt:   now.Add(ttl),
	}, nil
}

// joinInvalid merges several validation errors into one *Error that keeps the code of the first
// (so a single problem keeps its precise code) and lists every message.
func joinInvalid(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	var first *Error
	errors.As(errs[0], &first)
	msg := first.Message
	for _, err := range errs[1:] {
		var e *Error
		if errors.As(err, &e) {
			msg += "; " + e.Message
		}
	}
	return &Error{Kind: KindInvalid, Code: ErrInvalidInput.Code, Message: msg}
}

// ConfirmCommand is the successUrl step: the browser hands back what Toss gave it.
type ConfirmCommand struct {
	PaymentKey PaymentKey
	OrderID    OrderID
	Amount     decimal.Decimal
}

// DecideConfirm decides a confirm request.
//
//   - NOT_STARTED: the checkout must not be expired (else PaymentExpired is recorded) and the
//     amount must equal the checkout total (else PaymentRejected with source validation is
//     recorded: a tampered amount never reaches the PSP). Otherwise ConfirmationStarted, attempt 1.
//   - EXECUTING, UNKNOWN, SUCCESS, PARTIALLY_CANCELED, CANCELED with the same paymentKey and
//     amount: no events; the caller answers with the current state and calls no PSP.
//   - the same states with another paymentKey or amount, FAILURE and EXPIRED: a typed error.
func (p Payment) DecideConfirm(cmd ConfirmCommand, now time.Time) ([]Event, error) {
	h := EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now}
	switch p.Status {
	case StatusNotStarted:
		if !now.Before(p.ExpiresAt) {
			return []Event{PaymentExpired{EventHeader: h, Reason: "checkout expired at " + p.ExpiresAt.UTC().Format(time.RFC3339) + " before a confirm"}}, nil
		}
		if !cmd.Amount.Equal(p.TotalAmount) {
			return []Event{PaymentRejected{
				EventHeader: h,
				PaymentKey:  cmd.PaymentKey,
				Code:        ErrAmountMismatch.Code,
				Message:     fmt.Sprintf("confirm amount %s does not match the checkout total %s", cmd.Amount, p.TotalAmount),
				Source:      SourceValidation,
			}}, nil
		}
		return []Event{ConfirmationStarted{
			EventHeader:       h,
			PaymentKey:        cmd.PaymentKey,
			Amount:            cmd.Amount,
			Attempt:           1,
			PSPIdempotencyKey: ConfirmIdempotencyKey(p.OrderID, 1),
		}}, nil
	case StatusExecuting, StatusUnknown, StatusSuccess, StatusPartiallyCanceled, StatusCanceled:
		if cmd.PaymentKey != p.PaymentKey {
			return nil, Errorf(ErrPaymentKeyMismatch, "order %s is %s with another paymentKey", p.OrderID, p.Status)
		}
		if !cmd.Amount.Equal(p.TotalAmount) {
			return nil, Errorf(ErrAmountMismatch, "confirm amount %s does not match the checkout total %s", cmd.Amount, p.TotalAmount)
		}
		return nil, nil
	case StatusFailure:
		return nil, Errorf(ErrNotConfirmable, "order %s failed (%s); start a new checkout", p.OrderID, p.Failure.Code)
	case StatusExpired:
		return nil, Errorf(ErrCheckoutExpired, "order %s expired; start a new checkout", p.OrderID)
	}
	return nil, Errorf(ErrIllegalTransition, "confirm in status %q", p.Status)
}

// Approval is the PSP's DONE answer.
type Approval struct {
	PaymentKey         PaymentKey
	OrderID            OrderID
	TotalAmount        decimal.Decimal
	ApprovedAt         time.Time
	Method             string
	LastTransactionKey string
}

// DecideApproved records a PSP approval. It must match the payment (order, paymentKey, amount):
// a mismatch is ErrPSPResponseMismatch and nothing is recorded. An approval already recorded is
// a no-op, so duplicate deliveries are harmless.
func (p Payment) DecideApproved(a Approval, now time.Time) ([]Event, error) {
	if a.OrderID != p.OrderID || a.PaymentKey != p.PaymentKey || !a.TotalAmount.Equal(p.TotalAmount) {
		return nil, Errorf(ErrPSPResponseMismatch, "PSP approved order %s key %s amount %s; expected order %s key %s amount %s",
			a.OrderID, a.PaymentKey, a.TotalAmount, p.OrderID, p.PaymentKey, p.TotalAmount)
	}
	switch p.Status {
	case StatusExecuting, StatusUnknown:
		return []Event{PaymentApproved{
			EventHeader:        EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
			PaymentKey:         a.PaymentKey,
			ApprovedAt:         a.ApprovedAt,
			Method:             a.Method,
			TotalAmount:        a.TotalAmount,
			LastTransactionKey: a.LastTransactionKey,
		}}, nil
	case StatusSuccess, StatusPartiallyCanceled, StatusCanceled:
		return nil, nil
	}
	return nil, Errorf(ErrIllegalTransition, "approval of order %s in status %s", p.OrderID, p.Status)
}

// DecideRejected records a final PSP failure for the current attempt.
func (p Payment) DecideRejected(code, message string, now time.Time) ([]Event, error) {
	switch p.Status {
	case StatusExecuting, StatusUnknown:
		return []Event{PaymentRejected{
			EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
			PaymentKey:  p.PaymentKey,
			Code:        code,
			Message:     message,
			Source:      SourcePSP,
		}}, nil
	case StatusFailure:
		return nil, nil
	}
	return nil, Errorf(ErrIllegalTransition, "rejection of order %s in status %s", p.OrderID, p.Status)
}

// DecideUnknown records that the current attempt ended without a known outcome.
func (p Payment) DecideUnknown(code, message string, now time.Time) ([]Event, error) {
	switch p.Status {
	case StatusExecuting, StatusUnknown:
		return []Event{PaymentOutcomeUnknown{
			EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
			PaymentKey:  p.PaymentKey,
			Code:        code,
			Message:     message,
			Attempt:     p.Attempt,
		}}, nil
	}
	return nil, Errorf(ErrIllegalTransition, "unknown outcome for order %s in status %s", p.OrderID, p.Status)
}

// DecideExpired records that the checkout or the PSP session expired.
func (p Payment) DecideExpired(reason string, now time.Time) ([]Event, error) {
	switch p.Status {
	case StatusNotStarted, StatusExecuting, StatusUnknown:
		return []Event{PaymentExpired{
			EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
			Reason:      reason,
		}}, nil
	case StatusExpired:
		return nil, nil
	}
	return nil, Errorf(ErrIllegalTransition, "expiry of order %s in status %s", p.OrderID, p.Status)
}
