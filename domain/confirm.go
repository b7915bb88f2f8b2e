package domain

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Confirm and its outcomes: the successUrl step, then what the PSP answered (approved, rejected,
// unknown, expired).

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
	h := p.header(now)
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
			EventHeader:        p.header(now),
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
			EventHeader: p.header(now),
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
			EventHeader: p.header(now),
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
			EventHeader: p.header(now),
			Reason:      reason,
		}}, nil
	case StatusExpired:
		return nil, nil
	}
	return nil, Errorf(ErrIllegalTransition, "expiry of order %s in status %s", p.OrderID, p.Status)
}
