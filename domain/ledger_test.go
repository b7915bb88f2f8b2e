package domain_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

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

// posting is one expected posting: account, debit, credit.
type posting struct{ account, debit, credit string }

func postingsOf(e domain.JournalEntry) []posting {
	var out []posting
	for _, p := range e.Postings {
		out = append(out, posting{p.Account, p.Debit.String(), p.Credit.String()})
	}
	return out
}

func equalPostings(a, b []posting) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSettlementEntries(t *testing.T) {
	kst := func(s string) time.Time {
		t.Helper()
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	row := func(amount, fee, payout int64, sold, paid string) domain.SettlementRecorded {
		return domain.SettlementRecorded{TransactionKey: "tx", SoldDate: sold, PaidOutDate: paid,
			Amount: decimal.NewFromInt(amount), Fee: decimal.NewFromInt(fee), PayOutAmount: decimal.NewFromInt(payout)}
	}
	const (
		endOf21   = "2026-11-21T23:59:59.999999+09:00"
		startOf23 = "2026-11-23T00:00:00+09:00"
	)
	cases := []struct {
		name                 string
		row                  domain.SettlementRecorded
		settlement, payout   []posting
		settledAt, paidOutAt string
	}{
		{"an approval's row: receivable becomes payout due and fee, then bank",
			row(10000, 319, 9681, "2026-11-21", "2026-11-23"),
			[]posting{{domain.AccountPSPPayoutDue, "9681", "0"}, {domain.AccountPSPFees, "319", "0"}, {domain.AccountPSPReceivable, "0", "10000"}},
			[]posting{{domain.AccountBank, "9681", "0"}, {domain.AccountPSPPayoutDue, "0", "9681"}},
			endOf21, startOf23},
		{"a cancel's row (negative): every side reversed",
			row(-1000, -32, -968, "2026-11-21", "2026-11-23"),
			[]posting{{domain.AccountPSPPayoutDue, "0", "968"}, {domain.AccountPSPFees, "0", "32"}, {domain.AccountPSPReceivable, "1000", "0"}},
			[]posting{{domain.AccountBank, "0", "968"}, {domain.AccountPSPPayoutDue, "968", "0"}},
			endOf21, startOf23},
		{"zero fee: no fee posting",
			row(5000, 0, 5000, "2026-11-21", "2026-11-23"),
			[]posting{{domain.AccountPSPPayoutDue, "5000", "0"}, {domain.AccountPSPReceivable, "0", "5000"}},
			[]posting{{domain.AccountBank, "5000", "0"}, {domain.AccountPSPPayoutDue, "0", "5000"}},
			endOf21, startOf23},
		{"zero payout: the fee takes it all and the payout entry is empty",
			row(100, 100, 0, "2026-11-21", "2026-11-23"),
			[]posting{{domain.AccountPSPFees, "100", "0"}, {domain.AccountPSPReceivable, "0", "100"}},
			nil,
			endOf21, startOf23},
		{"all zero: nothing to book",
			row(0, 0, 0, "2026-11-21", "2026-11-23"), nil, nil, endOf21, startOf23},
		{"paid out on the sold day: the payout is booked with the settlement, never before it",
			row(1000, 30, 970, "2026-11-21", "2026-11-21"),
			[]posting{{domain.AccountPSPPayoutDue, "970", "0"}, {domain.AccountPSPFees, "30", "0"}, {domain.AccountPSPReceivable, "0", "1000"}},
			[]posting{{domain.AccountBank, "970", "0"}, {domain.AccountPSPPayoutDue, "0", "970"}},
			endOf21, endOf21},
		{"month end and leap day",
			row(1, 0, 1, "2028-02-29", "2028-03-02"),
			[]posting{{domain.AccountPSPPayoutDue, "1", "0"}, {domain.AccountPSPReceivable, "0", "1"}},
			[]posting{{domain.AccountBank, "1", "0"}, {domain.AccountPSPPayoutDue, "0", "1"}},
			"2028-02-29T23:59:59.999999+09:00", "2028-03-02T00:00:00+09:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := domain.SettlementEntries(domain.KRW, c.row)
			if err != nil {
				t.Fatal(err)
			}
			if b.Settlement.Kind != domain.EntrySettlement || b.Payout.Kind != domain.EntryPayout {
				t.Fatalf("kinds %s, %s", b.Settlement.Kind, b.Payout.Kind)
			}
			if got := postingsOf(b.Settlement); !equalPostings(got, c.settlement) {
				t.Errorf("settlement entry %v, want %v", got, c.settlement)
			}
			if got := postingsOf(b.Payout); !equalPostings(got, c.payout) {
				t.Errorf("payout entry %v, want %v", got, c.payout)
			}
			if !b.SettledAt.Equal(kst(c.settledAt)) || !b.PaidOutAt.Equal(kst(c.paidOutAt)) {
				t.Errorf("settled at %s, paid out at %s; want %s, %s", b.SettledAt, b.PaidOutAt, c.settledAt, c.paidOutAt)
			}
			if _, off := b.PaidOutAt.Zone(); off != 9*3600 {
				t.Errorf("paid out at %s: want a KST time", b.PaidOutAt)
			}
			for _, e := range []domain.JournalEntry{b.Settlement, b.Payout} {
				if len(e.Postings) > 0 {
					if err := e.Balanced(); err != nil {
						t.Error(err)
					}
				}
			}
			if b.PaidOutAt.Before(b.SettledAt) {
				t.Errorf("paid out at %s before the settlement at %s", b.PaidOutAt, b.SettledAt)
			}
		})
	}

	// A row and its reversal leave nothing on any account.
	pos, err := domain.SettlementEntries(domain.KRW, row(10000, 319, 9681, "2026-11-21", "2026-11-23"))
	if err != nil {
		t.Fatal(err)
	}
	neg, err := domain.SettlementEntries(domain.KRW, row(-10000, -319, -9681, "2026-11-21", "2026-11-23"))
	if err != nil {
		t.Fatal(err)
	}
	all := []domain.JournalEntry{pos.Settlement, pos.Payout, neg.Settlement, neg.Payout}
	for _, a := range []string{domain.AccountBank, domain.AccountPSPPayoutDue, domain.AccountPSPFees, domain.AccountPSPReceivable} {
		if b := balanceOf(all, a); !b.IsZero() {
			t.Errorf("%s = %s after a row and its reversal", a, b)
		}
	}
	// Once paid out, nothing is left due; between the two entries the payout is due, not in the bank.
	if b := balanceOf([]domain.JournalEntry{pos.Settlement}, domain.AccountPSPPayoutDue); !b.Equal(decimal.NewFromInt(9681)) {
		t.Errorf("payout due after the settlement %s", b)
	}
	if b := balanceOf([]domain.JournalEntry{pos.Settlement, pos.Payout}, domain.AccountPSPPayoutDue); !b.IsZero() {
		t.Errorf("payout due after the payout %s", b)
	}
}

