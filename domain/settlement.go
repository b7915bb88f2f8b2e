package domain

import (
	"time"

	"github.com/shopspring/decimal"
)

// Settlement: a row of Toss's settlement report for one of the payment's transactions, recorded
// once per transaction key. "Settled" means this and only this.

// SettlementInput is one settlement row for a transaction of the payment.
type SettlementInput struct {
	TransactionKey      string
	PaymentKey          PaymentKey
	SoldDate            string
	PaidOutDate         string
	Amount, Fee, VAT    decimal.Decimal
	PayOutAmount        decimal.Decimal
	ApprovedTransaction bool // the row settles the approval (not a cancel)
}

// DecideSettlement records a settlement row once per transaction key. Only approved payments
// settle; payout = amount − fee must hold.
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
