package projections

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// Replay: rebuilding read models from position 0 without touching the live ones.
//
// A runner applies the log event by event with SQL, a few thousand events per second: days to
// rebuild a busy ledger. A replay goes an order of magnitude faster; it:
//
//  1. reads the log in large pages inside one REPEATABLE READ, READ ONLY transaction: one
//     snapshot, so every page is cut at the same xmin horizon (the pages are a prefix of the
//     final log order, as eventstore.Postgres.ReadAll guarantees), and a read-only transaction
//     holds back no other reader of the log;
//  2. folds every event, decoded once, into an in-memory store per projection with the
//     projection's own rules (applyPaymentOrders, applyLedger, applyMerchants): the same
//     functions the runner calls with its SQL store, so there is one definition of each read
//     model;
//  3. bulk-loads the rows into shadow tables (shadow.go) with COPY in PostgreSQL's binary
//     format (copy.go), a chunk per transaction (a long write transaction would stall
//     paymentd's subscribers at its xmin): the rows of append-only tables (journal entries,
//     postings, wallet movements) while the fold goes on, the others once it is done; then it
//     builds the indexes, keys, foreign keys and triggers, and checks what the triggers would
//     have checked.
//
// The replay never calls Toss, never publishes and never writes outside its shadow schemas; only
// Swap changes the live tables and the checkpoint.
//
// Memory: the fold keeps the rows that events change (payments, orders and their lines, rates,
// merchants) and what the rules read back (entry keys, wallet movements by transaction) until
// the end, a few hundred megabytes for 100,000 payments (about 540,000 events): a log tens of
// times larger needs a machine with that much more memory.

// ReplayGCPercent is the garbage collector setting paymentctl replay and BenchmarkReplay run
// with unless GOGC is set: the fold's heap (hundreds of megabytes of rows and decimals) lives
// until the load, so collecting at every doubling (GOGC=100) rescans it again and again; at 300
// the replay spends about a fifth less CPU, for a peak heap of about four times the live one.
const ReplayGCPercent = 300

// ReplayPhase names a step of a replay, for progress reports.
type ReplayPhase string

const (
	PhaseRead   ReplayPhase = "read"   // reading and folding the log; Done and Total count events
	PhaseLoad   ReplayPhase = "load"   // COPY into the shadow tables; rows
	PhaseFinish ReplayPhase = "finish" // keys, indexes, triggers, checks; statements
)

// ReplayProgress is a progress report.
type ReplayProgress struct {
	Projections []string
	Phase       ReplayPhase
	Done, Total int64
	Elapsed     time.Duration // since the phase started
}

// Rate is Done per second.
func (p ReplayProgress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / p.Elapsed.Seconds()
}

// ETA is the time left at the current rate (0 when unknown or done).
func (p ReplayProgress) ETA() time.Duration {
	r := p.Rate()
	if r <= 0 || p.Done >= p.Total {
		return 0
	}
	return time.Duration(float64(p.Total-p.Done) / r * float64(time.Second))
}

// ReplayOptions adjust Replay. The zero value is fine.
type ReplayOptions struct {
	// PageSize is the number of events read per query (default 20,000).
	PageSize int
	// CopyChunk is the number of rows per COPY transaction, and of the append-only tables'
	// rows the fold hands to the load at a time (default 20,000).
	CopyChunk int
	// Complete builds every definition of the live tables into the shadows (see shadowDDL):
	// for a shadow that is to be kept or swapped. Without it the shadows have the keys and
	// lookup indexes the projections' SQL needs, which is all Compare needs; Swap builds the
	// rest before it takes its locks.
	Complete bool
	// Progress, if set, is called after every page read, a few times a second during the load
	// and after every statement of the finish, from one goroutine at a time.
	Progress func(ReplayProgress)
}

// ReplayResult says what Replay built.
type ReplayResult struct {
	Shadows  []Shadow
	Events   int64               // events read
	Position eventstore.Position // the last event read (Start when the log is empty)
	// Pending counts the events committed after Position that the replay could not read: an
	// open transaction somewhere on the server held the xmin horizon back. The live runner
	// applies them; Compare and Swap apply them to the shadow once they are readable.
	Pending int64
	Read    time.Duration // reading and folding
	Elapsed time.Duration // everything
}

