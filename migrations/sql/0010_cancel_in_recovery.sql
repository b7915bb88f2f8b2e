-- +goose Up
-- cancel_in_recovery: the pending cancel's request ended without an outcome (unknown, or refused
-- by Toss without executing it), so no request is working on it any more and the recovery
-- sweeper retries it on its own schedule (RECOVERY_BASE_DELAY, doubling), not only once it has
-- been quiet for RECOVERY_STALE_AFTER like a cancel that may still be in flight.
ALTER TABLE payment_orders ADD COLUMN cancel_in_recovery boolean NOT NULL DEFAULT false;
-- A pending cancel that predates the column may be either: treat it as in recovery, which only
-- makes the sweeper try it sooner; its key is kept, so a retry cannot refund twice.
UPDATE payment_orders SET cancel_in_recovery = true WHERE cancel_pending;

-- +goose Down
ALTER TABLE payment_orders DROP COLUMN cancel_in_recovery;
