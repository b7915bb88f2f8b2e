package queries_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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
