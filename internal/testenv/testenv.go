// Package testenv assembles the real components for integration tests: a fresh PostgreSQL
// database, the PostgreSQL event store, the Toss simulator behind a real HTTP server, the real
// Toss client, the command and query services, the projection runner, a NATS server (with the
// relay publishing to it on request), and the HTTP API (its live status streams fed from that
// NATS), with the Toss webhook inbox and the OpenAPI document mounted as paymentd mounts them.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/natsbus/natstest"
	"github.com/paymentledger/ledger/openapi"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/secrets"
	"github.com/paymentledger/ledger/webhooks"
)

// SecretKey is the Toss secret key of the test merchant; the simulator accepts any test_sk_ key.
const SecretKey = "test_sk_testenv"

// Merchant is the merchant of every test payment.
const Merchant domain.MerchantID = "merchant-test"

// AdminToken guards the test API's /admin/v1.
const AdminToken = "test-admin-token-0123456789abcdef0123456789"

// Env is a running set of components. Everything is stopped in t.Cleanup.
type Env struct {
	Pool      *pgxpool.Pool
	Store     *eventstore.Postgres
	Sim       *tosssim.Simulator
	SimURL    string
	Toss      *toss.Client // a client with SecretKey on the simulator
	Merchants *merchants.Service
	Commands  *commands.Service
	Queries   *queries.Service
	API       *httptest.Server // the command, query and admin API, with the projection runners running
	// Server is the handler behind API: its Routes() are what the authorization and fuzz tests
	// walk, so a route registered without an entry in their tables is noticed.
	Server *httpapi.Server
	// APIKey is Merchant's first API key (every scope).
	APIKey string
	// SecretsKey is the key-encryption key sealing the merchants' Toss keys (SECRETS_KEY).
	SecretsKey []byte
	// NATS is the Env's own NATS server and Bus is connected to it; with Options.Relay a relay
	// publishes the event store to its PAYMENTS stream while the Env runs.
	NATS *natstest.Server
	Bus  *natsbus.Bus
}

// Options adjust an Env.
type Options struct {
	Now        func() time.Time // the commands' clock; default time.Now
	SimNow     func() time.Time // the simulator's clock; default time.Now
	PSPTimeout time.Duration
	PSP        commands.PSP // replaces every merchant's Toss client in the command service
	// Auth replaces the API's limits (Keys is always the Env's merchants service). The default
	// limits are high enough never to get in a test's way.
	Auth *httpapi.AuthConfig
	// Live tunes the API's live status streams (zero: the defaults).
	Live httpapi.LiveConfig
	// Relay runs the relay from the event store to the Env's NATS: live status streams see
	// changes only with it. Off by default: most tests need no bus, and the relay's stop races
	// its own lock-session ping (natsbus.Relay.relay), which -race reports now and then.
	Relay bool
	// Record, if set, is called with every answer of the API once its handler has returned (a
	// live stream's when the stream ends), from the server's goroutines: it must be safe for
	// concurrent use. The OpenAPI tests check each answer against the document.
	Record func(Recorded)
}

// Recorded is one answer of the Env's API.
type Recorded struct {
	Method string
	// Route is the template of the route that served the request (/api/v1/payments/{orderId}),
	// the prefix of a mount (/webhooks/toss), or "" when nothing matched.
	Route string
	URL   string // the request's path and query
	// Status, Header and Body are the answer's, the body whole.
	Status int
	Header http.Header
	Body   []byte
}

