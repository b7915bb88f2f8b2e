// Package projections builds the read models from the global event log. A Runner feeds one
// Projection from its checkpoint in batches and writes the read-model rows and the new
// checkpoint in one transaction, so a crash never loses or repeats an event's effect.
package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
)

// Projection turns events into read-model rows.
type Projection interface {
	// Name identifies the projection's checkpoint. Never rename a running projection.
	Name() string
	// Apply writes the effect of one event inside tx. Events of types the projection does not
	// care about must be ignored without error.
	Apply(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error
}

// Subscriber is what the runner needs of the event store.
type Subscriber interface {
	Subscribe(ctx context.Context, from eventstore.Position, batchSize int, handle func(context.Context, []eventstore.RecordedEvent) error) error
}

// ErrCheckpointMoved means another runner advanced the same projection's checkpoint; this one
// starts over from the stored checkpoint.
var ErrCheckpointMoved = errors.New("projections: checkpoint moved by another runner")

// Runner runs one projection. Several runners of the same projection (several paymentd
// instances) are safe: the checkpoint update is conditional on the position the runner read, so
// a batch applied by two runners commits only once.
//
// Poison events. An event whose Apply keeps failing does not stop the projection: after
// MaxAttempts failed attempts the runner parks it (a 'poison' row of projection_parked, with the
// last error), holds the later events of its stream (a 'held' row each, in log order, never
// applied: the stream's rows are not built over a hole) and goes on with every other stream.
// parked.go lists the rows, and Redrive applies a stream's rows once the cause is fixed.
//
// The fast path is one transaction per batch, as before parking existed, plus a look-up of the
// batch's held streams. When a batch fails, the runner applies it again event by event, each in
// a savepoint, so the good events commit and only the failing one is counted; it stops at an
// event that has failed fewer than MaxAttempts times, commits what came before it (moving the
// checkpoint up to there) and tries it again after RetryDelay. Parked and held rows are written
// in the transaction that moves the checkpoint past them: a crash never loses or repeats one.
//
// Attempts are counted in memory by each runner, across its retries (a restart counts from
// zero). Failures that say nothing about the event (a lost connection, a lock or serialization
// conflict, the server out of resources, cancellation: retryable) are retried without counting.
type Runner struct {
	pool       *pgxpool.Pool
	store      Subscriber
	proj       Projection
	BatchSize  int           // events per transaction; default 256
	RetryDelay time.Duration // wait after a failed batch; default 1s
	// MaxAttempts is how many failed applies of one event the runner tries before it parks the
	// event; default 3. Zero or less never parks: the failing batch is retried forever.
	MaxAttempts int
	logger      *slog.Logger
	failures    map[uuid.UUID]failure // by event id: the events that failed and are not parked yet
}

// failure is an event's failed attempts so far and the last error.
type failure struct {
	attempts int
	err      error
}

// NewRunner returns a runner for proj.
func NewRunner(pool *pgxpool.Pool, store Subscriber, proj Projection, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{pool: pool, store: store, proj: proj, BatchSize: 256, RetryDelay: time.Second, MaxAttempts: 3,
		logger: logger.With("projection", proj.Name())}
}

// Run applies events until ctx is done; it then returns nil. Errors (a failing Apply, a lost
// connection) are logged and retried from the stored checkpoint after RetryDelay; an event that
// fails MaxAttempts times is parked (see Runner).
func (r *Runner) Run(ctx context.Context) error {
	for {
		err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrCheckpointMoved) {
			r.logger.InfoContext(ctx, "checkpoint moved by another runner; resuming from it")
		} else {
			r.logger.ErrorContext(ctx, "projection failed; retrying", "error", err, "retryIn", r.RetryDelay.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.RetryDelay):
		}
	}
}

func (r *Runner) runOnce(ctx context.Context) error {
	pos, err := Checkpoint(ctx, r.pool, r.proj.Name())
	if err != nil {
		return err
	}
	return r.store.Subscribe(ctx, pos, r.BatchSize, func(ctx context.Context, batch []eventstore.RecordedEvent) error {
		next := batch[len(batch)-1].Position
		if err := r.applyBatch(ctx, pos, batch); err != nil {
			return err
		}
		pos = next
		return nil
	})
}

