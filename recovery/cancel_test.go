package recovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/recovery"
)

// pendingRefund refunds 1000 of an approved payment through a client whose answer is lost, so
// the refund is PENDING, and waits until the read model shows it.
func (f *fixture) pendingRefund(t *testing.T, id domain.OrderID) decimal.Decimal {
	t.Helper()
	lossy, err := commands.New(f.Store, commands.OnePSP(&testenv.LostCancelAnswer{Client: f.Toss}), commands.Config{
		Retry: commands.RetryPolicy{MaxAttempts: 1}}, f.clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	part := decimal.NewFromInt(1000)
	if res, err := lossy.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-26", OrderID: id, Amount: &part, Reason: "refund"}); err != nil || res.CancelStatus != "PENDING" {
		t.Fatalf("cancel: %+v %v, want PENDING", res, err)
	}
	testenv.WaitFor(t, 10*time.Second, "the read model to show the pending cancel with an unknown outcome", func() bool {
		var pending bool
		_ = f.Pool.QueryRow(ctx, `SELECT cancel_pending AND cancel_in_recovery FROM payment_orders WHERE order_id = $1`, id).Scan(&pending)
		return pending
	})
	return part
}

func TestUnknownCancelIsResolvedUnderItsOwnKey(t *testing.T) {
	f := newFixture(t)
	co := f.checkout(t)
	key, err := f.Sim.CreateSession(string(co.OrderID), co.Amount, co.OrderName)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := f.svc.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: domain.PaymentKey(key), OrderID: co.OrderID, Amount: co.Amount}); err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	part := f.pendingRefund(t, co.OrderID)
	s := f.sweeper(t, f.svc, recovery.Config{StaleAfter: time.Minute})
	// The request ended without an outcome, so no request works on it any more: recovery
	// retries it at once, without waiting for it to look stale.
	if r := sweep(t, s); r != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("sweep %+v, want the cancel resolved", r)
	}
	p, err := domain.Rebuild(f.Events(t, co.OrderID))
	if err != nil || p.Status != domain.StatusPartiallyCanceled || !p.Balance.Equal(co.Amount.Sub(part)) || p.PendingCancel() != nil {
		t.Fatalf("after recovery: %s balance %s (%v)", p.Status, p.Balance, err)
	}
	if n := f.Sim.Stats().CancelsProcessed; n != 1 {
		t.Fatalf("simulator processed %d cancels, want 1: the retry must replay, never refund again", n)
	}
}

// A payment whose confirm recovery resolved, and whose later refund's outcome goes unknown, must
// still have that refund recovered (the confirm's parked state row must not hide it).
func TestCancelAfterARecoveredConfirmIsStillRecovered(t *testing.T) {
	f := newFixture(t)
	ids := f.unknownPayments(t, 1, approvedButErrored)
	id := ids[0]
	s := f.sweeper(t, f.svc, recovery.Config{StaleAfter: time.Minute})
	if r := sweep(t, s); r != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("first sweep %+v, want the confirm resolved", r)
	}
	f.waitReadModel(t, id, domain.StatusSuccess)

	f.pendingRefund(t, id)
	resolved := false
	for i := 1; i <= 3 && !resolved; i++ { // the parked row is forgotten, then the stale cancel is leased
		f.clock.Set(f.clock.Now().Add(2 * time.Minute))
		resolved = sweep(t, s).Resolved == 1
	}
	p, err := domain.Rebuild(f.Events(t, id))
	if err != nil || !resolved || p.PendingCancel() != nil || p.Status != domain.StatusPartiallyCanceled {
		t.Fatalf("after sweeps: resolved %v, status %s, pending cancel %v (%v)", resolved, p.Status, p.PendingCancel() != nil, err)
	}
	if n := f.Sim.Stats().CancelsProcessed; n != 1 {
		t.Fatalf("simulator processed %d cancels, want 1", n)
	}
}

