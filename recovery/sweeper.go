// Package recovery owns the recovery sweeper (the "janitor"): the background process that
// resolves payments whose outcome we do not know, and cancels whose outcome we do not know
// (retried under their own key, on the same growing delay) or that have been in flight past
// RECOVERY_STALE_AFTER (a process died during the call). It finds UNKNOWN payments whose next attempt is
// due and EXECUTING payments older than a threshold (a process died between the PSP call and
// recording its outcome), and hands each to a Recoverer (commands.Service.ResolveConfirm, or
// ResolveCancel for a pending refund of a resolved payment) that reads
// the payment back from Toss by orderId and records the truth, or starts a new confirm attempt
// while Toss still shows the payment IN_PROGRESS. Unsuccessful attempts are retried later with
// a growing delay; after MaxAttempts the payment is marked RecoveryExhausted and waits for a
// person (GET /api/v1/payments?needsReview=true).
//
// The package owns the recovery_state table: per payment, how often it was tried, when it is
// due next, and a lease.
//
// # Leases
//
// Several paymentd instances run a sweeper against one database. A payment is worked on only
// under a lease (internal/lease): a short transaction sets recovery_state.leased_until and
// leased_by on the rows it picks with SELECT … FOR UPDATE SKIP LOCKED, so concurrent sweepers
// pick disjoint rows and never wait on each other. No transaction or row lock is held during the
// PSP call: a lock held across HTTP would pin a connection, hold back the event store's
// subscribers (they wait for the oldest open transaction) and die with its connection. A lease
// instead is short (Config.Lease, 10 s by default) and renewed every third of it while the
// payment is worked on, so a recovery may take longer than the lease, and a sweeper that dies
// mid-recovery (SIGKILL) leaves a lease that runs out within seconds for another sweeper to take.
// Before working on a payment the sweeper renews its lease once, so a payment whose lease ran out
// while it waited for a worker and was taken by another sweeper is skipped (Result.Lost); a lease
// lost during the work cancels it. Every write after the work checks that the lease is still the
// one held, so a sweeper whose lease was lost cannot overwrite the newer holder's bookkeeping.
// Schedules use the injected clock, passed to SQL as parameters, not the database's now();
// instances' clocks are assumed to agree to well within the lease.
//
// Even if two sweepers did work on one payment, nothing would be charged twice: a resolve appends
// with the stream's expected version, and a new confirm attempt starts only after a read-back
// shows Toss has not approved the payment. The lease keeps the PSP traffic and the attempt
// counts right.
//
// # Bulkhead
//
// The sweeper must not starve the API of Toss connections or goroutines while many payments
// are stuck (typically because Toss is down). Its concurrency is its own bounded worker pool
// (Config.Workers), and the Recoverer it is given is a commands.Service built with its own
// toss.Client, hence its own http.Client and connection pool, separate from the API's. A circuit
// breaker (sony/gobreaker) counts consecutive PSP failures (errors of class unknown outcome:
// timeouts, 5xx, broken connections) and pauses the sweeper while it is open; one trial call
// decides when to resume.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sony/gobreaker/v2"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/lease"
	"github.com/paymentledger/ledger/psp/toss"
)

// Recoverer resolves one payment from the PSP's truth. *commands.Service satisfies it.
//
// ResolveConfirm returns the payment's status after the attempt (EXECUTING or UNKNOWN while it
// stays unresolved), ResolveCancel the cancel's (PENDING while its outcome stays unknown); both
// return a non-nil error when the PSP could not be asked or its answer could not be recorded. An
// error that wraps a *toss.Error of class toss.ClassUnknownOutcome means Toss is failing and
// counts towards the circuit breaker; other errors do not. The methods must be safe for
// concurrent use and stop early when ctx is canceled.
type Recoverer interface {
	ResolveConfirm(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.ConfirmResult, error)
	ResolveCancel(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.CancelResult, error)
	MarkExhausted(ctx context.Context, id domain.OrderID, attempts int, lastError string) error
}

var _ Recoverer = (*commands.Service)(nil)

