package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/domain"
)

func readBack(status domain.PSPStatus) domain.ReadBack {
	return domain.ReadBack{Status: status, PaymentKey: key, OrderID: order, TotalAmount: won("25000"),
		ApprovedAt: t0, Method: "카드", LastTransactionKey: "TX1"}
}

func TestDecideReadBack(t *testing.T) {
	secondAttempt := domain.ConfirmationStarted{EventHeader: header(t0), PaymentKey: key, Amount: won("25000"),
		Attempt: 2, PSPIdempotencyKey: "order-0001:confirm:2"}
	afterWindow := t0.Add(domain.TossConfirmWindow + time.Second)
	cases := []struct {
		name       string
		given      domain.Status
		rb         domain.ReadBack
		now        time.Time
		newAttempt bool
		then       []domain.Event
		err        *domain.Error
		status     domain.Status
	}{
		{"DONE approves an executing payment", domain.StatusExecuting, readBack(domain.PSPDone), t0, true, []domain.Event{approved}, nil, domain.StatusSuccess},
		{"DONE approves an unknown payment", domain.StatusUnknown, readBack(domain.PSPDone), t0, false, []domain.Event{approved}, nil, domain.StatusSuccess},
		{"CANCELED with another amount is refused", domain.StatusUnknown, func() domain.ReadBack { r := readBack(domain.PSPCanceled); r.TotalAmount = won("1"); return r }(), t0, false, nil, domain.ErrPSPResponseMismatch, domain.StatusUnknown},
		{"DONE with another amount is refused", domain.StatusUnknown, func() domain.ReadBack { r := readBack(domain.PSPDone); r.TotalAmount = won("1"); return r }(), t0, false, nil, domain.ErrPSPResponseMismatch, domain.StatusUnknown},
		{"DONE for another paymentKey is refused", domain.StatusUnknown, func() domain.ReadBack { r := readBack(domain.PSPDone); r.PaymentKey = "other"; return r }(), t0, false, nil, domain.ErrPSPResponseMismatch, domain.StatusUnknown},
		{"ABORTED rejects", domain.StatusUnknown, func() domain.ReadBack {
			r := readBack(domain.PSPAborted)
			r.FailureCode, r.FailureMessage = "REJECT_CARD_PAYMENT", "limit"
			return r
		}(), t0, false, []domain.Event{rejected}, nil, domain.StatusFailure},
		{"EXPIRED expires", domain.StatusExecuting, readBack(domain.PSPExpired), t0, false, []domain.Event{domain.PaymentExpired{EventHeader: header(t0), Reason: "the PSP reports the payment EXPIRED"}}, nil, domain.StatusExpired},
		{"IN_PROGRESS starts attempt 2 when allowed", domain.StatusUnknown, readBack(domain.PSPInProgress), t0, true, []domain.Event{secondAttempt}, nil, domain.StatusExecuting},
		{"IN_PROGRESS waits when not allowed", domain.StatusUnknown, readBack(domain.PSPInProgress), t0, false, nil, nil, domain.StatusUnknown},
		{"NOT_FOUND inside the window waits", domain.StatusUnknown, readBack(domain.PSPNotFound), t0, true, nil, nil, domain.StatusUnknown},
		{"NOT_FOUND after the window expires", domain.StatusUnknown, readBack(domain.PSPNotFound), afterWindow, true, []domain.Event{domain.PaymentExpired{
			EventHeader: header(afterWindow), Reason: "the PSP has no payment for the order 10m0s after its confirm window"}}, nil, domain.StatusExpired},
		{"READY waits", domain.StatusExecuting, readBack(domain.PSPReady), t0, true, nil, nil, domain.StatusExecuting},
		{"a known outcome is left alone", domain.StatusSuccess, readBack(domain.PSPAborted), t0, true, nil, nil, domain.StatusSuccess},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := domain.Rebuild(given[tc.given])
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.DecideReadBack(tc.rb, tc.now, domain.ReadBackOptions{NewAttempt: tc.newAttempt})
			if tc.err != nil && !errors.Is(err, tc.err) || tc.err == nil && err != nil {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("events\n got %#v\nwant %#v", got, tc.then)
			}
			for _, e := range got {
				_ = p.Apply(e)
			}
			if p.Status != tc.status {
				t.Fatalf("status %s, want %s", p.Status, tc.status)
			}
		})
	}
}

