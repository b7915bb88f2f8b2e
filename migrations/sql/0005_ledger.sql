-- +goose Up
-- Ledger read model (projection "ledger"): journal entries, postings and seller wallet
-- movements, plus the checkout lines the projection keeps for itself (it never reads another
-- projection's tables, which may lag).

-- Commission per merchant as a fraction (0.1 = 10%). No row: 0. The rate is captured on the
-- order when the ledger first sees its checkout (ledger_orders.commission_rate).
CREATE TABLE merchant_commission_rates (
    merchant_id text        PRIMARY KEY,
    rate        numeric     NOT NULL CHECK (rate >= 0 AND rate < 1),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_orders (
    order_id        text    PRIMARY KEY,
    merchant_id     text    NOT NULL,
    currency        text    NOT NULL,
    total_amount    numeric NOT NULL,
    commission_rate numeric NOT NULL CHECK (commission_rate >= 0 AND commission_rate < 1)
);

-- One row per checkout line: its commission and what has been canceled of both.
CREATE TABLE ledger_order_lines (
    order_id            text    NOT NULL REFERENCES ledger_orders (order_id),
    seq                 integer NOT NULL, -- the line's place in the checkout (allocation order)
    line_id             text    NOT NULL,
    seller_id           text    NOT NULL,
    amount              numeric NOT NULL CHECK (amount > 0),
    commission          numeric NOT NULL CHECK (commission >= 0 AND commission < amount),
    canceled            numeric NOT NULL DEFAULT 0 CHECK (canceled >= 0 AND canceled <= amount),
    commission_reversed numeric NOT NULL DEFAULT 0 CHECK (commission_reversed >= 0 AND commission_reversed <= commission),
    PRIMARY KEY (order_id, seq),
    UNIQUE (order_id, line_id)
);

-- One entry per money-moving event; event_id UNIQUE makes the projection idempotent per event.
CREATE TABLE journal_entries (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    order_id    text        NOT NULL,
    merchant_id text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('approval', 'cancel', 'settlement')),
    currency    text        NOT NULL,
    transaction_key text,           -- the PSP transaction the entry records (approval, cancel, settled row)
    occurred_at timestamptz NOT NULL, -- the event time
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_order ON journal_entries (order_id);

CREATE TABLE postings (
    id           bigserial   PRIMARY KEY,
    entry_id     bigint      NOT NULL REFERENCES journal_entries (id) ON DELETE CASCADE,
    account      text        NOT NULL,
    account_type text        NOT NULL CHECK (account_type IN ('asset', 'liability', 'revenue', 'expense')),
    seller_id    text,
    line_id      text,
    debit        numeric     NOT NULL DEFAULT 0 CHECK (debit >= 0),
    credit       numeric     NOT NULL DEFAULT 0 CHECK (credit >= 0),
    currency     text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    CHECK ((debit > 0) <> (credit > 0))
);
CREATE INDEX postings_entry ON postings (entry_id);
CREATE INDEX postings_account ON postings (account, currency, occurred_at);

-- Every entry balances at commit: a deferred constraint trigger re-checks each entry touched
-- by the transaction (its postings inserted, updated or deleted, or the entry inserted).
-- +goose StatementBegin
CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
    n integer;
    d numeric;
    c numeric;
    bad_currency integer;
BEGIN
    IF TG_TABLE_NAME = 'journal_entries' THEN
        eid := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        eid := OLD.entry_id;
    ELSE
        eid := NEW.entry_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM journal_entries WHERE id = eid) THEN
        RETURN NULL; -- the entry itself was deleted (a rebuild): nothing left to balance
    END IF;
    SELECT count(*), COALESCE(sum(p.debit), 0), COALESCE(sum(p.credit), 0),
           count(*) FILTER (WHERE p.currency <> e.currency)
      INTO n, d, c, bad_currency
      FROM journal_entries e LEFT JOIN postings p ON p.entry_id = e.id
     WHERE e.id = eid AND p.id IS NOT NULL;
    IF n < 2 OR d <> c OR bad_currency > 0 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced: % postings, debits %, credits %, % in another currency', eid, n, d, c, bad_currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER postings_balanced
    AFTER INSERT OR UPDATE OR DELETE ON postings
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();

CREATE CONSTRAINT TRIGGER journal_entries_balanced
    AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();

-- Seller wallets. Each row moves a seller's money into or out of one bucket:
--   approval:   pending   + net of the line
--   cancel:     pending   − net reversed on the line
--   settlement of transaction k: for every approval/cancel movement of k (same order, same
--               line), pending − x and available + x, where x is that movement's amount; so the
--               approval's settlement makes the net available and a cancel's (negative) settlement
--               moves the reversed net back out of available into pending.
-- pending + available of a seller always equals the balance of seller_payable:<seller>.
CREATE TABLE wallet_movements (
    id              bigserial   PRIMARY KEY,
    entry_id        bigint      NOT NULL REFERENCES journal_entries (id) ON DELETE CASCADE,
    seller_id       text        NOT NULL,
    order_id        text        NOT NULL,
    line_id         text        NOT NULL,
    transaction_key text,
    kind            text        NOT NULL CHECK (kind IN ('approval', 'cancel', 'settlement')),
    bucket          text        NOT NULL CHECK (bucket IN ('pending', 'available')),
    amount          numeric     NOT NULL,
    currency        text        NOT NULL,
    occurred_at     timestamptz NOT NULL
);
CREATE INDEX wallet_movements_seller ON wallet_movements (seller_id, currency, occurred_at);
CREATE INDEX wallet_movements_tx ON wallet_movements (order_id, transaction_key);

-- +goose Down
DROP TABLE wallet_movements;
DROP TABLE postings;
DROP TABLE journal_entries;
DROP FUNCTION ledger_check_entry_balanced();
DROP TABLE ledger_order_lines;
DROP TABLE ledger_orders;
DROP TABLE merchant_commission_rates;
