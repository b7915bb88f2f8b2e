package settlements_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/settlements"
)

// TestLedgerAfterPaymentsCancelsAndSettlementImport runs payments, a partial cancel and a
// settlement import against the simulator (fee 3% + 10% VAT, payout two days after the sale:
// the simulator's defaults), then checks the trial balance and every wallet against figures
// computed by hand below, now and at the rows' own dates: settled at the end of today (KST),
// paid out at the start of the payout day.
func TestLedgerAfterPaymentsCancelsAndSettlementImport(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	won := decimal.RequireFromString
	pay := func(lines ...domain.CheckoutLine) domain.OrderID {
		co, _ := env.Pay(t, lines...)
		return co.OrderID
	}
	a := pay(domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-1", Amount: won("15000")},
		domain.CheckoutLine{SellerID: "seller-b", ProductID: "book-2", Amount: won("10000")})
	pay(domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-3", Amount: won("5000")})
	part := won("10000")
	if res, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-34", OrderID: a, Amount: &part, Reason: "returned"}); err != nil || res.CancelStatus != "CANCELED" {
		t.Fatalf("cancel: %+v %v", res, err)
	}
	// The cancel of 10000 is split over A's lines pro rata: 6000 from seller-a, 4000 from seller-b.
	waitFor(t, env, "seller-a's pending wallet after the cancel", "/api/v1/wallets/seller-a", "pending", "14000")
	beforeImport := time.Now()

	today := time.Now().In(domain.KST).Format(time.DateOnly)
	sum, err := settlements.NewImporter(env.Toss, env.Commands, testenv.Merchant, nil).Import(ctx, today, today, nil)
	if err != nil || sum.Recorded != 3 || sum.Errors != 0 {
		t.Fatalf("import: %+v %v", sum, err)
	}
	var row domain.SettlementRecorded
	for _, e := range env.Events(t, a) {
		if s, ok := e.(domain.SettlementRecorded); ok {
			row = s
		}
	}
	settledAt, paidOutAt, err := domain.SettlementDates(row.SoldDate, row.PaidOutDate)
	if err != nil || row.SoldDate != today || !paidOutAt.After(settledAt) {
		t.Fatalf("row sold %q, paid out %q (%v): want sold today and paid out on a later day", row.SoldDate, row.PaidOutDate, err)
	}
	asOf := func(at time.Time) string { return "?asOf=" + url.QueryEscape(at.Format(time.RFC3339Nano)) }
	waitFor(t, env, "seller-a's wallet on the payout day", "/api/v1/wallets/seller-a"+asOf(paidOutAt), "available", "14000")

	// By hand: A approved 25000: fee 750 + 75 = 825, payout 24175. A's cancel −10000:
	// fee −300 − 30 = −330, payout −9670. B approved 5000: fee 150 + 15 = 165, payout 4835.
	// payout = 24175 − 9670 + 4835 = 19340; fees = 825 − 330 + 165 = 660;
	// receivable = 25000 + 5000 − 10000 = 20000 until settled, then 0;
	// seller-a owed 15000 − 6000 + 5000 = 14000, seller-b 10000 − 4000 = 6000 (commission 0).
	sellers := map[string]string{"seller_payable:seller-a": "-14000", "seller_payable:seller-b": "-6000"}
	with := func(m map[string]string) map[string]string {
		for k, v := range sellers {
			m[k] = v
		}
		return m
	}
	// Now (the rows are dated today, settled at its end): nothing settled yet.
	checkTrialBalance(t, env, "", with(map[string]string{"psp_receivable:toss": "20000", "psp_payout_due:toss": "0", "bank:operating": "0", "psp_fees:toss": "0"}))
	// Settled: Toss owes the payout; the bank has nothing until the payout day.
	checkTrialBalance(t, env, asOf(settledAt), with(map[string]string{"psp_receivable:toss": "0", "psp_payout_due:toss": "19340", "bank:operating": "0", "psp_fees:toss": "660"}))
	checkTrialBalance(t, env, asOf(paidOutAt.Add(-time.Microsecond)), with(map[string]string{"psp_payout_due:toss": "19340", "bank:operating": "0"}))
	checkTrialBalance(t, env, asOf(paidOutAt), with(map[string]string{"psp_receivable:toss": "0", "psp_payout_due:toss": "0", "bank:operating": "19340", "psp_fees:toss": "660"}))

	for seller, owed := range map[string]string{"seller-a": "14000", "seller-b": "6000"} {
		for _, c := range []struct {
			query              string
			pending, available string
		}{
			{"", owed, "0"}, // before the payout day the money is pending
			{asOf(beforeImport), owed, "0"},
			{asOf(settledAt), owed, "0"},
			{asOf(paidOutAt.Add(-time.Microsecond)), owed, "0"},
			{asOf(paidOutAt), "0", owed},
		} {
			var w struct{ Pending, Available, Currency string }
			get(t, env, "/api/v1/wallets/"+seller+c.query, &w)
			if !won(w.Pending).Equal(won(c.pending)) || !won(w.Available).Equal(won(c.available)) {
				t.Errorf("%s wallet %s: %+v, want pending %s available %s", seller, c.query, w, c.pending, c.available)
			}
		}
	}
}

// checkTrialBalance checks that the trial balance as of query balances, sums to exactly 0 and
// holds want (accounts absent from the answer count as 0).
func checkTrialBalance(t *testing.T, env *testenv.Env, query string, want map[string]string) {
	t.Helper()
	var tb struct {
		Accounts []struct {
			Account, Type, Debits, Credits, Balance string
		}
		TotalDebits, TotalCredits, Currency string
	}
	get(t, env, "/api/v1/ledger/trial-balance"+query, &tb)
	if tb.TotalDebits != tb.TotalCredits || tb.Currency != "KRW" {
		t.Fatalf("trial balance %s does not balance: %+v", query, tb)
	}
	got := map[string]decimal.Decimal{}
	sum := decimal.Zero
	for _, acc := range tb.Accounts {
		b := decimal.RequireFromString(acc.Balance)
		got[acc.Account] = b
		sum = sum.Add(b)
	}
	if !sum.IsZero() {
		t.Errorf("trial balance %s sums to %s, want exactly 0", query, sum)
	}
	for acc, w := range want {
		if !got[acc].Equal(decimal.RequireFromString(w)) {
			t.Errorf("trial balance %s: %s = %s, want %s", query, acc, got[acc], w)
		}
	}
}

func get(t *testing.T, env *testenv.Env, path string, v any) {
	t.Helper()
	status, body := env.Request(t, "GET", path, "")
	if err := json.Unmarshal(body, v); err != nil || status != 200 {
		t.Fatalf("GET %s: %d %v", path, status, err)
	}
}

func waitFor(t *testing.T, env *testenv.Env, what, path, field, value string) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, what, func() bool {
		var m map[string]any
		if _, body := env.Request(t, "GET", path, ""); json.Unmarshal(body, &m) != nil {
			return false
		}
		s, _ := m[field].(string)
		return s != "" && decimal.RequireFromString(s).Equal(decimal.RequireFromString(value))
	})
}
