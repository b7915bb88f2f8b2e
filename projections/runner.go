// Package projections builds the read models from the global event log. A Runner feeds one
// Projection from its checkpoint in batches and writes the read-model rows and the new
// checkpoint in one transaction, so a crash never loses or repeats an event's effect.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
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
type Runner struct {
	pool       *pgxpool.Pool
	store      Subscriber
	proj       Projection
	BatchSize  int           // events per transaction; default 256
	RetryDelay time.Duration // wait after a failed batch; default 1s
	logger     *slog.Logger
}

// NewRunner returns a runner for proj.
func NewRunner(pool *pgxpool.Pool, store Subscriber, proj Projection, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{pool: pool, store: store, proj: proj, BatchSize: 256, RetryDelay: time.Second,
		logger: logger.With("projection", proj.Name())}
}

// Run applies events until ctx is done; it then returns nil. Errors (a failing Apply, a lost
// connection) are logged and retried from the stored checkpoint after RetryDelay.
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
		if err := r.applyBatch(ctx, pos, next, batch); err != nil {
			return err
		}
		pos = next
		return nil
	})
}

func (r *Runner) applyBatch(ctx context.Context, from, to eventstore.Position, batch []eventstore.RecordedEvent) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		for _, e := range batch {
			if err := r.proj.Apply(ctx, tx, e); err != nil {
				return fmt.Errorf("apply %s %s v%d at %s: %w", e.Type, e.StreamID, e.Version, e.Position, err)
			}
		}
		return advance(ctx, tx, r.proj.Name(), from, to)
	})
}

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
// runners: when one of them moves the checkpoint first, CatchUp goes on from there.
func CatchUp(ctx context.Context, pool *pgxpool.Pool, store Reader, proj Projection) error {
	r := &Runner{pool: pool, proj: proj}
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
		err = r.applyBatch(ctx, pos, batch[len(batch)-1].Position, batch)
		if err != nil && !errors.Is(err, ErrCheckpointMoved) {
			return err
		}
	}
}