// Config holds the sweeper's settings. Zero values take the defaults.
type Config struct {
	Interval    time.Duration // how often Run scans (RECOVERY_INTERVAL); default 30s
	StaleAfter  time.Duration // age at which an EXECUTING payment counts as stuck (RECOVERY_STALE_AFTER); default 1m
	MaxAttempts int           // attempts before RecoveryExhausted (RECOVERY_MAX_ATTEMPTS); default 10
	Workers     int           // payments worked on at once by this instance; default 4
	BatchSize   int           // payments leased per scan; default 64
	// Lease is how long a leased payment belongs to this instance without a renewal; it is
	// renewed every Lease/3 while the payment is worked on, so a recovery may take longer. A
	// sweeper that dies mid-recovery holds the payment up for at most this long; default 10s.
	Lease time.Duration
	// BaseDelay is the delay after the first unsuccessful attempt; it doubles per attempt up to
	// MaxDelay, with jitter (lease.Backoff). Defaults 1m and 6h.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// InstanceID names this sweeper in recovery_state.leased_by; default hostname-pid-random.
	InstanceID string
	Breaker    BreakerConfig
	// OnBreakerStateChange, when set, is told each state the circuit breaker enters: "closed",
	// "half-open" or "open" (it starts closed, unannounced). It lets a gauge follow the breaker
	// without this package knowing about metrics. It runs synchronously while the breaker holds
	// its lock, on whichever goroutine caused the change, so it must be quick, safe for
	// concurrent use, and must not call back into the Sweeper.
	OnBreakerStateChange func(to string)
}

// BreakerConfig configures the circuit breaker on Toss.
type BreakerConfig struct {
	// Failures is how many consecutive PSP failures open the breaker; default 5.
	Failures int
	// OpenFor is how long it stays open before a single trial call may close it; default 30s.
	OpenFor time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, 30*time.Second)
	def(&c.StaleAfter, time.Minute)
	def(&c.Lease, DefaultLease)
	def(&c.BaseDelay, time.Minute)
	def(&c.MaxDelay, 6*time.Hour)
	def(&c.Breaker.OpenFor, 30*time.Second)
	if c.MaxDelay < c.BaseDelay {
		c.MaxDelay = c.BaseDelay
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.Breaker.Failures <= 0 {
		c.Breaker.Failures = 5
	}
	if c.InstanceID == "" {
		c.InstanceID = lease.NewHolder()
	}
	return c
}

// DefaultLease is Config.Lease's default: short, since it is renewed while a recovery runs.
const DefaultLease = 10 * time.Second

// delay is the wait after the attempts-th unsuccessful attempt.
func (c Config) delay(attempts int) time.Duration {
	return lease.Backoff(c.BaseDelay, c.MaxDelay, attempts)
}

// recoveryState is recovery_state as a leased queue.
var recoveryState = lease.Table{Name: "recovery_state", Key: "order_id", Holder: "leased_by", Until: "leased_until"}

// Sweeper is the recovery sweeper. Its methods are safe for concurrent use.
type Sweeper struct {
	pool    *pgxpool.Pool
	rec     Recoverer
	cfg     Config
	now     func() time.Time
	logger  *slog.Logger
	breaker *gobreaker.CircuitBreaker[attempt]
	leases  *lease.Queue
}

// New returns a Sweeper. rec should be a commands.Service with its own toss.Client (see the
// package doc); now is the clock (time.Now in production).
func New(pool *pgxpool.Pool, rec Recoverer, cfg Config, now func() time.Time, logger *slog.Logger) *Sweeper {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("instance", cfg.InstanceID)
	s := &Sweeper{pool: pool, rec: rec, cfg: cfg, now: now, logger: logger,
		leases: lease.New(pool, recoveryState, cfg.Lease, now)}
	failures := uint32(cfg.Breaker.Failures)
	s.breaker = gobreaker.NewCircuitBreaker[attempt](gobreaker.Settings{
		Name:        "recovery-toss",
		MaxRequests: 1, // half-open: one trial call
		Timeout:     cfg.Breaker.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// Only Toss failing counts. A domain error (a mismatch, a lost append race) means
		// Toss answered, so it counts as a success and resets the consecutive failures.
		IsSuccessful: func(err error) bool { return !pspFailing(err) },
		// Our own shutdown says nothing about Toss.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			logger.Warn("recovery circuit breaker", "breaker", name, "from", from.String(), "to", to.String())
			if cfg.OnBreakerStateChange != nil {
				cfg.OnBreakerStateChange(to.String())
			}
		},
	})
	return s
}

