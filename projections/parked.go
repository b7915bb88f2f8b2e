package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
)

// Parked events (table projection_parked, migration 0019).
//
// Per projection and stream, the rows are one poison event (the first the projection could not
// apply, after Runner.MaxAttempts failures) and the stream's later events held behind it, in
// stream order. Every row is at or before the projection's checkpoint: the runner writes them
// in the transaction that moves the checkpoint past them.
//
// Who writes what, and the lock that keeps them apart. A runner's batch reads which of its
// streams are held, then records held events: between the two, a redrive or a swap must not
// delete that stream's rows, or the runner would hold an event behind nothing (or apply one
// over a hole). So each writer takes a transaction advisory lock on the projection's rows: the
// runners shared (they do not block one another), Redrive and Swap exclusive, before anything
// else (Swap before its table locks, so that a runner waiting for the tables never holds up
// the swap).
//
// Redrive, after the cause is fixed (a projection's bug, a decoder that learnt a schema
// version): one transaction per stream applies its rows in stream order with the projection's
// Apply and deletes them. If any of them still fails, the transaction rolls back: nothing
// changes, and the *EventError is returned.
//
// A replay swapped in (Swap) deletes its projection's rows in the swap's transaction: the
// replay and its catch-up apply every event up to the new checkpoint and fail on any that
// fails (naming it, never skipping it), so the new tables hold the parked events' effects and a
// redrive would apply them twice.

// ParkedState says whether a row is the poison event or an event held behind it.
type ParkedState string

const (
	StatePoison ParkedState = "poison" // failed Runner.MaxAttempts times; the first of its stream
	StateHeld   ParkedState = "held"   // a later event of the poison's stream, never applied
)

// Parked is a row of projection_parked.
type Parked struct {
	ID            int64       `json:"id"`
	Projection    string      `json:"projection"`
	State         ParkedState `json:"state"`
	EventID       uuid.UUID   `json:"eventId"`
	StreamID      string      `json:"streamId"`
	StreamVersion int64       `json:"streamVersion"`
	Position      string      `json:"position"` // eventstore.Position.String
	EventType     string      `json:"eventType"`
	Error         string      `json:"error,omitempty"` // the last failure of a poison event
	Attempts      int         `json:"attempts"`
	ParkedAt      time.Time   `json:"parkedAt"`
}

// ParkedFilter selects parked rows; the zero value selects all.
type ParkedFilter struct {
	Projection string
	StreamID   string
	State      ParkedState
	Limit      int // at most this many rows (0: no limit)
}

// ErrParkedNotFound is returned for a parked row id (or stream) that has no row: never parked,
// or redriven since.
var ErrParkedNotFound = errors.New("projections: no such parked event")

// maxParkedError bounds the error text kept for a poison event (the column's check).
const maxParkedError = 2000

const parkedColumns = `id, projection, state, event_id, stream_id, stream_version, position, event_type,
	COALESCE(error, ''), attempts, parked_at`

func scanParked(row pgx.CollectableRow) (Parked, error) {
	var p Parked
	err := row.Scan(&p.ID, &p.Projection, &p.State, &p.EventID, &p.StreamID, &p.StreamVersion, &p.Position,
		&p.EventType, &p.Error, &p.Attempts, &p.ParkedAt)
	return p, err
}

