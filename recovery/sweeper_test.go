package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/recovery"
)

var ctx = context.Background()

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fixture is a real environment (PostgreSQL, projections, simulator, Toss client) and a command
// service on the test clock with quick in-request retries.
type fixture struct {
	*testenv.Env
	clock *clock
	svc   *commands.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := newClock()
	env := testenv.New(t, testenv.Options{Now: clk.Now})
	svc, err := commands.New(env.Store, commands.OnePSP(env.Toss), commands.Config{
		Retry: commands.RetryPolicy{MaxAttempts: 2, Budget: 5 * time.Second, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
	}, clk.Now, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{Env: env, clock: clk, svc: svc}
}

func (f *fixture) sweeper(t *testing.T, rec recovery.Recoverer, cfg recovery.Config) *recovery.Sweeper {
	t.Helper()
	return recovery.New(f.Pool, rec, cfg, f.clock.Now, testenv.Logger(t))
}

func (f *fixture) checkout(t *testing.T) commands.CheckoutResult {
	t.Helper()
	co, err := f.svc.Checkout(ctx, commands.CheckoutInput{
		Merchant:  testenv.Merchant,
		OrderName: "Two books", BuyerID: "buyer-1",
		Lines: []domain.CheckoutLine{
			{SellerID: "seller-a", ProductID: "book-1", Amount: decimal.RequireFromString("15000")},
			{SellerID: "seller-b", ProductID: "book-2", Amount: decimal.RequireFromString("10000")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return co
}

// Toss approves the payment but answers with an error, as when a response is lost.
var approvedButErrored = tosssim.SessionRequest{ConfirmError: "FAILED_INTERNAL_SYSTEM_PROCESSING", ConfirmErrorOutcome: tosssim.StatusDone}

// Toss answers a transient error (stored under the attempt's key) and leaves the payment IN_PROGRESS.
var notApproved = tosssim.SessionRequest{ConfirmError: "PROVIDER_ERROR"}

// unknownPayments creates n payments whose confirm ends UNKNOWN, as the simulator session sess
// makes it, and waits until the read model shows them UNKNOWN.
func (f *fixture) unknownPayments(t *testing.T, n int, sess tosssim.SessionRequest) []domain.OrderID {
	t.Helper()
	ids := make([]domain.OrderID, 0, n)
	for range n {
		co := f.checkout(t)
		req := sess
		req.OrderID, req.Amount, req.OrderName = string(co.OrderID), co.Amount, co.OrderName
		key, err := f.Sim.CreateSessionWith(req)
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.svc.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: domain.PaymentKey(key), OrderID: co.OrderID, Amount: co.Amount})
		if err != nil || res.Status != domain.StatusUnknown {
			t.Fatalf("confirm %s: %+v %v, want UNKNOWN", co.OrderID, res, err)
		}
		ids = append(ids, co.OrderID)
	}
	for _, id := range ids {
		f.waitReadModel(t, id, domain.StatusUnknown)
	}
	return ids
}

// waitReadModel waits until payment_orders shows the payment in status st.
func (f *fixture) waitReadModel(t *testing.T, id domain.OrderID, st domain.Status) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("payment_orders %s %s", id, st), func() bool {
		var got string
		err := f.Pool.QueryRow(ctx, `SELECT status FROM payment_orders WHERE order_id = $1`, id).Scan(&got)
		return err == nil && got == string(st)
	})
}

// status is the payment's status in its event stream (the truth, not the read model).
func (f *fixture) status(t *testing.T, id domain.OrderID) domain.Status {
	t.Helper()
	p, err := domain.Rebuild(f.Events(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return p.Status
}

type state struct {
	attempts    int
	nextAttempt time.Time // zero when infinite
	infinite    bool      // never due again: resolved or exhausted
	leasedBy    *string
	lastError   *string
}

func (f *fixture) state(t *testing.T, id domain.OrderID) state {
	t.Helper()
	var (
		s    state
		next pgtype.Timestamptz
	)
	err := f.Pool.QueryRow(ctx, `SELECT attempts, next_attempt_at, leased_by, last_error FROM recovery_state WHERE order_id = $1`, id).
		Scan(&s.attempts, &next, &s.leasedBy, &s.lastError)
	if err != nil {
		t.Fatalf("recovery_state of %s: %v", id, err)
	}
	s.infinite = next.InfinityModifier == pgtype.Infinity
	if next.InfinityModifier == pgtype.Finite {
		s.nextAttempt = next.Time
	}
	return s
}

// spy is a Recoverer that counts calls and can fail, hold calls at a gate, or pass them on.
type spy struct {
	next recovery.Recoverer // the real service; nil answers SUCCESS
	fail error              // returned by a resolve instead of asking next
	gate chan struct{}      // when set, each resolve waits for a token

	mu          sync.Mutex
	calls       map[domain.OrderID]int
	exhausted   map[domain.OrderID]int
	lastErrors  map[domain.OrderID]string
	inFlight    int
	maxInFlight int
}

func newSpy(next recovery.Recoverer) *spy {
	return &spy{next: next, calls: map[domain.OrderID]int{}, exhausted: map[domain.OrderID]int{}, lastErrors: map[domain.OrderID]string{}}
}

// enter counts a call and holds it at the gate; it returns the failure to answer, if any.
func (s *spy) enter(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (func(), error) {
	s.mu.Lock()
	s.calls[id]++
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}
	if !opts.NewAttempt || opts.Actor != "recovery" {
		return leave, fmt.Errorf("options %+v, want a new attempt by recovery", opts)
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return leave, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return leave, s.fail
}

func (s *spy) ResolveConfirm(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.ConfirmResult, error) {
	leave, err := s.enter(ctx, id, opts)
	defer leave()
	switch {
	case err != nil:
		return commands.ConfirmResult{OrderID: id, Status: domain.StatusUnknown}, err
	case s.next == nil:
		return commands.ConfirmResult{OrderID: id, Status: domain.StatusSuccess}, nil
	}
	return s.next.ResolveConfirm(ctx, id, opts)
}

func (s *spy) ResolveCancel(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.CancelResult, error) {
	leave, err := s.enter(ctx, id, opts)
	defer leave()
	switch {
	case err != nil:
		return commands.CancelResult{OrderID: id, CancelStatus: "PENDING", PaymentStatus: domain.StatusSuccess}, err
	case s.next == nil:
		return commands.CancelResult{OrderID: id, CancelStatus: "CANCELED", PaymentStatus: domain.StatusPartiallyCanceled}, nil
	}
	return s.next.ResolveCancel(ctx, id, opts)
}

func (s *spy) MarkExhausted(ctx context.Context, id domain.OrderID, attempts int, lastError string) error {
	s.mu.Lock()
	s.exhausted[id] = attempts
	s.lastErrors[id] = lastError
	s.mu.Unlock()
	if s.next == nil {
		return nil
	}
	return s.next.MarkExhausted(ctx, id, attempts, lastError)
}

func (s *spy) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *spy) snapshot() (calls map[domain.OrderID]int, total, maxInFlight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls = make(map[domain.OrderID]int, len(s.calls))
	for id, n := range s.calls {
		calls[id] = n
		total += n
	}
	return calls, total, s.maxInFlight
}

// tossDown is what the real service returns when Toss cannot be reached for the read-back.
func tossDown(id string) error {
	return fmt.Errorf("read back %s: %w", id, &toss.Error{Op: "get payment by order id", Class: toss.ClassUnknownOutcome, Err: errors.New("connection refused")})
}

// breakerStates records what Config.OnBreakerStateChange is told.
type breakerStates struct {
	mu     sync.Mutex
	states []string
}

func (b *breakerStates) record(to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.states = append(b.states, to)
}

func (b *breakerStates) get() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.states, ",")
}

func sweep(t *testing.T, s *recovery.Sweeper) recovery.Result {
	t.Helper()
	res, err := s.Sweep(ctx)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return res
}

func TestUnknownButApprovedAtTossResolvesWithoutASecondConfirm(t *testing.T) {
	f := newFixture(t)
	id := f.unknownPayments(t, 1, approvedButErrored)[0]
	s := f.sweeper(t, f.svc, recovery.Config{})

	res := sweep(t, s)
	if res != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("sweep %+v, want one resolved", res)
	}
	if st := f.status(t, id); st != domain.StatusSuccess {
		t.Fatalf("status %s, want SUCCESS", st)
	}
	if n := f.Sim.ConfirmsFor(string(id)); n != 1 {
		t.Fatalf("%d confirms executed at Toss, want 1: recovery reads back, it does not confirm again", n)
	}
	// Not picked again while the read model catches up, and forgotten once it has.
	if res := sweep(t, s); res.Leased != 0 {
		t.Fatalf("second sweep %+v, want nothing leased", res)
	}
	f.waitReadModel(t, id, domain.StatusSuccess)
	sweep(t, s)
	var n int
	if err := f.Pool.QueryRow(ctx, `SELECT count(*) FROM recovery_state`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d recovery_state rows (%v), want the resolved payment's row deleted", n, err)
	}
}

func TestInProgressAtTossStartsANewAttempt(t *testing.T) {
	f := newFixture(t)
	id := f.unknownPayments(t, 1, notApproved)[0]
	s := f.sweeper(t, f.svc, recovery.Config{})

	if res := sweep(t, s); res != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("sweep %+v, want one resolved", res)
	}
	if st := f.status(t, id); st != domain.StatusSuccess {
		t.Fatalf("status %s, want SUCCESS", st)
	}
	var keys []string
	for _, e := range f.Events(t, id) {
		if s, ok := e.(domain.ConfirmationStarted); ok {
			keys = append(keys, s.PSPIdempotencyKey)
		}
	}
	if want := fmt.Sprintf("%s:confirm:1,%s:confirm:2", id, id); strings.Join(keys, ",") != want {
		t.Fatalf("attempt keys %v, want %s", keys, want)
	}
	if v, _ := f.Sim.Payment(string(id)); v.Approvals != 1 || f.Sim.Stats().Approvals != 1 {
		t.Fatalf("%d approvals of the payment, %d in all; want 1", v.Approvals, f.Sim.Stats().Approvals)
	}
}

