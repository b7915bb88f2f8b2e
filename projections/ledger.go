package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// Ledger maintains the double-entry ledger (journal_entries, postings) and the seller wallets
// (wallet_movements) from PaymentApproved, PaymentCanceled and SettlementRecorded, with the
// posting rules of domain/ledger.go. It keeps what it needs in its own tables, so it never
// depends on another projection's progress: the checkout lines (ledger_orders,
// ledger_order_lines, filled on CheckoutCreated) and each merchant's commission rate
// (ledger_commission_rates, from CommissionRateChanged).
//
// Every row is kept under the merchant of its order: each merchant has its own books, and the
// same seller id under two merchants is two wallets.
//
// Idempotent per event: journal_entries is unique on (event_id, kind) and an event whose first
// entry exists is skipped whole (its second entry, line and wallet updates included, all
// written in the same transaction), so replays and two runners change nothing. The database
// re-checks at commit that every entry balances within one merchant and one moment (a deferred
// constraint trigger).
//
// One set of rules, two stores: applyLedger reads and writes through ledgerStore; Apply gives it
// the SQL store on the runner's transaction, a replay its in-memory store, whose rows it then
// bulk-loads (replay.go).
//
// Times: postings carry the time of the fact, never the time the projection ran: the PSP's
// approvedAt / canceledAt, and for a settlement row the end of its soldDate and the start of
// its paidOutDate in KST (domain.SettlementEntries). A row whose dates cannot be read stops the
// projection with an error rather than being booked at a guessed time.
//
// Commission: the log is read in order, so when a CheckoutCreated is applied
// ledger_commission_rates holds the rate its merchant had at that point of the log (0 without
// a CommissionRateChanged); the order keeps that rate. A rebuild from position 0 replays the
// rate changes in the same order and so books every order exactly as it was booked live.
type Ledger struct{}

var _ Projection = Ledger{}

// LedgerName is the ledger projection's checkpoint name.
const LedgerName = "ledger"

// Name implements Projection.
func (Ledger) Name() string { return LedgerName }

// Apply implements Projection.
func (Ledger) Apply(ctx context.Context, tx pgx.Tx, r eventstore.RecordedEvent) error {
	e, err := domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		return err
	}
	return applyLedger(ctx, sqlLedger{tx}, r, e)
}

// Rows of the ledger's tables; nullable columns are pointers. Surrogate ids (journal_entries.id
// and the postings and wallet movements that point at it) are the store's business: the SQL
// store takes them from the tables' sequences, a replay numbers its rows itself.

type ledgerOrderRow struct {
	OrderID        domain.OrderID
	MerchantID     domain.MerchantID
	Currency       domain.Currency
	TotalAmount    decimal.Decimal
	CommissionRate decimal.Decimal
}

const ledgerOrderColumns = `order_id, merchant_id, currency, total_amount, commission_rate`

func (o *ledgerOrderRow) values() []any {
	return []any{o.OrderID, o.MerchantID, o.Currency, o.TotalAmount, o.CommissionRate}
}

const ledgerOrderLineColumns = `order_id, seq, line_id, seller_id, amount, commission, canceled, commission_reversed`

func ledgerOrderLineValues(id domain.OrderID, seq int, l domain.LedgerLine) []any {
	return []any{id, seq, l.LineID, l.SellerID, l.Amount, l.Commission, l.Canceled, l.CommissionReversed}
}

type ledgerRateRow struct {
	MerchantID domain.MerchantID
	Rate       decimal.Decimal
	ChangedAt  time.Time
	EventID    uuid.UUID
}

const ledgerRateColumns = `merchant_id, rate, changed_at, event_id`

func (r *ledgerRateRow) values() []any { return []any{r.MerchantID, r.Rate, r.ChangedAt, r.EventID} }

type journalEntryRow struct {
	ID             int64 // set by the store
	EventID        uuid.UUID
	OrderID        domain.OrderID
	MerchantID     domain.MerchantID
	Kind           domain.EntryKind
	Currency       domain.Currency
	TransactionKey *string
	OccurredAt     time.Time
}

// journalEntryColumns leaves out id (the store's) and created_at (when the row was written: the
// column's default).
const journalEntryColumns = `event_id, order_id, merchant_id, kind, currency, transaction_key, occurred_at`

