package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/metrics"
	"github.com/paymentledger/ledger/projections"
)

var ctx = context.Background()

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// order inserts a payment_orders row with the columns the backlog depends on.
func order(t *testing.T, pool *pgxpool.Pool, id, status string, cancelPending, needsReview bool) {
	t.Helper()
	exec(t, pool, `INSERT INTO payment_orders (order_id, merchant_id, buyer_id, order_name, currency, total_amount,
			status, expires_at, created_at, updated_at, version, cancel_pending, needs_review)
		VALUES ($1, 'm', 'b', 'n', 'KRW', 1000, $2, now(), now(), now(), 1, $3, $4)`,
		id, status, cancelPending, needsReview)
}

func delivery(t *testing.T, pool *pgxpool.Pool, key, status string, at time.Time) {
	t.Helper()
	exec(t, pool, `INSERT INTO webhook_inbox (dedupe_key, order_id, headers, body, received_at, status, reject_reason)
		VALUES ($1, 'o', '{}', '\x7b7d', $2, $3, CASE WHEN $3 = 'rejected' THEN 'bad' END)`, key, at, status)
}

// appendEvents appends n events to stream, in one transaction.
func appendEvents(t *testing.T, store *eventstore.Postgres, stream string, n int) {
	t.Helper()
	var data []eventstore.EventData
	for i := range n {
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: "TestEvent", SchemaVersion: 1,
			Data: fmt.Appendf(nil, `{"n":%d}`, i), Metadata: eventstore.Metadata{MerchantID: "m", Actor: "system"}})
	}
	if _, err := store.Append(ctx, stream, eventstore.Any, data); err != nil {
		t.Fatal(err)
	}
}

func checkpoint(t *testing.T, pool *pgxpool.Pool, name string, pos eventstore.Position) {
	t.Helper()
	exec(t, pool, `INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position`, name, pos.String())
}

func TestDatabaseGaugesOnAnEmptyDatabase(t *testing.T) {
	pool := pgtest.NewPool(t)
	text := scrape(t, metrics.New(pool).Handler())
	for _, series := range []string{
		"paymentledger_recovery_backlog",
		"paymentledger_needs_review",
		"paymentledger_webhook_inbox_pending",
		"paymentledger_webhook_inbox_oldest_pending_seconds",
		// Known projections are reported before their first checkpoint.
		`paymentledger_projection_lag_events{projection="payment_orders"}`,
		`paymentledger_projection_lag_events{projection="ledger"}`,
		`paymentledger_projection_lag_seconds{projection="payment_orders"}`,
		`paymentledger_projection_lag_seconds{projection="ledger"}`,
		`paymentledger_projection_parked_events{projection="payment_orders"}`,
		`paymentledger_projection_parked_events{projection="ledger"}`,
	} {
		wantValue(t, text, series, 0)
	}
	wantValue(t, text, `promhttp_metric_handler_errors_total{cause="gathering"}`, 0)
}

func TestDatabaseGauges(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)

	// Recovery: three to settle, two waiting for a person, one settled.
	order(t, pool, "o-unknown", "UNKNOWN", false, false)
	order(t, pool, "o-executing", "EXECUTING", false, false)
	order(t, pool, "o-cancel", "SUCCESS", true, false)
	order(t, pool, "o-exhausted", "UNKNOWN", false, true)
	order(t, pool, "o-cancel-exhausted", "SUCCESS", true, true)
	order(t, pool, "o-done", "SUCCESS", false, false)

	// The log: five events in three transactions.
	appendEvents(t, store, "payment-a", 2)
	appendEvents(t, store, "payment-b", 1)
	appendEvents(t, store, "payment-a", 2)
	var events []eventstore.RecordedEvent
	// Only events below the oldest running transaction are readable (and counted); another
	// session on the server may hold that horizon back for a moment.
	testenv.WaitFor(t, 10*time.Second, "the five events to be readable", func() bool {
		var err error
		events, err = store.ReadAll(ctx, eventstore.Start, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(events) == 5
	})
	checkpoint(t, pool, "payment_orders", events[1].Position) // three behind
	checkpoint(t, pool, "search", events[4].Position)         // caught up
	// ledger: no checkpoint, all five behind
	exec(t, pool, `INSERT INTO relay_checkpoints (name, position) VALUES ('nats', $1)`, events[3].Position.String()) // one behind
	// relay "other": no checkpoint, all five behind

	now := events[4].RecordedAt.Add(100 * time.Second)
	clk := &clock{t: now}

	// Webhooks: two pending (the oldest 90 s old), older rows in other states do not count.
	delivery(t, pool, "d1", "pending", now.Add(-90*time.Second))
	delivery(t, pool, "d2", "pending", now.Add(-10*time.Second))
	delivery(t, pool, "d3", "processed", now.Add(-time.Hour))
	delivery(t, pool, "d4", "failed", now.Add(-time.Hour))
	delivery(t, pool, "d5", "rejected", now.Add(-time.Hour))

	m := metrics.New(pool, metrics.WithClock(clk.Now), metrics.WithRelays("nats", "other"))
	text := scrape(t, m.Handler())
	wantValue(t, text, "paymentledger_recovery_backlog", 3)
	wantValue(t, text, "paymentledger_needs_review", 2)
	wantValue(t, text, "paymentledger_webhook_inbox_pending", 2)
	wantValue(t, text, "paymentledger_webhook_inbox_oldest_pending_seconds", 90)
	for _, c := range []struct {
		projection string
		events     float64
		seconds    float64
	}{
		{"payment_orders", 3, now.Sub(events[2].RecordedAt).Seconds()},
		{"ledger", 5, now.Sub(events[0].RecordedAt).Seconds()},
		{"search", 0, 0},
	} {
		wantValue(t, text, `paymentledger_projection_lag_events{projection="`+c.projection+`"}`, c.events)
		wantValue(t, text, `paymentledger_projection_lag_seconds{projection="`+c.projection+`"}`, c.seconds)
	}
	wantValue(t, text, `paymentledger_relay_lag_events{relay="nats"}`, 1)
	wantValue(t, text, `paymentledger_relay_lag_seconds{relay="nats"}`, now.Sub(events[4].RecordedAt).Seconds())
	wantValue(t, text, `paymentledger_relay_lag_events{relay="other"}`, 5)
	if strings.Contains(text, `projection="nats"`) || strings.Contains(text, `projection="relay`) {
		t.Errorf("a relay's lag reported as a projection's:\n%s", text)
	}

	// Caught up, and a clock behind the writers' never makes an age negative.
	checkpoint(t, pool, "payment_orders", events[4].Position)
	exec(t, pool, `UPDATE webhook_inbox SET status = 'processed' WHERE dedupe_key = 'd1'`)
	clk.Set(events[0].RecordedAt.Add(-time.Hour))
	text = scrape(t, m.Handler())
	wantValue(t, text, `paymentledger_projection_lag_events{projection="payment_orders"}`, 0)
	wantValue(t, text, `paymentledger_projection_lag_seconds{projection="payment_orders"}`, 0)
	wantValue(t, text, `paymentledger_projection_lag_seconds{projection="ledger"}`, 0)
	wantValue(t, text, "paymentledger_webhook_inbox_pending", 1)
	wantValue(t, text, "paymentledger_webhook_inbox_oldest_pending_seconds", 0)
}