// A refund whose outcome recovery never learns is flagged for review, not silently dropped.
func TestExhaustedCancelIsFlaggedForReview(t *testing.T) {
	f := newFixture(t)
	ids := f.unknownPayments(t, 1, approvedButErrored)
	id := ids[0]
	if res, err := f.svc.ResolveConfirm(ctx, id, commands.ResolveOptions{NewAttempt: true, Actor: "recovery"}); err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("recover the confirm: %+v %v", res, err)
	}
	f.pendingRefund(t, id)
	rec := newSpy(f.svc)
	rec.setFail(tossDown(string(id))) // Toss never answers
	s := f.sweeper(t, rec, recovery.Config{StaleAfter: time.Minute, MaxAttempts: 2, Breaker: recovery.BreakerConfig{Failures: 100}})
	exhausted := false
	for i := 0; i < 6 && !exhausted; i++ {
		f.clock.Set(f.clock.Now().Add(time.Hour))
		exhausted = sweep(t, s).Exhausted == 1
	}
	if !exhausted {
		t.Fatal("recovery never gave up on the cancel")
	}
	testenv.WaitFor(t, 10*time.Second, "the payment listed for review", func() bool {
		page, err := f.Queries.ListPayments(ctx, testenv.Merchant, queries.ListQuery{NeedsReview: true})
		return err == nil && len(page.Payments) == 1 && page.Payments[0].OrderID == string(id) && page.Payments[0].CancelPending
	})
	p, err := domain.Rebuild(f.Events(t, id))
	if err != nil || !p.NeedsReview || p.PendingCancel() == nil || p.Status != domain.StatusSuccess {
		t.Fatalf("payment %s needsReview %v pending %v (%v)", p.Status, p.NeedsReview, p.PendingCancel() != nil, err)
	}
	if err := domain.CheckHistory(f.Events(t, id)); err != nil {
		t.Fatal(err)
	}
}

// unknownCancels is a Toss client whose cancels and lookups never give an answer (a cancel may
// or may not have reached Toss), the way a Toss outage looks to a refund.
type unknownCancels struct{ commands.PSP }

func (unknownCancels) Cancel(context.Context, string, toss.CancelRequest, string) (*toss.Payment, error) {
	return nil, &toss.Error{Op: "cancel", HTTPStatus: 503, Class: toss.ClassUnknownOutcome}
}

func (unknownCancels) GetPaymentByOrderID(context.Context, string) (*toss.Payment, error) {
	return nil, &toss.Error{Op: "get payment", HTTPStatus: 503, Class: toss.ClassUnknownOutcome}
}

// The defect: a refund whose outcome stays unknown was retried only every RECOVERY_STALE_AFTER,
// because each failed retry records an event and so looks fresh again. It must follow the
// recovery delays (RECOVERY_BASE_DELAY, doubling), like an unknown confirm.
func TestUnknownCancelIsRetriedOnTheRecoveryDelayNotStaleAfter(t *testing.T) {
	f := newFixture(t)
	ids := f.unknownPayments(t, 1, approvedButErrored)
	id := ids[0]
	if res, err := f.svc.ResolveConfirm(ctx, id, commands.ResolveOptions{NewAttempt: true, Actor: "recovery"}); err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("recover the confirm: %+v %v", res, err)
	}
	f.pendingRefund(t, id)
	down, err := commands.New(f.Store, commands.OnePSP(unknownCancels{f.Toss}), commands.Config{
		Retry: commands.RetryPolicy{MaxAttempts: 1}}, f.clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := recovery.Config{StaleAfter: time.Hour, BaseDelay: time.Minute, MaxDelay: time.Hour, Breaker: recovery.BreakerConfig{Failures: 100}}
	s := f.sweeper(t, down, cfg)
	versionOf := func() int64 {
		var v int64
		_ = f.Pool.QueryRow(ctx, `SELECT version FROM payment_orders WHERE order_id = $1`, id).Scan(&v)
		return v
	}
	for attempt := 1; attempt <= 3; attempt++ {
		before := len(f.Events(t, id))
		if r := sweep(t, s); r.Leased != 1 || r.StillUnknown+r.Failed != 1 {
			t.Fatalf("attempt %d: sweep %+v, want the unknown refund retried", attempt, r)
		}
		after := len(f.Events(t, id))
		if after != before+1 {
			t.Fatalf("attempt %d: %d new events, want one CancelOutcomeUnknown", attempt, after-before)
		}
		testenv.WaitFor(t, 10*time.Second, "the read model to see the retry", func() bool { return versionOf() == int64(after) })
		// The delay after attempt n is at most BaseDelay·2^(n-1), far below StaleAfter.
		f.clock.Set(f.clock.Now().Add(time.Minute << attempt))
	}
}