func (e *journalEntryRow) values() []any {
	return []any{e.EventID, e.OrderID, e.MerchantID, e.Kind, e.Currency, e.TransactionKey, e.OccurredAt}
}

type postingRow struct {
	MerchantID  domain.MerchantID
	Account     string
	AccountType domain.AccountType
	SellerID    *string
	LineID      *string
	Debit       decimal.Decimal
	Credit      decimal.Decimal
	Currency    domain.Currency
	OccurredAt  time.Time
}

// postingColumns leaves out id and entry_id (the store's).
const postingColumns = `merchant_id, account, account_type, seller_id, line_id, debit, credit, currency, occurred_at`

func (p *postingRow) values() []any {
	return []any{p.MerchantID, p.Account, p.AccountType, p.SellerID, p.LineID, p.Debit, p.Credit, p.Currency, p.OccurredAt}
}

// dailyTotalsRow is what one entry adds to its merchant's KST day in ledger_daily_totals, the
// daily report's rollup (queries.DailyReport): an approval entry one approval of its
// psp_receivable debit, a cancel entry one cancel of its psp_receivable credit, a settlement
// entry its psp_fees (debit − credit: a cancel's row gives its fee back). A payout entry adds
// nothing. The rollup is kept with the entries, in the same transaction, so the report reads a
// row per day instead of summing a month of postings.
type dailyTotalsRow struct {
	MerchantID     domain.MerchantID
	Currency       domain.Currency
	Day            string // the KST calendar day, 2026-11-01
	ApprovedCount  int
	ApprovedAmount decimal.Decimal
	CanceledCount  int
	CanceledAmount decimal.Decimal
	PSPFees        decimal.Decimal
}

const ledgerDailyColumns = `merchant_id, currency, day, approved_count, approved_amount, canceled_count, canceled_amount, psp_fees`

func (d *dailyTotalsRow) values() []any {
	return []any{d.MerchantID, d.Currency, d.Day, d.ApprovedCount, d.ApprovedAmount, d.CanceledCount, d.CanceledAmount, d.PSPFees}
}

// dailyDelta is what entry e with its postings adds to its day; ok is false when it adds nothing.
func dailyDelta(e journalEntryRow, postings []postingRow) (d dailyTotalsRow, ok bool) {
	k := e.OccurredAt.In(domain.KST)
	d = dailyTotalsRow{MerchantID: e.MerchantID, Currency: e.Currency, Day: k.Format(time.DateOnly),
		ApprovedAmount: decimal.Zero, CanceledAmount: decimal.Zero, PSPFees: decimal.Zero}
	for _, p := range postings {
		switch {
		case e.Kind == domain.EntryApproval && p.Account == domain.AccountPSPReceivable:
			d.ApprovedCount, d.ApprovedAmount, ok = d.ApprovedCount+1, d.ApprovedAmount.Add(p.Debit), true
		case e.Kind == domain.EntryCancel && p.Account == domain.AccountPSPReceivable:
			d.CanceledCount, d.CanceledAmount, ok = d.CanceledCount+1, d.CanceledAmount.Add(p.Credit), true
		case e.Kind == domain.EntrySettlement && p.Account == domain.AccountPSPFees:
			d.PSPFees, ok = d.PSPFees.Add(p.Debit).Sub(p.Credit), true
		}
	}
	return d, ok
}

// add adds o's figures to d's.
func (d *dailyTotalsRow) add(o dailyTotalsRow) {
	d.ApprovedCount += o.ApprovedCount
	d.ApprovedAmount = d.ApprovedAmount.Add(o.ApprovedAmount)
	d.CanceledCount += o.CanceledCount
	d.CanceledAmount = d.CanceledAmount.Add(o.CanceledAmount)
	d.PSPFees = d.PSPFees.Add(o.PSPFees)
}

// accountDayRow is what one entry adds to an account's KST day in ledger_account_days, the
// balances' rollup (queries.Ledger.balances): the sum of the entry's debits and of its credits
// on the account. Kept with the entries, in the same transaction, so a balance as of a moment
// reads a row per account and day before that moment's day, and that day's postings alone.
type accountDayRow struct {
	MerchantID  domain.MerchantID
	Account     string
	AccountType domain.AccountType
	Currency    domain.Currency
	Day         time.Time // the KST calendar day, at midnight UTC (a date column)
	Debit       decimal.Decimal
	Credit      decimal.Decimal
}

