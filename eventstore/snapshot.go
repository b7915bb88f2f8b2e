package eventstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Reads of the whole store inside one snapshot, for tools that check or seal every stream (the
// audit): the caller opens a REPEATABLE READ, READ ONLY transaction and pages through the
// streams in big ordered batches instead of one query per stream. A read-only transaction takes
// no transaction ID, so it never holds back subscribers (see Postgres); it does hold back
// vacuum while it lasts.

// StreamHead is a stream's recorded head (event_streams).
type StreamHead struct {
	Stream string
	Head
}

// ReadHeads returns, inside tx, up to limit (> 0) stream heads whose IDs sort after `after`
// (from the first when nil), in the database's order of stream IDs.
func ReadHeads(ctx context.Context, tx pgx.Tx, after *string, limit int) ([]StreamHead, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore: read heads: %w: limit %d", ErrInvalidArgument, limit)
	}
	rows, err := tx.Query(ctx, `SELECT stream_id, version, last_hash FROM event_streams
		WHERE $1::text IS NULL OR stream_id > $1 ORDER BY stream_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read heads: %w", err)
	}
	heads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StreamHead, error) {
		var h StreamHead
		return h, r.Scan(&h.Stream, &h.Version, &h.Hash)
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: read heads: %w", err)
	}
	return heads, nil
}

// ReadRange returns, inside tx, the events of every stream whose ID sorts after `after` (from
// the first when nil) and not after `through` (to the last when nil), ordered by stream ID and
// version. The database compares the bounds, in the same order as ReadHeads, so reading the
// range between two pages of heads returns exactly the events of the streams between them,
// including streams whose head row is missing.
func ReadRange(ctx context.Context, tx pgx.Tx, after, through *string) ([]RecordedEvent, error) {
	rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE ($1::text IS NULL OR stream_id > $1) AND ($2::text IS NULL OR stream_id <= $2)
		ORDER BY stream_id, version`, after, through)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read range: %w", err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read range: %w", err)
	}
	return events, nil
}

// Coverage is what one snapshot of the log holds: every event at or before Position, except
// the events of the transactions in Running (ascending), which were still running when the
// snapshot was taken. Their events, once committed, sort before Position in the global log, yet
// the snapshot did not see them; every other event up to Position was committed and is final.
// Describing a snapshot this way makes it exact whatever else runs on the server, where the
// xmin horizon (ReadAll, Head) stops at the oldest transaction anywhere.
type Coverage struct {
	Position Position
	Running  []uint64
}

// Covers reports whether the snapshot held the event at p.
func (c Coverage) Covers(p Position) bool {
	if c.Position.Less(p) {
		return false
	}
	_, running := slices.BinarySearch(c.Running, p.Transaction)
	return !running
}

// SnapshotCoverage returns, inside tx (REPEATABLE READ, so that one snapshot serves every
// read), the coverage of tx's snapshot: its last visible event's position (Start when there
// is none) and the transactions before it that were still running.
func SnapshotCoverage(ctx context.Context, tx pgx.Tx) (Coverage, error) {
	var (
		c       Coverage
		tx8     *uint64
		seq     *int64
		running []string
	)
	err := tx.QueryRow(ctx, `SELECT l.transaction_id, l.position,
			ARRAY(SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS x ORDER BY x)
		FROM (SELECT 1) AS one
		LEFT JOIN LATERAL (SELECT transaction_id, position FROM events
			ORDER BY transaction_id DESC, position DESC LIMIT 1) AS l ON true`).Scan(&tx8, &seq, &running)
	if err != nil {
		return Coverage{}, fmt.Errorf("eventstore: snapshot coverage: %w", err)
	}
	if tx8 != nil && seq != nil {
		c.Position = Position{Transaction: *tx8, Sequence: *seq}
	}
	for _, x := range running {
		id, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return Coverage{}, fmt.Errorf("eventstore: snapshot coverage: transaction %q: %w", x, err)
		}
		if id < c.Position.Transaction {
			c.Running = append(c.Running, id)
		}
	}
	return c, nil
}

// HeadAt is a stream's last event at or before a position of the global log.
type HeadAt struct {
	Stream   string
	Version  int64
	Hash     []byte
	Position Position
}

// HeadsAsOf returns, inside tx, every stream's last event at or before at that tx's snapshot
// sees, for the streams that have one. With at from SnapshotCoverage of the same tx, these are
// the heads of what the coverage describes.
func HeadsAsOf(ctx context.Context, tx pgx.Tx, at Position) ([]HeadAt, error) {
	// Descending on both columns, so the (stream_id, version) index serves DISTINCT ON.
	rows, err := tx.Query(ctx, `SELECT DISTINCT ON (stream_id) stream_id, version, hash, transaction_id, position
		FROM events WHERE (transaction_id, position) <= ($1::xid8, $2::bigint)
		ORDER BY stream_id DESC, version DESC`, at.Transaction, at.Sequence)
	if err != nil {
		return nil, fmt.Errorf("eventstore: heads as of %s: %w", at, err)
	}
	heads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HeadAt, error) {
		var h HeadAt
		return h, r.Scan(&h.Stream, &h.Version, &h.Hash, &h.Position.Transaction, &h.Position.Sequence)
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: heads as of %s: %w", at, err)
	}
	return heads, nil
}
