package eventstore

import "time"

// SetSafetyInterval changes how long a Postgres subscriber with nothing pending waits without a
// notification. Tests make it long to prove that wake-ups come from notifications. Call it
// before subscribing.
func SetSafetyInterval(p *Postgres, d time.Duration) { p.safetyInterval = d }
