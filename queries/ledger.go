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

// Ledger answers ledger and wallet queries from the ledger projection's tables. It is
// platform-wide (not scoped to one merchant): the ledger is the platform's books.
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

// Wallet is a seller's money: pending (approved, Toss has not settled it yet) and available
// (settled by Toss), as of a moment.
type Wallet struct {
	SellerID  string          `json:"sellerId"`
	Currency  string          `json:"currency"`
	Pending   decimal.Decimal `json:"pending"`
	Available decimal.Decimal `json:"available"`
	AsOf      time.Time       `json:"asOf"`
}

// WalletMovement is one change of one bucket of a wallet: the history that explains it.
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
	Cursor string // from the previous page
}

func (l *Ledger) balances(ctx context.Context, asOf time.Time, currency string) ([]AccountBalance, error) {
	rows, err := l.pool.Query(ctx, `
		SELECT account, account_type, currency, sum(debit), sum(credit), sum(debit) - sum(credit)
		FROM postings
		WHERE occurred_at <= $1 AND ($2::text = '' OR currency = $2)
		GROUP BY account, account_type, currency
		ORDER BY account, currency`, asOf, currency)
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

// AccountBalances returns every account's debits, credits and balance from postings that
// occurred at or before asOf, per currency.
func (l *Ledger) AccountBalances(ctx context.Context, asOf time.Time) (AccountBalances, error) {
	b, err := l.balances(ctx, asOf, "")
	if err != nil {
		return AccountBalances{}, err
	}
	return AccountBalances{AsOf: asOf.UTC(), Accounts: b}, nil
}

// TrialBalance lists every account of currency (KRW when empty) as of asOf with the totals.
func (l *Ledger) TrialBalance(ctx context.Context, asOf time.Time, currency string) (TrialBalance, error) {
	if currency == "" {
		currency = string(domain.KRW)
	}
	b, err := l.balances(ctx, asOf, currency)
	if err != nil {
		return TrialBalance{}, err
	}
	tb := TrialBalance{AsOf: asOf.UTC(), Currency: currency, Accounts: b, TotalDebits: decimal.Zero, TotalCredits: decimal.Zero}
	for i := range tb.Accounts {
		tb.TotalDebits = tb.TotalDebits.Add(tb.Accounts[i].Debits)
		tb.TotalCredits = tb.TotalCredits.Add(tb.Accounts[i].Credits)
		tb.Accounts[i].Currency = "" // one currency per trial balance: said once at the top
	}
	return tb, nil
}

// Postings returns a page of the account's postings, oldest first (by posting id). An account
// without postings (unknown or not yet used) gives an empty page, not an error; a name that is
// not a ledger account is invalid.
func (l *Ledger) Postings(ctx context.Context, account string, q PostingsQuery) (PostingsPage, error) {
	if _, err := domain.AccountTypeOf(account); err != nil {
		return PostingsPage{}, err
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return PostingsPage{}, domain.Errorf(domain.ErrInvalidInput, "limit must be between 1 and %d", MaxPageSize)
	}
	var after int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n < 0 {
			return PostingsPage{}, domain.Errorf(domain.ErrInvalidInput, "cursor %q is not one this API returned", q.Cursor)
		}
		after = n
	}
	rows, err := l.pool.Query(ctx, `
		SELECT p.id, p.entry_id, e.event_id::text, e.order_id, e.kind, COALESCE(p.seller_id, ''), COALESCE(p.line_id, ''),
		       p.debit, p.credit, p.currency, p.occurred_at
		FROM postings p JOIN journal_entries e ON e.id = p.entry_id
		WHERE p.account = $1 AND p.id > $2
		ORDER BY p.id
		LIMIT $3`, account, after, q.Limit+1)
	if err != nil {
		return PostingsPage{}, fmt.Errorf("postings of %s: %w", account, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PostingRow, error) {
		var p PostingRow
		return p, r.Scan(&p.ID, &p.EntryID, &p.EventID, &p.OrderID, &p.Kind, &p.SellerID, &p.LineID, &p.Debit, &p.Credit, &p.Currency, &p.OccurredAt)
	})
	if err != nil {
		return PostingsPage{}, fmt.Errorf("postings of %s: %w", account, err)
	}
	page := PostingsPage{Account: account, Postings: ps}
	if len(ps) > q.Limit {
		page.Postings = ps[:q.Limit]
		page.NextCursor = strconv.FormatInt(page.Postings[q.Limit-1].ID, 10)
	}
	if page.Postings == nil {
		page.Postings = []PostingRow{}
	}
	return page, nil
}

// Wallet returns a seller's pending and available money in currency (KRW when empty) as of
// asOf: the sums of the seller's wallet movements at or before asOf. pending + available always
// equals the balance of seller_payable:<sellerId> at that moment. A seller without movements has
// a zero wallet.
func (l *Ledger) Wallet(ctx context.Context, sellerID string, asOf time.Time, currency string) (Wallet, error) {
	if sellerID == "" {
		return Wallet{}, domain.Errorf(domain.ErrInvalidInput, "sellerId is required")
	}
	if currency == "" {
		currency = string(domain.KRW)
	}
	w := Wallet{SellerID: sellerID, Currency: currency, AsOf: asOf.UTC()}
	err := l.pool.QueryRow(ctx, `
		SELECT COALESCE(sum(amount) FILTER (WHERE bucket = 'pending'), 0),
		       COALESCE(sum(amount) FILTER (WHERE bucket = 'available'), 0)
		FROM wallet_movements WHERE seller_id = $1 AND currency = $2 AND occurred_at <= $3`,
		sellerID, currency, asOf).Scan(&w.Pending, &w.Available)
	if err != nil {
		return Wallet{}, fmt.Errorf("wallet of %s: %w", sellerID, err)
	}
	return w, nil
}

// WalletHistory returns the movements that make up a seller's wallet as of asOf, oldest first.
func (l *Ledger) WalletHistory(ctx context.Context, sellerID string, asOf time.Time, currency string) ([]WalletMovement, error) {
	if currency == "" {
		currency = string(domain.KRW)
	}
	rows, err := l.pool.Query(ctx, `
		SELECT order_id, line_id, COALESCE(transaction_key, ''), kind, bucket, amount, occurred_at
		FROM wallet_movements WHERE seller_id = $1 AND currency = $2 AND occurred_at <= $3
		ORDER BY occurred_at, id`, sellerID, currency, asOf)
	if err != nil {
		return nil, fmt.Errorf("wallet history of %s: %w", sellerID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WalletMovement, error) {
		var m WalletMovement
		return m, r.Scan(&m.OrderID, &m.LineID, &m.TransactionKey, &m.Kind, &m.Bucket, &m.Amount, &m.OccurredAt)
	})
	if err != nil {
		return nil, fmt.Errorf("wallet history of %s: %w", sellerID, err)
	}
	if out == nil {
		out = []WalletMovement{}
	}
	return out, nil
}
