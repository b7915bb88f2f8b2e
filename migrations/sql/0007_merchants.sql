-- +goose Up
-- Merchants. Each merchant's stream (merchant-<id>) is the truth about it: registration, Toss
-- credentials, commission rate, API keys issued and revoked. These tables hold what must not or
-- need not be in the event log.

-- Each merchant's Toss secret key, sealed with AES-256-GCM under a key-encryption key kept
-- outside the database (SECRETS_KEY). TossCredentialsSet names the row by credential_id. A
-- rotation of the key-encryption key re-seals rows in place (kek_id says which key sealed one).
CREATE TABLE merchant_secrets (
    credential_id text        PRIMARY KEY,
    merchant_id   text        NOT NULL,
    kek_id        text        NOT NULL,
    nonce         bytea       NOT NULL,
    ciphertext    bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    resealed_at   timestamptz
);

-- Which merchant an API key id belongs to, written before the ApiKeyIssued event so a key works
-- the moment it is shown. Whether a key works (its secret's hash, scopes, revocation) is decided
-- from the merchant's stream, never from this table; a row whose event never got appended
-- names a key that does not exist and authenticates nothing.
CREATE TABLE api_key_index (
    key_id      text        PRIMARY KEY,
    merchant_id text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The merchants projection: one row per merchant, for lists and the settlement import.
CREATE TABLE merchants (
    merchant_id     text        PRIMARY KEY,
    name            text        NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('test', 'live')),
    toss_key_hint   text,
    commission_rate numeric     NOT NULL DEFAULT 0,
    registered_at   timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint      NOT NULL
);

-- +goose Down
DROP TABLE merchants;
DROP TABLE api_key_index;
DROP TABLE merchant_secrets;
