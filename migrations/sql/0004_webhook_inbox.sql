-- +goose Up
-- The webhook inbox: every delivery to POST /webhooks/toss, kept raw (headers and body bytes)
-- for audit, one row per delivery. Payment webhooks are unsigned, so nothing in the body is
-- trusted: the worker only uses order_id to know which payment to read back from Toss.
CREATE TABLE webhook_inbox (
    id              bigserial   PRIMARY KEY,
    -- tosspayments-webhook-transmission-id, or 'sha256:' || hex(sha256(body)) when it is absent.
    -- Toss resends a failed delivery under the same transmission id: the constraint decides.
    dedupe_key      text        NOT NULL UNIQUE,
    transmission_id text,
    -- As read from the body (DEPOSIT_CALLBACK for the flat form); NULL when it cannot be told.
    event_type      text,
    -- Routing only: which payment the worker reads back. NULL when the body names none.
    order_id        text,
    headers         jsonb       NOT NULL,
    body            bytea       NOT NULL,
    received_at     timestamptz NOT NULL,
    -- pending: the worker must read the payment back; processed: done, or nothing to do
    -- (outcome says which); rejected: malformed, answered 400 (reject_reason says why);
    -- failed: the worker gave up after its attempts (last_error), the recovery sweeper is the
    -- backstop.
    status          text        NOT NULL CHECK (status IN ('pending', 'processed', 'rejected', 'failed')),
    reject_reason   text,
    -- For processed rows: the payment status the read-back left, or why nothing was done
    -- ('ignored event type', 'no orderId to sync', 'unknown order').
    outcome         text,
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the worker may (re)claim a pending row: now, after a back-off, or after a lease.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    last_error      text,
    CHECK (status <> 'rejected' OR reject_reason IS NOT NULL),
    CHECK (status <> 'pending' OR order_id IS NOT NULL)
);

CREATE INDEX webhook_inbox_due ON webhook_inbox (status, next_attempt_at);

-- +goose Down
DROP TABLE webhook_inbox;
