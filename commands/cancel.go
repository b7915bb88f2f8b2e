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
	Merchant       domain.MerchantID
	OrderID        domain.OrderID
	IdempotencyKey string           // required: the same key gives the same cancel, never a second refund
	Amount         *decimal.Decimal // nil: the whole remaining balance
	Reason         string
}

// CancelResult is where a cancel stands after the request.
type CancelResult struct {
	OrderID       domain.OrderID
	CancelID      domain.CancelID
	Amount        decimal.Decimal
	CancelStatus  domain.CancelState // CANCELED, REJECTED, or PENDING (outcome unknown; recovery resolves it)
	PaymentStatus domain.Status
	Balance       decimal.Decimal // what is left to cancel
	Failure       *domain.Failure
}

// ErrIdempotencyKeyRequired: a refund without an Idempotency-Key could be repeated by a
// client's retry and refund twice.
var ErrIdempotencyKeyRequired = &domain.Error{Kind: domain.KindInvalid, Code: "IDEMPOTENCY_KEY_REQUIRED",
	Message: "an Idempotency-Key header is required"}

// CancelSpacing is how long after a refund the PSP accepts the next cancel of the same payment
// (toss-api.md §4.4: within one second it answers FORBIDDEN_CONSECUTIVE_REQUEST), with a margin.
const CancelSpacing = time.Second + 50*time.Millisecond

// maxNotExecutedRounds bounds, per request, the new keys tried after the PSP refused a cancel
// without executing it; recovery goes on from there.
const maxNotExecutedRounds = 3

// Cancel refunds all or part of a payment through the PSP.
//
// The cancel id comes from the merchant's Idempotency-Key (required), and the PSP key
// "<orderId>:cancel:<cancelId>" is recorded in CancelRequested before the call and kept until
// the outcome is known: a second cancel under a new key could refund twice. CancelRequested is
// appended at the loaded version and only when no other cancel is pending, so concurrent
// cancels can never exceed the balance. A payment of another merchant is ErrPaymentNotFound.
func (s *Service) Cancel(ctx context.Context, in CancelInput) (CancelResult, error) {
	if err := checkMerchant(in.Merchant); err != nil {
		return CancelResult{}, err
	}
	if in.IdempotencyKey == "" {
		return CancelResult{}, domain.Errorf(ErrIdempotencyKeyRequired,
			"a refund needs an Idempotency-Key header (a retry with the same key never refunds twice)")
	}
	if err := checkIdempotencyKey(in.IdempotencyKey); err != nil {
		return CancelResult{}, err
	}
	id := domain.CancelID(uuid.NewSHA1(orderIDNamespace, []byte(string(in.Merchant)+"\x00"+string(in.OrderID)+"\x00cancel\x00"+in.IdempotencyKey)).String())
	meta := newMetadata("merchant")
	meta.IdempotencyKey = in.IdempotencyKey
	var psp PSP
	p, events, err := s.update(ctx, in.OrderID, in.Merchant, meta, func(p domain.Payment) ([]domain.Event, error) {
		events, err := p.DecideCancel(domain.CancelCommand{CancelID: id, Amount: in.Amount, Reason: in.Reason}, s.now())
		if err != nil || len(events) == 0 {
			return events, err
		}
		// Never record a cancel no PSP client can make.
		if psp, err = s.pspOf(ctx, p); err != nil {
			return nil, err
		}
		return events, nil
	})
	if err != nil {
		return CancelResult{}, err
	}
	if len(events) == 0 { // a repeated request: answer from the cancel's state
		return cancelResult(p, id), nil
	}
	return s.callCancel(ctx, psp, p, p.Cancels[id], meta)
}

