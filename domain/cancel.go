package domain

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Cancels (refunds): one at a time, at most the balance, the PSP key kept until the outcome is
// known (a new key could refund twice) unless the PSP says it executed nothing.

// DecideCancelRecoveryExhausted records that recovery gave up on the pending cancel.
func (p Payment) DecideCancelRecoveryExhausted(attempts int, lastError string, now time.Time) ([]Event, error) {
	c := p.PendingCancel()
	switch {
	case c == nil:
		return nil, Errorf(ErrIllegalTransition, "order %s has no pending cancel", p.OrderID)
	case p.NeedsReview:
		return nil, nil
	}
	return []Event{CancelRecoveryExhausted{EventHeader: p.header(now),
		CancelID: c.ID, Attempts: attempts, LastError: lastError}}, nil
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
	return []Event{CancelRetried{EventHeader: p.header(now),
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
		EventHeader:       p.header(now),
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
		EventHeader:    p.header(now),
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
	return []Event{CancelRejected{EventHeader: p.header(now),
		CancelID: id, Code: code, Message: message}}, nil
}

// DecideCancelUnknown records that the pending cancel's call ended without a known outcome.
func (p Payment) DecideCancelUnknown(id CancelID, code, message string, now time.Time) ([]Event, error) {
	c, ok := p.Cancels[id]
	if !ok || c.State != CancelPending {
		return nil, Errorf(ErrIllegalTransition, "unknown outcome for cancel %s of order %s", id, p.OrderID)
	}
	return []Event{CancelOutcomeUnknown{EventHeader: p.header(now),
		CancelID: id, Code: code, Message: message}}, nil
}
