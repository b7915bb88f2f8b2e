package domain

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Read-back decisions: what the PSP's truth about a payment whose outcome we do not know means
// for it (recovery and the webhook worker resolve payments with these), and giving up.

// TossConfirmWindow is how long Toss keeps an authenticated payment confirmable (toss-api.md §3).
const TossConfirmWindow = 10 * time.Minute

// PSPStatus is a payment's status as the PSP reports it on a read-back.
type PSPStatus string

const (
	PSPNotFound          PSPStatus = "NOT_FOUND" // the PSP has no payment for the order
	PSPReady             PSPStatus = "READY"
	PSPInProgress        PSPStatus = "IN_PROGRESS"
	PSPWaitingForDeposit PSPStatus = "WAITING_FOR_DEPOSIT"
	PSPDone              PSPStatus = "DONE"
	PSPCanceled          PSPStatus = "CANCELED"
	PSPPartialCanceled   PSPStatus = "PARTIAL_CANCELED"
	PSPAborted           PSPStatus = "ABORTED"
	PSPExpired           PSPStatus = "EXPIRED"
)

// ReadBack is what the PSP says about a payment when asked (a lookup by orderId).
type ReadBack struct {
	Status             PSPStatus
	PaymentKey         PaymentKey
	OrderID            OrderID
	TotalAmount        decimal.Decimal
	ApprovedAt         time.Time
	Method             string
	LastTransactionKey string
	FailureCode        string
	FailureMessage     string
}

// DecideReadBack turns the PSP's truth about a payment whose outcome we do not know (EXECUTING
// or UNKNOWN) into events:
//
//   - DONE with the same order, paymentKey and amount: PaymentApproved. Any mismatch:
//     ErrPSPResponseMismatch, nothing recorded. CANCELED or PARTIAL_CANCELED (refunded at the
//     PSP outside this system): ErrPSPResponseMismatch too, so that a person reconciles it.
//   - ABORTED: PaymentRejected. EXPIRED: PaymentExpired.
//   - IN_PROGRESS: the PSP has not approved it and still could. With newAttempt, a new confirm
//     attempt starts under a new idempotency key (safe: the PSP never approves one paymentKey
//     twice, and a stored error under the old key would otherwise block recovery forever).
//   - NOT_FOUND after the PSP's confirm window has passed since the attempt: PaymentExpired.
//   - anything else (NOT_FOUND inside the window, READY, WAITING_FOR_DEPOSIT): no events yet.
//
// A payment that is not EXECUTING or UNKNOWN gets no events: its outcome is already known.
func (p Payment) DecideReadBack(rb ReadBack, now time.Time, newAttempt bool) ([]Event, error) {
	if p.Status != StatusExecuting && p.Status != StatusUnknown {
		return nil, nil
	}
	h := EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now}
	switch rb.Status {
	case PSPCanceled, PSPPartialCanceled:
		// Approved and then refunded at Toss outside this system (its dashboard) while we did not
		// know the outcome. Recording only the approval would book money Toss already returned:
		// refuse, so recovery gives up and a person reconciles it.
		return nil, Errorf(ErrPSPResponseMismatch, "the PSP shows order %s %s (refunded outside this system) while its outcome is unknown here; it needs review", p.OrderID, rb.Status)
	case PSPDone:
		return p.DecideApproved(Approval{
			PaymentKey: rb.PaymentKey, OrderID: rb.OrderID, TotalAmount: rb.TotalAmount,
			ApprovedAt: rb.ApprovedAt, Method: rb.Method, LastTransactionKey: rb.LastTransactionKey,
		}, now)
	case PSPAborted:
		code, msg := rb.FailureCode, rb.FailureMessage
		if code == "" {
			code, msg = "ABORTED", "the PSP aborted the payment"
		}
		return p.DecideRejected(code, msg, now)
	case PSPExpired:
		return p.DecideExpired("the PSP reports the payment EXPIRED", now)
	case PSPInProgress:
		if rb.PaymentKey != "" && rb.PaymentKey != p.PaymentKey {
			return nil, Errorf(ErrPSPResponseMismatch, "PSP shows order %s in progress with paymentKey %s, we confirmed %s", p.OrderID, rb.PaymentKey, p.PaymentKey)
		}
		if !newAttempt {
			return nil, nil
		}
		attempt := p.Attempt + 1
		return []Event{ConfirmationStarted{
			EventHeader: h, PaymentKey: p.PaymentKey, Amount: p.TotalAmount,
			Attempt: attempt, PSPIdempotencyKey: ConfirmIdempotencyKey(p.OrderID, attempt),
		}}, nil
	case PSPNotFound:
		if now.After(p.AttemptStartedAt.Add(TossConfirmWindow)) {
			return p.DecideExpired(fmt.Sprintf("the PSP has no payment for the order %s after its confirm window", TossConfirmWindow), now)
		}
		return nil, nil
	case PSPReady, PSPWaitingForDeposit:
		return nil, nil
	}
	return nil, Errorf(ErrInvalidInput, "unknown PSP status %q", rb.Status)
}

// DecideRecoveryExhausted records that recovery gave up after attempts tries.
func (p Payment) DecideRecoveryExhausted(attempts int, lastError string, now time.Time) ([]Event, error) {
	switch {
	case p.Status != StatusExecuting && p.Status != StatusUnknown:
		return nil, Errorf(ErrIllegalTransition, "recovery of order %s in status %s", p.OrderID, p.Status)
	case p.NeedsReview:
		return nil, nil
	}
	return []Event{RecoveryExhausted{
		EventHeader: EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now},
		Attempts:    attempts,
		LastError:   lastError,
	}}, nil
}
