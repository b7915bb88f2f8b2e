package webhooks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/lease"
)

// Syncer re-reads a payment from Toss by orderId and records the truth. *commands.Service is
// the implementation. Sync must be idempotent and safe for concurrent calls on one order
// (the worker may repeat a call after a crash or a lease that ran out); it returns
// domain.ErrPaymentNotFound for an order the ledger does not know.
type Syncer interface {
	Sync(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.ConfirmResult, error)
}

var _ Syncer = (*commands.Service)(nil)

// Actor is the actor recorded on the events the worker's read-backs append.
const Actor = "webhook"

// WorkerConfig configures a Worker. Zero values take the defaults named on each field.
type WorkerConfig struct {
	// Interval is the poll period when nothing wakes the worker (default 1 s).
	Interval time.Duration
	// BatchSize is how many due rows one ProcessOnce claims (default 32).
	BatchSize int
	// MaxAttempts is how many read-backs a row gets before it is marked failed (default 10).
	// The recovery sweeper is the backstop for payments behind failed rows.
	MaxAttempts int
	// Workers is how many read-backs run at once within a batch (default 4).
	Workers int
	// CallTimeout bounds one read-back (default 30 s).
	CallTimeout time.Duration
	// Lease is how long a claimed row stays hidden from other workers without a renewal
	// (default 10 s). It is renewed every third of it while the row's order is read back, so a
	// read-back may take longer, and a worker that dies mid-batch delays its rows by at most this.
	Lease time.Duration
	// InstanceID names this worker in webhook_inbox.leased_by; default hostname-pid-random.
	InstanceID string
	// BaseBackoff is the delay before the second attempt; it doubles per attempt, with jitter,
	// up to MaxBackoff (defaults 2 s and 5 min; lease.Backoff).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// SpoolDir is the inbox's InboxConfig.SpoolDir; empty when the inbox has none.
	SpoolDir string
	// SyncInterval is the least time between two read-backs of one order (default 5 s), across
	// every worker on the table: the webhook_order_syncs gate. Rows of an order whose gate is
	// closed wait until it opens (see the package documentation).
	SyncInterval time.Duration
	// Retention is how long processed, rejected and failed rows are kept, by received_at
	// (default 720 h); Run deletes older ones every few minutes. Pending rows are never deleted.
	Retention time.Duration
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 32
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.InstanceID == "" {
		c.InstanceID = lease.NewHolder()
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 2 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	c.MaxBackoff = max(c.MaxBackoff, c.BaseBackoff)
	if c.SyncInterval <= 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// Defaults of WorkerConfig.
const (
	DefaultLease        = 10 * time.Second
	DefaultSyncInterval = 5 * time.Second
	DefaultRetention    = 720 * time.Hour
)

// purgeEvery is how often Run deletes expired rows: often enough that the table stays near its
// retention, rarely enough that several instances' workers add no load worth naming.
const purgeEvery = 5 * time.Minute

// purgeBatch is how many rows one DELETE removes. Each statement is its own short transaction,
// so no long transaction holds back vacuum or the event store's readers.
const purgeBatch = 1000

// maxCovered bounds the other pending rows of an order that one read-back resolves at once; the
// rest wait for a later read-back.
const maxCovered = 1000

// Worker processes the webhook inbox: it drains the spool into the table, claims due pending
// rows and reads their payments back through the Syncer, and deletes rows past their retention.
// Several workers, in one process or many, may run on one table: a row is claimed by one at a
// time (FOR UPDATE SKIP LOCKED and a lease), and an order is read back by one at a time per
// SyncInterval (the webhook_order_syncs gate). A Worker is safe for concurrent use.
type Worker struct {
	pool   *pgxpool.Pool
	leases *lease.Queue
	sync   Syncer
	cfg    WorkerConfig
	logger *slog.Logger
	wake   chan struct{}
}

// NewWorker returns a worker on pool's webhook_inbox table. logger is a plain logger: the worker
// adds component=webhook-worker itself, so the caller must not add a component of its own.
func NewWorker(pool *pgxpool.Pool, sync Syncer, cfg WorkerConfig, logger *slog.Logger) *Worker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Worker{pool: pool, sync: sync, cfg: cfg, logger: logger.With("component", "webhook-worker"),
		wake: make(chan struct{}, 1), leases: lease.New(pool, inbox, cfg.Lease, nil)}
}

// inbox is webhook_inbox as a leased queue: a pending row's lease runs out at its
// next_attempt_at, on the database's clock (the claim compares with now()).
var inbox = lease.Table{Name: "webhook_inbox", Key: "id", Holder: "leased_by", Until: "next_attempt_at", Held: "status = 'pending'"}

// Wake makes Run start its next batch now. It never blocks; wire it to InboxConfig.Notify.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run processes batches until ctx is done, then returns nil. It starts a batch when woken,
// every Interval otherwise, and at once again after a full batch. Beside the batches it deletes
// expired rows (PurgeExpired) when it starts and every few minutes after. Errors are logged and
// the next batch or purge retries.
func (w *Worker) Run(ctx context.Context) error {
	var purger sync.WaitGroup
	defer purger.Wait()
	purger.Go(func() { w.purgeLoop(ctx) })
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-w.wake:
		}
		n, err := w.ProcessOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		next := w.cfg.Interval
		if err != nil {
			w.logger.ErrorContext(ctx, "webhook batch failed; retrying", "error", err, "retryIn", next.String())
		} else if n == w.cfg.BatchSize {
			next = 0 // more may be due
		}
		timer.Reset(next)
	}
}

