package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sethvargo/go-retry"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/psp/toss"
)

// ConfirmInput is what Toss's successUrl hands the browser, and the merchant confirming.
type ConfirmInput struct {
	Merchant   domain.MerchantID
	PaymentKey domain.PaymentKey
	OrderID    domain.OrderID
	Amount     decimal.Decimal
}

// ConfirmResult is a payment's state as the confirm left it.
type ConfirmResult struct {
	OrderID    domain.OrderID
	PaymentKey domain.PaymentKey
	Status     domain.Status
	ApprovedAt time.Time // zero unless approved
	Failure    *domain.Failure
	// CancelPending: a cancel of the payment is in flight or its outcome is unknown.
	CancelPending bool
}

// recordTimeout bounds the recording of a PSP outcome.
const recordTimeout = 15 * time.Second

// Confirm approves a payment with the PSP, at most once.
//
//  1. Load the payment and decide (domain.DecideConfirm): a tampered amount is rejected and
//     recorded without a PSP call; a payment already confirming or confirmed answers from its
//     state without a PSP call.
//  2. Append ConfirmationStarted at the loaded version. Of concurrent confirms exactly one
//     append succeeds; the others re-read, see EXECUTING (or the outcome) and call nothing.
//  3. Call the PSP outside any transaction with the attempt's idempotency key, on a context
//     detached from the caller's so the outcome is recorded even if the caller hangs up.
//  4. Append the outcome: approved, rejected, expired, or unknown (never a failure for a timeout).
//
// A payment of another merchant is ErrPaymentNotFound. A merchant without a Toss secret key gets
// ErrMerchantNotConfigured before anything is recorded.
func (s *Service) Confirm(ctx context.Context, in ConfirmInput) (ConfirmResult, error) {
	if err := checkMerchant(in.Merchant); err != nil {
		return ConfirmResult{}, err
	}
	cmd := domain.ConfirmCommand{PaymentKey: in.PaymentKey, OrderID: in.OrderID, Amount: in.Amount}
	meta := newMetadata("merchant")
	var psp PSP
	p, events, err := s.update(ctx, in.OrderID, in.Merchant, meta, func(p domain.Payment) ([]domain.Event, error) {
		events, err := p.DecideConfirm(cmd, s.now())
		if err != nil || len(events) == 0 {
			return events, err
		}
		if _, starts := events[0].(domain.ConfirmationStarted); starts {
			// Never record EXECUTING for a payment no PSP client can confirm.
			if psp, err = s.pspOf(ctx, p); err != nil {
				return nil, err
			}
		}
		return events, nil
	})
	switch {
	case err != nil:
		return ConfirmResult{}, err
	case len(events) == 0: // already confirming or confirmed: answer from the state
		return resultOf(p), nil
	case p.Status == domain.StatusFailure: // our own validation refused it (and it is recorded)
		return ConfirmResult{}, domain.Errorf(domain.ErrAmountMismatch, "%s; the payment is marked failed and the PSP was not called", p.Failure.Message)
	case p.Status == domain.StatusExpired:
		return ConfirmResult{}, domain.Errorf(domain.ErrCheckoutExpired, "order %s expired at %s before it was confirmed", p.OrderID, p.ExpiresAt.In(domain.KST).Format(time.RFC3339))
	}
	return s.callPSP(ctx, psp, p, meta)
}

// callPSP makes the confirm call of the payment's current attempt, retrying unknown outcomes
// under the attempt's idempotency key, and records the outcome.
func (s *Service) callPSP(ctx context.Context, psp PSP, p domain.Payment, meta eventstore.Metadata) (ConfirmResult, error) {
	// Detached from the caller: once ConfirmationStarted is stored, the calls and the recording
	// of their outcome must run to the end even if the caller hangs up. Separate deadlines, so
	// calls that use all of their budget still leave time to record UNKNOWN.
	detached := context.WithoutCancel(ctx)
	pay, pspErr := s.confirmWithRetries(detached, psp, p)
	recordCtx, cancel := context.WithTimeout(detached, recordTimeout)
	defer cancel()
	return s.recordOutcome(recordCtx, psp, p.OrderID, p.Attempt, pay, pspErr, meta)
}

// confirmWithRetries calls the PSP's confirm until it gives a known outcome or the retry policy
// runs out, always with the attempt's idempotency key: Toss replays the first answer, or says
// the first call is still running.
func (s *Service) confirmWithRetries(ctx context.Context, psp PSP, p domain.Payment) (*toss.Payment, error) {
	req := toss.ConfirmRequest{PaymentKey: string(p.PaymentKey), OrderID: string(p.OrderID), Amount: p.TotalAmount}
	var pay *toss.Payment
	start := time.Now()
	calls, err := s.withRetries(ctx, func(ctx context.Context) (err error) {
		pay, err = psp.Confirm(ctx, req, p.PSPIdempotencyKey)
		return err
	})
	s.logger.InfoContext(ctx, "psp confirm", "orderId", p.OrderID, "merchantId", p.MerchantID, "attempt", p.Attempt, "calls", calls,
		"idempotencyKey", p.PSPIdempotencyKey, "ms", time.Since(start).Milliseconds(), "error", errString(err))
	return pay, err
}

