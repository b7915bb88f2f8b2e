package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
)

// Log is what the relay needs of the event store: the global log, and a checker of each
// event's hash chain link, so that an event whose stored history was changed is never
// published (eventstore.LinkChecker).
type Log interface {
	Subscribe(ctx context.Context, from eventstore.Position, batchSize int, handle func(context.Context, []eventstore.RecordedEvent) error) error
	NewLinkChecker(ctx context.Context, streams int) (*eventstore.LinkChecker, error)
}

// linkCacheStreams is how many streams' last events the relay's link checker remembers; a
// stream it forgot costs one indexed read per batch.
const linkCacheStreams = 65536

// RelayConfig tunes a Relay; zero values take the defaults.
type RelayConfig struct {
	// MaxInFlight bounds the messages published and not yet acknowledged (RELAY_MAX_IN_FLIGHT;
	// default 256). The relay publishes up to this many asynchronously, then waits for every
	// acknowledgement before it moves the checkpoint past them.
	MaxInFlight int
	// AckTimeout is how long one acknowledgement may take before the batch is published again
	// (default 10s).
	AckTimeout time.Duration
	// LockRetry is how often an instance that is not the relay tries to become it (default 1s):
	// the most a takeover waits after the relay's database session ends.
	LockRetry time.Duration
}

// CheckpointName is the relay's row in relay_checkpoints.
const CheckpointName = "nats"

// Relay publishes the event store to the PAYMENTS stream. See the package doc for its
// guarantees. Run is safe on every instance at once: one of them relays at a time.
type Relay struct {
	pool   *pgxpool.Pool
	store  Log
	js     jetstream.JetStream
	cfg    RelayConfig
	logger *slog.Logger

	// afterAck, when set (tests), runs after a batch is acknowledged and before its checkpoint.
	afterAck func(batch []eventstore.RecordedEvent)
}

// NewRelay returns a relay publishing over conn.
func NewRelay(pool *pgxpool.Pool, store Log, conn *nats.Conn, cfg RelayConfig, logger *slog.Logger) (*Relay, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.LockRetry <= 0 {
		cfg.LockRetry = time.Second
	}
	js, err := jetstream.New(conn,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("natsbus: relay: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{pool: pool, store: store, js: js, cfg: cfg, logger: logger.With("component", "relay")}, nil
}

// Run relays until ctx is done, then returns nil. While another instance holds the relay lock
// it waits; errors (NATS or the database unavailable) are logged and retried with back-off
// from the checkpoint.
func (r *Relay) Run(ctx context.Context) error {
	backoff := Backoff(r.cfg.LockRetry, 30*time.Second)
	for ctx.Err() == nil {
		ran, err := db.TryLocked(ctx, r.pool, db.LockRelay, func(conn *pgxpool.Conn) error {
			r.logger.InfoContext(ctx, "relay active")
			return r.relay(ctx, conn)
		})
		wait := r.cfg.LockRetry
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			wait, _ = backoff.Next()
			r.logger.ErrorContext(ctx, "relay failed; retrying", "error", err, "retryIn", wait.String())
		case ran:
			backoff = Backoff(r.cfg.LockRetry, 30*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// Backoff is the relay's and the bus consumers' retry schedule: exponential from base, capped,
// with jitter so that instances do not retry in step.
func Backoff(base, limit time.Duration) retry.Backoff {
	return retry.WithJitterPercent(10, retry.WithCappedDuration(limit, retry.NewExponential(base)))
}

// relay publishes from the checkpoint while this session holds the lock. lockConn is the
// session holding it: if it fails, the lock may be gone, so the relay stops.
func (r *Relay) relay(ctx context.Context, lockConn *pgxpool.Conn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	pinging := make(chan struct{})
	// Stop the ping and wait for it before returning: TryLocked unlocks on lockConn next, and
	// a connection is not for two goroutines at once.
	defer func() { cancel(nil); <-pinging }()
	go func() {
		defer close(pinging)
		t := time.NewTicker(r.cfg.LockRetry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := lockConn.Ping(ctx); err != nil && ctx.Err() == nil {
					cancel(fmt.Errorf("the session holding the relay lock failed: %w", err))
					return
				}
			}
		}
	}()

	pos, err := readCheckpoint(ctx, r.pool)
	if err != nil {
		return err
	}
	links, err := r.store.NewLinkChecker(ctx, linkCacheStreams)
	if err != nil {
		return err
	}
	err = r.store.Subscribe(ctx, pos, r.cfg.MaxInFlight, func(ctx context.Context, batch []eventstore.RecordedEvent) error {
		broken, err := links.Check(ctx, batch)
		if err != nil {
			return err
		}
		for stream, b := range broken {
			// Never published from the break on: its history was changed. It is listed in
			// broken_streams for review (the audit reports it too); the relay goes on with
			// every other stream.
			r.logger.ErrorContext(ctx, "events of a broken stream not published", "stream", stream, "fromVersion", b.From, "error", b.Err)
		}
		if err := r.publish(ctx, batch, broken); err != nil {
			return err
		}
		if r.afterAck != nil {
			r.afterAck(batch)
		}
		next := batch[len(batch)-1].Position
		if err := advance(ctx, r.pool, pos, next); err != nil {
			return err
		}
		pos = next
		return nil
	})
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// publish sends the batch's integration events, but those of broken streams, asynchronously and waits for every
// acknowledgement. Any failure fails the batch: it is published again from the checkpoint, and
// the duplicate window drops what had been stored.
func (r *Relay) publish(ctx context.Context, batch []eventstore.RecordedEvent, broken map[string]eventstore.Broken) error {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for _, rec := range batch {
		if broken[rec.StreamID].Refuses(rec) {
			continue
		}
		e, err := FromRecorded(rec)
		if errors.Is(err, ErrNotIntegration) {
			continue
		}
		if err != nil {
			// Not publishable under any subject; holding the relay for it would stop every
			// merchant's integration. The event store still has it; audit reports such rows.
			r.logger.ErrorContext(ctx, "event skipped: it cannot be addressed", "error", err)
			continue
		}
		msg, err := e.Message()
		if err != nil {
			return err
		}
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("natsbus: publish %s: %w", e.ID, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("natsbus: publish %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// readCheckpoint returns the position after the last acknowledged event.
func readCheckpoint(ctx context.Context, pool *pgxpool.Pool) (eventstore.Position, error) {
	var s string
	err := pool.QueryRow(ctx, `SELECT position FROM relay_checkpoints WHERE name = $1`, CheckpointName).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("natsbus: relay checkpoint: %w", err)
	}
	return eventstore.ParsePosition(s)
}

// advance moves the checkpoint from from to to. The condition on from makes a relay that lost
// its lock unnoticed unable to move the checkpoint back or past another's.
func advance(ctx context.Context, pool *pgxpool.Pool, from, to eventstore.Position) error {
	tag, err := pool.Exec(ctx, `
		INSERT INTO relay_checkpoints AS c (name, position) VALUES ($1, $3)
		ON CONFLICT (name) DO UPDATE SET position = $3, updated_at = now() WHERE c.position = $2`,
		CheckpointName, from.String(), to.String())
	if err != nil {
		return fmt.Errorf("natsbus: relay checkpoint: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("natsbus: relay checkpoint moved by another relay")
	}
	return nil
}
