package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-retry"
)

// Postgres is the PostgreSQL event store (schema: migrations/sql/0001_eventstore.sql).
//
// Appends lock only their own stream (the event_streams row), so appends to different streams
// run in parallel. The global log is ordered by (transaction_id, position) and read only below
// the oldest running transaction (pg_snapshot_xmin): a row of a transaction that commits late
// sorts by its transaction ID, which is older than anything readers have not passed yet, so no
// reader ever skips it. The price is that ONE long open write transaction anywhere on the
// server stops every reader at its transaction ID until it ends; ConfigurePool bounds the
// idle case and Head gives the lag metric.
//
// With a chain key (WithChainKey) the first append activates the key: a record in
// event_chain_keys, MACed with the key, names the transaction after which every event must be
// keyed (see Verifier). Once a key is activated, a store without it, or with another key,
// refuses to append.
//
// A Postgres is safe for concurrent use.
type Postgres struct {
	pool     *pgxpool.Pool
	notifier *notifier
	key      ChainKey
	// activation caches the chain key's activation record once it has been read and verified:
	// the record is append-only, so it never changes after that.
	activationMu sync.Mutex
	activation   *Position
	// safetyInterval bounds the wait for a notification that may have been lost (a reconnect of
	// the listener); tests make it long to prove wake-ups come from notifications.
	safetyInterval time.Duration
}

var _ Store = (*Postgres)(nil)

// NewPostgres returns a store on pool. Configure the pool with ConfigurePool first. Subscribers
// share one extra connection (not taken from the pool) for LISTEN, open while any subscribes.
func NewPostgres(pool *pgxpool.Pool, opts ...Option) *Postgres {
	return &Postgres{
		key:            applyOptions(opts).key,
		pool:           pool,
		notifier:       newNotifier(pool.Config().ConnConfig),
		safetyInterval: 5 * time.Second,
	}
}

// IdleInTransactionTimeout is the idle_in_transaction_session_timeout ConfigurePool sets.
const IdleInTransactionTimeout = "30s"

// ConfigurePool prepares a pool configuration for the event store: it sets the session parameter
// idle_in_transaction_session_timeout to IdleInTransactionTimeout unless the configuration
// already sets it.
//
// Why: readers of the global log stop at the oldest transaction still running on the server
// (the xmin horizon), because its rows, once committed, sort before everything after it. A
// transaction left open and idle (a leaked pgx.Tx, a stuck handler, a psql session) therefore
// stalls every subscriber and projection for as long as it stays open. The timeout makes the
// server end such a session, bounding the stall. Use it for every pool on the event store's
// database, not just the store's own.
func ConfigurePool(cfg *pgxpool.Config) {
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = IdleInTransactionTimeout
	}
}

// errStaleTransaction means this append's transaction ID is older than the one that wrote the
// stream's last events: committing would place its events before them in the global log. It
// happens only when two transactions race to create the same stream (the loser's speculative
// insert took a transaction ID before it waited for the winner); a new transaction gets a newer
// ID, so the append is simply run again.
var errStaleTransaction = errors.New("eventstore: transaction id older than the stream head")

// errIDsStored means the insert hit the unique index on event_id: some of the IDs are stored.
// Append turns it into a safe retry's result or an ErrDuplicateEventID with details.
var errIDsStored = fmt.Errorf("%w (refused by the unique index)", ErrDuplicateEventID)

// Append implements Store. It runs one READ COMMITTED transaction that locks the stream's
// event_streams row (creating it if needed), checks the expected version, inserts the events
// with their hash chain, moves the stream head and notifies subscribers (on commit). A failed
// append rolls all of it back, including a new stream's row.
//
// Stored event IDs are detected by the unique index on event_id, not by a lookup before every
// insert: only a refused append (wrong version, or an insert the index rejects) looks the IDs up
// to tell a safe retry from a reused ID.
func (p *Postgres) Append(ctx context.Context, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	req, err := newAppendRequest(stream, expected, events)
	if err != nil {
		return AppendResult{}, err
	}
	if !p.key.IsZero() {
		// Committed before the append's transaction starts, so the append's transaction ID,
		// and every later keyed append's, is newer than the activation's.
		if _, _, err := p.activate(ctx, true); err != nil {
			return AppendResult{}, appendError(stream, err)
		}
	}
	for attempt := 1; ; attempt++ {
		res, err := p.appendOnce(ctx, req)
		switch {
		case errors.Is(err, errStaleTransaction) && attempt < 10:
			continue
		case errors.Is(err, errIDsStored):
			// The rows that stopped the insert are committed and never change: read them
			// (after the rollback, without the lock) and decide.
			res, err = p.retryOrDuplicate(ctx, p.pool, req, err)
		}
		return res, appendError(stream, err)
	}
}

