-- +goose Up
-- Events a projection runner set aside instead of stopping every merchant's read model behind
-- one bad event (projections/parked.go). Per projection and stream:
--
--   - at most one 'poison' row: the event whose Apply kept failing (attempts times, the last
--     error kept), the first of the stream the projection did not apply;
--   - 'held' rows: the stream's later events, recorded in log order without being applied, so
--     that the stream's rows are never built from a history with a hole in it.
--
-- The rows are written in the transaction that moves the projection's checkpoint past them, so
-- every row is at or before its projection's checkpoint. Redrive applies a stream's rows in
-- stream order and deletes them in one transaction; a replay swapped in deletes its
-- projection's rows (its tables hold every event's effect).
CREATE TABLE projection_parked (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection     text        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('poison', 'held')),
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL CHECK (stream_version >= 1),
    position       text        NOT NULL, -- eventstore.Position, as in projection_checkpoints
    event_type     text        NOT NULL,
    -- poison: the last error, cut to 2000 characters; held: NULL (never tried)
    error          text        CHECK (char_length(error) <= 2000),
    attempts       integer     NOT NULL CHECK (attempts >= 0),
    parked_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'poison') = (error IS NOT NULL)),
    UNIQUE (projection, event_id),
    UNIQUE (projection, stream_id, stream_version)
);
CREATE UNIQUE INDEX projection_parked_one_poison ON projection_parked (projection, stream_id) WHERE state = 'poison';

-- +goose Down
DROP TABLE projection_parked;
