package domain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Ledger posting rules (DESIGN.md, Read models: Ledger). Pure functions: the ledger projection
// feeds them the checkout lines it keeps and writes what they return. Every merchant has its own
// books: the projection keeps each entry under the merchant of its order, and the same accounts
// of two merchants are two accounts.
//
// Accounts, per merchant and currency:
//
//	psp_receivable:toss          asset      approved (+), settled (−), canceled (−)
//	psp_payout_due:toss          asset      settled by Toss (+ payout), paid out (−)
//	bank:operating               asset      payout from Toss (+)
//	seller_payable:<sellerId>    liability  approved (+ net of commission), canceled (−)
//	platform_revenue:commission  revenue    approved (+ commission), canceled (−)
//	psp_fees:toss                expense    settled (+ fee)
//
// When (postings carry the time of the fact, so balances can be asked "as of" any moment):
//   - approval and cancel: the PSP's approvedAt / canceledAt;
//   - a Toss settlement row books two entries (SettlementEntries). Toss settles the sales of a
//     Korean calendar day (soldDate) and pays them out on a later day (paidOutDate), so: a
//     settlement entry at the end of soldDate in KST (its last microsecond), moving the amount
//     out of psp_receivable into psp_payout_due (payout) and psp_fees (fee); and a payout entry
//     at the start of paidOutDate in KST, moving the payout from psp_payout_due into
//     bank:operating. Settled money Toss has not yet paid out is therefore never in the bank.
//     The time the row was imported plays no part, so importing late changes no balance.
//
// Seller wallets follow the same clock: a line's net is pending from its approval and becomes
// available at the start of the paidOutDate of the settlement row of its transaction, when the
// money reaches the bank; pending + available is the seller's payable at every moment.
//
// Rounding (every amount is in the currency's minor unit, KRW scale 0):
//   - commission of a line = round-down(line amount × rate): the platform never takes a
//     fraction of a won the rate does not give it, and the seller's net is never rounded away;
//   - a cancel is allocated over the lines pro rata to what each line has left to cancel, by
//     largest remainder (AllocateProRata), so the parts sum exactly to the cancel and a line can
//     never be canceled below zero; a full cancel of the balance cancels every line exactly;
//   - the commission reversed on a line is round-down(commission left × canceled part / amount
//     left), and all of the commission left when the line is canceled to zero, so after a full
//     cancel every seller payable and the commission of the order are exactly zero.

// Well-known accounts.
const (
	AccountPSPReceivable = "psp_receivable:toss"
	AccountPSPPayoutDue  = "psp_payout_due:toss"
	AccountBank          = "bank:operating"
	AccountCommission    = "platform_revenue:commission"
	AccountPSPFees       = "psp_fees:toss"
	sellerPayablePrefix  = "seller_payable:"
)

// SellerPayableAccount is the liability account of one seller.
func SellerPayableAccount(id SellerID) string { return sellerPayablePrefix + string(id) }

// AccountType is the class of an account; it decides the sign of its natural balance.
type AccountType string

const (
	AccountAsset     AccountType = "asset"
	AccountLiability AccountType = "liability"
	AccountRevenue   AccountType = "revenue"
	AccountExpense   AccountType = "expense"
)

// AccountTypeOf returns the type of a known account name.
func AccountTypeOf(account string) (AccountType, error) {
	switch {
	case account == AccountPSPReceivable, account == AccountPSPPayoutDue, account == AccountBank:
		return AccountAsset, nil
	case account == AccountCommission:
		return AccountRevenue, nil
	case account == AccountPSPFees:
		return AccountExpense, nil
	case strings.HasPrefix(account, sellerPayablePrefix) && len(account) > len(sellerPayablePrefix):
		return AccountLiability, nil
	}
	return "", Errorf(ErrInvalidInput, "unknown ledger account %q", account)
}

// EntryKind says which fact a journal entry records.
type EntryKind string

