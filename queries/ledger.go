package queries

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
)

// Ledger answers ledger and wallet queries from the ledger projection's tables. Every method
// takes the merchant first and reads only that merchant's books: its postings, its trial
// balance, its sellers' wallets (a seller id is a seller of that merchant). An empty merchant is
// a programming error and fails; no method ever answers with several merchants' books.
//
// Times in answers (asOf, occurredAt) are in KST (domain.KST), so they encode as RFC 3339 with
// +09:00 like every other time the API returns. The methods are safe for concurrent use.
type Ledger struct {
	pool *pgxpool.Pool
}

// NewLedger returns a Ledger over pool.
func NewLedger(pool *pgxpool.Pool) *Ledger { return &Ledger{pool: pool} }

// AccountBalance is one account's totals up to a moment. Balance is debits − credits (so
// liabilities and revenue are negative when they hold money).
type AccountBalance struct {
	Account  string          `json:"account"`
	Type     string          `json:"type"`
	Currency string          `json:"currency,omitempty"`
	Debits   decimal.Decimal `json:"debits"`
	Credits  decimal.Decimal `json:"credits"`
	Balance  decimal.Decimal `json:"balance"`
}

// AccountBalances is the answer of GET /api/v1/ledger/accounts.
type AccountBalances struct {
	AsOf     time.Time        `json:"asOf"`
	Accounts []AccountBalance `json:"accounts"`
}

// TrialBalance is the answer of GET /api/v1/ledger/trial-balance: totalDebits equals
// totalCredits whenever the ledger is sound.
type TrialBalance struct {
	AsOf         time.Time        `json:"asOf"`
	Currency     string           `json:"currency"`
	Accounts     []AccountBalance `json:"accounts"`
	TotalDebits  decimal.Decimal  `json:"totalDebits"`
	TotalCredits decimal.Decimal  `json:"totalCredits"`
}

// Wallet is a seller's money as of a moment: pending (approved, Toss has not paid it out yet)
// and available (Toss has paid it out into the bank: from the start of the settlement row's
// paidOutDate in KST).
type Wallet struct {
	SellerID  string          `json:"sellerId"`
	Currency  string          `json:"currency"`
	Pending   decimal.Decimal `json:"pending"`
	Available decimal.Decimal `json:"available"`
	AsOf      time.Time       `json:"asOf"`
}

// WalletMovement is one change of one bucket of a wallet: the history that explains it. Kind
// is approval (pending +net), cancel (pending −net) or payout (the transaction's net from
// pending to available, one movement per bucket, at the start of the paidOutDate in KST).
type WalletMovement struct {
	OrderID        string          `json:"orderId"`
	LineID         string          `json:"lineId"`
	TransactionKey string          `json:"transactionKey,omitempty"`
	Kind           string          `json:"kind"`
	Bucket         string          `json:"bucket"`
	Amount         decimal.Decimal `json:"amount"`
	OccurredAt     time.Time       `json:"occurredAt"`
}

// PostingRow is one posting of an account.
type PostingRow struct {
	ID         int64           `json:"id"`
	EntryID    int64           `json:"entryId"`
	EventID    string          `json:"eventId"`
	OrderID    string          `json:"orderId"`
	Kind       string          `json:"kind"`
	SellerID   string          `json:"sellerId,omitempty"`
	LineID     string          `json:"lineId,omitempty"`
	Debit      decimal.Decimal `json:"debit"`
	Credit     decimal.Decimal `json:"credit"`
	Currency   string          `json:"currency"`
	OccurredAt time.Time       `json:"occurredAt"`
}

// PostingsPage is a page of an account's postings, oldest first. NextCursor is empty on the
// last page.
type PostingsPage struct {
	Account    string       `json:"account"`
	Postings   []PostingRow `json:"postings"`
	NextCursor string       `json:"nextCursor,omitempty"`
}

// PostingsQuery selects a page of postings.
type PostingsQuery struct {
	Limit  int    // 1–100, default 20
	Cursor string // the previous page's NextCursor; empty for the first page
}

