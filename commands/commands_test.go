package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
)

var ctx = context.Background()

func won(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func twoLines() commands.CheckoutInput {
	return commands.CheckoutInput{
		Merchant:  testenv.Merchant,
		OrderName: "Two books", BuyerID: "buyer-1",
		Lines: []domain.CheckoutLine{
			{SellerID: "seller-a", ProductID: "book-1", Amount: won("15000")},
			{SellerID: "seller-b", ProductID: "book-2", Amount: won("10000")},
		},
	}
}

// checkoutAndAuthenticate creates a checkout and the buyer's authenticated Toss session.
func checkoutAndAuthenticate(t *testing.T, env *testenv.Env) (commands.CheckoutResult, domain.PaymentKey) {
	t.Helper()
	co, err := env.Commands.Checkout(ctx, twoLines())
	if err != nil {
		t.Fatal(err)
	}
	key, err := env.Sim.CreateSession(string(co.OrderID), co.Amount, co.OrderName)
	if err != nil {
		t.Fatal(err)
	}
	return co, domain.PaymentKey(key)
}

func types(events []domain.Event) []domain.EventType {
	var out []domain.EventType
	for _, e := range events {
		out = append(out, e.EventType())
	}
	return out
}

func equalTypes(a []domain.EventType, b ...domain.EventType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCheckoutComputesTotalAndRecordsOneEvent(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, err := env.Commands.Checkout(ctx, twoLines())
	if err != nil {
		t.Fatal(err)
	}
	if !co.Amount.Equal(won("25000")) || co.Status != domain.StatusNotStarted || co.Currency != domain.KRW {
		t.Fatalf("checkout result %+v", co)
	}
	events := env.Events(t, co.OrderID)
	if !equalTypes(types(events), domain.EventCheckoutCreated) {
		t.Fatalf("events %v", types(events))
	}
	if got := events[0].Header().MerchantID; got != testenv.Merchant {
		t.Fatalf("merchant %q, want %q", got, testenv.Merchant)
	}
}

func TestCheckoutIdempotencyKey(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	in := twoLines()
	in.IdempotencyKey = "checkout-key-1"
	first, err := env.Commands.Checkout(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := env.Commands.Checkout(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.OrderID != first.OrderID || !again.Replayed || first.Replayed || !again.Amount.Equal(first.Amount) {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	if n := env.CountEvents(t); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}

	changed := in
	changed.Lines = []domain.CheckoutLine{{SellerID: "seller-a", ProductID: "book-1", Amount: won("1")}}
	_, err = env.Commands.Checkout(ctx, changed)
	if !errors.Is(err, domain.ErrIdempotencyConflict) {
		t.Fatalf("same key, different body: error %v, want %s", err, domain.ErrIdempotencyConflict.Code)
	}

	other, err := env.Commands.Checkout(ctx, twoLines()) // no key: a new order every time
	if err != nil {
		t.Fatal(err)
	}
	if other.OrderID == first.OrderID {
		t.Fatal("a checkout without a key reused an order id")
	}
}

func TestConcurrentCheckoutsWithOneKeyCreateOneOrder(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	in := twoLines()
	in.IdempotencyKey = "racing-key"
	var wg sync.WaitGroup
	ids := make([]domain.OrderID, 20)
	errs := make([]error, 20)
	for i := range ids {
		wg.Go(func() {
			res, err := env.Commands.Checkout(ctx, in)
			ids[i], errs[i] = res.OrderID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("call %d: order %s err %v; want order %s", i, ids[i], errs[i], ids[0])
		}
	}
	if n := env.CountEvents(t); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}

func TestConfirmApprovesOnceAndAnswersAgainFromTheStore(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, key := checkoutAndAuthenticate(t, env)

	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != domain.StatusSuccess || res.ApprovedAt.IsZero() || res.PaymentKey != key {
		t.Fatalf("confirm result %+v", res)
	}
	if got := types(env.Events(t, co.OrderID)); !equalTypes(got, domain.EventCheckoutCreated, domain.EventConfirmationStarted, domain.EventPaymentApproved) {
		t.Fatalf("events %v", got)
	}
	started := env.Events(t, co.OrderID)[1].(domain.ConfirmationStarted)
	if started.PSPIdempotencyKey != string(co.OrderID)+":confirm:1" {
		t.Fatalf("PSP idempotency key %q", started.PSPIdempotencyKey)
	}

	again, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != domain.StatusSuccess || !again.ApprovedAt.Equal(res.ApprovedAt) {
		t.Fatalf("second confirm %+v", again)
	}
	if st := env.Sim.Stats(); st.ConfirmRequests != 1 {
		t.Fatalf("simulator saw %d confirm requests, want 1 (the second confirm must not call Toss)", st.ConfirmRequests)
	}
	if n := len(env.Events(t, co.OrderID)); n != 3 {
		t.Fatalf("%d events after the second confirm, want 3", n)
	}
}

func TestTamperedAmountIsRefusedWithoutCallingToss(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, key := checkoutAndAuthenticate(t, env)

	_, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: won("100")})
	if !errors.Is(err, domain.ErrAmountMismatch) {
		t.Fatalf("error %v, want %s", err, domain.ErrAmountMismatch.Code)
	}
	if st := env.Sim.Stats(); st.ConfirmRequests != 0 {
		t.Fatalf("simulator saw %d confirms, want 0", st.ConfirmRequests)
	}
	events := env.Events(t, co.OrderID)
	if !equalTypes(types(events), domain.EventCheckoutCreated, domain.EventPaymentRejected) {
		t.Fatalf("events %v", types(events))
	}
	if r := events[1].(domain.PaymentRejected); r.Source != domain.SourceValidation || r.Code != "AMOUNT_MISMATCH" {
		t.Fatalf("rejection %+v", r)
	}
	// The honest amount afterwards is refused too: the checkout failed for good.
	_, err = env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if !errors.Is(err, domain.ErrNotConfirmable) {
		t.Fatalf("confirm after tampering: %v, want %s", err, domain.ErrNotConfirmable.Code)
	}
	if st := env.Sim.Stats(); st.ConfirmRequests != 0 {
		t.Fatalf("simulator saw %d confirms, want 0", st.ConfirmRequests)
	}
}

func TestFiftyConcurrentConfirmsCallTossOnce(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, key := checkoutAndAuthenticate(t, env)

	const n = 50
	results := make([]commands.ConfirmResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
		})
	}
	close(start)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if s := results[i].Status; s != domain.StatusSuccess && s != domain.StatusExecuting {
			t.Fatalf("caller %d got %s, want SUCCESS or EXECUTING", i, s)
		}
	}
	if got := env.Sim.Stats().ConfirmRequests; got != 1 {
		t.Fatalf("simulator saw %d confirm requests, want exactly 1", got)
	}
	approved := 0
	for _, e := range env.Events(t, co.OrderID) {
		if e.EventType() == domain.EventPaymentApproved {
			approved++
		}
	}
	if approved != 1 {
		t.Fatalf("%d PaymentApproved events, want 1", approved)
	}
}