func TestSettlementEntriesRefuseBadRows(t *testing.T) {
	row := func(sold, paid string, amount, fee, payout int64) domain.SettlementRecorded {
		return domain.SettlementRecorded{TransactionKey: "tx", SoldDate: sold, PaidOutDate: paid,
			Amount: decimal.NewFromInt(amount), Fee: decimal.NewFromInt(fee), PayOutAmount: decimal.NewFromInt(payout)}
	}
	for name, c := range map[string]struct {
		row  domain.SettlementRecorded
		want *domain.Error
	}{
		"amount ≠ fee + payout":         {row("2026-11-21", "2026-11-23", 10, 1, 8), domain.ErrUnbalancedEntry},
		"no sold date":                  {row("", "2026-11-23", 10, 1, 9), domain.ErrInvalidInput},
		"no paid-out date":              {row("2026-11-21", "", 10, 1, 9), domain.ErrInvalidInput},
		"a date with a time":            {row("2026-11-21T00:00:00+09:00", "2026-11-23", 10, 1, 9), domain.ErrInvalidInput},
		"compact date":                  {row("20261121", "2026-11-23", 10, 1, 9), domain.ErrInvalidInput},
		"single-digit month":            {row("2026-1-21", "2026-11-23", 10, 1, 9), domain.ErrInvalidInput},
		"no such day":                   {row("2026-02-30", "2026-03-02", 10, 1, 9), domain.ErrInvalidInput},
		"trailing text":                 {row("2026-11-21 ", "2026-11-23", 10, 1, 9), domain.ErrInvalidInput},
		"paid out before it was sold":   {row("2026-11-23", "2026-11-21", 10, 1, 9), domain.ErrInvalidInput},
		"an all-zero row with bad date": {row("yesterday", "2026-11-23", 0, 0, 0), domain.ErrInvalidInput},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := domain.SettlementEntries(domain.KRW, c.row)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %s", err, c.want.Code)
			}
			if len(b.Settlement.Postings)+len(b.Payout.Postings) != 0 || !b.SettledAt.IsZero() || !b.PaidOutAt.IsZero() {
				t.Fatalf("a refused row still booked %+v", b)
			}
		})
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
