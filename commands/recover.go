package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// readBack asks the PSP for the truth about an order. A 404 is PSPNotFound, not an error.
func (s *Service) readBack(ctx context.Context, psp PSP, id domain.OrderID) (domain.ReadBack, error) {
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.PSPTimeout)
	defer cancel()
	pay, err := psp.GetPaymentByOrderID(callCtx, string(id))
	if toss.IsNotFound(err) {
		return domain.ReadBack{Status: domain.PSPNotFound, OrderID: id}, nil
	}
	if err != nil {
		return domain.ReadBack{}, fmt.Errorf("read back %s: %w", id, err)
	}
	rb := domain.ReadBack{
		Status:             domain.PSPStatus(pay.Status),
		PaymentKey:         domain.PaymentKey(pay.PaymentKey),
		OrderID:            domain.OrderID(pay.OrderID),
		TotalAmount:        pay.TotalAmount,
		Method:             pay.Method,
		LastTransactionKey: pay.LastTransactionKey,
	}
	if pay.ApprovedAt != nil {
		rb.ApprovedAt = *pay.ApprovedAt
	}
	if pay.Failure != nil {
		rb.FailureCode, rb.FailureMessage = pay.Failure.Code, pay.Failure.Message
	}
	rb.BalanceAmount = pay.BalanceAmount
	for _, c := range pay.Cancels {
		pc := domain.PSPCancel{TransactionKey: c.TransactionKey, Amount: c.CancelAmount, Reason: c.CancelReason}
		if c.CanceledAt != nil {
			pc.CanceledAt = *c.CanceledAt
		}
		rb.Cancels = append(rb.Cancels, pc)
	}
	return rb, nil
}

// readBackEvents reads the order back and decides what it means for p.
func (s *Service) readBackEvents(ctx context.Context, psp PSP, p domain.Payment, opts domain.ReadBackOptions) ([]domain.Event, error) {
	rb, err := s.readBack(ctx, psp, p.OrderID)
	if err != nil {
		return nil, err
	}
	return p.DecideReadBack(rb, s.now(), opts)
}

// ResolveOptions say how a resolve may act.
type ResolveOptions struct {
	// NewAttempt allows a new confirm attempt when the PSP shows the payment still IN_PROGRESS.
	// The sweeper allows it; the webhook worker does not (a webhook only reports a change).
	NewAttempt bool
	Actor      string // "recovery", "webhook", …
	// Merchant, when set, is the merchant the caller acts for (a webhook arrived at its URL):
	// a payment of another merchant is domain.ErrPaymentNotFound and is not read back.
	Merchant domain.MerchantID
}

// ResolveConfirm resolves a payment whose confirm outcome we do not know (EXECUTING or UNKNOWN)
// from the PSP's truth: it reads the order back and records what it shows, or starts and runs a
// new confirm attempt when the PSP still shows it IN_PROGRESS (opts.NewAttempt). A payment whose
// outcome is known is returned as it is, without asking the PSP. The result's status is UNKNOWN
// or EXECUTING while it stays unresolved; the error is non-nil when the PSP could not be asked or
// disagrees with us. The stream is loaded once (again only after losing a race to a writer).
func (s *Service) ResolveConfirm(ctx context.Context, id domain.OrderID, opts ResolveOptions) (ConfirmResult, error) {
	meta := newMetadata(opts.Actor)
	var psp PSP
	p, events, err := s.update(ctx, id, opts.Merchant, meta, func(p domain.Payment) ([]domain.Event, error) {
		if !unresolved(p) {
			return nil, nil
		}
		if psp == nil {
			var err error
			if psp, err = s.pspOf(ctx, p); err != nil {
				return nil, err
			}
		}
		return s.readBackEvents(ctx, psp, p, domain.ReadBackOptions{NewAttempt: opts.NewAttempt, Reason: opts.Actor + " read-back"})
	})
	if err != nil || len(events) == 0 {
		if p.OrderID == "" {
			return ConfirmResult{}, err
		}
		return resultOf(p), err
	}
	s.logger.InfoContext(ctx, "resolved", "orderId", id, "actor", opts.Actor, "event", events[0].EventType(), "status", p.Status)
	if _, started := events[0].(domain.ConfirmationStarted); started {
		return s.callPSP(ctx, psp, p, meta)
	}
	return resultOf(p), nil
}

