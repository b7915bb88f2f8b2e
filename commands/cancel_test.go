package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/queries"
)

// simClock is a settable clock for the simulator (its 1-second rule between cancels).
type simClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *simClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func approvedOrder(t *testing.T, env *testenv.Env) commands.CheckoutResult {
	t.Helper()
	co, _ := env.Pay(t, twoLines().Lines...)
	return co
}

func amount(s string) *decimal.Decimal { d := won(s); return &d }

func TestPartialThenFullCancel(t *testing.T) {
	clock := &simClock{now: time.Now()}
	env := testenv.New(t, testenv.Options{SimNow: clock.Now})
	co := approvedOrder(t, env)

	res, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID, IdempotencyKey: "refund-1", Amount: amount("10000"), Reason: "one book back"})
	if err != nil || res.CancelStatus != "CANCELED" || res.PaymentStatus != domain.StatusPartiallyCanceled || !res.Balance.Equal(won("15000")) {
		t.Fatalf("partial cancel: %+v %v", res, err)
	}
	again, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID, IdempotencyKey: "refund-1", Amount: amount("10000"), Reason: "one book back"})
	if err != nil || again.CancelID != res.CancelID || again.CancelStatus != "CANCELED" {
		t.Fatalf("repeated request: %+v %v", again, err)
	}
	if n := env.Sim.Stats().CancelRequests; n != 1 {
		t.Fatalf("simulator saw %d cancels, want 1 (a repeated request must not call Toss)", n)
	}
	if _, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-54", OrderID: co.OrderID, Amount: amount("15001"), Reason: "too much"}); !errors.Is(err, domain.ErrCancelExceedsAmount) {
		t.Fatalf("over the balance: %v", err)
	}

	clock.Advance(2 * time.Second) // Toss refuses a second cancel within a second
	res, err = env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID, IdempotencyKey: "refund-2", Reason: "the rest"})
	if err != nil || res.CancelStatus != "CANCELED" || res.PaymentStatus != domain.StatusCanceled || !res.Balance.IsZero() || !res.Amount.Equal(won("15000")) {
		t.Fatalf("full cancel of the rest: %+v %v", res, err)
	}
	sim, _ := env.Sim.Payment(string(co.OrderID))
	if sim.Status != "CANCELED" || !sim.BalanceAmount.IsZero() {
		t.Fatalf("simulator shows %s balance %s", sim.Status, sim.BalanceAmount)
	}
	if err := domain.CheckHistory(env.Events(t, co.OrderID)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-70", OrderID: co.OrderID, Reason: "again"}); !errors.Is(err, domain.ErrNotCancelable) {
		t.Fatalf("cancel of a canceled payment: %v", err)
	}
}

func TestCancelOfAnUnpaidOrderIsRefused(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, err := env.Commands.Checkout(ctx, twoLines())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-81", OrderID: co.OrderID, Reason: "r"}); !errors.Is(err, domain.ErrNotCancelable) {
		t.Fatalf("error %v, want %s", err, domain.ErrNotCancelable.Code)
	}
	if n := env.Sim.Stats().CancelRequests; n != 0 {
		t.Fatalf("simulator saw %d cancels", n)
	}
}