const (
	EntryApproval   EntryKind = "approval"
	EntryCancel     EntryKind = "cancel"
	EntrySettlement EntryKind = "settlement"
	EntryPayout     EntryKind = "payout"
)

// Posting is one side of a journal entry on one account: exactly one of Debit and Credit is
// greater than zero. SellerID and LineID are set on seller payable postings (one per line), so
// that wallets can be explained line by line.
type Posting struct {
	Account  string
	SellerID SellerID
	LineID   LineID
	Debit    decimal.Decimal
	Credit   decimal.Decimal
}

// JournalEntry is a balanced set of postings in one currency.
type JournalEntry struct {
	Kind     EntryKind
	Currency Currency
	Postings []Posting
}

// ErrUnbalancedEntry is a journal entry whose debits and credits differ, or that is malformed.
var ErrUnbalancedEntry = &Error{Kind: KindInternal, Code: "UNBALANCED_ENTRY", Message: "journal entry does not balance"}

// Balanced checks that the entry has at least two postings, every posting has exactly one
// positive side on a known account, amounts fit the currency's scale, and debits equal credits.
func (e JournalEntry) Balanced() error {
	if len(e.Postings) < 2 {
		return Errorf(ErrUnbalancedEntry, "%s entry has %d postings; at least 2 are needed", e.Kind, len(e.Postings))
	}
	var errs []error
	debits, credits := decimal.Zero, decimal.Zero
	for i, p := range e.Postings {
		if _, err := AccountTypeOf(p.Account); err != nil {
			errs = append(errs, fmt.Errorf("posting %d: %w", i, err))
		}
		if p.Debit.Sign() < 0 || p.Credit.Sign() < 0 || (p.Debit.Sign() > 0) == (p.Credit.Sign() > 0) {
			errs = append(errs, fmt.Errorf("posting %d on %s: debit %s, credit %s: exactly one side must be positive", i, p.Account, p.Debit, p.Credit))
		}
		s := e.Currency.Scale()
		if !p.Debit.Equal(p.Debit.Truncate(s)) || !p.Credit.Equal(p.Credit.Truncate(s)) {
			errs = append(errs, fmt.Errorf("posting %d on %s: amount finer than the %s minor unit", i, p.Account, e.Currency))
		}
		debits, credits = debits.Add(p.Debit), credits.Add(p.Credit)
	}
	if !debits.Equal(credits) {
		errs = append(errs, fmt.Errorf("debits %s ≠ credits %s", debits, credits))
	}
	if len(errs) > 0 {
		return Errorf(ErrUnbalancedEntry, "%s entry: %v", e.Kind, errors.Join(errs...))
	}
	return nil
}

// Totals returns the sums of the debits and of the credits.
func (e JournalEntry) Totals() (debits, credits decimal.Decimal) {
	debits, credits = decimal.Zero, decimal.Zero
	for _, p := range e.Postings {
		debits, credits = debits.Add(p.Debit), credits.Add(p.Credit)
	}
	return debits, credits
}

// AllocateProRata splits amount over weights in proportion, in whole units of scale 0 (KRW),
// by the largest remainder method: every part is first rounded toward zero, then the units
// left over go one each to the parts with the largest remainders, ties to the lower index.
// The parts always sum exactly to amount. A negative amount is allocated as its absolute value
// and negated. Weights must be non-negative; when they sum to zero every weight counts as 1.
func AllocateProRata(amount decimal.Decimal, weights []decimal.Decimal) []decimal.Decimal {
	return AllocateProRataScale(amount, weights, 0)
}

