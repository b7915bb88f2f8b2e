package domain_test

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

func decs(vals ...int64) []decimal.Decimal {
	out := make([]decimal.Decimal, len(vals))
	for i, v := range vals {
		out[i] = decimal.NewFromInt(v)
	}
	return out
}

func sum(ds []decimal.Decimal) decimal.Decimal {
	s := decimal.Zero
	for _, d := range ds {
		s = s.Add(d)
	}
	return s
}

func TestAllocateProRata(t *testing.T) {
	cases := []struct {
		name    string
		amount  int64
		weights []int64
		want    []int64
	}{
		{"10000 over 3 equal lines: the extra won to the first", 10000, []int64{1, 1, 1}, []int64{3334, 3333, 3333}},
		{"ties go to the lower index", 2, []int64{1, 1, 1}, []int64{1, 1, 0}},
		{"largest remainder wins over index", 10, []int64{1, 2, 4}, []int64{1, 3, 6}},
		{"exact split", 6000, []int64{1000, 2000, 3000}, []int64{1000, 2000, 3000}},
		{"zero weight gets nothing", 5, []int64{0, 3, 2}, []int64{0, 3, 2}},
		{"all-zero weights split equally", 5, []int64{0, 0}, []int64{3, 2}},
		{"negative amount mirrors", -10000, []int64{1, 1, 1}, []int64{-3334, -3333, -3333}},
		{"one line", 777, []int64{5}, []int64{777}},
		{"1 won over many", 1, []int64{3, 3, 4}, []int64{0, 0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := domain.AllocateProRata(decimal.NewFromInt(c.amount), decs(c.weights...))
			want := decs(c.want...)
			for i := range want {
				if !got[i].Equal(want[i]) {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		})
	}
	if got := domain.AllocateProRata(decimal.NewFromInt(5), nil); got != nil {
		t.Fatalf("no weights: got %v", got)
	}
}

func TestAllocateProRataSumsExactlyAndIsBoundedRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(8)
		w := make([]decimal.Decimal, n)
		for i := range w {
			w[i] = decimal.NewFromInt(rng.Int64N(1_000_000))
		}
		amount := decimal.NewFromInt(rng.Int64N(10_000_000))
		parts := domain.AllocateProRata(amount, w)
		if !sum(parts).Equal(amount) {
			t.Fatalf("%s over %v: parts %v sum to %s", amount, w, parts, sum(parts))
		}
		total := sum(w)
		for i, p := range parts {
			if p.Sign() < 0 || !p.Equal(p.Truncate(0)) {
				t.Fatalf("part %d = %s", i, p)
			}
			if total.IsZero() {
				continue
			}
			exact := amount.Mul(w[i]).Div(total)
			if p.Sub(exact).Abs().GreaterThanOrEqual(decimal.NewFromInt(1)) {
				t.Fatalf("part %d = %s is a unit or more from the exact share %s", i, p, exact)
			}
		}
		// a cancel of at most the total weight never exceeds any weight
		if amount.LessThanOrEqual(total) {
			for i := range parts {
				if parts[i].GreaterThan(w[i]) {
					t.Fatalf("%s over %v: part %d = %s above its weight", amount, w, i, parts[i])
				}
			}
		}
	}
}

func TestAllocateProRataScaleKeepsFractionsExact(t *testing.T) {
	parts := domain.AllocateProRataScale(decimal.RequireFromString("100.00"), decs(1, 1, 1), 2)
	if !sum(parts).Equal(decimal.NewFromInt(100)) || !parts[0].Equal(decimal.RequireFromString("33.34")) {
		t.Fatalf("parts %v", parts)
	}
	parts = domain.AllocateProRata(decimal.RequireFromString("10.5"), decs(1, 1))
	if !sum(parts).Equal(decimal.RequireFromString("10.5")) {
		t.Fatalf("a fractional amount must still sum exactly: %v", parts)
	}
}

