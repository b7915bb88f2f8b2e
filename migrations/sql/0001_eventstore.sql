-- +goose Up
-- The event store: one append-only table of immutable events, one row per stream holding the
-- stream's head (version and hash), used as the per-stream lock for appends.

CREATE TABLE event_streams (
    stream_id  text        PRIMARY KEY,
    version    bigint      NOT NULL CHECK (version >= 0),
    last_hash  bytea       NOT NULL,
    -- The transaction that appended the stream's last events (NULL before the first). An append
    -- must run in a newer transaction, or its events would sort before them in the global log.
    last_transaction_id xid8,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    -- position: allocated at insert time; NOT the order in which rows become visible.
    position        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- transaction_id: the writing transaction (xid8). Subscribers read rows in
    -- (transaction_id, position) order and only below pg_snapshot_xmin(pg_current_snapshot()),
    -- so a transaction that commits late can never be skipped.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL REFERENCES event_streams (stream_id),
    version         bigint      NOT NULL CHECK (version >= 1),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    -- json, not jsonb: the exact bytes are kept, so the hash chain can be re-verified.
    data            json        NOT NULL,
    metadata        json        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX events_global_order ON events (transaction_id, position);

-- +goose StatementBegin
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- +goose Down
DROP TABLE events;
DROP FUNCTION events_append_only();
DROP TABLE event_streams;