func TestStaleExecutingIsPickedOnlyAfterStaleAfter(t *testing.T) {
	f := newFixture(t)
	co := f.checkout(t)
	key, err := f.Sim.CreateSession(string(co.OrderID), co.Amount, co.OrderName)
	if err != nil {
		t.Fatal(err)
	}
	// A process appended ConfirmationStarted and died before calling Toss.
	t0 := f.clock.Now()
	started := domain.ConfirmationStarted{
		EventHeader: domain.EventHeader{OrderID: co.OrderID, MerchantID: testenv.Merchant, At: t0},
		PaymentKey:  domain.PaymentKey(key), Amount: co.Amount, Attempt: 1,
		PSPIdempotencyKey: domain.ConfirmIdempotencyKey(co.OrderID, 1),
	}
	data, err := domain.MarshalEvent(started)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, err := f.Store.Append(ctx, domain.StreamName(co.OrderID), eventstore.Exact(1), []eventstore.EventData{{
		ID: id, Type: string(started.EventType()), SchemaVersion: domain.SchemaVersion, Data: data,
		Metadata: eventstore.Metadata{MerchantID: string(testenv.Merchant), CorrelationID: id, CausationID: id, Actor: "merchant"},
	}}); err != nil {
		t.Fatal(err)
	}
	f.waitReadModel(t, co.OrderID, domain.StatusExecuting)
	s := f.sweeper(t, f.svc, recovery.Config{StaleAfter: time.Minute})

	f.clock.Set(t0.Add(59 * time.Second))
	if res := sweep(t, s); res.Leased != 0 {
		t.Fatalf("sweep before StaleAfter %+v, want nothing leased: the confirm may still be running", res)
	}
	f.clock.Set(t0.Add(61 * time.Second))
	if res := sweep(t, s); res != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("sweep after StaleAfter %+v, want one resolved", res)
	}
	if st := f.status(t, co.OrderID); st != domain.StatusSuccess {
		t.Fatalf("status %s, want SUCCESS", st)
	}
	if n := f.Sim.Stats().Approvals; n != 1 {
		t.Fatalf("%d approvals, want 1", n)
	}
}