// querier is what retryOrDuplicate needs: a pool, or a connection inside a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// retryOrDuplicate looks up where req's event IDs are stored. If none is, it returns refused
// (the append's own failure); otherwise it is a safe retry or ErrDuplicateEventID (see
// appendRequest.retry).
func (p *Postgres) retryOrDuplicate(ctx context.Context, q querier, req appendRequest, refused error) (AppendResult, error) {
	rows, err := q.Query(ctx, `SELECT event_id, stream_id, version FROM events WHERE event_id = ANY($1)`, req.ids)
	if err != nil {
		return AppendResult{}, err
	}
	found := map[uuid.UUID]storedAt{}
	var (
		id uuid.UUID
		at storedAt
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &at.stream, &at.version}, func() error {
		found[id] = at
		return nil
	}); err != nil {
		return AppendResult{}, err
	}
	if len(found) == 0 {
		return AppendResult{}, refused
	}
	return req.retry(found)
}

func (p *Postgres) appendOnce(ctx context.Context, req appendRequest) (AppendResult, error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return AppendResult{}, err
	}
	// The transaction is opened and committed inside the two pipelined batches below (two round
	// trips per append instead of four). Whatever did not commit is rolled back here, including
	// a stream row this append created; if even that fails, Release discards the connection.
	defer func() {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			conn.Exec(ctx, "ROLLBACK") //nolint:errcheck
		}
		conn.Release()
	}()

	// Round trip 1: create the stream row if needed and lock it: the per-stream lock, held to
	// commit. No global lock: appends to other streams go on in parallel.
	var b pgx.Batch
	b.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	b.Queue(`INSERT INTO event_streams (stream_id, version, last_hash) VALUES ($1, 0, $2)
		ON CONFLICT (stream_id) DO NOTHING`, req.stream, zeroHash)
	// With the head: how its last event was hashed, and whether a chain key was ever activated
	// (the downgrade rule of checkChainKey).
	b.Queue(`SELECT s.version, s.last_hash, s.last_transaction_id,
			COALESCE((SELECT e.hash_alg FROM events e WHERE e.stream_id = s.stream_id AND e.version = s.version), 'sha256'),
			EXISTS (SELECT 1 FROM event_chain_keys)
		FROM event_streams s WHERE s.stream_id = $1 FOR UPDATE OF s`, req.stream)
	// A separate statement, so that it runs after the lock is granted.
	b.Queue(`SELECT pg_current_xact_id()`)
	var (
		version      int64
		lastHash     []byte
		lastXid      *uint64
		headAlg      string
		historyKeyed bool
		xid          uint64
	)
	br := conn.SendBatch(ctx, &b)
	_, err = br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		err = br.QueryRow().Scan(&version, &lastHash, &lastXid, &headAlg, &historyKeyed)
	}
	if err == nil {
		err = br.QueryRow().Scan(&xid)
	}
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return AppendResult{}, err
	}

	if err := req.checkExpected(version); err != nil {
		// Perhaps a retry of an append that succeeded; decided under the lock.
		return p.retryOrDuplicate(ctx, conn, req, err)
	}
	alg, err := parseHashAlg(headAlg)
	if err != nil {
		return AppendResult{}, fmt.Errorf("stream head: %w", err)
	}
	if err := req.checkChainKey(p.key, alg, historyKeyed); err != nil {
		return AppendResult{}, err
	}
	// The global log orders by transaction ID, so this stream's new events must carry a newer
	// ID than its last ones, or readers would see version n+1 before version n.
	if lastXid != nil && xid <= *lastXid {
		return AppendResult{}, errStaleTransaction
	}

	recs := req.records(version, lastHash, time.Now(), p.key)
	n := len(recs)
	var (
		versions = make([]int64, n)
		types    = make([]string, n)
		schemas  = make([]int32, n)
		data     = make([]string, n)
		metadata = make([]string, n)
		prev     = make([][]byte, n)
		hashes   = make([][]byte, n)
	)
	for i, r := range recs {
		versions[i], types[i], schemas[i] = r.Version, r.Type, int32(r.SchemaVersion)
		data[i], metadata[i] = string(r.Data), string(r.MetadataJSON)
		prev[i], hashes[i] = r.PrevHash, r.Hash
	}
	last := recs[n-1]

	// Round trip 2: one INSERT for all rows (ORDER BY ord assigns positions in version order),
	// the new head, the commit, then the notification.
	//
	// The notification is sent in its own small transaction right after the commit (the server
	// skips it if anything before it failed), not inside the append's transaction: PostgreSQL
	// serializes every transaction that notifies with a cluster-wide lock held until its commit
	// is flushed (async.c, PreCommit_Notify), which nearly halved parallel append throughput on
	// the 2-core development machine (BenchmarkAppendParallel: 1,550-1,850 events/s with NOTIFY
	// inside the transaction, 2,550-3,000 with it after). Alone, that
	// transaction can commit with synchronous_commit off: no flush, so the lock is held only
	// briefly. A notification lost in a crash between the two costs a subscriber at most its
	// safety interval, never an event.
	b = pgx.Batch{}
	b.Queue(`INSERT INTO events (stream_id, version, event_id, event_type, schema_version, data, metadata,
			recorded_at, prev_hash, hash, hash_alg)
		SELECT $1, u.version, u.event_id, u.event_type, u.schema_version, u.data::json, u.metadata::json,
			$2, u.prev_hash, u.hash, $11
		FROM unnest($3::bigint[], $4::uuid[], $5::text[], $6::int[], $7::text[], $8::text[], $9::bytea[], $10::bytea[])
			WITH ORDINALITY AS u(version, event_id, event_type, schema_version, data, metadata, prev_hash, hash, ord)
		ORDER BY u.ord`,
		req.stream, last.RecordedAt, versions, req.ids, types, schemas, data, metadata, prev, hashes, last.HashAlg.String())
	b.Queue(`UPDATE event_streams SET version = $2, last_hash = $3, last_transaction_id = $4, updated_at = now()
		WHERE stream_id = $1`, req.stream, last.Version, last.Hash, xid)
	b.Queue(`COMMIT`)
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true), pg_notify('` + notifyChannel + `', '')`)
	br = conn.SendBatch(ctx, &b)
	defer br.Close() //nolint:errcheck // a failed notification is not a failed append
	// The results of INSERT, UPDATE and COMMIT; the commit's success is the append's.
	for range 3 {
		if _, err := br.Exec(); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id_key" {
				return AppendResult{}, fmt.Errorf("%w: %s", errIDsStored, pgErr.Detail)
			}
			return AppendResult{}, err
		}
	}
	return AppendResult{NextExpectedVersion: last.Version}, nil
}

const eventColumns = `transaction_id, position, stream_id, version, event_id, event_type, schema_version,
	data, metadata, recorded_at, prev_hash, hash, hash_alg`

func scanEvents(rows pgx.Rows) ([]RecordedEvent, error) {
	var out []RecordedEvent
	var alg string
	for rows.Next() {
		var e RecordedEvent
		if err := rows.Scan(&e.Position.Transaction, &e.Position.Sequence, &e.StreamID, &e.Version, &e.ID,
			&e.Type, &e.SchemaVersion, &e.Data, &e.MetadataJSON, &e.RecordedAt, &e.PrevHash, &e.Hash, &alg); err != nil {
			rows.Close()
			return nil, err
		}
		var err error
		if e.HashAlg, err = parseHashAlg(alg); err != nil {
			rows.Close()
			return nil, fmt.Errorf("event %s: %w", e.ID, err)
		}
		if err := json.Unmarshal(e.MetadataJSON, &e.Metadata); err != nil {
			rows.Close()
			return nil, fmt.Errorf("event %s: metadata: %w", e.ID, err)
		}
		e.RecordedAt = e.RecordedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReadStream implements Store.
func (p *Postgres) ReadStream(ctx context.Context, stream string, from int64) ([]RecordedEvent, error) {
	for {
		rows, err := p.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
			WHERE stream_id = $1 AND version >= $2 ORDER BY version`, stream, from)
		if err != nil {
			return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, err)
		}
		events, err := scanEvents(rows)
		if err != nil {
			return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, err)
		}
		if len(events) > 0 {
			return events, nil
		}
		// No events from `from` on: tell "no such stream" from "past its end". The head is read
		// in a second statement (a newer snapshot); if events arrived in between, read again.
		var version int64
		err = p.pool.QueryRow(ctx, `SELECT version FROM event_streams WHERE stream_id = $1`, stream).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || err == nil && version == 0:
			return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, ErrStreamNotFound)
		case err != nil:
			return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, err)
		case version < from:
			return []RecordedEvent{}, nil
		}
	}
}

