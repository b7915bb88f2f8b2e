package domain

import (
	"fmt"
	"maps"
	"time"

	"github.com/shopspring/decimal"
)

// Read-back decisions: what the PSP's truth about a payment means for it. Recovery and the
// webhook worker resolve payments with these, and reconciliation applies the same decisions, so
// a refund made in Toss's console is booked the same way whoever finds it first.

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
	BalanceAmount      decimal.Decimal // what the PSP still lets be canceled
	ApprovedAt         time.Time
	Method             string
	LastTransactionKey string // of the approval when Cancels is empty; Toss moves it to the latest cancel
	FailureCode        string
	FailureMessage     string
	Cancels            []PSPCancel // in the PSP's order
}

// PSPCancel is one cancel as the PSP lists it.
type PSPCancel struct {
	TransactionKey string
	Amount         decimal.Decimal
	CanceledAt     time.Time
	Reason         string
}

// ReadBackOptions say how a read-back may act.
type ReadBackOptions struct {
	// NewAttempt allows a new confirm attempt when the PSP still shows the payment IN_PROGRESS.
	NewAttempt bool
	// Reason is recorded on events that correct the ledger from the PSP's truth ("webhook
	// read-back", "reconciliation run …").
	Reason string
}

// DecideReadBack turns the PSP's truth about a payment into events.
//
// A payment whose confirm outcome we do not know (EXECUTING or UNKNOWN):
//
//   - DONE with the same order, paymentKey and amount: PaymentApproved. Any mismatch:
//     ErrPSPResponseMismatch, nothing recorded.
//   - CANCELED or PARTIAL_CANCELED with the same order, paymentKey and amount: approved and then
//     refunded at the PSP outside this system: PaymentApproved, then a PaymentCanceledAtPSP for
//     each cancel the PSP lists.
//   - ABORTED: PaymentRejected. EXPIRED: PaymentExpired.
//   - IN_PROGRESS: the PSP has not approved it and still could. With NewAttempt, a new confirm
//     attempt starts under a new idempotency key (safe: the PSP never approves one paymentKey
//     twice, and a stored error under the old key would otherwise block recovery forever).
//   - NOT_FOUND after the PSP's confirm window has passed since the attempt: PaymentExpired.
//   - anything else (NOT_FOUND inside the window, READY, WAITING_FOR_DEPOSIT): no events yet.
//
// A payment NOT_STARTED, FAILURE or EXPIRED here that the PSP shows approved (DONE, or approved
// and canceled since): PaymentApprovedAtPSP (and its cancels), when order, paymentKey and amount
// match the checkout; a mismatch is ErrPSPResponseMismatch.
//
// An approved payment (SUCCESS, PARTIALLY_CANCELED, CANCELED) that the PSP shows approved or
// canceled, with the same order, paymentKey and amount (else ErrPSPResponseMismatch): each
// cancel the PSP lists that the ledger has not recorded is, in the PSP's order, the pending cancel's outcome when one of ours
// of that amount is pending (PaymentCanceled), and otherwise a cancel made at the PSP
// (PaymentCanceledAtPSP). A cancel above what is left to cancel is ErrPSPResponseMismatch.
func (p Payment) DecideReadBack(rb ReadBack, now time.Time, opts ReadBackOptions) ([]Event, error) {
	switch p.Status {
	case StatusExecuting, StatusUnknown:
		return p.decideUnresolved(rb, now, opts)
	case StatusNotStarted, StatusFailure, StatusExpired:
		if rb.Status != PSPDone && rb.Status != PSPCanceled && rb.Status != PSPPartialCanceled {
			return nil, nil
		}
		if err := p.matches(rb); err != nil {
			return nil, err
		}
		approved := PaymentApprovedAtPSP{EventHeader: p.header(now), PaymentKey: rb.PaymentKey, ApprovedAt: rb.ApprovedAt,
			Method: rb.Method, TotalAmount: rb.TotalAmount, LastTransactionKey: approvalKey(rb),
			PreviousStatus: p.Status, Reason: opts.Reason}
		return p.thenCancels([]Event{approved}, rb, now, opts)
	case StatusSuccess, StatusPartiallyCanceled, StatusCanceled:
		if rb.Status != PSPDone && rb.Status != PSPCanceled && rb.Status != PSPPartialCanceled {
			return nil, nil
		}
		if err := p.matches(rb); err != nil {
			return nil, err
		}
		return p.thenCancels(nil, rb, now, opts)
	}
	return nil, nil
}

