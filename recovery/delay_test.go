package recovery

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Interval != 30*time.Second || c.StaleAfter != time.Minute || c.MaxAttempts != 10 || c.Workers != 4 ||
		c.BatchSize != 64 || c.Lease != 10*time.Second || c.BaseDelay != time.Minute || c.MaxDelay != 6*time.Hour ||
		c.Breaker.Failures != 5 || c.Breaker.OpenFor != 30*time.Second || c.InstanceID == "" {
		t.Fatalf("defaults %+v", c)
	}
	if d := (Config{}).withDefaults().InstanceID; d == c.InstanceID {
		t.Fatalf("two default instance ids are equal: %s", d)
	}
}

func TestDelayIsTheSharedBackoffBetweenBaseAndMax(t *testing.T) {
	cfg := Config{BaseDelay: time.Minute, MaxDelay: 6 * time.Hour}.withDefaults()
	for attempts, full := range map[int]time.Duration{1: time.Minute, 3: 4 * time.Minute, 10: 6 * time.Hour} {
		if d := cfg.delay(attempts); d < full/2 || d > full {
			t.Errorf("attempt %d: delay %s, want within [%s, %s]", attempts, d, full/2, full)
		}
	}
}
