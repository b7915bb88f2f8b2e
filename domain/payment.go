package domain

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// A payment's state and its fold: the state machine of DESIGN.md as the events leave it.

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
	PSPCancels     map[string]bool // transaction keys of cancels made at Toss, not requested here
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
	case PaymentApprovedAtPSP:
		p.Status = StatusSuccess
		p.PaymentKey, p.ApprovedAt, p.Method, p.LastTxKey = e.PaymentKey, e.ApprovedAt, e.Method, e.LastTransactionKey
		p.Failure, p.NeedsReview = nil, false
		p.Balance = e.TotalAmount
	case PaymentCanceledAtPSP:
		if p.PSPCancels == nil {
			p.PSPCancels = map[string]bool{}
		}
		p.PSPCancels[e.TransactionKey] = true
		p.Balance = e.BalanceAfter
		p.CanceledAmount = p.CanceledAmount.Add(e.Amount)
		p.LastCanceledAt = e.At
		p.Status = StatusPartiallyCanceled
		if p.Balance.IsZero() {
			p.Status = StatusCanceled
		}
	default:
		if !p.applyCancelEvent(e) {
			return fmt.Errorf("domain: apply: unknown event %T", e)
		}
	}
	p.Version++
	return nil
}

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

// KnowsTransaction reports whether the ledger has recorded Toss's transaction key: the approval,
// a cancel it requested, or a cancel made at Toss.
func (p Payment) KnowsTransaction(key string) bool {
	if key == "" {
		return false
	}
	if key == p.LastTxKey || p.PSPCancels[key] {
		return true
	}
	for _, c := range p.Cancels {
		if c.TransactionKey == key {
			return true
		}
	}
	return false
}

// header is the header of an event of this payment decided at now.
func (p Payment) header(now time.Time) EventHeader {
	return EventHeader{OrderID: p.OrderID, MerchantID: p.MerchantID, At: now}
}
