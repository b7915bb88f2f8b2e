// Package lease owns the leases of the database work queues (the recovery sweeper's
// recovery_state, the webhook worker's webhook_inbox): the token that says a row is held, its
// renewal while the work runs, the checked write that ends it, and the retry schedule of a row
// whose work failed.
//
// A queue claims its rows with its own SQL (what is due differs per queue), typically SELECT …
// FOR UPDATE SKIP LOCKED in a short transaction that sets the row's holder and leased-until
// columns and returns them: that pair, as stored, is the Token. No transaction or row lock is
// held while the work runs (it calls Toss over HTTP). Instead:
//
//   - Keep renews the lease at once and then every TTL/3 while the work runs, moving leased-until
//     to now+TTL only if the row still holds the token (holder and leased-until unchanged). If a
//     renewal finds the row no longer held, or renewals fail until the lease has run out, the
//     work's context is canceled with cause ErrLost.
//   - End is the work's last write (its result, or giving the row back): it succeeds only while
//     the token still holds, clears the holder, and returns ErrLost otherwise, so a holder whose
//     lease ran out never overwrites the newer holder's bookkeeping.
//
// So a lease can be short (seconds): a live holder keeps it, and a holder that died (SIGKILL,
// a lost machine) stops renewing and its rows are claimable once the TTL has passed. A row whose
// lease ran out but that nobody has claimed since is still held: renewal and End succeed.
//
// Leased-until is computed from the Queue's clock and passed to SQL, or, with a nil clock, from
// the database's clock; either way the queue's claim must compare against the same clock.
// Several instances' clocks are assumed to agree to well within the TTL.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrLost means the row is no longer held under the token: its lease ran out and another
// holder claimed it, or the queue finished the row another way.
var ErrLost = errors.New("lease lost")

// DB is what a Queue needs of the database; *pgxpool.Pool satisfies it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Table names a queue's table and its lease columns. The names are put into SQL as written:
// they are constants of the calling package, never input.
type Table struct {
	Name   string // the table
	Key    string // its primary key column
	Holder string // text column naming the holder; NULL when nobody holds the row
	Until  string // timestamptz column: when the lease runs out
	// Held is an optional SQL condition that a held row also meets (webhook_inbox:
	// "status = 'pending'"): a row finished by someone else is no longer held.
	Held string
}

// Token is a held lease: the row's key and its holder and leased-until columns as stored.
type Token struct {
	Key    any
	Holder string
	Until  time.Time
}

// Queue renews and ends leases on one table. It is safe for concurrent use.
type Queue struct {
	db       DB
	table    Table
	ttl      time.Duration
	now      func() time.Time
	token    string // the WHERE clause of a held row: $1 key, $2 holder, $3 until
	renewSQL string
}

// New returns a Queue on table whose leases last ttl from each renewal. now is the clock that
// leased-until is computed from; nil means the database's clock (statement_timestamp()).
func New(db DB, table Table, ttl time.Duration, now func() time.Time) *Queue {
	token := fmt.Sprintf("%s = $1 AND %s = $2 AND %s = $3", table.Key, table.Holder, table.Until)
	if table.Held != "" {
		token += " AND (" + table.Held + ")"
	}
	return &Queue{
		db: db, table: table, ttl: ttl, now: now, token: token,
		// $4 is the new leased-until from the Queue's clock; NULL takes the database's.
		renewSQL: fmt.Sprintf(`UPDATE %s SET %s = coalesce($4::timestamptz, statement_timestamp() + $5::float8 * interval '1 second')
			WHERE %s RETURNING %s`, table.Name, table.Until, token, table.Until),
	}
}

// TTL is how long a lease lasts from its claim or last renewal.
func (q *Queue) TTL() time.Duration { return q.ttl }

// Renew extends the lease tok to now+TTL and returns the new token, or ErrLost if the row is no
// longer held under tok.
func (q *Queue) Renew(ctx context.Context, tok Token) (Token, error) {
	var until *time.Time
	if q.now != nil {
		u := q.now().Add(q.ttl)
		until = &u
	}
	next := tok
	err := q.db.QueryRow(ctx, q.renewSQL, tok.Key, tok.Holder, tok.Until, until, q.ttl.Seconds()).Scan(&next.Until)
	if errors.Is(err, pgx.ErrNoRows) {
		return tok, fmt.Errorf("%s %v: %w", q.table.Name, tok.Key, ErrLost)
	}
	if err != nil {
		return tok, fmt.Errorf("lease: renew %s %v: %w", q.table.Name, tok.Key, err)
	}
	return next, nil
}

