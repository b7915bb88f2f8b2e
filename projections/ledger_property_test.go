package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/queries"
)

// The ledger's properties, checked after every step of a random sequence of checkouts,
// approvals, partial and full cancels and settlements (fixed seed in normal runs, FuzzLedger for
// more): every entry balances, the trial balance is zero, psp_receivable equals approved −
// canceled − settled gross, every wallet equals its seller's payable postings, sellers and
// commission together owe exactly approved − canceled, and a rebuild from position 0 gives
// identical balances.

type propTx struct {
	order domain.OrderID
	key   string
	gross decimal.Decimal // + for the approval, − for a cancel
}

type propOrder struct {
	id       domain.OrderID
	merchant domain.MerchantID
	total    decimal.Decimal
	version  int64
	approved bool
	balance  decimal.Decimal
	cancels  int
}

type ledgerModel struct {
	t         testing.TB
	ctx       context.Context
	pool      *pgxpool.Pool
	store     *eventstore.Postgres
	rng       *rand.Rand
	now       time.Time
	orders    []*propOrder
	unsettled []propTx
	applied   eventstore.Position
	approved  decimal.Decimal
	canceled  decimal.Decimal
	settled   decimal.Decimal
	sellers   map[domain.SellerID]bool
}

func newLedgerModel(t testing.TB, seed uint64) *ledgerModel {
	pool := pgtest.NewPool(t)
	setRate(t, pool, "m1", "0.1")
	setRate(t, pool, "m2", "0.033")
	return &ledgerModel{t: t, ctx: context.Background(), pool: pool, store: eventstore.NewPostgres(pool),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: t0,
		approved: decimal.Zero, canceled: decimal.Zero, settled: decimal.Zero, sellers: map[domain.SellerID]bool{}}
}

func (m *ledgerModel) header(o *propOrder) domain.EventHeader {
	m.now = m.now.Add(time.Duration(1+m.rng.IntN(3600)) * time.Second)
	return domain.EventHeader{OrderID: o.id, MerchantID: o.merchant, At: m.now}
}

func (m *ledgerModel) step() string {
	var fresh, cancelable []*propOrder
	for _, o := range m.orders {
		switch {
		case !o.approved:
			fresh = append(fresh, o)
		case o.balance.Sign() > 0:
			cancelable = append(cancelable, o)
		}
	}
	switch k := m.rng.IntN(10); {
	case k < 2 || len(m.orders) == 0:
		return m.checkout()
	case k < 4 && len(fresh) > 0:
		return m.approve(fresh[m.rng.IntN(len(fresh))])
	case k < 7 && len(cancelable) > 0:
		return m.cancel(cancelable[m.rng.IntN(len(cancelable))])
	case len(m.unsettled) > 0:
		return m.settle(m.rng.IntN(len(m.unsettled)))
	case len(fresh) > 0:
		return m.approve(fresh[0])
	}
	return m.checkout()
}

func (m *ledgerModel) checkout() string {
	o := &propOrder{id: domain.OrderID(fmt.Sprintf("order-%04d", len(m.orders))), merchant: domain.MerchantID(fmt.Sprintf("m%d", m.rng.IntN(3)))}
	n := 1 + m.rng.IntN(4)
	var lines []domain.Line
	total := decimal.Zero
	for i := range n {
		amt := decimal.NewFromInt(1 + m.rng.Int64N([]int64{3, 100, 50000}[m.rng.IntN(3)]))
		seller := domain.SellerID(fmt.Sprintf("s%d", m.rng.IntN(4)))
		m.sellers[seller] = true
		lines = append(lines, domain.Line{LineID: domain.LineID(fmt.Sprintf("L%d", i+1)), SellerID: seller, ProductID: "p", Amount: amt})
		total = total.Add(amt)
	}
	o.total, o.balance = total, total
	h := m.header(o)
	o.version = appendEvents(m.t, m.store, o.id, 0, domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o",
		Currency: domain.KRW, TotalAmount: total, Lines: lines, ExpiresAt: h.At.Add(time.Hour)})
	m.orders = append(m.orders, o)
	return fmt.Sprintf("checkout %s %s %v", o.id, o.merchant, lines)
}

func (m *ledgerModel) approve(o *propOrder) string {
	h := m.header(o)
	key := string(o.id) + "-approve"
	o.version = appendEvents(m.t, m.store, o.id, o.version, domain.PaymentApproved{EventHeader: h, PaymentKey: "pk", ApprovedAt: h.At,
		Method: "카드", TotalAmount: o.total, LastTransactionKey: key})
	o.approved = true
	m.approved = m.approved.Add(o.total)
	m.unsettled = append(m.unsettled, propTx{order: o.id, key: key, gross: o.total})
	return "approve " + string(o.id)
}

func (m *ledgerModel) cancel(o *propOrder) string {
	amt := o.balance
	if m.rng.IntN(3) > 0 {
		amt = decimal.NewFromInt(1 + m.rng.Int64N(o.balance.IntPart()))
	}
	h := m.header(o)
	o.cancels++
	key := fmt.Sprintf("%s-cancel-%d", o.id, o.cancels)
	o.balance = o.balance.Sub(amt)
	o.version = appendEvents(m.t, m.store, o.id, o.version, domain.PaymentCanceled{EventHeader: h, CancelID: domain.CancelID(key),
		Amount: amt, TransactionKey: key, CanceledAt: h.At, BalanceAfter: o.balance})
	m.canceled = m.canceled.Add(amt)
	m.unsettled = append(m.unsettled, propTx{order: o.id, key: key, gross: amt.Neg()})
	return fmt.Sprintf("cancel %s %s", o.id, amt)
}

