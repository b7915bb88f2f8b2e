package domain_test

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

func amountPtr(s string) *decimal.Decimal { d := won(s); return &d }

func approvedPayment(t *testing.T) domain.Payment {
	t.Helper()
	p, err := domain.Rebuild(given[domain.StatusSuccess])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func apply(t *testing.T, p *domain.Payment, events []domain.Event, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if err := p.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPartialThenFullCancel(t *testing.T) {
	p := approvedPayment(t)
	if !p.Balance.Equal(won("25000")) {
		t.Fatalf("balance after approval %s", p.Balance)
	}
	events, err := p.DecideCancel(domain.CancelCommand{CancelID: "c1", Amount: amountPtr("10000"), Reason: "one book back"}, t0)
	if err != nil || len(events) != 1 {
		t.Fatalf("%v %v", events, err)
	}
	if r := events[0].(domain.CancelRequested); r.PSPIdempotencyKey != "order-0001:cancel:c1" || !r.Amount.Equal(won("10000")) {
		t.Fatalf("request %+v", r)
	}
	apply(t, &p, events, nil)

	// One cancel at a time: a second one waits for the first.
	if _, err := p.DecideCancel(domain.CancelCommand{CancelID: "c2", Reason: "rest"}, t0); !errors.Is(err, domain.ErrCancelInProgress) {
		t.Fatalf("second cancel while one is pending: %v", err)
	}
	// The same cancel again decides nothing; with another amount it is a conflict.
	if again, err := p.DecideCancel(domain.CancelCommand{CancelID: "c1", Amount: amountPtr("10000"), Reason: "one book back"}, t0); err != nil || again != nil {
		t.Fatalf("retry: %v %v", again, err)
	}
	if _, err := p.DecideCancel(domain.CancelCommand{CancelID: "c1", Amount: amountPtr("5000"), Reason: "x"}, t0); !errors.Is(err, domain.ErrIdempotencyConflict) {
		t.Fatalf("retry with another amount: %v", err)
	}
	if _, err := p.DecideCanceled("c1", won("9999"), "TX2", t0, t0); !errors.Is(err, domain.ErrPSPResponseMismatch) {
		t.Fatalf("PSP canceled another amount: %v", err)
	}
	events, err = p.DecideCanceled("c1", won("10000"), "TX2", t0, t0)
	apply(t, &p, events, err)
	if p.Status != domain.StatusPartiallyCanceled || !p.Balance.Equal(won("15000")) || !p.CanceledAmount.Equal(won("10000")) {
		t.Fatalf("after partial cancel: %s balance %s canceled %s", p.Status, p.Balance, p.CanceledAmount)
	}
	if dup, err := p.DecideCanceled("c1", won("10000"), "TX2", t0, t0); err != nil || dup != nil {
		t.Fatalf("duplicate outcome: %v %v", dup, err)
	}

	if _, err := p.DecideCancel(domain.CancelCommand{CancelID: "c2", Amount: amountPtr("15001"), Reason: "too much"}, t0); !errors.Is(err, domain.ErrCancelExceedsAmount) {
		t.Fatalf("over the balance: %v", err)
	}
	events, err = p.DecideCancel(domain.CancelCommand{CancelID: "c2", Reason: "the rest"}, t0) // no amount: the balance
	apply(t, &p, events, err)
	events, err = p.DecideCanceled("c2", won("15000"), "TX3", t0, t0)
	apply(t, &p, events, err)
	if p.Status != domain.StatusCanceled || !p.Balance.IsZero() {
		t.Fatalf("after full cancel: %s balance %s", p.Status, p.Balance)
	}
	if _, err := p.DecideCancel(domain.CancelCommand{CancelID: "c3", Reason: "again"}, t0); !errors.Is(err, domain.ErrNotCancelable) {
		t.Fatalf("cancel of a canceled payment: %v", err)
	}
	var history []domain.Event
	history = append(history, given[domain.StatusSuccess]...)
	for _, id := range []domain.CancelID{"c1", "c2"} {
		c := p.Cancels[id]
		history = append(history, domain.CancelRequested{EventHeader: header(t0), CancelID: id, Amount: c.Amount, Reason: c.Reason, PSPIdempotencyKey: c.PSPIdempotencyKey})
		history = append(history, domain.PaymentCanceled{EventHeader: header(t0), CancelID: id, Amount: c.Amount, TransactionKey: c.TransactionKey, CanceledAt: t0,
			BalanceAfter: map[domain.CancelID]decimal.Decimal{"c1": won("15000"), "c2": won("0")}[id]})
	}
	if err := domain.CheckHistory(history); err != nil {
		t.Fatalf("history: %v", err)
	}
}

func TestCancelRejectedAndUnknown(t *testing.T) {
	p := approvedPayment(t)
	events, err := p.DecideCancel(domain.CancelCommand{CancelID: "c1", Reason: "r"}, t0)
	apply(t, &p, events, err)
	events, err = p.DecideCancelUnknown("c1", "TIMEOUT", "no answer", t0)
	apply(t, &p, events, err)
	if c := p.Cancels["c1"]; c.State != domain.CancelPending || !c.Unknown {
		t.Fatalf("after unknown: %+v", c)
	}
	events, err = p.DecideCancelRejected("c1", "NOT_CANCELABLE_PAYMENT", "no", t0)
	apply(t, &p, events, err)
	if c := p.Cancels["c1"]; c.State != domain.CancelRefused || p.Status != domain.StatusSuccess || !p.Balance.Equal(won("25000")) {
		t.Fatalf("after rejection: %+v %s %s", c, p.Status, p.Balance)
	}
	if p.PendingCancel() != nil {
		t.Fatal("a rejected cancel is still pending")
	}
	for _, s := range []domain.Status{domain.StatusNotStarted, domain.StatusExecuting, domain.StatusFailure, domain.StatusUnknown, domain.StatusExpired} {
		q, _ := domain.Rebuild(given[s])
		if _, err := q.DecideCancel(domain.CancelCommand{CancelID: "c", Reason: "r"}, t0); !errors.Is(err, domain.ErrNotCancelable) {
			t.Errorf("cancel in %s: %v", s, err)
		}
	}
}

func TestSettlementOncePerTransaction(t *testing.T) {
	p := approvedPayment(t)
	in := domain.SettlementInput{TransactionKey: "TX1", PaymentKey: key, SoldDate: "2026-11-21", PaidOutDate: "2026-11-23",
		Amount: won("25000"), Fee: won("825"), VAT: won("75"), PayOutAmount: won("24175")}
	events, err := p.DecideSettlement(in, t0)
	apply(t, &p, events, err)
	if len(events) != 1 {
		t.Fatalf("events %v", events)
	}
	if again, err := p.DecideSettlement(in, t0); err != nil || again != nil {
		t.Fatalf("second import: %v %v", again, err)
	}
	bad := in
	bad.TransactionKey, bad.PayOutAmount = "TX9", won("1")
	if _, err := p.DecideSettlement(bad, t0); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("payout that does not add up: %v", err)
	}
	q, _ := domain.Rebuild(given[domain.StatusFailure])
	if _, err := q.DecideSettlement(in, t0); !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("settlement of a failed payment: %v", err)
	}
}