// purgeLoop runs PurgeExpired now and every purgeEvery until ctx is done. It runs beside the
// batches, so a long backlog of expired rows never delays a webhook.
func (w *Worker) purgeLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n, err := w.PurgeExpired(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.logger.ErrorContext(ctx, "deleting expired webhook rows failed; retrying later", "error", err, "deleted", n, "retryIn", purgeEvery.String())
		case n > 0:
			w.logger.InfoContext(ctx, "expired webhook rows deleted", "deleted", n, "retention", w.cfg.Retention.String())
		}
		timer.Reset(purgeEvery)
	}
}

// PurgeExpired deletes the processed, rejected and failed rows received more than Retention
// ago, and the gates of webhook_order_syncs that are open anyway, purgeBatch rows per
// statement until none is left. Pending rows are never deleted. It returns the number of
// inbox rows deleted. Several workers may purge at once: each skips rows another is deleting.
func (w *Worker) PurgeExpired(ctx context.Context) (int64, error) {
	// "= ANY(ARRAY(…))" rather than "IN (…)": the planner may turn IN into a join that scans
	// the whole table for every batch; an array of ids is looked up by primary key.
	var total int64
	for {
		tag, err := w.pool.Exec(ctx, `
			DELETE FROM webhook_inbox
			WHERE id = ANY(ARRAY(
				SELECT id FROM webhook_inbox
				WHERE status <> 'pending' AND received_at < now() - $1::float8 * interval '1 second'
				ORDER BY received_at
				LIMIT $2
				FOR UPDATE SKIP LOCKED
			)) AND status <> 'pending'`, w.cfg.Retention.Seconds(), purgeBatch)
		if err != nil {
			return total, fmt.Errorf("webhooks: delete expired rows: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() == 0 {
			break
		}
	}
	for {
		// An open gate (older than the interval) means the same as no row. The outer condition
		// is checked again on the row as it is when locked, so a gate that a worker has just
		// closed again is kept.
		tag, err := w.pool.Exec(ctx, `
			DELETE FROM webhook_order_syncs
			WHERE order_id = ANY(ARRAY(
				SELECT order_id FROM webhook_order_syncs
				WHERE synced_at < now() - $1::float8 * interval '1 second'
				ORDER BY synced_at
				LIMIT $2
				FOR UPDATE SKIP LOCKED
			)) AND synced_at < now() - $1::float8 * interval '1 second'`, w.cfg.SyncInterval.Seconds(), purgeBatch)
		if err != nil {
			return total, fmt.Errorf("webhooks: delete open gates: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return total, nil
		}
	}
}

// claimed is a row this worker holds the lease on.
type claimed struct {
	id       int64
	orderID  domain.OrderID
	merchant domain.MerchantID // "" for rows stored before per-merchant URLs
	attempts int               // after this claim
	until    time.Time         // next_attempt_at as claimed: the lease's token
	held     *lease.Held       // the lease while the row's order is worked on
}

// ProcessOnce drains the spool, then claims one batch of due rows and, for each order whose
// gate it passes, reads the order back once (rows of one order share the read-back) and records
// the results; rows of an order whose gate is closed are postponed until it opens. It returns
// the number of rows claimed. A read-back that fails is not an error of ProcessOnce: it is
// recorded on its rows (back-off, then failed). The error reports database and spool trouble;
// rows already handled stay handled. If ctx ends mid-batch, unfinished rows are released for
// the next run.
func (w *Worker) ProcessOnce(ctx context.Context) (int, error) {
	var errs []error
	if err := w.drainSpool(ctx); err != nil {
		errs = append(errs, err)
	}
	rows, err := w.claim(ctx)
	if err != nil {
		return 0, errors.Join(append(errs, err)...)
	}
	var orders []domain.OrderID
	byOrder := map[domain.OrderID][]claimed{}
	for _, r := range rows {
		if _, seen := byOrder[r.orderID]; !seen {
			orders = append(orders, r.orderID)
		}
		byOrder[r.orderID] = append(byOrder[r.orderID], r)
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan domain.OrderID)
	for range min(w.cfg.Workers, len(orders)) {
		wg.Go(func() {
			for id := range next {
				if err := w.syncOrder(ctx, id, byOrder[id]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range orders {
		next <- id
	}
	close(next)
	wg.Wait()
	return len(rows), errors.Join(errs...)
}

// claim takes up to BatchSize due pending rows: attempts+1 and a lease, in one statement (its
// own short transaction). Rows locked by another worker's claim are skipped, not waited for.
func (w *Worker) claim(ctx context.Context) ([]claimed, error) {
	rs, err := w.pool.Query(ctx, `
		WITH due AS (
			SELECT id FROM webhook_inbox
			WHERE status = 'pending' AND next_attempt_at <= now()
			ORDER BY next_attempt_at, id
			LIMIT $1
			FOR UPDATE SKIP LOCKED
		)
		UPDATE webhook_inbox AS w
		SET attempts = w.attempts + 1, next_attempt_at = now() + $2::float8 * interval '1 second', leased_by = $3
		FROM due
		WHERE w.id = due.id
		RETURNING w.id, w.order_id, coalesce(w.merchant_id, ''), w.attempts, w.next_attempt_at`,
		w.cfg.BatchSize, w.cfg.Lease.Seconds(), w.cfg.InstanceID)
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	rows, err := pgx.CollectRows(rs, func(row pgx.CollectableRow) (claimed, error) {
		var c claimed
		err := row.Scan(&c.id, &c.orderID, &c.merchant, &c.attempts, &c.until)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	slices.SortFunc(rows, func(a, b claimed) int { return cmp.Compare(a.id, b.id) })
	return rows, nil
}

// syncOrder passes the order's gate or postpones its rows, then reads the order back once per
// merchant scope among its rows and records the results.
func (w *Worker) syncOrder(ctx context.Context, id domain.OrderID, rows []claimed) error {
	// The results are recorded even when ctx ends meanwhile: a read-back that happened counts.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	ctx, rows, stopWork, kerr := w.keep(ctx, rows)
	defer stopWork()
	if kerr != nil {
		// Those rows' leases run out and they are claimed again.
		w.logger.ErrorContext(ctx, "webhook rows skipped: their leases could not be renewed", "orderId", id, "error", kerr)
	}
	if len(rows) == 0 {
		return kerr
	}
	defer func() {
		for _, r := range rows {
			r.held.Stop()
		}
	}()
	won, err := w.takeGate(ctx, id)
	if err != nil {
		errs := []error{err}
		for _, r := range rows {
			errs = append(errs, w.release(rctx, r))
		}
		return errors.Join(errs...)
	}
	if !won {
		var errs []error
		for _, r := range rows {
			w.logger.DebugContext(ctx, "webhook postponed: its order was read back less than the sync interval ago", "orderId", id, "row", r.id)
			if err := w.postpone(rctx, r); err != nil {
				errs = append(errs, fmt.Errorf("webhooks: postpone row %d: %w", r.id, err))
			}
		}
		return errors.Join(errs...)
	}

	// One Sync per merchant scope: Sync checks the merchant against the payment's owner
	// before it calls Toss, so only the owner's scope costs a read-back. Scoped groups go first;
	// rows from before per-merchant URLs ("") ask for the order whatever its merchant, so the
	// owner's answer (a result, or the error that makes them retry) serves them without a
	// second call within the gate.
	groups := map[domain.MerchantID][]claimed{}
	var scopes []domain.MerchantID
	for _, r := range rows {
		if _, seen := groups[r.merchant]; !seen {
			scopes = append(scopes, r.merchant)
		}
		groups[r.merchant] = append(groups[r.merchant], r)
	}
	slices.SortStableFunc(scopes, func(a, b domain.MerchantID) int {
		return cmp.Compare(boolInt(a == ""), boolInt(b == ""))
	})
	type answer struct {
		res commands.ConfirmResult
		err error
	}
	var errs []error
	var owners *answer // the first scoped answer that found the payment
	for _, m := range scopes {
		group := groups[m]
		// Rows of this scope stored before the read-back starts are resolved by it too: Toss's
		// answer is at least as new as anything they report.
		covered, err := w.pendingOf(rctx, id, m, group)
		if err != nil {
			errs = append(errs, err)
		}
		var a answer
		if m == "" && owners != nil {
			a = *owners
		} else {
			callCtx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
			a.res, a.err = w.sync.Sync(callCtx, id, commands.ResolveOptions{NewAttempt: false, Actor: Actor, Merchant: m})
			cancel()
			if m != "" && owners == nil && !errors.Is(a.err, domain.ErrPaymentNotFound) {
				owners = &a
			}
		}
		errs = append(errs, w.record(ctx, rctx, id, group, covered, a.res, a.err))
	}
	return errors.Join(errs...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// record writes the result of one read-back on its claimed rows and, when it resolved the
// order's question, on the covered rows too.
func (w *Worker) record(ctx, rctx context.Context, id domain.OrderID, rows []claimed, covered []int64, res commands.ConfirmResult, err error) error {
	var errs []error
	for _, r := range rows {
		var ferr error
		switch {
		case err == nil:
			w.logger.InfoContext(ctx, "webhook synced", "orderId", id, "merchantId", r.merchant, "row", r.id, "paymentStatus", res.Status)
			ferr = w.markProcessed(rctx, r, string(res.Status))
		case errors.Is(err, domain.ErrPaymentNotFound):
			// Toss sends webhooks for every payment of the MID; ours exist before Toss has them.
			// With a merchant, this is also a payment of another merchant, which was not read back.
			w.logger.InfoContext(ctx, "webhook for an order the ledger does not know", "orderId", id, "merchantId", r.merchant, "row", r.id)
			ferr = w.markProcessed(rctx, r, OutcomeUnknownOrder)
		case ctx.Err() != nil:
			ferr = w.release(rctx, r)
		case r.attempts >= w.cfg.MaxAttempts:
			w.logger.ErrorContext(ctx, "webhook failed; the recovery sweeper is the backstop", "orderId", id, "merchantId", r.merchant, "row", r.id, "attempts", r.attempts, "error", err)
			ferr = w.markFailed(rctx, r, err)
		default:
			delay := w.backoff(r.attempts)
			w.logger.WarnContext(ctx, "webhook read-back failed; retrying", "orderId", id, "merchantId", r.merchant, "row", r.id, "attempts", r.attempts, "retryIn", delay.String(), "error", err)
			ferr = w.retryLater(rctx, r, delay, err)
		}
		if ferr != nil {
			errs = append(errs, fmt.Errorf("webhooks: record row %d: %w", r.id, ferr))
		}
	}
	if len(covered) > 0 {
		outcome := ""
		switch {
		case err == nil:
			outcome = string(res.Status)
		case errors.Is(err, domain.ErrPaymentNotFound):
			outcome = OutcomeUnknownOrder
		}
		if outcome != "" {
			if cerr := w.markCovered(rctx, covered, outcome); cerr != nil {
				errs = append(errs, fmt.Errorf("webhooks: record rows resolved with order %s: %w", id, cerr))
			} else {
				w.logger.InfoContext(ctx, "webhooks resolved by the same read-back", "orderId", id, "rows", len(covered), "outcome", outcome)
			}
		}
	}
	return errors.Join(errs...)
}

// keep renews the leases of rows and keeps them renewed until each row's last write. A row whose
// lease ran out while it waited and that another worker claimed is left to that worker. The
// context returned ends when any kept lease is lost (the read-back is then left to the new
// holder), not when a row's lease ends normally: each lease hangs off ctx, and only a loss is
// passed on, so recording the first row does not cancel the work on the others. stop releases
// the context once the rows are done.
func (w *Worker) keep(ctx context.Context, rows []claimed) (work context.Context, kept []claimed, stop func(), err error) {
	work, cancel := context.WithCancelCause(ctx)
	var errs []error
	for _, r := range rows {
		kctx, held, err := w.leases.Keep(ctx, lease.Token{Key: r.id, Holder: w.cfg.InstanceID, Until: r.until})
		switch {
		case errors.Is(err, lease.ErrLost):
			w.logger.DebugContext(ctx, "webhook row taken over by another worker", "orderId", r.orderID, "row", r.id)
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("webhooks: keep row %d: %w", r.id, err)) // its lease runs out
			continue
		}
		context.AfterFunc(kctx, func() {
			if cause := context.Cause(kctx); errors.Is(cause, lease.ErrLost) {
				cancel(cause)
			}
		})
		r.held = held
		kept = append(kept, r)
	}
	return work, kept, func() { cancel(nil) }, errors.Join(errs...)
}

// takeGate reports whether this worker may read order id back now. It moves the order's
// synced_at to now() only if the gate is open (no row, or one older than SyncInterval); the
// unique key makes concurrent takers wait for each other, so exactly one of them wins.
func (w *Worker) takeGate(ctx context.Context, id domain.OrderID) (bool, error) {
	var won bool
	err := w.pool.QueryRow(ctx, `
		INSERT INTO webhook_order_syncs AS s (order_id, synced_at) VALUES ($1, now())
		ON CONFLICT (order_id) DO UPDATE SET synced_at = excluded.synced_at
		WHERE s.synced_at <= now() - $2::float8 * interval '1 second'
		RETURNING true`, id, w.cfg.SyncInterval.Seconds()).Scan(&won)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("webhooks: sync gate of %s: %w", id, err)
	}
	return won, nil
}

// pendingOf lists the other pending rows of order id in merchant scope m (NULL for ""), as
// committed before the read-back starts.
func (w *Worker) pendingOf(ctx context.Context, id domain.OrderID, m domain.MerchantID, claimedRows []claimed) ([]int64, error) {
	ids := make([]int64, len(claimedRows))
	for i, r := range claimedRows {
		ids[i] = r.id
	}
	rs, err := w.pool.Query(ctx, `
		SELECT id FROM webhook_inbox
		WHERE order_id = $1 AND status = 'pending' AND merchant_id IS NOT DISTINCT FROM $2 AND id <> ALL($3)
		ORDER BY id
		LIMIT $4`, id, nullIfEmpty(string(m)), ids, maxCovered)
	if err != nil {
		return nil, fmt.Errorf("webhooks: pending rows of %s: %w", id, err)
	}
	covered, err := pgx.CollectRows(rs, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("webhooks: pending rows of %s: %w", id, err)
	}
	return covered, nil
}

// The updates below end the row's lease and write only if it is still this worker's (and the
// row still pending): if the lease was lost and another worker claimed the row meanwhile, or the
// row was resolved by another read-back, that worker records the result instead.

func end(ctx context.Context, r claimed, set string, args ...any) error {
	if err := r.held.End(ctx, set, args...); err != nil && !errors.Is(err, lease.ErrLost) {
		return err
	}
	return nil
}

func (w *Worker) markProcessed(ctx context.Context, r claimed, outcome string) error {
	return end(ctx, r, `status = 'processed', outcome = $4, processed_at = now(), last_error = NULL`, outcome)
}

func (w *Worker) retryLater(ctx context.Context, r claimed, delay time.Duration, cause error) error {
	return end(ctx, r, `next_attempt_at = now() + $4::float8 * interval '1 second', last_error = $5`, delay.Seconds(), errText(cause))
}

func (w *Worker) markFailed(ctx context.Context, r claimed, cause error) error {
	return end(ctx, r, `status = 'failed', last_error = $4`, errText(cause))
}

// markCovered resolves rows this worker did not claim with a read-back that started after they
// were stored. Another worker holding one of them finds it processed and records nothing.
func (w *Worker) markCovered(ctx context.Context, ids []int64, outcome string) error {
	_, err := w.pool.Exec(ctx, `
		UPDATE webhook_inbox SET status = 'processed', outcome = $2, processed_at = now(), last_error = NULL
		WHERE id = ANY($1) AND status = 'pending'`, ids, outcome)
	return err
}

// postpone gives a row back unattempted, due when its order's gate opens.
func (w *Worker) postpone(ctx context.Context, r claimed) error {
	return end(ctx, r, `attempts = attempts - 1,
		next_attempt_at = greatest(now(), coalesce(
			(SELECT synced_at FROM webhook_order_syncs WHERE order_id = $4) + $5::float8 * interval '1 second', now()))`,
		r.orderID, w.cfg.SyncInterval.Seconds())
}

// release gives a row back unattempted (the worker is stopping, or the gate could not be asked).
func (w *Worker) release(ctx context.Context, r claimed) error {
	return end(ctx, r, `attempts = attempts - 1, next_attempt_at = now()`)
}

// backoff is the delay after the attempt-th failed attempt (lease.Backoff): rows that failed
// together (a Toss outage) do not come back together.
func (w *Worker) backoff(attempt int) time.Duration {
	return lease.Backoff(w.cfg.BaseBackoff, w.cfg.MaxBackoff, attempt)
}

// errText bounds an error for the last_error column.
func errText(err error) string {
	const maxLen = 2000
	s := err.Error()
	if len(s) > maxLen {
		s = truncateUTF8(s, maxLen) + "…"
	}
	return s
}

// drainSpool inserts every spooled delivery into the table and removes the spool files it
// finished. It stops at the first database error that is not about the line itself, keeping
// the file for the next run; the dedupe key makes the repeat harmless.
func (w *Worker) drainSpool(ctx context.Context) error {
	dir := w.cfg.SpoolDir
	if dir == "" {
		return nil
	}
	files, err := takeSpool(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		lines, bad, err := readSpool(f)
		if err != nil {
			return fmt.Errorf("webhooks: read spool: %w", err)
		}
		for _, l := range lines {
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			inserted, err := insertDelivery(ictx, w.pool, l, classify(l.Body))
			cancel()
			var pgErr *pgconn.PgError
			switch {
			case err != nil && errors.As(err, &pgErr) && lineProblem(pgErr):
				w.logger.ErrorContext(ctx, "spooled webhook refused by the database; kept in the poison file", "error", err, "file", poisonSpool)
				if err := poisonLine(dir, l); err != nil {
					return err
				}
			case err != nil:
				return err
			case inserted:
				w.logger.InfoContext(ctx, "spooled webhook stored", "receivedAt", l.ReceivedAt)
			}
		}
		for _, b := range bad {
			w.logger.WarnContext(ctx, "undecodable spool line (a write cut short); kept in the poison file", "file", poisonSpool)
			if err := poison(dir, b); err != nil {
				return err
			}
		}
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("webhooks: remove drained spool: %w", err)
		}
		if err := syncDir(filepath.Dir(f)); err != nil {
			return err
		}
	}
	return nil
}

// lineProblem tells errors about the row itself (bad data, a violated constraint, a value too
// large for an index), which no retry fixes, from trouble with the database.
func lineProblem(e *pgconn.PgError) bool {
	if len(e.Code) < 2 {
		return false
	}
	switch e.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

func poisonLine(dir string, l spoolLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return poison(dir, b)
}