// withRetries runs one PSP call until it gives a known outcome or the retry policy runs out (at
// most MaxAttempts calls within Budget, exponential backoff with full jitter). Each call gets
// PSPTimeout. Only unknown outcomes are retried; the caller passes the same idempotency key to
// every call, so a retry can never repeat the operation. It returns the number of calls and
// the last call's error.
func (s *Service) withRetries(ctx context.Context, call func(context.Context) error) (int, error) {
	pol := s.cfg.Retry
	ctx, cancel := context.WithTimeout(ctx, pol.Budget)
	defer cancel()
	backoff := retry.WithMaxRetries(uint64(pol.MaxAttempts-1),
		retry.WithFullJitter(retry.WithCappedDuration(pol.MaxDelay, retry.NewExponential(pol.BaseDelay))))
	var (
		calls int
		err   error
	)
	_ = retry.Do(ctx, backoff, func(ctx context.Context) error {
		calls++
		callCtx, cancel := context.WithTimeout(ctx, s.cfg.PSPTimeout)
		defer cancel()
		err = call(callCtx)
		if err != nil && retryable(err) {
			return retry.RetryableError(err)
		}
		return err
	})
	return calls, err
}

// retryable: an unknown outcome that asking again under the same key can resolve.
// ALREADY_PROCESSED_PAYMENT cannot: only a read-back tells what happened.
func retryable(err error) bool {
	return toss.ClassOf(err) == toss.ClassUnknownOutcome && !toss.AlreadyProcessed(err)
}

// recordOutcome appends what the PSP said about attempt. If the payment moved on meanwhile
// (another process recorded this attempt's outcome), it answers from the newer state.
func (s *Service) recordOutcome(ctx context.Context, psp PSP, id domain.OrderID, attempt int, pay *toss.Payment, pspErr error, meta eventstore.Metadata) (ConfirmResult, error) {
	p, _, err := s.update(ctx, id, "", meta, func(p domain.Payment) ([]domain.Event, error) {
		if p.Attempt != attempt || !unresolved(p) {
			return nil, nil
		}
		return s.outcomeEvents(ctx, psp, p, pay, pspErr)
	})
	if err != nil {
		return ConfirmResult{}, fmt.Errorf("record outcome of %s: %w", id, err)
	}
	return resultOf(p), nil
}

// outcomeEvents classifies the PSP's answer (toss-api.md §9.3) into the payment's next events.
func (s *Service) outcomeEvents(ctx context.Context, psp PSP, p domain.Payment, pay *toss.Payment, pspErr error) ([]domain.Event, error) {
	now := s.now()
	if pspErr == nil {
		if pay.Status != toss.StatusDone {
			return p.DecideUnknown("UNEXPECTED_STATUS", fmt.Sprintf("confirm answered status %s", pay.Status), now)
		}
		approvedAt := now
		if pay.ApprovedAt != nil {
			approvedAt = *pay.ApprovedAt
		}
		events, err := p.DecideApproved(domain.Approval{
			PaymentKey:         domain.PaymentKey(pay.PaymentKey),
			OrderID:            domain.OrderID(pay.OrderID),
			TotalAmount:        pay.TotalAmount,
			ApprovedAt:         approvedAt,
			Method:             pay.Method,
			LastTransactionKey: pay.LastTransactionKey,
		}, now)
		if errors.Is(err, domain.ErrPSPResponseMismatch) {
			// Never record an approval we cannot match; leave it for a person and the read-back.
			s.logger.ErrorContext(ctx, "psp approval does not match the payment", "orderId", p.OrderID, "error", err)
			return p.DecideUnknown(domain.ErrPSPResponseMismatch.Code, err.Error(), now)
		}
		return events, err
	}

	var te *toss.Error
	errors.As(pspErr, &te)
	if toss.AlreadyProcessed(pspErr) {
		// Toss has processed this paymentKey already (our approval under another key, or the
		// buyer's other tab). Approved only if the read-back shows it DONE with our values.
		if events, err := s.readBackEvents(ctx, psp, p, domain.ReadBackOptions{Reason: "confirm read-back"}); err == nil && len(events) > 0 {
			return events, nil
		} else if err != nil {
			s.logger.WarnContext(ctx, "read-back after ALREADY_PROCESSED_PAYMENT failed", "orderId", p.OrderID, "error", err)
		}
		return p.DecideUnknown(te.Code, te.Message, now)
	}
	switch toss.ClassOf(pspErr) {
	case toss.ClassFinal:
		if toss.SessionExpired(pspErr) {
			return p.DecideExpired("Toss payment session expired: "+te.Message, now)
		}
		return p.DecideRejected(te.Code, te.Message, now)
	case toss.ClassMerchantConfig:
		s.logger.ErrorContext(ctx, "Toss refused our credentials or setup; fix the merchant configuration",
			"orderId", p.OrderID, "code", te.Code, "message", te.Message)
		return p.DecideRejected(te.Code, te.Message, now)
	}
	return p.DecideUnknown(unknownCode(te, pspErr), pspErr.Error(), now)
}

// unknownCode names an unknown outcome: the PSP's code, or TIMEOUT / NETWORK_ERROR / HTTP_nnn.
func unknownCode(te *toss.Error, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "TIMEOUT"
	case te == nil || te.HTTPStatus == 0:
		return "NETWORK_ERROR"
	case te.Code != "":
		return te.Code
	}
	return fmt.Sprintf("HTTP_%d", te.HTTPStatus)
}

func resultOf(p domain.Payment) ConfirmResult {
	return ConfirmResult{
		OrderID: p.OrderID, PaymentKey: p.PaymentKey, Status: p.Status,
		ApprovedAt: p.ApprovedAt, Failure: p.Failure, CancelPending: p.PendingCancel() != nil,
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