func TestConcurrentCancelsNeverExceedTheBalance(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := approvedOrder(t, env)
	const n = 10
	var wg sync.WaitGroup
	results := make([]commands.CancelResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = env.Commands.Cancel(ctx, commands.CancelInput{
				Merchant: testenv.Merchant,
				OrderID:  co.OrderID, IdempotencyKey: fmt.Sprintf("c-%d", i), Amount: amount("10000"), Reason: "race"})
		})
	}
	wg.Wait()
	canceled := decimal.Zero
	for i := range n {
		switch {
		case errs[i] == nil && results[i].CancelStatus == "CANCELED":
			canceled = canceled.Add(results[i].Amount)
		case errs[i] == nil: // refused by Toss (e.g. FORBIDDEN_CONSECUTIVE_REQUEST) or unknown
		case errors.Is(errs[i], domain.ErrCancelInProgress), errors.Is(errs[i], domain.ErrCancelExceedsAmount):
		default:
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if canceled.GreaterThan(won("25000")) {
		t.Fatalf("canceled %s of a 25000 payment", canceled)
	}
	p, err := domain.Rebuild(env.Events(t, co.OrderID))
	if err != nil {
		t.Fatal(err)
	}
	sim, _ := env.Sim.Payment(string(co.OrderID))
	if p.PendingCancel() == nil && !sim.BalanceAmount.Equal(p.Balance) {
		t.Fatalf("our balance %s, Toss's %s", p.Balance, sim.BalanceAmount)
	}
	if err := domain.CheckHistory(env.Events(t, co.OrderID)); err != nil {
		t.Fatal(err)
	}
}

func TestLostCancelResponseIsResolvedUnderTheSameKey(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := approvedOrder(t, env)
	psp := &testenv.LostCancelAnswer{Client: env.Toss}
	svc, err := commands.New(env.Store, commands.OnePSP(psp), commands.Config{Retry: fastRetry(1)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-139", OrderID: co.OrderID, Amount: amount("5000"), Reason: "r"})
	if err != nil || res.CancelStatus != "PENDING" {
		t.Fatalf("cancel with a lost answer: %+v %v, want PENDING", res, err)
	}
	// Another cancel must wait: the first may have refunded.
	if _, err := svc.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-144", OrderID: co.OrderID, Amount: amount("5000"), Reason: "r2"}); !errors.Is(err, domain.ErrCancelInProgress) {
		t.Fatalf("second cancel while the first is unknown: %v", err)
	}
	res, err = svc.ResolveCancel(ctx, co.OrderID, commands.ResolveOptions{Actor: "recovery"})
	if err != nil || res.CancelStatus != "CANCELED" || !res.Balance.Equal(won("20000")) {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if st := env.Sim.Stats(); st.CancelsProcessed != 1 {
		t.Fatalf("simulator processed %d cancels, want 1 (the retry must replay, not refund again)", st.CancelsProcessed)
	}
}

// replayedRefusal is Toss replaying, under a cancel's key, an error it stored for it: every call
// answers ALREADY_CANCELED_PAYMENT, while lookups show the truth.
type replayedRefusal struct{ *toss.Client }

func (replayedRefusal) Cancel(context.Context, string, toss.CancelRequest, string) (*toss.Payment, error) {
	const code = "ALREADY_CANCELED_PAYMENT"
	return nil, &toss.Error{Op: "cancel", HTTPStatus: 400, Code: code, Message: "이미 취소된 결제 입니다.", Class: toss.Classify("cancel", 400, code)}
}

// A pending cancel that Toss performed is resolved from the payment read back, not from what a
// repeated call answers: under its key Toss would replay a stored error until the key expires.
func TestPendingCancelIsResolvedFromTheReadBack(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := approvedOrder(t, env)
	lossy, err := commands.New(env.Store, commands.OnePSP(&testenv.LostCancelAnswer{Client: env.Toss}), commands.Config{Retry: fastRetry(1)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := lossy.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, IdempotencyKey: "refund-1", OrderID: co.OrderID, Amount: amount("5000"), Reason: "r"}); err != nil || res.CancelStatus != "PENDING" {
		t.Fatalf("cancel with a lost answer: %+v %v, want PENDING", res, err)
	}
	replaying, err := commands.New(env.Store, commands.OnePSP(replayedRefusal{env.Toss}), commands.Config{Retry: fastRetry(1)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := replaying.ResolveCancel(ctx, co.OrderID, commands.ResolveOptions{Actor: "recovery"})
	if err != nil || res.CancelStatus != "CANCELED" || !res.Balance.Equal(won("20000")) {
		t.Fatalf("resolve: %+v %v, want CANCELED with 20000 left", res, err)
	}
	if st := env.Sim.Stats(); st.CancelsProcessed != 1 {
		t.Fatalf("Toss processed %d cancels, want 1", st.CancelsProcessed)
	}
	if err := domain.CheckHistory(env.Events(t, co.OrderID)); err != nil {
		t.Fatal(err)
	}
}

// The defect: two refunds of one payment within a second got 403 FORBIDDEN_CONSECUTIVE_REQUEST,
// replayed under the same key on every retry. Cancels of a payment are spaced a second apart, so
// both refunds go through, each on its first key.
func TestTwoRefundsInARowBothSucceed(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := approvedOrder(t, env)
	for i, amt := range []string{"1000", "2000"} {
		res, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID,
			IdempotencyKey: fmt.Sprintf("quick-%d", i), Amount: amount(amt), Reason: "quick"})
		if err != nil || res.CancelStatus != "CANCELED" {
			t.Fatalf("refund %d: %+v %v", i+1, res, err)
		}
	}
	if st := env.Sim.Stats(); st.CancelsProcessed != 2 {
		t.Fatalf("Toss processed %d cancels, want 2", st.CancelsProcessed)
	}
	for _, e := range env.Events(t, co.OrderID) {
		if e.EventType() == domain.EventCancelRetried {
			t.Fatal("a refund was refused as consecutive: the cancels were not spaced")
		}
	}
}

// consecutiveRefusal is Toss just after a refund made in its console: it refuses every cancel
// of the payment as too soon until blockedUntil, and passes the rest to the simulator.
type consecutiveRefusal struct {
	*toss.Client
	blockedUntil time.Time
	refused      int
}

func (c *consecutiveRefusal) Cancel(ctx context.Context, key string, req toss.CancelRequest, idem string) (*toss.Payment, error) {
	if time.Now().Before(c.blockedUntil) {
		c.refused++
		return nil, &toss.Error{Op: "cancel", HTTPStatus: 403, Code: "FORBIDDEN_CONSECUTIVE_REQUEST", Message: "too soon", Class: toss.ClassNotExecuted}
	}
	return c.Client.Cancel(ctx, key, req, idem)
}

// A cancel Toss refused without executing it goes on under a new key (CancelRetried) and
// completes, within the request; it never stays PENDING on a replayed refusal. The new key is
// tried CancelSpacing after the refusal, not at once, which Toss would refuse again.
func TestConsecutiveRefusalMovesTheCancelToANewKey(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := approvedOrder(t, env)
	psp := &consecutiveRefusal{Client: env.Toss, blockedUntil: time.Now().Add(500 * time.Millisecond)}
	svc, err := commands.New(env.Store, commands.OnePSP(psp), commands.Config{Retry: fastRetry(2)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID, IdempotencyKey: "r1", Amount: amount("5000"), Reason: "r"})
	if err != nil || res.CancelStatus != "CANCELED" || psp.refused != 1 {
		t.Fatalf("cancel: %+v %v (refused %d)", res, err, psp.refused)
	}
	events := env.Events(t, co.OrderID)
	if got := types(events[len(events)-3:]); !equalTypes(got, domain.EventCancelRequested, domain.EventCancelRetried, domain.EventPaymentCanceled) {
		t.Fatalf("events %v", got)
	}
	if err := domain.CheckHistory(events); err != nil {
		t.Fatal(err)
	}
	if st := env.Sim.Stats(); st.CancelsProcessed != 1 {
		t.Fatalf("Toss processed %d cancels, want 1", st.CancelsProcessed)
	}
}

// lostPayment is a Toss that does not know the payment any more (a simulator restarted without
// its state, a key of another account).
type lostPayment struct{ *toss.Client }

func (lostPayment) Cancel(context.Context, string, toss.CancelRequest, string) (*toss.Payment, error) {
	return nil, &toss.Error{Op: "cancel", HTTPStatus: 404, Code: "NOT_FOUND_PAYMENT", Message: "존재하지 않는 결제 정보 입니다.", Class: toss.ClassFinal}
}

// The defect: a refund of a payment we hold approved was booked as rejected on
// NOT_FOUND_PAYMENT. Toss not knowing it proves nothing about the refund: it stays pending with
// an unknown outcome, for recovery and then a person.
func TestNotFoundOnARefundIsNotARejection(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := approvedOrder(t, env)
	svc, err := commands.New(env.Store, commands.OnePSP(lostPayment{env.Toss}), commands.Config{Retry: fastRetry(1)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID, IdempotencyKey: "r1", Amount: amount("5000"), Reason: "r"})
	if err != nil || res.CancelStatus != "PENDING" || res.Failure == nil || res.Failure.Code != "NOT_FOUND_PAYMENT" {
		t.Fatalf("cancel: %+v %v, want PENDING", res, err)
	}
	for _, e := range env.Events(t, co.OrderID) {
		if e.EventType() == domain.EventCancelRejected {
			t.Fatal("NOT_FOUND_PAYMENT was booked as a rejection")
		}
	}
}

// The defect: an event edited in the database (the append-only trigger disabled) went unnoticed
// and was acted on: a refund for the edited balance was sent to Toss. Commands now decide only on
// verified history: the edited stream refuses every command, nothing reaches Toss, and the
// payment is flagged for review.
func TestAnEditedStreamRefusesEveryCommand(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co := approvedOrder(t, env)
	tamperedEvent := func(sql string) {
		t.Helper()
		for _, stmt := range []string{`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`, sql, `ALTER TABLE events ENABLE TRIGGER events_no_update_delete`} {
			if _, err := env.Pool.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Someone raises the approved amount, so that a full refund would pay out more.
	tamperedEvent(`UPDATE events SET data = jsonb_set(data::jsonb, '{totalAmount}', '"250000"')::text::json
		WHERE stream_id = 'payment-` + string(co.OrderID) + `' AND event_type = 'PaymentApproved'`)
	before := env.Sim.Stats()
	_, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: co.OrderID, IdempotencyKey: "r", Reason: "after the edit"})
	if !errors.Is(err, domain.ErrHistoryBroken) {
		t.Fatalf("cancel of an edited payment: %v, want HISTORY_BROKEN", err)
	}
	if _, err := env.Commands.ResolveConfirm(ctx, co.OrderID, commands.ResolveOptions{Actor: "recovery", NewAttempt: true}); !errors.Is(err, domain.ErrHistoryBroken) {
		t.Fatalf("recovery on an edited payment: %v", err)
	}
	if after := env.Sim.Stats(); after.CancelRequests != before.CancelRequests || after.ConfirmRequests != before.ConfirmRequests {
		t.Fatalf("Toss was called for an edited payment: %+v then %+v", before, after)
	}
	var detail string
	if err := env.Pool.QueryRow(ctx, `SELECT detail FROM broken_streams WHERE stream_id = $1`, domain.StreamName(co.OrderID)).Scan(&detail); err != nil ||
		!strings.Contains(detail, "version 3: hash does not match") {
		t.Fatalf("flagged for review: %q %v", detail, err)
	}
	if _, err := env.Queries.Payment(ctx, testenv.Merchant, string(co.OrderID)); !errors.Is(err, domain.ErrHistoryBroken) {
		t.Fatalf("reading an edited payment: %v", err)
	}
	testenv.WaitFor(t, 10*time.Second, "the payment in the review list", func() bool {
		page, err := env.Queries.ListPayments(ctx, testenv.Merchant, queries.ListQuery{NeedsReview: true})
		return err == nil && len(page.Payments) == 1 && page.Payments[0].OrderID == string(co.OrderID) && page.Payments[0].NeedsReview
	})
}