func TestDelayGrowsAndRecoveryGivesUpAfterMaxAttempts(t *testing.T) {
	f := newFixture(t)
	id := f.unknownPayments(t, 1, notApproved)[0]
	rec := newSpy(f.svc)
	rec.fail = tossDown(string(id))
	s := f.sweeper(t, rec, recovery.Config{MaxAttempts: 3, BaseDelay: time.Minute, MaxDelay: time.Hour, Breaker: recovery.BreakerConfig{Failures: 100}})
	calls := func() int { c, _, _ := rec.snapshot(); return c[id] }

	t0 := f.clock.Now()
	if res := sweep(t, s); res != (recovery.Result{Leased: 1, Failed: 1}) {
		t.Fatalf("attempt 1: %+v", res)
	}
	st := f.state(t, id)
	if st.attempts != 1 || st.leasedBy != nil || st.lastError == nil || !strings.Contains(*st.lastError, "connection refused") {
		t.Fatalf("after attempt 1: %+v", st)
	}
	// Equal jitter: the delay after attempt n is between half and all of BaseDelay·2^(n-1).
	if lo, hi := t0.Add(30*time.Second), t0.Add(time.Minute); st.nextAttempt.Before(lo) || st.nextAttempt.After(hi) {
		t.Fatalf("next attempt at +%s, want within [30s, 1m]", st.nextAttempt.Sub(t0))
	}

	f.clock.Set(t0.Add(29 * time.Second))
	if res := sweep(t, s); res.Leased != 0 || calls() != 1 {
		t.Fatalf("before it is due: %+v, %d calls", res, calls())
	}
	t1 := t0.Add(time.Minute)
	f.clock.Set(t1)
	if res := sweep(t, s); res != (recovery.Result{Leased: 1, Failed: 1}) {
		t.Fatalf("attempt 2: %+v", res)
	}
	st = f.state(t, id)
	if lo, hi := t1.Add(time.Minute), t1.Add(2*time.Minute); st.attempts != 2 || st.nextAttempt.Before(lo) || st.nextAttempt.After(hi) {
		t.Fatalf("after attempt 2: attempts %d, next attempt at +%s, want 2 within [1m, 2m]", st.attempts, st.nextAttempt.Sub(t1))
	}

	f.clock.Set(t1.Add(59 * time.Second))
	if res := sweep(t, s); res.Leased != 0 || calls() != 2 {
		t.Fatalf("before it is due: %+v, %d calls", res, calls())
	}
	t2 := t1.Add(2 * time.Minute)
	f.clock.Set(t2)
	if res := sweep(t, s); res != (recovery.Result{Leased: 1, Exhausted: 1}) {
		t.Fatalf("attempt 3: %+v, want exhausted", res)
	}
	rec.mu.Lock()
	attempts, lastError := rec.exhausted[id], rec.lastErrors[id]
	rec.mu.Unlock()
	if attempts != 3 || !strings.Contains(lastError, "connection refused") {
		t.Fatalf("MarkExhausted(%d, %q), want 3 attempts and the last error", attempts, lastError)
	}
	if st := f.state(t, id); st.attempts != 3 || !st.infinite {
		t.Fatalf("after exhaustion: %+v, want 3 attempts and never due", st)
	}

	// Never picked again, not even before the read model shows needsReview.
	f.clock.Set(t2.Add(24 * time.Hour))
	if res := sweep(t, s); res.Leased != 0 || calls() != 3 {
		t.Fatalf("after exhaustion: %+v, %d calls", res, calls())
	}
	q := queries.New(f.Pool, f.Store)
	testenv.WaitFor(t, 10*time.Second, "the payment listed with needsReview", func() bool {
		page, err := q.ListPayments(ctx, testenv.Merchant, queries.ListQuery{NeedsReview: true})
		return err == nil && len(page.Payments) == 1 && page.Payments[0].OrderID == string(id) &&
			page.Payments[0].NeedsReview && page.Payments[0].Status == string(domain.StatusUnknown)
	})
}

