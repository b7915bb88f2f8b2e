package reconcile_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
	"github.com/paymentledger/ledger/reconcile"
	"github.com/paymentledger/ledger/secrets"
)

// BenchmarkReconcile measures one merchant's run over one day of RECONCILE_BENCH_PAYMENTS
// payments (default 2000; the README's figure is for 100000), one in ten partly refunded.
//
// The history is generated first and not timed: each payment is checked out in our event store
// and confirmed (and refunded) at the simulator through its HTTP API with the real Toss client,
// and its approval (and cancel) appended to its stream with the simulator's own keys, amounts
// and times, one append per stream, so both sides hold the same history; then the payment_orders
// read model is brought up to date. The timed part is engine.Run: paging the simulator's
// transactions and settlement rows over HTTP, selecting, reading and verifying every stream in
// bulk, folding, matching and saving the run. Phases are logged per run.
//
//	RECONCILE_BENCH_PAYMENTS=100000 go test -run '^$' -bench Reconcile -benchtime 1x -timeout 60m ./reconcile/
func BenchmarkReconcile(b *testing.B) {
	n := 2000
	if v := os.Getenv("RECONCILE_BENCH_PAYMENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("RECONCILE_BENCH_PAYMENTS=%q", v)
		}
	}
	pool := pgtest.NewPool(b)
	store := eventstore.NewPostgres(pool)
	key, err := secrets.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	keyring, err := secrets.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	svc := merchants.New(store, pool, merchants.Config{Keyring: keyring})
	const merchant domain.MerchantID = "bench-shop"
	const tossKey = "test_sk_bench"
	if _, err := svc.Create(ctx, merchants.CreateInput{ID: merchant, Name: "Bench", TossSecretKey: tossKey, Actor: merchants.ActorSystem}); err != nil {
		b.Fatal(err)
	}
	sim := tosssim.New(tosssim.Config{})
	srv := httptest.NewServer(sim.Handler())
	b.Cleanup(srv.Close)
	client, err := toss.New(srv.URL, tossKey)
	if err != nil {
		b.Fatal(err)
	}

	genStart := time.Now()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := generate(store, sim, client, merchant, int(i)); err != nil {
					b.Error(err)
					failed.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.FailNow()
	}
	b.Logf("generated %d payments in %s", n, time.Since(genStart).Round(time.Millisecond))
	projStart := time.Now()
	if err := projections.CatchUp(ctx, pool, store, projections.PaymentOrders{}); err != nil {
		b.Fatal(err)
	}
	b.Logf("payment_orders caught up in %s", time.Since(projStart).Round(time.Millisecond))

	dir := svc.NewDirectory(srv.URL)
	cmds, err := commands.New(store, func(ctx2 context.Context, m domain.MerchantID) (commands.PSP, error) { return dir.Client(ctx2, m) }, commands.Config{}, time.Now, nil)
	if err != nil {
		b.Fatal(err)
	}
	engine, err := reconcile.New(reconcile.Config{Pool: pool, Streams: store, Corrector: cmds, FeeRates: svc,
		Clients: func(ctx2 context.Context, m domain.MerchantID) (reconcile.Lister, error) { return dir.Client(ctx2, m) }})
	if err != nil {
		b.Fatal(err)
	}
	d := day(today())
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rep, err := engine.Run(ctx, reconcile.Request{Merchant: merchant, From: d, To: d})
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		if rep.Payments != n || rep.Counts[reconcile.Matched] != n+n/10 || len(rep.Differences) != 0 {
			b.Fatalf("%d payments, counts %v, %d differences", rep.Payments, rep.Counts, len(rep.Differences))
		}
		b.Logf("%d payments, %d Toss transactions, %d settlement rows: %s (transactions %s, settlements %s, ledger %s, match %s, save %s)",
			rep.Payments, rep.TossTransactions, rep.TossSettlements, elapsed.Round(time.Millisecond),
			rep.Phases["transactions"].Round(time.Millisecond), rep.Phases["settlements"].Round(time.Millisecond),
			rep.Phases["ledger"].Round(time.Millisecond), rep.Phases["match"].Round(time.Millisecond), rep.Phases["save"].Round(time.Millisecond))
		b.ReportMetric(float64(n)/elapsed.Seconds(), "payments/s")
	}
}

// generate makes payment i on both sides: checked out and approved (and every tenth partly
// refunded) at the simulator, and the same facts appended to its stream in one append.
func generate(store *eventstore.Postgres, sim *tosssim.Simulator, client *toss.Client, m domain.MerchantID, i int) error {
	id := domain.OrderID(fmt.Sprintf("bench-%08d", i))
	amount := won(strconv.Itoa(1000 + i%50*100))
	key, err := sim.CreateSession(string(id), amount, "bench")
	if err != nil {
		return err
	}
	pay, err := client.Confirm(ctx, toss.ConfirmRequest{PaymentKey: key, OrderID: string(id), Amount: amount}, string(id)+":confirm:1")
	if err != nil {
		return err
	}
	now := time.Now().In(domain.KST)
	h := domain.EventHeader{OrderID: id, MerchantID: m, At: now}
	events := []domain.Event{
		domain.CheckoutCreated{EventHeader: h, BuyerID: "buyer", OrderName: "bench", Currency: domain.KRW, TotalAmount: amount,
			Lines: []domain.Line{{LineID: "l1", SellerID: "seller", ProductID: "p", Amount: amount}}, ExpiresAt: now.Add(time.Hour)},
		domain.ConfirmationStarted{EventHeader: h, PaymentKey: domain.PaymentKey(key), Amount: amount, Attempt: 1, PSPIdempotencyKey: string(id) + ":confirm:1"},
		domain.PaymentApproved{EventHeader: h, PaymentKey: domain.PaymentKey(key), ApprovedAt: *pay.ApprovedAt, Method: pay.Method,
			TotalAmount: amount, LastTransactionKey: pay.LastTransactionKey},
	}
	if i%10 == 0 {
		part := won("500")
		canceled, err := client.Cancel(ctx, key, toss.CancelRequest{CancelReason: "bench", CancelAmount: &part}, string(id)+":cancel:c1")
		if err != nil {
			return err
		}
		c := canceled.Cancels[len(canceled.Cancels)-1]
		events = append(events,
			domain.CancelRequested{EventHeader: h, CancelID: "c1", Amount: part, Reason: "bench", PSPIdempotencyKey: string(id) + ":cancel:c1"},
			domain.PaymentCanceled{EventHeader: h, CancelID: "c1", Amount: part, TransactionKey: c.TransactionKey, CanceledAt: *c.CanceledAt,
				BalanceAfter: amount.Sub(part)})
	}
	data, err := commands.Encode(events, eventstore.Metadata{CorrelationID: uuid.New(), CausationID: uuid.New(), Actor: "bench"})
	if err != nil {
		return err
	}
	_, err = store.Append(ctx, domain.StreamName(id), eventstore.NoStream, data)
	return err
}
