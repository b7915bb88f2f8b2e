package pgtest_test

import (
	"context"
	"testing"

	"github.com/paymentledger/ledger/internal/pgtest"
)

func TestNewPoolIsMigrated(t *testing.T) {
	pool := pgtest.NewPool(t)
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatalf("events table: %v", err)
	}
	if n != 0 {
		t.Fatalf("fresh database has %d events, want 0", n)
	}
}
