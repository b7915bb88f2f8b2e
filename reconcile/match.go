package reconcile

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// The comparison itself: pure, on one order's records from both sides. The package doc states
// the rules; this file is their one implementation.

// window is what one run compares: the transactions dated in [start, end), the KST days from..to.
type window struct {
	start, end time.Time
	from, to   string
	today      string // the run's KST day, yyyy-MM-dd: payout dates up to it are past
	// settlementDays: a transaction's settlement row is expected within this many days.
	settlementDays int
}

func (w window) contains(t time.Time) bool { return !t.Before(w.start) && t.Before(w.end) }

// ourTx is a transaction the ledger holds: an approval or a cancel, at Toss's time.
type ourTx struct {
	approval   bool
	key        string // "" for an approval recorded without its transactionKey
	paymentKey domain.PaymentKey
	amount     decimal.Decimal
	at         time.Time
}

// ourOrder is one order as the ledger holds it. A nil *ourOrder is an order the merchant does
// not have.
type ourOrder struct {
	payment domain.Payment
	txs     []ourTx // in stream order
	settled map[string]domain.SettlementRecorded
	// foreign: the stream is another merchant's, treated as absent and never described.
	foreign bool
	broken  error // the stream failed verification
}

// fold turns a verified stream's events into the order as reconciliation sees it.
func fold(events []domain.Event) (*ourOrder, error) {
	if err := domain.CheckHistory(events); err != nil {
		return nil, err
	}
	p, err := domain.Rebuild(events)
	if err != nil {
		return nil, err
	}
	o := &ourOrder{payment: p, settled: map[string]domain.SettlementRecorded{}}
	for _, e := range events {
		switch e := e.(type) {
		case domain.PaymentApproved:
			o.txs = append(o.txs, ourTx{approval: true, key: e.LastTransactionKey, paymentKey: e.PaymentKey, amount: e.TotalAmount, at: pspTime(e.ApprovedAt, e.At)})
		case domain.PaymentApprovedAtPSP:
			o.txs = append(o.txs, ourTx{approval: true, key: e.LastTransactionKey, paymentKey: e.PaymentKey, amount: e.TotalAmount, at: pspTime(e.ApprovedAt, e.At)})
		case domain.PaymentCanceled:
			o.txs = append(o.txs, ourTx{key: e.TransactionKey, paymentKey: p.PaymentKey, amount: e.Amount, at: pspTime(e.CanceledAt, e.At)})
		case domain.PaymentCanceledAtPSP:
			o.txs = append(o.txs, ourTx{key: e.TransactionKey, paymentKey: p.PaymentKey, amount: e.Amount, at: pspTime(e.CanceledAt, e.At)})
		case domain.SettlementRecorded:
			o.settled[e.TransactionKey] = e
		}
	}
	return o, nil
}

// pspTime is Toss's time of a fact when the event carries it, else ours.
func pspTime(psp, ours time.Time) time.Time {
	if psp.IsZero() {
		return ours
	}
	return psp
}

// txKind is what a Toss transaction row stands for.
type txKind int

const (
	kindOther    txKind = iota // a status that moves no money (WAITING_FOR_DEPOSIT, ABORTED, …): not compared
	kindApproval               // DONE
	kindCancel                 // CANCELED, PARTIAL_CANCELED
	kindUnknown                // a status this ledger does not know: it may move money, so a person looks
)

func kindOf(t toss.Transaction) txKind {
	switch t.Status {
	case toss.StatusDone:
		return kindApproval
	case toss.StatusCanceled, toss.StatusPartialCanceled:
		return kindCancel
	case toss.StatusReady, toss.StatusInProgress, toss.StatusWaitingForDeposit, toss.StatusAborted, toss.StatusExpired:
		return kindOther
	}
	return kindUnknown
}

func (o ourTx) kind() txKind {
	if o.approval {
		return kindApproval
	}
	return kindCancel
}

// orderResult is one order's comparison.
type orderResult struct {
	matched int
	diffs   []Difference
}

func (r *orderResult) add(d Difference) { r.diffs = append(r.diffs, d) }

