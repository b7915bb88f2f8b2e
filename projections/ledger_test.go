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

func setRate(t testing.TB, pool *pgxpool.Pool, merchant, rate string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO merchant_commission_rates (merchant_id, rate) VALUES ($1, $2)
		ON CONFLICT (merchant_id) DO UPDATE SET rate = EXCLUDED.rate`, merchant, rate); err != nil {
		t.Fatal(err)
	}
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// ledgerSnapshot is every account balance and every wallet bucket as text.
func ledgerSnapshot(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT account, currency, sum(debit)::text, sum(credit)::text FROM postings GROUP BY 1, 2 ORDER BY 1, 2`,
		`SELECT seller_id, bucket, sum(amount)::text FROM wallet_movements GROUP BY 1, 2 ORDER BY 1, 2`,
		`SELECT e.order_id, e.kind, COALESCE(e.transaction_key, ''), e.occurred_at, p.account, p.debit::text, p.credit::text
		 FROM journal_entries e JOIN postings p ON p.entry_id = e.id ORDER BY e.event_id, p.account, COALESCE(p.line_id, '')`,
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

func TestLedgerPostsApprovalCancelAndSettlementsAndReplaysIdentically(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	setRate(t, pool, "m", "0.1")
	id := domain.OrderID("order-ledger-1")
	at := t0
	h := func(dt time.Duration) domain.EventHeader {
		return domain.EventHeader{OrderID: id, MerchantID: "m", At: at.Add(dt)}
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
	v = appendEvents(t, store, id, v,
		domain.PaymentCanceled{EventHeader: h(2 * time.Hour), CancelID: "c1", Amount: d("1000"), TransactionKey: "tx-cancel", CanceledAt: at.Add(2 * time.Hour), BalanceAfter: d("9000")},
		domain.SettlementRecorded{EventHeader: h(24 * time.Hour), TransactionKey: "tx-approve", Amount: d("10000"), Fee: d("319"), VAT: d("29"), PayOutAmount: d("9681")},
		domain.SettlementRecorded{EventHeader: h(48 * time.Hour), TransactionKey: "tx-cancel", Amount: d("-1000"), Fee: d("-32"), VAT: d("-3"), PayOutAmount: d("-968")},
	)
	_ = v
	waitLedgerAtHead(t, pool, store)
	stop()

	q := queries.NewLedger(pool)
	check := func(when time.Time, want map[string]string, wallets map[string][2]string) {
		t.Helper()
		tb, err := q.TrialBalance(ctx, when, "KRW")
		if err != nil {
			t.Fatal(err)
		}
		if !tb.TotalDebits.Equal(tb.TotalCredits) {
			t.Fatalf("at %s trial balance debits %s ≠ credits %s", when, tb.TotalDebits, tb.TotalCredits)
		}
		for acct, w := range want {
			if got := balance(t, tb, acct); !got.Equal(d(w)) {
				t.Errorf("at %s %s = %s, want %s", when, acct, got, w)
			}
		}
		for seller, pa := range wallets {
			w, err := q.Wallet(ctx, seller, when, "")
			if err != nil {
				t.Fatal(err)
			}
			if !w.Pending.Equal(d(pa[0])) || !w.Available.Equal(d(pa[1])) {
				t.Errorf("at %s wallet %s = pending %s available %s, want %s %s", when, seller, w.Pending, w.Available, pa[0], pa[1])
			}
		}
	}
	// Approved: commission 333+333+333 = 999; s1 net 3000+3001 = 6001, s2 3000.
	check(at.Add(time.Minute), map[string]string{
		domain.AccountPSPReceivable: "10000", domain.AccountCommission: "-999",
		"seller_payable:s1": "-6001", "seller_payable:s2": "-3000",
	}, map[string][2]string{"s1": {"6001", "0"}, "s2": {"3000", "0"}})
	// Cancel 1000 over remaining 3333/3333/3334 → 333/333/334; commission back 33/33/33.
	check(at.Add(3*time.Hour), map[string]string{
		domain.AccountPSPReceivable: "9000", domain.AccountCommission: "-900",
		"seller_payable:s1": "-5400", "seller_payable:s2": "-2700",
	}, map[string][2]string{"s1": {"5400", "0"}, "s2": {"2700", "0"}})
	// Approval settled: receivable −10000, bank +9681, fees +319; all approved net available,
	// the cancel's reversal still pending (negative) until its own settlement.
	check(at.Add(25*time.Hour), map[string]string{
		domain.AccountPSPReceivable: "-1000", domain.AccountBank: "9681", domain.AccountPSPFees: "319",
		"seller_payable:s1": "-5400",
	}, map[string][2]string{"s1": {"-601", "6001"}, "s2": {"-300", "3000"}})
	check(at.Add(49*time.Hour), map[string]string{
		domain.AccountPSPReceivable: "0", domain.AccountBank: "8713", domain.AccountPSPFees: "287",
		domain.AccountCommission: "-900", "seller_payable:s1": "-5400", "seller_payable:s2": "-2700",
	}, map[string][2]string{"s1": {"0", "5400"}, "s2": {"0", "2700"}})
	// Before anything: nothing.
	check(at.Add(-time.Second), map[string]string{domain.AccountPSPReceivable: "0"}, map[string][2]string{"s1": {"0", "0"}})

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
	// Rebuild from scratch.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return projections.ResetLedger(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	stop = runLedger(t, pool, store)
	waitLedgerAtHead(t, pool, store)
	stop()
	if rebuilt := ledgerSnapshot(t, pool); rebuilt != first {
		t.Fatalf("rebuild differs:\n%s\nvs\n%s", first, rebuilt)
	}
}

func TestDatabaseRejectsAnUnbalancedEntry(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	insert := func(debit, credit string) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO journal_entries (event_id, order_id, merchant_id, kind, currency, occurred_at)
				VALUES ($1, 'o', 'm', 'approval', 'KRW', now()) RETURNING id`, uuid.NewString()).Scan(&id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO postings (entry_id, account, account_type, debit, credit, currency, occurred_at) VALUES
				($1, 'psp_receivable:toss', 'asset', $2, 0, 'KRW', now()),
				($1, 'seller_payable:s', 'liability', 0, $3, 'KRW', now())`, id, debit, credit)
			return err
		})
	}
	if err := insert("100", "100"); err != nil {
		t.Fatalf("balanced entry refused: %v", err)
	}
	err := insert("100", "99")
	if err == nil || !strings.Contains(err.Error(), "unbalanced") {
		t.Fatalf("unbalanced entry: err = %v, want the trigger's refusal", err)
	}
	// An entry without postings is refused too, and so is removing one side of a stored entry.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
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
