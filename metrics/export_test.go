package metrics

import "time"

// SetDBTimeout shortens the database sample's deadline, so a test can see it expire quickly.
func SetDBTimeout(m *Metrics, d time.Duration) { m.db.timeout = d }