// errNoMerchant is a query without a merchant: a bug in the caller, never a request to read
// every merchant's books.
func errNoMerchant(op string) error {
	return fmt.Errorf("queries: %s without a merchant: ledger queries read one merchant's books", op)
}

// postingsCursor is the keyset of the last posting of a page: its account (a cursor resumes
// only the listing it came from), time and id.
func postingsCursor(account string, p PostingRow) string {
	return encodeCursorFields(account, strconv.FormatInt(p.OccurredAt.UnixMicro(), 10), strconv.FormatInt(p.ID, 10))
}

func decodePostingsCursor(account, c string) (time.Time, int64, error) {
	f, err := decodeCursorFields(c, 3)
	if err != nil {
		return time.Time{}, 0, err
	}
	t, timeOK := cursorTime(f[1])
	id, err := strconv.ParseInt(f[2], 10, 64)
	if !timeOK || err != nil || id < 1 {
		return time.Time{}, 0, domain.Errorf(domain.ErrInvalidInput, "cursor %q is not one this API returned", clip(c, 40))
	}
	if f[0] != account {
		return time.Time{}, 0, domain.Errorf(domain.ErrInvalidInput, "cursor %q is not one this API returned for account %s", clip(c, 40), account)
	}
	return t, id, nil
}

// balancesSQL sums the merchant's postings up to $2 per account: the days before $2's KST day
// ($4) from the projection's rollup ledger_account_days (see projections.accountDayDeltas), and
// the postings of that day ($5, its start, to $2) from postings_merchant_time, so the work is a
// row per account and day plus one day's postings, whatever the volume.
const balancesSQL = `
	SELECT account, account_type, currency, sum(debit), sum(credit), sum(debit) - sum(credit)
	FROM (
		SELECT account, account_type, currency, debit, credit
		FROM ledger_account_days
		WHERE merchant_id = $1 AND day < $4::date AND ($3::text = '' OR currency = $3)
		UNION ALL
		SELECT account, account_type, currency, debit, credit
		FROM postings
		WHERE merchant_id = $1 AND occurred_at >= $5 AND occurred_at <= $2 AND ($3::text = '' OR currency = $3)
	) b
	GROUP BY account, account_type, currency
	ORDER BY account, currency`

func (l *Ledger) balances(ctx context.Context, merchant domain.MerchantID, asOf time.Time, currency string) ([]AccountBalance, error) {
	y, m, d := asOf.In(domain.KST).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)        // the rollup's date
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, domain.KST) // where that day's postings start
	rows, err := l.pool.Query(ctx, balancesSQL, merchant, asOf, currency, day, dayStart)
	if err != nil {
		return nil, fmt.Errorf("ledger balances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AccountBalance, error) {
		var b AccountBalance
		return b, r.Scan(&b.Account, &b.Type, &b.Currency, &b.Debits, &b.Credits, &b.Balance)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger balances: %w", err)
	}
	if out == nil {
		out = []AccountBalance{}
	}
	return out, nil
}

// AccountBalances returns every account of the merchant with its debits, credits and balance
// from postings that occurred at or before asOf, per currency.
func (l *Ledger) AccountBalances(ctx context.Context, merchant domain.MerchantID, asOf time.Time) (AccountBalances, error) {
	if merchant == "" {
		return AccountBalances{}, errNoMerchant("account balances")
	}
	b, err := l.balances(ctx, merchant, asOf, "")
	if err != nil {
		return AccountBalances{}, err
	}
	return AccountBalances{AsOf: asOf.In(domain.KST), Accounts: b}, nil
}

