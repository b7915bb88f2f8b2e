package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/natsbus/natstest"
)

// next takes the subscription's next event, failing the test after a deadline.
func next(t *testing.T, s *natsbus.Subscription) natsbus.Event {
	t.Helper()
	select {
	case e, ok := <-s.C:
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return natsbus.Event{}
}

// appendOne adds an event to the order's stream at version expect+1.
func appendOne(t *testing.T, store eventstore.Store, m domain.MerchantID, o domain.OrderID, expect int64) {
	t.Helper()
	e := domain.PaymentExpired{EventHeader: domain.EventHeader{OrderID: o, MerchantID: m, At: t0}, Reason: "test"}
	b, err := domain.MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), domain.StreamName(o), eventstore.Exact(expect), []eventstore.EventData{{
		ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b,
		Metadata: eventstore.Metadata{MerchantID: string(m), Actor: "system", CorrelationID: uuid.New()},
	}}); err != nil {
		t.Fatal(err)
	}
}

func TestWatchDeliversOneOrderInStreamOrderAfterAVersion(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	srv := natstest.Start(t)
	bus := openBus(t, srv.URL())
	w := natsbus.NewWatcher(bus.JS)
	ctx := context.Background()

	// Watching before anything is published: the events arrive as the relay publishes them.
	early, err := w.Watch(ctx, "m1", "order-m1-0001", 0)
	if err != nil {
		t.Fatal(err)
	}
	order := appendPayment(t, store, "m1", 1)
	appendPayment(t, store, "m1", 2) // another order of the same merchant
	appendPayment(t, store, "m2", 1) // the same order number at another merchant
	startRelay(t, pool, bus, natsbus.RelayConfig{})
	for v := int64(1); v <= 3; v++ {
		e := next(t, early)
		if e.StreamVersion != v || e.OrderID != order || e.MerchantID != "m1" {
			t.Fatalf("event %d: %s v%d of %s/%s", v, e.Type, e.StreamVersion, e.MerchantID, e.OrderID)
		}
	}

	// Watching after version 2 of what is already published: only 3, then what comes.
	wctx, cancel := context.WithCancel(ctx)
	late, err := w.Watch(wctx, "m1", order, 2)
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, late); e.StreamVersion != 3 || e.Type != domain.EventPaymentApproved {
		t.Fatalf("after 2: %s v%d", e.Type, e.StreamVersion)
	}
	appendOne(t, store, "m1", order, 3)
	if e := next(t, late); e.StreamVersion != 4 || e.Type != domain.EventPaymentExpired {
		t.Fatalf("the new event: %s v%d", e.Type, e.StreamVersion)
	}
	if e := next(t, early); e.StreamVersion != 4 {
		t.Fatalf("the first watch: v%d after 3", e.StreamVersion)
	}

	// The context ends the subscription: C closes, Err is nil.
	cancel()
	select {
	case e, ok := <-late.C:
		if ok {
			t.Fatalf("an event after the context ended: %s v%d", e.Type, e.StreamVersion)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("C still open 10s after the context ended")
	}
	if err := late.Err(); err != nil {
		t.Fatalf("Err after the context ended: %v", err)
	}
}

// A subscription whose stream is gone ends with an error rather than hanging.
func TestWatchEndsWithAnErrorWhenTheStreamIsDeleted(t *testing.T) {
	srv := natstest.Start(t)
	bus := openBus(t, srv.URL())
	s, err := natsbus.Watch(context.Background(), bus.JS, "m1", "order-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.JS.DeleteStream(context.Background(), natsbus.StreamPayments); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-s.C:
		if ok {
			t.Fatal("an event from a deleted stream")
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the subscription did not end within 90s of its stream's deletion")
	}
	if s.Err() == nil {
		t.Fatal("C closed without an error")
	}
	t.Log(s.Err())
}

func TestWatchOfAMissingStreamFails(t *testing.T) {
	srv := natstest.Start(t)
	bus := openBus(t, srv.URL())
	if err := bus.JS.DeleteStream(context.Background(), natsbus.StreamPayments); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbus.Watch(context.Background(), bus.JS, "m1", "order-1", 0); err == nil {
		t.Fatal("watch without a stream: no error")
	}
}
