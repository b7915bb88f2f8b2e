package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
)

// flaky is PaymentOrders, under a name of its choosing, that fails on one event while broken,
// and records every event it applies in flaky_applied (rolled back with its transaction), so a
// test sees what was applied, how many times and in which order.
type flaky struct {
	name     string
	poison   uuid.UUID
	broken   atomic.Bool
	failures atomic.Int32 // failed applies of the poison
}

func (f *flaky) Name() string { return f.name }

func (f *flaky) Apply(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	if e.ID == f.poison && f.broken.Load() {
		f.failures.Add(1)
		return errors.New("flaky: this event cannot be applied yet")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO flaky_applied (event_id, stream_id, version) VALUES ($1, $2, $3)`,
		e.ID, e.StreamID, e.Version); err != nil {
		return err
	}
	return projections.PaymentOrders{}.Apply(ctx, tx, e)
}

func newFlaky(t *testing.T, pool *pgxpool.Pool, name string, poison uuid.UUID) *flaky {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `CREATE TABLE flaky_applied (
		seq bigint GENERATED ALWAYS AS IDENTITY, event_id uuid NOT NULL, stream_id text NOT NULL, version bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	f := &flaky{name: name, poison: poison}
	f.broken.Store(true)
	return f
}

// applied lists the stream's applied versions in the order they were applied.
func applied(t *testing.T, pool *pgxpool.Pool, stream string) []int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT version FROM flaky_applied WHERE stream_id = $1 ORDER BY seq`, stream)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func eventOf(t *testing.T, store *eventstore.Postgres, stream string, version int64) eventstore.RecordedEvent {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), stream, version)
	if err != nil || len(recs) == 0 {
		t.Fatalf("read %s v%d: %v", stream, version, err)
	}
	return recs[0]
}

func startRunner(t *testing.T, pool *pgxpool.Pool, store eventstore.Store, proj projections.Projection, maxAttempts int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := projections.NewRunner(pool, store, proj, nil)
	r.BatchSize = 7 // several batches, the poison in the middle of one
	r.RetryDelay = 5 * time.Millisecond
	r.MaxAttempts = maxAttempts
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitCheckpointAtHead(t *testing.T, pool *pgxpool.Pool, name string) {
	t.Helper()
	// The last committed event, readable or not yet (store.Head stops at the horizon of the
	// oldest open transaction on the server, which may be any test's).
	var head eventstore.Position
	if err := pool.QueryRow(context.Background(), `SELECT transaction_id, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&head.Transaction, &head.Sequence); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, name+" at the head "+head.String(), func() bool {
		pos, err := projections.Checkpoint(context.Background(), pool, name)
		return err == nil && pos == head
	})
}