// AllocateProRataScale is AllocateProRata in units of 10^-scale. If amount itself is finer
// than the unit, the fraction below one unit goes to the first part in remainder order, so the
// sum stays exact.
func AllocateProRataScale(amount decimal.Decimal, weights []decimal.Decimal, scale int32) []decimal.Decimal {
	n := len(weights)
	if n == 0 {
		return nil
	}
	if amount.Sign() < 0 {
		parts := AllocateProRataScale(amount.Neg(), weights, scale)
		for i := range parts {
			parts[i] = parts[i].Neg()
		}
		return parts
	}
	w := make([]decimal.Decimal, n)
	total := decimal.Zero
	for i, x := range weights {
		if x.Sign() < 0 {
			panic(fmt.Sprintf("domain: AllocateProRata: negative weight %s at %d", x, i))
		}
		w[i] = x
		total = total.Add(x)
	}
	if total.IsZero() {
		for i := range w {
			w[i] = decimal.NewFromInt(1)
		}
		total = decimal.NewFromInt(int64(n))
	}
	parts := make([]decimal.Decimal, n)
	rems := make([]decimal.Decimal, n) // amount×w_i − part_i×total: all over the same total, so comparable exactly
	sum := decimal.Zero
	for i := range w {
		parts[i], rems[i] = amount.Mul(w[i]).QuoRem(total, scale)
		sum = sum.Add(parts[i])
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]].GreaterThan(rems[order[b]]) })
	unit := decimal.New(1, -scale)
	left := amount.Sub(sum)
	for k := 0; left.GreaterThanOrEqual(unit); k = (k + 1) % n {
		parts[order[k]] = parts[order[k]].Add(unit)
		left = left.Sub(unit)
	}
	if left.Sign() > 0 {
		parts[order[0]] = parts[order[0]].Add(left)
	}
	return parts
}

// Commission is the platform's commission on one line: round-down(amount × rate) in the
// currency's minor unit. rate is a fraction (0.1 = 10%), 0 ≤ rate < 1.
func Commission(amount, rate decimal.Decimal, c Currency) decimal.Decimal {
	return amount.Mul(rate).RoundFloor(c.Scale())
}

// CheckCommissionRate validates a commission rate: a fraction with 0 ≤ rate < 1.
func CheckCommissionRate(rate decimal.Decimal) error {
	if rate.Sign() < 0 || rate.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return Errorf(ErrInvalidInput, "commission rate must be at least 0 and below 1, got %s", rate)
	}
	return nil
}

// LedgerLine is what the ledger keeps of one checkout line: its amount and commission, and how
// much of each has been canceled so far.
type LedgerLine struct {
	LineID             LineID
	SellerID           SellerID
	Amount             decimal.Decimal
	Commission         decimal.Decimal
	Canceled           decimal.Decimal
	CommissionReversed decimal.Decimal
}

// Net is what the seller is owed for the line once approved: amount minus commission.
func (l LedgerLine) Net() decimal.Decimal { return l.Amount.Sub(l.Commission) }

// Remaining is the part of the line not yet canceled.
func (l LedgerLine) Remaining() decimal.Decimal { return l.Amount.Sub(l.Canceled) }

// NewLedgerLines computes the commission of each checkout line at rate.
func NewLedgerLines(lines []Line, rate decimal.Decimal, c Currency) ([]LedgerLine, error) {
	if err := CheckCommissionRate(rate); err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, Errorf(ErrInvalidInput, "a checkout without lines has no ledger lines")
	}
	out := make([]LedgerLine, len(lines))
	for i, l := range lines {
		if err := CheckAmount(l.Amount, c); err != nil {
			return nil, fmt.Errorf("line %s: %w", l.LineID, err)
		}
		out[i] = LedgerLine{LineID: l.LineID, SellerID: l.SellerID, Amount: l.Amount,
			Commission: Commission(l.Amount, rate, c), Canceled: decimal.Zero, CommissionReversed: decimal.Zero}
	}
	return out, nil
}

func linesTotal(lines []LedgerLine) decimal.Decimal {
	t := decimal.Zero
	for _, l := range lines {
		t = t.Add(l.Amount)
	}
	return t
}

