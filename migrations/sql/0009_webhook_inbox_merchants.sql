-- +goose Up
-- Webhooks arrive per merchant (POST /webhooks/toss/{merchantId}), and the inbox keeps only what
-- Toss could have sent. See the webhooks package doc for the rules these columns serve.

-- The merchant whose URL the delivery came to: the worker reads the order back only if it is
-- that merchant's. NULL on rows stored before per-merchant URLs (read back without that check).
-- body_length and body_sha256 describe the body as received: rows that need no read-back
-- (rejected, or processed on arrival) keep only a prefix of it in body, so audit keeps the
-- evidence without the bytes. NULL on rows stored before this migration.
ALTER TABLE webhook_inbox
    ADD COLUMN merchant_id text,
    ADD COLUMN body_length integer,
    ADD COLUMN body_sha256 bytea;

-- NOT VALID: every existing row holds NULL in these new columns, which passes anyway, and
-- validating would scan the whole table under this migration's exclusive lock while Toss is
-- delivering. New and updated rows are checked.
ALTER TABLE webhook_inbox
    ADD CONSTRAINT webhook_inbox_body_length CHECK (body_length >= octet_length(body)) NOT VALID,
    ADD CONSTRAINT webhook_inbox_body_sha256 CHECK (octet_length(body_sha256) = 32) NOT VALID;

-- Retention: the worker deletes finished rows (everything but pending) by received_at.
CREATE INDEX webhook_inbox_expiry ON webhook_inbox (received_at) WHERE status <> 'pending';

-- A read-back settles every pending row of its order that was stored before it started.
CREATE INDEX webhook_inbox_pending_order ON webhook_inbox (order_id) WHERE status = 'pending';

-- The read-back gate: at most one read-back per order per sync interval, however many workers
-- and deliveries. A worker reads an order back only if it moved synced_at to now() (an insert,
-- or an update of a row older than the interval); the others postpone their rows until then.
CREATE TABLE webhook_order_syncs (
    order_id  text        PRIMARY KEY,
    synced_at timestamptz NOT NULL
);

-- An open gate (older than the interval) means the same as no row: the worker deletes them.
CREATE INDEX webhook_order_syncs_synced_at ON webhook_order_syncs (synced_at);

-- +goose Down
DROP TABLE webhook_order_syncs;
DROP INDEX webhook_inbox_pending_order;
DROP INDEX webhook_inbox_expiry;
ALTER TABLE webhook_inbox
    DROP CONSTRAINT webhook_inbox_body_sha256,
    DROP CONSTRAINT webhook_inbox_body_length,
    DROP COLUMN body_sha256,
    DROP COLUMN body_length,
    DROP COLUMN merchant_id;
