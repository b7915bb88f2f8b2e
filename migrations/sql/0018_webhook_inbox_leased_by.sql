-- +goose Up
-- The worker that holds a pending row's lease (internal/lease): with next_attempt_at, which is
-- when a claimed row's lease runs out, it is the token the worker renews while it reads the
-- order back and checks on its last write. NULL when no worker holds the row.
ALTER TABLE webhook_inbox ADD COLUMN leased_by text;

-- +goose Down
ALTER TABLE webhook_inbox DROP COLUMN leased_by;
