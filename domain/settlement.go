package domain

import (
	"time"

	"github.com/shopspring/decimal"
)

// Settlement: a row of Toss's settlement report for one of the payment's transactions, recorded
// once per transaction key. "Settled" means this and only this.

// SettlementInput is one settlement row for a transaction of the payment.
type SettlementInput struct {
	TransactionKey   string
	PaymentKey       PaymentKey
	SoldDate         string
	PaidOutDate      string
	Amount, Fee, VAT decimal.Decimal
	PayOutAmount     decimal.Decimal
}

// DecideSettlement records a settlement row once per transaction key. Only approved payments
// settle; the row must be of this payment (its paymentKey, once we know it), payout = amount −
// fee must hold and its dates must be dates the ledger can book (SettlementDates): a row
// recorded that the ledger could not book would stop the ledger's projection at it.
func (p Payment) DecideSettlement(s SettlementInput, now time.Time) ([]Event, error) {
	if p.Settled[s.TransactionKey] {
		return nil, nil
	}
	if p.Status != StatusSuccess && p.Status != StatusPartiallyCanceled && p.Status != StatusCanceled {
		return nil, Errorf(ErrIllegalTransition, "settlement of order %s in status %s", p.OrderID, p.Status)
	}
	if s.TransactionKey == "" {
		return nil, Errorf(ErrInvalidInput, "settlement row without a transactionKey")
	}
	if p.PaymentKey != "" && s.PaymentKey != "" && p.PaymentKey != s.PaymentKey {
		return nil, Errorf(ErrPSPResponseMismatch, "settlement %s of order %s is for paymentKey %s, the payment's is %s",
			s.TransactionKey, p.OrderID, s.PaymentKey, p.PaymentKey)
	}
	if _, _, err := SettlementDates(s.SoldDate, s.PaidOutDate); err != nil {
		return nil, Errorf(ErrInvalidInput, "settlement %s: %v", s.TransactionKey, err)
	}
	if !s.Amount.Sub(s.Fee).Equal(s.PayOutAmount) {
		return nil, Errorf(ErrInvalidInput, "settlement %s: payout %s is not amount %s minus fee %s", s.TransactionKey, s.PayOutAmount, s.Amount, s.Fee)
	}
	return []Event{SettlementRecorded{
		EventHeader:    p.header(now),
		TransactionKey: s.TransactionKey, PaymentKey: s.PaymentKey,
		SoldDate: s.SoldDate, PaidOutDate: s.PaidOutDate,
		Amount: s.Amount, Fee: s.Fee, VAT: s.VAT, PayOutAmount: s.PayOutAmount,
	}}, nil
}
