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