// pspFailing: err says the PSP could not be reached or failed to answer.
func pspFailing(err error) bool {
	var te *toss.Error
	return errors.As(err, &te) && toss.ClassOf(err) == toss.ClassUnknownOutcome
}

// Result counts what one scan did. Leased = Resolved + StillUnknown + Exhausted + Failed +
// Released + Lost.
type Result struct {
	Leased       int // payments leased by this scan
	Resolved     int // now known: approved, rejected, expired (or resolved by someone else meanwhile)
	StillUnknown int // Toss does not resolve it yet; rescheduled
	Exhausted    int // gave up: RecoveryExhausted recorded
	Failed       int // the attempt ended in an error (Toss failing, a mismatch, the database); rescheduled
	Released     int // leased but not worked on (breaker open, shutdown); no attempt counted
	Lost         int // the lease ran out unrenewed and another sweeper took the payment; nothing recorded
	BreakerOpen  bool
}

// Run sweeps at once and then every Interval until ctx is done, and returns nil then. A scan
// that fails is logged and the next one tries again.
func (s *Sweeper) Run(ctx context.Context) error {
	s.logger.InfoContext(ctx, "recovery sweeper started", "interval", s.cfg.Interval.String(),
		"staleAfter", s.cfg.StaleAfter.String(), "maxAttempts", s.cfg.MaxAttempts, "workers", s.cfg.Workers)
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		res, err := s.Sweep(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.logger.ErrorContext(ctx, "recovery sweep failed", "error", err)
		case res.Leased > 0: // Sweep itself logs a paused scan
			s.logger.InfoContext(ctx, "recovery sweep", "leased", res.Leased, "resolved", res.Resolved,
				"stillUnknown", res.StillUnknown, "exhausted", res.Exhausted, "failed", res.Failed,
				"released", res.Released, "breakerOpen", res.BreakerOpen)
		}
		select {
		case <-ctx.Done():
			s.logger.InfoContext(ctx, "recovery sweeper stopped")
			return nil
		case <-tick.C:
		}
	}
}

// leased is a payment this instance holds a lease on.
type leased struct {
	id       domain.OrderID
	attempts int       // unsuccessful attempts before this one
	until    time.Time // the lease as stored: the token later writes check
	cancel   bool      // the confirm is resolved: the lease is for the pending cancel
}

func (l leased) token(holder string) lease.Token {
	return lease.Token{Key: l.id, Holder: holder, Until: l.until}
}

type outcome int

const (
	outcomeResolved outcome = iota
	outcomeStillUnknown
	outcomeExhausted
	outcomeFailed
	outcomeReleased
	outcomeLost
)