// ReadVerified reads a whole stream together with its recorded head, in one snapshot, and
// verifies the one against the other with the store's Verifier before returning it: callers
// that decide on a stream's history (commands) act only on history that nobody edited, cut
// short or rewrote without the keys. A broken stream is an error wrapping ErrChainBroken
// (ErrChainKeyMissing too for keyed events read by a store without the key), and is recorded in
// broken_streams; a stream with no events and no head is ErrStreamNotFound.
func (p *Postgres) ReadVerified(ctx context.Context, stream string) ([]RecordedEvent, error) {
	v, err := p.Verifier(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, err)
	}
	var (
		events []RecordedEvent
		head   Head
		found  bool
	)
	err = pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = $1 ORDER BY version`, stream)
		if err != nil {
			return err
		}
		if events, err = scanEvents(rows); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT version, last_hash FROM event_streams WHERE stream_id = $1`, stream).Scan(&head.Version, &head.Hash)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		found = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, err)
	}
	if len(events) == 0 && (!found || head.Version == 0) {
		return nil, fmt.Errorf("eventstore: read stream %q: %w", stream, ErrStreamNotFound)
	}
	if !found {
		err := fmt.Errorf("eventstore: read stream %q: %w: its events have no head", stream, ErrChainBroken)
		p.flagBroken(ctx, stream, err)
		return nil, err
	}
	if err := v.VerifyStream(stream, events, head); err != nil {
		p.flagBroken(ctx, stream, err)
		return nil, err
	}
	return events, nil
}

