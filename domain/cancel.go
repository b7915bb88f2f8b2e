package domain

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Cancel and settlement events. A cancel (refund) is requested, then canceled, rejected or left
// unknown; one cancel at a time, so concurrent cancels can never exceed the balance.
const (
	EventCancelRequested      EventType = "CancelRequested"
	EventPaymentCanceled      EventType = "PaymentCanceled"
	EventCancelRejected       EventType = "CancelRejected"
	EventCancelOutcomeUnknown EventType = "CancelOutcomeUnknown"
	// EventCancelRetried: the PSP refused the pending cancel's call without executing it, so
	// the cancel goes on under a new idempotency key.
	EventCancelRetried      EventType = "CancelRetried"
	EventSettlementRecorded EventType = "SettlementRecorded"
	// EventCancelRecoveryExhausted: recovery gave up on a cancel whose outcome is unknown; the
	// payment needs review (a person checks with Toss whether the buyer was refunded).
	EventCancelRecoveryExhausted EventType = "CancelRecoveryExhausted"
)

// CancelRecoveryExhausted marks the payment as needing review; the cancel stays pending.
type CancelRecoveryExhausted struct {
	EventHeader
	CancelID  CancelID `json:"cancelId"`
	Attempts  int      `json:"attempts"`
	LastError string   `json:"lastError"`
}

func (CancelRecoveryExhausted) EventType() EventType { return EventCancelRecoveryExhausted }
func (e CancelRecoveryExhausted) cancelID() CancelID { return e.CancelID }

// DecideCancelRecoveryExhausted records that recovery gave up on the pending cancel.
func (p Payment) DecideCancelRecoveryExhausted(attempts int, lastError string, now time.Time) ([]Event, error) {
	c := p.PendingCancel()
	switch {
	case c == nil:
		return nil, Errorf(ErrIllegalTransition, "order %s has no pending cancel", p.OrderID)
	case p.NeedsReview:
		return nil, nil
	}
	return []Event{CancelRecoveryExhausted{EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		CancelID: c.ID, Attempts: attempts, LastError: lastError}}, nil
}

// CancelID identifies one cancel of a payment.
type CancelID string

// CancelRequested: a cancel was accepted and the PSP is about to be called with
// PSPIdempotencyKey. Unlike a confirm, a cancel keeps its key until its outcome is known: a
// repeated cancel under a new key could refund twice.
type CancelRequested struct {
	EventHeader
	CancelID          CancelID        `json:"cancelId"`
	Amount            decimal.Decimal `json:"amount"`
	Reason            string          `json:"reason"`
	PSPIdempotencyKey string          `json:"pspIdempotencyKey"`
}

// PaymentCanceled: the PSP refunded Amount. BalanceAfter is what is left to cancel.
type PaymentCanceled struct {
	EventHeader
	CancelID       CancelID        `json:"cancelId"`
	Amount         decimal.Decimal `json:"amount"`
	TransactionKey string          `json:"transactionKey"`
	CanceledAt     time.Time       `json:"canceledAt"`
	BalanceAfter   decimal.Decimal `json:"balanceAfter"`
}

