package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/webhooks"
)

func won(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// unknownPayment creates a checkout whose confirm ends UNKNOWN at our side while Toss ends it
// with outcome (DONE or ABORTED): Toss answers the confirm with an internal error.
func unknownPayment(t *testing.T, env *testenv.Env, outcome string) commands.CheckoutResult {
	t.Helper()
	co, err := env.Commands.Checkout(ctx, commands.CheckoutInput{
		Merchant: testenv.Merchant, OrderName: "Two books", BuyerID: "buyer-1",
		Lines: []domain.CheckoutLine{
			{SellerID: "seller-a", ProductID: "book-1", Amount: won("15000")},
			{SellerID: "seller-b", ProductID: "book-2", Amount: won("10000")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"orderId":%q,"amount":%s,"orderName":%q,"confirmError":"FAILED_INTERNAL_SYSTEM_PROCESSING","confirmErrorOutcome":%q}`,
		co.OrderID, co.Amount, co.OrderName, outcome)
	resp, err := http.Post(env.SimURL+"/sim/v1/sessions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ PaymentKey string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("session: %d %v", resp.StatusCode, err)
	}
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: domain.PaymentKey(out.PaymentKey), OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusUnknown {
		t.Fatalf("precondition: confirm %+v %v, want UNKNOWN", res, err)
	}
	if v, _ := env.Sim.Payment(string(co.OrderID)); string(v.Status) != outcome {
		t.Fatalf("precondition: Toss shows %s, want %s", v.Status, outcome)
	}
	return co
}

// forged returns a sample webhook body (a race sample) rewritten for orderID: its status says
// whatever the sample says, not what Toss did.
func forged(t *testing.T, sample string, orderID domain.OrderID) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, sample))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["data"].(map[string]any)["orderId"] = string(orderID)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func count(events []domain.Event, typ domain.EventType) int {
	n := 0
	for _, e := range events {
		if e.EventType() == typ {
			n++
		}
	}
	return n
}

// TestOutOfOrderWebhooksConvergeToTossTruth: Toss approved the payment; an ABORTED-looking
// webhook arrives first, then the DONE one, then the DONE one again. The stream ends SUCCESS
// with one approval, recorded by the webhook actor, and no second confirm. The read-back for
// the first resolves the second too: it was stored before the read-back started.
func TestOutOfOrderWebhooksConvergeToTossTruth(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := unknownPayment(t, env, "DONE")
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	aborted := forged(t, "webhook-payment-status-changed-aborted.json", co.OrderID)
	done := forged(t, "webhook-payment-status-changed-done-race.json", co.OrderID)
	for _, d := range []struct {
		body []byte
		id   string
	}{{aborted, "whtrans_aborted"}, {done, "whtrans_done"}, {done, "whtrans_done"}} {
		if a := post(t, url, d.body, tid(d.id)); a.Status != http.StatusOK {
			t.Fatalf("answer %+v", a)
		}
	}
	// One row at a time, in arrival order: the ABORTED one is claimed first.
	w := webhooks.NewWorker(env.Pool, env.Commands, webhooks.WorkerConfig{BatchSize: 1}, testenv.Logger(t))
	if n := drain(t, w); n != 1 {
		t.Fatalf("claimed %d rows, want 1 (its read-back resolves the other; the duplicate is not stored)", n)
	}
	events := env.Events(t, co.OrderID)
	p, err := domain.Rebuild(events)
	if err != nil || p.Status != domain.StatusSuccess {
		t.Fatalf("payment %s (%v), want SUCCESS", p.Status, err)
	}
	if n := count(events, domain.EventPaymentApproved); n != 1 {
		t.Fatalf("%d PaymentApproved, want 1", n)
	}
	if n := count(events, domain.EventPaymentRejected); n != 0 {
		t.Fatalf("%d PaymentRejected: the forged ABORTED body was trusted", n)
	}
	recs, err := env.Store.ReadStream(ctx, domain.StreamName(co.OrderID), 1)
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Type != string(domain.EventPaymentApproved) || last.Metadata.Actor != webhooks.Actor {
		t.Fatalf("last event %s by %q, want PaymentApproved by %q", last.Type, last.Metadata.Actor, webhooks.Actor)
	}
	if n := env.Sim.ConfirmsFor(string(co.OrderID)); n != 1 {
		t.Fatalf("%d confirms at Toss, want 1: the worker only reads back", n)
	}
	wantAttempts := map[string]int{"whtrans_aborted": 1, "whtrans_done": 0}
	for _, r := range rows(t, env.Pool) {
		if r.Status != webhooks.StatusProcessed || str(r.Outcome) != string(domain.StatusSuccess) || r.Attempts != wantAttempts[r.DedupeKey] {
			t.Errorf("row %s: %s %s after %d attempts", r.DedupeKey, r.Status, str(r.Outcome), r.Attempts)
		}
	}
}

// TestForgedDoneCannotApproveAnAbortedPayment: Toss aborted the payment; a DONE-looking webhook
// (and an ABORTED one) arrive in one batch. The stream ends FAILURE without an approval.
func TestForgedDoneCannotApproveAnAbortedPayment(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := unknownPayment(t, env, "ABORTED")
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	for _, d := range []struct {
		sample, id string
	}{{"webhook-payment-status-changed-done-race.json", "whtrans_done"}, {"webhook-payment-status-changed-aborted.json", "whtrans_aborted"}} {
		if a := post(t, url, forged(t, d.sample, co.OrderID), tid(d.id)); a.Status != http.StatusOK {
			t.Fatalf("answer %+v", a)
		}
	}
	w := webhooks.NewWorker(env.Pool, env.Commands, webhooks.WorkerConfig{}, testenv.Logger(t))
	if n := drain(t, w); n != 2 {
		t.Fatalf("processed %d rows, want 2", n)
	}
	events := env.Events(t, co.OrderID)
	p, err := domain.Rebuild(events)
	if err != nil || p.Status != domain.StatusFailure {
		t.Fatalf("payment %s (%v), want FAILURE", p.Status, err)
	}
	if n := count(events, domain.EventPaymentApproved); n != 0 {
		t.Fatalf("%d PaymentApproved: the forged DONE body was trusted", n)
	}
	if n := count(events, domain.EventPaymentRejected); n != 1 {
		t.Fatalf("%d PaymentRejected, want 1", n)
	}
	for _, r := range rows(t, env.Pool) {
		if r.Status != webhooks.StatusProcessed || str(r.Outcome) != string(domain.StatusFailure) {
			t.Errorf("row %s: %s %s", r.DedupeKey, r.Status, str(r.Outcome))
		}
	}
}

// TestFailingSyncBacksOffThenFails: every read-back fails; each attempt pushes the row further
// out (growing back-off), and after MaxAttempts it is failed with the last error.
func TestFailingSyncBacksOffThenFails(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	if a := post(t, url, []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1"}}`), tid("whtrans_1")); a.Status != 200 {
		t.Fatalf("answer %+v", a)
	}
	syncer := &fakeSyncer{err: errors.New("toss is down")}
	w := webhooks.NewWorker(env.Pool, syncer, webhooks.WorkerConfig{MaxAttempts: 3, BaseBackoff: 10 * time.Second, MaxBackoff: time.Hour}, testenv.Logger(t))
	// Attempt n waits BaseBackoff·2^(n-1), drawn from its upper half.
	bounds := [][2]time.Duration{{5 * time.Second, 10 * time.Second}, {10 * time.Second, 20 * time.Second}}
	for attempt := 1; attempt <= 3; attempt++ {
		if n, err := w.ProcessOnce(ctx); n != 1 || err != nil {
			t.Fatalf("attempt %d: claimed %d (%v)", attempt, n, err)
		}
		if n, err := w.ProcessOnce(ctx); n != 0 || err != nil {
			t.Fatalf("attempt %d: the row is due again at once (%d, %v)", attempt, n, err)
		}
		var status, lastError string
		var attempts int
		var wait time.Duration
		err := env.Pool.QueryRow(ctx, `SELECT status, last_error, attempts, next_attempt_at - now() FROM webhook_inbox`).Scan(&status, &lastError, &attempts, &wait)
		if err != nil {
			t.Fatal(err)
		}
		if attempts != attempt || lastError != "toss is down" {
			t.Fatalf("attempt %d: attempts %d, last error %q", attempt, attempts, lastError)
		}
		if attempt < 3 {
			b := bounds[attempt-1]
			if status != webhooks.StatusPending || wait < b[0]-time.Second || wait > b[1] {
				t.Fatalf("attempt %d: %s, next attempt in %s, want %s..%s", attempt, status, wait, b[0], b[1])
			}
			// Move the clock instead of sleeping: make the row due and open the order's gate.
			if _, err := env.Pool.Exec(ctx, `UPDATE webhook_inbox SET next_attempt_at = now()`); err != nil {
				t.Fatal(err)
			}
			openGates(t, env.Pool)
		} else if status != webhooks.StatusFailed {
			t.Fatalf("after %d attempts the row is %s, want failed", attempt, status)
		}
	}
	if _, err := env.Pool.Exec(ctx, `UPDATE webhook_inbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	openGates(t, env.Pool)
	if n := drain(t, w); n != 0 || syncer.total() != 3 {
		t.Fatalf("a failed row was claimed again: %d claimed, %d calls", n, syncer.total())
	}
}

// TestRunStartsWhenTheInboxNotifies: with a one-hour poll, only the inbox's Notify can make the
// worker process a second delivery.
func TestRunStartsWhenTheInboxNotifies(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	syncer := &fakeSyncer{status: domain.StatusSuccess}
	w := webhooks.NewWorker(env.Pool, syncer, webhooks.WorkerConfig{Interval: time.Hour}, testenv.Logger(t))
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
	for _, order := range []domain.OrderID{"order-1", "order-2"} {
		body := fmt.Sprintf(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":%q}}`, order)
		if a := post(t, url, []byte(body), tid("whtrans_"+string(order))); a.Status != 200 {
			t.Fatalf("answer %+v", a)
		}
		testenv.WaitFor(t, 10*time.Second, "the worker to process "+string(order), func() bool {
			return rowByKey(t, env.Pool, "whtrans_"+string(order)).Status == webhooks.StatusProcessed
		})
	}
	if syncer.callsFor("order-1") != 1 || syncer.callsFor("order-2") != 1 {
		t.Fatalf("calls %v", syncer.calls)
	}
}

// TestConcurrentWorkersClaimEachRowOnce: two workers on one table share the rows.
func TestConcurrentWorkersClaimEachRowOnce(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	const n = 40
	for i := range n {
		body := fmt.Sprintf(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-%d"}}`, i)
		if a := post(t, url, []byte(body), tid(fmt.Sprintf("whtrans_%d", i))); a.Status != 200 {
			t.Fatalf("answer %+v", a)
		}
	}
	syncer := &fakeSyncer{status: domain.StatusSuccess}
	var wg sync.WaitGroup
	claimed := make([]int, 2)
	for i := range claimed {
		w := webhooks.NewWorker(env.Pool, syncer, webhooks.WorkerConfig{BatchSize: n}, testenv.Logger(t))
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
				claimed[i] += got
			}
		})
	}
	wg.Wait()
	if claimed[0]+claimed[1] != n || syncer.total() != n {
		t.Fatalf("claimed %v, %d calls, want %d in all", claimed, syncer.total(), n)
	}
	for i := range n {
		if c := syncer.callsFor(domain.OrderID(fmt.Sprintf("order-%d", i))); c != 1 {
			t.Fatalf("order-%d read back %d times", i, c)
		}
	}
}

