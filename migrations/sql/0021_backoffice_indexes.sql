-- +goose Up
-- The back office's filters of GET /api/v1/payments, its CSV export and the daily report, kept
-- under 50 ms at 1,000,000 payments of one merchant (docs/backoffice-performance.md has the
-- plans and times). Every list reads newest first by (created_at, order_id), the keyset of its
-- cursor, so the indexes that serve a filter end with those columns where the filter is an
-- equality, and the planner reads a page off the index without sorting. queries.pageSQL splits
-- the q and needsReview ORs into branches, one per index below.
--
-- Built in the migration's transaction: writes to these read models (the projection runners)
-- wait for the builds, a few seconds at a million payments; reads go on.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- q, words of the order name: ILIKE '%word%' through trigrams (3 characters or more).
CREATE INDEX payment_orders_name_trgm ON payment_orders USING gin (order_name gin_trgm_ops);
-- q, a buyerId: that buyer's payments, newest first.
CREATE INDEX payment_orders_buyer ON payment_orders (merchant_id, buyer_id, created_at DESC, order_id DESC);
-- q, a paymentKey.
CREATE INDEX payment_orders_payment_key ON payment_orders (merchant_id, payment_key);
-- q, an orderId prefix: LIKE 'abc%' can use a btree only with pattern ops under a collation
-- other than C (the databases here are C.UTF-8).
CREATE INDEX payment_orders_order_prefix ON payment_orders (merchant_id, order_id text_pattern_ops);
-- type=cancel: the few payments with a refund, newest first. (type=payment, the many without,
-- reads payment_orders_newest and skips the refunded ones.)
CREATE INDEX payment_orders_refunded ON payment_orders (merchant_id, created_at DESC, order_id DESC) WHERE canceled_amount > 0;
-- status: with the keyset's order_id, so a page of one status needs no sort.
DROP INDEX payment_orders_status;
CREATE INDEX payment_orders_status ON payment_orders (merchant_id, status, created_at DESC, order_id DESC);
-- minAmount/maxAmount: a narrow range of amounts is found here and sorted; a wide one reads
-- payment_orders_newest.
CREATE INDEX payment_orders_amount ON payment_orders (merchant_id, total_amount);

-- The daily report. Summing a month of a big merchant's postings takes hundreds of
-- milliseconds whatever the index (150,000 rows joined to their entries), so the ledger
-- projection keeps a rollup per merchant, currency and KST day (projections.dailyDelta), part of
-- the ledger read model: written with the entries, rebuilt by a replay. Filled here from the
-- entries already booked, by the same rules.
CREATE TABLE ledger_daily_totals (
    merchant_id     text    NOT NULL,
    currency        text    NOT NULL,
    day             text    NOT NULL CHECK (day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'), -- a KST calendar day, 2026-11-01: text sorts as dates do
    approved_count  integer NOT NULL, -- approval entries
    approved_amount numeric NOT NULL, -- their psp_receivable debits
    canceled_count  integer NOT NULL, -- cancel entries (a partial cancel is one)
    canceled_amount numeric NOT NULL, -- their psp_receivable credits
    psp_fees        numeric NOT NULL, -- psp_fees debits − credits of settlement entries (booked at the end of soldDate)
    PRIMARY KEY (merchant_id, currency, day)
);
INSERT INTO ledger_daily_totals (merchant_id, currency, day, approved_count, approved_amount, canceled_count, canceled_amount, psp_fees)
SELECT e.merchant_id, e.currency, to_char(e.occurred_at AT TIME ZONE INTERVAL '+09:00', 'YYYY-MM-DD'),
       count(*) FILTER (WHERE e.kind = 'approval'),
       COALESCE(sum(p.debit) FILTER (WHERE e.kind = 'approval'), 0),
       count(*) FILTER (WHERE e.kind = 'cancel'),
       COALESCE(sum(p.credit) FILTER (WHERE e.kind = 'cancel'), 0),
       COALESCE(sum(p.debit - p.credit) FILTER (WHERE e.kind = 'settlement'), 0)
FROM journal_entries e JOIN postings p ON p.entry_id = e.id
WHERE (e.kind IN ('approval', 'cancel') AND p.account = 'psp_receivable:toss') OR (e.kind = 'settlement' AND p.account = 'psp_fees:toss')
GROUP BY 1, 2, 3;

-- +goose Down
DROP TABLE ledger_daily_totals;
DROP INDEX payment_orders_amount;
DROP INDEX payment_orders_status;
CREATE INDEX payment_orders_status ON payment_orders (merchant_id, status, created_at DESC);
DROP INDEX payment_orders_refunded;
DROP INDEX payment_orders_order_prefix;
DROP INDEX payment_orders_payment_key;
DROP INDEX payment_orders_buyer;
DROP INDEX payment_orders_name_trgm;
