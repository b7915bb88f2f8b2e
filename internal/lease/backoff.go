package lease

import (
	"time"

	"github.com/sethvargo/go-retry"
)

// Backoff is how long a row waits after its attempts-th unsuccessful attempt (attempts ≥ 1):
// base doubled per attempt up to maxDelay (go-retry's capped exponential), with "equal jitter": at
// least half of it, at most all of it. The fixed half keeps the delay growing whatever the dice
// say; the random half spreads out rows that failed together (Toss was down) so that they do
// not all come due at once. Queues store now+Backoff as the row's next attempt.
func Backoff(base, maxDelay time.Duration, attempts int) time.Duration {
	if base <= 0 {
		return 0
	}
	b := retry.WithCappedDuration(maxDelay, retry.NewExponential(base))
	var d time.Duration
	for i := 0; i < max(attempts, 1); i++ {
		if d, _ = b.Next(); d >= maxDelay {
			break // capped: later attempts wait as long
		}
	}
	half := d / 2
	jitter, _ := retry.WithFullJitter(retry.NewConstant(half + 1)).Next() // in [0, half]
	return d - half + jitter
}