// ReadVerifiedMany is ReadVerified for many streams at once, in one snapshot and two queries
// (for bulk readers such as reconciliation): it returns the events of each stream that exists
// and verifies, and for each broken stream its error (wrapping ErrChainBroken), which is
// recorded in broken_streams as ReadVerified records it. Streams that do not exist are in
// neither map. The error is for the read itself.
func (p *Postgres) ReadVerifiedMany(ctx context.Context, streams []string) (map[string][]RecordedEvent, map[string]error, error) {
	v, err := p.Verifier(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("eventstore: read streams: %w", err)
	}
	events := map[string][]RecordedEvent{}
	heads := map[string]Head{}
	err = pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, version`, streams)
		if err != nil {
			return err
		}
		all, err := scanEvents(rows)
		if err != nil {
			return err
		}
		for _, e := range all {
			events[e.StreamID] = append(events[e.StreamID], e)
		}
		hrows, err := tx.Query(ctx, `SELECT stream_id, version, last_hash FROM event_streams WHERE stream_id = ANY($1)`, streams)
		if err != nil {
			return err
		}
		var (
			stream string
			h      Head
		)
		_, err = pgx.ForEachRow(hrows, []any{&stream, &h.Version, &h.Hash}, func() error {
			heads[stream] = h
			return nil
		})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("eventstore: read streams: %w", err)
	}
	ok, broken := map[string][]RecordedEvent{}, map[string]error{}
	for _, stream := range streams {
		recs := events[stream]
		head, hasHead := heads[stream]
		switch {
		case len(recs) == 0 && head.Version == 0:
			continue // no such stream
		case !hasHead:
			broken[stream] = fmt.Errorf("eventstore: read stream %q: %w: its events have no head", stream, ErrChainBroken)
		default:
			if err := v.VerifyStream(stream, recs, head); err != nil {
				broken[stream] = err
			} else {
				ok[stream] = recs
			}
		}
		if err := broken[stream]; err != nil {
			p.flagBroken(ctx, stream, err)
		}
	}
	return ok, broken, nil
}

// flagBroken records a stream found broken in broken_streams (migration 0014), so that the
// review list shows it and recovery leaves it alone even if nobody reads the error (the audit
// finds broken streams by itself). A reader without the chain key records nothing: the fault
// is its configuration, not the stream. A failure to record is not the reader's problem: the
// read has already failed with the chain error.
func (p *Postgres) flagBroken(ctx context.Context, stream string, cause error) {
	if errors.Is(cause, ErrChainKeyMissing) {
		return // this reader lacks the chain key: nothing is known of the stream
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = p.pool.Exec(ctx, `
		INSERT INTO broken_streams (stream_id, detail) VALUES ($1, $2)
		ON CONFLICT (stream_id) DO UPDATE SET detail = EXCLUDED.detail, last_seen = now()`, stream, cause.Error())
}

// ReadAll implements Store. Only rows of transactions older than every running one are read:
// their place in (transaction_id, position) order is final.
func (p *Postgres) ReadAll(ctx context.Context, from Position, limit int) ([]RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore: read all: %w: limit %d", ErrInvalidArgument, limit)
	}
	rows, err := p.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY transaction_id, position
		LIMIT $3`, from.Transaction, from.Sequence, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read all from %s: %w", from, err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read all from %s: %w", from, err)
	}
	return events, nil
}

