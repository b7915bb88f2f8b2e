package domain_test

import (
	"errors"
	"reflect"
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
		{"CANCELED outside this system needs review", domain.StatusUnknown, readBack(domain.PSPCanceled), t0, false, nil, domain.ErrPSPResponseMismatch, domain.StatusUnknown},
		{"PARTIAL_CANCELED outside this system needs review", domain.StatusExecuting, readBack(domain.PSPPartialCanceled), t0, true, nil, domain.ErrPSPResponseMismatch, domain.StatusExecuting},
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
			got, err := p.DecideReadBack(tc.rb, tc.now, tc.newAttempt)
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
	approve, _ := p.DecideReadBack(readBack(domain.PSPDone), t0, false)
	_ = p.Apply(approve[0])
	if p.Status != domain.StatusSuccess || p.NeedsReview {
		t.Fatalf("after a late approval: status %s needsReview %v", p.Status, p.NeedsReview)
	}
	s, _ := domain.Rebuild(given[domain.StatusSuccess])
	if _, err := s.DecideRecoveryExhausted(1, "x", t0); !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("exhausting a successful payment: %v", err)
	}
}