func TestTwoSweepersNeverWorkOnOnePayment(t *testing.T) {
	f := newFixture(t)
	ids := f.unknownPayments(t, 20, approvedButErrored)
	rec := newSpy(f.svc)
	cfg := recovery.Config{BatchSize: 4, Workers: 2}
	a, b := cfg, cfg
	a.InstanceID, b.InstanceID = "sweeper-a", "sweeper-b"
	sweepers := []*recovery.Sweeper{f.sweeper(t, rec, a), f.sweeper(t, rec, b)}

	var resolved int
	leased := make([]int, len(sweepers))
	for round := 0; resolved < len(ids) && round < 20; round++ {
		results := make([]recovery.Result, len(sweepers))
		errs := make([]error, len(sweepers))
		var wg sync.WaitGroup
		for i, s := range sweepers {
			wg.Go(func() { results[i], errs[i] = s.Sweep(ctx) })
		}
		wg.Wait()
		for i, res := range results {
			if errs[i] != nil {
				t.Fatalf("sweeper %d: %v", i, errs[i])
			}
			if res.Failed != 0 || res.StillUnknown != 0 || res.Exhausted != 0 || res.Released != 0 {
				t.Fatalf("sweeper %d: %+v", i, res)
			}
			leased[i] += res.Leased
			resolved += res.Resolved
		}
	}
	if resolved != len(ids) {
		t.Fatalf("%d resolved, want %d", resolved, len(ids))
	}
	if leased[0] == 0 || leased[1] == 0 {
		t.Fatalf("leased %v: both sweepers should have had work", leased)
	}
	calls, total, _ := rec.snapshot()
	for _, id := range ids {
		if calls[id] != 1 {
			t.Errorf("%s recovered %d times, want exactly once", id, calls[id])
		}
		if st := f.status(t, id); st != domain.StatusSuccess {
			t.Errorf("%s is %s, want SUCCESS", id, st)
		}
		if n := f.Sim.ConfirmsFor(string(id)); n != 1 {
			t.Errorf("%s: %d confirms at Toss, want 1", id, n)
		}
	}
	if total != len(ids) {
		t.Fatalf("%d resolve calls, want %d", total, len(ids))
	}
}