// applyBatch applies batch, which follows the checkpoint from, and moves the checkpoint to its
// last event: in one transaction when nothing fails, else event by event (applyEach). It returns
// nil only when the whole batch is applied, held or parked.
func (r *Runner) applyBatch(ctx context.Context, from eventstore.Position, batch []eventstore.RecordedEvent) error {
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		held, err := heldStreams(ctx, tx, r.proj.Name(), batch)
		if err != nil {
			return err
		}
		for _, e := range batch {
			if held[e.StreamID] {
				if err := r.hold(ctx, tx, e); err != nil {
					return err
				}
				continue
			}
			if err := r.proj.Apply(ctx, tx, e); err != nil {
				return newEventError(r.proj.Name(), e, err)
			}
		}
		return advance(ctx, tx, r.proj.Name(), from, batch[len(batch)-1].Position)
	})
	var ee *EventError
	switch {
	case err == nil:
		for _, e := range batch {
			delete(r.failures, e.ID)
		}
		return nil
	case r.MaxAttempts <= 0 || retryable(err):
		return err
	case errors.As(err, &ee):
		r.count(ee.EventID, ee.Err)
	case !isIntegrityViolation(err):
		// The checkpoint moved, or the held streams or the checkpoint could not be read or
		// written: nothing to do with one event.
		return err
	}
	// An Apply failed, or a deferred check at commit (the ledger's balance trigger) did, which
	// names no event: find it and count it, event by event.
	return r.applyEach(ctx, from, batch)
}

// applyEach applies batch event by event, each in a savepoint with the deferred checks run
// before the savepoint is released, so that a failure is pinned on its event. It parks an event
// that has failed MaxAttempts times and holds the later events of its stream. At an event that
// failed fewer times, it commits what came before (if anything) and returns that event's error.
func (r *Runner) applyEach(ctx context.Context, from eventstore.Position, batch []eventstore.RecordedEvent) error {
	var stopped error
	last := from
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		stopped, last = nil, from
		held, err := heldStreams(ctx, tx, r.proj.Name(), batch)
		if err != nil {
			return err
		}
	events:
		for _, e := range batch {
			switch {
			case held[e.StreamID]:
				if err := r.hold(ctx, tx, e); err != nil {
					return err
				}
			case r.failures[e.ID].attempts >= r.MaxAttempts:
				if err := r.park(ctx, tx, e); err != nil {
					return err
				}
				held[e.StreamID] = true
			default:
				err := applyInSavepoint(ctx, tx, r.proj, e)
				if err == nil {
					break
				}
				if retryable(err) || tx.Conn().IsClosed() {
					return err
				}
				var ee *EventError
				if !errors.As(err, &ee) {
					return err // the savepoint itself failed
				}
				if r.count(e.ID, ee.Err) < r.MaxAttempts {
					stopped = err
					break events
				}
				if err := r.park(ctx, tx, e); err != nil {
					return err
				}
				held[e.StreamID] = true
			}
			last = e.Position
		}
		if last == from {
			return stopped
		}
		return advance(ctx, tx, r.proj.Name(), from, last)
	})
	if err != nil {
		return err
	}
	// Committed: the events up to last are applied, parked or held; forget their failures, and
	// those of events not in this batch (another runner applied or parked them).
	kept := map[uuid.UUID]failure{}
	for _, e := range batch {
		if last.Less(e.Position) {
			if f, ok := r.failures[e.ID]; ok {
				kept[e.ID] = f
			}
		}
	}
	r.failures = kept
	return stopped
}

// applyInSavepoint applies e in a savepoint of tx and runs the checks deferred to commit before
// releasing it; on failure the savepoint is rolled back, and tx is as it was. Apply's failure and
// the checks' come back as an *EventError.
func applyInSavepoint(ctx context.Context, tx pgx.Tx, proj Projection, e eventstore.RecordedEvent) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	err = proj.Apply(ctx, sp, e)
	if err == nil {
		// Every deferrable constraint of the read models is INITIALLY DEFERRED (the ledger's
		// balance triggers): IMMEDIATE runs their pending checks now, DEFERRED puts them back.
		_, err = sp.Exec(ctx, `SET CONSTRAINTS ALL IMMEDIATE`)
		if err == nil {
			_, err = sp.Exec(ctx, `SET CONSTRAINTS ALL DEFERRED`)
		}
	}
	if err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return newEventError(proj.Name(), e, err)
	}
	return sp.Commit(ctx)
}

