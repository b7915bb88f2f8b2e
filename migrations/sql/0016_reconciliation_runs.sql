-- +goose Up
-- One row per reconciliation run of one merchant (paymentctl reconcile, paymentd's daily run),
-- written when the run ends, failed runs included: the summary an auditor reads back
-- (GET /api/v1/reconciliation/runs). counts holds every category with its number of
-- differences found (matched: transactions that agree on both sides); unresolved is what the
-- run left for a person or a later --apply, applied what it corrected from Toss's truth.
CREATE TABLE reconciliation_runs (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id       text        NOT NULL,
    from_date         date        NOT NULL, -- KST calendar days, both included
    to_date           date        NOT NULL,
    apply             boolean     NOT NULL,
    trigger           text        NOT NULL CHECK (trigger IN ('cli', 'daily')),
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz NOT NULL,
    payments          integer     NOT NULL, -- our payment streams compared
    toss_transactions integer     NOT NULL,
    toss_settlements  integer     NOT NULL,
    counts            jsonb       NOT NULL,
    unresolved        integer     NOT NULL,
    applied           integer     NOT NULL,
    error             text        -- why the run stopped; NULL for a run that finished
);
CREATE INDEX reconciliation_runs_newest ON reconciliation_runs (merchant_id, started_at DESC, id DESC);

-- +goose Down
DROP TABLE reconciliation_runs;
