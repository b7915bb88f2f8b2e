package settlements_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/settlements"
)

var ctx = context.Background()

func todayKST() string {
	return time.Now().In(time.FixedZone("KST", 9*60*60)).Format(time.DateOnly)
}

// confirmed checks out, authenticates at the simulator and confirms one payment of 25000.
func confirmed(t *testing.T, env *testenv.Env) (domain.OrderID, *toss.Payment) {
	t.Helper()
	co, key := env.Pay(t,
		domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-1", Amount: decimal.RequireFromString("15000")},
		domain.CheckoutLine{SellerID: "seller-b", ProductID: "book-2", Amount: decimal.RequireFromString("10000")})
	p, err := env.Toss.GetPayment(ctx, string(key))
	if err != nil {
		t.Fatal(err)
	}
	return co.OrderID, p
}

func TestImportRecordsEachRowOnce(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	orderID, p := confirmed(t, env)
	// A partial cancel made at the PSP directly (as from Toss's admin): it still settles.
	amt := decimal.NewFromInt(5000)
	if _, err := env.Toss.Cancel(ctx, p.PaymentKey, toss.CancelRequest{CancelReason: "부분 취소", CancelAmount: &amt}, "settle-test-cancel"); err != nil {
		t.Fatal(err)
	}
	// A payment the ledger never saw: reported and skipped.
	strayKey, err := env.Sim.CreateSession("order-not-in-ledger", decimal.NewFromInt(7000), "stray")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Toss.Confirm(ctx, toss.ConfirmRequest{PaymentKey: strayKey, OrderID: "order-not-in-ledger", Amount: decimal.NewFromInt(7000)}, "stray-confirm"); err != nil {
		t.Fatal(err)
	}

	imp := settlements.NewImporter(env.Toss, env.Commands, testenv.Merchant, testenv.Logger(t))
	today := todayKST()
	var progress []settlements.Progress
	sum, err := imp.Import(ctx, today, today, func(p settlements.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if sum.From != today || sum.To != today || sum.Pages != 1 || sum.Rows != 3 || sum.Recorded != 2 ||
		sum.AlreadyRecorded != 0 || sum.UnknownOrders != 1 || sum.Errors != 0 {
		t.Fatalf("first import %+v, want 3 rows: 2 recorded, 1 unknown order", sum)
	}
	if len(sum.Problems) != 1 || sum.Problems[0].OrderID != "order-not-in-ledger" {
		t.Fatalf("problems %+v", sum.Problems)
	}
	if len(progress) != 1 || progress[0].Page != 1 || progress[0].PageRows != 3 || progress[0].Summary.Recorded != 2 {
		t.Fatalf("progress %+v", progress)
	}

	var approval, cancel *domain.SettlementRecorded
	for _, e := range env.Events(t, orderID) {
		if s, ok := e.(domain.SettlementRecorded); ok {
			if s.Amount.IsPositive() {
				approval = &s
			} else {
				cancel = &s
			}
		}
	}
	if approval == nil || cancel == nil {
		t.Fatalf("approval %+v cancel %+v: want one of each", approval, cancel)
	}
	// Default simulator fee: 3% + 10% VAT, half away from zero.
	if !approval.Amount.Equal(decimal.NewFromInt(25000)) || !approval.Fee.Equal(decimal.NewFromInt(825)) ||
		!approval.VAT.Equal(decimal.NewFromInt(75)) || !approval.PayOutAmount.Equal(decimal.NewFromInt(24175)) ||
		approval.TransactionKey != p.LastTransactionKey || approval.SoldDate != today {
		t.Fatalf("approval %+v", approval)
	}
	if !cancel.Amount.Equal(decimal.NewFromInt(-5000)) || !cancel.Fee.Equal(decimal.NewFromInt(-165)) ||
		!cancel.PayOutAmount.Equal(decimal.NewFromInt(-4835)) {
		t.Fatalf("cancel %+v", cancel)
	}

	events := env.CountEvents(t)
	again, err := imp.Import(ctx, today, today, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Rows != 3 || again.Recorded != 0 || again.AlreadyRecorded != 2 || again.UnknownOrders != 1 {
		t.Fatalf("second import %+v, want nothing new", again)
	}
	if n := env.CountEvents(t); n != events {
		t.Fatalf("events %d → %d on the second import", events, n)
	}
}

func TestImportOfAnEmptyRangeAndBadDates(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	imp := settlements.NewImporter(env.Toss, env.Commands, testenv.Merchant, nil)
	calls := 0
	sum, err := imp.Import(ctx, "2020-01-01", "2020-01-31", func(settlements.Progress) { calls++ })
	if err != nil || sum.Pages != 1 || sum.Rows != 0 || calls != 1 {
		t.Fatalf("empty range: %+v %v, %d progress calls", sum, err, calls)
	}
	for _, r := range [][2]string{{"2026-11-21", "2026-11-01"}, {"2026-11-1", "2026-11-21"}, {"", "2026-11-21"}} {
		if _, err := imp.Import(ctx, r[0], r[1], nil); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("Import(%q, %q) = %v, want an invalid-input error", r[0], r[1], err)
		}
	}
}
