-- +goose Up
-- The needs-review list of reconciliation: each difference with Toss that Toss's truth cannot
-- resolve (an amount or a second approval that differs, a transaction Toss does not have, a
-- settlement row that differs from what was recorded or from the contract fee rate), one row per
-- (merchant, order, category, transaction). A run opens or refreshes the rows of what it found
-- and closes (resolved_at) the open rows of the orders it compared that it no longer finds, so
-- the list follows the ledger and Toss without anybody editing it. The payments list shows a
-- payment with an open row as needing review (GET /api/v1/payments?needsReview=true).
--
-- It is a table rather than an event on the payment's stream: a difference is a verdict about
-- two records, not a fact of the payment, and one Toss lists for an order this ledger does not
-- have has no stream to go on.
CREATE TABLE reconciliation_differences (
    merchant_id     text        NOT NULL,
    order_id        text        NOT NULL,
    category        text        NOT NULL,
    transaction_key text        NOT NULL, -- '' for a difference of the whole order
    payment_key     text        NOT NULL,
    ours            text        NOT NULL,
    toss            text        NOT NULL,
    detail          text        NOT NULL,
    first_run_id    bigint      NOT NULL REFERENCES reconciliation_runs (id),
    last_run_id     bigint      NOT NULL REFERENCES reconciliation_runs (id),
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    resolved_at     timestamptz,
    resolved_run_id bigint      REFERENCES reconciliation_runs (id),
    PRIMARY KEY (merchant_id, order_id, category, transaction_key)
);
CREATE INDEX reconciliation_differences_open ON reconciliation_differences (merchant_id, order_id) WHERE resolved_at IS NULL;

-- +goose Down
DROP TABLE reconciliation_differences;