const ledgerAccountDayColumns = `merchant_id, account, account_type, currency, day, debit, credit`

func (d *accountDayRow) values() []any {
	return []any{d.MerchantID, d.Account, d.AccountType, d.Currency, d.Day, d.Debit, d.Credit}
}

// accountDayKey is ledger_account_days' primary key.
type accountDayKey struct {
	merchant domain.MerchantID
	currency domain.Currency
	account  string
	day      time.Time
}

func (d *accountDayRow) key() accountDayKey {
	return accountDayKey{d.MerchantID, d.Currency, d.Account, d.Day}
}

// kstDay is the KST calendar day of t, as a date column holds it.
func kstDay(t time.Time) time.Time {
	y, m, d := t.In(domain.KST).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// accountDayDeltas is what postings (one entry's) add to their accounts' days, one row per
// account, sorted by key: the SQL store upserts them in that order, so two transactions lock
// shared rows in the same order.
func accountDayDeltas(postings []postingRow) []accountDayRow {
	var out []accountDayRow
	for _, p := range postings {
		d := accountDayRow{MerchantID: p.MerchantID, Account: p.Account, AccountType: p.AccountType, Currency: p.Currency,
			Day: kstDay(p.OccurredAt), Debit: p.Debit, Credit: p.Credit}
		if i := slices.IndexFunc(out, func(o accountDayRow) bool { return o.key() == d.key() }); i >= 0 {
			out[i].add(d)
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b accountDayRow) int {
		return cmp.Or(cmp.Compare(a.MerchantID, b.MerchantID), cmp.Compare(a.Currency, b.Currency),
			cmp.Compare(a.Account, b.Account), a.Day.Compare(b.Day))
	})
	return out
}

// add adds o's debits and credits to d's.
func (d *accountDayRow) add(o accountDayRow) {
	d.Debit = d.Debit.Add(o.Debit)
	d.Credit = d.Credit.Add(o.Credit)
}

type walletMovementRow struct {
	EntryID        int64
	MerchantID     domain.MerchantID
	SellerID       domain.SellerID
	OrderID        domain.OrderID
	LineID         domain.LineID
	TransactionKey *string
	Kind           domain.EntryKind
	Bucket         string
	Amount         decimal.Decimal
	Currency       domain.Currency
	OccurredAt     time.Time
}

// walletMovementColumns leaves out id (the store's).
const walletMovementColumns = `entry_id, merchant_id, seller_id, order_id, line_id, transaction_key, kind, bucket, amount, currency, occurred_at`

func (w *walletMovementRow) values() []any {
	return []any{w.EntryID, w.MerchantID, w.SellerID, w.OrderID, w.LineID, w.TransactionKey, w.Kind, w.Bucket, w.Amount, w.Currency, w.OccurredAt}
}

// ledgerOrder is what the rules read of an order: its merchant, currency and lines (in
// checkout order).
type ledgerOrder struct {
	id       domain.OrderID
	merchant domain.MerchantID
	currency domain.Currency
	lines    []domain.LedgerLine
}

// ledgerStore is where the ledger's rules read and write. Every method is a plain read or
// write by key; the rules decide everything else.
//
//   - rate is the merchant's commission rate last set (0 when none), setRate sets it;
//   - order returns nil when the order has no checkout in the ledger; insertOrder writes an
//     order and its lines unless the order is there already (then it reports false);
//   - updateLines stores the lines' canceled and commission-reversed amounts;
//   - insertEntry writes an entry and its postings unless an entry of the same event and kind
//     exists (then it reports false), and returns the entry's id;
//   - movements returns the wallet movements of an order's transaction (any kind), in the
//     order they were written; insertMovements appends movements.
type ledgerStore interface {
	rate(ctx context.Context, merchant domain.MerchantID) (decimal.Decimal, error)
	setRate(ctx context.Context, r ledgerRateRow) error
	order(ctx context.Context, id domain.OrderID) (*ledgerOrder, error)
	insertOrder(ctx context.Context, o ledgerOrderRow, lines []domain.LedgerLine) (bool, error)
	updateLines(ctx context.Context, id domain.OrderID, lines []domain.LedgerLine) error
	insertEntry(ctx context.Context, e journalEntryRow, postings []postingRow) (int64, bool, error)
	movements(ctx context.Context, id domain.OrderID, txKey string) ([]walletMovementRow, error)
	insertMovements(ctx context.Context, ms []walletMovementRow) error
}

// applyLedger is the ledger's rules around the posting rules of domain/ledger.go. An approval
// or cancel found at Toss is booked as the one we made (domain.Booked).
func applyLedger(ctx context.Context, st ledgerStore, r eventstore.RecordedEvent, e domain.Event) error {
	switch e := domain.Booked(e).(type) {
	case domain.CommissionRateChanged:
		if e.MerchantID == "" {
			return fmt.Errorf("ledger: commission rate change %s without a merchant", r.ID)
		}
		if err := domain.CheckCommissionRate(e.Rate); err != nil {
			return fmt.Errorf("ledger: commission rate of %s: %w", e.MerchantID, err)
		}
		return st.setRate(ctx, ledgerRateRow{MerchantID: e.MerchantID, Rate: e.Rate, ChangedAt: e.At, EventID: r.ID})
	case domain.CheckoutCreated:
		return ledgerCheckout(ctx, st, e)
	case domain.PaymentApproved:
		o, err := loadLedgerOrder(ctx, st, e.OrderID)
		if err != nil {
			return err
		}
		entry, err := domain.ApprovalEntry(o.currency, o.lines, e.TotalAmount)
		if err != nil {
			return fmt.Errorf("ledger: approval of %s: %w", e.OrderID, err)
		}
		at := eventTime(e.ApprovedAt, e.At)
		id, ok, err := writeEntry(ctx, st, r, o, entry, e.LastTransactionKey, at)
		if err != nil || !ok {
			return err
		}
		return st.insertMovements(ctx, sellerMovements(id, o, entry, e.LastTransactionKey, at))
	case domain.PaymentCanceled:
		o, err := loadLedgerOrder(ctx, st, e.OrderID)
		if err != nil {
			return err
		}
		entry, after, err := domain.CancelEntry(o.currency, o.lines, e.Amount)
		if err != nil {
			return fmt.Errorf("ledger: cancel %s of %s: %w", e.CancelID, e.OrderID, err)
		}
		at := eventTime(e.CanceledAt, e.At)
		id, ok, err := writeEntry(ctx, st, r, o, entry, e.TransactionKey, at)
		if err != nil || !ok {
			return err
		}
		if err := st.updateLines(ctx, e.OrderID, after); err != nil {
			return err
		}
		return st.insertMovements(ctx, sellerMovements(id, o, entry, e.TransactionKey, at))
	case domain.SettlementRecorded:
		return ledgerSettlement(ctx, st, r, e)
	}
	return nil
}

// ledgerCheckout keeps the order's lines with their commission at the merchant's rate now.
func ledgerCheckout(ctx context.Context, st ledgerStore, e domain.CheckoutCreated) error {
	rate, err := st.rate(ctx, e.MerchantID)
	if err != nil {
		return err
	}
	lines, err := domain.NewLedgerLines(e.Lines, rate, e.Currency)
	if err != nil {
		return fmt.Errorf("ledger: checkout %s: %w", e.OrderID, err)
	}
	_, err = st.insertOrder(ctx, ledgerOrderRow{OrderID: e.OrderID, MerchantID: e.MerchantID, Currency: e.Currency,
		TotalAmount: e.TotalAmount, CommissionRate: rate}, lines)
	return err
}

// ledgerSettlement books a settlement row: the settlement entry, the payout entry when the
// payout is not zero, and the sellers' nets from pending to available at the payout.
func ledgerSettlement(ctx context.Context, st ledgerStore, r eventstore.RecordedEvent, e domain.SettlementRecorded) error {
	o, err := loadLedgerOrder(ctx, st, e.OrderID)
	if err != nil {
		return err
	}
	b, err := domain.SettlementEntries(o.currency, e)
	if err != nil {
		return fmt.Errorf("ledger: settlement %s of %s: %w", e.TransactionKey, e.OrderID, err)
	}
	if len(b.Settlement.Postings) == 0 {
		return nil // an all-zero row moves no money
	}
	id, ok, err := writeEntry(ctx, st, r, o, b.Settlement, e.TransactionKey, b.SettledAt)
	if err != nil || !ok {
		return err
	}
	// The wallet movements hang on the entry that moves the money into the bank; a zero payout
	// has none, so they hang on the settlement entry, still at the payout's time.
	walletEntry := id
	if len(b.Payout.Postings) > 0 {
		payoutID, ok, err := writeEntry(ctx, st, r, o, b.Payout, e.TransactionKey, b.PaidOutAt)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("ledger: settlement %s of %s: a payout entry exists without its settlement entry", e.TransactionKey, e.OrderID)
		}
		walletEntry = payoutID
	}
	moved, err := st.movements(ctx, o.id, e.TransactionKey)
	if err != nil {
		return err
	}
	return st.insertMovements(ctx, payoutMovements(moved, walletEntry, o, e.TransactionKey, b.PaidOutAt))
}