func TestFinalPSPFailureIsRecordedAsFailure(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, err := env.Commands.Checkout(ctx, twoLines())
	if err != nil {
		t.Fatal(err)
	}
	key := sessionWithError(t, env, co, "REJECT_CARD_PAYMENT")
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != domain.StatusFailure || res.Failure == nil || res.Failure.Code != "REJECT_CARD_PAYMENT" || res.Failure.Source != domain.SourcePSP {
		t.Fatalf("result %+v failure %+v", res, res.Failure)
	}
	_, err = env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if !errors.Is(err, domain.ErrNotConfirmable) {
		t.Fatalf("confirm of a failed payment: %v, want %s", err, domain.ErrNotConfirmable.Code)
	}
}

func TestRetryableCodeIsAnUnknownOutcomeNotAFailure(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, err := env.Commands.Checkout(ctx, twoLines())
	if err != nil {
		t.Fatal(err)
	}
	key := sessionWithError(t, env, co, "PROVIDER_ERROR")
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != domain.StatusUnknown {
		t.Fatalf("status %s, want UNKNOWN", res.Status)
	}
	last := env.Events(t, co.OrderID)[2]
	if u, ok := last.(domain.PaymentOutcomeUnknown); !ok || u.Code != "PROVIDER_ERROR" || u.Attempt != 1 {
		t.Fatalf("last event %#v", last)
	}
}