func (o outcome) String() string {
	switch o {
	case outcomeResolved:
		return "resolved"
	case outcomeStillUnknown:
		return "still unknown"
	case outcomeExhausted:
		return "exhausted"
	case outcomeFailed:
		return "failed"
	case outcomeReleased:
		return "released"
	case outcomeLost:
		return "lease lost"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Sweep runs one scan: it leases the payments that are due (at most BatchSize), works them with
// at most Workers at once, and returns when all are done. It returns an error only when the
// database could not lease or release; a payment whose attempt fails is counted and logged.
// While the circuit breaker is open it leases nothing; if the breaker opens during the scan, the
// payments not yet worked on are released without counting an attempt. Canceling ctx stops the
// scan the same way (a confirm already under way is completed: commands detaches it).
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	batch := s.cfg.BatchSize
	switch s.breaker.State() {
	case gobreaker.StateOpen:
		s.logger.WarnContext(ctx, "recovery paused: the circuit breaker on Toss is open")
		return Result{BreakerOpen: true}, nil
	case gobreaker.StateHalfOpen:
		batch = 1 // the trial call decides; leasing more would only release them again
	}
	todo, err := s.lease(ctx, s.now(), batch)
	if err != nil {
		return Result{}, err
	}
	res := Result{Leased: len(todo)}
	if len(todo) == 0 {
		return res, nil
	}

	var (
		mu      sync.Mutex
		release []leased
		wg      sync.WaitGroup
		jobs    = make(chan leased)
	)
	count := func(l leased, o outcome) {
		mu.Lock()
		defer mu.Unlock()
		switch o {
		case outcomeResolved:
			res.Resolved++
		case outcomeStillUnknown:
			res.StillUnknown++
		case outcomeExhausted:
			res.Exhausted++
		case outcomeFailed:
			res.Failed++
		case outcomeReleased:
			release = append(release, l)
		case outcomeLost:
			res.Lost++
		}
	}
	for range min(s.cfg.Workers, len(todo)) {
		wg.Go(func() {
			for l := range jobs {
				count(s.work(ctx, l))
			}
		})
	}
dispatch:
	for i, l := range todo {
		if s.breaker.State() == gobreaker.StateOpen || ctx.Err() != nil {
			for _, r := range todo[i:] {
				count(r, outcomeReleased)
			}
			break
		}
		select {
		case jobs <- l:
		case <-ctx.Done():
			for _, r := range todo[i:] {
				count(r, outcomeReleased)
			}
			break dispatch
		}
	}
	close(jobs)
	wg.Wait()

	res.Released = len(release)
	res.BreakerOpen = s.breaker.State() == gobreaker.StateOpen
	if res.BreakerOpen {
		s.logger.WarnContext(ctx, "recovery paused: the circuit breaker on Toss opened", "released", res.Released)
	}
	if len(release) > 0 {
		// Also on shutdown: releasing lets another instance take them now, not after the lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := s.release(rctx, release); err != nil {
			return res, err
		}
	}
	return res, nil
}

// attempt is what one recovery attempt left: whether the payment (or its cancel) is resolved,
// and its state for the log.
type attempt struct {
	resolved bool
	status   domain.Status
	failure  *domain.Failure
}

// resolve makes the attempt the lease is for: the confirm of an unresolved payment, or the
// pending cancel of a resolved one.
func (s *Sweeper) resolve(ctx context.Context, l leased) (attempt, error) {
	opts := commands.ResolveOptions{NewAttempt: true, Actor: "recovery"}
	if l.cancel {
		res, err := s.rec.ResolveCancel(ctx, l.id, opts)
		return attempt{resolved: err == nil && res.CancelStatus != domain.CancelPending, status: res.PaymentStatus, failure: res.Failure}, err
	}
	res, err := s.rec.ResolveConfirm(ctx, l.id, opts)
	return attempt{resolved: err == nil && resolved(res.Status), status: res.Status, failure: res.Failure}, err
}

// work makes one recovery attempt for a leased payment, records its outcome and logs one line.
// The lease is renewed while it works; a payment to release is returned with its lease as last
// renewed.
func (s *Sweeper) work(ctx context.Context, l leased) (leased, outcome) {
	o, held := s.attempt(ctx, l)
	if o == outcomeReleased && held != nil {
		l.until = held.Stop().Until
	}
	return l, o
}