// ApprovalEntry records an approval of total: Dr psp_receivable (total) / Cr seller_payable per
// line (line − commission), Cr platform_revenue (the commissions). total must equal the sum of
// the lines.
func ApprovalEntry(c Currency, lines []LedgerLine, total decimal.Decimal) (JournalEntry, error) {
	if t := linesTotal(lines); !t.Equal(total) {
		return JournalEntry{}, Errorf(ErrUnbalancedEntry, "approval of %s but the lines sum to %s", total, t)
	}
	e := JournalEntry{Kind: EntryApproval, Currency: c}
	e.Postings = append(e.Postings, Posting{Account: AccountPSPReceivable, Debit: total, Credit: decimal.Zero})
	commission := decimal.Zero
	for _, l := range lines {
		commission = commission.Add(l.Commission)
		e.Postings = append(e.Postings, Posting{Account: SellerPayableAccount(l.SellerID), SellerID: l.SellerID, LineID: l.LineID,
			Debit: decimal.Zero, Credit: l.Net()})
	}
	if commission.Sign() > 0 {
		e.Postings = append(e.Postings, Posting{Account: AccountCommission, Debit: decimal.Zero, Credit: commission})
	}
	return e, e.Balanced()
}

// CancelEntry records a cancel of amount: the reverse of the approval, pro rata over what each
// line has left (largest remainder), commission reversed pro rata too. It returns the entry and
// the lines after the cancel. amount must be positive and at most what is left of the order.
func CancelEntry(c Currency, lines []LedgerLine, amount decimal.Decimal) (JournalEntry, []LedgerLine, error) {
	left := decimal.Zero
	weights := make([]decimal.Decimal, len(lines))
	for i, l := range lines {
		weights[i] = l.Remaining()
		left = left.Add(weights[i])
	}
	if amount.Sign() <= 0 || amount.GreaterThan(left) {
		return JournalEntry{}, nil, Errorf(ErrUnbalancedEntry, "cancel of %s: must be positive and at most the %s left", amount, left)
	}
	parts := AllocateProRataScale(amount, weights, c.Scale())
	after := append([]LedgerLine(nil), lines...)
	e := JournalEntry{Kind: EntryCancel, Currency: c}
	commission := decimal.Zero
	for i, l := range lines {
		part := parts[i]
		if part.IsZero() {
			continue
		}
		remaining := l.Remaining()
		commissionLeft := l.Commission.Sub(l.CommissionReversed)
		var rev decimal.Decimal
		if part.Equal(remaining) {
			rev = commissionLeft
		} else {
			rev, _ = commissionLeft.Mul(part).QuoRem(remaining, c.Scale())
		}
		after[i].Canceled = l.Canceled.Add(part)
		after[i].CommissionReversed = l.CommissionReversed.Add(rev)
		commission = commission.Add(rev)
		if net := part.Sub(rev); net.Sign() > 0 {
			e.Postings = append(e.Postings, Posting{Account: SellerPayableAccount(l.SellerID), SellerID: l.SellerID, LineID: l.LineID,
				Debit: net, Credit: decimal.Zero})
		}
	}
	if commission.Sign() > 0 {
		e.Postings = append(e.Postings, Posting{Account: AccountCommission, Debit: commission, Credit: decimal.Zero})
	}
	e.Postings = append(e.Postings, Posting{Account: AccountPSPReceivable, Debit: decimal.Zero, Credit: amount})
	return e, after, e.Balanced()
}

// SettlementBooking is what one Toss settlement row books: the settlement entry at SettledAt
// and the payout entry at PaidOutAt. Either entry has no postings when it moves no money (an
// all-zero row; a zero payout) and is then not to be written. PaidOutAt is also when the
// sellers' nets of the settled transaction move from pending to available, whether or not the
// payout entry has postings.
type SettlementBooking struct {
	Settlement JournalEntry
	SettledAt  time.Time
	Payout     JournalEntry
	PaidOutAt  time.Time
}

