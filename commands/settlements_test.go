package commands_test

import (
	"errors"
	"testing"
	"time"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
)

// confirmedPayment checks out, authenticates and confirms one payment.
func confirmedPayment(t *testing.T, env *testenv.Env) commands.CheckoutResult {
	t.Helper()
	co, key := checkoutAndAuthenticate(t, env)
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	return co
}

// simulatorRows reads today's (KST) settlement rows of orderID from the simulator with the real
// client.
func simulatorRows(t *testing.T, env *testenv.Env, orderID domain.OrderID) []toss.Settlement {
	t.Helper()
	today := time.Now().In(time.FixedZone("KST", 9*60*60)).Format(time.DateOnly)
	rows, err := env.Toss.ListSettlements(ctx, toss.SettlementsQuery{StartDate: today, EndDate: today, Size: 5000})
	if err != nil {
		t.Fatal(err)
	}
	var out []toss.Settlement
	for _, r := range rows {
		if r.OrderID == string(orderID) {
			out = append(out, r)
		}
	}
	return out
}

func settlementEvents(t *testing.T, env *testenv.Env, orderID domain.OrderID) []domain.SettlementRecorded {
	t.Helper()
	var out []domain.SettlementRecorded
	for _, e := range env.Events(t, orderID) {
		if s, ok := e.(domain.SettlementRecorded); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestRecordSettlementOncePerTransaction(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := confirmedPayment(t, env)
	rows := simulatorRows(t, env, co.OrderID)
	if len(rows) != 1 {
		t.Fatalf("simulator rows %+v, want the approval", rows)
	}
	row := rows[0]

	recorded, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, row)
	if err != nil || !recorded {
		t.Fatalf("first record: %v %v", recorded, err)
	}
	recorded, err = env.Commands.RecordSettlement(ctx, testenv.Merchant, row)
	if err != nil || recorded {
		t.Fatalf("second record: %v %v, want a no-op", recorded, err)
	}

	events := settlementEvents(t, env, co.OrderID)
	if len(events) != 1 {
		t.Fatalf("%d SettlementRecorded events, want 1", len(events))
	}
	e := events[0]
	if e.TransactionKey != row.TransactionKey || string(e.PaymentKey) != row.PaymentKey ||
		!e.Amount.Equal(co.Amount) || !e.Fee.Equal(row.Fee) || !e.VAT.Equal(row.VAT) ||
		!e.PayOutAmount.Equal(row.PayOutAmount) || e.SoldDate != row.SoldDate || e.PaidOutDate != row.PaidOutDate {
		t.Fatalf("event %+v does not carry row %+v", e, row)
	}
	if !row.Fee.IsPositive() || !e.Amount.Sub(e.Fee).Equal(e.PayOutAmount) {
		t.Fatalf("fee %s payout %s", e.Fee, e.PayOutAmount)
	}
	recs, err := env.Store.ReadStream(ctx, domain.StreamName(co.OrderID), 1)
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Type != string(domain.EventSettlementRecorded) || last.Metadata.Actor != "settlement" {
		t.Fatalf("last event %s by %q, want SettlementRecorded by settlement", last.Type, last.Metadata.Actor)
	}
}

// Reconciliation records a row the import missed under its own name; the row is still recorded
// once, whoever records it first.
func TestRecordSettlementAsAnotherActor(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := confirmedPayment(t, env)
	row := simulatorRows(t, env, co.OrderID)[0]
	if recorded, err := env.Commands.RecordSettlementAs(ctx, "reconciliation", testenv.Merchant, row); err != nil || !recorded {
		t.Fatalf("record: %v %v", recorded, err)
	}
	if recorded, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, row); err != nil || recorded {
		t.Fatalf("the import after it: %v %v, want a no-op", recorded, err)
	}
	recs, err := env.Store.ReadStream(ctx, domain.StreamName(co.OrderID), 1)
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Type != string(domain.EventSettlementRecorded) || last.Metadata.Actor != "reconciliation" {
		t.Fatalf("last event %s by %q, want SettlementRecorded by reconciliation", last.Type, last.Metadata.Actor)
	}
}

func TestRecordSettlementUnknownOrder(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := confirmedPayment(t, env)
	row := simulatorRows(t, env, co.OrderID)[0]
	before := env.CountEvents(t)

	row.OrderID = "order-never-seen-here"
	recorded, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, row)
	if recorded || !errors.Is(err, domain.ErrPaymentNotFound) || domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("unknown order: %v %v, want ErrPaymentNotFound", recorded, err)
	}
	if after := env.CountEvents(t); after != before {
		t.Fatalf("events %d → %d", before, after)
	}
}

func TestRecordSettlementRejectsForeignPaymentKeyBadArithmeticAndBadDates(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := confirmedPayment(t, env)
	row := simulatorRows(t, env, co.OrderID)[0]

	foreign := row
	foreign.PaymentKey = "tosss20251121000000XXXXX"
	if _, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, foreign); !errors.Is(err, domain.ErrPSPResponseMismatch) {
		t.Fatalf("foreign paymentKey: %v", err)
	}
	bad := row
	bad.PayOutAmount = bad.PayOutAmount.Add(bad.Fee)
	if _, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, bad); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("payout ≠ amount − fee: %v", err)
	}
	// A row the ledger could not book would stop the ledger's projection at its event.
	for _, dates := range [][2]string{{"garbage", row.PaidOutDate}, {row.SoldDate, ""}, {"2026-11-21", "2026-11-20"}} {
		undated := row
		undated.SoldDate, undated.PaidOutDate = dates[0], dates[1]
		if _, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, undated); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("dates %q: %v", dates, err)
		}
	}
	if got := settlementEvents(t, env, co.OrderID); len(got) != 0 {
		t.Fatalf("events %+v after refused rows", got)
	}
}