// count records a failed attempt at the event and returns the attempts so far.
func (r *Runner) count(id uuid.UUID, err error) int {
	if r.failures == nil {
		r.failures = map[uuid.UUID]failure{}
	}
	f := r.failures[id]
	f.attempts++
	f.err = err
	r.failures[id] = f
	return f.attempts
}

func (r *Runner) park(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	f := r.failures[e.ID]
	if err := insertParked(ctx, tx, r.proj.Name(), StatePoison, e, f.err, f.attempts); err != nil {
		return err
	}
	r.logger.ErrorContext(ctx, "event parked: its stream is held for this projection until it is redriven (paymentctl dlq)",
		"eventId", e.ID, "stream", e.StreamID, "version", e.Version, "position", e.Position.String(), "type", e.Type,
		"attempts", f.attempts, "error", f.err)
	return nil
}

func (r *Runner) hold(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	if err := insertParked(ctx, tx, r.proj.Name(), StateHeld, e, nil, 0); err != nil {
		return err
	}
	r.logger.WarnContext(ctx, "event held behind a parked event of its stream",
		"eventId", e.ID, "stream", e.StreamID, "version", e.Version, "position", e.Position.String(), "type", e.Type)
	return nil
}

// retryable reports an error that says nothing about the event being applied: cancellation, the
// connection, a lock or serialization conflict, the server short of resources or shutting down.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "40", "53", "57", "58":
			return true
		}
		return pgErr.Code == "55P03" // lock_not_available
	}
	var netErr net.Error
	return errors.As(err, &netErr) || pgconn.Timeout(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// isIntegrityViolation reports an integrity constraint violation (class 23), which at commit
// comes from a deferred check of the events applied.
func isIntegrityViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "23")
}

// EventError is the failure of one event's Apply, naming the projection and the event. The
// runner, Redrive and the replay's catch-up (Compare, Swap) return it; Replay's fold too.
type EventError struct {
	Projection string
	EventID    uuid.UUID
	StreamID   string
	Version    int64
	Position   eventstore.Position
	Type       string
	Err        error
}

func newEventError(projection string, e eventstore.RecordedEvent, err error) *EventError {
	return &EventError{Projection: projection, EventID: e.ID, StreamID: e.StreamID, Version: e.Version,
		Position: e.Position, Type: e.Type, Err: err}
}

func (e *EventError) Error() string {
	return fmt.Sprintf("projections: %s: apply %s %s v%d at %s (event %s): %v",
		e.Projection, e.Type, e.StreamID, e.Version, e.Position, e.EventID, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// advance moves the checkpoint from from to to, or fails with ErrCheckpointMoved.
func advance(ctx context.Context, tx pgx.Tx, name string, from, to eventstore.Position) error {
	tag, err := tx.Exec(ctx,
		`UPDATE projection_checkpoints SET position = $3, updated_at = now() WHERE name = $1 AND position = $2`,
		name, from.String(), to.String())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if from == eventstore.Start {
		tag, err = tx.Exec(ctx,
			`INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
			name, to.String())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
	}
	return ErrCheckpointMoved
}

// Checkpoint returns the position a projection has applied up to (Start if it never ran).
func Checkpoint(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (eventstore.Position, error) {
	var s string
	err := q.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, name).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("projections: checkpoint %s: %w", name, err)
	}
	return eventstore.ParsePosition(s)
}

// Reader is what CatchUp needs of the event store.
type Reader interface {
	ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, error)
}

// CatchUp applies to proj every event committed so far, in batches, and returns: for a tool
// that needs a read model current without a paymentd running. It is safe beside running
// runners: when one of them moves the checkpoint first, CatchUp goes on from there. It holds the
// events of streams with parked events, as a runner does, but never parks one: an event that
// fails is returned as an *EventError (a runner parks it after its retries).
func CatchUp(ctx context.Context, pool *pgxpool.Pool, store Reader, proj Projection) error {
	r := &Runner{pool: pool, proj: proj, logger: slog.New(slog.DiscardHandler)}
	for {
		pos, err := Checkpoint(ctx, pool, proj.Name())
		if err != nil {
			return err
		}
		batch, err := store.ReadAll(ctx, pos, 256)
		if err != nil {
			return fmt.Errorf("projections: catch up %s: %w", proj.Name(), err)
		}
		if len(batch) == 0 {
			return nil
		}
		err = r.applyBatch(ctx, pos, batch)
		if err != nil && !errors.Is(err, ErrCheckpointMoved) {
			return err
		}
	}
}
