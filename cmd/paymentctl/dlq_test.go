package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
)

func TestDLQCommand(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.NewPostgres(pool)

	// A trigger refuses every update of one order (a bad repair, say): payment_orders parks the
	// order's second event and holds its third.
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION refuse_order() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'order % refused by a test trigger', NEW.order_id; END $$;
		CREATE TRIGGER refuse_order BEFORE UPDATE ON payment_orders FOR EACH ROW
			WHEN (NEW.order_id = 'order-stuck') EXECUTE FUNCTION refuse_order()`); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	amount := decimal.NewFromInt(5000)
	for _, id := range []domain.OrderID{"order-stuck", "order-fine"} {
		h := domain.EventHeader{OrderID: id, MerchantID: "shop", At: at}
		var data []eventstore.EventData
		for _, e := range []domain.Event{
			domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: amount,
				Lines: []domain.Line{{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: amount}}, ExpiresAt: at.Add(time.Hour)},
			domain.ConfirmationStarted{EventHeader: h, PaymentKey: "pk", Amount: amount, Attempt: 1, PSPIdempotencyKey: "idem"},
			domain.PaymentApproved{EventHeader: h, PaymentKey: "pk", ApprovedAt: at, Method: "카드", TotalAmount: amount, LastTransactionKey: "tx"},
		} {
			b, err := domain.MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: domain.SchemaVersion,
				Data: b, Metadata: eventstore.Metadata{MerchantID: "shop", Actor: "system"}})
		}
		if _, err := store.Append(ctx, domain.StreamName(id), eventstore.NoStream, data); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	r := projections.NewRunner(pool, store, projections.PaymentOrders{}, nil)
	r.MaxAttempts, r.RetryDelay = 2, time.Millisecond
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(runCtx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	version := func(id string) int64 {
		var v int64
		if err := pool.QueryRow(ctx, `SELECT version FROM payment_orders WHERE order_id = $1`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	testenv.WaitFor(t, 20*time.Second, "order-fine applied and order-stuck's events parked", func() bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM projection_parked`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 2 && version("order-fine") == 3
	})

	vars := envFrom(map[string]string{"DATABASE_URL": dbURL})
	ctl := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, vars, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}

	out, err := ctl("dlq", "list")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	for _, want := range []string{"ID  PROJECTION", "payment_orders  poison  payment-order-stuck  2  ConfirmationStarted  2", "ERROR: order order-stuck refused",
		"payment_orders  held    payment-order-stuck  3  PaymentApproved"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq list lacks %q:\n%s", want, out)
		}
	}
	out, err = ctl("dlq", "list", "--json", "--projection", "payment_orders")
	var rows []projections.Parked
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 ||
		rows[0].State != projections.StatePoison || rows[1].State != projections.StateHeld {
		t.Fatalf("dlq list --json: %v\n%s", err, out)
	}
	poison, held := strconv.FormatInt(rows[0].ID, 10), strconv.FormatInt(rows[1].ID, 10)

	out, err = ctl("dlq", "show", poison)
	if err != nil || !strings.Contains(out, "state:       poison") || !strings.Contains(out, "order order-stuck refused by a test trigger") ||
		!strings.Contains(out, "event:       "+rows[0].EventID.String()) {
		t.Fatalf("dlq show: %v\n%s", err, out)
	}
	out, err = ctl("dlq", "show", held, "--json")
	var p projections.Parked
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.StreamVersion != 3 || p.State != projections.StateHeld {
		t.Fatalf("dlq show --json: %v\n%s", err, out)
	}
	if _, err := ctl("dlq", "show", "999"); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "no such parked event") {
		t.Fatalf("dlq show of an unknown id: %v", err)
	}
	if _, err := ctl("dlq", "redrive"); err == nil || !strings.Contains(err.Error(), "an ID or --all") {
		t.Fatalf("dlq redrive without an id: %v", err)
	}
	if _, err := ctl("dlq", "list", "--kind", "nats"); err == nil || !strings.Contains(err.Error(), `--kind "nats": want one of notify, projection`) {
		t.Fatalf("dlq list --kind nats: %v", err)
	}

	// Not fixed yet: the redrive fails naming the event, and changes nothing.
	_, err = ctl("dlq", "redrive", held)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), rows[0].EventID.String()) {
		t.Fatalf("redrive of a still failing poison: %v", err)
	}
	if again, _ := ctl("dlq", "list", "--json"); again != mustJSON(t, rows) {
		t.Fatalf("a failed redrive changed the rows:\n%s", again)
	}

	// Fixed: the stream's events are applied in order and leave the dead letters.
	if _, err := pool.Exec(ctx, `DROP TRIGGER refuse_order ON payment_orders`); err != nil {
		t.Fatal(err)
	}
	out, err = ctl("dlq", "redrive", "--all", "--json")
	var res []projections.RedriveResult
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || len(res) != 1 || res[0].Applied != 2 || res[0].StreamID != "payment-order-stuck" {
		t.Fatalf("dlq redrive --all: %v\n%s", err, out)
	}
	if v := version("order-stuck"); v != 3 {
		t.Errorf("order-stuck at version %d after the redrive, want 3", v)
	}
	if out, err = ctl("dlq", "list"); err != nil || !strings.Contains(out, "no parked events") {
		t.Fatalf("dlq list after the redrive: %v\n%s", err, out)
	}
	if out, err = ctl("dlq", "redrive", "--all"); err != nil || !strings.Contains(out, "nothing redriven") {
		t.Fatalf("dlq redrive --all with nothing parked: %v\n%s", err, out)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	o := &operator{stdout: &b}
	if err := o.printJSON(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
