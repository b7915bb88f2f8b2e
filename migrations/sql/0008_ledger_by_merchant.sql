-- +goose Up
-- The ledger by merchant, with settlements at Toss's own dates and commission from events.
--
--   - Every merchant has its own books: postings and wallet movements carry the merchant of
--     their order, and the indexes lead with it, so a query reads one merchant's rows only.
--     Sellers are a merchant's sub-merchants: the same seller id under two merchants is two
--     wallets.
--   - A settlement row books two entries (kind 'settlement' at the end of its soldDate, kind
--     'payout' at the start of its paidOutDate), so one event may have one entry per kind.
--     Wallets move from pending to available with the payout (wallet movement kind 'payout').
--   - The commission rate in force at each checkout comes from CommissionRateChanged events,
--     which the projection applies in log order into ledger_commission_rates; the ledger no
--     longer reads merchant_commission_rates, so a rebuild books every order as it was booked
--     live.
--
-- The read model is emptied and its checkpoint removed: the projection rebuilds it from the
-- event log under these rules (the new columns need no default because no row is left).

TRUNCATE wallet_movements, postings, journal_entries, ledger_order_lines, ledger_orders;
DELETE FROM projection_checkpoints WHERE name = 'ledger';

-- The rate each merchant's next checkout is booked at: the last CommissionRateChanged the
-- ledger has applied (no row: 0). Part of the ledger read model, rebuilt with it.
CREATE TABLE ledger_commission_rates (
    merchant_id text        PRIMARY KEY,
    rate        numeric     NOT NULL CHECK (rate >= 0 AND rate < 1),
    changed_at  timestamptz NOT NULL, -- the event's time
    event_id    uuid        NOT NULL  -- the CommissionRateChanged that set it
);

ALTER TABLE journal_entries
    DROP CONSTRAINT journal_entries_event_id_key,
    ADD CONSTRAINT journal_entries_event_kind_key UNIQUE (event_id, kind),
    DROP CONSTRAINT journal_entries_kind_check,
    ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN ('approval', 'cancel', 'settlement', 'payout'));
CREATE INDEX journal_entries_merchant ON journal_entries (merchant_id, occurred_at);

ALTER TABLE postings ADD COLUMN merchant_id text NOT NULL;
DROP INDEX postings_account;
-- balances and trial balance as of a moment
CREATE INDEX postings_merchant_time ON postings (merchant_id, occurred_at);
-- one account's postings, in the order the postings page reads them
CREATE INDEX postings_merchant_account ON postings (merchant_id, account, occurred_at, id);

ALTER TABLE wallet_movements
    ADD COLUMN merchant_id text NOT NULL,
    DROP CONSTRAINT wallet_movements_kind_check,
    ADD CONSTRAINT wallet_movements_kind_check CHECK (kind IN ('approval', 'cancel', 'payout'));
DROP INDEX wallet_movements_seller;
CREATE INDEX wallet_movements_merchant_seller ON wallet_movements (merchant_id, seller_id, currency, occurred_at);

-- An entry balances within one merchant's books at one moment: the deferred check of 0005 now
-- also refuses postings whose merchant or time differ from their entry's, so every merchant's
-- trial balance is zero as of any moment, not only the sum over all merchants at the end.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
    n integer;
    d numeric;
    c numeric;
    bad_currency integer;
    bad_merchant integer;
    bad_time integer;
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
           count(*) FILTER (WHERE p.currency <> e.currency),
           count(*) FILTER (WHERE p.merchant_id <> e.merchant_id),
           count(*) FILTER (WHERE p.occurred_at <> e.occurred_at)
      INTO n, d, c, bad_currency, bad_merchant, bad_time
      FROM journal_entries e LEFT JOIN postings p ON p.entry_id = e.id
     WHERE e.id = eid AND p.id IS NOT NULL;
    IF n < 2 OR d <> c OR bad_currency > 0 OR bad_merchant > 0 OR bad_time > 0 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced: % postings, debits %, credits %, % in another currency, % of another merchant, % at another time',
            eid, n, d, c, bad_currency, bad_merchant, bad_time
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
TRUNCATE wallet_movements, postings, journal_entries, ledger_order_lines, ledger_orders;
DELETE FROM projection_checkpoints WHERE name = 'ledger';
-- the check of 0005 as it was
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
DROP INDEX wallet_movements_merchant_seller;
ALTER TABLE wallet_movements
    DROP COLUMN merchant_id,
    DROP CONSTRAINT wallet_movements_kind_check,
    ADD CONSTRAINT wallet_movements_kind_check CHECK (kind IN ('approval', 'cancel', 'settlement'));
CREATE INDEX wallet_movements_seller ON wallet_movements (seller_id, currency, occurred_at);
DROP INDEX postings_merchant_account;
DROP INDEX postings_merchant_time;
ALTER TABLE postings DROP COLUMN merchant_id;
CREATE INDEX postings_account ON postings (account, currency, occurred_at);
DROP INDEX journal_entries_merchant;
ALTER TABLE journal_entries
    DROP CONSTRAINT journal_entries_kind_check,
    ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN ('approval', 'cancel', 'settlement')),
    DROP CONSTRAINT journal_entries_event_kind_key,
    ADD CONSTRAINT journal_entries_event_id_key UNIQUE (event_id);
DROP TABLE ledger_commission_rates;