// TrialBalance lists every account of the merchant in currency (KRW when empty) as of asOf
// with the totals. Each merchant's books balance on their own: every entry is one merchant's.
func (l *Ledger) TrialBalance(ctx context.Context, merchant domain.MerchantID, asOf time.Time, currency string) (TrialBalance, error) {
	if merchant == "" {
		return TrialBalance{}, errNoMerchant("trial balance")
	}
	if currency == "" {
		currency = string(domain.KRW)
	}
	b, err := l.balances(ctx, merchant, asOf, currency)
	if err != nil {
		return TrialBalance{}, err
	}
	tb := TrialBalance{AsOf: asOf.In(domain.KST), Currency: currency, Accounts: b, TotalDebits: decimal.Zero, TotalCredits: decimal.Zero}
	for i := range tb.Accounts {
		tb.TotalDebits = tb.TotalDebits.Add(tb.Accounts[i].Debits)
		tb.TotalCredits = tb.TotalCredits.Add(tb.Accounts[i].Credits)
		tb.Accounts[i].Currency = "" // one currency per trial balance: said once at the top
	}
	return tb, nil
}

// Postings returns a page of the merchant's postings on account, oldest first (by the time
// the posting occurred, then by id). An account without postings (unknown or not yet used)
// gives an empty page, not an error; a name that is not a ledger account, or a cursor this
// method did not return for this account, is invalid. Pages are keyset pages: a posting
// stored later with a time before the cursor (a late import) shows on a new listing, not on
// the pages after the cursor.
func (l *Ledger) Postings(ctx context.Context, merchant domain.MerchantID, account string, q PostingsQuery) (PostingsPage, error) {
	if merchant == "" {
		return PostingsPage{}, errNoMerchant("postings")
	}
	if _, err := domain.AccountTypeOf(account); err != nil {
		return PostingsPage{}, err
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return PostingsPage{}, domain.Errorf(domain.ErrInvalidInput, "limit must be between 1 and %d", MaxPageSize)
	}
	var after *time.Time
	var afterID int64
	if q.Cursor != "" {
		at, id, err := decodePostingsCursor(account, q.Cursor)
		if err != nil {
			return PostingsPage{}, err
		}
		after, afterID = &at, id
	}
	rows, err := l.pool.Query(ctx, `
		SELECT p.id, p.entry_id, e.event_id::text, e.order_id, e.kind, COALESCE(p.seller_id, ''), COALESCE(p.line_id, ''),
		       p.debit, p.credit, p.currency, p.occurred_at
		FROM postings p JOIN journal_entries e ON e.id = p.entry_id
		WHERE p.merchant_id = $1 AND p.account = $2
		  AND ($3::timestamptz IS NULL OR (p.occurred_at, p.id) > ($3, $4))
		ORDER BY p.occurred_at, p.id
		LIMIT $5`, merchant, account, after, afterID, q.Limit+1)
	if err != nil {
		return PostingsPage{}, fmt.Errorf("postings of %s: %w", account, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PostingRow, error) {
		var p PostingRow
		err := r.Scan(&p.ID, &p.EntryID, &p.EventID, &p.OrderID, &p.Kind, &p.SellerID, &p.LineID, &p.Debit, &p.Credit, &p.Currency, &p.OccurredAt)
		p.OccurredAt = p.OccurredAt.In(domain.KST)
		return p, err
	})
	if err != nil {
		return PostingsPage{}, fmt.Errorf("postings of %s: %w", account, err)
	}
	page := PostingsPage{Account: account, Postings: ps}
	if len(ps) > q.Limit {
		page.Postings = ps[:q.Limit]
		page.NextCursor = postingsCursor(account, page.Postings[q.Limit-1])
	}
	if page.Postings == nil {
		page.Postings = []PostingRow{}
	}
	return page, nil
}