// Head returns the position of the last event ReadAll can return now (Start when there is
// none). A subscriber's lag is the distance from its position to Head; Head itself stops moving
// while a long transaction holds the xmin horizon, so also watch the oldest transaction's age.
func (p *Postgres) Head(ctx context.Context) (Position, error) {
	var pos Position
	err := p.pool.QueryRow(ctx, `SELECT transaction_id, position FROM events
		WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&pos.Transaction, &pos.Sequence)
	if errors.Is(err, pgx.ErrNoRows) {
		return Start, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: head: %w", err)
	}
	return pos, nil
}

// pendingAfter reports whether committed events exist after pos that ReadAll may not return
// yet, because an older transaction is still running (or was running when ReadAll looked).
func (p *Postgres) pendingAfter(ctx context.Context, pos Position) (bool, error) {
	// Not EXISTS (...): PostgreSQL drops the ORDER BY inside EXISTS and, with the position as
	// a parameter, may scan the whole table sequentially when nothing follows it. ORDER BY ...
	// LIMIT 1 keeps this a single index probe.
	var pending bool
	err := p.pool.QueryRow(ctx, `SELECT true FROM events WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
		ORDER BY transaction_id, position LIMIT 1`, pos.Transaction, pos.Sequence).Scan(&pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return pending, err
}

// Subscribe implements Store.
//
// It reads batches with ReadAll while they come back full. After a short batch it waits:
//   - if committed events are waiting behind the xmin horizon (an older transaction still open,
//     or one that aborted and will never notify), it reads again after a delay growing from 5ms
//     to 500ms, or sooner on a notification;
//   - otherwise until an append's notification, or at most the safety interval (5s) in case a
//     notification was lost while the listener reconnected.
//
// Connection failures are retried with back-off (up to 5s); other errors are returned.
func (p *Postgres) Subscribe(ctx context.Context, from Position, batchSize int, handle func(context.Context, []RecordedEvent) error) error {
	if batchSize <= 0 || handle == nil {
		return fmt.Errorf("eventstore: subscribe: %w: batch size %d, handler set %t", ErrInvalidArgument, batchSize, handle != nil)
	}
	p.notifier.acquire()
	defer p.notifier.release()

	pos := from
	// Reset to nil after a success: the next failure or wait starts again from the base.
	var pendingBackoff, failBackoff retry.Backoff
	for {
		wake := p.notifier.wake() // before reading: a notification during the read is kept
		events, err := p.ReadAll(ctx, pos, batchSize)
		pending := false
		if err == nil && len(events) < batchSize {
			pending, err = p.pendingAfter(ctx, lastPosition(pos, events))
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !isConnectionError(err) {
				return fmt.Errorf("eventstore: subscribe from %s: %w", pos, err)
			}
			if failBackoff == nil {
				failBackoff = retry.WithCappedDuration(5*time.Second, retry.NewExponential(100*time.Millisecond))
			}
			failDelay, _ := failBackoff.Next()
			if err := sleepCtx(ctx, failDelay, nil); err != nil {
				return err
			}
			continue
		}
		failBackoff = nil

		if len(events) > 0 {
			if err := handle(ctx, events); err != nil {
				return err
			}
			pos = events[len(events)-1].Position
			pendingBackoff = nil
			if len(events) == batchSize {
				continue
			}
		}
		wait := p.safetyInterval
		if pending {
			if pendingBackoff == nil {
				pendingBackoff = retry.WithCappedDuration(500*time.Millisecond, retry.NewExponential(5*time.Millisecond))
			}
			wait, _ = pendingBackoff.Next()
		} else {
			pendingBackoff = nil
		}
		if err := sleepCtx(ctx, wait, wake); err != nil {
			return err
		}
	}
}

func lastPosition(pos Position, events []RecordedEvent) Position {
	if len(events) == 0 {
		return pos
	}
	return events[len(events)-1].Position
}

// sleepCtx waits for d, a wake-up or the end of ctx (returning ctx.Err()).
func sleepCtx(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-t.C:
	}
	return nil
}

// isConnectionError reports whether err is the database or the network failing (worth waiting
// out) rather than a mistake that every retry would repeat.
func isConnectionError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 53: insufficient resources; 57P: shutdown, crash recovery;
		// 40: serialization failure or deadlock.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53") ||
			strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "40")
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