func TestBreakerOpensOnTossFailuresAndPausesTheScan(t *testing.T) {
	f := newFixture(t)
	ids := f.unknownPayments(t, 6, notApproved)
	rec := newSpy(f.svc)
	rec.fail = tossDown("any")
	var states breakerStates
	// One worker, so the order of the calls is fixed: three fail, then the breaker is open.
	s := f.sweeper(t, rec, recovery.Config{Workers: 1, Breaker: recovery.BreakerConfig{Failures: 3, OpenFor: time.Hour},
		OnBreakerStateChange: states.record})

	res := sweep(t, s)
	if res != (recovery.Result{Leased: 6, Failed: 3, Released: 3, BreakerOpen: true}) {
		t.Fatalf("sweep %+v, want 3 failed, 3 released and the breaker open", res)
	}
	if got := states.get(); got != "open" {
		t.Fatalf("OnBreakerStateChange told %q, want \"open\"", got)
	}
	if _, total, _ := rec.snapshot(); total != 3 {
		t.Fatalf("%d resolve calls, want 3: nothing is called once the breaker is open", total)
	}
	var tried, untouched int
	for _, id := range ids {
		switch st := f.state(t, id); {
		case st.leasedBy != nil:
			t.Fatalf("%s still leased after the scan: %+v", id, st)
		case st.attempts == 1:
			tried++
		case st.attempts == 0 && !st.infinite:
			untouched++ // released without counting an attempt, due at once
		}
	}
	if tried != 3 || untouched != 3 {
		t.Fatalf("%d tried, %d released; want 3 and 3", tried, untouched)
	}

	f.clock.Set(f.clock.Now().Add(time.Hour))
	if res := sweep(t, s); res != (recovery.Result{BreakerOpen: true}) {
		t.Fatalf("sweep while open %+v, want nothing leased", res)
	}
	if _, total, _ := rec.snapshot(); total != 3 {
		t.Fatalf("%d resolve calls, want still 3", total)
	}
}

