package recovery

import (
	"testing"
	"time"
)

func TestDelayDoublesWithinEqualJitterAndIsCapped(t *testing.T) {
	cfg := Config{BaseDelay: time.Minute, MaxDelay: 6 * time.Hour}.withDefaults()
	low := func(int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		attempts int
		full     time.Duration
	}{
		{1, time.Minute},
		{2, 2 * time.Minute},
		{3, 4 * time.Minute},
		{9, 256 * time.Minute},
		{10, 6 * time.Hour}, // 512m capped
		{1000, 6 * time.Hour},
	} {
		if got, want := cfg.delay(tc.attempts, low), tc.full-tc.full/2; got != want {
			t.Errorf("attempt %d: lowest delay %s, want %s", tc.attempts, got, want)
		}
		if got := cfg.delay(tc.attempts, high); got != tc.full {
			t.Errorf("attempt %d: highest delay %s, want %s", tc.attempts, got, tc.full)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Interval != 30*time.Second || c.StaleAfter != time.Minute || c.MaxAttempts != 10 || c.Workers != 4 ||
		c.BatchSize != 64 || c.Lease != 2*time.Minute || c.BaseDelay != time.Minute || c.MaxDelay != 6*time.Hour ||
		c.Breaker.Failures != 5 || c.Breaker.OpenFor != 30*time.Second || c.InstanceID == "" {
		t.Fatalf("defaults %+v", c)
	}
	if d := (Config{}).withDefaults().InstanceID; d == c.InstanceID {
		t.Fatalf("two default instance ids are equal: %s", d)
	}
}
