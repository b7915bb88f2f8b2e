package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// TestDevSeed: a small seed gives read models that agree with the log (a payment row per
// payment, balanced books, statuses of every kind), and the seed refuses a database with a live
// merchant unless forced.
func TestDevSeed(t *testing.T) {
	dbURL := emptyDatabase(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	getenv := envFrom(map[string]string{"DATABASE_URL": dbURL, "SECRETS_KEY": base64.StdEncoding.EncodeToString(key)})
	var out, errOut bytes.Buffer
	cli := func(args ...string) error {
		out.Reset()
		errOut.Reset()
		return run(ctx, args, getenv, strings.NewReader(""), &out, &errOut)
	}
	if err := cli("migrate"); err != nil {
		t.Fatal(err)
	}
	if err := cli("dev", "seed", "--payments", "300", "--days", "20", "--seed", "7", "--until", "2026-11-30"); err != nil {
		t.Fatalf("seed: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "appended 300 payments") || !strings.Contains(out.String(), "read models rebuilt") {
		t.Errorf("output: %q", out.String())
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n, statuses, refunded, review int
	var first, last time.Time
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT status), count(*) FILTER (WHERE canceled_amount > 0),
		count(*) FILTER (WHERE needs_review), min(created_at), max(created_at) FROM payment_orders WHERE merchant_id = 'seed-shop'`).
		Scan(&n, &statuses, &refunded, &review, &first, &last); err != nil {
		t.Fatal(err)
	}
	if n != 300 || statuses < 5 || refunded == 0 {
		t.Errorf("payment_orders: %d rows, %d statuses, %d refunded; want 300, at least 5, some", n, statuses, refunded)
	}
	if from, until := time.Date(2026, 11, 10, 0, 0, 0, 0, domain.KST), time.Date(2026, 11, 30, 0, 0, 0, 0, domain.KST); first.Before(from) || !last.Before(until) {
		t.Errorf("created from %s to %s, want within 2026-11-10..29 KST", first, last)
	}
	tb, err := queries.NewLedger(pool).TrialBalance(ctx, "seed-shop", time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !tb.TotalDebits.Equal(tb.TotalCredits) || tb.TotalDebits.IsZero() {
		t.Errorf("trial balance: debits %s, credits %s", tb.TotalDebits, tb.TotalCredits)
	}
	var settled int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM journal_entries WHERE merchant_id = 'seed-shop' AND kind = 'settlement'`).Scan(&settled); err != nil || settled == 0 {
		t.Errorf("%d settlement entries (%v), want some", settled, err)
	}

	// A merchant with a live Toss key: this is production; no seed without --force.
	if err := cli("merchants", "create", "--name", "Real shop", "--id", "real-shop", "--toss-secret-key", "live_sk_0123456789abcdefghij"); err != nil {
		t.Fatalf("create a live merchant: %v\n%s", err, errOut.String())
	}
	err = cli("dev", "seed", "--payments", "10", "--merchant", "another-shop", "--seed", "8")
	if err == nil || !strings.Contains(err.Error(), "real-shop has live keys") {
		t.Fatalf("seed beside a live merchant: %v, want a refusal naming real-shop", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM event_streams WHERE stream_id = 'merchant-another-shop'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused seed created its merchant (%d, %v)", n, err)
	}
	if err := cli("dev", "seed", "--payments", "10", "--merchant", "another-shop", "--seed", "8", "--force"); err != nil {
		t.Fatalf("seed --force: %v\n%s", err, errOut.String())
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payment_orders WHERE merchant_id = 'another-shop'`).Scan(&n); err != nil || n != 10 {
		t.Fatalf("after seed --force: %d payments (%v), want 10", n, err)
	}
}