// matches checks that the PSP's payment is this one: the order, the amount and, once we know
// it, the paymentKey.
func (p Payment) matches(rb ReadBack) error {
	if rb.OrderID != p.OrderID || !rb.TotalAmount.Equal(p.TotalAmount) || (p.PaymentKey != "" && rb.PaymentKey != p.PaymentKey) {
		return Errorf(ErrPSPResponseMismatch, "the PSP shows order %s key %s amount %s; expected order %s key %s amount %s",
			rb.OrderID, rb.PaymentKey, rb.TotalAmount, p.OrderID, p.PaymentKey, p.TotalAmount)
	}
	return nil
}

// approvalKey is the approval's transaction key: Toss's lastTransactionKey names the latest
// transaction, which is a cancel's once there are cancels, so it is only the approval's before.
func approvalKey(rb ReadBack) string {
	if len(rb.Cancels) > 0 {
		return ""
	}
	return rb.LastTransactionKey
}

func (p Payment) decideUnresolved(rb ReadBack, now time.Time, opts ReadBackOptions) ([]Event, error) {
	switch rb.Status {
	case PSPCanceled, PSPPartialCanceled:
		if err := p.matches(rb); err != nil {
			return nil, err
		}
		approved, err := p.DecideApproved(Approval{
			PaymentKey: rb.PaymentKey, OrderID: rb.OrderID, TotalAmount: rb.TotalAmount,
			ApprovedAt: rb.ApprovedAt, Method: rb.Method, LastTransactionKey: approvalKey(rb),
		}, now)
		if err != nil {
			return nil, err
		}
		return p.thenCancels(approved, rb, now, opts)
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
		if !opts.NewAttempt {
			return nil, nil
		}
		attempt := p.Attempt + 1
		return []Event{ConfirmationStarted{
			EventHeader: p.header(now), PaymentKey: p.PaymentKey, Amount: p.TotalAmount,
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

// thenCancels appends to events (already decided, not yet applied) the cancels the PSP lists that
// the ledger does not know.
func (p Payment) thenCancels(events []Event, rb ReadBack, now time.Time, opts ReadBackOptions) ([]Event, error) {
	q := p
	q.Cancels = maps.Clone(p.Cancels)
	q.PSPCancels = maps.Clone(p.PSPCancels)
	for _, e := range events {
		if err := q.Apply(e); err != nil {
			return nil, err
		}
	}
	for _, c := range rb.Cancels {
		if q.KnowsTransaction(c.TransactionKey) {
			continue
		}
		var next []Event
		var err error
		if pending := q.PendingCancel(); pending != nil && pending.Amount.Equal(c.Amount) {
			next, err = q.DecideCanceled(pending.ID, c.Amount, c.TransactionKey, c.CanceledAt, now)
		} else {
			next, err = q.decideCanceledAtPSP(c, now, opts.Reason)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range next {
			if err := q.Apply(e); err != nil {
				return nil, err
			}
		}
		events = append(events, next...)
	}
	return events, nil
}

// decideCanceledAtPSP records a cancel made at the PSP.
func (p Payment) decideCanceledAtPSP(c PSPCancel, now time.Time, reason string) ([]Event, error) {
	if c.TransactionKey == "" || c.Amount.Sign() <= 0 || c.Amount.GreaterThan(p.Balance) {
		return nil, Errorf(ErrPSPResponseMismatch, "the PSP shows a cancel %q of %s of order %s, whose balance here is %s",
			c.TransactionKey, c.Amount, p.OrderID, p.Balance)
	}
	return []Event{PaymentCanceledAtPSP{EventHeader: p.header(now), TransactionKey: c.TransactionKey, Amount: c.Amount,
		CanceledAt: c.CanceledAt, BalanceAfter: p.Balance.Sub(c.Amount), CancelReason: c.Reason, Reason: reason}}, nil
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
		EventHeader: p.header(now),
		Attempts:    attempts,
		LastError:   lastError,
	}}, nil
}