// attempt is work without the bookkeeping of the release. held is nil if the lease could not
// be kept.
func (s *Sweeper) attempt(ctx context.Context, l leased) (outcome, *lease.Held) {
	wctx, held, err := s.leases.Keep(ctx, l.token(s.cfg.InstanceID))
	if err != nil {
		if errors.Is(err, lease.ErrLost) {
			s.logger.InfoContext(ctx, "recovery skipped: the lease ran out while waiting and another sweeper took the payment", "orderId", l.id)
			return outcomeLost, nil
		}
		s.logger.ErrorContext(ctx, "recovery skipped: the lease could not be renewed", "orderId", l.id, "error", err)
		return outcomeFailed, nil // the lease runs out; nothing counted
	}
	defer held.Stop()
	pay, err := s.breaker.Execute(func() (attempt, error) { return s.resolve(wctx, l) })
	if errors.Is(context.Cause(wctx), lease.ErrLost) {
		// Another sweeper holds the payment now and records its own attempt.
		s.logger.WarnContext(ctx, "recovery attempt abandoned: the lease was lost", "orderId", l.id, "error", context.Cause(wctx))
		return outcomeLost, held
	}
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) ||
		(err != nil && ctx.Err() != nil) {
		return outcomeReleased, held // not an attempt: Toss was not asked, or we are shutting down
	}
	// Record even if ctx ends now: the attempt happened and must count.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	attempts := l.attempts + 1
	var (
		o         outcome
		next      *time.Time // nil: never again
		lastError string
		problems  []error // our own failures after the attempt
	)
	switch {
	case pay.resolved:
		o = outcomeResolved
	case attempts >= s.cfg.MaxAttempts:
		lastError = describe(pay, err)
		o = outcomeExhausted
		if merr := s.rec.MarkExhausted(rctx, l.id, attempts, lastError); merr != nil {
			// Not marked: keep it due soon; the next attempt tries to mark it again.
			o, next = outcomeFailed, ptr(s.now().Add(s.cfg.delay(1)))
			problems = append(problems, fmt.Errorf("mark exhausted: %w", merr))
		}
	default:
		lastError = describe(pay, err)
		o, next = outcomeStillUnknown, ptr(s.now().Add(s.cfg.delay(attempts)))
		if err != nil {
			o = outcomeFailed
		}
	}
	if werr := s.record(rctx, held, l, attempts, next, lastError); werr != nil {
		problems = append(problems, werr)
		if o == outcomeStillUnknown {
			o = outcomeFailed
		}
	}

	attrs := []any{"orderId", l.id, "refund", l.cancel, "attempts", attempts, "status", pay.status, "outcome", o.String()}
	if lastError != "" {
		attrs = append(attrs, "error", lastError)
	}
	if next != nil {
		attrs = append(attrs, "nextAttemptAt", *next)
	}
	level := slog.LevelInfo
	switch {
	case len(problems) > 0:
		level = slog.LevelError
		attrs = append(attrs, "recoveryError", errors.Join(problems...).Error())
	case o == outcomeExhausted:
		level = slog.LevelWarn
	}
	s.logger.Log(ctx, level, "recovery attempt", attrs...)
	return o, held
}

func ptr[T any](v T) *T { return &v }

// resolved: the payment's outcome is known; recovery has nothing left to do.
func resolved(st domain.Status) bool {
	switch st {
	case domain.StatusExecuting, domain.StatusUnknown, "":
		return false
	}
	return true
}

// describe says why an attempt did not resolve the payment.
func describe(pay attempt, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case pay.failure != nil:
		return fmt.Sprintf("still %s: %s: %s", pay.status, pay.failure.Code, pay.failure.Message)
	}
	return fmt.Sprintf("still %s", pay.status)
}

// The SQL of the lease, run in one short transaction.
const (
	// forgetResolvedSQL deletes the state of payments the read model shows resolved (by recovery,
	// a webhook or a late confirm). The read model lags the event store but never leads it, so
	// a resolved row there is resolved for good. A payment with a cancel in flight keeps its row,
	// unless the row is parked at 'infinity' (left by the confirm's recovery): then it goes, so
	// that the cancel gets a fresh row once it is stale.
	forgetResolvedSQL = `
		DELETE FROM recovery_state WHERE order_id IN (
			SELECT r.order_id FROM recovery_state r JOIN payment_orders o ON o.order_id = r.order_id
			WHERE o.status NOT IN ('EXECUTING', 'UNKNOWN') AND r.leased_until < $1
			  AND (NOT o.cancel_pending OR r.next_attempt_at = 'infinity')
			FOR UPDATE OF r SKIP LOCKED)`

	// insertCandidatesSQL gives every unresolved payment a state row ($1 now, $2 now - StaleAfter). In order_id order, so two
	// instances inserting the same rows wait on each other in one order and cannot deadlock.
	insertCandidatesSQL = `
		INSERT INTO recovery_state (order_id, updated_at)
		SELECT o.order_id, $1 FROM payment_orders o
		WHERE ((o.status IN ('EXECUTING', 'UNKNOWN') AND (o.status = 'UNKNOWN' OR o.updated_at < $2))
		       OR (o.cancel_pending AND (o.cancel_in_recovery OR o.updated_at < $2)))
		  AND NOT o.needs_review
		  AND NOT EXISTS (SELECT 1 FROM broken_streams b WHERE b.stream_id = 'payment-' || o.order_id)
		  AND NOT EXISTS (SELECT 1 FROM recovery_state r WHERE r.order_id = o.order_id)
		ORDER BY o.order_id
		ON CONFLICT (order_id) DO NOTHING`

	// leaseSQL leases due payments ($1 now, $2 leased until, $3 instance, $4 now - StaleAfter,
	// $5 limit). SKIP LOCKED: rows another instance is leasing right now are
	// skipped, not waited for; a row it leased and committed meanwhile fails leased_until < $1
	// when re-checked. A resolved or exhausted payment has next_attempt_at = 'infinity', so it is
	// not picked again while the read model catches up.
	leaseSQL = `
		UPDATE recovery_state r
		SET leased_until = $2, leased_by = $3, updated_at = $1
		FROM payment_orders p
		WHERE p.order_id = r.order_id AND r.order_id IN (
			SELECT s.order_id FROM recovery_state s JOIN payment_orders o ON o.order_id = s.order_id
			WHERE ((o.status IN ('EXECUTING', 'UNKNOWN') AND (o.status = 'UNKNOWN' OR o.updated_at < $4))
			       OR (o.cancel_pending AND (o.cancel_in_recovery OR o.updated_at < $4)))
			  AND NOT o.needs_review
			  AND NOT EXISTS (SELECT 1 FROM broken_streams b WHERE b.stream_id = 'payment-' || o.order_id)
			  AND s.next_attempt_at <= $1
			  AND s.leased_until < $1
			ORDER BY s.next_attempt_at, s.order_id
			LIMIT $5
			FOR UPDATE OF s SKIP LOCKED)
		RETURNING r.order_id, r.attempts, r.leased_until, p.status NOT IN ('EXECUTING', 'UNKNOWN')`
)