// matchOrder compares one order's records. txs are Toss's transactions of the order in the
// window, rows its settlement rows; rates the merchant's contract fee rates.
func matchOrder(w window, rates []domain.FeeRatePeriod, id domain.OrderID, our *ourOrder, txs []toss.Transaction, rows []toss.Settlement) orderResult {
	var r orderResult
	order := string(id)
	if our == nil || our.foreign {
		for _, t := range txs {
			if kindOf(t) == kindOther {
				continue
			}
			r.add(Difference{Category: MissingInternal, OrderID: order, PaymentKey: t.PaymentKey, TransactionKey: t.TransactionKey,
				Ours: "none: no payment of this merchant has this order", Toss: describeTx(t),
				Detail: "Toss lists a transaction of an order this merchant's ledger does not have; there is no stream to correct"})
		}
		return r
	}
	if our.broken != nil {
		r.add(Difference{Category: HistoryBroken, OrderID: order, PaymentKey: string(our.payment.PaymentKey),
			Ours: "history failed verification", Toss: fmt.Sprintf("%d transactions listed", len(txs)),
			Detail: "the order's stored history failed verification, so it was not compared: " + our.broken.Error()})
		return r
	}
	p := our.payment

	used := make([]bool, len(txs))
	byKey := make(map[string]int, len(txs))
	for i, t := range txs {
		if t.TransactionKey != "" && kindOf(t) != kindOther {
			byKey[t.TransactionKey] = i
		}
	}
	unused := func(k txKind, ok func(toss.Transaction) bool) int {
		for i, t := range txs {
			if !used[i] && kindOf(t) == k && ok(t) {
				return i
			}
		}
		return -1
	}

	approved := false
	for _, o := range our.txs {
		if o.approval {
			approved = true
		}
		i, byItsKey := -1, false
		if j, ok := byKey[o.key]; ok && o.key != "" && !used[j] {
			i, byItsKey = j, true
		}
		if i < 0 && o.approval {
			i = unused(kindApproval, func(t toss.Transaction) bool { return o.paymentKey == "" || t.PaymentKey == string(o.paymentKey) })
		}
		if i < 0 && !o.approval && o.key == "" {
			i = unused(kindCancel, func(t toss.Transaction) bool { return t.Amount.Abs().Equal(o.amount) })
		}
		if i < 0 {
			// Toss was asked for the window's transactions only: one of ours outside it is not
			// expected among them.
			if w.contains(o.at) {
				r.add(Difference{Category: MissingAtPSP, OrderID: order, PaymentKey: string(o.paymentKey), TransactionKey: o.key,
					Ours: describeOurs(o, p), Toss: "none",
					Detail: fmt.Sprintf("the ledger holds %s that Toss does not list", article(o))})
			}
			continue
		}
		used[i] = true
		t := txs[i]
		d := Difference{OrderID: order, PaymentKey: t.PaymentKey, TransactionKey: t.TransactionKey, Ours: describeOurs(o, p), Toss: describeTx(t)}
		switch {
		case kindOf(t) != o.kind():
			d.Category, d.Detail = StatusMismatch, fmt.Sprintf("the ledger holds %s where Toss lists a %s transaction", article(o), t.Status)
		case o.key != "" && !byItsKey:
			d.Category, d.Detail = StatusMismatch, fmt.Sprintf("the ledger recorded this transaction under transactionKey %s, Toss lists it under %s", o.key, t.TransactionKey)
		case o.paymentKey != "" && t.PaymentKey != string(o.paymentKey):
			d.Category, d.Detail = StatusMismatch, fmt.Sprintf("the ledger recorded paymentKey %s, Toss lists %s", o.paymentKey, t.PaymentKey)
		case !t.Amount.Abs().Equal(o.amount):
			d.Category, d.Detail = AmountMismatch, fmt.Sprintf("the ledger recorded %s, Toss lists %s", o.amount, t.Amount.Abs())
		default:
			r.matched++
			continue
		}
		r.add(d)
	}

	for i, t := range txs {
		if used[i] {
			continue
		}
		d := Difference{OrderID: order, PaymentKey: t.PaymentKey, TransactionKey: t.TransactionKey, Toss: describeTx(t),
			Ours: fmt.Sprintf("payment %s of %s", p.Status, p.TotalAmount)}
		switch kindOf(t) {
		case kindOther:
			continue
		case kindUnknown:
			d.Category = StatusMismatch
			d.Detail = fmt.Sprintf("Toss lists a transaction in status %q, which this ledger does not know; a person must decide what it moved", t.Status)
		case kindApproval:
			switch {
			case approved:
				d.Category, d.Detail = Duplicate, "Toss lists a second approval of this order"
			case !t.Amount.Equal(p.TotalAmount):
				d.Category, d.Detail = AmountMismatch, fmt.Sprintf("Toss approved %s for an order checked out here for %s", t.Amount, p.TotalAmount)
			default:
				d.Category, d.fix = MissingInternal, fixSync
				d.Detail = fmt.Sprintf("Toss approved this payment; the ledger has it %s", p.Status)
			}
			approved = true
		case kindCancel:
			d.Category, d.fix = StatusMismatch, fixSync
			d.Detail = "Toss lists a cancel the ledger does not have (made in Toss's console?)"
			if c := p.PendingCancel(); c != nil {
				d.Detail = fmt.Sprintf("Toss lists a cancel the ledger does not have; cancel %s of %s is pending here", c.ID, c.Amount)
			}
		}
		r.add(d)
	}

	r.diffs = append(r.diffs, matchSettlements(w, rates, order, our, txs, rows)...)
	return r
}

