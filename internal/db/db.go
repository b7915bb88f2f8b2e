// Package db opens the PostgreSQL pool every component shares, set up the one way the project
// needs: NUMERIC columns as shopspring decimals and the event store's session settings.
package db

import (
	"context"
	"fmt"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
)

// Config returns a pool configuration for url with the decimal codec registered and the event
// store's session settings (eventstore.ConfigurePool explains them).
func Config(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("db: parse DATABASE_URL: %w", err)
	}
	eventstore.ConfigurePool(cfg)
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		pgxdecimal.Register(conn.TypeMap())
		return nil
	}
	return cfg, nil
}

// Open returns a pool for url (see Config). It does not wait for the server.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := Config(url)
	if err != nil {
		return nil, err
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}
