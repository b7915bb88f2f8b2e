-- +goose Up
-- A q of one or two characters matches the start of the order name: trigrams (0021's GIN index)
-- need three characters, and without an index a rare short q reads every payment of the
-- merchant (about a second at 1,000,000). lower() because the match is case-insensitive.
CREATE INDEX payment_orders_name_prefix ON payment_orders (merchant_id, lower(order_name) text_pattern_ops);

-- +goose Down
DROP INDEX payment_orders_name_prefix;
