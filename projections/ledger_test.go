package projections_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/queries"
)

// appendEvents appends events to the order's stream at the expected version.
func appendEvents(t testing.TB, store eventstore.Store, id domain.OrderID, expected int64, events ...domain.Event) int64 {
	t.Helper()
	var data []eventstore.EventData
	for _, e := range events {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b,
			Metadata: eventstore.Metadata{MerchantID: string(e.Header().MerchantID), Actor: "system"}})
	}
	exp := eventstore.Exact(expected)
	if expected == 0 {
		exp = eventstore.NoStream
	}
	res, err := store.Append(context.Background(), domain.StreamName(id), exp, data)
	if err != nil {
		t.Fatal(err)
	}
	return res.NextExpectedVersion
}

func runLedger(t *testing.T, pool *pgxpool.Pool, store eventstore.Store) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := projections.NewRunner(pool, store, projections.Ledger{}, nil)
	r.BatchSize = 3
	r.RetryDelay = 20 * time.Millisecond
	wg.Go(func() { _ = r.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// waitLedgerAtHead waits until the ledger's checkpoint is at the last event appended so far (the
// highest position of any stored event: every append in these tests has committed).
func waitLedgerAtHead(t *testing.T, pool *pgxpool.Pool, store *eventstore.Postgres) {
	t.Helper()
	var head eventstore.Position
	if err := pool.QueryRow(context.Background(), `SELECT transaction_id, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&head.Transaction, &head.Sequence); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 15*time.Second, "the ledger to reach the head", func() bool {
		pos, err := projections.Checkpoint(context.Background(), pool, projections.LedgerName)
		return err == nil && pos == head
	})
}

// appendMerchantEvents appends merchant events to the merchant's stream, as the merchant
// commands would.
func appendMerchantEvents(t testing.TB, store eventstore.Store, id domain.MerchantID, events ...domain.Event) {
	t.Helper()
	var data []eventstore.EventData
	for _, e := range events {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b,
			Metadata: eventstore.Metadata{MerchantID: string(id), Actor: "system"}})
	}
	if _, err := store.Append(context.Background(), domain.MerchantStreamName(id), eventstore.Any, data); err != nil {
		t.Fatal(err)
	}
}

// setRate records a commission rate change of merchant at at.
func setRate(t testing.TB, store eventstore.Store, merchant domain.MerchantID, rate string, at time.Time) {
	t.Helper()
	appendMerchantEvents(t, store, merchant, domain.CommissionRateChanged{
		MerchantHeader: domain.MerchantHeader{MerchantID: merchant, At: at}, Rate: d(rate)})
}

// kstDay is the start of a KST calendar day given as yyyy-MM-dd.
func kstDay(t testing.TB, day string) time.Time {
	t.Helper()
	at, err := time.ParseInLocation(time.DateOnly, day, domain.KST)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// ledgerSnapshot is the whole ledger read model as text: balances per merchant, wallet buckets,
// every posting and wallet movement with its time, the rates the ledger applied and the rate
// each order was booked at.
func ledgerSnapshot(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT merchant_id, account, currency, sum(debit)::text, sum(credit)::text FROM postings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
		`SELECT merchant_id, seller_id, bucket, sum(amount)::text FROM wallet_movements GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
		`SELECT e.merchant_id, e.order_id, e.kind, COALESCE(e.transaction_key, ''), e.occurred_at, p.merchant_id, p.account, p.debit::text, p.credit::text, p.occurred_at
		 FROM journal_entries e JOIN postings p ON p.entry_id = e.id ORDER BY e.event_id, e.kind, p.account, COALESCE(p.line_id, '')`,
		`SELECT w.merchant_id, w.seller_id, w.order_id, w.line_id, COALESCE(w.transaction_key, ''), w.kind, w.bucket, w.amount::text, w.occurred_at, e.kind
		 FROM wallet_movements w JOIN journal_entries e ON e.id = w.entry_id
		 ORDER BY w.order_id, COALESCE(w.transaction_key, ''), w.kind, w.line_id, w.bucket`,
		`SELECT merchant_id, rate::text, changed_at, event_id FROM ledger_commission_rates ORDER BY 1`,
		`SELECT order_id, merchant_id, commission_rate::text FROM ledger_orders ORDER BY 1`,
	} {
		rows, err := pool.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		b.WriteString("--\n")
	}
	return b.String()
}

func balance(t testing.TB, tb queries.TrialBalance, account string) decimal.Decimal {
	t.Helper()
	for _, a := range tb.Accounts {
		if a.Account == account {
			return a.Balance
		}
	}
	return decimal.Zero
}

// ledgerCheck is what a merchant's books should show as of one moment: account balances
// (debits − credits; an account not listed is not checked) and wallets {pending, available}.
type ledgerCheck struct {
	asOf     time.Time
	accounts map[string]string
	wallets  map[domain.SellerID][2]string
}

// checkLedger compares the merchant's books with each check; every trial balance must also be
// zero on its own.
func checkLedger(t *testing.T, q *queries.Ledger, merchant domain.MerchantID, checks ...ledgerCheck) {
	t.Helper()
	ctx := context.Background()
	for _, c := range checks {
		tb, err := q.TrialBalance(ctx, merchant, c.asOf, "KRW")
		if err != nil {
			t.Fatal(err)
		}
		sum := decimal.Zero
		for _, a := range tb.Accounts {
			sum = sum.Add(a.Balance)
		}
		if !tb.TotalDebits.Equal(tb.TotalCredits) || !sum.IsZero() {
			t.Fatalf("%s at %s: trial balance debits %s, credits %s, balances sum to %s", merchant, c.asOf, tb.TotalDebits, tb.TotalCredits, sum)
		}
		for acct, w := range c.accounts {
			if got := balance(t, tb, acct); !got.Equal(d(w)) {
				t.Errorf("%s at %s: %s = %s, want %s", merchant, c.asOf, acct, got, w)
			}
		}
		for seller, pa := range c.wallets {
			w, err := q.Wallet(ctx, merchant, seller, c.asOf, "")
			if err != nil {
				t.Fatal(err)
			}
			if !w.Pending.Equal(d(pa[0])) || !w.Available.Equal(d(pa[1])) {
				t.Errorf("%s at %s: wallet %s = pending %s available %s, want %s %s", merchant, c.asOf, seller, w.Pending, w.Available, pa[0], pa[1])
			}
			if payable := balance(t, tb, domain.SellerPayableAccount(seller)); !w.Pending.Add(w.Available).Equal(payable.Neg()) {
				t.Errorf("%s at %s: wallet %s pending + available = %s, payable %s", merchant, c.asOf, seller, w.Pending.Add(w.Available), payable.Neg())
			}
		}
	}
}

func rebuildLedger(t *testing.T, pool *pgxpool.Pool, store *eventstore.Postgres) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return projections.ResetLedger(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	stop := runLedger(t, pool, store)
	waitLedgerAtHead(t, pool, store)
	stop()
}

func TestLedgerPostsApprovalCancelAndSettlementsAndReplaysIdentically(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const m domain.MerchantID = "m"
	setRate(t, store, m, "0.1", t0.Add(-time.Hour))
	id := domain.OrderID("order-ledger-1")
	at := t0 // 12:00 KST on 2026-11-21
	h := func(dt time.Duration) domain.EventHeader {
		return domain.EventHeader{OrderID: id, MerchantID: m, At: at.Add(dt)}
	}
	lines := []domain.Line{
		{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: d("3333")},
		{LineID: "L2", SellerID: "s2", ProductID: "p", Amount: d("3333")},
		{LineID: "L3", SellerID: "s1", ProductID: "p", Amount: d("3334")},
	}
	v := appendEvents(t, store, id, 0,
		domain.CheckoutCreated{EventHeader: h(0), BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: d("10000"), Lines: lines, ExpiresAt: at.Add(time.Hour)},
		domain.PaymentApproved{EventHeader: h(time.Minute), PaymentKey: "pk", ApprovedAt: at.Add(time.Minute), Method: "카드", TotalAmount: d("10000"), LastTransactionKey: "tx-approve"},
	)
	stop := runLedger(t, pool, store)
	// The cancel is on the 22nd (KST). Both rows are imported late (on the 25th): the import time
	// changes nothing, the rows' own dates decide.
	appendEvents(t, store, id, v,
		domain.PaymentCanceled{EventHeader: h(24 * time.Hour), CancelID: "c1", Amount: d("1000"), TransactionKey: "tx-cancel", CanceledAt: at.Add(24 * time.Hour), BalanceAfter: d("9000")},
		domain.SettlementRecorded{EventHeader: h(96 * time.Hour), TransactionKey: "tx-approve", SoldDate: "2026-11-21", PaidOutDate: "2026-11-23",
			Amount: d("10000"), Fee: d("319"), VAT: d("29"), PayOutAmount: d("9681")},
		domain.SettlementRecorded{EventHeader: h(96 * time.Hour), TransactionKey: "tx-cancel", SoldDate: "2026-11-22", PaidOutDate: "2026-11-24",
			Amount: d("-1000"), Fee: d("-32"), VAT: d("-3"), PayOutAmount: d("-968")},
	)
	waitLedgerAtHead(t, pool, store)
	stop()

	q := queries.NewLedger(pool)
	endOf21 := kstDay(t, "2026-11-22").Add(-time.Microsecond)
	endOf22 := kstDay(t, "2026-11-23").Add(-time.Microsecond)
	paid23, paid24 := kstDay(t, "2026-11-23"), kstDay(t, "2026-11-24")
	approved := map[string]string{
		domain.AccountPSPReceivable: "10000", domain.AccountPSPPayoutDue: "0", domain.AccountBank: "0", domain.AccountCommission: "-999",
		"seller_payable:s1": "-6001", "seller_payable:s2": "-3000",
	}
	// Approved: commission 333+333+333 = 999; s1 net 3000+3001 = 6001, s2 3000.
	checkLedger(t, q, m,
		ledgerCheck{at.Add(-time.Second), map[string]string{domain.AccountPSPReceivable: "0"}, map[domain.SellerID][2]string{"s1": {"0", "0"}}},
		ledgerCheck{at.Add(time.Minute), approved, map[domain.SellerID][2]string{"s1": {"6001", "0"}, "s2": {"3000", "0"}}},
		ledgerCheck{endOf21.Add(-time.Microsecond), approved, map[domain.SellerID][2]string{"s1": {"6001", "0"}, "s2": {"3000", "0"}}},
		// Settled at the end of the sold day: Toss owes the payout, the bank has nothing yet.
		ledgerCheck{endOf21, map[string]string{
			domain.AccountPSPReceivable: "0", domain.AccountPSPPayoutDue: "9681", domain.AccountPSPFees: "319", domain.AccountBank: "0",
		}, map[domain.SellerID][2]string{"s1": {"6001", "0"}, "s2": {"3000", "0"}}},
		// Cancel 1000 over remaining 3333/3333/3334 → 333/333/334; commission back 33/33/33.
		ledgerCheck{at.Add(25 * time.Hour), map[string]string{
			domain.AccountPSPReceivable: "-1000", domain.AccountPSPPayoutDue: "9681", domain.AccountCommission: "-900",
			"seller_payable:s1": "-5400", "seller_payable:s2": "-2700",
		}, map[domain.SellerID][2]string{"s1": {"5400", "0"}, "s2": {"2700", "0"}}},
		ledgerCheck{endOf22, map[string]string{
			domain.AccountPSPReceivable: "0", domain.AccountPSPPayoutDue: "8713", domain.AccountPSPFees: "287", domain.AccountBank: "0",
		}, map[domain.SellerID][2]string{"s1": {"5400", "0"}, "s2": {"2700", "0"}}},
		ledgerCheck{paid23.Add(-time.Microsecond), map[string]string{domain.AccountBank: "0"},
			map[domain.SellerID][2]string{"s1": {"5400", "0"}, "s2": {"2700", "0"}}},
		// The approval is paid out on the 23rd; the cancel's reversal is netted on the 24th, so
		// until then Toss's payout is 968 ahead of what it owes (payout due −968) and the
		// reversed nets are still pending (negative).
		ledgerCheck{paid23, map[string]string{
			domain.AccountBank: "9681", domain.AccountPSPPayoutDue: "-968", domain.AccountPSPFees: "287",
		}, map[domain.SellerID][2]string{"s1": {"-601", "6001"}, "s2": {"-300", "3000"}}},
		ledgerCheck{paid24, map[string]string{
			domain.AccountPSPReceivable: "0", domain.AccountPSPPayoutDue: "0", domain.AccountBank: "8713", domain.AccountPSPFees: "287",
			domain.AccountCommission: "-900", "seller_payable:s1": "-5400", "seller_payable:s2": "-2700",
		}, map[domain.SellerID][2]string{"s1": {"0", "5400"}, "s2": {"0", "2700"}}},
	)
	// Every time in the answers is KST.
	hist, err := q.WalletMovements(ctx, m, "s1", paid24, "", queries.MovementsQuery{Limit: queries.MaxMovementsPageSize})
	if err != nil || len(hist.Movements) == 0 || hist.NextCursor != "" {
		t.Fatalf("history %v %v", hist, err)
	}
	for _, mv := range hist.Movements {
		if _, off := mv.OccurredAt.Zone(); off != 9*3600 {
			t.Fatalf("movement at %s: want KST", mv.OccurredAt)
		}
		if mv.Kind == "payout" && !mv.OccurredAt.Equal(paid23) && !mv.OccurredAt.Equal(paid24) {
			t.Fatalf("payout movement at %s: want the start of a paidOutDate", mv.OccurredAt)
		}
	}

	first := ledgerSnapshot(t, pool)
	// Replay from position 0 over the existing rows: every event is skipped by its event id.
	if _, err := pool.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = 'ledger'`); err != nil {
		t.Fatal(err)
	}
	stop = runLedger(t, pool, store)
	waitLedgerAtHead(t, pool, store)
	stop()
	if again := ledgerSnapshot(t, pool); again != first {
		t.Fatalf("replay changed the ledger:\n%s\nvs\n%s", first, again)
	}
	rebuildLedger(t, pool, store)
	if rebuilt := ledgerSnapshot(t, pool); rebuilt != first {
		t.Fatalf("rebuild differs:\n%s\nvs\n%s", first, rebuilt)
	}
}

// TestSettledMoneyIsPendingUntilTossPaysItOut: a row settled yesterday (KST) with a payout two
// days from now. Now, the seller's net is pending and the payout is due from Toss, not in the
// bank; from the start of the payout day it is available and in the bank.
func TestSettledMoneyIsPendingUntilTossPaysItOut(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const m domain.MerchantID = "m"
	now := time.Now()
	today := now.In(domain.KST)
	yesterday := time.Date(today.Year(), today.Month(), today.Day()-1, 0, 0, 0, 0, domain.KST)
	payDay := time.Date(today.Year(), today.Month(), today.Day()+2, 0, 0, 0, 0, domain.KST)
	approvedAt := yesterday.Add(10 * time.Hour)
	id := domain.OrderID("order-future-payout")
	h := domain.EventHeader{OrderID: id, MerchantID: m, At: approvedAt}
	appendEvents(t, store, id, 0,
		domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: d("20000"),
			Lines: []domain.Line{{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: d("20000")}}, ExpiresAt: approvedAt.Add(time.Hour)},
		domain.PaymentApproved{EventHeader: h, PaymentKey: "pk", ApprovedAt: approvedAt, Method: "카드", TotalAmount: d("20000"), LastTransactionKey: "tx1"},
		domain.SettlementRecorded{EventHeader: domain.EventHeader{OrderID: id, MerchantID: m, At: now}, TransactionKey: "tx1",
			SoldDate: yesterday.Format(time.DateOnly), PaidOutDate: payDay.Format(time.DateOnly),
			Amount: d("20000"), Fee: d("660"), VAT: d("60"), PayOutAmount: d("19340")},
	)
	stop := runLedger(t, pool, store)
	waitLedgerAtHead(t, pool, store)
	stop()

	q := queries.NewLedger(pool)
	unpaid := map[string]string{domain.AccountPSPReceivable: "0", domain.AccountPSPPayoutDue: "19340", domain.AccountPSPFees: "660", domain.AccountBank: "0", "seller_payable:s1": "-20000"}
	checkLedger(t, q, m,
		ledgerCheck{approvedAt, map[string]string{domain.AccountPSPReceivable: "20000", domain.AccountPSPPayoutDue: "0", domain.AccountBank: "0"},
			map[domain.SellerID][2]string{"s1": {"20000", "0"}}},
		ledgerCheck{now, unpaid, map[domain.SellerID][2]string{"s1": {"20000", "0"}}},
		ledgerCheck{payDay.Add(-time.Microsecond), unpaid, map[domain.SellerID][2]string{"s1": {"20000", "0"}}},
		ledgerCheck{payDay, map[string]string{domain.AccountPSPReceivable: "0", domain.AccountPSPPayoutDue: "0", domain.AccountPSPFees: "660", domain.AccountBank: "19340", "seller_payable:s1": "-20000"},
			map[domain.SellerID][2]string{"s1": {"0", "20000"}}},
		ledgerCheck{payDay.AddDate(1, 0, 0), map[string]string{domain.AccountBank: "19340"}, map[domain.SellerID][2]string{"s1": {"0", "20000"}}},
	)
	// The postings say when: the settlement at the last microsecond of the sold day, the
	// payout at the start of the payout day, both in KST.
	page, err := q.Postings(ctx, m, domain.AccountPSPPayoutDue, queries.PostingsQuery{})
	if err != nil || len(page.Postings) != 2 {
		t.Fatalf("payout due postings %+v %v", page, err)
	}
	settled, paid := page.Postings[0], page.Postings[1]
	if settled.Kind != "settlement" || !settled.OccurredAt.Equal(yesterday.AddDate(0, 0, 1).Add(-time.Microsecond)) || !settled.Debit.Equal(d("19340")) {
		t.Errorf("settlement posting %+v", settled)
	}
	if paid.Kind != "payout" || !paid.OccurredAt.Equal(payDay) || !paid.Credit.Equal(d("19340")) {
		t.Errorf("payout posting %+v", paid)
	}
	if got := paid.OccurredAt.Format(time.RFC3339); got != payDay.Format(time.DateOnly)+"T00:00:00+09:00" {
		t.Errorf("payout time %s, want RFC 3339 in KST", got)
	}
}

// TestCommissionIsTheRateInForceAtCheckoutFromEvents: the rate comes from the merchant's
// CommissionRateChanged events at the order's place in the log, so a rebuild from scratch books
// every order exactly as it was booked live. Other merchant events are ignored.
func TestCommissionIsTheRateInForceAtCheckoutFromEvents(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const m, other domain.MerchantID = "m", "other"
	mh := func(id domain.MerchantID) domain.MerchantHeader { return domain.MerchantHeader{MerchantID: id, At: t0} }
	appendMerchantEvents(t, store, m,
		domain.MerchantRegistered{MerchantHeader: mh(m), Name: "shop"},
		domain.TossCredentialsSet{MerchantHeader: mh(m), CredentialID: "cred-1", KeyHint: "test_sk…1234", Mode: domain.ModeTest},
		domain.APIKeyIssued{MerchantHeader: mh(m), KeyID: "key-1", Mode: domain.ModeTest, SecretHash: strings.Repeat("ab", 32), Scopes: domain.AllScopes},
		domain.APIKeyRevoked{MerchantHeader: mh(m), KeyID: "key-1", EffectiveAt: t0, Reason: domain.RevokedByRequest},
	)
	order := func(id domain.OrderID, at time.Time) (checkout, approve domain.Event) {
		h := domain.EventHeader{OrderID: id, MerchantID: m, At: at}
		return domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: d("10000"),
				Lines: []domain.Line{{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: d("10000")}}, ExpiresAt: at.Add(time.Hour)},
			domain.PaymentApproved{EventHeader: h, PaymentKey: "pk", ApprovedAt: at.Add(time.Minute), Method: "카드", TotalAmount: d("10000"), LastTransactionKey: "tx-" + string(id)}
	}
	// Before any rate is set the rate is 0, also in a rebuild that follows later changes.
	co0, ap0 := order("order-0", t0)
	appendEvents(t, store, "order-0", 0, co0, ap0)
	setRate(t, store, m, "0.1", t0)
	coA, apA := order("order-a", t0.Add(time.Minute))
	vA := appendEvents(t, store, "order-a", 0, coA)
	setRate(t, store, m, "0.2", t0.Add(2*time.Minute))
	setRate(t, store, other, "0.3", t0.Add(2*time.Minute))
	// A is approved after the change: it keeps the rate of its checkout.
	appendEvents(t, store, "order-a", vA, apA)
	coB, apB := order("order-b", t0.Add(3*time.Minute))
	appendEvents(t, store, "order-b", 0, coB, apB)

	stop := runLedger(t, pool, store)
	waitLedgerAtHead(t, pool, store)
	stop()
	commissions := func() map[string]string {
		t.Helper()
		page, err := queries.NewLedger(pool).Postings(ctx, m, domain.AccountCommission, queries.PostingsQuery{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range page.Postings {
			out[p.OrderID] = p.Credit.String()
		}
		return out
	}
	if got := commissions(); got["order-a"] != "1000" || got["order-b"] != "2000" || len(got) != 2 {
		t.Fatalf("commissions %v, want none on order-0 (no rate yet), order-a 1000 (rate 0.1) and order-b 2000 (rate 0.2)", got)
	}
	live := ledgerSnapshot(t, pool)
	rebuildLedger(t, pool, store)
	if rebuilt := ledgerSnapshot(t, pool); rebuilt != live {
		t.Fatalf("rebuild differs:\n%s\nvs\n%s", live, rebuilt)
	}
	if got := commissions(); got["order-a"] != "1000" || got["order-b"] != "2000" || len(got) != 2 {
		t.Fatalf("after the rebuild commissions %v", got)
	}

	// The other projection reads the same log, merchant events included, without error.
	evs, err := store.ReadAll(ctx, eventstore.Start, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, e := range evs {
			if err := (projections.PaymentOrders{}).Apply(ctx, tx, e); err != nil {
				return fmt.Errorf("%s: %w", e.Type, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestEachMerchantHasItsOwnBooks: two merchants with a seller of the same id. Each merchant's
// balances, trial balance, wallets and postings hold only its own books.
func TestEachMerchantHasItsOwnBooks(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const a, b domain.MerchantID = "merchant-a", "merchant-b"
	setRate(t, store, b, "0.1", t0)
	pay := func(m domain.MerchantID, id domain.OrderID, amount string, settle bool) {
		h := domain.EventHeader{OrderID: id, MerchantID: m, At: t0}
		events := []domain.Event{
			domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: d(amount),
				Lines: []domain.Line{{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: d(amount)}}, ExpiresAt: t0.Add(time.Hour)},
			domain.PaymentApproved{EventHeader: h, PaymentKey: "pk", ApprovedAt: t0, Method: "카드", TotalAmount: d(amount), LastTransactionKey: "tx-" + string(id)},
		}
		if settle {
			fee := d(amount).Div(d("100")).Floor()
			events = append(events, domain.SettlementRecorded{EventHeader: h, TransactionKey: "tx-" + string(id), SoldDate: "2026-11-21", PaidOutDate: "2026-11-23",
				Amount: d(amount), Fee: fee, PayOutAmount: d(amount).Sub(fee)})
		}
		appendEvents(t, store, id, 0, events...)
	}
	pay(a, "order-a1", "10000", true)
	pay(a, "order-a2", "500", false)
	pay(b, "order-b1", "3000", false)
	stop := runLedger(t, pool, store)
	waitLedgerAtHead(t, pool, store)
	stop()

	q := queries.NewLedger(pool)
	later := kstDay(t, "2026-12-01")
	checkLedger(t, q, a, ledgerCheck{later, map[string]string{
		domain.AccountPSPReceivable: "500", domain.AccountBank: "9900", domain.AccountPSPFees: "100", domain.AccountCommission: "0", "seller_payable:s1": "-10500",
	}, map[domain.SellerID][2]string{"s1": {"500", "10000"}}})
	checkLedger(t, q, b, ledgerCheck{later, map[string]string{
		domain.AccountPSPReceivable: "3000", domain.AccountBank: "0", domain.AccountCommission: "-300", "seller_payable:s1": "-2700",
	}, map[domain.SellerID][2]string{"s1": {"2700", "0"}}})
	checkLedger(t, q, "merchant-none", ledgerCheck{later, map[string]string{domain.AccountPSPReceivable: "0"}, map[domain.SellerID][2]string{"s1": {"0", "0"}}})

	tbA, err := q.TrialBalance(ctx, a, later, "")
	if err != nil {
		t.Fatal(err)
	}
	tbB, err := q.TrialBalance(ctx, b, later, "")
	if err != nil {
		t.Fatal(err)
	}
	if !tbA.TotalDebits.Equal(d("30400")) || !tbB.TotalDebits.Equal(d("3000")) {
		t.Errorf("total debits a %s (want approvals 10500 + settled 10000 + paid out 9900), b %s (want 3000)", tbA.TotalDebits, tbB.TotalDebits)
	}
	balA, err := q.AccountBalances(ctx, a, later)
	if err != nil {
		t.Fatal(err)
	}
	balB, err := q.AccountBalances(ctx, b, later)
	if err != nil {
		t.Fatal(err)
	}
	if len(balA.Accounts) != 5 || len(balB.Accounts) != 3 { // a: receivable, payout due, bank, fees, s1; b: receivable, commission, s1
		t.Errorf("accounts of a %+v, of b %+v", balA.Accounts, balB.Accounts)
	}
	for m, want := range map[domain.MerchantID][]string{a: {"order-a1", "order-a2", "order-a1"}, b: {"order-b1"}} {
		var got []string
		page, err := q.Postings(ctx, m, domain.AccountPSPReceivable, queries.PostingsQuery{Limit: 1})
		for ; err == nil; page, err = q.Postings(ctx, m, domain.AccountPSPReceivable, queries.PostingsQuery{Limit: 1, Cursor: page.NextCursor}) {
			for _, p := range page.Postings {
				got = append(got, p.OrderID)
			}
			if page.NextCursor == "" {
				break
			}
		}
		if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s's receivable postings %v (%v), want %v", m, got, err, want)
		}
		hist, err := q.WalletMovements(ctx, m, "s1", later, "", queries.MovementsQuery{Limit: queries.MaxMovementsPageSize})
		if err != nil || hist.NextCursor != "" {
			t.Fatal(hist.NextCursor, err)
		}
		for _, mv := range hist.Movements {
			if !strings.HasPrefix(mv.OrderID, "order-"+string(m[len(m)-1])) {
				t.Errorf("%s's wallet history shows %+v", m, mv)
			}
		}
	}

	// No merchant is a bug in the caller, never everyone's books.
	if _, err := q.AccountBalances(ctx, "", later); err == nil {
		t.Error("AccountBalances without a merchant answered")
	}
	if _, err := q.TrialBalance(ctx, "", later, ""); err == nil {
		t.Error("TrialBalance without a merchant answered")
	}
	if _, err := q.Postings(ctx, "", domain.AccountPSPReceivable, queries.PostingsQuery{}); err == nil {
		t.Error("Postings without a merchant answered")
	}
	if _, err := q.Wallet(ctx, "", "s1", later, ""); err == nil {
		t.Error("Wallet without a merchant answered")
	}
	if _, err := q.WalletMovements(ctx, "", "s1", later, "", queries.MovementsQuery{}); err == nil {
		t.Error("WalletMovements without a merchant answered")
	}
}

func TestDatabaseRejectsAnUnbalancedEntry(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	insert := func(debit, credit, creditMerchant, creditAt string) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO journal_entries (event_id, order_id, merchant_id, kind, currency, occurred_at)
				VALUES ($1, 'o', 'm', 'approval', 'KRW', '2026-11-21T12:00:00+09:00') RETURNING id`, uuid.NewString()).Scan(&id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO postings (entry_id, merchant_id, account, account_type, debit, credit, currency, occurred_at) VALUES
				($1, 'm', 'psp_receivable:toss', 'asset', $2, 0, 'KRW', '2026-11-21T12:00:00+09:00'),
				($1, $4, 'seller_payable:s', 'liability', 0, $3, 'KRW', $5)`, id, debit, credit, creditMerchant, creditAt)
			return err
		})
	}
	if err := insert("100", "100", "m", "2026-11-21T12:00:00+09:00"); err != nil {
		t.Fatalf("balanced entry refused: %v", err)
	}
	for name, args := range map[string][4]string{
		"unequal sides":           {"100", "99", "m", "2026-11-21T12:00:00+09:00"},
		"a side of another books": {"100", "100", "other", "2026-11-21T12:00:00+09:00"},
		"a side at another time":  {"100", "100", "m", "2026-11-21T12:00:01+09:00"},
	} {
		err := insert(args[0], args[1], args[2], args[3])
		if err == nil || !strings.Contains(err.Error(), "unbalanced") {
			t.Fatalf("%s: err = %v, want the trigger's refusal", name, err)
		}
	}
	// An entry without postings is refused too, and so is removing one side of a stored entry.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO journal_entries (event_id, order_id, merchant_id, kind, currency, occurred_at)
			VALUES ($1, 'o', 'm', 'approval', 'KRW', now())`, uuid.NewString())
		return err
	})
	if err == nil {
		t.Fatal("an entry without postings was accepted")
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM postings WHERE account = 'seller_payable:s'`)
		return err
	})
	if err == nil {
		t.Fatal("deleting one side of an entry was accepted")
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM journal_entries`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d entries (%v), want only the balanced one", n, err)
	}
}