// A call the PSP refused without executing it moves the cancel to a new key; the history stays
// legal and the next key is numbered.
func TestCancelRetryMovesToANewKey(t *testing.T) {
	p := approvedPayment(t)
	events, err := p.DecideCancel(domain.CancelCommand{CancelID: "c1", Amount: amountPtr("10000"), Reason: "back"}, t0)
	apply(t, &p, events, err)
	if got := p.Cancels["c1"].PSPIdempotencyKey; got != "order-0001:cancel:c1" {
		t.Fatalf("first key %q", got)
	}
	retried, err := p.DecideCancelRetry("c1", "FORBIDDEN_CONSECUTIVE_REQUEST", "too soon", t0)
	apply(t, &p, retried, err)
	c := p.Cancels["c1"]
	if c.Attempt != 2 || c.PSPIdempotencyKey != "order-0001:cancel:c1:2" || c.State != domain.CancelPending {
		t.Fatalf("after a retry: %+v", c)
	}
	history := append(append(append([]domain.Event{}, given[domain.StatusSuccess]...), events...), retried...)
	if err := domain.CheckHistory(history); err != nil {
		t.Fatal(err)
	}
	// A retry that skips an attempt number is illegal history.
	bad := retried[0].(domain.CancelRetried)
	bad.Attempt = 3
	if err := domain.CheckHistory(append(history[:len(history)-1], bad)); err == nil {
		t.Fatal("a skipped attempt must be illegal")
	}
	canceled, err := p.DecideCanceled("c1", won("10000"), "TX-C1", t0, t0)
	apply(t, &p, canceled, err)
	if _, err := p.DecideCancelRetry("c1", "X", "y", t0); !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("retrying a finished cancel: %v", err)
	}
	if !p.LastCanceledAt.Equal(t0) {
		t.Fatalf("LastCanceledAt %v", p.LastCanceledAt)
	}
}