// callCancel makes the PSP call of a pending cancel, retrying unknown outcomes under its key,
// and records the outcome. A call the PSP refused without executing it moves the cancel to a new
// key (CancelRetried) and is tried again, a bounded number of times.
func (s *Service) callCancel(ctx context.Context, psp PSP, p domain.Payment, c domain.Cancel, meta eventstore.Metadata) (CancelResult, error) {
	detached := context.WithoutCancel(ctx)
	var refusedAt time.Time // of the last round the PSP refused as too soon after another refund
	for round := 1; ; round++ {
		if err := s.spaceCancel(detached, p, refusedAt); err != nil {
			return CancelResult{}, err
		}
		pay, pspErr := s.cancelWithRetries(detached, psp, p, c)
		recordCtx, cancel := context.WithTimeout(detached, recordTimeout)
		p2, recorded, err := s.update(recordCtx, p.OrderID, "", meta, func(p domain.Payment) ([]domain.Event, error) {
			if cur, ok := p.Cancels[c.ID]; !ok || cur.State != domain.CancelPending || cur.Attempt != c.Attempt {
				return nil, nil // recorded meanwhile
			}
			return s.cancelOutcome(recordCtx, p, c, pay, pspErr)
		})
		cancel()
		if err != nil {
			return CancelResult{}, fmt.Errorf("record cancel outcome of %s: %w", p.OrderID, err)
		}
		retried := len(recorded) == 1 && recorded[0].EventType() == domain.EventCancelRetried
		if !retried || round >= maxNotExecutedRounds {
			return cancelResult(p2, c.ID), nil
		}
		p, c, refusedAt = p2, p2.Cancels[c.ID], s.now()
	}
}

// spaceCancel waits until the PSP accepts another cancel of the payment: CancelSpacing after the
// latest refund we recorded (our record time is after the PSP's, so the gap at the PSP is at
// least as long), and after refusedAt, when the PSP refused the last call as too soon after a
// refund we do not know of (made in its console): that refund came before the refusal.
func (s *Service) spaceCancel(ctx context.Context, p domain.Payment, refusedAt time.Time) error {
	last := p.LastCanceledAt
	if refusedAt.After(last) {
		last = refusedAt
	}
	if last.IsZero() {
		return nil
	}
	wait := last.Add(CancelSpacing).Sub(s.now())
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *Service) cancelWithRetries(ctx context.Context, psp PSP, p domain.Payment, c domain.Cancel) (*toss.Payment, error) {
	// The amount is always sent: a "full" cancel of a balance that moved could refund more than
	// we decided.
	amount := c.Amount
	req := toss.CancelRequest{CancelReason: c.Reason, CancelAmount: &amount}
	var pay *toss.Payment
	start := time.Now()
	calls, err := s.withRetries(ctx, func(ctx context.Context) (err error) {
		pay, err = psp.Cancel(ctx, string(p.PaymentKey), req, c.PSPIdempotencyKey)
		return err
	})
	s.logger.InfoContext(ctx, "psp cancel", "orderId", p.OrderID, "merchantId", p.MerchantID, "cancelId", c.ID, "amount", c.Amount.String(), "calls", calls,
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
	switch {
	case toss.ClassOf(pspErr) == toss.ClassNotExecuted:
		return p.DecideCancelRetry(c.ID, te.Code, te.Message, now)
	case toss.IsNotFound(pspErr):
		// We hold this payment approved, so Toss not knowing it is no proof the refund failed (a
		// PSP that lost its state, the wrong key): never book it as rejected on that alone.
		s.logger.ErrorContext(ctx, "the PSP does not know a payment we hold approved; the refund stays pending for review",
			"orderId", p.OrderID, "cancelId", c.ID, "error", pspErr)
		return p.DecideCancelUnknown(c.ID, te.Code, te.Message, now)
	case toss.ClassOf(pspErr) == toss.ClassUnknownOutcome || toss.AlreadyCanceled(pspErr):
		// ALREADY_CANCELED_PAYMENT may be our own earlier call: unknown until read back.
		return p.DecideCancelUnknown(c.ID, unknownCode(te, pspErr), pspErr.Error(), now)
	case toss.ClassOf(pspErr) == toss.ClassMerchantConfig:
		s.logger.ErrorContext(ctx, "Toss refused our credentials or setup; fix the merchant configuration", "orderId", p.OrderID, "merchantId", p.MerchantID, "code", te.Code)
	}
	return p.DecideCancelRejected(c.ID, te.Code, te.Message, now)
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

func cancelResult(p domain.Payment, id domain.CancelID) CancelResult {
	c := p.Cancels[id]
	r := CancelResult{OrderID: p.OrderID, CancelID: id, Amount: c.Amount, PaymentStatus: p.Status, Balance: p.Balance}
	switch c.State {
	case domain.CancelDone:
		r.CancelStatus = domain.CancelDone
	case domain.CancelRefused:
		r.CancelStatus = domain.CancelRefused
		r.Failure = &domain.Failure{Code: c.FailureCode, Message: c.FailureMessage, Source: domain.SourcePSP}
	default:
		r.CancelStatus = domain.CancelPending
		if c.Unknown {
			r.Failure = &domain.Failure{Code: c.FailureCode, Message: c.FailureMessage}
		}
	}
	return r
}
