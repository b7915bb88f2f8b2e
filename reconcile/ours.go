package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
)

// Our side, read in bulk: one query selects the merchant's orders touched in the window, then
// the streams are read a chunk at a time (every event of the chunk's streams in one query, with
// their recorded heads in the same snapshot, eventstore.Postgres.ReadVerifiedMany), each
// verified as eventstore.ReadVerified verifies one stream, and folded. Never a query per payment.

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

// loadOrders reads, verifies and folds the streams of ids, chunk streams per query, with up to
// loadWorkers queries at a time (the database reads one chunk while this process verifies and
// folds another). An order without a stream is absent from the result; one of another merchant is
// foreign; one whose stream fails verification is broken (and recorded in broken_streams, as
// every reader does). done, if not nil, is called from the calling goroutine after each chunk
// with the number of streams read so far.
func loadOrders(ctx context.Context, store Streams, m domain.MerchantID, ids []domain.OrderID, chunk int, done func(int)) (map[domain.OrderID]*ourOrder, error) {
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
				err := loadChunk(ctx, store, m, c, part)
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

func loadChunk(ctx context.Context, store Streams, m domain.MerchantID, ids []domain.OrderID, out map[domain.OrderID]*ourOrder) error {
	streams := make([]string, len(ids))
	for i, id := range ids {
		streams[i] = domain.StreamName(id)
	}
	events, broken, err := store.ReadVerifiedMany(ctx, streams)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for i, id := range ids {
		s := streams[i]
		if verr, ok := broken[s]; ok {
			out[id] = &ourOrder{broken: verr}
			continue
		}
		recs, ok := events[s]
		if !ok {
			continue // no such stream
		}
		// A verified stream that cannot be read, or is not a legal history (written by a bug,
		// or by someone who could recompute its hashes), is one order's problem, reported as
		// its broken history and never acted on, not the end of the merchant's run.
		decoded, err := commands.DecodeEvents(recs)
		if err != nil {
			out[id] = &ourOrder{broken: fmt.Errorf("its events cannot be read: %w", err)}
			continue
		}
		o, err := fold(decoded)
		if err != nil {
			out[id] = &ourOrder{broken: fmt.Errorf("its events are not a history the state machine allows: %w", err)}
			continue
		}
		if o.payment.MerchantID != m {
			out[id] = &ourOrder{foreign: true}
			continue
		}
		out[id] = o
	}
	return nil
}
