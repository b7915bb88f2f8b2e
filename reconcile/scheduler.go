package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/db"
)

// SchedulerConfig sets when paymentd reconciles.
type SchedulerConfig struct {
	// At is the KST time of day ("HH:MM") of the daily run. Default "07:00": after the
	// settlement import (06:00 by default), so the rows it recorded are not reported missing.
	At string
	// Days is the window of each run: the Days days before today (today − Days through
	// yesterday). Default 3, so a day whose run failed, or whose webhook came late, is compared
	// again on the next runs.
	Days int
	// Apply books what Toss's truth settles, as paymentctl reconcile --apply does.
	Apply bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Scheduler runs a reconciliation of every merchant with a Toss key once a day at At (KST),
// each merchant with its own Toss client, under a PostgreSQL session advisory lock: a run that
// finds the lock taken is skipped, since another instance is reconciling the same window. Every
// run's summary is kept (reconciliation_runs). Unlike the settlement import it does not run at
// start: a restart must not cost Toss a full window's listing, and the next daily run covers the
// days it missed.
type Scheduler struct {
	pool         *pgxpool.Pool
	engine       Runner
	merchants    func(ctx context.Context) ([]domain.MerchantID, error)
	hour, minute int
	days         int
	apply        bool
	now          func() time.Time
	after        func(time.Duration) <-chan time.Time // tests replace the timer
	logger       *slog.Logger
}

// Runner runs one merchant's reconciliation; *Engine is the one paymentd uses.
type Runner interface {
	Run(ctx context.Context, req Request) (Report, error)
}

var _ Runner = (*Engine)(nil)

// NewScheduler returns a Scheduler reconciling, with engine, the merchants merchants lists.
// logger may be nil. An invalid At or Days is an error.
func NewScheduler(pool *pgxpool.Pool, engine Runner, merchants func(ctx context.Context) ([]domain.MerchantID, error), cfg SchedulerConfig, logger *slog.Logger) (*Scheduler, error) {
	if cfg.At == "" {
		cfg.At = "07:00"
	}
	at, err := time.Parse("15:04", cfg.At)
	if err != nil {
		return nil, fmt.Errorf("reconcile: run time %q is not HH:MM: %w", cfg.At, err)
	}
	switch {
	case cfg.Days == 0:
		cfg.Days = 3
	case cfg.Days < 0 || cfg.Days > MaxDays:
		return nil, fmt.Errorf("reconcile: a window of %d days is not between 1 and %d", cfg.Days, MaxDays)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{pool: pool, engine: engine, merchants: merchants, hour: at.Hour(), minute: at.Minute(), days: cfg.Days,
		apply: cfg.Apply, now: cfg.Now, after: time.After, logger: logger}, nil
}

// Run reconciles every day at At until ctx is done, and returns nil then. A failed run is logged
// (and its summary kept) and left to the next day's window; it never stops Run.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		now := s.now()
		next := domain.NextKST(now, s.hour, s.minute)
		s.logger.Debug("next reconciliation", "at", next)
		select {
		case <-ctx.Done():
			return nil
		case <-s.after(next.Sub(now)):
		}
		today := s.now().In(domain.KST)
		_, _, _ = s.runLocked(ctx, today.AddDate(0, 0, -s.days).Format(time.DateOnly), today.AddDate(0, 0, -1).Format(time.DateOnly))
	}
}

// runLocked reconciles every merchant over from..to under the advisory lock. It reports whether
// it ran (false: another instance holds the lock), the reports of the merchants it reconciled,
// and their errors joined.
func (s *Scheduler) runLocked(ctx context.Context, from, to string) (ran bool, reports []Report, err error) {
	log := s.logger.With("from", from, "to", to)
	defer func() {
		if err != nil && ctx.Err() == nil {
			log.Error("reconciliation failed", "error", err)
		}
	}()
	ran, err = db.TryLocked(ctx, s.pool, db.LockReconciliation, func(*pgxpool.Conn) error {
		ids, err := s.merchants(ctx)
		if err != nil {
			return fmt.Errorf("reconciliation: merchants: %w", err)
		}
		log.Info("reconciliation started", "merchants", len(ids))
		var errs []error
		for _, id := range ids {
			rep, err := s.engine.Run(ctx, Request{Merchant: id, From: from, To: to, Apply: s.apply, Trigger: TriggerDaily})
			reports = append(reports, rep)
			if err != nil {
				errs = append(errs, fmt.Errorf("merchant %s: %w", id, err))
			}
			if ctx.Err() != nil {
				break
			}
		}
		return errors.Join(errs...)
	})
	if !ran && err == nil {
		log.Info("reconciliation skipped: another instance is reconciling")
	}
	return ran, reports, err
}
