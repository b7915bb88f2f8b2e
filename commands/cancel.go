package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/psp/toss"
)

// CancelInput is a cancel (refund) request.
type CancelInput struct {
	OrderID        domain.OrderID
	IdempotencyKey string           // optional; the same key gives the same cancel
	Amount         *decimal.Decimal // nil: the whole remaining balance
	Reason         string
}

// CancelResult is where a cancel stands after the request.
type CancelResult struct {
	OrderID       domain.OrderID
	CancelID      domain.CancelID
	Amount        decimal.Decimal
	CancelStatus  string // CANCELED, REJECTED, or PENDING (outcome unknown; recovery settles it)
	PaymentStatus domain.Status
	Balance       decimal.Decimal // what is left to cancel
	Failure       *domain.Failure
}

// Cancel refunds all or part of a payment through the PSP.
//
// The cancel id comes from the Idempotency-Key (or is new), and the PSP key
// "<orderId>:cancel:<cancelId>" is recorded in CancelRequested before the call and kept until
// the outcome is known: a second cancel under a new key could refund twice. CancelRequested is
// appended at the loaded version and only when no other cancel is pending, so concurrent
// cancels can never exceed the balance.
func (s *Service) Cancel(ctx context.Context, in CancelInput) (CancelResult, error) {
	if err := checkIdempotencyKey(in.IdempotencyKey); err != nil {
		return CancelResult{}, err
	}
	id := domain.CancelID(uuid.Must(uuid.NewV7()).String())
	if in.IdempotencyKey != "" {
		id = domain.CancelID(uuid.NewSHA1(orderIDNamespace, []byte(string(s.cfg.Merchant)+"\x00"+string(in.OrderID)+"\x00cancel\x00"+in.IdempotencyKey)).String())
	}
	meta := newMetadata("merchant")
	meta.IdempotencyKey = in.IdempotencyKey
	p, events, err := s.update(ctx, in.OrderID, meta, func(p domain.Payment) ([]domain.Event, error) {
		return p.DecideCancel(domain.CancelCommand{CancelID: id, Amount: in.Amount, Reason: in.Reason}, s.now())
	})
	if err != nil {
		return CancelResult{}, err
	}
	if len(events) == 0 { // a repeated request: answer from the cancel's state
		return cancelResult(p, id), nil
	}
	return s.callCancel(ctx, p, p.Cancels[id], meta)
}

// callCancel makes the PSP call of a pending cancel, retrying unknown outcomes under its key,
// and records the outcome.
func (s *Service) callCancel(ctx context.Context, p domain.Payment, c domain.Cancel, meta eventstore.Metadata) (CancelResult, error) {
	detached := context.WithoutCancel(ctx)
	pay, pspErr := s.cancelWithRetries(detached, p, c)
	recordCtx, cancel := context.WithTimeout(detached, recordTimeout)
	defer cancel()
	p, _, err := s.update(recordCtx, p.OrderID, meta, func(p domain.Payment) ([]domain.Event, error) {
		if cur, ok := p.Cancels[c.ID]; !ok || cur.State != domain.CancelPending {
			return nil, nil // recorded meanwhile
		}
		return s.cancelOutcome(recordCtx, p, c, pay, pspErr)
	})
	if err != nil {
		return CancelResult{}, fmt.Errorf("record cancel outcome of %s: %w", p.OrderID, err)
	}
	return cancelResult(p, c.ID), nil
}

func (s *Service) cancelWithRetries(ctx context.Context, p domain.Payment, c domain.Cancel) (*toss.Payment, error) {
	// The amount is always sent: a "full" cancel of a balance that moved could refund more than
	// we decided.
	amount := c.Amount
	req := toss.CancelRequest{CancelReason: c.Reason, CancelAmount: &amount}
	var pay *toss.Payment
	start := time.Now()
	calls, err := s.withRetries(ctx, func(ctx context.Context) (err error) {
		pay, err = s.psp.Cancel(ctx, string(p.PaymentKey), req, c.PSPIdempotencyKey)
		return err
	})
	s.logger.InfoContext(ctx, "psp cancel", "orderId", p.OrderID, "cancelId", c.ID, "amount", c.Amount.String(), "calls", calls,
		"idempotencyKey", c.PSPIdempotencyKey, "ms", time.Since(start).Milliseconds(), "error", errString(err))
	return pay, err
}

