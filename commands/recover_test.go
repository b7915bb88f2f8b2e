package commands_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
)

// flakyPSP fails the first failures confirm calls with a transport error (an unknown outcome)
// before passing calls on to the real client, and records the idempotency keys it saw.
type flakyPSP struct {
	*toss.Client
	mu       sync.Mutex
	failures int
	keys     []string
}

func (f *flakyPSP) Confirm(ctx context.Context, req toss.ConfirmRequest, key string) (*toss.Payment, error) {
	f.mu.Lock()
	f.keys = append(f.keys, key)
	fail := len(f.keys) <= f.failures
	f.mu.Unlock()
	if fail {
		return nil, &toss.Error{Op: "confirm", Class: toss.ClassUnknownOutcome, Err: fmt.Errorf("connection reset by peer")}
	}
	return f.Client.Confirm(ctx, req, key)
}

func (f *flakyPSP) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

func fastRetry(attempts int) commands.RetryPolicy {
	return commands.RetryPolicy{MaxAttempts: attempts, Budget: 5 * time.Second, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}
}

func TestUnknownOutcomesAreRetriedUnderTheSameKey(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	psp := &flakyPSP{Client: env.Toss, failures: 2}
	svc, err := commands.New(env.Store, commands.OnePSP(psp), commands.Config{Retry: fastRetry(4)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	co, key := checkoutAndAuthenticate(t, env)
	res, err := svc.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	keys := psp.seen()
	if len(keys) != 3 {
		t.Fatalf("%d calls, want 3 (two failures, then success)", len(keys))
	}
	for _, k := range keys {
		if k != string(co.OrderID)+":confirm:1" {
			t.Fatalf("keys %v: every retry must reuse the attempt's key", keys)
		}
	}
}

func TestRetryBudgetEndsInUnknown(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	psp := &flakyPSP{Client: env.Toss, failures: 1000}
	svc, err := commands.New(env.Store, commands.OnePSP(psp), commands.Config{Retry: fastRetry(5)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	co, key := checkoutAndAuthenticate(t, env)
	res, err := svc.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusUnknown {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	if n := len(psp.seen()); n != 5 {
		t.Fatalf("%d calls, want the policy's 5", n)
	}
	last := env.Events(t, co.OrderID)[2].(domain.PaymentOutcomeUnknown)
	if last.Code != "NETWORK_ERROR" {
		t.Fatalf("unknown code %q, want NETWORK_ERROR", last.Code)
	}
}

func TestAlreadyProcessedIsApprovedOnlyAfterAMatchingReadBack(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, key := checkoutAndAuthenticate(t, env)
	// Toss approves the payment under another key (say, our earlier process that crashed
	// before it could record anything).
	if _, err := env.Toss.Confirm(ctx, toss.ConfirmRequest{PaymentKey: string(key), OrderID: string(co.OrderID), Amount: co.Amount}, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	if n := env.Sim.Stats().Approvals; n != 1 {
		t.Fatalf("%d approvals at the simulator, want 1", n)
	}
}

func TestRecoverRecordsWhatTossDid(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, err := env.Commands.Checkout(ctx, twoLines())
	if err != nil {
		t.Fatal(err)
	}
	// Toss approves the payment but answers with an error (a lost response): we record UNKNOWN.
	key := session(t, env, co, `"confirmError":"FAILED_INTERNAL_SYSTEM_PROCESSING","confirmErrorOutcome":"DONE"`)
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusUnknown {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	res, err = env.Commands.ResolveConfirm(ctx, co.OrderID, commands.ResolveOptions{Actor: "recovery"})
	if err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("recover: %+v %v", res, err)
	}
	if n := env.Sim.ConfirmsFor(string(co.OrderID)); n != 1 {
		t.Fatalf("%d confirms executed, want 1: recovery reads back, it does not confirm again", n)
	}
}

func TestRecoverStartsANewAttemptWhileTossShowsInProgress(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, err := env.Commands.Checkout(ctx, twoLines())
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt's answer is a transient error stored under its key: retrying that key
	// can never succeed. The read-back shows IN_PROGRESS, so a new attempt (new key) is safe.
	key := session(t, env, co, `"confirmError":"PROVIDER_ERROR"`)
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil || res.Status != domain.StatusUnknown {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	if res, err := env.Commands.ResolveConfirm(ctx, co.OrderID, commands.ResolveOptions{Actor: "webhook"}); err != nil || res.Status != domain.StatusUnknown {
		t.Fatalf("recover without new attempts: %+v %v, want still UNKNOWN", res, err)
	}
	res, err = env.Commands.ResolveConfirm(ctx, co.OrderID, commands.ResolveOptions{NewAttempt: true, Actor: "recovery"})
	if err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("recover: %+v %v", res, err)
	}
	var attempts []string
	for _, e := range env.Events(t, co.OrderID) {
		if s, ok := e.(domain.ConfirmationStarted); ok {
			attempts = append(attempts, s.PSPIdempotencyKey)
		}
	}
	if strings.Join(attempts, ",") != fmt.Sprintf("%s:confirm:1,%s:confirm:2", co.OrderID, co.OrderID) {
		t.Fatalf("attempt keys %v", attempts)
	}
	if n := env.Sim.Stats().Approvals; n != 1 {
		t.Fatalf("%d approvals, want 1", n)
	}
}

func TestMarkExhaustedFlagsForReview(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	psp := &flakyPSP{Client: env.Toss, failures: 1000}
	svc, err := commands.New(env.Store, commands.OnePSP(psp), commands.Config{Retry: fastRetry(1)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	co, key := checkoutAndAuthenticate(t, env)
	if _, err := svc.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount}); err != nil {
		t.Fatal(err)
	}
	if err := svc.MarkExhausted(ctx, co.OrderID, 7, "TIMEOUT"); err != nil {
		t.Fatal(err)
	}
	p, err := domain.Rebuild(env.Events(t, co.OrderID))
	if err != nil || p.Status != domain.StatusUnknown || !p.NeedsReview {
		t.Fatalf("payment %s needsReview %v (%v)", p.Status, p.NeedsReview, err)
	}
}

// session opens a Toss session with extra simulator options (a JSON fragment).
func session(t *testing.T, env *testenv.Env, co commands.CheckoutResult, extra string) domain.PaymentKey {
	t.Helper()
	body := fmt.Sprintf(`{"orderId":%q,"amount":%s,"orderName":%q,%s}`, co.OrderID, co.Amount, co.OrderName, extra)
	resp, err := http.Post(env.SimURL+"/sim/v1/sessions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ PaymentKey string }
	if err := jsonDecode(resp, &out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("session: status %d, %v", resp.StatusCode, err)
	}
	return domain.PaymentKey(out.PaymentKey)
}

// A refund made in Toss's console reaches the books through a read-back (what the webhook
// worker does for each webhook), and a second read-back books nothing more.
func TestSyncBooksACancelMadeInTossConsole(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, key := env.Pay(t, twoLines().Lines...)
	part := won("10000")
	if _, err := env.Sim.ConsoleCancel(string(key), &part, "returned at the counter"); err != nil {
		t.Fatal(err)
	}
	res, err := env.Commands.Sync(ctx, co.OrderID, commands.ResolveOptions{Actor: "webhook", Merchant: testenv.Merchant})
	if err != nil || res.Status != domain.StatusPartiallyCanceled {
		t.Fatalf("sync: %+v %v", res, err)
	}
	events := env.Events(t, co.OrderID)
	last, ok := events[len(events)-1].(domain.PaymentCanceledAtPSP)
	if !ok || !last.Amount.Equal(part) || last.Reason != "webhook read-back" || last.CancelReason != "returned at the counter" {
		t.Fatalf("last event %#v", events[len(events)-1])
	}
	if err := domain.CheckHistory(events); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Commands.Sync(ctx, co.OrderID, commands.ResolveOptions{Actor: "webhook"}); err != nil || len(env.Events(t, co.OrderID)) != len(events) {
		t.Fatalf("a second sync booked again: %v", err)
	}
	// The books follow: the receivable is what Toss still holds.
	testenv.WaitFor(t, 10*time.Second, "the ledger to book the console cancel", func() bool {
		var receivable string
		_ = env.Pool.QueryRow(ctx, `SELECT (sum(debit) - sum(credit))::text FROM postings WHERE account = 'psp_receivable:toss' AND merchant_id = $1`, testenv.Merchant).Scan(&receivable)
		return receivable == "15000"
	})
	// Our own refund of the rest still works and its key is ours.
	rest, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID, IdempotencyKey: "after-console", Reason: "the rest"})
	if err != nil || rest.CancelStatus != "CANCELED" || !rest.Amount.Equal(won("15000")) || rest.PaymentStatus != domain.StatusCanceled {
		t.Fatalf("refund of the rest: %+v %v", rest, err)
	}
}
