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
// settlement import against the simulator (fee 3% + 10% VAT, the simulator's defaults), then
// checks the trial balance and every wallet against figures computed by hand below.
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

	today := time.Now().In(time.FixedZone("KST", 9*3600)).Format("2006-01-02")
	sum, err := settlements.NewImporter(env.Toss, env.Commands, testenv.Merchant, nil).Import(ctx, today, today, nil)
	if err != nil || sum.Recorded != 3 || sum.Errors != 0 {
		t.Fatalf("import: %+v %v", sum, err)
	}
	waitFor(t, env, "seller-a's available wallet after the import", "/api/v1/wallets/seller-a", "available", "14000")

	// By hand: A approved 25000: fee 750 + 75 = 825, payout 24175. A's cancel −10000:
	// fee −300 − 30 = −330, payout −9670. B approved 5000: fee 150 + 15 = 165, payout 4835.
	// bank = 24175 − 9670 + 4835 = 19340; fees = 825 − 330 + 165 = 660;
	// receivable = 25000 + 5000 − 10000 − (25000 − 10000 + 5000) = 0;
	// seller-a owed 15000 − 6000 + 5000 = 14000, seller-b 10000 − 4000 = 6000 (commission 0).
	var tb struct {
		Accounts []struct {
			Account, Type, Debits, Credits, Balance string
		}
		TotalDebits, TotalCredits, Currency string
	}
	get(t, env, "/api/v1/ledger/trial-balance", &tb)
	if tb.TotalDebits != tb.TotalCredits || tb.Currency != "KRW" {
		t.Fatalf("trial balance does not balance: %+v", tb)
	}
	want := map[string]string{
		"psp_receivable:toss": "0", "bank:operating": "19340", "psp_fees:toss": "660",
		"seller_payable:seller-a": "-14000", "seller_payable:seller-b": "-6000",
	}
	sumBalances := decimal.Zero
	for _, acc := range tb.Accounts {
		sumBalances = sumBalances.Add(won(acc.Balance))
		if w, ok := want[acc.Account]; ok && !won(w).Equal(won(acc.Balance)) {
			t.Errorf("%s balance %s, want %s", acc.Account, acc.Balance, w)
		}
		delete(want, acc.Account)
	}
	if !sumBalances.IsZero() {
		t.Errorf("trial balance sums to %s, want exactly 0", sumBalances)
	}
	for acc := range want {
		if acc != "psp_receivable:toss" {
			t.Errorf("account %s missing from the trial balance", acc)
		}
	}
	for seller, avail := range map[string]string{"seller-a": "14000", "seller-b": "6000"} {
		var w struct{ Pending, Available, Currency string }
		get(t, env, "/api/v1/wallets/"+seller, &w)
		if !won(w.Pending).IsZero() || !won(w.Available).Equal(won(avail)) {
			t.Errorf("%s wallet %+v, want pending 0 available %s", seller, w, avail)
		}
	}
	// Balances at a past moment: before the import everything was still pending.
	var past struct{ Pending, Available string }
	get(t, env, "/api/v1/wallets/seller-a?asOf="+url.QueryEscape(beforeImport.Format(time.RFC3339Nano)), &past)
	if !won(past.Pending).Equal(won("14000")) || !won(past.Available).IsZero() {
		t.Errorf("seller-a before the import: %+v, want pending 14000 available 0", past)
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
