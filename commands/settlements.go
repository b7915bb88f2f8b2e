package commands

import (
	"context"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// settlementActor is the metadata actor of SettlementRecorded events.
const settlementActor = "settlement"

// RecordSettlement appends SettlementRecorded for one row of merchant's Toss settlement report
// (GET /v1/settlements, read with the merchant's key) to the stream of the row's orderId. It reports whether it appended:
// false with a nil error means the row's transactionKey was already recorded, so importing the
// same report twice changes nothing.
//
// Errors: domain.ErrPaymentNotFound when the merchant has no payment with the row's orderId (the
// report holds a payment this ledger never saw); domain.ErrPSPResponseMismatch when the row's paymentKey is
// not the payment's; domain.ErrIllegalTransition when the payment is not approved in the
// ledger (yet); domain.ErrInvalidInput for a row without a transactionKey or whose payout is
// not amount − fee; domain.ErrConcurrentModification after repeated optimistic-lock losses;
// anything else is the event store's.
func (s *Service) RecordSettlement(ctx context.Context, merchant domain.MerchantID, row toss.Settlement) (recorded bool, err error) {
	return s.RecordSettlementAs(ctx, settlementActor, merchant, row)
}

// RecordSettlementAs is RecordSettlement with the metadata actor given: reconciliation records a
// row the import missed as "reconciliation", so the history says who found it.
func (s *Service) RecordSettlementAs(ctx context.Context, actor string, merchant domain.MerchantID, row toss.Settlement) (recorded bool, err error) {
	if err := checkMerchant(merchant); err != nil {
		return false, err
	}
	if row.OrderID == "" {
		return false, domain.Errorf(domain.ErrInvalidInput, "settlement row %s without an orderId", row.TransactionKey)
	}
	in := domain.SettlementInput{
		TransactionKey: row.TransactionKey,
		PaymentKey:     domain.PaymentKey(row.PaymentKey),
		SoldDate:       row.SoldDate,
		PaidOutDate:    row.PaidOutDate,
		Amount:         row.Amount,
		Fee:            row.Fee,
		VAT:            row.VAT,
		PayOutAmount:   row.PayOutAmount,
	}
	_, events, err := s.update(ctx, domain.OrderID(row.OrderID), merchant, newMetadata(actor), func(p domain.Payment) ([]domain.Event, error) {
		return p.DecideSettlement(in, s.now())
	})
	if err != nil {
		return false, err
	}
	return len(events) > 0, nil
}