func TestRecoveryExhaustedMarksForReviewOnce(t *testing.T) {
	p, _ := domain.Rebuild(given[domain.StatusExecuting])
	got, err := p.DecideRecoveryExhausted(5, "TIMEOUT", t0)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
	_ = p.Apply(got[0])
	if p.Status != domain.StatusUnknown || !p.NeedsReview {
		t.Fatalf("status %s needsReview %v", p.Status, p.NeedsReview)
	}
	if again, err := p.DecideRecoveryExhausted(6, "TIMEOUT", t0); err != nil || again != nil {
		t.Fatalf("second exhaustion: %v %v", again, err)
	}
	approve, _ := p.DecideReadBack(readBack(domain.PSPDone), t0, domain.ReadBackOptions{})
	_ = p.Apply(approve[0])
	if p.Status != domain.StatusSuccess || p.NeedsReview {
		t.Fatalf("after a late approval: status %s needsReview %v", p.Status, p.NeedsReview)
	}
	s, _ := domain.Rebuild(given[domain.StatusSuccess])
	if _, err := s.DecideRecoveryExhausted(1, "x", t0); !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("exhausting a successful payment: %v", err)
	}
}

// canceledAtToss is Toss's view of the payment after cancels made in its console (or ours).
func canceledAtToss(status domain.PSPStatus, cancels ...domain.PSPCancel) domain.ReadBack {
	rb := readBack(status)
	rb.Cancels = cancels
	rb.LastTransactionKey = cancels[len(cancels)-1].TransactionKey
	return rb
}

func pspCancel(key, amount string) domain.PSPCancel {
	return domain.PSPCancel{TransactionKey: key, Amount: won(amount), CanceledAt: t0, Reason: "console"}
}

