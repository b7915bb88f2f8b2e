-- +goose Up
-- Read models. Each projection keeps its checkpoint here, written in the same transaction as
-- the read-model rows it covers.
CREATE TABLE projection_checkpoints (
    name       text        PRIMARY KEY,
    position   text        NOT NULL, -- eventstore.Position in "transaction/sequence" form
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per payment.
CREATE TABLE payment_orders (
    order_id             text        PRIMARY KEY,
    merchant_id          text        NOT NULL,
    buyer_id             text        NOT NULL,
    order_name           text        NOT NULL,
    currency             text        NOT NULL,
    total_amount         numeric     NOT NULL CHECK (total_amount > 0),
    status               text        NOT NULL,
    payment_key          text,
    method               text,
    attempt              integer     NOT NULL DEFAULT 0,
    approved_at          timestamptz,
    last_transaction_key text,
    failure_code         text,
    failure_message      text,
    failure_source       text,
    expires_at           timestamptz NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    -- the stream version this row reflects: events at or below it are already applied
    version              bigint      NOT NULL
);
CREATE INDEX payment_orders_newest ON payment_orders (merchant_id, created_at DESC, order_id DESC);
CREATE INDEX payment_orders_status ON payment_orders (merchant_id, status, created_at DESC);

-- One row per order line (a seller's part of an order), with the payment's status copied for
-- back-office filters by seller.
CREATE TABLE payment_order_lines (
    order_id    text    NOT NULL REFERENCES payment_orders (order_id),
    line_id     text    NOT NULL,
    seller_id   text    NOT NULL,
    product_id  text    NOT NULL,
    amount      numeric NOT NULL CHECK (amount > 0),
    status      text    NOT NULL,
    PRIMARY KEY (order_id, line_id)
);
CREATE INDEX payment_order_lines_seller ON payment_order_lines (seller_id, order_id);

-- +goose Down
DROP TABLE payment_order_lines;
DROP TABLE payment_orders;
DROP TABLE projection_checkpoints;
