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

-- The daily report: the merchant's approvals, cancels and settlements of a range of days.
CREATE INDEX journal_entries_merchant_kind ON journal_entries (merchant_id, kind, occurred_at);

-- +goose Down
DROP INDEX journal_entries_merchant_kind;
DROP INDEX payment_orders_amount;
DROP INDEX payment_orders_status;
CREATE INDEX payment_orders_status ON payment_orders (merchant_id, status, created_at DESC);
DROP INDEX payment_orders_refunded;
DROP INDEX payment_orders_order_prefix;
DROP INDEX payment_orders_payment_key;
DROP INDEX payment_orders_buyer;
DROP INDEX payment_orders_name_trgm;
