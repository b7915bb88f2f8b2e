package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Scheduler seals the history every interval: paymentd runs one when AUDIT_SIGNING_KEY is set.
// Every instance may run one: the seal lock makes one seal at a time, and a seal is made only
// when the last one (by any instance) is at least half an interval old and the log has moved
// since, so several instances together still seal about once per interval.
type Scheduler struct {
	sealer   *Sealer
	interval time.Duration
	logger   *slog.Logger
	after    func(time.Duration) <-chan time.Time // tests replace the timer
}

// NewScheduler returns a scheduler sealing with sealer every interval (> 0). logger may be nil.
func NewScheduler(sealer *Sealer, interval time.Duration, logger *slog.Logger) (*Scheduler, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("audit: seal interval %s is not positive", interval)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{sealer: sealer, interval: interval, logger: logger, after: time.After}, nil
}

// Run seals at once (when due) and then every interval, until ctx is done; it returns nil
// then. A failed seal is logged and left to the next interval: it never stops Run.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		s.sealOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.after(s.interval):
		}
	}
}

func (s *Scheduler) sealOnce(ctx context.Context) {
	seal, made, err := s.sealer.SealIfDue(ctx, s.interval/2)
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, ErrSealing):
		s.logger.Info("seal skipped: another instance is sealing")
	case err != nil && made:
		s.logger.Error("seal stored, but the seal file was not written; the next seal writes it", "seq", seal.Seq, "error", err)
	case err != nil:
		s.logger.Error("seal failed", "error", err)
	case made:
		s.logger.Info("history sealed", "seq", seal.Seq, "position", seal.Position.String(),
			"streams", seal.Streams, "events", seal.Events, "root", fmt.Sprintf("%x", seal.Root))
	default:
		s.logger.Debug("seal not due: the last seal is recent, or nothing was appended since")
	}
}