// SettlementDates reads a settlement row's soldDate and paidOutDate (yyyy-MM-dd, Korean
// calendar days) as the moments the ledger books them at: settledAt is the last microsecond of
// soldDate in KST (the finest step PostgreSQL stores), paidOutAt the start of paidOutDate in
// KST. A payout dated on soldDate itself is booked at settledAt, never before the settlement it
// pays out. A malformed date, or a payout dated before the sale, is an error: the ledger never
// guesses a time.
func SettlementDates(soldDate, paidOutDate string) (settledAt, paidOutAt time.Time, err error) {
	sold, errSold := time.ParseInLocation(time.DateOnly, soldDate, KST)
	if errSold != nil {
		errSold = Errorf(ErrInvalidInput, "soldDate %q is not a yyyy-MM-dd date", truncate(soldDate, 40))
	}
	paid, errPaid := time.ParseInLocation(time.DateOnly, paidOutDate, KST)
	if errPaid != nil {
		errPaid = Errorf(ErrInvalidInput, "paidOutDate %q is not a yyyy-MM-dd date", truncate(paidOutDate, 40))
	}
	if err := errors.Join(errSold, errPaid); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if paid.Before(sold) {
		return time.Time{}, time.Time{}, Errorf(ErrInvalidInput, "paidOutDate %s is before soldDate %s", paidOutDate, soldDate)
	}
	settledAt = sold.AddDate(0, 0, 1).Add(-time.Microsecond)
	if paid.Equal(sold) {
		return settledAt, settledAt, nil
	}
	return settledAt, paid, nil
}

// SettlementEntries books one Toss settlement row (see the package comment for the times):
//
//	settlement  Dr psp_payout_due (payout), Dr psp_fees (fee) / Cr psp_receivable (amount)
//	payout      Dr bank:operating / Cr psp_payout_due (payout)
//
// A row with negative amounts (a cancel's settlement) reverses each side; a zero fee or payout
// posts nothing on its account, and a zero payout leaves the payout entry empty. amount = fee +
// payout must hold and both dates must be valid.
func SettlementEntries(c Currency, s SettlementRecorded) (SettlementBooking, error) {
	if !s.Fee.Add(s.PayOutAmount).Equal(s.Amount) {
		return SettlementBooking{}, Errorf(ErrUnbalancedEntry, "settlement %s: amount %s ≠ fee %s + payout %s", s.TransactionKey, s.Amount, s.Fee, s.PayOutAmount)
	}
	settledAt, paidOutAt, err := SettlementDates(s.SoldDate, s.PaidOutDate)
	if err != nil {
		return SettlementBooking{}, fmt.Errorf("settlement %s: %w", s.TransactionKey, err)
	}
	b := SettlementBooking{
		Settlement: JournalEntry{Kind: EntrySettlement, Currency: c}, SettledAt: settledAt,
		Payout: JournalEntry{Kind: EntryPayout, Currency: c}, PaidOutAt: paidOutAt,
	}
	b.Settlement.debitSide(AccountPSPPayoutDue, s.PayOutAmount)
	b.Settlement.debitSide(AccountPSPFees, s.Fee)
	b.Settlement.debitSide(AccountPSPReceivable, s.Amount.Neg())
	b.Payout.debitSide(AccountBank, s.PayOutAmount)
	b.Payout.debitSide(AccountPSPPayoutDue, s.PayOutAmount.Neg())
	for _, e := range []JournalEntry{b.Settlement, b.Payout} {
		if len(e.Postings) == 0 {
			continue
		}
		if err := e.Balanced(); err != nil {
			return SettlementBooking{}, fmt.Errorf("settlement %s: %w", s.TransactionKey, err)
		}
	}
	return b, nil
}

// debitSide posts v on account as a debit when positive and as a credit when negative; zero
// posts nothing.
func (e *JournalEntry) debitSide(account string, v decimal.Decimal) {
	switch v.Sign() {
	case 1:
		e.Postings = append(e.Postings, Posting{Account: account, Debit: v, Credit: decimal.Zero})
	case -1:
		e.Postings = append(e.Postings, Posting{Account: account, Debit: decimal.Zero, Credit: v.Neg()})
	}
}