// End makes the last write of a held row and ends its lease, in one statement:
// UPDATE <table> SET <holder> = NULL, <set> WHERE <the row is held under tok>. The token takes
// $1 to $3, so set's own arguments, args, are $4 and on. It returns ErrLost if the row is no
// longer held under tok, and then writes nothing.
func (q *Queue) End(ctx context.Context, tok Token, set string, args ...any) error {
	tag, err := q.db.Exec(ctx, q.endSQL(set), append([]any{tok.Key, tok.Holder, tok.Until}, args...)...)
	return q.ended(tok, tag, err)
}

// EndAll is End for several rows with the same write, in one round trip. It returns one error
// per token (nil, ErrLost, or the database's), in order.
func (q *Queue) EndAll(ctx context.Context, toks []Token, set string, args ...any) []error {
	sql := q.endSQL(set)
	b := &pgx.Batch{}
	for _, tok := range toks {
		b.Queue(sql, append([]any{tok.Key, tok.Holder, tok.Until}, args...)...)
	}
	br := q.db.SendBatch(ctx, b)
	errs := make([]error, len(toks))
	for i, tok := range toks {
		tag, err := br.Exec()
		errs[i] = q.ended(tok, tag, err)
	}
	if err := br.Close(); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("lease: end %s: %w", q.table.Name, err)
			}
		}
	}
	return errs
}

func (q *Queue) endSQL(set string) string {
	return fmt.Sprintf("UPDATE %s SET %s = NULL, %s WHERE %s", q.table.Name, q.table.Holder, set, q.token)
}

// ended is End's verdict on one row's update.
func (q *Queue) ended(tok Token, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("lease: end %s %v: %w", q.table.Name, tok.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %v: %w", q.table.Name, tok.Key, ErrLost)
	}
	return nil
}

// Held is a lease being kept alive while its work runs. Its methods are safe for concurrent use.
type Held struct {
	q      *Queue
	mu     sync.Mutex
	tok    Token
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Keep renews tok once (so work starts only on a lease that is still ours and fresh) and then
// every TTL/3 until Stop or End. It returns the work's context, canceled with cause ErrLost when
// a renewal finds the lease lost or renewals keep failing until it has run out; Stop and End
// also cancel it. If the first renewal fails, Keep returns its error and nothing runs.
func (q *Queue) Keep(ctx context.Context, tok Token) (context.Context, *Held, error) {
	tok, err := q.Renew(ctx, tok)
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithCancelCause(ctx)
	h := &Held{q: q, tok: tok, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	go h.renew(wctx)
	return wctx, h, nil
}

func (h *Held) renew(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(max(h.q.ttl/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tok := h.Token()
		next, err := h.q.Renew(ctx, tok)
		switch {
		case err == nil:
			h.mu.Lock()
			h.tok = next
			h.mu.Unlock()
		case errors.Is(err, ErrLost):
			h.cancel(err)
			return
		case ctx.Err() == nil && !h.q.clock().Before(tok.Until):
			// The database did not answer until the lease ran out: another holder may have it.
			h.cancel(fmt.Errorf("%w: not renewed before it ran out: %w", ErrLost, err))
			return
		}
	}
}

func (q *Queue) clock() time.Time {
	if q.now != nil {
		return q.now()
	}
	return time.Now()
}

// Token is the lease as last renewed.
func (h *Held) Token() Token {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tok
}

// Stop stops renewing, cancels the work's context and returns the lease as last renewed. The
// row stays held until its lease runs out. Stop may be called more than once.
func (h *Held) Stop() Token {
	h.once.Do(func() { close(h.stop) })
	<-h.done
	h.cancel(context.Canceled)
	return h.Token()
}

// End stops renewing and makes the row's last write (see Queue.End).
func (h *Held) End(ctx context.Context, set string, args ...any) error {
	return h.q.End(ctx, h.Stop(), set, args...)
}

// NewHolder returns a holder id for this process: host, pid and a random part, so that two
// processes, or two queues of one process, never share one.
func NewHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
}