// Sync reads a payment back from the PSP, whatever its state here, and records what the PSP's
// truth implies (domain.Payment.DecideReadBack): the outcome of an unresolved confirm (never a
// new attempt), a pending cancel that completed, a cancel made in Toss's console, an approval
// Toss holds for a payment that failed or expired here. It is what the webhook worker does for
// each order a webhook names, so such changes are booked within moments of Toss's webhook.
func (s *Service) Sync(ctx context.Context, id domain.OrderID, opts ResolveOptions) (ConfirmResult, error) {
	meta := newMetadata(opts.Actor)
	var psp PSP
	p, events, err := s.update(ctx, id, opts.Merchant, meta, func(p domain.Payment) ([]domain.Event, error) {
		if psp == nil {
			var err error
			if psp, err = s.pspOf(ctx, p); err != nil {
				return nil, err
			}
		}
		return s.readBackEvents(ctx, psp, p, domain.ReadBackOptions{Reason: opts.Actor + " read-back"})
	})
	if err != nil {
		if p.OrderID == "" {
			return ConfirmResult{}, err
		}
		return resultOf(p), err
	}
	if len(events) > 0 {
		s.logger.InfoContext(ctx, "synced from the PSP", "orderId", id, "actor", opts.Actor, "events", len(events), "first", events[0].EventType(), "status", p.Status)
	}
	return resultOf(p), nil
}

// ResolveCancel resolves the payment's pending cancel whose outcome we do not know. It reads the
// payment back first: a cancel the PSP lists is booked from its truth (domain.DecideReadBack),
// whatever the PSP would answer a repeated call (it replays a stored error such as
// ALREADY_CANCELED_PAYMENT under the cancel's key for as long as the key lives). Only when the
// PSP lists no such cancel, or cannot be read, does it call the PSP again under the cancel's own key, which performs
// the cancel if the PSP never did. A new key is used only after the PSP said it executed nothing
// (CancelRetried). A payment without a pending cancel is returned as it is.
func (s *Service) ResolveCancel(ctx context.Context, id domain.OrderID, opts ResolveOptions) (CancelResult, error) {
	meta := newMetadata(opts.Actor)
	var (
		psp     PSP
		pending domain.CancelID
	)
	p, _, err := s.update(ctx, id, opts.Merchant, meta, func(p domain.Payment) ([]domain.Event, error) {
		c := p.PendingCancel()
		if c == nil {
			return nil, nil
		}
		pending = c.ID
		if psp == nil {
			var err error
			if psp, err = s.pspOf(ctx, p); err != nil {
				return nil, err
			}
		}
		events, err := s.readBackEvents(ctx, psp, p, domain.ReadBackOptions{Reason: opts.Actor + " read-back"})
		var pspErr *toss.Error
		if errors.As(err, &pspErr) {
			// Toss could not be asked (down, slow): the call under the cancel's key below
			// learns the outcome as well, or fails the same way.
			s.logger.WarnContext(ctx, "cancel read-back failed; calling again under the cancel's key", "orderId", p.OrderID, "error", err)
			return nil, nil
		}
		return events, err
	})
	switch {
	case p.OrderID == "":
		return CancelResult{}, err
	case pending == "":
		return CancelResult{OrderID: id, PaymentStatus: p.Status, Balance: p.Balance}, err
	case err != nil:
		return cancelResult(p, pending), err
	}
	c := p.PendingCancel()
	if c == nil { // the read-back resolved it
		return cancelResult(p, pending), nil
	}
	return s.callCancel(ctx, psp, p, *c, meta)
}

// MarkExhausted records that recovery gave up on a payment after attempts tries.
func (s *Service) MarkExhausted(ctx context.Context, id domain.OrderID, attempts int, lastError string) error {
	_, events, err := s.update(ctx, id, "", newMetadata("recovery"), func(p domain.Payment) ([]domain.Event, error) {
		if !unresolved(p) {
			if p.PendingCancel() != nil { // a refund whose outcome recovery could not learn
				return p.DecideCancelRecoveryExhausted(attempts, lastError, s.now())
			}
			return nil, nil // resolved meanwhile
		}
		return p.DecideRecoveryExhausted(attempts, lastError, s.now())
	})
	if err == nil && len(events) > 0 {
		s.logger.WarnContext(ctx, "recovery exhausted; the payment needs review", "orderId", id, "attempts", attempts, "lastError", lastError)
	}
	return err
}
