package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/psp/toss"
)

// Corrector books what Toss's truth settles. *commands.Service implements it: Sync reads a
// payment back and records what domain.Payment.DecideReadBack decides (the webhook worker's and
// recovery's decisions); RecordSettlementAs records a settlement row once per transactionKey.
// Both are idempotent. A *domain.Error is about that one order; any other error may be the store
// failing.
type Corrector interface {
	Sync(ctx context.Context, id domain.OrderID, opts commands.ResolveOptions) (commands.ConfirmResult, error)
	RecordSettlementAs(ctx context.Context, actor string, merchant domain.MerchantID, row toss.Settlement) (bool, error)
}

// FeeRates gives a merchant's contract fee rates with Toss in the order they were set.
// *merchants.Service implements it.
type FeeRates interface {
	TossFeeRates(ctx context.Context, m domain.MerchantID) ([]domain.FeeRatePeriod, error)
}

var _ Corrector = (*commands.Service)(nil)

// Streams reads payment streams in bulk, each verified against its hash chain and head; a
// broken stream is reported, never folded (eventstore.Postgres).
type Streams interface {
	ReadVerifiedMany(ctx context.Context, streams []string) (map[string][]eventstore.RecordedEvent, map[string]error, error)
}

var _ Streams = (*eventstore.Postgres)(nil)

// Config holds what an Engine needs.
type Config struct {
	Pool *pgxpool.Pool
	// Streams is the event store the payments are read from: the one the services write with,
	// so that it verifies with the same chain key.
	Streams Streams
	// Clients returns the merchant's Toss client, with the merchant's own secret key
	// (merchants.Directory.Client): a merchant's run sees its own transactions only.
	Clients   func(ctx context.Context, m domain.MerchantID) (Lister, error)
	Corrector Corrector
	FeeRates  FeeRates
	// Now is the clock: it says which KST day is today (payouts up to it are due). Default
	// time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// PageSize is the rows asked of Toss per page. Default and most 5000 (toss-api.md §4.5, §4.6).
	PageSize int
	// SettlementDays is how many days after a transaction Toss is expected to list its
	// settlement row (a weekly cycle sells on the Sunday and pays some days later). Default 7.
	SettlementDays int
	// Chunk is the number of streams read per query. Default 1000.
	Chunk int
}

// Engine runs reconciliations. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	logger *slog.Logger
}

// MaxDays bounds a run's range: everything of the range is held in memory at once.
const MaxDays = 92

const maxPageSize = 5000

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Pool == nil || cfg.Streams == nil || cfg.Clients == nil || cfg.Corrector == nil || cfg.FeeRates == nil {
		return nil, errors.New("reconcile: a pool, an event store, Toss clients, a corrector and fee rates are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PageSize <= 0 || cfg.PageSize > maxPageSize {
		cfg.PageSize = maxPageSize
	}
	if cfg.SettlementDays <= 0 {
		cfg.SettlementDays = 7
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = 1000
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, logger: logger}, nil
}

// Triggers say who started a run.
const (
	TriggerCLI   = "cli"
	TriggerDaily = "daily"
)

// Request asks for one merchant's run.
type Request struct {
	Merchant domain.MerchantID
	From, To string // KST days, yyyy-MM-dd, both included; To at most today
	Apply    bool
	Trigger  string // TriggerCLI (default) or TriggerDaily
	// Progress, if not nil, is called as the run goes on, from the calling goroutine.
	Progress func(Progress)
}

