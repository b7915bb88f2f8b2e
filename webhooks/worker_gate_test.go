package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/webhooks"
)

// TestWebhookAtAnotherMerchantsURL: a webhook at merchant A's URL naming merchant B's order
// (unresolved, so a read-back would record Toss's truth) is processed as an unknown order with
// no call to Toss; the same webhook at B's URL reads it back.
func TestWebhookAtAnotherMerchantsURL(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := unknownPayment(t, env, "DONE")
	svc, psp := countingService(t, env)
	syncer := &recordingSyncer{Syncer: svc}
	w := webhooks.NewWorker(env.Pool, syncer, webhooks.WorkerConfig{}, testenv.Logger(t))
	base := inboxMount(t, env.Pool, webhooks.InboxConfig{})
	body := forged(t, "webhook-payment-status-changed-done-race.json", co.OrderID)

	if a := post(t, base+"/"+string(otherMerchant), body, tid("whtrans_foreign")); a.Status != http.StatusOK {
		t.Fatalf("answer %+v", a)
	}
	drain(t, w)
	r := rowByKey(t, env.Pool, "whtrans_foreign")
	if r.Status != webhooks.StatusProcessed || str(r.Outcome) != webhooks.OutcomeUnknownOrder || str(r.MerchantID) != string(otherMerchant) {
		t.Fatalf("row %s %s merchant %s, want processed as an unknown order", r.Status, str(r.Outcome), str(r.MerchantID))
	}
	if n := psp.readBacks(co.OrderID); n != 0 {
		t.Fatalf("%d read-backs at Toss for another merchant's order, want 0", n)
	}
	if calls := syncer.options(); len(calls) != 1 || calls[0].Merchant != otherMerchant {
		t.Fatalf("Sync options %+v, want one call scoped to %s", calls, otherMerchant)
	}
	if p, err := domain.Rebuild(env.Events(t, co.OrderID)); err != nil || p.Status != domain.StatusUnknown {
		t.Fatalf("payment %s (%v): another merchant's webhook changed it", p.Status, err)
	}

	// The owner's URL: read back and resolved. The foreign row took the order's gate; open it.
	openGates(t, env.Pool)
	if a := post(t, base+"/"+string(testenv.Merchant), body, tid("whtrans_owner")); a.Status != http.StatusOK {
		t.Fatalf("answer %+v", a)
	}
	drain(t, w)
	if r := rowByKey(t, env.Pool, "whtrans_owner"); r.Status != webhooks.StatusProcessed || str(r.Outcome) != string(domain.StatusSuccess) {
		t.Fatalf("owner's row %s %s", r.Status, str(r.Outcome))
	}
	if n := psp.readBacks(co.OrderID); n != 1 {
		t.Fatalf("%d read-backs for the owner's webhook, want 1", n)
	}
}

