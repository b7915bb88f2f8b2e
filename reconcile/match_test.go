package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// The comparison rules on hand-built records, one case per rule, including the shapes the
// simulator cannot produce (two approvals in Toss's list, a transaction recorded under another
// key). The integration tests in reconcile_test.go produce every category through real actions.

var (
	day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, domain.KST)
	win  = window{start: day0, end: day0.AddDate(0, 0, 1), from: "2026-11-20", to: "2026-11-20", today: "2026-11-25", settlementDays: 7}
	t12  = day0.Add(12 * time.Hour)
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// approvedOrder is an order of 10000 approved as K1 by transaction T1 at noon.
func approvedOrder(extra ...domain.Event) *ourOrder {
	h := domain.EventHeader{OrderID: "order-1", MerchantID: "shop", At: t12}
	events := append([]domain.Event{
		domain.CheckoutCreated{EventHeader: h, TotalAmount: d("10000"), Currency: domain.KRW},
		domain.ConfirmationStarted{EventHeader: h, PaymentKey: "K1", Amount: d("10000"), Attempt: 1},
		domain.PaymentApproved{EventHeader: h, PaymentKey: "K1", ApprovedAt: t12, TotalAmount: d("10000"), LastTransactionKey: "T1"},
	}, extra...)
	o, err := fold(events)
	if err != nil {
		panic(err)
	}
	return o
}

func checkedOut() *ourOrder {
	h := domain.EventHeader{OrderID: "order-1", MerchantID: "shop", At: t12}
	o, err := fold([]domain.Event{domain.CheckoutCreated{EventHeader: h, TotalAmount: d("10000"), Currency: domain.KRW}})
	if err != nil {
		panic(err)
	}
	return o
}

func tx(key string, status toss.PaymentStatus, amount string) toss.Transaction {
	return toss.Transaction{TransactionKey: key, PaymentKey: "K1", OrderID: "order-1", Status: status, Amount: d(amount), TransactionAt: t12}
}

// row is Toss's settlement row of transaction key at 3% + 10% VAT, paid out two days later.
func row(key, amount string) toss.Settlement {
	a := d(amount)
	supply := a.Abs().Mul(d("0.03")).Round(0)
	vat := supply.Mul(d("0.1")).Round(0)
	fee := supply.Add(vat)
	if a.IsNegative() {
		supply, vat, fee = supply.Neg(), vat.Neg(), fee.Neg()
	}
	return toss.Settlement{TransactionKey: key, PaymentKey: "K1", OrderID: "order-1", Amount: a, Fee: fee, SupplyAmount: supply, VAT: vat,
		PayOutAmount: a.Sub(fee), SoldDate: "2026-11-20", PaidOutDate: "2026-11-22"}
}

func recorded(r toss.Settlement) domain.SettlementRecorded {
	return domain.SettlementRecorded{EventHeader: domain.EventHeader{OrderID: "order-1", MerchantID: "shop", At: t12},
		TransactionKey: r.TransactionKey, PaymentKey: domain.PaymentKey(r.PaymentKey), SoldDate: r.SoldDate, PaidOutDate: r.PaidOutDate,
		Amount: r.Amount, Fee: r.Fee, VAT: r.VAT, PayOutAmount: r.PayOutAmount}
}

type want struct {
	category Category
	tx       string
	fix      fix
}