// lease takes up to n due payments for this instance, in one short transaction.
func (s *Sweeper) lease(ctx context.Context, now time.Time, n int) ([]leased, error) {
	var out []leased
	err := retryConflicts(ctx, func() error {
		out = out[:0]
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, forgetResolvedSQL, now); err != nil {
				return fmt.Errorf("forget resolved: %w", err)
			}
			if _, err := tx.Exec(ctx, insertCandidatesSQL, now, now.Add(-s.cfg.StaleAfter)); err != nil {
				return fmt.Errorf("insert candidates: %w", err)
			}
			rows, err := tx.Query(ctx, leaseSQL, now, now.Add(s.cfg.Lease), s.cfg.InstanceID, now.Add(-s.cfg.StaleAfter), n)
			if err != nil {
				return fmt.Errorf("lease: %w", err)
			}
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (leased, error) {
				var l leased
				err := r.Scan(&l.id, &l.attempts, &l.until, &l.cancel)
				return l, err
			})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("recovery: lease: %w", err)
	}
	return out, nil
}

// retryConflicts runs f again after a deadlock or serialization failure (f may run twice).
func retryConflicts(ctx context.Context, f func() error) error {
	var err error
	for range 3 {
		err = f()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "40P01" && pe.Code != "40001") || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// record writes an attempt's outcome and ends the lease: next is when to try again, nil for
// never (resolved, or exhausted and waiting for a person). It checks the lease is still ours.
func (s *Sweeper) record(ctx context.Context, held *lease.Held, l leased, attempts int, next *time.Time, lastError string) error {
	err := held.End(ctx, `attempts = $4, next_attempt_at = COALESCE($5::timestamptz, 'infinity'),
		last_error = NULLIF($6, ''), leased_until = '-infinity', updated_at = $7`,
		attempts, next, lastError, s.now())
	if err != nil {
		return fmt.Errorf("recovery: record %s: %w", l.id, err)
	}
	return nil
}

// release ends leases without counting an attempt. A lease already lost is left to its new
// holder.
func (s *Sweeper) release(ctx context.Context, ls []leased) error {
	toks := make([]lease.Token, len(ls))
	for i, l := range ls {
		toks[i] = l.token(s.cfg.InstanceID)
	}
	var errs []error
	for i, err := range s.leases.EndAll(ctx, toks, `leased_until = '-infinity', updated_at = $4`, s.now()) {
		if err != nil && !errors.Is(err, lease.ErrLost) {
			errs = append(errs, fmt.Errorf("recovery: release %s: %w", ls[i].id, err))
		}
	}
	return errors.Join(errs...)
}
