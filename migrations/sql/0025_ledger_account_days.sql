-- +goose Up
-- Balances and the trial balance as of a moment (queries.Ledger.balances) summed every posting
-- of the merchant up to asOf: 18 million rows and 1.2 s at a million payments. As with the daily
-- report (0021), the ledger projection keeps a rollup: each account's debits and credits per
-- merchant, currency and KST day (projections.accountDayDeltas), part of the ledger read model,
-- written in the same transaction as the entries' postings and rebuilt by a replay. A balance
-- as of asOf is then the days before asOf's KST day from here, plus that day's postings up to
-- asOf from postings_merchant_time.
--
-- Filled here from the postings already booked, by the same rule: a posting counts on the KST
-- calendar day of its occurred_at. Built in the migration's transaction: the ledger runner
-- waits for the backfill (it reads every posting once); reads go on.
CREATE TABLE ledger_account_days (
    merchant_id  text    NOT NULL,
    account      text    NOT NULL,
    account_type text    NOT NULL,
    currency     text    NOT NULL,
    day          date    NOT NULL, -- a KST calendar day
    debit        numeric NOT NULL, -- sum of the account's posting debits that day
    credit       numeric NOT NULL, -- and of its credits
    PRIMARY KEY (merchant_id, currency, account, day)
);
INSERT INTO ledger_account_days (merchant_id, account, account_type, currency, day, debit, credit)
SELECT merchant_id, account, account_type, currency, (occurred_at AT TIME ZONE 'Asia/Seoul')::date, sum(debit), sum(credit)
FROM postings
GROUP BY 1, 2, 3, 4, 5;

-- +goose Down
DROP TABLE ledger_account_days;
