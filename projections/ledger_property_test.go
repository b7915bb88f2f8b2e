package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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
// approvals, partial and full cancels, settlement rows (sold on the transaction's KST day, paid
// out 0–3 days later, imported whenever) and commission rate changes, over three merchants
// (fixed seed in normal runs, FuzzLedger for more). At every moment checked (moments on both
// sides of every posting time the model knows, and after everything), for every merchant on
// its own: every entry balances, the trial balance is zero, psp_receivable, psp_payout_due,
// bank:operating and psp_fees equal what the model computes from the events and the rows'
// dates, every wallet's pending + available equals its seller's payable, nothing is available
// before the first payout, sellers and commission together owe approved − canceled, and once
// everything is settled and paid out nothing is pending. A rebuild from position 0 gives an
// identical read model.

type propTx struct {
	order domain.OrderID
	key   string
	gross decimal.Decimal // + for the approval, − for a cancel
	at    time.Time       // when the transaction happened: its KST day is the row's soldDate
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

// modelMove is the model's expected change of one account of one merchant at one moment.
type modelMove struct {
	merchant domain.MerchantID
	account  string // an account name, or owedAccount
	at       time.Time
	amount   decimal.Decimal // debit − credit
}

// owedAccount is the model's running approved − canceled, which sellers and commission owe.
const owedAccount = "(approved − canceled)"

var propMerchants = []domain.MerchantID{"m0", "m1", "m2"}

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
	moves     []modelMove
	sellers   map[domain.SellerID]bool
	payouts   []time.Time // the paid-out moment of every settled row
}

func newLedgerModel(t testing.TB, seed uint64) *ledgerModel {
	pool := pgtest.NewPool(t)
	m := &ledgerModel{t: t, ctx: context.Background(), pool: pool, store: eventstore.NewPostgres(pool),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: t0, sellers: map[domain.SellerID]bool{}}
	setRate(t, m.store, "m1", "0.1", t0)
	setRate(t, m.store, "m2", "0.033", t0)
	return m
}

func (m *ledgerModel) move(merchant domain.MerchantID, account string, at time.Time, amount decimal.Decimal) {
	m.moves = append(m.moves, modelMove{merchant: merchant, account: account, at: at, amount: amount})
}

func (m *ledgerModel) tick() time.Time {
	m.now = m.now.Add(time.Duration(1+m.rng.IntN(3*3600)) * time.Second)
	return m.now
}

