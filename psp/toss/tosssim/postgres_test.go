package tosssim

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/internal/pgtest"
)

// openHarness opens a persisted simulator on pool, reading clock, and serves it. stop (also
// run at cleanup) closes the server and the simulator, as a restart would.
func openHarness(t *testing.T, pool *pgxpool.Pool, clock *fakeClock, cfg Config) (h *harness, stop func()) {
	t.Helper()
	cfg.Now = clock.Now
	sim, err := Open(context.Background(), cfg, pool)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			sim.Close()
		})
	}
	t.Cleanup(stop)
	return &harness{t: t, sim: sim, clock: clock, base: srv.URL}, stop
}

// snapshot is everything a client can read about the simulator's truth for the test's orders.
type snapshot struct {
	byOrder, byKey         map[string]string // body of GET /v1/payments/…
	transactions, settlmts string
	confirms               map[string]int
	views                  map[string]PaymentView
}

func (h *harness) snapshot(keys map[string]string) snapshot {
	h.t.Helper()
	s := snapshot{byOrder: map[string]string{}, byKey: map[string]string{}, confirms: map[string]int{}, views: map[string]PaymentView{}}
	for orderID, key := range keys {
		s.byOrder[orderID] = string(h.get("/v1/payments/orders/" + orderID))
		s.byKey[orderID] = string(h.get("/v1/payments/" + key))
		s.confirms[orderID] = h.sim.ConfirmsFor(orderID)
		s.views[orderID], _ = h.sim.Payment(orderID)
	}
	s.transactions = string(h.get("/v1/transactions?startDate=2025-11-21&endDate=2025-11-23"))
	s.settlmts = string(h.get("/v1/settlements?startDate=2025-11-21&endDate=2025-11-23"))
	return s
}

