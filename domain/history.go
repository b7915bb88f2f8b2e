package domain

import "fmt"

// legalFrom lists, for each event type, the statuses it may follow (DESIGN.md's state machine).
// CheckoutCreated is legal only as the first event.
var legalFrom = map[EventType][]Status{
	EventConfirmationStarted:     {StatusNotStarted, StatusExecuting, StatusUnknown},
	EventPaymentApproved:         {StatusExecuting, StatusUnknown},
	EventPaymentRejected:         {StatusNotStarted, StatusExecuting, StatusUnknown},
	EventPaymentOutcomeUnknown:   {StatusExecuting, StatusUnknown},
	EventPaymentExpired:          {StatusNotStarted, StatusExecuting, StatusUnknown},
	EventRecoveryExhausted:       {StatusExecuting, StatusUnknown},
	EventCancelRequested:         {StatusSuccess, StatusPartiallyCanceled},
	EventPaymentCanceled:         {StatusSuccess, StatusPartiallyCanceled},
	EventCancelRejected:          {StatusSuccess, StatusPartiallyCanceled},
	EventCancelOutcomeUnknown:    {StatusSuccess, StatusPartiallyCanceled},
	EventCancelRetried:           {StatusSuccess, StatusPartiallyCanceled},
	EventSettlementRecorded:      {StatusSuccess, StatusPartiallyCanceled, StatusCanceled},
	EventCancelRecoveryExhausted: {StatusSuccess, StatusPartiallyCanceled},
	EventPaymentApprovedAtPSP:    {StatusNotStarted, StatusFailure, StatusExpired},
	EventPaymentCanceledAtPSP:    {StatusSuccess, StatusPartiallyCanceled},
}

// CheckHistory verifies that a stream's events follow the state machine: it starts with
// CheckoutCreated, every later event is legal in the state before it, a new confirm attempt
// numbers attempts 1, 2, 3… and keeps the paymentKey, and an approval matches the checkout. It
// is an audit of stored history, independent of the deciders that wrote it.
func CheckHistory(events []Event) error {
	var p Payment
	for i, e := range events {
		if i == 0 {
			if _, ok := e.(CheckoutCreated); !ok {
				return fmt.Errorf("event 1 is %s, want %s", e.EventType(), EventCheckoutCreated)
			}
		} else if err := checkStep(p, e); err != nil {
			return fmt.Errorf("event %d (%s) after status %s: %w", i+1, e.EventType(), p.Status, err)
		}
		if err := p.Apply(e); err != nil {
			return err
		}
	}
	return nil
}

func checkStep(p Payment, e Event) error {
	allowed, ok := legalFrom[e.EventType()]
	if !ok {
		return fmt.Errorf("not allowed after the first event")
	}
	legal := false
	for _, s := range allowed {
		legal = legal || s == p.Status
	}
	if !legal {
		return fmt.Errorf("illegal transition")
	}
	switch e := e.(type) {
	case ConfirmationStarted:
		if e.Attempt != p.Attempt+1 {
			return fmt.Errorf("attempt %d follows attempt %d", e.Attempt, p.Attempt)
		}
		if p.Attempt > 0 && e.PaymentKey != p.PaymentKey {
			return fmt.Errorf("paymentKey changed from %s to %s", p.PaymentKey, e.PaymentKey)
		}
		if !e.Amount.Equal(p.TotalAmount) {
			return fmt.Errorf("confirming %s of a %s checkout", e.Amount, p.TotalAmount)
		}
	case PaymentApproved:
		if e.PaymentKey != p.PaymentKey || !e.TotalAmount.Equal(p.TotalAmount) {
			return fmt.Errorf("approval of %s/%s does not match %s/%s", e.PaymentKey, e.TotalAmount, p.PaymentKey, p.TotalAmount)
		}
	case PaymentRejected:
		if p.Status == StatusNotStarted && e.Source != SourceValidation {
			return fmt.Errorf("a PSP rejection before any confirm")
		}
	case CancelRequested:
		if p.PendingCancel() != nil || e.Amount.GreaterThan(p.Balance) || e.Amount.Sign() <= 0 {
			return fmt.Errorf("cancel %s of %s with balance %s (pending: %v)", e.CancelID, e.Amount, p.Balance, p.PendingCancel() != nil)
		}
	case PaymentCanceled:
		c, ok := p.Cancels[e.CancelID]
		if !ok || c.State != CancelPending || !c.Amount.Equal(e.Amount) || !e.BalanceAfter.Equal(p.Balance.Sub(e.Amount)) {
			return fmt.Errorf("cancel %s of %s does not match a pending cancel", e.CancelID, e.Amount)
		}
	case CancelRetried:
		if c, ok := p.Cancels[e.CancelID]; !ok || c.State != CancelPending || e.Attempt != c.Attempt+1 {
			return fmt.Errorf("cancel %s attempt %d does not follow a pending cancel's attempt", e.CancelID, e.Attempt)
		}
	case CancelRejected, CancelOutcomeUnknown, CancelRecoveryExhausted:
		id := e.(interface{ cancelID() CancelID }).cancelID()
		if c, ok := p.Cancels[id]; !ok || c.State != CancelPending {
			return fmt.Errorf("no pending cancel %s", id)
		}
	case PaymentApprovedAtPSP:
		if !e.TotalAmount.Equal(p.TotalAmount) || (p.PaymentKey != "" && e.PaymentKey != p.PaymentKey) {
			return fmt.Errorf("approval at the PSP of %s/%s does not match %s/%s", e.PaymentKey, e.TotalAmount, p.PaymentKey, p.TotalAmount)
		}
	case PaymentCanceledAtPSP:
		if e.Amount.Sign() <= 0 || e.Amount.GreaterThan(p.Balance) || !e.BalanceAfter.Equal(p.Balance.Sub(e.Amount)) || p.KnowsTransaction(e.TransactionKey) {
			return fmt.Errorf("cancel at the PSP %s of %s with balance %s", e.TransactionKey, e.Amount, p.Balance)
		}
	case SettlementRecorded:
		if p.Settled[e.TransactionKey] {
			return fmt.Errorf("transaction %s settled twice", e.TransactionKey)
		}
	}
	return nil
}