// CancelRejected: the PSP refused the cancel for good; the balance is unchanged.
type CancelRejected struct {
	EventHeader
	CancelID CancelID `json:"cancelId"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// CancelOutcomeUnknown: the cancel call ended without a known result; recovery reads it back.
type CancelOutcomeUnknown struct {
	EventHeader
	CancelID CancelID `json:"cancelId"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// SettlementRecorded: a row of Toss's settlement report for one of the payment's transactions
// (the approval, or a cancel with negative amounts). Recorded once per TransactionKey.
type SettlementRecorded struct {
	EventHeader
	TransactionKey string          `json:"transactionKey"`
	PaymentKey     PaymentKey      `json:"paymentKey"`
	SoldDate       string          `json:"soldDate"`    // yyyy-MM-dd
	PaidOutDate    string          `json:"paidOutDate"` // yyyy-MM-dd
	Amount         decimal.Decimal `json:"amount"`
	Fee            decimal.Decimal `json:"fee"` // total fee, VAT included
	VAT            decimal.Decimal `json:"vat"`
	PayOutAmount   decimal.Decimal `json:"payOutAmount"`
}

// CancelRetried: the PSP refused the pending cancel's last call without executing it (Code says
// why, e.g. a cancel too soon after the previous one) and the cancel continues as attempt
// Attempt under PSPIdempotencyKey. Only a refusal that provably executed nothing allows a new
// key: after an unknown outcome the cancel keeps its key, since a new one could refund twice.
type CancelRetried struct {
	EventHeader
	CancelID          CancelID `json:"cancelId"`
	Attempt           int      `json:"attempt"`
	PSPIdempotencyKey string   `json:"pspIdempotencyKey"`
	Code              string   `json:"code"`
	Message           string   `json:"message"`
}

func (CancelRetried) EventType() EventType { return EventCancelRetried }

func (e CancelRetried) cancelID() CancelID        { return e.CancelID }
func (e CancelRejected) cancelID() CancelID       { return e.CancelID }
func (e CancelOutcomeUnknown) cancelID() CancelID { return e.CancelID }

func (CancelRequested) EventType() EventType      { return EventCancelRequested }
func (PaymentCanceled) EventType() EventType      { return EventPaymentCanceled }
func (CancelRejected) EventType() EventType       { return EventCancelRejected }
func (CancelOutcomeUnknown) EventType() EventType { return EventCancelOutcomeUnknown }
func (SettlementRecorded) EventType() EventType   { return EventSettlementRecorded }

// CancelState is where one cancel stands.
type CancelState string

const (
	CancelPending CancelState = "PENDING" // requested, outcome not yet known (see Unknown)
	CancelDone    CancelState = "CANCELED"
	CancelRefused CancelState = "REJECTED"
	MaxReasonLen              = 200 // Toss's cancelReason limit
)

// Cancel is one cancel of a payment.
type Cancel struct {
	ID                CancelID
	Amount            decimal.Decimal
	Reason            string
	PSPIdempotencyKey string
	Attempt           int // 1 for the first call's key; a CancelRetried moves to the next
	State             CancelState
	Unknown           bool // the last call's outcome was unknown
	TransactionKey    string
	CanceledAt        time.Time
	FailureCode       string
	FailureMessage    string
}

// Cancel errors.
var (
	ErrNotCancelable       = &Error{Kind: KindConflict, Code: "PAYMENT_NOT_CANCELABLE", Message: "payment cannot be canceled in its current state"}
	ErrCancelInProgress    = &Error{Kind: KindConflict, Code: "CANCEL_IN_PROGRESS", Message: "another cancel of this payment is in progress"}
	ErrCancelExceedsAmount = &Error{Kind: KindInvalid, Code: "CANCEL_AMOUNT_EXCEEDS_BALANCE", Message: "cancel amount exceeds the cancelable balance"}
)

// CancelCommand asks to refund Amount (nil: the whole balance) of a payment.
type CancelCommand struct {
	CancelID CancelID
	Amount   *decimal.Decimal
	Reason   string
}

// CancelIdempotencyKey is the Toss Idempotency-Key of attempt n of a cancel. A cancel keeps its
// key until its outcome is known; only a call the PSP refused without executing it moves the
// cancel to its next attempt (CancelRetried).
func CancelIdempotencyKey(id OrderID, c CancelID, attempt int) string {
	if attempt <= 1 {
		return fmt.Sprintf("%s:cancel:%s", id, c)
	}
	return fmt.Sprintf("%s:cancel:%s:%d", id, c, attempt)
}

// DecideCancelRetry records that the PSP refused the pending cancel's last call without
// executing it (the caller knows from the PSP's classification) and moves the cancel to a new
// attempt with a new idempotency key.
func (p Payment) DecideCancelRetry(id CancelID, code, message string, now time.Time) ([]Event, error) {
	c, ok := p.Cancels[id]
	if !ok || c.State != CancelPending {
		return nil, Errorf(ErrIllegalTransition, "order %s has no pending cancel %s", p.OrderID, id)
	}
	next := c.Attempt + 1
	return []Event{CancelRetried{EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		CancelID: id, Attempt: next, PSPIdempotencyKey: CancelIdempotencyKey(p.OrderID, id, next), Code: code, Message: message}}, nil
}

// DecideCancel decides a cancel request. Only SUCCESS and PARTIALLY_CANCELED payments can be
// canceled, one cancel at a time, for at most the balance. The same CancelID again (a retried
// request) decides nothing: the caller answers from the cancel's state; with another amount it
// is ErrIdempotencyConflict.
func (p Payment) DecideCancel(cmd CancelCommand, now time.Time) ([]Event, error) {
	if prev, ok := p.Cancels[cmd.CancelID]; ok {
		if cmd.Amount != nil && !cmd.Amount.Equal(prev.Amount) {
			return nil, Errorf(ErrIdempotencyConflict, "cancel %s was requested for %s, not %s", cmd.CancelID, prev.Amount, cmd.Amount)
		}
		return nil, nil
	}
	if p.Status != StatusSuccess && p.Status != StatusPartiallyCanceled {
		return nil, Errorf(ErrNotCancelable, "order %s is %s; only SUCCESS or PARTIALLY_CANCELED payments can be canceled", p.OrderID, p.Status)
	}
	if pending := p.PendingCancel(); pending != nil {
		return nil, Errorf(ErrCancelInProgress, "cancel %s of %s is still in progress", pending.ID, pending.Amount)
	}
	if err := checkText("reason", cmd.Reason, MaxReasonLen); err != nil {
		return nil, err
	}
	amount := p.Balance
	if cmd.Amount != nil {
		amount = *cmd.Amount
		if err := CheckAmount(amount, p.Currency); err != nil {
			return nil, err
		}
		if amount.GreaterThan(p.Balance) {
			return nil, Errorf(ErrCancelExceedsAmount, "cancel amount %s exceeds the cancelable balance %s", amount, p.Balance)
		}
	}
	return []Event{CancelRequested{
		EventHeader:       EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		CancelID:          cmd.CancelID,
		Amount:            amount,
		Reason:            cmd.Reason,
		PSPIdempotencyKey: CancelIdempotencyKey(p.OrderID, cmd.CancelID, 1),
	}}, nil
}

// PendingCancel returns the cancel whose outcome is not known yet, if any.
func (p Payment) PendingCancel() *Cancel {
	for _, id := range p.CancelOrder {
		if c := p.Cancels[id]; c.State == CancelPending {
			return &c
		}
	}
	return nil
}

// DecideCanceled records the PSP's refund of the pending cancel. The amount must be the
// requested one. A cancel already recorded is a no-op.
func (p Payment) DecideCanceled(id CancelID, amount decimal.Decimal, txKey string, canceledAt, now time.Time) ([]Event, error) {
	c, ok := p.Cancels[id]
	switch {
	case !ok:
		return nil, Errorf(ErrIllegalTransition, "order %s has no cancel %s", p.OrderID, id)
	case c.State == CancelDone:
		return nil, nil
	case c.State != CancelPending:
		return nil, Errorf(ErrIllegalTransition, "cancel %s of order %s is %s", id, p.OrderID, c.State)
	case !amount.Equal(c.Amount):
		return nil, Errorf(ErrPSPResponseMismatch, "PSP canceled %s for cancel %s of %s", amount, id, c.Amount)
	}
	return []Event{PaymentCanceled{
		EventHeader:    EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		CancelID:       id,
		Amount:         amount,
		TransactionKey: txKey,
		CanceledAt:     canceledAt,
		BalanceAfter:   p.Balance.Sub(amount),
	}}, nil
}

// DecideCancelRejected records a final refusal of the pending cancel.
func (p Payment) DecideCancelRejected(id CancelID, code, message string, now time.Time) ([]Event, error) {
	c, ok := p.Cancels[id]
	switch {
	case !ok:
		return nil, Errorf(ErrIllegalTransition, "order %s has no cancel %s", p.OrderID, id)
	case c.State == CancelRefused:
		return nil, nil
	case c.State != CancelPending:
		return nil, Errorf(ErrIllegalTransition, "cancel %s of order %s is %s", id, p.OrderID, c.State)
	}
	return []Event{CancelRejected{EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		CancelID: id, Code: code, Message: message}}, nil
}

// DecideCancelUnknown records that the pending cancel's call ended without a known outcome.
func (p Payment) DecideCancelUnknown(id CancelID, code, message string, now time.Time) ([]Event, error) {
	c, ok := p.Cancels[id]
	if !ok || c.State != CancelPending {
		return nil, Errorf(ErrIllegalTransition, "unknown outcome for cancel %s of order %s", id, p.OrderID)
	}
	return []Event{CancelOutcomeUnknown{EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		CancelID: id, Code: code, Message: message}}, nil
}

// SettlementInput is one settlement row for a transaction of the payment.
type SettlementInput struct {
	TransactionKey      string
	PaymentKey          PaymentKey
	SoldDate            string
	PaidOutDate         string
	Amount, Fee, VAT    decimal.Decimal
	PayOutAmount        decimal.Decimal
	ApprovedTransaction bool // the row settles the approval (not a cancel)
}

// DecideSettlement records a settlement row once per transaction key. Only approved payments
// settle; payout = amount − fee must hold.
func (p Payment) DecideSettlement(s SettlementInput, now time.Time) ([]Event, error) {
	if p.Settled[s.TransactionKey] {
		return nil, nil
	}
	if p.Status != StatusSuccess && p.Status != StatusPartiallyCanceled && p.Status != StatusCanceled {
		return nil, Errorf(ErrIllegalTransition, "settlement of order %s in status %s", p.OrderID, p.Status)
	}
	if s.TransactionKey == "" {
		return nil, Errorf(ErrInvalidInput, "settlement row without a transactionKey")
	}
	if !s.Amount.Sub(s.Fee).Equal(s.PayOutAmount) {
		return nil, Errorf(ErrInvalidInput, "settlement %s: payout %s is not amount %s minus fee %s", s.TransactionKey, s.PayOutAmount, s.Amount, s.Fee)
	}
	return []Event{SettlementRecorded{
		EventHeader:    EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		TransactionKey: s.TransactionKey, PaymentKey: s.PaymentKey,
		SoldDate: s.SoldDate, PaidOutDate: s.PaidOutDate,
		Amount: s.Amount, Fee: s.Fee, VAT: s.VAT, PayOutAmount: s.PayOutAmount,
	}}, nil
}

// applyCancelEvent evolves the cancel part of the state.
func (p *Payment) applyCancelEvent(e Event) bool {
	switch e := e.(type) {
	case CancelRequested:
		if p.Cancels == nil {
			p.Cancels = map[CancelID]Cancel{}
		}
		p.Cancels[e.CancelID] = Cancel{ID: e.CancelID, Amount: e.Amount, Reason: e.Reason, PSPIdempotencyKey: e.PSPIdempotencyKey, Attempt: 1, State: CancelPending}
		p.CancelOrder = append(p.CancelOrder, e.CancelID)
	case PaymentCanceled:
		c := p.Cancels[e.CancelID]
		c.State, c.Unknown, c.TransactionKey, c.CanceledAt = CancelDone, false, e.TransactionKey, e.CanceledAt
		p.Cancels[e.CancelID] = c
		p.Balance = e.BalanceAfter
		p.CanceledAmount = p.CanceledAmount.Add(e.Amount)
		p.LastCanceledAt = e.At
		p.NeedsReview = false
		p.Status = StatusPartiallyCanceled
		if p.Balance.IsZero() {
			p.Status = StatusCanceled
		}
	case CancelRejected:
		c := p.Cancels[e.CancelID]
		c.State, c.Unknown, c.FailureCode, c.FailureMessage = CancelRefused, false, e.Code, e.Message
		p.Cancels[e.CancelID] = c
		p.NeedsReview = false
	case CancelOutcomeUnknown:
		c := p.Cancels[e.CancelID]
		c.Unknown, c.FailureCode, c.FailureMessage = true, e.Code, e.Message
		p.Cancels[e.CancelID] = c
	case CancelRetried:
		c := p.Cancels[e.CancelID]
		c.Attempt, c.PSPIdempotencyKey = e.Attempt, e.PSPIdempotencyKey
		c.Unknown, c.FailureCode, c.FailureMessage = false, e.Code, e.Message
		p.Cancels[e.CancelID] = c
	case CancelRecoveryExhausted:
		p.NeedsReview = true
	case SettlementRecorded:
		if p.Settled == nil {
			p.Settled = map[string]bool{}
		}
		p.Settled[e.TransactionKey] = true
	default:
		return false
	}
	return true
}
