-- +goose Up
-- A seller's wallet movements are read a page at a time, newest first, by the keyset
-- (occurred_at, id) of queries.WalletMovements' cursor: with id at the end of the index, a page
-- after a cursor is one backward range scan of the index, however deep, and ties on
-- occurred_at (a payout's two movements) need no sort. The wallet's sums (queries.Wallet) read
-- the same index's prefix, so it replaces 0008's instead of sitting beside it.
--
-- Built in the migration's transaction, like 0021's: the ledger projection's writes wait for the
-- build; reads go on.
CREATE INDEX wallet_movements_seller_keyset ON wallet_movements (merchant_id, seller_id, currency, occurred_at, id);
DROP INDEX wallet_movements_merchant_seller;

-- +goose Down
CREATE INDEX wallet_movements_merchant_seller ON wallet_movements (merchant_id, seller_id, currency, occurred_at);
DROP INDEX wallet_movements_seller_keyset;
