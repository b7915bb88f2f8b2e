-- +goose Up
-- Cancels in the payment read model: how much is refunded, and whether a cancel is in flight
-- (the recovery sweeper settles cancels whose outcome is unknown).
ALTER TABLE payment_orders
    ADD COLUMN canceled_amount numeric NOT NULL DEFAULT 0 CHECK (canceled_amount >= 0),
    ADD COLUMN cancel_pending  boolean NOT NULL DEFAULT false;
CREATE INDEX payment_orders_cancel_pending ON payment_orders (updated_at) WHERE cancel_pending;

-- +goose Down
DROP INDEX payment_orders_cancel_pending;
ALTER TABLE payment_orders DROP COLUMN cancel_pending, DROP COLUMN canceled_amount;