func (m *ledgerModel) settle(i int) string {
	tx := m.unsettled[i]
	m.unsettled = append(m.unsettled[:i], m.unsettled[i+1:]...)
	var o *propOrder
	for _, x := range m.orders {
		if x.id == tx.order {
			o = x
		}
	}
	fee := tx.gross.Abs().Mul(decimal.RequireFromString("0.0319")).Floor()
	if tx.gross.Sign() < 0 {
		fee = fee.Neg()
	}
	h := m.header(o)
	o.version = appendEvents(m.t, m.store, o.id, o.version, domain.SettlementRecorded{EventHeader: h, TransactionKey: tx.key,
		PaymentKey: "pk", SoldDate: "2026-11-21", PaidOutDate: "2026-11-24",
		Amount: tx.gross, Fee: fee, VAT: fee.Div(decimal.NewFromInt(11)).Floor(), PayOutAmount: tx.gross.Sub(fee)})
	m.settled = m.settled.Add(tx.gross)
	return fmt.Sprintf("settle %s %s", tx.key, tx.gross)
}

// project applies every event after from with the Ledger projection, one transaction per event,
// up to the last event appended (ReadAll may hold events back while any transaction of the
// server is open, so it waits for them).
func (m *ledgerModel) project(from eventstore.Position) eventstore.Position {
	var head eventstore.Position
	if err := m.pool.QueryRow(m.ctx, `SELECT transaction_id, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&head.Transaction, &head.Sequence); err != nil {
		m.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for from.Less(head) {
		evs, err := m.store.ReadAll(m.ctx, from, 500)
		if err != nil {
			m.t.Fatal(err)
		}
		if len(evs) == 0 {
			if time.Now().After(deadline) {
				m.t.Fatalf("events up to %s not readable after 15s", head)
			}
			time.Sleep(2 * time.Millisecond)
			continue
		}
		for _, e := range evs {
			if err := pgx.BeginFunc(m.ctx, m.pool, func(tx pgx.Tx) error { return projections.Ledger{}.Apply(m.ctx, tx, e) }); err != nil {
				m.t.Fatalf("apply %s v%d: %v", e.Type, e.Version, err)
			}
			from = e.Position
		}
	}
	return from
}

func (m *ledgerModel) check(step int, what string) {
	t := m.t
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d (%s): %s", step, what, fmt.Sprintf(format, args...))
	}
	var bad int
	if err := m.pool.QueryRow(m.ctx, `SELECT count(*) FROM (
		SELECT e.id FROM journal_entries e LEFT JOIN postings p ON p.entry_id = e.id
		GROUP BY e.id HAVING count(p.id) < 2 OR sum(p.debit) <> sum(p.credit)) x`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		fail("%d unbalanced entries", bad)
	}
	q := queries.NewLedger(m.pool)
	tb, err := q.TrialBalance(m.ctx, m.now.Add(time.Hour), "KRW")
	if err != nil {
		t.Fatal(err)
	}
	sumBal := decimal.Zero
	for _, a := range tb.Accounts {
		sumBal = sumBal.Add(a.Balance)
	}
	if !tb.TotalDebits.Equal(tb.TotalCredits) || !sumBal.IsZero() {
		fail("trial balance debits %s credits %s sum of balances %s", tb.TotalDebits, tb.TotalCredits, sumBal)
	}
	want := m.approved.Sub(m.canceled).Sub(m.settled)
	if got := balance(t, tb, domain.AccountPSPReceivable); !got.Equal(want) {
		fail("psp_receivable %s, want approved %s − canceled %s − settled %s = %s", got, m.approved, m.canceled, m.settled, want)
	}
	owed := balance(t, tb, domain.AccountCommission)
	for s := range m.sellers {
		w, err := q.Wallet(m.ctx, string(s), m.now.Add(time.Hour), "KRW")
		if err != nil {
			t.Fatal(err)
		}
		payable := balance(t, tb, domain.SellerPayableAccount(s))
		if !w.Pending.Add(w.Available).Equal(payable.Neg()) {
			fail("wallet %s pending %s + available %s ≠ payable postings %s", s, w.Pending, w.Available, payable.Neg())
		}
		owed = owed.Add(payable)
	}
	if !owed.Neg().Equal(m.approved.Sub(m.canceled)) {
		fail("sellers + commission owe %s, want approved − canceled %s", owed.Neg(), m.approved.Sub(m.canceled))
	}
	// Settled transactions' nets are available; once everything is settled nothing is pending.
	if len(m.unsettled) == 0 {
		var pending decimal.Decimal
		if err := m.pool.QueryRow(m.ctx, `SELECT COALESCE(sum(amount), 0) FROM wallet_movements WHERE bucket = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if !pending.IsZero() {
			fail("everything is settled but %s is pending", pending)
		}
	}
	before := ledgerSnapshot(t, m.pool)
	if err := pgx.BeginFunc(m.ctx, m.pool, func(tx pgx.Tx) error { return projections.ResetLedger(m.ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	m.project(eventstore.Start)
	if after := ledgerSnapshot(t, m.pool); after != before {
		fail("rebuild from position 0 differs:\n%s\nvs\n%s", before, after)
	}
}

func runLedgerProperty(t testing.TB, seed uint64, steps int) {
	m := newLedgerModel(t, seed)
	for i := range steps {
		what := m.step()
		m.applied = m.project(m.applied)
		m.check(i, what)
	}
}

func TestLedgerPropertiesFixedSeed(t *testing.T) {
	runLedgerProperty(t, 20261121, 40)
}

func FuzzLedger(f *testing.F) {
	f.Add(uint64(1), uint8(20))
	f.Add(uint64(42), uint8(40))
	f.Fuzz(func(t *testing.T, seed uint64, steps uint8) {
		runLedgerProperty(t, seed, 1+int(steps)%60)
	})
}