func TestBreakerTriesOnePaymentWhenHalfOpenThenResumes(t *testing.T) {
	f := newFixture(t)
	ids := f.unknownPayments(t, 4, notApproved)
	rec := newSpy(f.svc)
	rec.setFail(tossDown("any"))
	var states breakerStates
	s := f.sweeper(t, rec, recovery.Config{Workers: 1, Breaker: recovery.BreakerConfig{Failures: 2, OpenFor: 20 * time.Millisecond},
		OnBreakerStateChange: states.record})
	if res := sweep(t, s); res != (recovery.Result{Leased: 4, Failed: 2, Released: 2, BreakerOpen: true}) {
		t.Fatalf("sweep %+v", res)
	}

	rec.setFail(nil) // Toss is back
	var trial recovery.Result
	testenv.WaitFor(t, 10*time.Second, "the breaker to let a trial call through", func() bool {
		trial = sweep(t, s)
		return !trial.BreakerOpen
	})
	if trial != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("half-open sweep %+v, want one trial payment, resolved", trial)
	}
	if got := states.get(); got != "open,half-open,closed" {
		t.Fatalf("OnBreakerStateChange told %q, want open, half-open, closed", got)
	}
	if res := sweep(t, s); res != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("sweep after the trial %+v, want the other released payment", res)
	}
	f.clock.Set(f.clock.Now().Add(time.Minute)) // the two that failed come due
	if res := sweep(t, s); res != (recovery.Result{Leased: 2, Resolved: 2}) {
		t.Fatalf("sweep a minute later %+v, want the two that failed", res)
	}
	for _, id := range ids {
		if st := f.status(t, id); st != domain.StatusSuccess {
			t.Errorf("%s is %s, want SUCCESS", id, st)
		}
	}
}

func TestRunSweepsAtStartAndStopsWithItsContext(t *testing.T) {
	f := newFixture(t)
	id := f.unknownPayments(t, 1, approvedButErrored)[0]
	s := f.sweeper(t, f.svc, recovery.Config{Interval: time.Hour})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	testenv.WaitFor(t, 10*time.Second, "the first scan to resolve the payment", func() bool {
		p, err := domain.Rebuild(f.Events(t, id))
		return err == nil && p.Status == domain.StatusSuccess
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after its context ended, want nil", err)
	}
}

func TestBreakerIgnoresErrorsThatAreNotTossFailing(t *testing.T) {
	f := newFixture(t)
	f.unknownPayments(t, 4, notApproved)
	rec := newSpy(f.svc)
	rec.fail = domain.Errorf(domain.ErrPSPResponseMismatch, "Toss shows another amount")
	s := f.sweeper(t, rec, recovery.Config{Workers: 1, Breaker: recovery.BreakerConfig{Failures: 2}})

	if res := sweep(t, s); res != (recovery.Result{Leased: 4, Failed: 4}) {
		t.Fatalf("sweep %+v, want 4 failed and the breaker closed", res)
	}
}

func TestWorkerPoolIsBounded(t *testing.T) {
	f := newFixture(t)
	ids := f.unknownPayments(t, 6, notApproved)
	rec := newSpy(nil)
	rec.gate = make(chan struct{}, len(ids))
	s := f.sweeper(t, rec, recovery.Config{Workers: 2})

	done := make(chan recovery.Result, 1)
	go func() {
		res, err := s.Sweep(ctx)
		if err != nil {
			t.Errorf("sweep: %v", err)
		}
		done <- res
	}()
	testenv.WaitFor(t, 10*time.Second, "two recoveries in flight", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.inFlight >= 2
	})
	for range ids {
		rec.gate <- struct{}{}
	}
	if res := <-done; res != (recovery.Result{Leased: len(ids), Resolved: len(ids)}) {
		t.Fatalf("sweep %+v", res)
	}
	if _, total, maxInFlight := rec.snapshot(); total != len(ids) || maxInFlight != 2 {
		t.Fatalf("%d calls, at most %d at once; want %d calls, 2 at once", total, maxInFlight, len(ids))
	}
}