// cancelOutcome turns the PSP's answer to a cancel into events.
func (s *Service) cancelOutcome(ctx context.Context, p domain.Payment, c domain.Cancel, pay *toss.Payment, pspErr error) ([]domain.Event, error) {
	now := s.now()
	if pspErr == nil {
		entry, ok := newCancelEntry(p, pay, c.Amount)
		if !ok {
			s.logger.ErrorContext(ctx, "psp cancel answer has no matching cancel entry", "orderId", p.OrderID, "cancelId", c.ID)
			return p.DecideCancelUnknown(c.ID, domain.ErrPSPResponseMismatch.Code, "the PSP's answer shows no cancel of "+c.Amount.String(), now)
		}
		canceledAt := now
		if entry.CanceledAt != nil {
			canceledAt = *entry.CanceledAt
		}
		return p.DecideCanceled(c.ID, entry.CancelAmount, entry.TransactionKey, canceledAt, now)
	}
	var te *toss.Error
	errors.As(pspErr, &te)
	if toss.ClassOf(pspErr) != toss.ClassUnknownOutcome && te.Code != "ALREADY_CANCELED_PAYMENT" {
		if toss.ClassOf(pspErr) == toss.ClassMerchantConfig {
			s.logger.ErrorContext(ctx, "Toss refused our credentials or setup; fix the merchant configuration", "orderId", p.OrderID, "code", te.Code)
		}
		return p.DecideCancelRejected(c.ID, te.Code, te.Message, now)
	}
	// ALREADY_CANCELED_PAYMENT may be our own earlier call: unknown until read back.
	return p.DecideCancelUnknown(c.ID, unknownCode(te, pspErr), pspErr.Error(), now)
}

// newCancelEntry finds, in the PSP's payment, the cancel this call made: an entry of the amount
// whose transaction key we have not recorded yet.
func newCancelEntry(p domain.Payment, pay *toss.Payment, amount decimal.Decimal) (toss.Cancel, bool) {
	known := map[string]bool{}
	for _, c := range p.Cancels {
		if c.TransactionKey != "" {
			known[c.TransactionKey] = true
		}
	}
	for i := len(pay.Cancels) - 1; i >= 0; i-- {
		e := pay.Cancels[i]
		if e.CancelAmount.Equal(amount) && !known[e.TransactionKey] {
			return e, true
		}
	}
	return toss.Cancel{}, false
}

// RetryCancel settles a payment's pending cancel whose outcome is unknown by calling the PSP
// again under the cancel's own key: the PSP replays the stored result of a cancel it performed,
// or performs it now if it never did. A new key is never used.
func (s *Service) RetryCancel(ctx context.Context, id domain.OrderID, actor string) (CancelResult, error) {
	p, _, err := s.load(ctx, id)
	if err != nil {
		return CancelResult{}, err
	}
	c := p.PendingCancel()
	if c == nil {
		return CancelResult{OrderID: id, PaymentStatus: p.Status, Balance: p.Balance}, nil
	}
	return s.callCancel(ctx, p, *c, newMetadata(actor))
}

func cancelResult(p domain.Payment, id domain.CancelID) CancelResult {
	c := p.Cancels[id]
	r := CancelResult{OrderID: p.OrderID, CancelID: id, Amount: c.Amount, PaymentStatus: p.Status, Balance: p.Balance}
	switch c.State {
	case domain.CancelDone:
		r.CancelStatus = "CANCELED"
	case domain.CancelRefused:
		r.CancelStatus = "REJECTED"
		r.Failure = &domain.Failure{Code: c.FailureCode, Message: c.FailureMessage, Source: domain.SourcePSP}
	default:
		r.CancelStatus = "PENDING"
		if c.Unknown {
			r.Failure = &domain.Failure{Code: c.FailureCode, Message: c.FailureMessage}
		}
	}
	return r
}