// Shadow is one projection's rebuilt read model.
type Shadow struct {
	Projection string
	Schema     string
	Position   eventstore.Position
	Rows       []TableRows
}

// TableRows counts a table's rows.
type TableRows struct {
	Table string
	Rows  int64
}

// Replay rebuilds the named projections (ReplayableProjections; none or "all" means all) from
// position 0, each into a new shadow schema, reading the log once for all of them. It returns
// the shadows; Compare, Swap and DropShadow take them from there. On error it drops what it
// created. Cancelling ctx stops it (and drops the shadows).
func Replay(ctx context.Context, pool *pgxpool.Pool, projections []string, opts ReplayOptions) (res ReplayResult, err error) {
	models, err := modelsNamed(projections)
	if err != nil {
		return res, err
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 20000
	}
	if opts.CopyChunk <= 0 {
		opts.CopyChunk = 20000
	}
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.proj.Name()
	}
	progress := func(phase ReplayPhase, done, total int64, since time.Time) {
		if opts.Progress != nil {
			opts.Progress(ReplayProgress{Projections: names, Phase: phase, Done: done, Total: total, Elapsed: time.Since(since)})
		}
	}
	start := time.Now()

	builds := make([]*build, 0, len(models))
	defer func() {
		if err == nil {
			return
		}
		// The shadows are useless half-built; drop them even when ctx is what failed.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, b := range builds {
			if dropErr := DropShadow(cleanup, pool, b.schema); dropErr != nil {
				err = errors.Join(err, dropErr)
			}
		}
	}()
	load := startLoader(ctx, pool, opts.CopyChunk)
	defer load.wait() //nolint:errcheck // waited for below; this only stops it on an early return
	for _, m := range models {
		live, err := liveSchema(ctx, pool, m)
		if err != nil {
			return res, err
		}
		b := &build{model: m, live: live, schema: newShadowName(m.proj.Name(), start)}
		if err := createShadow(ctx, pool, m, live, b.schema); err != nil {
			return res, err
		}
		builds = append(builds, b)
		b.mem, b.apply = m.newFold(load.sender(b.schema), opts.CopyChunk)
	}

	if res.Events, res.Position, err = foldLog(ctx, pool, builds, opts.PageSize, progress); err != nil {
		return res, err
	}
	res.Read = time.Since(start)

	// What the fold kept (the tables whose rows change, the last chunks of the others) follows
	// what it streamed.
	loadStart := time.Now()
	for _, b := range builds {
		for _, t := range b.mem.copyTables() {
			if err := load.sender(b.schema)(t); err != nil {
				return res, err
			}
		}
	}
	finished := make(chan error, 1)
	go func() { finished <- load.wait() }()
	for tick := time.NewTicker(100 * time.Millisecond); ; {
		select {
		case <-tick.C:
			progress(PhaseLoad, load.loaded.Load(), load.sent.Load(), loadStart)
			continue
		case err = <-finished:
			tick.Stop()
		}
		break
	}
	if err != nil {
		return res, err
	}
	progress(PhaseLoad, load.loaded.Load(), load.sent.Load(), loadStart)

	finishStart := time.Now()
	st := replayState{position: res.Position, replayed: res.Position, events: res.Events}
	if err := finishShadows(ctx, pool, builds, st, opts.Complete, func(done, total int) {
		progress(PhaseFinish, int64(done), int64(total), finishStart)
	}); err != nil {
		return res, err
	}
	for _, b := range builds {
		sh := Shadow{Projection: b.model.proj.Name(), Schema: b.schema, Position: res.Position}
		for _, t := range b.model.tables {
			sh.Rows = append(sh.Rows, TableRows{Table: t.name, Rows: load.rows[b.schema+"."+t.name]})
		}
		res.Shadows = append(res.Shadows, sh)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE (transaction_id, position) > ($1::xid8, $2::bigint)`,
		res.Position.Transaction, res.Position.Sequence).Scan(&res.Pending); err != nil {
		return res, fmt.Errorf("projections: replay: count the events after %s: %w", res.Position, err)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// build is one projection's replay in progress.
type build struct {
	model  *readModel
	live   string // the live tables' schema
	schema string // the shadow schema
	mem    memoryModel
	apply  func(context.Context, eventstore.RecordedEvent, domain.Event) error
}

// foldLog reads the log in one snapshot and applies every event to every build.
func foldLog(ctx context.Context, pool *pgxpool.Pool, builds []*build, pageSize int, progress func(ReplayPhase, int64, int64, time.Time)) (int64, eventstore.Position, error) {
	start := time.Now()
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, eventstore.Start, fmt.Errorf("projections: replay: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only: nothing to lose
	var total int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM events WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())`).Scan(&total); err != nil {
		return 0, eventstore.Start, fmt.Errorf("projections: replay: count events: %w", err)
	}

	// Stages, so that the database and both cores are kept busy: one goroutine reads pages,
	// one decodes them, one per projection folds them, in log order.
	pages := make(chan []eventstore.RecordedEvent, 2)
	decodedPages := make(chan []decodedEvent, 2)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(pages)
		pos := eventstore.Start
		for {
			page, err := readLog(gctx, tx, pos, endOfLog, pageSize)
			if err != nil {
				return fmt.Errorf("projections: replay: read the log after %s: %w", pos, err)
			}
			if len(page) == 0 {
				return nil
			}
			select {
			case pages <- page:
			case <-gctx.Done():
				return gctx.Err()
			}
			if len(page) < pageSize {
				return nil
			}
			pos = page[len(page)-1].Position
		}
	})
	g.Go(func() error {
		defer close(decodedPages)
		for page := range pages {
			out := make([]decodedEvent, len(page))
			for i, r := range page {
				out[i].r = r
				for _, b := range builds {
					if b.model.decodes(r) {
						out[i].e, out[i].err = domain.UnmarshalEvent(r.Type, r.SchemaVersion, r.Data)
						break
					}
				}
			}
			select {
			case decodedPages <- out:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	// Each projection folds in a goroutine of its own, over the same decoded pages (read only).
	folds := make([]chan []decodedEvent, len(builds))
	for i, b := range builds {
		folds[i] = make(chan []decodedEvent, 2)
		g.Go(func() error {
			for page := range folds[i] {
				for _, d := range page {
					if err := foldEvent(gctx, b, d); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	var n int64
	pos := eventstore.Start
	g.Go(func() error {
		defer func() {
			for _, c := range folds {
				close(c)
			}
		}()
		for page := range decodedPages {
			for _, c := range folds {
				select {
				case c <- page:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			n += int64(len(page))
			pos = page[len(page)-1].r.Position
			progress(PhaseRead, n, max(total, n), start)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return 0, eventstore.Start, err
	}
	progress(PhaseRead, n, n, start)
	return n, pos, nil
}

// decodedEvent is an event with its body decoded (e nil when no projection reads it).
type decodedEvent struct {
	r   eventstore.RecordedEvent
	e   domain.Event
	err error
}

// foldEvent applies d to the build if its projection reads it.
func foldEvent(ctx context.Context, b *build, d decodedEvent) error {
	r := d.r
	if !b.model.decodes(r) {
		return nil
	}
	// A replay never skips an event: one that fails (its body does not decode, the rules refuse
	// it) fails the replay, naming the event, be it parked by the live runner or not.
	if d.err != nil {
		return fmt.Errorf("projections: replay: %w", newEventError(b.model.proj.Name(), r, d.err))
	}
	if err := b.apply(ctx, r, d.e); err != nil {
		return fmt.Errorf("projections: replay: %w", newEventError(b.model.proj.Name(), r, err))
	}
	return nil
}

// loader COPYs rows into the shadows, two tables at a time (the database parses one COPY per
// core), while the fold goes on: the fold hands it the append-only tables' rows chunk by chunk
// (appendOnly), then everything else at the end.
type loader struct {
	pool   *pgxpool.Pool
	chunk  int
	jobs   chan loadJob
	g      *errgroup.Group
	ctx    context.Context
	closed bool
	sent   atomic.Int64
	loaded atomic.Int64
	mu     sync.Mutex
	encs   map[string][]encodeValue // by schema.table
	rows   map[string]int64         // rows loaded by schema.table, complete after wait
}

type loadJob struct {
	schema string
	t      copyTable
}

func startLoader(ctx context.Context, pool *pgxpool.Pool, chunk int) *loader {
	g, gctx := errgroup.WithContext(ctx)
	l := &loader{pool: pool, chunk: chunk, jobs: make(chan loadJob, 2), g: g, ctx: gctx,
		encs: map[string][]encodeValue{}, rows: map[string]int64{}}
	for range 2 {
		g.Go(func() error {
			for j := range l.jobs {
				if err := l.load(gctx, j); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return l
}

// sender returns the function that queues rows for the shadow schema; it waits while the
// loader is behind, and fails once the loader has failed.
func (l *loader) sender(schema string) func(copyTable) error {
	return func(t copyTable) error {
		if t.n == 0 {
			return nil
		}
		l.sent.Add(int64(t.n))
		select {
		case l.jobs <- loadJob{schema, t}:
			return nil
		case <-l.ctx.Done():
			return fmt.Errorf("projections: replay: loading stopped: %w", context.Cause(l.ctx))
		}
	}
}

// wait lets the loader finish what it was given and returns its first error. Only the first
// call waits.
func (l *loader) wait() error {
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.jobs)
	return l.g.Wait()
}

func (l *loader) load(ctx context.Context, j loadJob) error {
	key := j.schema + "." + j.t.table
	l.mu.Lock()
	enc, ok := l.encs[key]
	l.mu.Unlock()
	if !ok {
		var err error
		if enc, err = columnEncoders(ctx, l.pool, j.schema, j.t.table, j.t.columns); err != nil {
			return fmt.Errorf("projections: load %s: %w", key, err)
		}
		l.mu.Lock()
		l.encs[key] = enc
		l.mu.Unlock()
	}
	for from := 0; from < j.t.n; from += l.chunk {
		to := min(from+l.chunk, j.t.n)
		if err := copyIn(ctx, l.pool, j.schema, j.t, enc, from, to); err != nil {
			return fmt.Errorf("projections: load %s rows %d-%d: %w", key, from, to, err)
		}
		l.loaded.Add(int64(to - from))
	}
	l.mu.Lock()
	l.rows[key] += int64(j.t.n)
	l.mu.Unlock()
	return nil
}

// endOfLog is past every position.
var endOfLog = eventstore.Position{Transaction: math.MaxUint64, Sequence: math.MaxInt64}

// readLog reads up to limit events after from and up to to (inclusive), in global-log order,
// below the xmin horizon, as eventstore.Postgres.ReadAll does. The replay has its own reader,
// over the events table, because it needs what ReadAll does not give: a transaction of its
// choice (one snapshot for the whole log), an upper bound, and none of the columns that no
// projection reads (metadata, hashes), which would double the bytes read and decoded. The
// events it returns have no Metadata: a projection that comes to read metadata must add it
// here, or its replay will differ from its live tables (and Compare will say so).
func readLog(ctx context.Context, q querier, from, to eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	rows, err := q.Query(ctx, `SELECT transaction_id, position, stream_id, version, event_id, event_type, schema_version, data, recorded_at
		FROM events
		WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
		  AND (transaction_id, position) <= ($3::xid8, $4::bigint)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY transaction_id, position
		LIMIT $5`, from.Transaction, from.Sequence, to.Transaction, to.Sequence, limit)
	if err != nil {
		return nil, err
	}
	out := make([]eventstore.RecordedEvent, 0, limit)
	var e eventstore.RecordedEvent
	_, err = pgx.ForEachRow(rows, []any{&e.Position.Transaction, &e.Position.Sequence, &e.StreamID, &e.Version, &e.ID,
		&e.Type, &e.SchemaVersion, &e.Data, &e.RecordedAt}, func() error {
		e.RecordedAt = e.RecordedAt.UTC()
		out = append(out, e)
		e.Data = nil
		return nil
	})
	return out, err
}