// ListParked returns the rows f selects, by projection, then stream, then stream version (each
// stream's poison first, its held events after it in the order they will be applied).
func ListParked(ctx context.Context, q querier, f ParkedFilter) ([]Parked, error) {
	limit := any(nil)
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := q.Query(ctx, `SELECT `+parkedColumns+` FROM projection_parked
		WHERE ($1 = '' OR projection = $1) AND ($2 = '' OR stream_id = $2) AND ($3 = '' OR state = $3)
		ORDER BY projection, stream_id, stream_version
		LIMIT $4`, f.Projection, f.StreamID, string(f.State), limit)
	if err != nil {
		return nil, fmt.Errorf("projections: list parked events: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanParked)
	if err != nil {
		return nil, fmt.Errorf("projections: list parked events: %w", err)
	}
	return out, nil
}

// ParkedEvent returns the row with that id, or ErrParkedNotFound.
func ParkedEvent(ctx context.Context, q querier, id int64) (Parked, error) {
	rows, err := q.Query(ctx, `SELECT `+parkedColumns+` FROM projection_parked WHERE id = $1`, id)
	if err != nil {
		return Parked{}, fmt.Errorf("projections: parked event %d: %w", id, err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanParked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Parked{}, fmt.Errorf("%w: id %d", ErrParkedNotFound, id)
	}
	if err != nil {
		return Parked{}, fmt.Errorf("projections: parked event %d: %w", id, err)
	}
	return p, nil
}

// RedriveResult is one stream's redrive.
type RedriveResult struct {
	Projection string `json:"projection"`
	StreamID   string `json:"streamId"`
	Applied    int    `json:"applied"` // events applied and their rows deleted: the poison and those held
}

// Redrive applies the parked stream that row id belongs to (a poison or a held row: a held
// event is never applied before its poison): see RedriveStream. projs are the projections
// that may own the row.
func Redrive(ctx context.Context, pool *pgxpool.Pool, projs []Projection, id int64) (RedriveResult, error) {
	p, err := ParkedEvent(ctx, pool, id)
	if err != nil {
		return RedriveResult{Projection: p.Projection, StreamID: p.StreamID}, err
	}
	return RedriveStream(ctx, pool, projs, p.Projection, p.StreamID)
}

// RedriveStream applies a projection's parked events of one stream in stream order, the poison
// first, and deletes their rows, in one transaction; the runners then apply the stream's later
// events as any other. When an event still fails, nothing changes and its *EventError comes
// back. Beside running runners it is safe: it waits for their batches in flight, and they wait
// for it (see the lock above).
func RedriveStream(ctx context.Context, pool *pgxpool.Pool, projs []Projection, projection, stream string) (RedriveResult, error) {
	res := RedriveResult{Projection: projection, StreamID: stream}
	var proj Projection
	for _, p := range projs {
		if p.Name() == projection {
			proj = p
		}
	}
	if proj == nil {
		return res, fmt.Errorf("%w %q: cannot redrive its parked events here", ErrUnknownProjection, projection)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		res.Applied = 0
		if err := lockParked(ctx, tx, projection); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT e.transaction_id, e.position, e.stream_id, e.version, e.event_id, e.event_type,
				e.schema_version, e.data, e.recorded_at, p.id
			FROM projection_parked p JOIN events e ON e.event_id = p.event_id
			WHERE p.projection = $1 AND p.stream_id = $2
			ORDER BY p.stream_version`, projection, stream)
		if err != nil {
			return err
		}
		var events []eventstore.RecordedEvent
		var ids []int64
		var e eventstore.RecordedEvent
		var id int64
		if _, err := pgx.ForEachRow(rows, []any{&e.Position.Transaction, &e.Position.Sequence, &e.StreamID, &e.Version, &e.ID,
			&e.Type, &e.SchemaVersion, &e.Data, &e.RecordedAt, &id}, func() error {
			e.RecordedAt = e.RecordedAt.UTC()
			events, ids = append(events, e), append(ids, id)
			e.Data = nil
			return nil
		}); err != nil {
			return err
		}
		if len(events) == 0 {
			return fmt.Errorf("%w: %s of %s", ErrParkedNotFound, stream, projection)
		}
		for _, e := range events {
			if err := proj.Apply(ctx, tx, e); err != nil {
				return newEventError(projection, e, err)
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM projection_parked WHERE id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(ids)) {
			return fmt.Errorf("projections: redrive %s of %s: %d of %d rows deleted", stream, projection, tag.RowsAffected(), len(ids))
		}
		res.Applied = len(events)
		return nil
	})
	if err != nil {
		var ee *EventError
		if errors.As(err, &ee) || errors.Is(err, ErrParkedNotFound) {
			return res, err
		}
		return res, fmt.Errorf("projections: redrive %s of %s: %w", stream, projection, err)
	}
	return res, nil
}

// RedriveAll redrives every stream with rows f selects (State and Limit aside), each in its own
// transaction, and goes on after a stream that still fails: it returns what it redrove and the
// failures joined.
func RedriveAll(ctx context.Context, pool *pgxpool.Pool, projs []Projection, f ParkedFilter) ([]RedriveResult, error) {
	rows, err := pool.Query(ctx, `SELECT DISTINCT projection, stream_id FROM projection_parked
		WHERE ($1 = '' OR projection = $1) AND ($2 = '' OR stream_id = $2)
		ORDER BY projection, stream_id`, f.Projection, f.StreamID)
	if err != nil {
		return nil, fmt.Errorf("projections: list parked streams: %w", err)
	}
	type key struct{ projection, stream string }
	streams, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
		var k key
		return k, r.Scan(&k.projection, &k.stream)
	})
	if err != nil {
		return nil, fmt.Errorf("projections: list parked streams: %w", err)
	}
	var out []RedriveResult
	var errs []error
	for _, k := range streams {
		res, err := RedriveStream(ctx, pool, projs, k.projection, k.stream)
		switch {
		case errors.Is(err, ErrParkedNotFound): // redriven meanwhile
		case err != nil:
			errs = append(errs, err)
		default:
			out = append(out, res)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out, errors.Join(errs...)
}

// parkedLockKey is the transaction advisory lock on a projection's parked rows ($1 the
// projection): shared for a runner's batch (heldStreams), exclusive for Redrive and Swap
// (lockParked). It is the two-int4 form, whose keys never meet the bigint ones (tosssim's, the
// settlements scheduler's).
const parkedLockKey = `hashtext('projection_parked'), hashtext($1)`

// lockParked takes the exclusive lock on a projection's parked rows.
func lockParked(ctx context.Context, tx pgx.Tx, projection string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+parkedLockKey+`)`, projection)
	return err
}

// heldStreams takes the runner's shared lock on the projection's parked rows and returns which
// of the batch's streams have rows: their events are held, not applied. Both statements go in
// one round trip (this runs for every batch of every projection); each still reads with its
// own snapshot, so the read sees what a redrive that held the lock committed.
func heldStreams(ctx context.Context, tx pgx.Tx, projection string, batch []eventstore.RecordedEvent) (map[string]bool, error) {
	streams := make([]string, 0, len(batch))
	for _, e := range batch {
		streams = append(streams, e.StreamID)
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared(`+parkedLockKey+`)`, projection)
	b.Queue(`SELECT DISTINCT stream_id FROM projection_parked WHERE projection = $1 AND stream_id = ANY($2)`, projection, streams)
	br := tx.SendBatch(ctx, b)
	held := map[string]bool{}
	_, err := br.Exec()
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			var s string
			_, err = pgx.ForEachRow(rows, []any{&s}, func() error {
				held[s] = true
				return nil
			})
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return held, nil
}

// insertParked records e as parked (cause is the last failure of a poison event) or held. A row
// already there (another runner recorded it and moved the checkpoint) is left as it is: this
// runner's checkpoint update then fails.
func insertParked(ctx context.Context, tx pgx.Tx, projection string, state ParkedState, e eventstore.RecordedEvent, cause error, attempts int) error {
	var text *string
	if state == StatePoison {
		s := "unknown error"
		if cause != nil {
			s = cause.Error()
		}
		s = truncate(strings.ToValidUTF8(s, "\uFFFD"), maxParkedError)
		text = &s
	}
	_, err := tx.Exec(ctx, `INSERT INTO projection_parked (projection, state, event_id, stream_id, stream_version, position, event_type, error, attempts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		projection, string(state), e.ID, e.StreamID, e.Version, e.Position.String(), e.Type, text, attempts)
	if err != nil {
		return fmt.Errorf("projections: record %s event %s: %w", state, e.ID, err)
	}
	return nil
}

// truncate cuts s to at most n characters, on a character boundary, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
