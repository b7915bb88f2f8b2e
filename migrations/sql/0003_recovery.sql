-- +goose Up
-- needs_review: recovery gave up (RecoveryExhausted); listed by GET /api/v1/payments?needsReview=true.
ALTER TABLE payment_orders ADD COLUMN needs_review boolean NOT NULL DEFAULT false;
CREATE INDEX payment_orders_needs_review ON payment_orders (merchant_id, created_at DESC) WHERE needs_review;
-- The sweeper finds its work here (EXECUTING past a threshold, UNKNOWN).
CREATE INDEX payment_orders_unsettled ON payment_orders (updated_at) WHERE status IN ('EXECUTING', 'UNKNOWN');

-- The recovery sweeper's own state per payment: how often it tried, when to try next, and a
-- lease so that no two paymentd instances work on one payment at once.
CREATE TABLE recovery_state (
    order_id        text        PRIMARY KEY,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    leased_until    timestamptz NOT NULL DEFAULT '-infinity',
    leased_by       text,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE recovery_state;
DROP INDEX payment_orders_unsettled;
DROP INDEX payment_orders_needs_review;
ALTER TABLE payment_orders DROP COLUMN needs_review;