// TestRowsOfOneOrderShareOneReadBack: a batch holding several deliveries for one order reads it
// back once.
func TestRowsOfOneOrderShareOneReadBack(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	for i := range 3 {
		if a := post(t, url, []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1"}}`), tid(fmt.Sprint("whtrans_", i))); a.Status != 200 {
			t.Fatalf("answer %+v", a)
		}
	}
	syncer := &fakeSyncer{status: domain.StatusSuccess}
	w := webhooks.NewWorker(env.Pool, syncer, webhooks.WorkerConfig{}, testenv.Logger(t))
	if n := drain(t, w); n != 3 || syncer.callsFor("order-1") != 1 {
		t.Fatalf("%d rows, %d read-backs; want 3 rows, 1 read-back", n, syncer.callsFor("order-1"))
	}
}

// TestFailedReadBackCountsForEveryRowOfTheOrder: when the one read-back of an order's rows fails,
// each row gets its attempt and its back-off. Ending the first row's lease must not cancel the
// work of the others (which would give them back as if never tried, due again at once).
func TestFailedReadBackCountsForEveryRowOfTheOrder(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	for i := range 3 {
		if a := post(t, url, []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1"}}`), tid(fmt.Sprint("whtrans_", i))); a.Status != 200 {
			t.Fatalf("answer %+v", a)
		}
	}
	syncer := &fakeSyncer{err: errors.New("toss is down")}
	w := webhooks.NewWorker(env.Pool, syncer, webhooks.WorkerConfig{}, testenv.Logger(t))
	if n, err := w.ProcessOnce(ctx); n != 3 || err != nil {
		t.Fatalf("ProcessOnce: %d rows, %v; want 3", n, err)
	}
	rows, err := env.Pool.Query(ctx, `SELECT id, status, attempts, next_attempt_at > now() FROM webhook_inbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id int64
		var status string
		var attempts int
		var later bool
		if err := rows.Scan(&id, &status, &attempts, &later); err != nil {
			t.Fatal(err)
		}
		n++
		if status != "pending" || attempts != 1 || !later {
			t.Errorf("row %d: %s, %d attempts, due later %t; want pending, 1 attempt, backed off", id, status, attempts, later)
		}
	}
	if n != 3 || syncer.callsFor("order-1") != 1 {
		t.Fatalf("%d rows, %d read-backs; want 3 rows, 1 read-back", n, syncer.callsFor("order-1"))
	}
}

// TestConsoleRefundIsBookedFromItsWebhook: a refund made in Toss's merchant console reaches the
// ledger through Toss's webhook, not only at the daily reconciliation: the worker's read-back
// books it as PaymentCanceledAtPSP, once, and calls no cancel itself.
func TestConsoleRefundIsBookedFromItsWebhook(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, key := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-1", Amount: won("25000")})
	four := won("4000")
	if _, err := env.Sim.ConsoleCancel(string(key), &four, "고객 변심 (console)"); err != nil {
		t.Fatal(err)
	}
	url := inboxServer(t, env.Pool, webhooks.InboxConfig{})
	// Toss's webhook names the order; the body is only a hint, the worker reads the payment back.
	body := forged(t, "webhook-payment-status-changed-done.json", co.OrderID)
	for range 2 {
		if a := post(t, url, body, tid("whtrans_console")); a.Status != http.StatusOK {
			t.Fatalf("answer %+v", a)
		}
	}
	w := webhooks.NewWorker(env.Pool, env.Commands, webhooks.WorkerConfig{}, testenv.Logger(t))
	drain(t, w)

	events := env.Events(t, co.OrderID)
	p, err := domain.Rebuild(events)
	if err != nil || p.Status != domain.StatusPartiallyCanceled || !p.Balance.Equal(won("21000")) {
		t.Fatalf("payment %s balance %s (%v), want PARTIALLY_CANCELED with 21000 left", p.Status, p.Balance, err)
	}
	if n := count(events, domain.EventPaymentCanceledAtPSP); n != 1 {
		t.Fatalf("%d PaymentCanceledAtPSP, want 1", n)
	}
	if n := count(events, domain.EventCancelRequested); n != 0 {
		t.Fatalf("%d CancelRequested: the worker must only read back", n)
	}
	recs, err := env.Store.ReadStream(ctx, domain.StreamName(co.OrderID), 1)
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Type != string(domain.EventPaymentCanceledAtPSP) || last.Metadata.Actor != webhooks.Actor {
		t.Fatalf("last event %s by %q, want PaymentCanceledAtPSP by %q", last.Type, last.Metadata.Actor, webhooks.Actor)
	}
	// The next webhook of the same payment books nothing more.
	if a := post(t, url, body, tid("whtrans_console_2")); a.Status != http.StatusOK {
		t.Fatalf("answer %+v", a)
	}
	drain(t, w)
	if n := len(env.Events(t, co.OrderID)); n != len(events) {
		t.Fatalf("%d events after a second webhook, want %d", n, len(events))
	}
}
