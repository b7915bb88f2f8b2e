package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// books checks the ledger read model (migrations 0005 and 0008) in one snapshot:
//
//   - every journal entry balances: at least two postings, each with exactly one positive
//     side, debits equal to credits, all in the entry's currency, merchant and moment (what
//     the deferred trigger enforces at commit, checked again because the trigger can be
//     disabled), and it records an event that is in the log;
//   - every merchant's trial balance is zero, per currency, as of now;
//   - every seller's wallet (pending + available from wallet_movements) equals the balance of
//     its seller_payable account as of now, per merchant and currency;
//   - every wallet movement ties to its entry: an approval's or cancel's movements of a line
//     equal that entry's seller payable postings of the line, and a payout moves each line's
//     money from pending to available without creating any.
//
// Entries are named by the stream and version of the event they record. It runs beside the
// stream pass (its own connection and snapshot), so it returns its problems rather than adding
// them to the run.
func books(ctx context.Context, pool *pgxpool.Pool, now time.Time) ([]Problem, error) {
	b := &bookCheck{}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, check := range []func(context.Context, pgx.Tx) error{
			b.entries,
			func(ctx context.Context, tx pgx.Tx) error { return b.trialBalances(ctx, tx, now) },
			func(ctx context.Context, tx pgx.Tx) error { return b.wallets(ctx, tx, now) },
			b.walletEntries,
		} {
			if err := check(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	return b.problems, err
}

type bookCheck struct{ problems []Problem }

func (b *bookCheck) problem(p Problem) { b.problems = append(b.problems, p) }

// entryStream names the stream and version of a journal entry's event; when the event is not
// in the log, the order's payment stream.
func entryStream(stream *string, version *int64, order string) (string, int64) {
	if stream == nil || version == nil {
		return paymentPrefix + order, 0
	}
	return *stream, *version
}

func (b *bookCheck) entries(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `
		SELECT je.id, je.kind, je.order_id, je.merchant_id, je.currency, je.event_id::text,
		       count(p.id), COALESCE(sum(p.debit), 0), COALESCE(sum(p.credit), 0),
		       count(p.id) FILTER (WHERE p.currency <> je.currency OR p.merchant_id <> je.merchant_id OR p.occurred_at <> je.occurred_at),
		       count(p.id) FILTER (WHERE (p.debit > 0) = (p.credit > 0) OR p.debit < 0 OR p.credit < 0),
		       e.stream_id, e.version
		FROM journal_entries je
		LEFT JOIN postings p ON p.entry_id = je.id
		LEFT JOIN events e ON e.event_id = je.event_id
		GROUP BY je.id, e.stream_id, e.version
		HAVING count(p.id) < 2 OR COALESCE(sum(p.debit), 0) <> COALESCE(sum(p.credit), 0)
		    OR count(p.id) FILTER (WHERE p.currency <> je.currency OR p.merchant_id <> je.merchant_id OR p.occurred_at <> je.occurred_at) > 0
		    OR count(p.id) FILTER (WHERE (p.debit > 0) = (p.credit > 0) OR p.debit < 0 OR p.credit < 0) > 0
		    OR e.stream_id IS NULL
		ORDER BY je.id`)
	if err != nil {
		return fmt.Errorf("journal entries: %w", err)
	}
	var (
		id                                     int64
		kind, order, merchant, currency, event string
		n, elsewhere, oneSided                 int64
		debits, credits                        decimal.Decimal
		stream                                 *string
		version                                *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &kind, &order, &merchant, &currency, &event, &n, &debits, &credits, &elsewhere, &oneSided, &stream, &version}, func() error {
		s, v := entryStream(stream, version, order)
		if stream == nil {
			b.problem(Problem{Kind: KindProjectionDrift, Stream: s, Detail: fmt.Sprintf(
				"journal entry %d (%s of order %s) records event %s, which is not in the event log", id, kind, order, event)})
		}
		if n < 2 || !debits.Equal(credits) || elsewhere > 0 || oneSided > 0 {
			b.problem(Problem{Kind: KindUnbalancedEntry, Stream: s, Version: v, Detail: fmt.Sprintf(
				"journal entry %d (%s of order %s, merchant %s): %d postings, debits %s, credits %s %s, %d in another currency, merchant or moment, %d not one-sided",
				id, kind, order, merchant, n, debits, credits, currency, elsewhere, oneSided)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal entries: %w", err)
	}
	return nil
}

func (b *bookCheck) trialBalances(ctx context.Context, tx pgx.Tx, now time.Time) error {
	rows, err := tx.Query(ctx, `
		SELECT merchant_id, currency, sum(debit), sum(credit) FROM postings WHERE occurred_at <= $1
		GROUP BY merchant_id, currency HAVING sum(debit) <> sum(credit) ORDER BY merchant_id, currency`, now)
	if err != nil {
		return fmt.Errorf("trial balances: %w", err)
	}
	var (
		merchant, currency string
		debits, credits    decimal.Decimal
	)
	_, err = pgx.ForEachRow(rows, []any{&merchant, &currency, &debits, &credits}, func() error {
		b.problem(Problem{Kind: KindUnbalancedEntry, Stream: merchantPrefix + merchant, Detail: fmt.Sprintf(
			"the trial balance of merchant %s in %s as of now is not zero: debits %s, credits %s", merchant, currency, debits, credits)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("trial balances: %w", err)
	}
	return nil
}

func (b *bookCheck) wallets(ctx context.Context, tx pgx.Tx, now time.Time) error {
	rows, err := tx.Query(ctx, `
		WITH w AS (
			SELECT merchant_id, seller_id, currency,
			       COALESCE(sum(amount) FILTER (WHERE bucket = 'pending'), 0) AS pending,
			       COALESCE(sum(amount) FILTER (WHERE bucket = 'available'), 0) AS available
			FROM wallet_movements WHERE occurred_at <= $1 GROUP BY merchant_id, seller_id, currency
		), p AS (
			SELECT merchant_id, substr(account, length('seller_payable:') + 1) AS seller_id, currency,
			       sum(credit) - sum(debit) AS balance
			FROM postings WHERE account LIKE 'seller\_payable:%' AND occurred_at <= $1
			GROUP BY merchant_id, account, currency
		)
		SELECT merchant_id, seller_id, currency, COALESCE(w.pending, 0), COALESCE(w.available, 0), COALESCE(p.balance, 0)
		FROM w FULL JOIN p USING (merchant_id, seller_id, currency)
		WHERE COALESCE(w.pending, 0) + COALESCE(w.available, 0) <> COALESCE(p.balance, 0)
		ORDER BY merchant_id, seller_id, currency`, now)
	if err != nil {
		return fmt.Errorf("wallets: %w", err)
	}
	var (
		merchant, seller, currency  string
		pending, available, balance decimal.Decimal
	)
	_, err = pgx.ForEachRow(rows, []any{&merchant, &seller, &currency, &pending, &available, &balance}, func() error {
		b.problem(Problem{Kind: KindUnbalancedEntry, Stream: merchantPrefix + merchant, Detail: fmt.Sprintf(
			"the wallet of seller %s of merchant %s in %s as of now (pending %s + available %s) is not its seller_payable balance %s",
			seller, merchant, currency, pending, available, balance)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("wallets: %w", err)
	}
	return nil
}

func (b *bookCheck) walletEntries(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `
		WITH m AS (
			SELECT entry_id, line_id, seller_id, sum(amount) AS amount
			FROM wallet_movements WHERE kind IN ('approval', 'cancel') GROUP BY entry_id, line_id, seller_id
		), p AS (
			SELECT p.entry_id, p.line_id, p.seller_id, sum(p.credit) - sum(p.debit) AS amount
			FROM postings p JOIN journal_entries je ON je.id = p.entry_id
			WHERE je.kind IN ('approval', 'cancel') AND p.account LIKE 'seller\_payable:%'
			GROUP BY p.entry_id, p.line_id, p.seller_id
		), moved AS (
			SELECT false AS payout, entry_id, line_id, seller_id, COALESCE(m.amount, 0) AS wallet, COALESCE(p.amount, 0) AS ledger
			FROM m FULL JOIN p USING (entry_id, line_id, seller_id)
			WHERE COALESCE(m.amount, 0) <> COALESCE(p.amount, 0)
			UNION ALL
			SELECT true, entry_id, line_id, seller_id, sum(amount), 0
			FROM wallet_movements WHERE kind = 'payout' GROUP BY entry_id, line_id, seller_id HAVING sum(amount) <> 0
		)
		SELECT moved.payout, moved.entry_id, COALESCE(je.kind, '?'), COALESCE(je.order_id, '?'), moved.line_id, moved.seller_id,
		       moved.wallet, moved.ledger, e.stream_id, e.version
		FROM moved
		LEFT JOIN journal_entries je ON je.id = moved.entry_id
		LEFT JOIN events e ON e.event_id = je.event_id
		ORDER BY moved.entry_id, moved.line_id`)
	if err != nil {
		return fmt.Errorf("wallet movements: %w", err)
	}
	var (
		payout                    bool
		entry                     int64
		kind, order, line, seller string
		wallet, ledger            decimal.Decimal
		stream                    *string
		version                   *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&payout, &entry, &kind, &order, &line, &seller, &wallet, &ledger, &stream, &version}, func() error {
		s, v := entryStream(stream, version, order)
		detail := fmt.Sprintf("the wallet movements of entry %d (%s of order %s), line %s of seller %s, sum to %s; its seller payable postings to %s",
			entry, kind, order, line, seller, wallet, ledger)
		if payout {
			detail = fmt.Sprintf("the payout movements of entry %d (order %s), line %s of seller %s, sum to %s instead of moving money from pending to available",
				entry, order, line, seller, wallet)
		}
		b.problem(Problem{Kind: KindUnbalancedEntry, Stream: s, Version: v, Detail: detail})
		return nil
	})
	if err != nil {
		return fmt.Errorf("wallet movements: %w", err)
	}
	return nil
}
