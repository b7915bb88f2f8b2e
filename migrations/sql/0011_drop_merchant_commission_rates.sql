-- +goose Up
-- Commission rates are events now (CommissionRateChanged on the merchant's stream, set with
-- paymentctl merchants set-commission); the ledger keeps the rates it applied in
-- ledger_commission_rates. The old table was written by paymentctl commission set and is read by
-- nothing. A deployment that had rates in it sets them again as events.
DROP TABLE merchant_commission_rates;

-- +goose Down
CREATE TABLE merchant_commission_rates (
    merchant_id text        PRIMARY KEY,
    rate        numeric     NOT NULL CHECK (rate >= 0 AND rate < 1),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