// Window checks a range and returns its bounds: [from 00:00, to+1 00:00) KST.
func Window(from, to string, today time.Time) (start, end time.Time, err error) {
	var errs []error
	f, ferr := time.ParseInLocation(time.DateOnly, from, domain.KST)
	if ferr != nil {
		errs = append(errs, fmt.Errorf("from %q is not yyyy-MM-dd", from))
	}
	t, terr := time.ParseInLocation(time.DateOnly, to, domain.KST)
	if terr != nil {
		errs = append(errs, fmt.Errorf("to %q is not yyyy-MM-dd", to))
	}
	if len(errs) == 0 {
		switch {
		case t.Before(f):
			errs = append(errs, fmt.Errorf("from %s is after to %s", from, to))
		case t.Format(time.DateOnly) > today.In(domain.KST).Format(time.DateOnly):
			errs = append(errs, fmt.Errorf("to %s is after today (%s, KST)", to, today.In(domain.KST).Format(time.DateOnly)))
		case t.Sub(f) >= MaxDays*24*time.Hour:
			errs = append(errs, fmt.Errorf("%s..%s is more than %d days; reconcile it in parts", from, to, MaxDays))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return time.Time{}, time.Time{}, domain.Errorf(domain.ErrInvalidInput, "reconcile: %v", err)
	}
	return f, t.AddDate(0, 0, 1), nil
}

// Run reconciles one merchant over req's range and saves the run's summary (and, when the run
// finished, its needs-review differences). A bad range is domain.ErrInvalidInput and saves
// nothing. An error reaching Toss or the store stops the run: the Report says how far it got,
// its summary is saved with the error, and the needs-review list is left as it was.
func (e *Engine) Run(ctx context.Context, req Request) (Report, error) {
	now := e.cfg.Now()
	rep := Report{Merchant: req.Merchant, From: req.From, To: req.To, Apply: req.Apply, StartedAt: now.In(domain.KST),
		Counts: newCounts(), Differences: []Difference{}, Phases: map[string]time.Duration{}}
	switch req.Trigger {
	case "":
		req.Trigger = TriggerCLI
	case TriggerCLI, TriggerDaily:
	default:
		return rep, domain.Errorf(domain.ErrInvalidInput, "reconcile: unknown trigger %q", req.Trigger)
	}
	if _, err := domain.ParseMerchantID(string(req.Merchant)); err != nil {
		return rep, err
	}
	start, end, err := Window(req.From, req.To, now)
	if err != nil {
		return rep, err
	}
	w := window{start: start, end: end, from: req.From, to: req.To, today: now.In(domain.KST).Format(time.DateOnly),
		settlementDays: e.cfg.SettlementDays}
	log := e.logger.With("merchantId", req.Merchant, "from", req.From, "to", req.To, "apply", req.Apply)
	examined, err := e.run(ctx, req, w, &rep)
	rep.FinishedAt = e.cfg.Now().In(domain.KST)
	if err != nil {
		rep.Err = err.Error()
	}
	saveStart := time.Now()
	if serr := saveRun(ctx, e.cfg.Pool, &rep, req.Trigger, examined, err == nil); serr != nil {
		err = errors.Join(err, serr)
	}
	rep.Phases["save"] = time.Since(saveStart)
	if err != nil {
		log.Error("reconciliation failed", "runId", rep.RunID, "error", err)
		return rep, err
	}
	log.Info("reconciliation done", "runId", rep.RunID, "payments", rep.Payments, "tossTransactions", rep.TossTransactions,
		"tossSettlements", rep.TossSettlements, "matched", rep.Counts[Matched], "unresolved", rep.Unresolved, "applied", rep.Applied)
	return rep, nil
}

// run does the work of Run and returns the orders it compared.
func (e *Engine) run(ctx context.Context, req Request, w window, rep *Report) ([]domain.OrderID, error) {
	m := req.Merchant
	progress := func(p Progress) {
		if req.Progress != nil {
			p.Merchant = m
			req.Progress(p)
		}
	}
	client, err := e.cfg.Clients(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("the Toss client of %s: %w", m, err)
	}
	rates, err := e.cfg.FeeRates.TossFeeRates(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("fee rates of %s: %w", m, err)
	}

	phase := time.Now()
	txs, err := transactions(ctx, client, w, e.cfg.PageSize, func(page, rows int) {
		progress(Progress{Phase: "transactions", Page: page, Done: rows})
	})
	if err != nil {
		return nil, err
	}
	rep.TossTransactions = len(txs)
	rep.Phases["transactions"] = time.Since(phase)
	phase = time.Now()
	rows, err := settlementRows(ctx, client, w, e.cfg.PageSize, func(page, n int) {
		progress(Progress{Phase: "settlements", Page: page, Done: n})
	})
	if err != nil {
		return nil, err
	}
	rep.TossSettlements = len(rows)
	rep.Phases["settlements"] = time.Since(phase)

	phase = time.Now()
	ids, err := touchedOrders(ctx, e.cfg.Pool, m, w.start, w.end)
	if err != nil {
		return nil, err
	}
	tossTxs := map[domain.OrderID][]toss.Transaction{}
	for _, t := range txs {
		tossTxs[domain.OrderID(t.OrderID)] = append(tossTxs[domain.OrderID(t.OrderID)], t)
	}
	tossRows := map[domain.OrderID][]toss.Settlement{}
	for _, r := range rows {
		tossRows[domain.OrderID(r.OrderID)] = append(tossRows[domain.OrderID(r.OrderID)], r)
	}
	seen := make(map[domain.OrderID]bool, len(ids)+len(tossTxs))
	for _, id := range ids {
		seen[id] = true
	}
	for id := range tossTxs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ours, err := loadOrders(ctx, e.cfg.Streams, m, ids, e.cfg.Chunk, func(done int) {
		progress(Progress{Phase: "ledger", Done: done, Total: len(ids)})
	})
	if err != nil {
		return nil, err
	}
	for _, o := range ours {
		if !o.foreign {
			rep.Payments++
		}
	}
	rep.Phases["ledger"] = time.Since(phase)

	phase = time.Now()
	compare := func(id domain.OrderID) orderResult {
		return matchOrder(w, rates, id, ours[id], tossTxs[id], tossRows[id])
	}
	first := make(map[domain.OrderID]orderResult, len(ids))
	for _, id := range ids {
		first[id] = compare(id)
	}
	rep.Phases["match"] = time.Since(phase)

	passes := []map[domain.OrderID]orderResult{first}
	failures := map[diffKey]string{}
	if req.Apply {
		phase = time.Now()
		passes, failures, err = e.apply(ctx, m, first, func(touched []domain.OrderID) (map[domain.OrderID]orderResult, error) {
			again, err := loadOrders(ctx, e.cfg.Streams, m, touched, e.cfg.Chunk, nil)
			if err != nil {
				return nil, err
			}
			out := make(map[domain.OrderID]orderResult, len(touched))
			for _, id := range touched {
				ours[id] = again[id]
				out[id] = compare(id)
			}
			return out, nil
		}, progress)
		rep.Phases["apply"] = time.Since(phase)
		if err != nil {
			return nil, err
		}
	}
	report(rep, ids, passes, failures, req.Apply)
	return ids, nil
}

// apply books what Toss's truth settles in first: read-backs, then settlement rows (of the
// payments as the read-backs left them), comparing the touched orders again after each step
// with recompare. It returns the passes (first, then one map per step of the orders it touched)
// and why each failed correction failed.
func (e *Engine) apply(ctx context.Context, m domain.MerchantID, first map[domain.OrderID]orderResult,
	recompare func([]domain.OrderID) (map[domain.OrderID]orderResult, error), progress func(Progress)) ([]map[domain.OrderID]orderResult, map[diffKey]string, error) {
	passes := []map[domain.OrderID]orderResult{first}
	failures := map[diffKey]string{}
	latest := func(id domain.OrderID) orderResult {
		for i := len(passes) - 1; i >= 0; i-- {
			if r, ok := passes[i][id]; ok {
				return r
			}
		}
		return orderResult{}
	}

	var syncs []domain.OrderID
	for id, r := range first {
		if slices.ContainsFunc(r.diffs, func(d Difference) bool { return d.fix == fixSync }) {
			syncs = append(syncs, id)
		}
	}
	slices.Sort(syncs)
	for i, id := range syncs {
		progress(Progress{Phase: "apply", Done: i, Total: len(syncs)})
		_, err := e.cfg.Corrector.Sync(ctx, id, commands.ResolveOptions{Actor: Actor, Merchant: m})
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			// Toss failing for one order, or refusing to be booked from (a mismatch), leaves
			// that order for review; anything else is the store failing, and stops the run.
			var terr *toss.Error
			if !isDomainError(err) && !errors.As(err, &terr) {
				return nil, nil, fmt.Errorf("read back %s: %w", id, err)
			}
			for _, d := range first[id].diffs {
				if d.fix == fixSync {
					failures[d.key()] = "the read-back failed: " + err.Error()
				}
			}
		}
	}
	touched := map[domain.OrderID]bool{}
	if len(syncs) > 0 {
		again, err := recompare(syncs)
		if err != nil {
			return nil, nil, err
		}
		passes = append(passes, again)
		for _, id := range syncs {
			touched[id] = true
		}
	}

	var settle []domain.OrderID
	for id := range first {
		for _, d := range latest(id).diffs {
			if d.fix != fixSettlement {
				continue
			}
			if !slices.Contains(settle, id) {
				settle = append(settle, id)
			}
			_, err := e.cfg.Corrector.RecordSettlementAs(ctx, Actor, m, *d.row)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				if !isDomainError(err) {
					return nil, nil, fmt.Errorf("record settlement %s of %s: %w", d.TransactionKey, id, err)
				}
				failures[d.key()] = "recording Toss's row was refused: " + err.Error()
			}
		}
	}
	if len(settle) > 0 {
		slices.Sort(settle)
		again, err := recompare(settle)
		if err != nil {
			return nil, nil, err
		}
		passes = append(passes, again)
	}
	progress(Progress{Phase: "apply", Done: len(syncs) + len(settle), Total: len(syncs) + len(settle)})
	return passes, failures, nil
}

