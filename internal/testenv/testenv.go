// Package testenv assembles the real components for integration tests: a fresh PostgreSQL
// database, the PostgreSQL event store, the Toss simulator behind a real HTTP server, the real
// Toss client, the command and query services, the projection runner and the HTTP API.
package testenv

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
	"github.com/paymentledger/ledger/queries"
)

// SecretKey is the key the client and the simulator share in tests.
const SecretKey = "test_sk_testenv"

// Merchant is the merchant of every test payment.
const Merchant domain.MerchantID = "merchant-test"

// Env is a running set of components. Everything is stopped in t.Cleanup.
type Env struct {
	Pool     *pgxpool.Pool
	Store    *eventstore.Postgres
	Sim      *tosssim.Simulator
	SimURL   string
	Toss     *toss.Client
	Commands *commands.Service
	Queries  *queries.Service
	API      *httptest.Server // the command and query API, with the projection runner running
}

// Options adjust an Env.
type Options struct {
	Now        func() time.Time // the commands' clock; default time.Now
	SimNow     func() time.Time // the simulator's clock; default time.Now
	PSPTimeout time.Duration
	PSP        commands.PSP // replaces the Toss client in the command service
}

// New starts an Env.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := Logger(t)
	e := &Env{Pool: pgtest.NewPool(t)}
	e.Store = eventstore.NewPostgres(e.Pool)
	e.Sim = tosssim.New(tosssim.Config{SecretKeys: []string{SecretKey}, Now: opts.SimNow})
	simSrv := httptest.NewServer(e.Sim.Handler())
	t.Cleanup(simSrv.Close)
	e.SimURL = simSrv.URL
	var err error
	e.Toss, err = toss.New(simSrv.URL, SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	var psp commands.PSP = e.Toss
	if opts.PSP != nil {
		psp = opts.PSP
	}
	e.Commands, err = commands.New(e.Store, psp, commands.Config{Merchant: Merchant, PSPTimeout: opts.PSPTimeout}, opts.Now, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.Queries = queries.New(e.Pool, e.Store, Merchant)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runner := projections.NewRunner(e.Pool, e.Store, projections.PaymentOrders{}, logger)
	runner.RetryDelay = 50 * time.Millisecond
	wg.Go(func() { _ = runner.Run(ctx) })
	ledgerRunner := projections.NewRunner(e.Pool, e.Store, projections.Ledger{}, logger)
	ledgerRunner.RetryDelay = 50 * time.Millisecond
	wg.Go(func() { _ = ledgerRunner.Run(ctx) })
	e.API = httptest.NewServer(httpapi.New(e.Commands, e.Queries, e.Pool.Ping, logger).WithLedger(queries.NewLedger(e.Pool)).ActingFor(Merchant))
	t.Cleanup(func() {
		e.API.Close()
		cancel()
		wg.Wait()
	})
	return e
}

// Logger writes to the test log when -v is given and LOG is set, and discards otherwise.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// WaitFor polls cond until it holds or the deadline passes, then fails the test with what.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(delay)
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// Events reads a payment's stream as domain events.
func (e *Env) Events(t testing.TB, orderID domain.OrderID) []domain.Event {
	t.Helper()
	recs, err := e.Store.ReadStream(context.Background(), domain.StreamName(orderID), 1)
	if err != nil {
		t.Fatalf("read stream of %s: %v", orderID, err)
	}
	events, err := commands.DecodeEvents(recs)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// CountEvents is the number of events in the whole store.
func (e *Env) CountEvents(t testing.TB) int {
	t.Helper()
	var n int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// LostCancelAnswer wraps a Toss client so that the first cancel that Toss performs comes back
// as a lost connection (an unknown outcome): the refund happened, the caller cannot know.
type LostCancelAnswer struct {
	*toss.Client
	mu   sync.Mutex
	lost bool
}

// Cancel implements commands.PSP.
func (l *LostCancelAnswer) Cancel(ctx context.Context, key string, req toss.CancelRequest, idem string) (*toss.Payment, error) {
	pay, err := l.Client.Cancel(ctx, key, req, idem)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && !l.lost {
		l.lost = true
		return nil, &toss.Error{Op: "cancel", Class: toss.ClassUnknownOutcome, Err: errors.New("unexpected EOF")}
	}
	return pay, err
}

// Pay takes one payment through the real path: checkout, the buyer's session at the simulator,
// confirm. It fails the test unless the payment ends SUCCESS.
func (e *Env) Pay(t testing.TB, lines ...domain.CheckoutLine) (commands.CheckoutResult, domain.PaymentKey) {
	t.Helper()
	ctx := context.Background()
	co, err := e.Commands.Checkout(ctx, commands.CheckoutInput{OrderName: "test order", BuyerID: "buyer-1", Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	key, err := e.Sim.CreateSession(string(co.OrderID), co.Amount, co.OrderName)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Commands.Confirm(ctx, commands.ConfirmInput{PaymentKey: domain.PaymentKey(key), OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	return co, domain.PaymentKey(key)
}
