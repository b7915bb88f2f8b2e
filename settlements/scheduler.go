package settlements

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/db"
)

// SchedulerConfig sets when paymentd imports settlements.
type SchedulerConfig struct {
	// At is the KST time of day ("HH:MM") of the daily import. Default "06:00".
	At string
	// CatchUpDays is how many days before today every import covers (today − N through
	// yesterday), at start and daily, so days missed while no instance ran, or whose import
	// failed, are filled in. Default 3; negative turns the import at start off (the daily
	// import then covers yesterday only).
	CatchUpDays int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Job is what the Scheduler runs: an Importer for one merchant, AllMerchants for all.
type Job interface {
	Import(ctx context.Context, from, to string, progress func(Progress)) (Summary, error)
}

// Scheduler runs the settlement import once at start and then every day at At (KST), each time
// for the last CatchUpDays days. Each run holds a PostgreSQL session advisory lock; a run
// that finds the lock taken by another instance is skipped, since that instance is importing
// the same report. Imports are idempotent, so overlapping ranges are harmless.
type Scheduler struct {
	pool         *pgxpool.Pool
	imp          Job
	hour, minute int
	catchUp      int
	now          func() time.Time
	after        func(time.Duration) <-chan time.Time // tests replace the timer
	logger       *slog.Logger
}

// NewScheduler returns a Scheduler. logger may be nil. An invalid At is an error.
func NewScheduler(pool *pgxpool.Pool, imp Job, cfg SchedulerConfig, logger *slog.Logger) (*Scheduler, error) {
	if cfg.At == "" {
		cfg.At = "06:00"
	}
	at, err := time.Parse("15:04", cfg.At)
	if err != nil {
		return nil, fmt.Errorf("settlements: import time %q is not HH:MM: %w", cfg.At, err)
	}
	if cfg.CatchUpDays == 0 {
		cfg.CatchUpDays = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		pool: pool, imp: imp, hour: at.Hour(), minute: at.Minute(), catchUp: cfg.CatchUpDays,
		now: cfg.Now, after: time.After, logger: logger,
	}, nil
}

// Run imports at start and then daily until ctx is done, and returns nil then. A failed import
// is logged and left to the next run (or the next start's catch-up); it never stops Run.
// Cancelling ctx stops an import between rows.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.catchUp > 0 {
		today := s.now().In(domain.KST)
		s.runLocked(ctx, day(today.AddDate(0, 0, -s.catchUp)), day(today.AddDate(0, 0, -1)))
	}
	for {
		now := s.now()
		next := domain.NextKST(now, s.hour, s.minute)
		s.logger.Debug("next settlement import", "at", next)
		select {
		case <-ctx.Done():
			return nil
		case <-s.after(next.Sub(now)):
		}
		// The daily run covers the whole window, not only yesterday: a day whose import failed
		// (Toss down at 06:00, a row refused because its payment was still unsettled here) is
		// tried again for CatchUpDays days. Imports are idempotent per transactionKey.
		today := s.now().In(domain.KST)
		s.runLocked(ctx, day(today.AddDate(0, 0, -max(s.catchUp, 1))), day(today.AddDate(0, 0, -1)))
	}
}

// runLocked imports from..to under the advisory lock. It reports whether it ran the import
// (false: another instance holds the lock, or the lock could not be taken).
func (s *Scheduler) runLocked(ctx context.Context, from, to string) (ran bool, sum Summary, err error) {
	log := s.logger.With("from", from, "to", to)
	defer func() {
		if err != nil && ctx.Err() == nil {
			log.Error("settlement import failed", "error", err)
		}
	}()
	ran, err = db.TryLocked(ctx, s.pool, db.LockSettlementImport, func(*pgxpool.Conn) error {
		log.Info("settlement import started")
		var err error
		sum, err = s.imp.Import(ctx, from, to, nil)
		return err
	})
	if !ran && err == nil {
		log.Info("settlement import skipped: another instance is importing")
	}
	return ran, sum, err
}

func day(t time.Time) string { return t.Format(time.DateOnly) }