func isDomainError(err error) bool {
	var de *domain.Error
	return errors.As(err, &de)
}

// report fills rep from the passes: every difference any pass found, each once, resolved
// "applied" when the last pass over its order no longer finds it; matched transactions from
// the last pass over each order.
func report(rep *Report, ids []domain.OrderID, passes []map[domain.OrderID]orderResult, failures map[diffKey]string, apply bool) {
	for _, id := range ids {
		var last orderResult
		var all []Difference
		index := map[diffKey]int{}
		for _, pass := range passes {
			r, ok := pass[id]
			if !ok {
				continue
			}
			last = r
			for _, d := range r.diffs {
				if i, seen := index[d.key()]; seen {
					all[i] = d // the later comparison describes it as it now stands
					continue
				}
				index[d.key()] = len(all)
				all = append(all, d)
			}
		}
		still := map[diffKey]bool{}
		for _, d := range last.diffs {
			still[d.key()] = true
		}
		rep.Counts[Matched] += last.matched
		for _, d := range all {
			d.Merchant = rep.Merchant
			switch {
			case !still[d.key()]:
				d.Resolution = Applied
			case d.fix == fixNone:
				d.Resolution = NeedsReview
			case !apply:
				d.Resolution = None
			default:
				d.Resolution = NeedsReview
				why := failures[d.key()]
				if why == "" {
					why = "the correction from Toss's truth left it as it was"
				}
				d.Detail += "; " + why
			}
			rep.Counts[d.Category]++
			if d.Resolution == Applied {
				rep.Applied++
			} else {
				rep.Unresolved++
			}
			rep.Differences = append(rep.Differences, d)
		}
	}
}
