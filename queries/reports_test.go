package queries_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/queries"
)

// payment builds one payment's history with the domain's deciders, as the commands would, and
// appends it to the event store.
type payment struct {
	t      *testing.T
	p      domain.Payment
	events []domain.Event
}

func kst(day string, hour, minute int) time.Time {
	d, err := time.ParseInLocation(time.DateOnly, day, domain.KST)
	if err != nil {
		panic(err)
	}
	return d.Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
}

func newPayment(t *testing.T, merchant domain.MerchantID, id, name, buyer, seller string, amount int64, at time.Time) *payment {
	t.Helper()
	co, err := domain.Checkout(domain.CheckoutCommand{OrderID: domain.OrderID(id), MerchantID: merchant, BuyerID: buyer,
		OrderName: name, Currency: domain.KRW,
		Lines: []domain.CheckoutLine{{SellerID: seller, ProductID: "p-1", Amount: decimal.NewFromInt(amount)}}}, at)
	if err != nil {
		t.Fatal(err)
	}
	s := &payment{t: t}
	s.add([]domain.Event{co}, nil)
	return s
}

func (s *payment) add(events []domain.Event, err error) *payment {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range events {
		if err := s.p.Apply(e); err != nil {
			s.t.Fatal(err)
		}
		s.events = append(s.events, e)
	}
	return s
}

func (s *payment) approve(at time.Time) *payment {
	key := domain.PaymentKey("pk_" + string(s.p.OrderID))
	s.add(s.p.DecideConfirm(domain.ConfirmCommand{PaymentKey: key, OrderID: s.p.OrderID, Amount: s.p.TotalAmount}, at))
	return s.add(s.p.DecideApproved(domain.Approval{PaymentKey: key, OrderID: s.p.OrderID, TotalAmount: s.p.TotalAmount,
		ApprovedAt: at, Method: "카드", LastTransactionKey: "tx_" + string(s.p.OrderID)}, at.Add(time.Second)))
}

func (s *payment) reject(at time.Time) *payment {
	key := domain.PaymentKey("pk_" + string(s.p.OrderID))
	s.add(s.p.DecideConfirm(domain.ConfirmCommand{PaymentKey: key, OrderID: s.p.OrderID, Amount: s.p.TotalAmount}, at))
	return s.add(s.p.DecideRejected("REJECT_CARD_COMPANY", "declined", at))
}

func (s *payment) cancel(amount int64, at time.Time) *payment {
	id := domain.CancelID(fmt.Sprintf("c%d", len(s.p.Cancels)+1))
	a := decimal.NewFromInt(amount)
	s.add(s.p.DecideCancel(domain.CancelCommand{CancelID: id, Amount: &a, Reason: "returned"}, at))
	return s.add(s.p.DecideCanceled(id, a, fmt.Sprintf("ctx_%s_%s", s.p.OrderID, id), at, at))
}

func (s *payment) settle(txKey, soldDate string, amount, fee int64) *payment {
	return s.add(s.p.DecideSettlement(domain.SettlementInput{TransactionKey: txKey, PaymentKey: s.p.PaymentKey,
		SoldDate: soldDate, PaidOutDate: soldDate, Amount: decimal.NewFromInt(amount), Fee: decimal.NewFromInt(fee),
		VAT: decimal.NewFromInt(fee / 11), PayOutAmount: decimal.NewFromInt(amount - fee)}, kst(soldDate, 23, 0)))
}

func (s *payment) store(ctx context.Context, store eventstore.Store) {
	s.t.Helper()
	var data []eventstore.EventData
	for _, e := range s.events {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			s.t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b,
			Metadata: eventstore.Metadata{MerchantID: string(e.Header().MerchantID), Actor: "test"}})
	}
	if _, err := store.Append(ctx, domain.StreamName(s.p.OrderID), eventstore.NoStream, data); err != nil {
		s.t.Fatal(err)
	}
}

