-- +goose Up
-- The Toss simulator's truth (package psp/toss/tosssim), saved so it survives a restart. The
-- simulator that holds the owner lock on this database is the only writer; it reads these
-- tables once, when it opens, and serves from memory afterwards. Every time is the exact
-- instant the simulator decided on (its clock is read to the microsecond).

-- One row per payment, also the ones a newer session of their order replaced (retired): their
-- keys stay taken, so no new payment is ever given one.
CREATE TABLE tosssim.payments (
    payment_key           text        PRIMARY KEY,
    order_id              text        NOT NULL,
    order_name            text        NOT NULL,
    method                text        NOT NULL,
    total_amount          numeric     NOT NULL CHECK (total_amount > 0),
    balance_amount        numeric     NOT NULL CHECK (balance_amount >= 0),
    status                text        NOT NULL CHECK (status IN ('READY', 'IN_PROGRESS',
                              'WAITING_FOR_DEPOSIT', 'DONE', 'CANCELED', 'PARTIAL_CANCELED',
                              'ABORTED', 'EXPIRED')),
    requested_at          timestamptz NOT NULL,
    -- The confirm window runs from here.
    authenticated_at      timestamptz NOT NULL,
    approved_at           timestamptz,
    approve_no            text,
    last_transaction_key  text,
    failure_code          text,
    failure_message       text,
    -- The 1-second rule between cancels is measured from here.
    last_cancel_at        timestamptz,
    approvals             integer     NOT NULL CHECK (approvals >= 0),
    -- The session's injected confirm error (SessionRequest.ConfirmError*).
    confirm_error         text,
    confirm_error_left    integer     NOT NULL,
    confirm_error_outcome text,
    retired               boolean     NOT NULL,
    CHECK ((failure_code IS NULL) = (failure_message IS NULL))
);

-- An order has one payment that is not retired: the one lookups and confirms see.
CREATE UNIQUE INDEX payments_order_current ON tosssim.payments (order_id) WHERE NOT retired;

-- The rows of GET /v1/transactions; GET /v1/settlements derives its rows from them.
CREATE TABLE tosssim.transactions (
    transaction_key text        PRIMARY KEY,
    payment_key     text        NOT NULL REFERENCES tosssim.payments (payment_key),
    order_id        text        NOT NULL,
    method          text        NOT NULL,
    status          text        NOT NULL,
    transaction_at  timestamptz NOT NULL,
    amount          numeric     NOT NULL
);

-- A payment's cancels[], seq being the position in it.
CREATE TABLE tosssim.cancels (
    payment_key       text        NOT NULL REFERENCES tosssim.payments (payment_key),
    seq               integer     NOT NULL CHECK (seq >= 0),
    transaction_key   text        NOT NULL UNIQUE REFERENCES tosssim.transactions (transaction_key),
    cancel_reason     text        NOT NULL,
    canceled_at       timestamptz NOT NULL,
    cancel_amount     numeric     NOT NULL CHECK (cancel_amount > 0),
    refundable_amount numeric     NOT NULL CHECK (refundable_amount >= 0),
    PRIMARY KEY (payment_key, seq)
);

-- Executed confirms per orderId of the request body (Simulator.ConfirmsFor).
CREATE TABLE tosssim.confirm_counts (
    order_id text    PRIMARY KEY,
    confirms integer NOT NULL CHECK (confirms > 0)
);

-- The first answer under each idempotency scope, replayed byte for byte within the TTL. The
-- scope is a SHA-256 of key, secret key, method and path: no secret key is kept here.
CREATE TABLE tosssim.idempotent_answers (
    scope     text        PRIMARY KEY,
    first_use timestamptz NOT NULL,
    status    integer     NOT NULL,
    body      bytea       NOT NULL
);

-- +goose Down
DROP TABLE tosssim.idempotent_answers;
DROP TABLE tosssim.confirm_counts;
DROP TABLE tosssim.cancels;
DROP TABLE tosssim.transactions;
DROP TABLE tosssim.payments;