// matchSettlements compares the settlement rows of the order's transactions in scope: Toss's in
// the window and ours dated in it.
func matchSettlements(w window, rates []domain.FeeRatePeriod, order string, our *ourOrder, txs []toss.Transaction, rows []toss.Settlement) []Difference {
	var out []Difference
	scope := map[string]time.Time{}
	for _, t := range txs {
		if kindOf(t) != kindOther && t.TransactionKey != "" {
			scope[t.TransactionKey] = t.TransactionAt
		}
	}
	for _, o := range our.txs {
		if _, ok := scope[o.key]; !ok && o.key != "" && w.contains(o.at) {
			scope[o.key] = o.at
		}
	}
	contract := domain.Merchant{TossFeeRates: rates}
	listed := map[string]bool{}
	for i := range rows {
		row := rows[i]
		at, ok := scope[row.TransactionKey]
		if !ok {
			continue
		}
		listed[row.TransactionKey] = true
		rec, recorded := our.settled[row.TransactionKey]
		var problems []string
		if recorded {
			problems = append(problems, compareSettlement(rec, row)...)
		}
		if rate, ok := contract.TossFeeRateAt(at); ok {
			if p := feeProblem(row, rate); p != "" {
				problems = append(problems, p)
			}
		}
		ours := "not recorded"
		if recorded {
			ours = describeRecorded(rec)
		}
		if len(problems) > 0 {
			out = append(out, Difference{Category: SettlementMismatch, OrderID: order, PaymentKey: row.PaymentKey, TransactionKey: row.TransactionKey,
				Ours: ours, Toss: describeRow(row), Detail: strings.Join(problems, "; ")})
		}
		if !recorded && row.PaidOutDate != "" && row.PaidOutDate <= w.today {
			out = append(out, Difference{Category: SettlementMissing, OrderID: order, PaymentKey: row.PaymentKey, TransactionKey: row.TransactionKey,
				Ours: ours, Toss: describeRow(row), fix: fixSettlement, row: &row,
				Detail: fmt.Sprintf("Toss paid this row out on %s; the ledger has not recorded it", row.PaidOutDate)})
		}
	}
	keys := make([]string, 0, len(our.settled))
	for k := range our.settled {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rec := our.settled[k]
		if listed[k] || rec.SoldDate < w.from || rec.SoldDate > w.to {
			continue
		}
		out = append(out, Difference{Category: SettlementMismatch, OrderID: order, PaymentKey: string(rec.PaymentKey), TransactionKey: k,
			Ours: describeRecorded(rec), Toss: "none",
			Detail: fmt.Sprintf("the ledger recorded a settlement sold on %s that Toss does not list", rec.SoldDate)})
	}
	for _, t := range txs {
		if kindOf(t) == kindOther || listed[t.TransactionKey] {
			continue
		}
		if _, recorded := our.settled[t.TransactionKey]; recorded {
			continue
		}
		due := t.TransactionAt.In(domain.KST).AddDate(0, 0, w.settlementDays).Format(time.DateOnly)
		if due < w.today {
			out = append(out, Difference{Category: SettlementMissing, OrderID: order, PaymentKey: t.PaymentKey, TransactionKey: t.TransactionKey,
				Ours: "not recorded", Toss: "no settlement row",
				Detail: fmt.Sprintf("Toss lists no settlement row for this transaction %d days after it", w.settlementDays)})
		}
	}
	return out
}