// TestDailyReport: the report's figures of known payments, day by day in KST, from the ledger.
func TestDailyReport(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const m, other domain.MerchantID = "shop-report", "shop-other"
	for _, p := range []*payment{
		// 11-01: A and B approved; A's settlement row (sold 11-01) carries a 350 fee.
		newPayment(t, m, "order-A", "A", "buyer-1", "seller-1", 10000, kst("2026-11-01", 9, 55)).
			approve(kst("2026-11-01", 10, 0)).cancel(10000, kst("2026-11-04", 15, 0)).
			settle("tx_order-A", "2026-11-01", 10000, 350).settle("ctx_order-A_c1", "2026-11-04", -10000, -350),
		newPayment(t, m, "order-B", "B", "buyer-2", "seller-1", 20000, kst("2026-11-01", 23, 25)).
			approve(kst("2026-11-01", 23, 30)).cancel(5000, kst("2026-11-02", 12, 0)),
		// Rejected: no money moved, nothing on the report.
		newPayment(t, m, "order-C", "C", "buyer-3", "seller-1", 7000, kst("2026-11-01", 11, 0)).reject(kst("2026-11-01", 11, 1)),
		// 00:30 KST on 11-02 is still 11-01 in UTC: it counts on 11-02.
		newPayment(t, m, "order-D", "D", "buyer-4", "seller-2", 30000, kst("2026-11-02", 0, 20)).
			approve(kst("2026-11-02", 0, 30)).settle("tx_order-D", "2026-11-02", 30000, 1000),
		// Another merchant's payment, the same day: never on this merchant's report.
		newPayment(t, other, "order-X", "X", "buyer-1", "seller-1", 99000, kst("2026-11-01", 9, 55)).approve(kst("2026-11-01", 10, 0)),
	} {
		p.store(ctx, store)
	}
	// CatchUp reads what is readable now: readers stop at the oldest transaction running on the
	// server (another test's, say), so wait until every event committed here is readable.
	testenv.WaitFor(t, 20*time.Second, "every event readable", func() bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		all, err := store.ReadAll(ctx, eventstore.Start, n+1)
		return err == nil && len(all) == n
	})
	if err := projections.CatchUp(ctx, pool, store, projections.Ledger{}); err != nil {
		t.Fatal(err)
	}
	q := queries.New(pool, store)

	days, err := q.DailyReport(ctx, m, kst("2026-11-01", 0, 0), kst("2026-11-04", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		day                    string
		approved               int
		approvedAmt            string
		canceled               int
		canceledAmt, net, fees string
	}
	want := []row{
		{"2026-11-01", 2, "30000", 0, "0", "30000", "350"},
		{"2026-11-02", 1, "30000", 1, "5000", "25000", "1000"},
		{"2026-11-03", 0, "0", 0, "0", "0", "0"},
		{"2026-11-04", 0, "0", 1, "10000", "-10000", "-350"},
	}
	if len(days) != len(want) {
		t.Fatalf("%d days, want %d: %+v", len(days), len(want), days)
	}
	for i, w := range want {
		d := days[i]
		got := row{d.Day, d.ApprovedCount, d.ApprovedAmount.String(), d.CanceledCount, d.CanceledAmount.String(), d.NetAmount.String(), d.PSPFees.String()}
		if got != w {
			t.Errorf("day %d: %+v, want %+v", i, got, w)
		}
	}
	tot := queries.ReportTotals(days)
	if tot.ApprovedCount != 3 || tot.ApprovedAmount.String() != "60000" || tot.CanceledCount != 2 ||
		tot.CanceledAmount.String() != "15000" || tot.NetAmount.String() != "45000" || tot.PSPFees.String() != "1000" {
		t.Errorf("totals: %+v", tot)
	}

	// One day alone, at the end of the range: the same figures.
	one, err := q.DailyReport(ctx, m, kst("2026-11-04", 0, 0), kst("2026-11-04", 0, 0))
	if err != nil || len(one) != 1 || fmt.Sprintf("%+v", one[0]) != fmt.Sprintf("%+v", days[3]) {
		t.Errorf("11-04 alone: %+v %v, want %+v", one, err, days[3])
	}

	for name, r := range map[string][2]time.Time{
		"reversed":      {kst("2026-11-02", 0, 0), kst("2026-11-01", 0, 0)},
		"not midnight":  {kst("2026-11-01", 9, 0), kst("2026-11-02", 0, 0)},
		"367 days":      {kst("2026-01-01", 0, 0), kst("2027-01-02", 0, 0)},
		"zero from":     {{}, kst("2026-11-02", 0, 0)},
		"midnight UTC ": {time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), kst("2026-11-02", 0, 0)},
	} {
		if _, err := q.DailyReport(ctx, m, r[0], r[1]); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s: %v, want invalid input", name, err)
		}
	}
	if d, err := q.DailyReport(ctx, m, kst("2026-01-01", 0, 0), kst("2027-01-01", 0, 0)); err != nil || len(d) != 366 {
		t.Errorf("366 days: %d days, %v", len(d), err)
	}
}
