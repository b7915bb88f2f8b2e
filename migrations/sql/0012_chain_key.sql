-- +goose Up
-- The optional chain key (AUDIT_CHAIN_KEY, eventstore.WithChainKey). A keyed store hashes the
-- events it appends with HMAC-SHA256(key, prev_hash || canonical bytes) instead of plain
-- SHA-256, so someone with database access but without the key cannot recompute hashes after an
-- edit. Canonical bytes are unchanged.

-- Which function made each event's hash. Events stored before this migration were all hashed
-- with plain SHA-256, which the default says; adding a column with a constant default rewrites
-- no row, so the append-only trigger is not involved.
ALTER TABLE events
    ADD COLUMN hash_alg text NOT NULL DEFAULT 'sha256' CHECK (hash_alg IN ('sha256', 'hmac-sha256'));

-- One row per chain key that keyed this history: after the transaction activated_after, every
-- event must be keyed (the downgrade rule of eventstore.Verifier). mac is HMAC(key, label ||
-- key_id || activated_after), so the row cannot be forged or moved without the key.
CREATE TABLE event_chain_keys (
    key_id          text        PRIMARY KEY, -- eventstore.ChainKey.ID: names the key, reveals nothing
    activated_after xid8        NOT NULL,
    mac             bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER event_chain_keys_no_update_delete
    BEFORE UPDATE OR DELETE ON event_chain_keys
    FOR EACH ROW EXECUTE FUNCTION append_only();

CREATE TRIGGER event_chain_keys_no_truncate
    BEFORE TRUNCATE ON event_chain_keys
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- +goose Down
DROP TABLE event_chain_keys;
DROP FUNCTION append_only();
ALTER TABLE events DROP COLUMN hash_alg;