// eventTime is the PSP's time of the fact when known, else our clock's.
func eventTime(psp, ours time.Time) time.Time {
	if psp.IsZero() {
		return ours
	}
	return psp
}

func loadLedgerOrder(ctx context.Context, st ledgerStore, id domain.OrderID) (*ledgerOrder, error) {
	o, err := st.order(ctx, id)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("ledger: order %s has no checkout in the ledger", id)
	}
	return o, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeEntry checks the entry and writes it with its postings; ok is false when the event was
// already applied.
func writeEntry(ctx context.Context, st ledgerStore, r eventstore.RecordedEvent, o *ledgerOrder, entry domain.JournalEntry, txKey string, at time.Time) (id int64, ok bool, err error) {
	if err := entry.Balanced(); err != nil {
		return 0, false, err
	}
	postings := make([]postingRow, len(entry.Postings))
	for i, p := range entry.Postings {
		typ, err := domain.AccountTypeOf(p.Account)
		if err != nil {
			return 0, false, err
		}
		postings[i] = postingRow{MerchantID: o.merchant, Account: p.Account, AccountType: typ, SellerID: nullIfEmpty(string(p.SellerID)),
			LineID: nullIfEmpty(string(p.LineID)), Debit: p.Debit, Credit: p.Credit, Currency: entry.Currency, OccurredAt: at}
	}
	return st.insertEntry(ctx, journalEntryRow{EventID: r.ID, OrderID: o.id, MerchantID: o.merchant, Kind: entry.Kind,
		Currency: entry.Currency, TransactionKey: nullIfEmpty(txKey), OccurredAt: at}, postings)
}

