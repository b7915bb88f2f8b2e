package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// Our side, read in bulk: one query selects the merchant's orders touched in the window, then
// the streams are read a chunk at a time (every event of the chunk's streams in one query, with
// their recorded heads in the same snapshot), each verified as eventstore.ReadVerified verifies
// one stream, and folded. Never a query per payment.

// touchedOrders lists the merchant's orders checked out, approved or last changed in [start,
// end). A cancel is found through the payment's last change or through Toss's list of the
// window; one of ours that Toss does not have, on a payment changed again after the window, is
// found by a later run's window. The read model trails the event log by milliseconds: a payment
// whose first event is that recent is compared by the next run.
func touchedOrders(ctx context.Context, pool *pgxpool.Pool, m domain.MerchantID, start, end time.Time) ([]domain.OrderID, error) {
	rows, err := pool.Query(ctx, `
		SELECT order_id FROM payment_orders
		WHERE merchant_id = $1
		  AND (created_at >= $2 AND created_at < $3 OR approved_at >= $2 AND approved_at < $3 OR updated_at >= $2 AND updated_at < $3)
		ORDER BY order_id`, m, start, end)
	if err != nil {
		return nil, fmt.Errorf("reconcile: orders of %s: %w", m, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[domain.OrderID])
	if err != nil {
		return nil, fmt.Errorf("reconcile: orders of %s: %w", m, err)
	}
	return ids, nil
}

// eventColumns are the columns eventstore stores and hashes (see eventstore.RecordedEvent).
const eventColumns = `transaction_id, position, stream_id, version, event_id, event_type, schema_version,
	data, metadata, recorded_at, prev_hash, hash`

// loadOrders reads, verifies and folds the streams of ids, chunk streams per query, with up to
// loadWorkers queries at a time (the database reads one chunk while this process verifies and
// folds another). An order without a stream is absent from the result; one of another merchant is
// foreign; one whose stream fails verification is broken (and recorded in broken_streams, as
// every reader does). done, if not nil, is called from the calling goroutine after each chunk
// with the number of streams read so far.
func loadOrders(ctx context.Context, pool *pgxpool.Pool, m domain.MerchantID, ids []domain.OrderID, chunk int, done func(int)) (map[domain.OrderID]*ourOrder, error) {
	out := make(map[domain.OrderID]*ourOrder, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		orders map[domain.OrderID]*ourOrder
		n      int
		err    error
	}
	chunks := make(chan []domain.OrderID)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(loadWorkers, (len(ids)+chunk-1)/chunk) {
		wg.Go(func() {
			for c := range chunks {
				part := make(map[domain.OrderID]*ourOrder, len(c))
				err := loadChunk(ctx, pool, m, c, part)
				select {
				case results <- result{orders: part, n: len(c), err: err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(chunks)
		for lo := 0; lo < len(ids); lo += chunk {
			select {
			case chunks <- ids[lo:min(lo+chunk, len(ids))]:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	read := 0
	for r := range results {
		if r.err != nil {
			cancel()
			for range results { // let the workers finish
			}
			return nil, r.err
		}
		for id, o := range r.orders {
			out[id] = o
		}
		read += r.n
		if done != nil {
			done(read)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// loadWorkers is how many chunks are read at once: enough to keep the database and this process
// both busy, few enough to leave the pool's connections to others.
const loadWorkers = 3

func loadChunk(ctx context.Context, pool *pgxpool.Pool, m domain.MerchantID, ids []domain.OrderID, out map[domain.OrderID]*ourOrder) error {
	streams := make([]string, len(ids))
	for i, id := range ids {
		streams[i] = domain.StreamName(id)
	}
	events := map[string][]eventstore.RecordedEvent{}
	heads := map[string]eventstore.Head{}
	// One snapshot for the events and their heads, as ReadVerified reads one stream: an append
	// committing between two statements would otherwise look like a moved head.
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, version`, streams)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e eventstore.RecordedEvent
			if err := rows.Scan(&e.Position.Transaction, &e.Position.Sequence, &e.StreamID, &e.Version, &e.ID,
				&e.Type, &e.SchemaVersion, &e.Data, &e.MetadataJSON, &e.RecordedAt, &e.PrevHash, &e.Hash); err != nil {
				rows.Close()
				return err
			}
			if err := json.Unmarshal(e.MetadataJSON, &e.Metadata); err != nil {
				rows.Close()
				return fmt.Errorf("event %s: metadata: %w", e.ID, err)
			}
			e.RecordedAt = e.RecordedAt.UTC()
			events[e.StreamID] = append(events[e.StreamID], e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		hrows, err := tx.Query(ctx, `SELECT stream_id, version, last_hash FROM event_streams WHERE stream_id = ANY($1)`, streams)
		if err != nil {
			return err
		}
		for hrows.Next() {
			var s string
			var h eventstore.Head
			if err := hrows.Scan(&s, &h.Version, &h.Hash); err != nil {
				hrows.Close()
				return err
			}
			heads[s] = h
		}
		return hrows.Err()
	})
	if err != nil {
		return fmt.Errorf("reconcile: read streams: %w", err)
	}
	for i, id := range ids {
		s := streams[i]
		recs, head := events[s], heads[s]
		_, hasHead := heads[s]
		if len(recs) == 0 && head.Version == 0 {
			continue // no such stream
		}
		var verr error
		if !hasHead {
			verr = fmt.Errorf("%w: stream %q: its events have no head", eventstore.ErrChainBroken, s)
		} else {
			verr = eventstore.VerifyStream(s, recs, head)
		}
		if verr != nil {
			flagBroken(ctx, pool, s, verr)
			out[id] = &ourOrder{broken: verr}
			continue
		}
		decoded, err := commands.DecodeEvents(recs)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		o, err := fold(decoded)
		if err != nil {
			return fmt.Errorf("reconcile: fold %s: %w", id, err)
		}
		if o.payment.MerchantID != m {
			out[id] = &ourOrder{foreign: true}
			continue
		}
		out[id] = o
	}
	return nil
}

// flagBroken records a stream that failed verification in broken_streams (migration 0014), as
// eventstore.ReadVerified does, so that the review list and audit show it. A failure to record
// does not stop the run: the order is reported history_broken anyway.
func flagBroken(ctx context.Context, pool *pgxpool.Pool, stream string, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = pool.Exec(ctx, `
		INSERT INTO broken_streams (stream_id, detail) VALUES ($1, $2)
		ON CONFLICT (stream_id) DO UPDATE SET detail = EXCLUDED.detail, last_seen = now()`, stream, cause.Error())
}