func (h *harness) get(path string) []byte {
	h.t.Helper()
	r := h.call("GET", path, nil, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	return r.body
}

// sameView compares views, amounts by value (decimal.Decimal's fields are not comparable).
func sameView(a, b PaymentView) bool {
	if !a.TotalAmount.Equal(b.TotalAmount) || !a.BalanceAmount.Equal(b.BalanceAmount) {
		return false
	}
	a.TotalAmount, a.BalanceAmount, b.TotalAmount, b.BalanceAmount = decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
	return a == b
}

func TestPersistedStateSurvivesRestart(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := newFakeClock()
	h, stop := openHarness(t, pool, clock, Config{})

	// The payment that is confirmed and partially canceled twice.
	const order = "order-persist-1"
	key, err := h.sim.CreateSession(order, decimal.NewFromInt(50000), "토스 티셔츠")
	if err != nil {
		t.Fatal(err)
	}
	// A session replaced by a newer one: its key must stay taken after the restart.
	replacedKey, err := h.sim.CreateSession("order-persist-2", decimal.NewFromInt(1000), "")
	if err != nil {
		t.Fatal(err)
	}
	secondKey, err := h.sim.CreateSession("order-persist-2", decimal.NewFromInt(1000), "")
	if err != nil {
		t.Fatal(err)
	}
	// A session that expires, found out by a GET, before the restart.
	expiringKey, err := h.sim.CreateSession("order-persist-3", decimal.NewFromInt(2000), "")
	if err != nil {
		t.Fatal(err)
	}

	confirmed := h.confirm(key, order, 50000, "confirm-1")
	if confirmed.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", confirmed.status, confirmed.body)
	}
	clock.Advance(11 * time.Minute)
	if p := decode(t, h.get("/v1/payments/"+expiringKey)); p["status"] != "EXPIRED" {
		t.Fatalf("expiring payment: %v", p["status"])
	}
	// A session whose confirm answers an injected error twice, leaving it IN_PROGRESS; one
	// answer is used up before the restart, one after.
	failingKey, err := h.sim.CreateSessionWith(SessionRequest{OrderID: "order-persist-4", Amount: decimal.NewFromInt(3000),
		ConfirmError: "PROVIDER_ERROR", ConfirmErrorTimes: 2, ConfirmErrorOutcome: StatusInProgress})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, h.confirm(failingKey, "order-persist-4", 3000, ""), 400, "PROVIDER_ERROR")

	clock.Advance(2 * time.Second)
	firstCancel := h.cancel(key, map[string]any{"cancelReason": "한 벌 반품", "cancelAmount": 10000}, "cancel-1")
	if firstCancel.status != http.StatusOK {
		t.Fatalf("first cancel: %d %s", firstCancel.status, firstCancel.body)
	}
	clock.Advance(2 * time.Second)
	if r := h.cancel(key, map[string]any{"cancelReason": "또 반품", "cancelAmount": 5000}, "cancel-2"); r.status != http.StatusOK {
		t.Fatalf("second cancel: %d %s", r.status, r.body)
	}
	clock.Advance(300 * time.Millisecond) // still inside the 1-second rule after the restart

	keys := map[string]string{order: key, "order-persist-2": secondKey, "order-persist-3": expiringKey, "order-persist-4": failingKey}
	before := h.snapshot(keys)
	if v := before.views[order]; v.Status != StatusPartialCanceled || !v.BalanceAmount.Equal(decimal.NewFromInt(35000)) || v.Cancels != 2 {
		t.Fatalf("before the restart: %+v", v)
	}

	stop()
	h, _ = openHarness(t, pool, clock, Config{})

	after := h.snapshot(keys)
	for orderID := range keys {
		if after.byOrder[orderID] != before.byOrder[orderID] {
			t.Errorf("GET by orderId %s after the restart:\n%s\nbefore:\n%s", orderID, after.byOrder[orderID], before.byOrder[orderID])
		}
		if after.byKey[orderID] != before.byKey[orderID] {
			t.Errorf("GET by paymentKey %s after the restart:\n%s\nbefore:\n%s", orderID, after.byKey[orderID], before.byKey[orderID])
		}
		if after.confirms[orderID] != before.confirms[orderID] {
			t.Errorf("ConfirmsFor(%s) = %d after the restart, %d before", orderID, after.confirms[orderID], before.confirms[orderID])
		}
		if !sameView(after.views[orderID], before.views[orderID]) {
			t.Errorf("Payment(%s) = %+v after the restart, %+v before", orderID, after.views[orderID], before.views[orderID])
		}
	}
	if after.transactions != before.transactions {
		t.Errorf("transactions after the restart:\n%s\nbefore:\n%s", after.transactions, before.transactions)
	}
	if after.settlmts != before.settlmts {
		t.Errorf("settlements after the restart:\n%s\nbefore:\n%s", after.settlmts, before.settlmts)
	}
	if n := len(decodeList(t, []byte(after.transactions))); n != 3 {
		t.Errorf("%d transactions, want the approval and two cancels", n)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Stored answers replay byte for byte, and a replay executes nothing.
	if r := h.confirm(key, order, 50000, "confirm-1"); r.status != confirmed.status || !bytes.Equal(r.body, confirmed.body) {
		t.Fatalf("confirm replay after the restart: %d %s\nfirst answer: %d %s", r.status, r.body, confirmed.status, confirmed.body)
	}
	if r := h.cancel(key, map[string]any{"cancelReason": "한 벌 반품", "cancelAmount": 10000}, "cancel-1"); !bytes.Equal(r.body, firstCancel.body) {
		t.Fatalf("cancel replay after the restart: %d %s\nfirst answer: %s", r.status, r.body, firstCancel.body)
	}
	if n := h.sim.ConfirmsFor(order); n != before.confirms[order] {
		t.Fatalf("ConfirmsFor after a replay = %d, want %d", n, before.confirms[order])
	}

	// The last cancel was 300 ms ago by the clock.
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "너무 빨리"}, ""), 403, "FORBIDDEN_CONSECUTIVE_REQUEST")
	clock.Advance(time.Second)
	if r := h.cancel(key, map[string]any{"cancelReason": "나머지"}, ""); r.status != http.StatusOK {
		t.Fatalf("cancel a second later: %d %s", r.status, r.body)
	}

	// The injected confirm error has one answer left, then the confirm goes through.
	wantError(t, h.confirm(failingKey, "order-persist-4", 3000, ""), 400, "PROVIDER_ERROR")
	if r := h.confirm(failingKey, "order-persist-4", 3000, ""); r.status != http.StatusOK {
		t.Fatalf("confirm after the injected errors: %d %s", r.status, r.body)
	}

	// New payment keys never collide with old ones, live or replaced, even at the same second.
	for i := range 20 {
		newKey, err := h.sim.CreateSession("order-persist-new-"+string(rune('a'+i)), decimal.NewFromInt(1000), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, old := range []string{key, replacedKey, secondKey, expiringKey, failingKey} {
			if newKey == old {
				t.Fatalf("new paymentKey %s was issued before the restart", newKey)
			}
		}
	}
	wantError(t, h.call("GET", "/v1/payments/"+replacedKey, nil, nil), 404, "NOT_FOUND_PAYMENT")
}