// compareSettlement names what differs between a recorded settlement and Toss's row.
func compareSettlement(rec domain.SettlementRecorded, row toss.Settlement) []string {
	var out []string
	for _, f := range []struct {
		name      string
		ours, row decimal.Decimal
	}{
		{"amount", rec.Amount, row.Amount}, {"fee", rec.Fee, row.Fee}, {"VAT", rec.VAT, row.VAT}, {"payout", rec.PayOutAmount, row.PayOutAmount},
	} {
		if !f.ours.Equal(f.row) {
			out = append(out, fmt.Sprintf("recorded %s %s, Toss's row %s", f.name, f.ours, f.row))
		}
	}
	if rec.SoldDate != row.SoldDate || rec.PaidOutDate != row.PaidOutDate {
		out = append(out, fmt.Sprintf("recorded sold %s paid out %s, Toss's row sold %s paid out %s", rec.SoldDate, rec.PaidOutDate, row.SoldDate, row.PaidOutDate))
	}
	if rec.PaymentKey != "" && row.PaymentKey != "" && string(rec.PaymentKey) != row.PaymentKey {
		out = append(out, fmt.Sprintf("recorded paymentKey %s, Toss's row %s", rec.PaymentKey, row.PaymentKey))
	}
	return out
}

// feeTolerance is how far a row's fee may be from the contract's: Toss rounds each fee component
// (BASE, INSTALLMENT, …) to whole won on its own.
var feeTolerance = decimal.NewFromInt(1)

// feeProblem checks a row's fee, VAT excluded, against round(|amount| × rate) (half away from
// zero, as Toss and the simulator round). Toss gives the VAT-excluded fee as supplyAmount; a row
// without it is fee − VAT.
func feeProblem(row toss.Settlement, rate decimal.Decimal) string {
	supply := row.SupplyAmount.Abs()
	if supply.IsZero() {
		supply = row.Fee.Sub(row.VAT).Abs()
	}
	want := row.Amount.Abs().Mul(rate).Round(0)
	if supply.Sub(want).Abs().GreaterThan(feeTolerance) {
		return fmt.Sprintf("fee %s (VAT excluded) is not %s × the contract rate %s = %s (±%s won)", supply, row.Amount.Abs(), rate, want, feeTolerance)
	}
	return ""
}

func article(o ourTx) string {
	if o.approval {
		return "an approval"
	}
	return "a cancel"
}

func describeOurs(o ourTx, p domain.Payment) string {
	what := "cancel"
	if o.approval {
		what = "approval"
	}
	return fmt.Sprintf("%s %s at %s (payment %s)", what, o.amount, o.at.In(domain.KST).Format(time.RFC3339), p.Status)
}

func describeTx(t toss.Transaction) string {
	return fmt.Sprintf("%s %s at %s", t.Status, t.Amount.Abs(), t.TransactionAt.In(domain.KST).Format(time.RFC3339))
}

func describeRow(r toss.Settlement) string {
	return fmt.Sprintf("amount %s fee %s (VAT %s) payout %s, sold %s paid out %s", r.Amount, r.Fee, r.VAT, r.PayOutAmount, r.SoldDate, r.PaidOutDate)
}

func describeRecorded(s domain.SettlementRecorded) string {
	return fmt.Sprintf("amount %s fee %s (VAT %s) payout %s, sold %s paid out %s", s.Amount, s.Fee, s.VAT, s.PayOutAmount, s.SoldDate, s.PaidOutDate)
}