func parkedRows(t *testing.T, pool *pgxpool.Pool, projection string) []projections.Parked {
	t.Helper()
	ps, err := projections.ListParked(context.Background(), pool, projections.ParkedFilter{Projection: projection})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func orderVersion(t *testing.T, pool *pgxpool.Pool, id domain.OrderID) int64 {
	t.Helper()
	var v int64
	if err := pool.QueryRow(context.Background(), `SELECT version FROM payment_orders WHERE order_id = $1`, id).Scan(&v); err != nil {
		t.Fatalf("payment_orders %s: %v", id, err)
	}
	return v
}

func TestRunnerParksAPoisonEventHoldsItsStreamAndRedrivesItOnceFixed(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	var ids []domain.OrderID
	for i := range 12 {
		ids = append(ids, appendPayment(t, store, i))
	}
	// order-0004 is approved: checkout v1, confirmation v2 (the poison), approval v3 (held).
	stream := domain.StreamName(ids[4])
	poison := eventOf(t, store, stream, 2)
	proj := newFlaky(t, pool, "flaky_orders", poison.ID)
	stop := startRunner(t, pool, store, proj, 3)
	waitCheckpointAtHead(t, pool, proj.Name())

	if n := proj.failures.Load(); n != 3 {
		t.Errorf("the poison was tried %d times, want 3", n)
	}
	ps := parkedRows(t, pool, proj.Name())
	if len(ps) != 2 {
		t.Fatalf("parked rows: %+v", ps)
	}
	if p := ps[0]; p.State != projections.StatePoison || p.EventID != poison.ID || p.StreamID != stream || p.StreamVersion != 2 ||
		p.Position != poison.Position.String() || p.EventType != poison.Type || p.Attempts != 3 ||
		!strings.Contains(p.Error, "flaky: this event cannot be applied yet") {
		t.Errorf("poison row: %+v", p)
	}
	if h := ps[1]; h.State != projections.StateHeld || h.StreamID != stream || h.StreamVersion != 3 || h.Error != "" || h.Attempts != 0 {
		t.Errorf("held row: %+v", h)
	}
	if got := applied(t, pool, stream); fmt.Sprint(got) != "[1]" {
		t.Errorf("applied versions of the poisoned stream: %v, want [1]", got)
	}
	for i, id := range ids {
		if i != 4 && orderVersion(t, pool, id) != map[bool]int64{true: 3, false: 1}[i%2 == 0] {
			t.Errorf("%s not fully applied", id)
		}
	}

	// Events appended later: the held stream's is held behind the poison, the others applied.
	h := domain.EventHeader{OrderID: ids[4], MerchantID: "m", At: t0}
	appendEvent(t, store, stream, domain.CancelRequested{EventHeader: h, CancelID: "c1", Amount: decimal.NewFromInt(1004), Reason: "r", PSPIdempotencyKey: "c1"})
	later := appendPayment(t, store, 12)
	waitCheckpointAtHead(t, pool, proj.Name())
	if v := orderVersion(t, pool, later); v != 3 {
		t.Errorf("%s at version %d after the poison was parked, want 3", later, v)
	}
	ps = parkedRows(t, pool, proj.Name())
	if len(ps) != 3 || ps[2].State != projections.StateHeld || ps[2].StreamVersion != 4 {
		t.Fatalf("parked rows after a later event of the stream: %+v", ps)
	}
	if orderVersion(t, pool, ids[4]) != 1 {
		t.Error("the held stream moved")
	}

	// A redrive while the cause is still there changes nothing and names the event.
	_, err := projections.Redrive(ctx, pool, []projections.Projection{proj}, ps[1].ID)
	var ee *projections.EventError
	if !errors.As(err, &ee) || ee.EventID != poison.ID || ee.Projection != proj.Name() {
		t.Fatalf("redrive of a still failing poison: %v", err)
	}
	if again := parkedRows(t, pool, proj.Name()); fmt.Sprint(again) != fmt.Sprint(ps) {
		t.Fatalf("a failed redrive changed the rows:\n%+v\n%+v", ps, again)
	}
	if got := applied(t, pool, stream); fmt.Sprint(got) != "[1]" || orderVersion(t, pool, ids[4]) != 1 {
		t.Errorf("a failed redrive applied %v", got)
	}

	// Fixed: the redrive applies the poison and the held events in stream order, once, and clears
	// them; the runner then applies the stream's next events as any other.
	proj.broken.Store(false)
	res, err := projections.Redrive(ctx, pool, []projections.Projection{proj}, ps[0].ID)
	if err != nil || res.Applied != 3 || res.StreamID != stream || res.Projection != proj.Name() {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	if rest := parkedRows(t, pool, ""); len(rest) != 0 {
		t.Fatalf("rows left after the redrive: %+v", rest)
	}
	if _, err := projections.Redrive(ctx, pool, []projections.Projection{proj}, ps[0].ID); !errors.Is(err, projections.ErrParkedNotFound) {
		t.Errorf("second redrive: %v, want ErrParkedNotFound", err)
	}
	appendEvent(t, store, stream, domain.CancelRejected{EventHeader: h, CancelID: "c1", Code: "X", Message: "no"})
	waitCheckpointAtHead(t, pool, proj.Name())
	stop()
	if got := applied(t, pool, stream); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Errorf("applied versions of the redriven stream: %v, want [1 2 3 4 5] (each once, in order)", got)
	}
	if v := orderVersion(t, pool, ids[4]); v != 5 {
		t.Errorf("order at version %d, want 5", v)
	}
	var total, distinct int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id) FROM flaky_applied`).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if all := countEvents(t, pool); total != all || distinct != all {
		t.Errorf("%d applies of %d distinct events, want each of the %d events once", total, distinct, all)
	}
}

func countEvents(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// appendEvent appends one domain event to the end of stream.
func appendEvent(t *testing.T, store *eventstore.Postgres, stream string, e domain.Event) {
	t.Helper()
	b, err := domain.MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	appendRaw(t, store, stream, string(e.EventType()), domain.SchemaVersion, b)
}

func appendRaw(t *testing.T, store *eventstore.Postgres, stream, typ string, schemaVersion int, data []byte) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if _, err := store.Append(context.Background(), stream, eventstore.Any, []eventstore.EventData{{ID: id, Type: typ,
		SchemaVersion: schemaVersion, Data: data, Metadata: eventstore.Metadata{MerchantID: "m", Actor: "system"}}}); err != nil {
		t.Fatal(err)
	}
	return id
}

// A poison event the real projection cannot decode (a schema version this build does not know):
// parked by the runner; a replay fails naming it rather than skipping it; the parked rows stay.
func TestReplayFailsNamingAPoisonEventAndKeepsItParked(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	for i := range 5 {
		appendPayment(t, store, i)
	}
	stream := domain.StreamName("order-newer")
	h := domain.EventHeader{OrderID: "order-newer", MerchantID: "m", At: t0}
	body, err := domain.MarshalEvent(domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW,
		TotalAmount: decimal.NewFromInt(1000), Lines: []domain.Line{{LineID: "L1", SellerID: "s", ProductID: "p", Amount: decimal.NewFromInt(1000)}},
		ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	poison := appendRaw(t, store, stream, string(domain.EventCheckoutCreated), domain.SchemaVersion+1, body)
	after := appendPayment(t, store, 5)
	startRunner(t, pool, store, projections.PaymentOrders{}, 2)
	waitCheckpointAtHead(t, pool, projections.PaymentOrdersName)
	ps := parkedRows(t, pool, projections.PaymentOrdersName)
	if len(ps) != 1 || ps[0].EventID != poison || ps[0].Attempts != 2 || !strings.Contains(ps[0].Error, "unsupported schema version") {
		t.Fatalf("parked: %+v", ps)
	}
	if orderVersion(t, pool, after) != 1 {
		t.Error("the payment after the poison was not applied")
	}

	_, err = projections.Replay(ctx, pool, []string{projections.PaymentOrdersName}, projections.ReplayOptions{})
	var ee *projections.EventError
	if !errors.As(err, &ee) || ee.EventID != poison || ee.StreamID != stream || ee.Projection != projections.PaymentOrdersName ||
		!strings.Contains(err.Error(), poison.String()) {
		t.Fatalf("replay over a poison event: %v", err)
	}
	if again := parkedRows(t, pool, ""); fmt.Sprint(again) != fmt.Sprint(ps) {
		t.Fatalf("a failed replay changed the parked rows: %+v", again)
	}
	// Still failing: a redrive changes nothing.
	if _, err := projections.Redrive(ctx, pool, []projections.Projection{projections.PaymentOrders{}}, ps[0].ID); !errors.As(err, &ee) || ee.EventID != poison {
		t.Fatalf("redrive: %v", err)
	}
	if again := parkedRows(t, pool, ""); fmt.Sprint(again) != fmt.Sprint(ps) {
		t.Fatalf("a failed redrive changed the parked rows: %+v", again)
	}
}

// A replay swapped in holds the effects of the events the live runner parked (its fold applies
// every event, with the fixed rules): the swap clears the projection's parked rows, which would
// otherwise be stale and redriven a second time, and the runner follows the stream again.
func TestSwapClearsTheProjectionsParkedEvents(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	var ids []domain.OrderID
	for i := range 6 {
		ids = append(ids, appendPayment(t, store, i))
	}
	stream := domain.StreamName(ids[4])
	poison := eventOf(t, store, stream, 2)
	// The live runner of payment_orders has a bug on one event; the replay's rules do not.
	proj := newFlaky(t, pool, projections.PaymentOrdersName, poison.ID)
	stop := startRunner(t, pool, store, proj, 1)
	waitCheckpointAtHead(t, pool, projections.PaymentOrdersName)
	stop()
	if ps := parkedRows(t, pool, ""); len(ps) != 2 {
		t.Fatalf("parked: %+v", ps)
	}
	// Another projection's parked row is not the swap's business.
	if _, err := pool.Exec(ctx, `INSERT INTO projection_parked (projection, state, event_id, stream_id, stream_version, position, event_type, error, attempts)
		VALUES ('other', 'poison', $1, 's', 1, '1/1', 'X', 'e', 3)`, uuid.New()); err != nil {
		t.Fatal(err)
	}

	res, err := projections.Replay(ctx, pool, []string{projections.PaymentOrdersName}, projections.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sr, err := projections.Swap(ctx, pool, res.Shadows[0].Schema)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Unparked != 2 {
		t.Errorf("swap cleared %d parked rows, want 2", sr.Unparked)
	}
	if ps := parkedRows(t, pool, ""); len(ps) != 1 || ps[0].Projection != "other" {
		t.Fatalf("parked rows after the swap: %+v", ps)
	}
	if v := orderVersion(t, pool, ids[4]); v != 3 {
		t.Errorf("the swapped-in order at version %d, want 3", v)
	}
	// The stream is no longer held: its next event is applied.
	appendEvent(t, store, stream, domain.CancelRequested{EventHeader: domain.EventHeader{OrderID: ids[4], MerchantID: "m", At: t0},
		CancelID: "c1", Amount: decimal.NewFromInt(1004), Reason: "r", PSPIdempotencyKey: "c1"})
	startRunner(t, pool, store, projections.PaymentOrders{}, 1)
	testenv.WaitFor(t, 20*time.Second, "the stream's next event applied", func() bool { return orderVersion(t, pool, ids[4]) == 4 })
}