// What the PSP did that this ledger did not: approvals and cancels found by a read-back are
// booked (the same decisions for recovery, the webhook worker and reconciliation), and each
// resulting history is legal.
func TestReadBackBooksWhatThePSPDid(t *testing.T) {
	opts := domain.ReadBackOptions{Reason: "test read-back"}
	canceledHere := func(key, amount, balance string) domain.Event {
		return domain.PaymentCanceledAtPSP{EventHeader: header(t0), TransactionKey: key, Amount: won(amount), CanceledAt: t0,
			BalanceAfter: won(balance), CancelReason: "console", Reason: "test read-back"}
	}
	approvedAtPSP := func(prev domain.Status, txKey string) domain.Event {
		return domain.PaymentApprovedAtPSP{EventHeader: header(t0), PaymentKey: key, ApprovedAt: t0, Method: "카드",
			TotalAmount: won("25000"), LastTransactionKey: txKey, PreviousStatus: prev, Reason: "test read-back"}
	}
	approvedBeforeCancels := approved
	approvedBeforeCancels.LastTransactionKey = ""
	pendingCancel := domain.CancelRequested{EventHeader: header(t0), CancelID: "c1", Amount: won("5000"), Reason: "ours",
		PSPIdempotencyKey: "order-0001:cancel:c1"}
	for _, tc := range []struct {
		name   string
		given  []domain.Event
		rb     domain.ReadBack
		then   []domain.Event
		err    *domain.Error
		status domain.Status
	}{
		{"unknown, refunded at Toss in full: approved, then canceled", given[domain.StatusUnknown],
			canceledAtToss(domain.PSPCanceled, pspCancel("TXC1", "25000")),
			[]domain.Event{approvedBeforeCancels, canceledHere("TXC1", "25000", "0")}, nil, domain.StatusCanceled},
		{"approved, a console cancel: booked", given[domain.StatusSuccess],
			canceledAtToss(domain.PSPPartialCanceled, pspCancel("TXC1", "10000")),
			[]domain.Event{canceledHere("TXC1", "10000", "15000")}, nil, domain.StatusPartiallyCanceled},
		{"approved, the same console cancel again: nothing", append(given[domain.StatusSuccess], canceledHere("TXC1", "10000", "15000")),
			canceledAtToss(domain.PSPPartialCanceled, pspCancel("TXC1", "10000")), nil, nil, domain.StatusPartiallyCanceled},
		{"our pending cancel shows at Toss: it is ours, resolved", append(given[domain.StatusSuccess], pendingCancel),
			canceledAtToss(domain.PSPPartialCanceled, pspCancel("TXC2", "5000")),
			[]domain.Event{domain.PaymentCanceled{EventHeader: header(t0), CancelID: "c1", Amount: won("5000"), TransactionKey: "TXC2", CanceledAt: t0, BalanceAfter: won("20000")}},
			nil, domain.StatusPartiallyCanceled},
		{"approved, another payment's cancels are not booked", given[domain.StatusSuccess],
			func() domain.ReadBack {
				r := canceledAtToss(domain.PSPPartialCanceled, pspCancel("TXC1", "1000"))
				r.PaymentKey = "tosss_another"
				return r
			}(), nil, domain.ErrPSPResponseMismatch, domain.StatusSuccess},
		{"approved, another order's cancels are not booked", given[domain.StatusSuccess],
			func() domain.ReadBack {
				r := canceledAtToss(domain.PSPPartialCanceled, pspCancel("TXC1", "1000"))
				r.OrderID = "order-9999"
				return r
			}(), nil, domain.ErrPSPResponseMismatch, domain.StatusSuccess},
		{"a console cancel above the balance needs review", given[domain.StatusSuccess],
			canceledAtToss(domain.PSPCanceled, pspCancel("TXC1", "30000")), nil, domain.ErrPSPResponseMismatch, domain.StatusSuccess},
		{"failed here, approved at Toss", given[domain.StatusFailure], readBack(domain.PSPDone),
			[]domain.Event{approvedAtPSP(domain.StatusFailure, "TX1")}, nil, domain.StatusSuccess},
		{"only checked out here, approved and partly canceled at Toss", given[domain.StatusNotStarted],
			canceledAtToss(domain.PSPPartialCanceled, pspCancel("TXC1", "1000")),
			[]domain.Event{approvedAtPSP(domain.StatusNotStarted, ""), canceledHere("TXC1", "1000", "24000")}, nil, domain.StatusPartiallyCanceled},
		{"expired here, Toss approved another amount: review", given[domain.StatusExpired],
			func() domain.ReadBack { r := readBack(domain.PSPDone); r.TotalAmount = won("99"); return r }(), nil, domain.ErrPSPResponseMismatch, domain.StatusExpired},
		{"failed here and at Toss: nothing", given[domain.StatusFailure], readBack(domain.PSPAborted), nil, nil, domain.StatusFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := domain.Rebuild(tc.given)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.DecideReadBack(tc.rb, t0, opts)
			if tc.err != nil && !errors.Is(err, tc.err) || tc.err == nil && err != nil {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if encoded(t, got) != encoded(t, tc.then) { // amounts compare by value, not representation
				t.Fatalf("events\n got %#v\nwant %#v", got, tc.then)
			}
			for _, e := range got {
				if err := p.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
			if p.Status != tc.status {
				t.Fatalf("status %s, want %s", p.Status, tc.status)
			}
			if err := domain.CheckHistory(append(append([]domain.Event{}, tc.given...), got...)); err != nil {
				t.Fatalf("the history is not legal: %v", err)
			}
			for _, e := range got { // every event survives the store's encoding
				b, _ := domain.MarshalEvent(e)
				back, err := domain.UnmarshalEvent(string(e.EventType()), domain.SchemaVersion, b)
				if err != nil || encoded(t, []domain.Event{back}) != encoded(t, []domain.Event{e}) {
					t.Fatalf("%s round trip: %v", e.EventType(), err)
				}
			}
		})
	}
}

// encoded is events as stored, for comparing decided events by value.
func encoded(t *testing.T, events []domain.Event) string {
	t.Helper()
	var out []string
	for _, e := range events {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(e.EventType())+string(b))
	}
	return strings.Join(out, "\n")
}