func TestMatchOrder(t *testing.T) {
	h := domain.EventHeader{OrderID: "order-1", MerchantID: "shop", At: t12}
	canceled := domain.PaymentCanceled{EventHeader: h, CancelID: "c1", Amount: d("3000"), TransactionKey: "T2", CanceledAt: t12, BalanceAfter: d("7000")}
	cancelRequested := domain.CancelRequested{EventHeader: h, CancelID: "c1", Amount: d("3000")}
	settled := recorded(row("T1", "10000"))
	rates := []domain.FeeRatePeriod{{From: day0.AddDate(0, -1, 0), Rate: d("0.03")}}
	for _, tc := range []struct {
		name    string
		our     *ourOrder
		txs     []toss.Transaction
		rows    []toss.Settlement
		rates   []domain.FeeRatePeriod
		matched int
		want    []want
	}{
		{name: "an approval and a cancel on both sides, the approval settled", our: approvedOrder(cancelRequested, canceled, settled),
			txs:  []toss.Transaction{tx("T1", toss.StatusDone, "10000"), tx("T2", toss.StatusPartialCanceled, "3000")},
			rows: []toss.Settlement{row("T1", "10000")}, rates: rates, matched: 2},
		{name: "a cancel row not yet paid out is not missing", our: approvedOrder(cancelRequested, canceled, settled),
			txs:  []toss.Transaction{tx("T1", toss.StatusDone, "10000"), tx("T2", toss.StatusPartialCanceled, "3000")},
			rows: []toss.Settlement{row("T1", "10000"), func() toss.Settlement { r := row("T2", "-3000"); r.PaidOutDate = "2026-11-26"; return r }()}, matched: 2},
		{name: "an order this merchant does not have", our: nil, txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			want: []want{{MissingInternal, "T1", fixNone}}},
		{name: "another merchant's order is as absent", our: &ourOrder{foreign: true}, txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			want: []want{{MissingInternal, "T1", fixNone}}},
		{name: "approved at Toss, only checked out here", our: checkedOut(), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			want: []want{{MissingInternal, "T1", fixSync}}},
		{name: "approved at Toss for another amount than the checkout", our: checkedOut(), txs: []toss.Transaction{tx("T1", toss.StatusDone, "12000")},
			want: []want{{AmountMismatch, "T1", fixNone}}},
		{name: "approved here, Toss has nothing", our: approvedOrder(), want: []want{{MissingAtPSP, "T1", fixNone}}},
		{name: "an approval of ours outside the window is not looked for", our: func() *ourOrder {
			o := approvedOrder()
			o.txs[0].at = day0.AddDate(0, 0, -3)
			return o
		}()},
		{name: "a cancel of ours Toss does not have", our: approvedOrder(cancelRequested, canceled), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			matched: 1, want: []want{{MissingAtPSP, "T2", fixNone}}},
		{name: "the same approval for another amount", our: approvedOrder(), txs: []toss.Transaction{tx("T1", toss.StatusDone, "9000")},
			want: []want{{AmountMismatch, "T1", fixNone}}},
		{name: "canceled in Toss's console", our: approvedOrder(), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000"), tx("T9", toss.StatusCanceled, "10000")},
			matched: 1, want: []want{{StatusMismatch, "T9", fixSync}}},
		{name: "a transaction that is an approval here and a cancel at Toss", our: approvedOrder(), txs: []toss.Transaction{tx("T1", toss.StatusCanceled, "10000")},
			want: []want{{StatusMismatch, "T1", fixNone}}},
		{name: "an approval recorded under another transactionKey", our: approvedOrder(), txs: []toss.Transaction{tx("T7", toss.StatusDone, "10000")},
			want: []want{{StatusMismatch, "T7", fixNone}}},
		{name: "an approval recorded without its key matches by paymentKey", our: func() *ourOrder {
			o := approvedOrder()
			o.txs[0].key = ""
			return o
		}(), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")}, matched: 1},
		{name: "two approvals in Toss's list for one order", our: approvedOrder(),
			txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000"), tx("T8", toss.StatusDone, "10000")}, matched: 1,
			want: []want{{Duplicate, "T8", fixNone}}},
		{name: "two approvals at Toss of an order not approved here: the first is booked, the second is a duplicate", our: checkedOut(),
			txs:  []toss.Transaction{tx("T1", toss.StatusDone, "10000"), tx("T8", toss.StatusDone, "10000")},
			want: []want{{MissingInternal, "T1", fixSync}, {Duplicate, "T8", fixNone}}},
		{name: "a settlement row paid out and not recorded", our: approvedOrder(), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			rows: []toss.Settlement{row("T1", "10000")}, matched: 1, want: []want{{SettlementMissing, "T1", fixSettlement}}},
		{name: "a recorded settlement that differs from Toss's row", our: approvedOrder(func() domain.Event {
			s := settled
			s.Fee, s.PayOutAmount = s.Fee.Add(d("10")), s.PayOutAmount.Sub(d("10"))
			return s
		}()), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")}, rows: []toss.Settlement{row("T1", "10000")}, matched: 1,
			want: []want{{SettlementMismatch, "T1", fixNone}}},
		{name: "a fee above the contract rate", our: approvedOrder(settled), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			rows: []toss.Settlement{row("T1", "10000")}, rates: []domain.FeeRatePeriod{{From: day0.AddDate(0, -1, 0), Rate: d("0.025")}}, matched: 1,
			want: []want{{SettlementMismatch, "T1", fixNone}}},
		{name: "a fee 1 won off the contract rate is rounding", our: approvedOrder(settled), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			rows: []toss.Settlement{row("T1", "10000")}, rates: []domain.FeeRatePeriod{{From: day0.AddDate(0, -1, 0), Rate: d("0.0301")}}, matched: 1},
		{name: "a rate set after the transaction does not apply to it", our: approvedOrder(settled), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			rows: []toss.Settlement{row("T1", "10000")}, rates: []domain.FeeRatePeriod{{From: t12.Add(time.Hour), Rate: d("0.05")}}, matched: 1},
		{name: "a recorded settlement Toss does not list", our: approvedOrder(settled), txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")},
			matched: 1, want: []want{{SettlementMismatch, "T1", fixNone}}},
		{name: "no settlement row long after the transaction", our: approvedOrder(),
			txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")}, matched: 1,
			want: []want{{SettlementMissing, "T1", fixNone}}},
		{name: "a status this ledger does not know is for a person", our: approvedOrder(),
			txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000"), tx("T5", "REFUNDED_SOMEHOW", "10000")}, matched: 1,
			want: []want{{StatusMismatch, "T5", fixNone}}},
		{name: "a broken history is not compared", our: &ourOrder{broken: errors.New("hash does not match")},
			txs: []toss.Transaction{tx("T1", toss.StatusDone, "10000")}, want: []want{{HistoryBroken, "", fixNone}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := win
			w.settlementDays = 30 // a row is due long after today: only "long after" expects one
			if strings.Contains(tc.name, "long after") {
				w.settlementDays = 3
			}
			got := matchOrder(w, tc.rates, "order-1", tc.our, tc.txs, tc.rows)
			if got.matched != tc.matched {
				t.Errorf("matched %d, want %d", got.matched, tc.matched)
			}
			if len(got.diffs) != len(tc.want) {
				t.Fatalf("differences %+v, want %+v", got.diffs, tc.want)
			}
			for i, g := range got.diffs {
				if w := tc.want[i]; g.Category != w.category || g.TransactionKey != w.tx || g.fix != w.fix {
					t.Errorf("difference %d: %s %s fix %d (%s), want %+v", i, g.Category, g.TransactionKey, g.fix, g.Detail, w)
				}
				if g.Detail == "" || g.Ours == "" || g.Toss == "" || g.OrderID != "order-1" {
					t.Errorf("difference %d is not described: %+v", i, g)
				}
			}
		})
	}
}

func TestWindow(t *testing.T) {
	today := time.Date(2026, 11, 25, 8, 0, 0, 0, domain.KST)
	start, end, err := Window("2026-11-20", "2026-11-25", today)
	if err != nil || !start.Equal(day0) || !end.Equal(day0.AddDate(0, 0, 6)) {
		t.Fatalf("window %s..%s %v", start, end, err)
	}
	for _, bad := range [][2]string{{"2026-11-21", "2026-11-20"}, {"2026-11-20", "2026-11-26"}, {"20261120", "2026-11-21"}, {"2026-01-01", "2026-11-20"}} {
		if _, _, err := Window(bad[0], bad[1], today); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("Window(%s, %s) = %v, want invalid input", bad[0], bad[1], err)
		}
	}
}