func TestOpenRefusesSecondSimulator(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	var projectVersion int64
	if err := pool.QueryRow(ctx, "SELECT max(version_id) FROM public.goose_db_version").Scan(&projectVersion); err != nil {
		t.Fatal(err)
	}

	first, err := Open(ctx, Config{}, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Close)

	// Another process would use its own pool; the lock is the database's either way.
	other, err := pgxpool.New(ctx, pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	second, err := Open(ctx, Config{}, other)
	if !errors.Is(err, ErrSchemaOwned) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second Open: %v, want ErrSchemaOwned", err)
	}
	if !strings.Contains(err.Error(), "another simulator owns this database's tosssim schema") {
		t.Fatalf("error %q does not say who owns the schema", err)
	}

	first.Close()
	first.Close() // a second Close is harmless
	if _, err := first.CreateSession("order-after-close", decimal.NewFromInt(1000), ""); err == nil {
		t.Fatal("a closed simulator accepted a change")
	} else if e := (*Error)(nil); !errors.As(err, &e) || e.Status != 500 || e.Code != "FAILED_INTERNAL_SYSTEM_PROCESSING" {
		t.Fatalf("change after Close: %v", err)
	}

	third, err := Open(ctx, Config{}, other)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	third.Close()

	// The simulator's tables and goose's version table for them live in tosssim; the project's
	// migrations are untouched.
	var version int64
	if err := pool.QueryRow(ctx, "SELECT max(version_id) FROM public.goose_db_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != projectVersion {
		t.Fatalf("public.goose_db_version went from %d to %d", projectVersion, version)
	}
	// Every embedded migration is applied, the newest last.
	files, err := fs.Glob(migrationFiles, "sql/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var simVersion int64
	if err := pool.QueryRow(ctx, "SELECT max(version_id) FROM tosssim.goose_db_version").Scan(&simVersion); err != nil || simVersion != int64(len(files)) {
		t.Fatalf("tosssim.goose_db_version: %d, %v; want %d", simVersion, err, len(files))
	}
}

// refuseWrites makes every INSERT and UPDATE on table fail, as a broken disk or a revoked
// privilege would, until the returned function removes the trigger.
func refuseWrites(t *testing.T, pool *pgxpool.Pool, table string) (allow func()) {
	t.Helper()
	ctx := context.Background()
	stmts := []string{
		`CREATE OR REPLACE FUNCTION public.tosssim_test_refuse() RETURNS trigger LANGUAGE plpgsql AS
		 $$ BEGIN RAISE EXCEPTION 'write refused by the test'; END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON tosssim.` + table + ` FOR EACH ROW EXECUTE FUNCTION public.tosssim_test_refuse()`,
	}
	for _, q := range stmts {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		t.Helper()
		if _, err := pool.Exec(ctx, `DROP TRIGGER refuse ON tosssim.`+table); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStoreRefusalAnswers500AndChangesNothing(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := newFakeClock()
	h, stop := openHarness(t, pool, clock, Config{})

	// A session the store refuses does not exist.
	allow := refuseWrites(t, pool, "payments")
	_, err := h.sim.CreateSession("order-refused-1", decimal.NewFromInt(1000), "")
	if e := (*Error)(nil); !errors.As(err, &e) || e.Code != "FAILED_INTERNAL_SYSTEM_PROCESSING" {
		t.Fatalf("session while payments are refused: %v", err)
	}
	if _, ok := h.sim.Payment("order-refused-1"); ok {
		t.Fatal("the refused session is in memory")
	}
	allow()

	const order = "order-refused-2"
	key, err := h.sim.CreateSession(order, decimal.NewFromInt(30000), "")
	if err != nil {
		t.Fatal(err)
	}

	// The approval's transaction row is refused: no approval, and the 500 is not kept.
	allow = refuseWrites(t, pool, "transactions")
	wantError(t, h.confirm(key, order, 30000, "confirm-refused"), 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	if v, _ := h.sim.Payment(order); v.Status != StatusInProgress || v.Approvals != 0 || v.LastTransactionKey != "" {
		t.Fatalf("after a refused confirm: %+v", v)
	}
	if p := decode(t, h.get("/v1/payments/"+key)); p["status"] != "IN_PROGRESS" {
		t.Fatalf("GET after a refused confirm: %v", p["status"])
	}
	if rows := decodeList(t, h.get("/v1/transactions?startDate=2025-11-21&endDate=2025-11-23")); len(rows) != 0 {
		t.Fatalf("transactions after a refused confirm: %v", rows)
	}
	allow()
	confirmed := h.confirm(key, order, 30000, "confirm-refused") // executes: nothing was kept
	if confirmed.status != http.StatusOK || decode(t, confirmed.body)["status"] != "DONE" {
		t.Fatalf("retry under the same key: %d %s", confirmed.status, confirmed.body)
	}

	// A cancel whose row is refused leaves balance and the 1-second rule as they were.
	clock.Advance(2 * time.Second)
	allow = refuseWrites(t, pool, "cancels")
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "반품", "cancelAmount": 10000}, "cancel-refused"), 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	if v, _ := h.sim.Payment(order); v.Status != StatusDone || !v.BalanceAmount.Equal(decimal.NewFromInt(30000)) || v.Cancels != 0 {
		t.Fatalf("after a refused cancel: %+v", v)
	}
	allow()
	// No clock advance: the refused cancel did not start the 1-second rule.
	canceled := h.cancel(key, map[string]any{"cancelReason": "반품", "cancelAmount": 10000}, "cancel-refused")
	if canceled.status != http.StatusOK {
		t.Fatalf("cancel retried under the same key: %d %s", canceled.status, canceled.body)
	}

	// An answer that changes nothing is refused too: the NOT_FOUND below is not kept.
	allow = refuseWrites(t, pool, "idempotent_answers")
	wantError(t, h.cancel("no-such-key", map[string]any{"cancelReason": "r"}, "cancel-unknown"), 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	allow()
	wantError(t, h.cancel("no-such-key", map[string]any{"cancelReason": "r"}, "cancel-unknown"), 404, "NOT_FOUND_PAYMENT")

	// What memory shows is what was saved.
	before := h.snapshot(map[string]string{order: key})
	stop()
	h, _ = openHarness(t, pool, clock, Config{})
	after := h.snapshot(map[string]string{order: key})
	if after.byKey[order] != before.byKey[order] || after.transactions != before.transactions || after.confirms[order] != before.confirms[order] {
		t.Fatalf("after the restart:\n%+v\nbefore:\n%+v", after, before)
	}
	if after.confirms[order] != 2 { // the refused confirm executed (and was counted), then its retry
		t.Fatalf("ConfirmsFor = %d, want 2", after.confirms[order])
	}
	if r := h.cancel(key, nil, "cancel-refused"); !bytes.Equal(r.body, canceled.body) {
		t.Fatalf("replay of the cancel: %s, want %s", r.body, canceled.body)
	}
}

func TestLostConnectionRefusesEveryLaterChange(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	clock := newFakeClock()
	h, stop := openHarness(t, pool, clock, Config{})
	const order = "order-lost-conn"
	key, err := h.sim.CreateSession(order, decimal.NewFromInt(1000), "")
	if err != nil {
		t.Fatal(err)
	}

	// End the simulator's session: the one holding the owner lock. The timeout makes
	// pg_terminate_backend wait until the server process is gone.
	var terminated bool
	err = pool.QueryRow(ctx, `
		SELECT pg_terminate_backend(pid, 10000) FROM pg_locks
		 WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		   AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`,
		ownerLockKey).Scan(&terminated)
	if err != nil || !terminated {
		t.Fatalf("terminate the simulator's session: %v, %v", terminated, err)
	}

	wantError(t, h.confirm(key, order, 1000, "confirm-lost"), 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	if v, _ := h.sim.Payment(order); v.Status != StatusInProgress {
		t.Fatalf("after the lost connection: %+v", v)
	}
	// The simulator cannot tell what the database has, and no longer owns it: it refuses
	// every change, while reads still answer from memory.
	wantError(t, h.confirm(key, order, 1000, "confirm-lost"), 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	if _, err := h.sim.CreateSession("order-lost-conn2", decimal.NewFromInt(1000), ""); err == nil {
		t.Fatal("a session was accepted after the connection was lost")
	}
	if p := decode(t, h.get("/v1/payments/"+key)); p["status"] != "IN_PROGRESS" {
		t.Fatalf("GET: %v", p["status"])
	}

	stop()
	h, _ = openHarness(t, pool, clock, Config{})
	if r := h.confirm(key, order, 1000, "confirm-lost"); r.status != http.StatusOK {
		t.Fatalf("confirm after reopening: %d %s", r.status, r.body)
	}
}

func TestSettlementFeeRateSurvivesRestart(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := newFakeClock()
	h, stop := openHarness(t, pool, clock, Config{})

	own := h.session("order-fee-own", 10000, map[string]any{"settlementFeeRate": "0.05"})
	if r := h.confirm(own, "order-fee-own", 10000, ""); r.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	clock.Advance(time.Second) // one row per second: rows of one second come in key order
	contract := h.paid("order-fee-contract", 10000)
	clock.Advance(time.Second)
	set := h.paid("order-fee-set", 10000)
	if err := h.sim.SetSettlementFeeRate(set, decimal.RequireFromString("0.01")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if r := h.cancel(own, map[string]any{"cancelReason": "부분", "cancelAmount": 4000}, ""); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}

	keys := map[string]string{"order-fee-own": own, "order-fee-contract": contract, "order-fee-set": set}
	before := h.snapshot(keys)
	// 5 %: 500 + 50, then −(200 + 20) on the cancel of 4000; the contract's 3 %: 300 + 30; 1 %: 100 + 10.
	const want = "order-fee-own:10000:550,order-fee-contract:10000:330,order-fee-set:10000:110,order-fee-own:-4000:-220"
	if got := amountsOf(t, decodeList(t, []byte(before.settlmts)), "orderId", "amount", "fee"); got != want {
		t.Fatalf("settlements before the restart: %s\nwant %s", got, want)
	}
	stop()
	h, _ = openHarness(t, pool, clock, Config{})
	after := h.snapshot(keys)
	if after.settlmts != before.settlmts {
		t.Fatalf("settlements after the restart:\n%s\nbefore:\n%s", after.settlmts, before.settlmts)
	}

	// A rate set after the restart is saved like the others and replaces the reloaded one.
	if err := h.sim.SetSettlementFeeRate(own, decimal.RequireFromString("0.02")); err != nil {
		t.Fatal(err)
	}
	const changed = "order-fee-own:10000:220,order-fee-contract:10000:330,order-fee-set:10000:110,order-fee-own:-4000:-88"
	if got := amountsOf(t, decodeList(t, h.get("/v1/settlements?startDate=2025-11-21&endDate=2025-11-23")), "orderId", "amount", "fee"); got != changed {
		t.Fatalf("settlements after a new rate: %s\nwant %s", got, changed)
	}
}
