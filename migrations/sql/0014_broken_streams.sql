-- +goose Up
-- Streams whose stored history failed verification when a reader loaded it to act on it (an
-- event edited, a tail cut off, a head moved: eventstore.ReadVerified). No command acts on such a
-- stream; it is listed for review (GET /api/v1/payments?needsReview=true) and by paymentctl
-- audit. A row stays until a person has repaired the history and deletes it.
CREATE TABLE broken_streams (
    stream_id  text        PRIMARY KEY,
    detail     text        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE broken_streams;