// sellerMovements are the pending-bucket movements of every seller payable posting of an entry:
// an approval credits pending, a cancel debits it.
func sellerMovements(entryID int64, o *ledgerOrder, entry domain.JournalEntry, txKey string, at time.Time) []walletMovementRow {
	var out []walletMovementRow
	for _, p := range entry.Postings {
		if p.SellerID == "" {
			continue
		}
		out = append(out, walletMovementRow{EntryID: entryID, MerchantID: o.merchant, SellerID: p.SellerID, OrderID: o.id,
			LineID: p.LineID, TransactionKey: nullIfEmpty(txKey), Kind: entry.Kind, Bucket: "pending",
			Amount: p.Credit.Sub(p.Debit), Currency: entry.Currency, OccurredAt: at})
	}
	return out
}

// payoutMovements moves, for the paid-out transaction, each line's approval and cancel
// movements (moved: the transaction's movements so far) from pending to available at the
// payout: a cancel's negative movement moves money back. A transaction already paid out, or
// one the ledger has no movement for, moves nothing.
func payoutMovements(moved []walletMovementRow, entryID int64, o *ledgerOrder, txKey string, at time.Time) []walletMovementRow {
	type lineKey struct {
		seller   domain.SellerID
		line     domain.LineID
		currency domain.Currency
	}
	sums := map[lineKey]decimal.Decimal{}
	var keys []lineKey
	for _, m := range moved {
		switch m.Kind {
		case domain.EntryPayout:
			return nil
		case domain.EntryApproval, domain.EntryCancel:
			k := lineKey{m.SellerID, m.LineID, m.Currency}
			sum, seen := sums[k]
			if !seen {
				keys = append(keys, k)
				sum = decimal.Zero
			}
			sums[k] = sum.Add(m.Amount)
		}
	}
	slices.SortFunc(keys, func(a, b lineKey) int {
		return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.seller, b.seller), cmp.Compare(a.currency, b.currency))
	})
	var out []walletMovementRow
	for _, k := range keys {
		sum := sums[k]
		if sum.IsZero() {
			continue
		}
		row := walletMovementRow{EntryID: entryID, MerchantID: o.merchant, SellerID: k.seller, OrderID: o.id, LineID: k.line,
			TransactionKey: &txKey, Kind: domain.EntryPayout, Currency: k.currency, OccurredAt: at}
		pending, available := row, row
		pending.Bucket, pending.Amount = "pending", sum.Neg()
		available.Bucket, available.Amount = "available", sum
		out = append(out, pending, available)
	}
	return out
}

