-- +goose Up
-- Where each relay of the event store to a message bus stands: the global-log position of the
-- last event the bus acknowledged (natsbus.Relay; name 'nats'). Kept apart from
-- projection_checkpoints because a relay is not a projection: replay never rebuilds it.
CREATE TABLE relay_checkpoints (
    name       text        PRIMARY KEY,
    position   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE relay_checkpoints;
