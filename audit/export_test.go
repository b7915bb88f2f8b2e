package audit

import (
	"context"
	"time"
)

// SetClock replaces the sealer's clock: a test moves time without waiting.
func SetClock(s *Sealer, now func() time.Time) { s.now = now }

// SealOnce runs one round of the scheduler, as Run does at start and at every interval.
func SealOnce(ctx context.Context, s *Scheduler) { s.sealOnce(ctx) }