// writeSpool writes spool lines as an inbox from before per-merchant URLs wrote them: no
// merchant.
func writeSpool(t *testing.T, dir string, lines ...spooled) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"merchant"`)) {
			t.Fatalf("a legacy line names a merchant: %s", b)
		}
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, "webhook-inbox.jsonl"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRowsWithoutMerchantAreReadBackAsBefore: rows stored before per-merchant URLs (here drained
// from an old spool) have no merchant and are read back without the merchant check. In a batch
// with a row at the owner's URL for the same order, the owner's read-back serves both.
func TestRowsWithoutMerchantAreReadBackAsBefore(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	alone, shared := unknownPayment(t, env, "DONE"), unknownPayment(t, env, "ABORTED")
	svc, psp := countingService(t, env)
	syncer := &recordingSyncer{Syncer: svc}
	dir := t.TempDir()
	legacy := func(id string, order domain.OrderID) spooled {
		return spooled{ReceivedAt: time.Now(), Headers: map[string][]string{webhooks.TransmissionIDHeader: {id}},
			Body: forged(t, "webhook-payment-status-changed-done-race.json", order)}
	}
	writeSpool(t, dir, legacy("whtrans_legacy_alone", alone.OrderID), legacy("whtrans_legacy_shared", shared.OrderID))
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	if a := post(t, url, forged(t, "webhook-payment-status-changed-aborted.json", shared.OrderID), tid("whtrans_owner_shared")); a.Status != http.StatusOK {
		t.Fatalf("answer %+v", a)
	}

	w := webhooks.NewWorker(env.Pool, syncer, webhooks.WorkerConfig{SpoolDir: dir}, testenv.Logger(t))
	if n := drain(t, w); n != 3 {
		t.Fatalf("claimed %d rows, want 3", n)
	}
	for key, want := range map[string]struct {
		merchant, outcome string
	}{
		"whtrans_legacy_alone":  {"<nil>", string(domain.StatusSuccess)},
		"whtrans_legacy_shared": {"<nil>", string(domain.StatusFailure)},
		"whtrans_owner_shared":  {string(testenv.Merchant), string(domain.StatusFailure)},
	} {
		r := rowByKey(t, env.Pool, key)
		if r.Status != webhooks.StatusProcessed || str(r.MerchantID) != want.merchant || str(r.Outcome) != want.outcome {
			t.Errorf("%s: %s merchant %s outcome %s, want %+v", key, r.Status, str(r.MerchantID), str(r.Outcome), want)
		}
	}
	if a, s := psp.readBacks(alone.OrderID), psp.readBacks(shared.OrderID); a != 1 || s != 1 {
		t.Fatalf("read-backs %d and %d, want one per order", a, s)
	}
	var scopes []domain.MerchantID
	for _, o := range syncer.options() {
		scopes = append(scopes, o.Merchant)
	}
	if len(scopes) != 2 || !(scopes[0] == "" && scopes[1] == testenv.Merchant || scopes[0] == testenv.Merchant && scopes[1] == "") {
		t.Fatalf("Sync scopes %q, want one unscoped (the lone legacy row) and one for %s", scopes, testenv.Merchant)
	}
}

// stuckPayment is an order UNKNOWN at our side that Toss still shows IN_PROGRESS: the worker
// may not start a new attempt, so it stays UNKNOWN and every Sync reads it back again.
func stuckPayment(t *testing.T, env *testenv.Env) domain.OrderID {
	t.Helper()
	return unknownPayment(t, env, "IN_PROGRESS").OrderID
}

// TestGateOneReadBackPerInterval: 50 deliveries naming one unresolved order, processed by two
// workers at once, make exactly one read-back; every row ends processed. Once the interval has
// passed (the clock is moved, not waited for), a new delivery gets its own read-back.
func TestGateOneReadBackPerInterval(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	order := stuckPayment(t, env)
	svc, psp := countingService(t, env)
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	const n = 50
	for i := range n {
		if a := post(t, url, paymentBody(string(order)), tid(fmt.Sprint("whtrans_", i))); a.Status != http.StatusOK {
			t.Fatalf("answer %+v", a)
		}
	}
	// An hour: the whole phase runs inside one interval however slow the machine.
	cfg := webhooks.WorkerConfig{SyncInterval: time.Hour}
	var wg sync.WaitGroup
	for range 2 {
		w := webhooks.NewWorker(env.Pool, svc, cfg, testenv.Logger(t))
		wg.Go(func() {
			for {
				got, err := w.ProcessOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if got == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if got := psp.readBacks(order); got != 1 {
		t.Fatalf("%d read-backs for %d deliveries within one interval, want 1", got, n)
	}
	for _, r := range rows(t, env.Pool) {
		if r.Status != webhooks.StatusProcessed || str(r.Outcome) != string(domain.StatusUnknown) {
			t.Fatalf("row %s: %s %s (%s), want processed", r.DedupeKey, r.Status, str(r.Outcome), str(r.LastError))
		}
	}

	openGates(t, env.Pool)
	if a := post(t, url, paymentBody(string(order)), tid("whtrans_later")); a.Status != http.StatusOK {
		t.Fatalf("answer %+v", a)
	}
	drain(t, webhooks.NewWorker(env.Pool, svc, cfg, testenv.Logger(t)))
	if got := psp.readBacks(order); got != 2 {
		t.Fatalf("%d read-backs after the interval, want 2", got)
	}
	if r := rowByKey(t, env.Pool, "whtrans_later"); r.Status != webhooks.StatusProcessed || r.Attempts != 1 {
		t.Fatalf("later row %s after %d attempts", r.Status, r.Attempts)
	}
}

// TestGatePostponesWithoutCountingAnAttempt: a delivery for an order read back within the
// interval waits, unattempted, until the gate opens; then it is read back.
func TestGatePostponesWithoutCountingAnAttempt(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	order := stuckPayment(t, env)
	svc, psp := countingService(t, env)
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	w := webhooks.NewWorker(env.Pool, svc, webhooks.WorkerConfig{SyncInterval: time.Hour}, testenv.Logger(t))
	if a := post(t, url, paymentBody(string(order)), tid("whtrans_first")); a.Status != http.StatusOK {
		t.Fatalf("answer %+v", a)
	}
	drain(t, w)
	if a := post(t, url, paymentBody(string(order)), tid("whtrans_second")); a.Status != http.StatusOK {
		t.Fatalf("answer %+v", a)
	}
	if n, err := w.ProcessOnce(ctx); n != 1 || err != nil {
		t.Fatalf("claimed %d (%v), want the second row", n, err)
	}
	var status string
	var attempts int
	var dueAtGate bool
	err := env.Pool.QueryRow(ctx, `
		SELECT w.status, w.attempts, w.next_attempt_at = s.synced_at + interval '1 hour'
		FROM webhook_inbox w JOIN webhook_order_syncs s ON s.order_id = w.order_id
		WHERE w.dedupe_key = 'whtrans_second'`).Scan(&status, &attempts, &dueAtGate)
	if err != nil {
		t.Fatal(err)
	}
	if status != webhooks.StatusPending || attempts != 0 || !dueAtGate || psp.readBacks(order) != 1 {
		t.Fatalf("postponed row %s, %d attempts, due when the gate opens: %v; %d read-backs", status, attempts, dueAtGate, psp.readBacks(order))
	}
	if n, err := w.ProcessOnce(ctx); n != 0 || err != nil {
		t.Fatalf("a postponed row was claimed before its gate opened: %d %v", n, err)
	}

	// Move the clock by the interval: the gate opens and the row is due.
	if _, err := env.Pool.Exec(ctx, `UPDATE webhook_inbox SET next_attempt_at = next_attempt_at - interval '1 hour' WHERE status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Pool.Exec(ctx, `UPDATE webhook_order_syncs SET synced_at = synced_at - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	drain(t, w)
	if r := rowByKey(t, env.Pool, "whtrans_second"); r.Status != webhooks.StatusProcessed || r.Attempts != 1 || psp.readBacks(order) != 2 {
		t.Fatalf("second row %s after %d attempts, %d read-backs", r.Status, r.Attempts, psp.readBacks(order))
	}
}

// TestPostponedRowsRunWhenTheGateOpens: with a short interval and Run, a delivery that arrives
// while the gate is closed is processed once it opens, in real time.
func TestPostponedRowsRunWhenTheGateOpens(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	order := stuckPayment(t, env)
	svc, psp := countingService(t, env)
	w := webhooks.NewWorker(env.Pool, svc, webhooks.WorkerConfig{SyncInterval: 200 * time.Millisecond, Interval: 20 * time.Millisecond}, testenv.Logger(t))
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{Notify: w.Wake})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	for i := range 3 {
		key := fmt.Sprint("whtrans_", i)
		if a := post(t, url, paymentBody(string(order)), tid(key)); a.Status != http.StatusOK {
			t.Fatalf("answer %+v", a)
		}
		testenv.WaitFor(t, 10*time.Second, key+" processed", func() bool {
			return rowByKey(t, env.Pool, key).Status == webhooks.StatusProcessed
		})
	}
	// Each delivery came after the previous one was processed, so none could share a read-back.
	if got := psp.readBacks(order); got != 3 {
		t.Fatalf("%d read-backs, want 3", got)
	}
}

// TestRetention: processed, rejected and failed rows older than the retention go, in batches;
// pending rows stay however old, and recent rows stay. Open gates go, closed ones stay. Run
// purges when it starts.
func TestRetention(t *testing.T) {
	pool := pgtest.NewPool(t)
	url := inboxServer(t, pool, webhooks.InboxConfig{})
	for _, age := range []string{"old", "new"} {
		for _, d := range []struct{ kind, body string }{
			{"failed", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-failed-` + age + `"}}`},
			{"processed", `{"eventType":"BILLING_DELETED","data":{}}`},
			{"rejected", `junk`},
		} {
			post(t, url, []byte(d.body), tid(age+"_"+d.kind))
		}
	}
	failing := webhooks.NewWorker(pool, &fakeSyncer{err: errors.New("toss is down")}, webhooks.WorkerConfig{MaxAttempts: 1}, testenv.Logger(t))
	drain(t, failing)
	for _, age := range []string{"old", "new"} {
		post(t, url, paymentBody("order-pending-"+age), tid(age+"_pending"))
	}
	const bulk = 2500 // more than two purge statements' worth
	if _, err := pool.Exec(ctx, `
		INSERT INTO webhook_inbox (dedupe_key, headers, body, received_at, status, outcome, processed_at)
		SELECT 'bulk_' || i, '{}', '\x7b7d', now() - interval '800 hours', 'processed', 'ignored event type', now() - interval '800 hours'
		FROM generate_series(1, $1) AS i`, bulk); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE webhook_inbox SET received_at = now() - interval '721 hours' WHERE dedupe_key LIKE 'old_%'`); err != nil {
		t.Fatal(err)
	}
	// The failing read-backs above closed their orders' gates; age them past the interval.
	if _, err := pool.Exec(ctx, `UPDATE webhook_order_syncs SET synced_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO webhook_order_syncs (order_id, synced_at)
		VALUES ('order-open', now() - interval '1 minute'), ('order-closed', now())`); err != nil {
		t.Fatal(err)
	}
	statuses := map[string]string{}
	for _, r := range rows(t, pool) {
		statuses[r.DedupeKey] = r.Status
	}
	for _, age := range []string{"old", "new"} {
		for _, kind := range []string{webhooks.StatusFailed, webhooks.StatusProcessed, webhooks.StatusRejected, webhooks.StatusPending} {
			if statuses[age+"_"+kind] != kind {
				t.Fatalf("precondition: %s_%s is %q", age, kind, statuses[age+"_"+kind])
			}
		}
	}

	w := webhooks.NewWorker(pool, &fakeSyncer{}, webhooks.WorkerConfig{SyncInterval: 5 * time.Second}, testenv.Logger(t))
	deleted, err := w.PurgeExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != bulk+3 {
		t.Errorf("deleted %d rows, want %d", deleted, bulk+3)
	}
	assertKeys(t, pool, `SELECT dedupe_key FROM webhook_inbox ORDER BY dedupe_key`,
		[]string{"new_failed", "new_pending", "new_processed", "new_rejected", "old_pending"})
	assertKeys(t, pool, `SELECT order_id FROM webhook_order_syncs`, []string{"order-closed"})

	// Run purges at start, with the configured retention.
	if _, err := pool.Exec(ctx, `UPDATE webhook_inbox SET received_at = now() - interval '2 hours' WHERE dedupe_key IN ('new_processed', 'new_pending')`); err != nil {
		t.Fatal(err)
	}
	// Its batches fail to read back, so the pending rows stay pending.
	short := webhooks.NewWorker(pool, &fakeSyncer{err: errors.New("toss is down")}, webhooks.WorkerConfig{Retention: time.Hour, Interval: time.Hour}, testenv.Logger(t))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- short.Run(runCtx) }()
	testenv.WaitFor(t, 10*time.Second, "Run to delete the row older than its retention", func() bool {
		return countRows(t, pool) == 4
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	assertKeys(t, pool, `SELECT dedupe_key FROM webhook_inbox ORDER BY dedupe_key`,
		[]string{"new_failed", "new_pending", "new_rejected", "old_pending"})
}

func assertKeys(t *testing.T, pool *pgxpool.Pool, query string, want []string) {
	t.Helper()
	rs, err := pool.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rs.Next() {
		var k string
		if err := rs.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: %q, want %q", query, got, want)
	}
}
