-- +goose Up
-- Signed seals of the event history (package audit). A seal is an ed25519 signature over a
-- checkpoint: a position of the global log, the number of streams and events up to it, and a
-- Merkle root over every stream's head (stream, version, hash) as of that position. The same
-- seals are appended to a JSON-lines file meant to be shipped off the machine.

-- seal is the seal exactly as signed and as written to the file (json keeps its bytes).
CREATE TABLE audit_seals (
    seq        bigint      PRIMARY KEY CHECK (seq >= 1),
    seal       json        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The leaves each seal changed: the head, as of the seal's position, of every stream that got
-- events since the previous seal (every stream for the first). A seal's full leaf set is the
-- latest leaf of each stream up to it. The changed leaves' own Merkle root is signed too, so
-- the audit can tell which stream differs from a seal, and whether these rows were altered.
CREATE TABLE audit_seal_leaves (
    seal_seq  bigint NOT NULL REFERENCES audit_seals (seq),
    stream_id text   NOT NULL,
    version   bigint NOT NULL CHECK (version >= 1),
    hash      bytea  NOT NULL,
    PRIMARY KEY (seal_seq, stream_id)
);
-- The audit reads the leaves stream by stream, in the same ranges as the events.
CREATE INDEX audit_seal_leaves_stream ON audit_seal_leaves (stream_id, seal_seq);

CREATE TRIGGER audit_seals_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_seals_no_truncate
    BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_seal_leaves_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_seal_leaves
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_seal_leaves_no_truncate
    BEFORE TRUNCATE ON audit_seal_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- +goose Down
DROP TABLE audit_seal_leaves;
DROP TABLE audit_seals;
