package queries_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/queries"
)

// TestWalletMovementsPages: 100 movements of one seller, 60 of them (the payouts) at one
// moment, read 7 at a time: every movement exactly once, newest first, in the order of the
// whole list; a cursor resumes only its own list.
func TestWalletMovementsPages(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const m, other domain.MerchantID = "shop-wallet", "shop-other"
	var ps []*payment
	for i := range 30 { // approval, then a payout of two movements at the start of 11-02
		id := fmt.Sprintf("order-S%02d", i)
		ps = append(ps, newPayment(t, m, id, id, "buyer", "s-page", 1000+int64(i), kst("2026-11-01", 10, i)).
			approve(kst("2026-11-01", 10, i+1)).settle("tx_"+id, "2026-11-02", 1000+int64(i), 30))
	}
	for i := range 5 { // approval and cancel, not settled
		id := fmt.Sprintf("order-C%02d", i)
		ps = append(ps, newPayment(t, m, id, id, "buyer", "s-page", 500, kst("2026-11-03", 10, i)).
			approve(kst("2026-11-03", 10, i+1)).cancel(500, kst("2026-11-03", 11, i)))
	}
	ps = append(ps,
		newPayment(t, m, "order-O1", "O1", "buyer", "s-other", 700, kst("2026-11-01", 10, 0)).approve(kst("2026-11-01", 10, 1)),
		newPayment(t, m, "order-O2", "O2", "buyer", "s-other", 700, kst("2026-11-01", 10, 1)).approve(kst("2026-11-01", 10, 2)),
		// The same seller id under another merchant is another wallet.
		newPayment(t, other, "order-X1", "X1", "buyer", "s-page", 900, kst("2026-11-01", 10, 0)).approve(kst("2026-11-01", 10, 1)))
	for _, p := range ps {
		p.store(ctx, store)
	}
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
	l := queries.NewLedger(pool)
	asOf := kst("2026-11-30", 0, 0)
	key := func(mv queries.WalletMovement) string {
		return mv.OrderID + "/" + mv.LineID + "/" + mv.Kind + "/" + mv.Bucket
	}

	// The whole list as the table holds it, newest first, ties by id (the order written).
	rows, err := pool.Query(ctx, `SELECT order_id, line_id, kind, bucket FROM wallet_movements
		WHERE merchant_id = $1 AND seller_id = 's-page' ORDER BY occurred_at DESC, id DESC`, m)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for rows.Next() {
		var o, line, kind, bucket string
		if err := rows.Scan(&o, &line, &kind, &bucket); err != nil {
			t.Fatal(err)
		}
		want = append(want, o+"/"+line+"/"+kind+"/"+bucket)
	}
	if rows.Err() != nil || len(want) != 100 {
		t.Fatalf("%d movements stored (%v), want 100", len(want), rows.Err())
	}

	var got []string
	seen := map[string]bool{}
	var last time.Time
	page, err := l.WalletMovements(ctx, m, "s-page", asOf, "", queries.MovementsQuery{Limit: 7})
	for n := 1; ; n++ {
		if err != nil {
			t.Fatalf("page %d: %v", n, err)
		}
		if !page.AsOf.Equal(asOf) || page.SellerID != "s-page" {
			t.Fatalf("page %d of %s as of %s, want s-page as of %s", n, page.SellerID, page.AsOf, asOf)
		}
		if (page.NextCursor != "" && len(page.Movements) != 7) || (page.NextCursor == "" && len(page.Movements) != 100%7) {
			t.Fatalf("page %d: %d movements, next cursor %q", n, len(page.Movements), page.NextCursor)
		}
		for _, mv := range page.Movements {
			if seen[key(mv)] {
				t.Fatalf("page %d repeats %s", n, key(mv))
			}
			if !last.IsZero() && mv.OccurredAt.After(last) {
				t.Fatalf("page %d: %s at %s after %s: want newest first", n, key(mv), mv.OccurredAt, last)
			}
			seen[key(mv)], last = true, mv.OccurredAt
			got = append(got, key(mv))
		}
		if page.NextCursor == "" {
			break
		}
		// Without asOf, a later page is as of the first page's moment.
		page, err = l.WalletMovements(ctx, m, "s-page", time.Time{}, "", queries.MovementsQuery{Limit: 7, Cursor: page.NextCursor})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages:\n%v\nwant:\n%v", got, want)
	}

	// One page of 500 is the whole list; the default page is 50.
	if all, err := l.WalletMovements(ctx, m, "s-page", asOf, "KRW", queries.MovementsQuery{Limit: queries.MaxMovementsPageSize}); err != nil || len(all.Movements) != 100 || all.NextCursor != "" {
		t.Fatalf("limit 500: %d movements, cursor %q, %v", len(all.Movements), all.NextCursor, err)
	}
	first, err := l.WalletMovements(ctx, m, "s-page", asOf, "", queries.MovementsQuery{})
	if err != nil || len(first.Movements) != queries.DefaultMovementsPageSize || first.NextCursor == "" {
		t.Fatalf("default page: %d movements, cursor %q, %v", len(first.Movements), first.NextCursor, err)
	}
	for _, limit := range []int{-1, queries.MaxMovementsPageSize + 1} {
		if _, err := l.WalletMovements(ctx, m, "s-page", asOf, "", queries.MovementsQuery{Limit: limit}); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("limit %d: %v, want invalid input", limit, err)
		}
	}
	// asOf bounds the list: before the payouts, only the approvals.
	early, err := l.WalletMovements(ctx, m, "s-page", kst("2026-11-01", 23, 0), "", queries.MovementsQuery{Limit: 100})
	if err != nil || len(early.Movements) != 30 || early.Movements[0].Kind != "approval" {
		t.Fatalf("as of 11-01: %d movements, %v", len(early.Movements), err)
	}
	// The same asOf again, to the microsecond PostgreSQL keeps, resumes the list.
	if _, err := l.WalletMovements(ctx, m, "s-page", asOf.Add(300*time.Nanosecond), "", queries.MovementsQuery{Cursor: first.NextCursor}); err != nil {
		t.Fatalf("the same asOf: %v", err)
	}

	others, err := l.WalletMovements(ctx, m, "s-other", asOf, "", queries.MovementsQuery{Limit: 1})
	if err != nil || others.NextCursor == "" {
		t.Fatalf("s-other: %+v %v", others, err)
	}
	for name, c := range map[string]struct {
		seller   domain.SellerID
		asOf     time.Time
		currency string
		cursor   string
	}{
		"another seller's":      {"s-page", asOf, "", others.NextCursor},
		"for another seller":    {"s-other", asOf, "", first.NextCursor},
		"another asOf's":        {"s-page", asOf.Add(time.Second), "", first.NextCursor},
		"another currency's":    {"s-page", asOf, "USD", first.NextCursor},
		"junk":                  {"s-page", asOf, "", "abc"},
		"a postings cursor":     {"s-page", asOf, "", postingsCursor(t, ctx, l, m)},
		"an edited one":         {"s-page", asOf, "", first.NextCursor[:len(first.NextCursor)-1] + flip(first.NextCursor[len(first.NextCursor)-1])},
		"without asOf, junk":    {"s-page", time.Time{}, "", "abc"},
		"without asOf, other's": {"s-page", time.Time{}, "", others.NextCursor},
	} {
		if _, err := l.WalletMovements(ctx, m, c.seller, c.asOf, c.currency, queries.MovementsQuery{Cursor: c.cursor}); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("cursor %s: %v, want invalid input", name, err)
		}
	}
	// Another merchant's wallet of the same seller id: its own movement only.
	x, err := l.WalletMovements(ctx, other, "s-page", asOf, "", queries.MovementsQuery{})
	if err != nil || len(x.Movements) != 1 || x.Movements[0].OrderID != "order-X1" {
		t.Fatalf("the other merchant's s-page: %+v %v", x, err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// postingsCursor is a cursor of an account's postings: a valid cursor of another list.
func postingsCursor(t *testing.T, ctx context.Context, l *queries.Ledger, m domain.MerchantID) string {
	t.Helper()
	p, err := l.Postings(ctx, m, domain.AccountPSPReceivable, queries.PostingsQuery{Limit: 1})
	if err != nil || p.NextCursor == "" {
		t.Fatalf("postings page: %q %v", p.NextCursor, err)
	}
	return p.NextCursor
}

// TestBalancesMatchPostings: balances read from the rollup plus asOf's day equal a plain sum of
// the postings up to asOf, for asOf before everything, at and around every posting (midnight
// KST, the settlements' end of day and the payouts' start of day among them), mid-day, at the
// end of a day and after everything; and the rollup the projection wrote equals the one the
// migration's backfill computes from the same postings.
func TestBalancesMatchPostings(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const m, other domain.MerchantID = "shop-balances", "shop-other"
	for _, p := range []*payment{
		newPayment(t, m, "order-A", "A", "buyer-1", "seller-1", 10000, kst("2026-11-01", 9, 55)).
			approve(kst("2026-11-01", 10, 0)).cancel(4000, kst("2026-11-02", 15, 0)).
			settle("tx_order-A", "2026-11-01", 10000, 350).settle("ctx_order-A_c1", "2026-11-02", -4000, -140),
		// Approved at midnight KST: the first moment of 11-03.
		newPayment(t, m, "order-B", "B", "buyer-2", "seller-2", 20000, kst("2026-11-02", 23, 50)).
			approve(kst("2026-11-03", 0, 0)).cancel(20000, kst("2026-11-03", 23, 59)),
		// 00:30 KST is the previous day in UTC.
		newPayment(t, m, "order-C", "C", "buyer-3", "seller-1", 30000, kst("2026-11-04", 0, 20)).
			approve(kst("2026-11-04", 0, 30)).settle("tx_order-C", "2026-11-04", 30000, 1000),
		newPayment(t, m, "order-D", "D", "buyer-4", "seller-2", 7000, kst("2026-11-04", 12, 0)).approve(kst("2026-11-04", 12, 5)),
		newPayment(t, m, "order-E", "E", "buyer-5", "seller-3", 5000, kst("2026-11-06", 9, 0)).reject(kst("2026-11-06", 9, 1)),
		// Another merchant's books, the same days: never in this merchant's balances.
		newPayment(t, other, "order-X", "X", "buyer-1", "seller-1", 99000, kst("2026-11-01", 9, 55)).
			approve(kst("2026-11-01", 10, 0)).settle("tx_order-X", "2026-11-02", 99000, 3000),
	} {
		p.store(ctx, store)
	}
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

	// The migration's backfill over these postings gives the rows the projection wrote.
	var diff int
	if err := pool.QueryRow(ctx, `
		WITH backfill AS (
			SELECT merchant_id, account, account_type, currency, (occurred_at AT TIME ZONE 'Asia/Seoul')::date AS day,
			       sum(debit) AS debit, sum(credit) AS credit
			FROM postings GROUP BY 1, 2, 3, 4, 5),
		kept AS (SELECT merchant_id, account, account_type, currency, day, debit, credit FROM ledger_account_days)
		SELECT (SELECT count(*) FROM (TABLE backfill EXCEPT TABLE kept) a) + (SELECT count(*) FROM (TABLE kept EXCEPT TABLE backfill) b)`).
		Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("ledger_account_days differs from the backfill of its postings in %d rows", diff)
	}

	var asOfs []time.Time
	rows, err := pool.Query(ctx, `SELECT DISTINCT occurred_at FROM postings WHERE merchant_id = $1 ORDER BY 1`, m)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var at time.Time
		if err := rows.Scan(&at); err != nil {
			t.Fatal(err)
		}
		asOfs = append(asOfs, at.Add(-time.Microsecond), at, at.Add(time.Microsecond))
	}
	if rows.Err() != nil || len(asOfs) < 3*8 {
		t.Fatalf("%d moments around postings (%v)", len(asOfs)/3, rows.Err())
	}
	asOfs = append(asOfs,
		kst("2026-10-31", 12, 0), // before everything
		kst("2026-11-01", 0, 0),  // the start of the first day
		kst("2026-11-02", 12, 0), // mid-day, postings before and after on the same day
		kst("2026-11-04", 6, 0),
		kst("2026-11-03", 0, 0).Add(-time.Microsecond), // the last moment of 11-02
		kst("2026-11-05", 0, 0).Add(-time.Microsecond),
		kst("2026-11-05", 0, 0),
		kst("2026-11-30", 0, 0)) // after everything

	l := queries.NewLedger(pool)
	format := func(bs []queries.AccountBalance) string {
		out := ""
		for _, b := range bs {
			out += fmt.Sprintf("%s/%s/%s %s %s %s\n", b.Account, b.Type, b.Currency, b.Debits, b.Credits, b.Balance)
		}
		return out
	}
	direct := func(asOf time.Time, currency string) string {
		rows, err := pool.Query(ctx, `
			SELECT account, account_type, currency, sum(debit), sum(credit), sum(debit) - sum(credit)
			FROM postings WHERE merchant_id = $1 AND occurred_at <= $2 AND ($3::text = '' OR currency = $3)
			GROUP BY account, account_type, currency ORDER BY account, currency`, m, asOf, currency)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queries.AccountBalance, error) {
			var b queries.AccountBalance
			return b, r.Scan(&b.Account, &b.Type, &b.Currency, &b.Debits, &b.Credits, &b.Balance)
		})
		if err != nil {
			t.Fatal(err)
		}
		if currency != "" { // a trial balance says its currency once, at the top
			for i := range bs {
				bs[i].Currency = ""
			}
		}
		return format(bs)
	}
	nonEmpty := 0
	for _, asOf := range asOfs {
		ab, err := l.AccountBalances(ctx, m, asOf)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := format(ab.Accounts), direct(asOf, ""); got != want {
			t.Errorf("account balances as of %s:\n%swant:\n%s", asOf.In(domain.KST).Format(time.RFC3339Nano), got, want)
		}
		tb, err := l.TrialBalance(ctx, m, asOf, "KRW")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := format(tb.Accounts), direct(asOf, "KRW"); got != want {
			t.Errorf("trial balance as of %s:\n%swant:\n%s", asOf.In(domain.KST).Format(time.RFC3339Nano), got, want)
		}
		if !tb.TotalDebits.Equal(tb.TotalCredits) {
			t.Errorf("trial balance as of %s: debits %s, credits %s", asOf.In(domain.KST).Format(time.RFC3339Nano), tb.TotalDebits, tb.TotalCredits)
		}
		if len(ab.Accounts) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty == 0 || nonEmpty == len(asOfs) {
		t.Errorf("%d of %d moments with balances: want some before the first posting and some after", nonEmpty, len(asOfs))
	}
}