func TestProjectionLagIsCapped(t *testing.T) {
	pool := pgtest.NewPool(t)
	exec(t, pool, `INSERT INTO event_streams (stream_id, version, last_hash) VALUES ('bulk', 100005, '\x00')`)
	// Rows straight into the table: 100005 appends through the store would take minutes.
	exec(t, pool, `INSERT INTO events (stream_id, version, event_id, event_type, schema_version, data, metadata,
			recorded_at, prev_hash, hash)
		SELECT 'bulk', g, gen_random_uuid(), 'TestEvent', 1, '{}', '{}', now(), '\x00', '\x00'
		FROM generate_series(1, 100005) g`)
	store := eventstore.NewPostgres(pool)
	testenv.WaitFor(t, 10*time.Second, "the bulk insert to be readable", func() bool {
		head, err := store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return head != eventstore.Start
	})
	text := scrape(t, metrics.New(pool, metrics.WithProjections("fresh")).Handler())
	wantValue(t, text, `paymentledger_projection_lag_events{projection="fresh"}`, 100_000)
	absent(t, text, `paymentledger_projection_lag_events{projection="ledger"}`) // replaced by WithProjections
}

func TestDatabaseFailureIsReportedAndTheRestServed(t *testing.T) {
	pool := pgtest.NewPool(t)
	m := metrics.New(pool)
	m.AuthFailure("missing")
	pool.Close() // every query now fails at once

	text := scrape(t, m.Handler())
	absent(t, text, "paymentledger_recovery_backlog")
	absent(t, text, "paymentledger_projection_lag")
	wantValue(t, text, `paymentledger_auth_failures_total{reason="missing"}`, 1)
	// The handler counts a failure after the scrape that saw it.
	wantValue(t, scrape(t, m.Handler()), `promhttp_metric_handler_errors_total{cause="gathering"}`, 1)
}

func TestDatabaseSampleTimesOut(t *testing.T) {
	pool := pgtest.NewPool(t)
	m := metrics.New(pool)
	metrics.SetDBTimeout(m, 50*time.Millisecond)

	// Another session holds a lock the sample has to wait for, until the test ends.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE webhook_inbox IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	defer tx.Rollback(ctx) //nolint:errcheck

	absent(t, scrape(t, m.Handler()), "paymentledger_recovery_backlog")
	wantValue(t, scrape(t, m.Handler()), `promhttp_metric_handler_errors_total{cause="gathering"}`, 1)
	if _, err := m.Registry().Gather(); err == nil || !strings.Contains(err.Error(), "sample the database") ||
		!strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("Gather error %v, want the sample's timeout", err)
	}
}

// A projection runner parks an event its rules cannot decode and holds the stream's next one:
// the gauge counts both, for that projection only.
func TestParkedEventsGauge(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	// A schema version this build cannot decode, then a later event of the same stream.
	for _, v := range []int{99, 1} {
		if _, err := store.Append(ctx, "payment-newer", eventstore.Any, []eventstore.EventData{{ID: uuid.New(), Type: "CheckoutCreated",
			SchemaVersion: v, Data: []byte(`{}`), Metadata: eventstore.Metadata{MerchantID: "m", Actor: "system"}}}); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	r := projections.NewRunner(pool, store, projections.PaymentOrders{}, nil)
	r.MaxAttempts, r.RetryDelay = 1, time.Millisecond
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(runCtx) })
	defer func() { cancel(); wg.Wait() }()
	// The last event, readable or not yet (another session may hold the horizon back).
	var head eventstore.Position
	if err := pool.QueryRow(ctx, `SELECT transaction_id, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&head.Transaction, &head.Sequence); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "payment_orders at the head", func() bool {
		pos, err := projections.Checkpoint(ctx, pool, projections.PaymentOrdersName)
		return err == nil && pos == head
	})

	text := scrape(t, metrics.New(pool).Handler())
	wantValue(t, text, `paymentledger_projection_parked_events{projection="payment_orders"}`, 2)
	wantValue(t, text, `paymentledger_projection_parked_events{projection="ledger"}`, 0)
	wantValue(t, text, `paymentledger_projection_lag_events{projection="payment_orders"}`, 0)
}