func mustKey(t testing.TB) []byte {
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewMerchant registers another merchant with a Toss key the simulator accepts and returns its
// first API key (every scope).
func (e *Env) NewMerchant(t testing.TB, id domain.MerchantID) string {
	t.Helper()
	issued, err := e.Merchants.Create(context.Background(), merchants.CreateInput{ID: id, Name: "Shop " + string(id),
		TossSecretKey: "test_sk_" + string(id), Actor: merchants.ActorSystem})
	if err != nil {
		t.Fatal(err)
	}
	return issued.APIKey
}

// Request sends an API request with the Env's API key (Authorization: Bearer) and returns the
// status and the raw body. header holds name, value pairs.
func (e *Env) Request(t testing.TB, method, path, body string, header ...string) (int, []byte) {
	t.Helper()
	return Do(t, e.APIKey, method, e.API.URL+path, body, header...)
}

// Do sends a request with apiKey (none when empty) and returns the status and the raw body.
func Do(t testing.TB, apiKey, method, url, body string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// New starts an Env.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Now == nil {
		// As paymentd: recorded times in KST, as Toss writes them.
		opts.Now = func() time.Time { return time.Now().In(domain.KST) }
	}
	logger := Logger(t)
	e := &Env{Pool: pgtest.NewPool(t)}
	e.Store = eventstore.NewPostgres(e.Pool)
	// Any test_sk_ key is accepted, so every test merchant can pay with a key of its own.
	e.Sim = tosssim.New(tosssim.Config{Now: opts.SimNow})
	simSrv := httptest.NewServer(e.Sim.Handler())
	t.Cleanup(simSrv.Close)
	e.SimURL = simSrv.URL
	var err error
	e.Toss, err = toss.New(simSrv.URL, SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	e.SecretsKey = mustKey(t)
	keyring, err := secrets.NewKeyring(e.SecretsKey)
	if err != nil {
		t.Fatal(err)
	}
	e.Merchants = merchants.New(e.Store, e.Pool, merchants.Config{Keyring: keyring, CacheTTL: 50 * time.Millisecond, Logger: logger})
	issued, err := e.Merchants.Create(context.Background(), merchants.CreateInput{ID: Merchant, Name: "Test shop", TossSecretKey: SecretKey, Actor: merchants.ActorSystem})
	if err != nil {
		t.Fatal(err)
	}
	e.APIKey = issued.APIKey
	// Every merchant's calls go to the simulator with its own key, as in production.
	dir := e.Merchants.NewDirectory(simSrv.URL)
	psps := commands.PSPFor(func(ctx context.Context, m domain.MerchantID) (commands.PSP, error) { return dir.Client(ctx, m) })
	if opts.PSP != nil {
		psps = commands.OnePSP(opts.PSP)
	}
	e.Commands, err = commands.New(e.Store, psps, commands.Config{PSPTimeout: opts.PSPTimeout}, opts.Now, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.Queries = queries.New(e.Pool, e.Store)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runner := projections.NewRunner(e.Pool, e.Store, projections.PaymentOrders{}, logger)
	runner.RetryDelay = 50 * time.Millisecond
	wg.Go(func() { _ = runner.Run(ctx) })
	ledgerRunner := projections.NewRunner(e.Pool, e.Store, projections.Ledger{}, logger)
	ledgerRunner.RetryDelay = 50 * time.Millisecond
	wg.Go(func() { _ = ledgerRunner.Run(ctx) })
	merchantsRunner := projections.NewRunner(e.Pool, e.Store, projections.Merchants{}, logger)
	merchantsRunner.RetryDelay = 50 * time.Millisecond
	wg.Go(func() { _ = merchantsRunner.Run(ctx) })
	e.NATS = natstest.Start(t)
	e.Bus, err = natsbus.Open(context.Background(), natsbus.Config{URL: e.NATS.URL(), Name: t.Name()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Relay {
		relay, err := natsbus.NewRelay(e.Pool, e.Store, e.Bus.Conn, natsbus.RelayConfig{}, logger)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = relay.Run(ctx) })
	}
	auth := httpapi.AuthConfig{Keys: e.Merchants, AdminToken: AdminToken, KeyRate: 1000, KeyBurst: 1000, FailuresPerMinute: 1000}
	if opts.Auth != nil {
		auth = *opts.Auth
		auth.Keys = e.Merchants
	}
	e.Server = httpapi.New(e.Commands, e.Queries, e.Pool.Ping, logger, auth).
		WithLedger(queries.NewLedger(e.Pool)).WithAdmin(e.Merchants, time.Hour).
		WithLive(natsbus.NewWatcher(e.Bus.JS), opts.Live)
	// The mounts paymentd makes beside the routes.
	e.Server.Handle("/webhooks/toss", webhooks.NewInbox(e.Pool, webhooks.InboxConfig{MerchantExists: e.Merchants.Exists}, logger))
	e.Server.Handle("/openapi.yaml", openapi.Handler())
	var handler http.Handler = e.Server
	if opts.Record != nil {
		e.Server.Instrument(noteRoute)
		handler = recordAnswers(e.Server, opts.Record)
	}
	e.API = httptest.NewServer(handler)
	t.Cleanup(func() {
		// Live streams end with their requests' contexts: close the clients' connections first,
		// or Close would wait for streams that never end.
		e.API.CloseClientConnections()
		e.API.Close()
		cancel()
		wg.Wait()
		e.Bus.Close()
	})
	return e
}

type routeKey struct{}

// noteRoute writes the matched route's template where recordAnswers looks for it: the
// template is known only inside the router.
func noteRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dst, ok := r.Context().Value(routeKey{}).(*string); ok {
			if route := mux.CurrentRoute(r); route != nil {
				*dst, _ = route.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// recordAnswers passes every answer of next to record.
func recordAnswers(next http.Handler, record func(Recorded)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var route string
		rec := &recordingWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, &route)))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		record(Recorded{Method: r.Method, Route: route, URL: r.URL.RequestURI(), Status: rec.status,
			Header: w.Header().Clone(), Body: rec.body.Bytes()})
	})
}

type recordingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the live streams flush).
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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

// CountEvents is the number of payment events in the store (the merchants' own events, such as
// the test merchant's registration, are not counted).
func (e *Env) CountEvents(t testing.TB) int {
	t.Helper()
	var n int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE stream_id LIKE 'payment-%'`).Scan(&n); err != nil {
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
	co, err := e.Commands.Checkout(ctx, commands.CheckoutInput{Merchant: Merchant, OrderName: "test order", BuyerID: "buyer-1", Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	key, err := e.Sim.CreateSession(string(co.OrderID), co.Amount, co.OrderName)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: Merchant, PaymentKey: domain.PaymentKey(key), OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	return co, domain.PaymentKey(key)
}
