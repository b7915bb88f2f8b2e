package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/webhooks"
)

var ctx = context.Background()

// otherMerchant is a registered merchant that owns none of the test payments.
const otherMerchant domain.MerchantID = "merchant-other"

// knownMerchants backs InboxConfig.MerchantExists with a fixed registry.
func knownMerchants(ids ...domain.MerchantID) func(context.Context, domain.MerchantID) (bool, error) {
	return func(_ context.Context, id domain.MerchantID) (bool, error) {
		return slices.Contains(ids, id), nil
	}
}

// newInbox builds an inbox; without cfg.MerchantExists, testenv.Merchant and otherMerchant are
// the registered merchants.
func newInbox(t *testing.T, pool *pgxpool.Pool, cfg webhooks.InboxConfig) *webhooks.Inbox {
	t.Helper()
	if cfg.MerchantExists == nil {
		cfg.MerchantExists = knownMerchants(testenv.Merchant, otherMerchant)
	}
	return webhooks.NewInbox(pool, cfg, testenv.Logger(t))
}

// inboxMount serves a new inbox over real HTTP, mounted as paymentd mounts it (the
// /webhooks/toss prefix stripped), and returns the URL of that prefix.
func inboxMount(t *testing.T, pool *pgxpool.Pool, cfg webhooks.InboxConfig) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/webhooks/toss/", http.StripPrefix("/webhooks/toss", newInbox(t, pool, cfg)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks/toss"
}

// inboxServer is inboxMount's URL for testenv.Merchant, the merchant of the test payments.
func inboxServer(t *testing.T, pool *pgxpool.Pool, cfg webhooks.InboxConfig) string {
	t.Helper()
	return inboxMount(t, pool, cfg) + "/" + string(testenv.Merchant)
}

// serve hands one delivery straight to h as coming from remoteAddr, with the path the mounted
// handler sees, for the checks that depend on the client address, and returns the answer.
func serve(t *testing.T, h http.Handler, remoteAddr, path string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	// Set as http.StripPrefix leaves it, which may be "" or lack the leading slash.
	req.URL.Path = path
	req.RemoteAddr = remoteAddr
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("answer %d %s: the inbox must never answer 500", rec.Code, rec.Body)
	}
	return rec
}

// errorCode is the code of an API error answer.
func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Message == "" {
		t.Fatalf("answer %d is not an API error: %q", rec.Code, rec.Body)
	}
	return b.Error.Code
}

// answer is the inbox's answer to one post.
type answer struct {
	Status int
	Body   struct {
		Status string `json:"status"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
}

// post delivers body with the given headers (a transmission id among them, or not).
func post(t *testing.T, url string, body []byte, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
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
	a := answer{Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("answer %d %s: the inbox must never answer 500", resp.StatusCode, raw)
	}
	return a
}

// tid returns headers carrying a transmission id.
func tid(id string) map[string]string {
	return map[string]string{webhooks.TransmissionIDHeader: id}
}

// inboxRow is a webhook_inbox row.
type inboxRow struct {
	ID             int64
	DedupeKey      string
	TransmissionID *string
	EventType      *string
	OrderID        *string
	MerchantID     *string
	Headers        map[string][]string
	Body           []byte
	BodyLength     *int
	BodySHA256     []byte
	ReceivedAt     time.Time
	Status         string
	RejectReason   *string
	Outcome        *string
	Attempts       int
	NextAttemptAt  time.Time
	ProcessedAt    *time.Time
	LastError      *string
}

func rows(t *testing.T, pool *pgxpool.Pool) []inboxRow {
	t.Helper()
	rs, err := pool.Query(ctx, `
		SELECT id, dedupe_key, transmission_id, event_type, order_id, merchant_id, headers, body, body_length, body_sha256, received_at, status,
		       reject_reason, outcome, attempts, next_attempt_at, processed_at, last_error
		FROM webhook_inbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, pgx.RowToStructByPos[inboxRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rowByKey(t *testing.T, pool *pgxpool.Pool, key string) inboxRow {
	t.Helper()
	for _, r := range rows(t, pool) {
		if r.DedupeKey == key {
			return r
		}
	}
	t.Fatalf("no row with dedupe key %q", key)
	return inboxRow{}
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// fakeSyncer answers Sync with err, or with status, and counts calls per order.
type fakeSyncer struct {
	mu     sync.Mutex
	calls  map[domain.OrderID]int
	err    error
	status domain.Status
}

func (f *fakeSyncer) Sync(_ context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.ConfirmResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[domain.OrderID]int{}
	}
	f.calls[id]++
	if opts.NewAttempt || opts.Actor != webhooks.Actor {
		return commands.ConfirmResult{}, domain.Errorf(domain.ErrInvalidInput, "worker must not start attempts, got %+v", opts)
	}
	if f.err != nil {
		return commands.ConfirmResult{}, f.err
	}
	return commands.ConfirmResult{OrderID: id, Status: f.status}, nil
}

func (f *fakeSyncer) callsFor(id domain.OrderID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeSyncer) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func countRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_inbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// countingPSP is the real Toss client, counting the read-backs (lookups by orderId) per order.
type countingPSP struct {
	*toss.Client
	mu      sync.Mutex
	lookups map[string]int
}

func (c *countingPSP) GetPaymentByOrderID(ctx context.Context, orderID string) (*toss.Payment, error) {
	c.mu.Lock()
	if c.lookups == nil {
		c.lookups = map[string]int{}
	}
	c.lookups[orderID]++
	c.mu.Unlock()
	return c.Client.GetPaymentByOrderID(ctx, orderID)
}

func (c *countingPSP) readBacks(id domain.OrderID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookups[string(id)]
}

var _ commands.PSP = (*countingPSP)(nil)

// countingService is a real command service on env's store whose Toss client counts read-backs.
func countingService(t *testing.T, env *testenv.Env) (*commands.Service, *countingPSP) {
	t.Helper()
	psp := &countingPSP{Client: env.Toss}
	svc, err := commands.New(env.Store, commands.OnePSP(psp), commands.Config{}, time.Now, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return svc, psp
}

// recordingSyncer passes calls through to a real Syncer and keeps the options of each.
type recordingSyncer struct {
	webhooks.Syncer
	mu    sync.Mutex
	calls []commands.ResolveOptions
}

func (r *recordingSyncer) Sync(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.ConfirmResult, error) {
	r.mu.Lock()
	r.calls = append(r.calls, opts)
	r.mu.Unlock()
	return r.Syncer.Sync(ctx, id, opts)
}

func (r *recordingSyncer) options() []commands.ResolveOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// openGates moves the clock of the read-back gates instead of sleeping: every order's last
// read-back becomes a day old.
func openGates(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(ctx, `UPDATE webhook_order_syncs SET synced_at = synced_at - interval '1 day'`); err != nil {
		t.Fatal(err)
	}
}

// drain runs ProcessOnce until it claims nothing.
func drain(t *testing.T, w *webhooks.Worker) int {
	t.Helper()
	total := 0
	for range 100 {
		n, err := w.ProcessOnce(ctx)
		if err != nil {
			t.Fatalf("process: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("the inbox never ran dry")
	return total
}