func (m *ledgerModel) header(o *propOrder) domain.EventHeader {
	return domain.EventHeader{OrderID: o.id, MerchantID: o.merchant, At: m.tick()}
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
	switch k := m.rng.IntN(11); {
	case k == 10:
		return m.changeRate()
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

func (m *ledgerModel) changeRate() string {
	merchant := propMerchants[m.rng.IntN(len(propMerchants))]
	rate := []string{"0", "0.05", "0.1", "0.033", "0.25"}[m.rng.IntN(5)]
	at := m.tick()
	// A merchant event the ledger has no use for goes with it: it must be ignored.
	appendMerchantEvents(m.t, m.store, merchant,
		domain.TossCredentialsSet{MerchantHeader: domain.MerchantHeader{MerchantID: merchant, At: at}, CredentialID: "c", KeyHint: "h", Mode: domain.ModeTest},
		domain.CommissionRateChanged{MerchantHeader: domain.MerchantHeader{MerchantID: merchant, At: at}, Rate: d(rate)})
	return fmt.Sprintf("rate %s %s", merchant, rate)
}

func (m *ledgerModel) checkout() string {
	o := &propOrder{id: domain.OrderID(fmt.Sprintf("order-%04d", len(m.orders))), merchant: propMerchants[m.rng.IntN(len(propMerchants))]}
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
	m.move(o.merchant, domain.AccountPSPReceivable, h.At, o.total)
	m.move(o.merchant, owedAccount, h.At, o.total)
	m.unsettled = append(m.unsettled, propTx{order: o.id, key: key, gross: o.total, at: h.At})
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
	m.move(o.merchant, domain.AccountPSPReceivable, h.At, amt.Neg())
	m.move(o.merchant, owedAccount, h.At, amt.Neg())
	m.unsettled = append(m.unsettled, propTx{order: o.id, key: key, gross: amt.Neg(), at: h.At})
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
	if m.rng.IntN(8) == 0 {
		fee = tx.gross.Abs() // the fee takes it all: a zero payout
	}
	if tx.gross.Sign() < 0 {
		fee = fee.Neg()
	}
	payout := tx.gross.Sub(fee)
	// The model's own reading of the dates: settled at the last microsecond of the sold day,
	// paid out at the start of the payout day (KST), never before the settlement.
	local := tx.at.In(domain.KST)
	soldDay := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, domain.KST)
	paidDay := soldDay.AddDate(0, 0, m.rng.IntN(4))
	settledAt := soldDay.AddDate(0, 0, 1).Add(-time.Microsecond)
	paidOutAt := paidDay
	if paidDay.Equal(soldDay) {
		paidOutAt = settledAt
	}
	h := m.header(o)
	o.version = appendEvents(m.t, m.store, o.id, o.version, domain.SettlementRecorded{EventHeader: h, TransactionKey: tx.key,
		PaymentKey: "pk", SoldDate: soldDay.Format(time.DateOnly), PaidOutDate: paidDay.Format(time.DateOnly),
		Amount: tx.gross, Fee: fee, VAT: fee.Div(decimal.NewFromInt(11)).Floor(), PayOutAmount: payout})
	m.move(o.merchant, domain.AccountPSPReceivable, settledAt, tx.gross.Neg())
	m.move(o.merchant, domain.AccountPSPFees, settledAt, fee)
	m.move(o.merchant, domain.AccountPSPPayoutDue, settledAt, payout)
	m.move(o.merchant, domain.AccountPSPPayoutDue, paidOutAt, payout.Neg())
	m.move(o.merchant, domain.AccountBank, paidOutAt, payout)
	m.payouts = append(m.payouts, paidOutAt)
	return fmt.Sprintf("settle %s %s fee %s sold %s paid %s", tx.key, tx.gross, fee, soldDay.Format(time.DateOnly), paidDay.Format(time.DateOnly))
}

// expected is the model's balance of account for merchant as of asOf.
func (m *ledgerModel) expected(merchant domain.MerchantID, account string, asOf time.Time) decimal.Decimal {
	b := decimal.Zero
	for _, mv := range m.moves {
		if mv.merchant == merchant && mv.account == account && !mv.at.After(asOf) {
			b = b.Add(mv.amount)
		}
	}
	return b
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

// moments picks the moments to check: just after the last step, far after everything, and a
// few on both sides of posting times the model knows.
func (m *ledgerModel) moments() []time.Time {
	out := []time.Time{m.now.Add(time.Hour), m.now.AddDate(0, 1, 0)}
	for range min(3, len(m.moves)) {
		at := m.moves[m.rng.IntN(len(m.moves))].at
		out = append(out, at, at.Add(-time.Microsecond))
	}
	return out
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
		GROUP BY e.id HAVING count(p.id) < 2 OR sum(p.debit) <> sum(p.credit)
		    OR bool_or(p.merchant_id <> e.merchant_id) OR bool_or(p.occurred_at <> e.occurred_at)) x`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		fail("%d unbalanced entries", bad)
	}
	q := queries.NewLedger(m.pool)
	firstPayout := time.Time{}
	if len(m.payouts) > 0 {
		firstPayout = slices.MinFunc(m.payouts, func(a, b time.Time) int { return a.Compare(b) })
	}
	for _, asOf := range m.moments() {
		for _, merchant := range propMerchants {
			tb, err := q.TrialBalance(m.ctx, merchant, asOf, "KRW")
			if err != nil {
				t.Fatal(err)
			}
			sumBal := decimal.Zero
			for _, a := range tb.Accounts {
				sumBal = sumBal.Add(a.Balance)
			}
			if !tb.TotalDebits.Equal(tb.TotalCredits) || !sumBal.IsZero() {
				fail("%s at %s: trial balance debits %s credits %s sum of balances %s", merchant, asOf, tb.TotalDebits, tb.TotalCredits, sumBal)
			}
			for _, acct := range []string{domain.AccountPSPReceivable, domain.AccountPSPPayoutDue, domain.AccountBank, domain.AccountPSPFees} {
				if got, want := balance(t, tb, acct), m.expected(merchant, acct, asOf); !got.Equal(want) {
					fail("%s at %s: %s = %s, the model says %s", merchant, asOf, acct, got, want)
				}
			}
			owed := balance(t, tb, domain.AccountCommission)
			for s := range m.sellers {
				w, err := q.Wallet(m.ctx, merchant, s, asOf, "KRW")
				if err != nil {
					t.Fatal(err)
				}
				payable := balance(t, tb, domain.SellerPayableAccount(s))
				if !w.Pending.Add(w.Available).Equal(payable.Neg()) {
					fail("%s at %s: wallet %s pending %s + available %s ≠ payable postings %s", merchant, asOf, s, w.Pending, w.Available, payable.Neg())
				}
				if (firstPayout.IsZero() || asOf.Before(firstPayout)) && !w.Available.IsZero() {
					fail("%s at %s: wallet %s has %s available before any payout", merchant, asOf, s, w.Available)
				}
				if len(m.unsettled) == 0 && !asOf.Before(m.now.AddDate(0, 1, 0)) && !w.Pending.IsZero() {
					fail("%s at %s: everything is paid out but %s of %s is pending", merchant, asOf, w.Pending, s)
				}
				owed = owed.Add(payable)
			}
			if want := m.expected(merchant, owedAccount, asOf); !owed.Neg().Equal(want) {
				fail("%s at %s: sellers + commission owe %s, want approved − canceled %s", merchant, asOf, owed.Neg(), want)
			}
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