// Wallet returns the pending and available money of the merchant's seller in currency (KRW
// when empty) as of asOf: the sums of the seller's wallet movements at or before asOf. pending +
// available always equals the balance of the merchant's seller_payable:<sellerId> at that
// moment. A seller without movements has a zero wallet.
func (l *Ledger) Wallet(ctx context.Context, merchant domain.MerchantID, seller domain.SellerID, asOf time.Time, currency string) (Wallet, error) {
	if merchant == "" {
		return Wallet{}, errNoMerchant("wallet")
	}
	if err := checkSeller(seller); err != nil {
		return Wallet{}, err
	}
	if currency == "" {
		currency = string(domain.KRW)
	}
	w := Wallet{SellerID: string(seller), Currency: currency, AsOf: asOf.In(domain.KST)}
	err := l.pool.QueryRow(ctx, `
		SELECT COALESCE(sum(amount) FILTER (WHERE bucket = 'pending'), 0),
		       COALESCE(sum(amount) FILTER (WHERE bucket = 'available'), 0)
		FROM wallet_movements WHERE merchant_id = $1 AND seller_id = $2 AND currency = $3 AND occurred_at <= $4`,
		merchant, seller, currency, asOf).Scan(&w.Pending, &w.Available)
	if err != nil {
		return Wallet{}, fmt.Errorf("wallet of %s: %w", seller, err)
	}
	return w, nil
}

// MovementsQuery selects a page of a wallet's movements.
type MovementsQuery struct {
	Limit  int    // 1–MaxMovementsPageSize, default DefaultMovementsPageSize
	Cursor string // the previous page's NextCursor; empty for the first page
}

// A seller's movements are many (hundreds of thousands for a big seller), each row small: pages
// are larger than the payments list's, and bounded all the same.
const (
	DefaultMovementsPageSize = 50
	MaxMovementsPageSize     = 500
)

// MovementsPage is a page of a wallet's movements, newest first, as of AsOf. NextCursor is
// empty on the last page.
type MovementsPage struct {
	SellerID   string           `json:"sellerId"`
	AsOf       time.Time        `json:"asOf"`
	Movements  []WalletMovement `json:"movements"`
	NextCursor string           `json:"nextCursor,omitempty"`
}

// movementsCursor is the keyset of the last movement of a page (time, id) with what the list
// is: its seller, currency and asOf. A cursor resumes only the list it came from; it carries
// asOf so that the pages after the first answer as of the same moment when the caller leaves
// asOf out (now would have moved on).
func movementsCursor(seller domain.SellerID, currency string, asOf, at time.Time, id int64) string {
	return encodeCursorFields("wallet-movements", string(seller), currency,
		strconv.FormatInt(asOf.UnixMicro(), 10), strconv.FormatInt(at.UnixMicro(), 10), strconv.FormatInt(id, 10))
}

// decodeMovementsCursor returns the list's asOf and the keyset of c, checking that c is a
// cursor of seller's movements in currency, as of asOf when asOf is not zero.
func decodeMovementsCursor(c string, seller domain.SellerID, currency string, asOf time.Time) (listAsOf, at time.Time, id int64, err error) {
	f, err := decodeCursorFields(c, 6)
	if err != nil {
		return time.Time{}, time.Time{}, 0, err
	}
	listAsOf, asOfOK := cursorAsOf(f[3])
	at, timeOK := cursorTime(f[4])
	id, idErr := strconv.ParseInt(f[5], 10, 64)
	if f[0] != "wallet-movements" || !asOfOK || !timeOK || idErr != nil || id < 1 {
		return time.Time{}, time.Time{}, 0, domain.Errorf(domain.ErrInvalidInput, "cursor %q is not one this API returned", clip(c, 40))
	}
	if f[1] != string(seller) || f[2] != currency || (!asOf.IsZero() && !listAsOf.Equal(asOf)) {
		return time.Time{}, time.Time{}, 0, domain.Errorf(domain.ErrInvalidInput,
			"cursor %q is not one this API returned for the movements of seller %s in %s as of %s (another list's, or other filters)",
			clip(c, 40), clip(string(seller), 40), clip(currency, 10), listAsOf.In(domain.KST).Format(time.RFC3339Nano))
	}
	return listAsOf, at, id, nil
}