// sqlLedger is the store on the ledger's tables, inside the caller's transaction. Table names
// are unqualified: the transaction's search_path chooses the live tables or a replay's shadow
// copies (replay.go).
type sqlLedger struct{ tx pgx.Tx }

func (s sqlLedger) rate(ctx context.Context, merchant domain.MerchantID) (decimal.Decimal, error) {
	rate := decimal.Zero
	err := s.tx.QueryRow(ctx, `SELECT rate FROM ledger_commission_rates WHERE merchant_id = $1`, merchant).Scan(&rate)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return rate, fmt.Errorf("ledger: commission rate of %s: %w", merchant, err)
	}
	return rate, nil
}

func (s sqlLedger) setRate(ctx context.Context, r ledgerRateRow) error {
	_, err := s.tx.Exec(ctx, `
		INSERT INTO ledger_commission_rates (`+ledgerRateColumns+`) VALUES ($1, $2, $3, $4)
		ON CONFLICT (merchant_id) DO UPDATE SET rate = EXCLUDED.rate, changed_at = EXCLUDED.changed_at, event_id = EXCLUDED.event_id`,
		r.values()...)
	if err != nil {
		return fmt.Errorf("ledger: commission rate of %s: %w", r.MerchantID, err)
	}
	return nil
}

func (s sqlLedger) order(ctx context.Context, id domain.OrderID) (*ledgerOrder, error) {
	o := &ledgerOrder{id: id}
	err := s.tx.QueryRow(ctx, `SELECT merchant_id, currency FROM ledger_orders WHERE order_id = $1`, id).Scan(&o.merchant, &o.currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: load order %s: %w", id, err)
	}
	rows, err := s.tx.Query(ctx, `
		SELECT line_id, seller_id, amount, commission, canceled, commission_reversed
		FROM ledger_order_lines WHERE order_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("ledger: load lines of %s: %w", id, err)
	}
	o.lines, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.LedgerLine, error) {
		var l domain.LedgerLine
		return l, r.Scan(&l.LineID, &l.SellerID, &l.Amount, &l.Commission, &l.Canceled, &l.CommissionReversed)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: load lines of %s: %w", id, err)
	}
	return o, nil
}

func (s sqlLedger) insertOrder(ctx context.Context, o ledgerOrderRow, lines []domain.LedgerLine) (bool, error) {
	tag, err := s.tx.Exec(ctx, `INSERT INTO ledger_orders (`+ledgerOrderColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (order_id) DO NOTHING`, o.values()...)
	if err != nil {
		return false, fmt.Errorf("ledger: insert ledger_orders %s: %w", o.OrderID, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	batch := &pgx.Batch{}
	for i, l := range lines {
		batch.Queue(`INSERT INTO ledger_order_lines (`+ledgerOrderLineColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			ledgerOrderLineValues(o.OrderID, i, l)...)
	}
	if err := s.tx.SendBatch(ctx, batch).Close(); err != nil {
		return false, fmt.Errorf("ledger: insert lines of %s: %w", o.OrderID, err)
	}
	return true, nil
}

func (s sqlLedger) updateLines(ctx context.Context, id domain.OrderID, lines []domain.LedgerLine) error {
	batch := &pgx.Batch{}
	for _, l := range lines {
		batch.Queue(`UPDATE ledger_order_lines SET canceled = $3, commission_reversed = $4 WHERE order_id = $1 AND line_id = $2`,
			id, l.LineID, l.Canceled, l.CommissionReversed)
	}
	if err := s.tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("ledger: update lines of %s: %w", id, err)
	}
	return nil
}

func (s sqlLedger) insertEntry(ctx context.Context, e journalEntryRow, postings []postingRow) (int64, bool, error) {
	var id int64
	err := s.tx.QueryRow(ctx, `INSERT INTO journal_entries (`+journalEntryColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (event_id, kind) DO NOTHING RETURNING id`, e.values()...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("ledger: insert entry for %s: %w", e.OrderID, err)
	}
	batch := &pgx.Batch{}
	for _, p := range postings {
		batch.Queue(`INSERT INTO postings (entry_id, `+postingColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			append([]any{id}, p.values()...)...)
	}
	if d, ok := dailyDelta(e, postings); ok {
		batch.Queue(`INSERT INTO ledger_daily_totals AS t (`+ledgerDailyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (merchant_id, currency, day) DO UPDATE SET
				approved_count = t.approved_count + EXCLUDED.approved_count, approved_amount = t.approved_amount + EXCLUDED.approved_amount,
				canceled_count = t.canceled_count + EXCLUDED.canceled_count, canceled_amount = t.canceled_amount + EXCLUDED.canceled_amount,
				psp_fees = t.psp_fees + EXCLUDED.psp_fees`, d.values()...)
	}
	for _, d := range accountDayDeltas(postings) {
		batch.Queue(`INSERT INTO ledger_account_days AS t (`+ledgerAccountDayColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (merchant_id, currency, account, day) DO UPDATE SET
				debit = t.debit + EXCLUDED.debit, credit = t.credit + EXCLUDED.credit`, d.values()...)
	}
	if err := s.tx.SendBatch(ctx, batch).Close(); err != nil {
		return 0, false, fmt.Errorf("ledger: insert postings for %s: %w", e.OrderID, err)
	}
	return id, true, nil
}

func (s sqlLedger) movements(ctx context.Context, id domain.OrderID, txKey string) ([]walletMovementRow, error) {
	rows, err := s.tx.Query(ctx, `SELECT `+walletMovementColumns+` FROM wallet_movements
		WHERE order_id = $1 AND transaction_key = $2 ORDER BY id`, id, txKey)
	if err != nil {
		return nil, fmt.Errorf("ledger: wallet movements of %s %s: %w", id, txKey, err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (walletMovementRow, error) {
		var m walletMovementRow
		return m, r.Scan(&m.EntryID, &m.MerchantID, &m.SellerID, &m.OrderID, &m.LineID, &m.TransactionKey, &m.Kind, &m.Bucket,
			&m.Amount, &m.Currency, &m.OccurredAt)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: wallet movements of %s %s: %w", id, txKey, err)
	}
	return ms, nil
}

func (s sqlLedger) insertMovements(ctx context.Context, ms []walletMovementRow) error {
	if len(ms) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, m := range ms {
		batch.Queue(`INSERT INTO wallet_movements (`+walletMovementColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			m.values()...)
	}
	if err := s.tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("ledger: wallet movements of %s: %w", ms[0].OrderID, err)
	}
	return nil
}

// ResetLedger deletes the ledger read model (the commission rates it applied included) and its
// checkpoint inside tx, so that the next runner rebuilds it from position 0.
func ResetLedger(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
		DELETE FROM wallet_movements;
		DELETE FROM ledger_daily_totals;
		DELETE FROM ledger_account_days;
		DELETE FROM postings;
		DELETE FROM journal_entries;
		DELETE FROM ledger_order_lines;
		DELETE FROM ledger_orders;
		DELETE FROM ledger_commission_rates;
		DELETE FROM projection_checkpoints WHERE name = 'ledger'`)
	if err != nil {
		return fmt.Errorf("ledger: reset: %w", err)
	}
	return nil
}