func TestCommissionRoundsDown(t *testing.T) {
	for _, c := range []struct{ amount, rate, want string }{
		{"10000", "0.1", "1000"}, {"999", "0.1", "99"}, {"1", "0.5", "0"}, {"3333", "0.033", "109"}, {"5000", "0", "0"},
	} {
		got := domain.Commission(decimal.RequireFromString(c.amount), decimal.RequireFromString(c.rate), domain.KRW)
		if !got.Equal(decimal.RequireFromString(c.want)) {
			t.Errorf("commission of %s at %s = %s, want %s", c.amount, c.rate, got, c.want)
		}
	}
	for _, bad := range []string{"-0.01", "1", "1.5"} {
		if err := domain.CheckCommissionRate(decimal.RequireFromString(bad)); err == nil {
			t.Errorf("rate %s accepted", bad)
		}
	}
}

func lines(t *testing.T, rate string, amounts ...int64) []domain.LedgerLine {
	t.Helper()
	var in []domain.Line
	for i, a := range amounts {
		in = append(in, domain.Line{LineID: domain.LineID("L" + string(rune('1'+i))), SellerID: domain.SellerID("s" + string(rune('a'+i%2))), ProductID: "p", Amount: decimal.NewFromInt(a)})
	}
	ls, err := domain.NewLedgerLines(in, decimal.RequireFromString(rate), domain.KRW)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func balanceOf(entries []domain.JournalEntry, account string) decimal.Decimal {
	b := decimal.Zero
	for _, e := range entries {
		for _, p := range e.Postings {
			if p.Account == account {
				b = b.Add(p.Debit).Sub(p.Credit)
			}
		}
	}
	return b
}

func TestApprovalCancelEntriesBalanceAndFullCancelZeroesEverything(t *testing.T) {
	ls := lines(t, "0.1", 3333, 3333, 3334)
	total := decimal.NewFromInt(10000)
	appr, err := domain.ApprovalEntry(domain.KRW, ls, total)
	if err != nil {
		t.Fatal(err)
	}
	// 3333 × 0.1 = 333.3 → 333 each, 333.4 → 333: commission 999, sellers 9001
	if got := balanceOf([]domain.JournalEntry{appr}, domain.AccountCommission); !got.Equal(decimal.NewFromInt(-999)) {
		t.Fatalf("commission balance %s", got)
	}
	entries := []domain.JournalEntry{appr}
	for _, amt := range []int64{1, 2, 3333, 1000, 5664} { // sums to 10000
		e, after, err := domain.CancelEntry(domain.KRW, ls, decimal.NewFromInt(amt))
		if err != nil {
			t.Fatalf("cancel %d: %v", amt, err)
		}
		if err := e.Balanced(); err != nil {
			t.Fatal(err)
		}
		for i, l := range after {
			if l.Canceled.GreaterThan(l.Amount) || l.CommissionReversed.GreaterThan(l.Commission) || l.Canceled.Sign() < 0 {
				t.Fatalf("line %d after cancel %d: %+v", i, amt, l)
			}
		}
		ls = after
		entries = append(entries, e)
	}
	for _, acct := range []string{domain.AccountCommission, domain.AccountPSPReceivable, domain.SellerPayableAccount("sa"), domain.SellerPayableAccount("sb")} {
		if b := balanceOf(entries, acct); !b.IsZero() {
			t.Errorf("after a full cancel %s = %s, want 0", acct, b)
		}
	}
	if _, _, err := domain.CancelEntry(domain.KRW, ls, decimal.NewFromInt(1)); err == nil {
		t.Fatal("a cancel beyond the balance was accepted")
	}
}

func TestApprovalEntryRefusesAMismatchedTotal(t *testing.T) {
	if _, err := domain.ApprovalEntry(domain.KRW, lines(t, "0", 100), decimal.NewFromInt(101)); err == nil {
		t.Fatal("mismatched total accepted")
	}
}

func TestSettlementEntries(t *testing.T) {
	pos, err := domain.SettlementEntry(domain.KRW, domain.SettlementRecorded{TransactionKey: "tx",
		Amount: decimal.NewFromInt(10000), Fee: decimal.NewFromInt(319), PayOutAmount: decimal.NewFromInt(9681)})
	if err != nil {
		t.Fatal(err)
	}
	neg, err := domain.SettlementEntry(domain.KRW, domain.SettlementRecorded{TransactionKey: "tx2",
		Amount: decimal.NewFromInt(-10000), Fee: decimal.NewFromInt(-319), PayOutAmount: decimal.NewFromInt(-9681)})
	if err != nil {
		t.Fatal(err)
	}
	both := []domain.JournalEntry{pos, neg}
	for _, a := range []string{domain.AccountBank, domain.AccountPSPFees, domain.AccountPSPReceivable} {
		if b := balanceOf(both, a); !b.IsZero() {
			t.Errorf("%s = %s after a row and its reversal", a, b)
		}
	}
	if b := balanceOf([]domain.JournalEntry{pos}, domain.AccountBank); !b.Equal(decimal.NewFromInt(9681)) {
		t.Errorf("bank %s", b)
	}
	if _, err := domain.SettlementEntry(domain.KRW, domain.SettlementRecorded{Amount: decimal.NewFromInt(10), Fee: decimal.NewFromInt(1), PayOutAmount: decimal.NewFromInt(8)}); err == nil {
		t.Fatal("amount ≠ fee + payout accepted")
	}
	zero, err := domain.SettlementEntry(domain.KRW, domain.SettlementRecorded{})
	if err != nil || len(zero.Postings) != 0 {
		t.Fatalf("zero row: %v %v", zero, err)
	}
}

func TestBalancedRejects(t *testing.T) {
	d := decimal.NewFromInt
	for name, e := range map[string]domain.JournalEntry{
		"unequal":     {Currency: domain.KRW, Postings: []domain.Posting{{Account: domain.AccountBank, Debit: d(2)}, {Account: domain.AccountPSPReceivable, Credit: d(1)}}},
		"both sides":  {Currency: domain.KRW, Postings: []domain.Posting{{Account: domain.AccountBank, Debit: d(1), Credit: d(1)}, {Account: domain.AccountPSPReceivable, Credit: d(1), Debit: d(1)}}},
		"one posting": {Currency: domain.KRW, Postings: []domain.Posting{{Account: domain.AccountBank}}},
		"negative":    {Currency: domain.KRW, Postings: []domain.Posting{{Account: domain.AccountBank, Debit: d(-1)}, {Account: domain.AccountPSPReceivable, Credit: d(-1)}}},
		"unknown":     {Currency: domain.KRW, Postings: []domain.Posting{{Account: "cash", Debit: d(1)}, {Account: domain.AccountPSPReceivable, Credit: d(1)}}},
		"fraction":    {Currency: domain.KRW, Postings: []domain.Posting{{Account: domain.AccountBank, Debit: decimal.RequireFromString("0.5")}, {Account: domain.AccountPSPReceivable, Credit: decimal.RequireFromString("0.5")}}},
	} {
		if err := e.Balanced(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRandomCancelSequencesStayExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 300 {
		n := 1 + rng.IntN(5)
		amounts := make([]int64, n)
		total := int64(0)
		for i := range amounts {
			amounts[i] = 1 + rng.Int64N(50000)
			total += amounts[i]
		}
		ls := lines(t, []string{"0", "0.1", "0.033", "0.5"}[rng.IntN(4)], amounts...)
		appr, err := domain.ApprovalEntry(domain.KRW, ls, decimal.NewFromInt(total))
		if err != nil {
			t.Fatal(err)
		}
		entries := []domain.JournalEntry{appr}
		left := total
		for left > 0 {
			amt := 1 + rng.Int64N(left)
			if rng.IntN(4) == 0 {
				amt = left
			}
			e, after, err := domain.CancelEntry(domain.KRW, ls, decimal.NewFromInt(amt))
			if err != nil {
				t.Fatal(err)
			}
			ls, left = after, left-amt
			entries = append(entries, e)
		}
		for _, a := range []string{domain.AccountCommission, domain.AccountPSPReceivable, domain.SellerPayableAccount("sa"), domain.SellerPayableAccount("sb")} {
			if b := balanceOf(entries, a); !b.IsZero() {
				t.Fatalf("%v: %s = %s after full cancel", amounts, a, b)
			}
		}
	}
}