// cursorAsOf reads a cursor's asOf: any moment an RFC 3339 timestamp can name (years 1 to 9999
// with an offset of up to a day either side), which PostgreSQL takes. A list's asOf, unlike a
// row's time, may lie before 2000 or at the end of 9999.
func cursorAsOf(field string) (time.Time, bool) {
	micros, err := strconv.ParseInt(field, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	t := time.UnixMicro(micros).UTC()
	return t, t.Year() >= 0 && t.Year() <= 10000
}

// WalletMovements returns a page of the movements that make up the wallet of the merchant's
// seller in currency (KRW when empty) as of asOf, newest first (by the time the movement
// occurred, then by id). A zero asOf is now on a first page and the cursor's asOf on the pages
// after it; the page says which moment it answers for. A limit beyond 1–MaxMovementsPageSize,
// or a cursor this method did not return for this seller, currency and asOf, is invalid input.
//
// Pages are keyset pages read off wallet_movements_seller_keyset (migration 0024): any page
// costs one index range scan of its rows. A movement stored later with a time before the
// cursor's (a rebuild, a late settlement row) shows on a new listing, not on the pages after
// the cursor.
func (l *Ledger) WalletMovements(ctx context.Context, merchant domain.MerchantID, seller domain.SellerID, asOf time.Time, currency string, q MovementsQuery) (MovementsPage, error) {
	if merchant == "" {
		return MovementsPage{}, errNoMerchant("wallet movements")
	}
	if err := checkSeller(seller); err != nil {
		return MovementsPage{}, err
	}
	if currency == "" {
		currency = string(domain.KRW)
	}
	if q.Limit == 0 {
		q.Limit = DefaultMovementsPageSize
	}
	if q.Limit < 1 || q.Limit > MaxMovementsPageSize {
		return MovementsPage{}, domain.Errorf(domain.ErrInvalidInput, "limit must be between 1 and %d", MaxMovementsPageSize)
	}
	// PostgreSQL keeps microseconds: the list's asOf is the one the query compares with, so that
	// a cursor's asOf equals the asOf a caller passes again.
	if !asOf.IsZero() {
		asOf = time.UnixMicro(asOf.UnixMicro())
	}
	sql := `
		SELECT id, order_id, line_id, COALESCE(transaction_key, ''), kind, bucket, amount, occurred_at
		FROM wallet_movements
		WHERE merchant_id = $1 AND seller_id = $2 AND currency = $3 AND occurred_at <= $4`
	args := []any{merchant, seller, currency}
	if q.Cursor != "" {
		listAsOf, at, id, err := decodeMovementsCursor(q.Cursor, seller, currency, asOf)
		if err != nil {
			return MovementsPage{}, err
		}
		// Two statements rather than "$5 IS NULL OR ...": a generic plan could not use the
		// keyset as an index condition and would read every newer row to find a deep page.
		asOf = listAsOf
		sql += ` AND (occurred_at, id) < ($6, $7)`
		args = append(args, asOf, q.Limit+1, at, id)
	} else {
		if asOf.IsZero() {
			asOf = time.UnixMicro(time.Now().UnixMicro())
		}
		args = append(args, asOf, q.Limit+1)
	}
	sql += ` ORDER BY occurred_at DESC, id DESC LIMIT $5`
	rows, err := l.pool.Query(ctx, sql, args...)
	if err != nil {
		return MovementsPage{}, fmt.Errorf("wallet movements of %s: %w", seller, err)
	}
	var ids []int64
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WalletMovement, error) {
		var m WalletMovement
		var id int64
		err := r.Scan(&id, &m.OrderID, &m.LineID, &m.TransactionKey, &m.Kind, &m.Bucket, &m.Amount, &m.OccurredAt)
		m.OccurredAt = m.OccurredAt.In(domain.KST)
		ids = append(ids, id)
		return m, err
	})
	if err != nil {
		return MovementsPage{}, fmt.Errorf("wallet movements of %s: %w", seller, err)
	}
	page := MovementsPage{SellerID: string(seller), AsOf: asOf.In(domain.KST), Movements: ms}
	if len(ms) > q.Limit {
		page.Movements = ms[:q.Limit]
		last := page.Movements[q.Limit-1]
		page.NextCursor = movementsCursor(seller, currency, asOf, last.OccurredAt, ids[q.Limit-1])
	}
	if page.Movements == nil {
		page.Movements = []WalletMovement{}
	}
	return page, nil
}