func TestPSPTimeoutIsAnUnknownOutcome(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers: the client's deadline ends the call
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	client, err := toss.New(hang.URL, testenv.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.New(t, testenv.Options{PSP: client, PSPTimeout: 200 * time.Millisecond})
	co, key := checkoutAndAuthenticate(t, env)
	res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != domain.StatusUnknown {
		t.Fatalf("status %s, want UNKNOWN", res.Status)
	}
	last := env.Events(t, co.OrderID)[2]
	if u, ok := last.(domain.PaymentOutcomeUnknown); !ok || u.Code != "TIMEOUT" {
		t.Fatalf("last event %#v, want PaymentOutcomeUnknown TIMEOUT", last)
	}
}

func TestExpiredTossSessionExpiresThePayment(t *testing.T) {
	var mu sync.Mutex
	simNow := time.Now()
	env := testenv.New(t, testenv.Options{SimNow: func() time.Time { mu.Lock(); defer mu.Unlock(); return simNow }})
	co, key := checkoutAndAuthenticate(t, env)
	mu.Lock()
	simNow = simNow.Add(11 * time.Minute) // past Toss's 10-minute confirm window
	mu.Unlock()
	_, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if err != nil {
		t.Fatal(err)
	}
	events := env.Events(t, co.OrderID)
	if last := events[len(events)-1]; last.EventType() != domain.EventPaymentExpired {
		t.Fatalf("last event %s, want PaymentExpired", last.EventType())
	}
}

func TestConfirmAfterCheckoutExpiryIsRefusedAndRecorded(t *testing.T) {
	later := time.Now().Add(domain.DefaultCheckoutTTL + time.Minute)
	env := testenv.New(t, testenv.Options{})
	co, key := checkoutAndAuthenticate(t, env)
	late, err := commands.New(env.Store, commands.OnePSP(env.Toss), commands.Config{}, func() time.Time { return later }, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = late.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: key, OrderID: co.OrderID, Amount: co.Amount})
	if !errors.Is(err, domain.ErrCheckoutExpired) {
		t.Fatalf("error %v, want %s", err, domain.ErrCheckoutExpired.Code)
	}
	if got := types(env.Events(t, co.OrderID)); !equalTypes(got, domain.EventCheckoutCreated, domain.EventPaymentExpired) {
		t.Fatalf("events %v", got)
	}
	if st := env.Sim.Stats(); st.ConfirmRequests != 0 {
		t.Fatalf("simulator saw %d confirms, want 0", st.ConfirmRequests)
	}
}

func TestConfirmOfAnUnknownOrder(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	_, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: "k", OrderID: "no-such-order", Amount: won("1000")})
	if !errors.Is(err, domain.ErrPaymentNotFound) {
		t.Fatalf("error %v, want %s", err, domain.ErrPaymentNotFound.Code)
	}
}

// sessionWithError opens a Toss session whose confirm the simulator answers with code.
func sessionWithError(t *testing.T, env *testenv.Env, co commands.CheckoutResult, code string) domain.PaymentKey {
	t.Helper()
	return session(t, env, co, fmt.Sprintf(`"confirmError":%q`, code))
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
