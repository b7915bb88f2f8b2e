-- +goose Up
-- The back office's sign-in sessions (package web). A session is a random 256-bit token in the
-- browser's cookie; only its SHA-256 is stored, so this table's contents open no session. It
-- names the API key the staff member signed in with (never the key itself): every request
-- re-checks that key, so revoking it ends its sessions. A session ends after idle time without a
-- request (last_seen_at) or at expires_at, whichever comes first.
CREATE TABLE web_sessions (
    token_hash   bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    merchant_id  text        NOT NULL,
    key_id       text        NOT NULL,
    scopes       text[]      NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

-- Sign-in sweeps the ended sessions; sign-out of every session of a key finds them.
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);
CREATE INDEX web_sessions_key ON web_sessions (merchant_id, key_id);

-- +goose Down
DROP TABLE web_sessions;
