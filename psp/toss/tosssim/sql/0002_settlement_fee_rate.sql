-- +goose Up
-- A payment's own settlement fee rate (SessionRequest.SettlementFeeRate,
-- Simulator.SetSettlementFeeRate): its GET /v1/settlements rows use it instead of the contract
-- rate of Config.Settlement. NULL means the contract rate, so payments saved before this
-- column keep theirs.
ALTER TABLE tosssim.payments
    ADD COLUMN settlement_fee_rate numeric
        CHECK (settlement_fee_rate >= 0 AND settlement_fee_rate < 1);

-- +goose Down
ALTER TABLE tosssim.payments DROP COLUMN settlement_fee_rate;
