package projections_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
)

var t0 = time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)

// appendPayment writes the events of one payment: checkout and, depending on n, a confirm and
// an outcome.
func appendPayment(t *testing.T, store eventstore.Store, n int) domain.OrderID {
	t.Helper()
	id := domain.OrderID(fmt.Sprintf("order-%04d", n))
	h := domain.EventHeader{OrderID: id, MerchantID: "m", At: t0.Add(time.Duration(n) * time.Second)}
	amount := decimal.NewFromInt(int64(1000 + n))
	events := []domain.Event{domain.CheckoutCreated{
		EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: amount,
		Lines:     []domain.Line{{LineID: "L1", SellerID: domain.SellerID(fmt.Sprintf("seller-%d", n%3)), ProductID: "p", Amount: amount}},
		ExpiresAt: h.At.Add(time.Hour),
	}}
	if n%2 == 0 {
		events = append(events, domain.ConfirmationStarted{EventHeader: h, PaymentKey: "k", Amount: amount, Attempt: 1, PSPIdempotencyKey: "x"})
		if n%4 == 0 {
			events = append(events, domain.PaymentApproved{EventHeader: h, PaymentKey: "k", ApprovedAt: h.At, Method: "카드", TotalAmount: amount, LastTransactionKey: "tx"})
		} else {
			events = append(events, domain.PaymentRejected{EventHeader: h, PaymentKey: "k", Code: "REJECT_CARD_PAYMENT", Message: "no", Source: domain.SourcePSP})
		}
	}
	var data []eventstore.EventData
	for _, e := range events {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b,
			Metadata: eventstore.Metadata{MerchantID: "m", Actor: "system"}})
	}
	if _, err := store.Append(context.Background(), domain.StreamName(id), eventstore.NoStream, data); err != nil {
		t.Fatal(err)
	}
	return id
}

// snapshot is the read model as text, for comparing two builds.
func snapshot(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT o.order_id, o.status, o.total_amount::text, COALESCE(o.failure_code, ''), o.version,
		       l.line_id, l.seller_id, l.amount::text, l.status
		FROM payment_orders o JOIN payment_order_lines l USING (order_id) ORDER BY o.order_id, l.line_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintln(vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func countRows(t *testing.T, pool *pgxpool.Pool, where string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM payment_orders WHERE `+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func run(t *testing.T, pool *pgxpool.Pool, store eventstore.Store) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := projections.NewRunner(pool, store, projections.PaymentOrders{}, nil)
	r.BatchSize = 7 // several batches
	r.RetryDelay = 20 * time.Millisecond
	wg.Go(func() { _ = r.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

func TestPaymentOrdersFollowsTheLogAndReplaysIdentically(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	const n = 40
	for i := range n / 2 {
		appendPayment(t, store, i)
	}
	stop := run(t, pool, store)
	for i := n / 2; i < n; i++ { // live events, while the runner is running
		appendPayment(t, store, i)
	}
	testenv.WaitFor(t, 15*time.Second, "all payments projected", func() bool {
		return countRows(t, pool, "true") == n && countRows(t, pool, "version = 1 AND status = 'NOT_STARTED' OR version = 3") == n
	})
	stop()
	if got := countRows(t, pool, "status = 'SUCCESS'"); got != 10 {
		t.Fatalf("%d SUCCESS rows, want 10", got)
	}
	if got := countRows(t, pool, "status = 'FAILURE' AND failure_code = 'REJECT_CARD_PAYMENT'"); got != 10 {
		t.Fatalf("%d FAILURE rows, want 10", got)
	}
	first := snapshot(t, pool)

	// Rebuild from position 0 over the existing rows: applying every event again changes nothing.
	if _, err := pool.Exec(context.Background(), `DELETE FROM projection_checkpoints`); err != nil {
		t.Fatal(err)
	}
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, pool, store)
	testenv.WaitFor(t, 15*time.Second, "the replay to reach the head", func() bool {
		pos, err := projections.Checkpoint(context.Background(), pool, "payment_orders")
		return err == nil && pos == head
	})
	stop()
	if again := snapshot(t, pool); again != first {
		t.Fatalf("replay changed the read model:\n%s\nvs\n%s", first, again)
	}

	// Rebuild from scratch: the same rows.
	if _, err := pool.Exec(context.Background(), `DELETE FROM payment_order_lines; DELETE FROM payment_orders; DELETE FROM projection_checkpoints`); err != nil {
		t.Fatal(err)
	}
	stop = run(t, pool, store)
	testenv.WaitFor(t, 15*time.Second, "the rebuild to reach the head", func() bool {
		pos, err := projections.Checkpoint(context.Background(), pool, "payment_orders")
		return err == nil && pos == head
	})
	stop()
	if rebuilt := snapshot(t, pool); rebuilt != first {
		t.Fatalf("rebuild differs:\n%s\nvs\n%s", first, rebuilt)
	}
}

func TestTwoRunnersOfOneProjectionApplyEachEventOnce(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	stopA := run(t, pool, store)
	stopB := run(t, pool, store)
	const n = 30
	for i := range n {
		appendPayment(t, store, i)
	}
	testenv.WaitFor(t, 15*time.Second, "all payments projected", func() bool {
		return countRows(t, pool, "version = 1 AND status = 'NOT_STARTED' OR version = 3") == n
	})
	stopA()
	stopB()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pos, err := projections.Checkpoint(context.Background(), pool, "payment_orders")
	if err != nil || pos != head {
		t.Fatalf("checkpoint %v (%v), want the head %v", pos, err, head)
	}
}
