// Package ratelimit holds keyed token-bucket limiters: one bucket per client address or API key,
// on golang.org/x/time/rate, with memory bounded by an LRU of buckets (hashicorp/golang-lru), so
// a flood of distinct keys cannot exhaust memory. A bucket evicted by that flood starts full
// again: the bound trades a little precision under attack for a process that stays up.
package ratelimit

import (
	"math"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the buckets a Keyed keeps.
const DefaultMaxKeys = 100_000

// Keyed limits events per key to perSecond on average with bursts of burst. It is safe for
// concurrent use.
type Keyed struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex // makes get-or-create atomic
	cache *lru.Cache[string, *rate.Limiter]
}

// New returns a Keyed limiter. maxKeys <= 0 means DefaultMaxKeys.
func New(perSecond float64, burst, maxKeys int) *Keyed {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	cache, err := lru.New[string, *rate.Limiter](maxKeys)
	if err != nil {
		panic(err) // only for a non-positive size, excluded above
	}
	return &Keyed{limit: rate.Limit(perSecond), burst: max(burst, 1), cache: cache}
}

func (k *Keyed) bucket(key string) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.cache.Get(key)
	if !ok {
		l = rate.NewLimiter(k.limit, k.burst)
		k.cache.Add(key, l)
	}
	return l
}

// Allow takes one token of key's bucket at now. When the bucket is empty it takes nothing and
// returns false with the wait until a token is back.
func (k *Keyed) Allow(key string, now time.Time) (bool, time.Duration) {
	r := k.bucket(key).ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Exhausted reports, without taking a token, whether key's bucket is empty at now, and the wait
// until a token is back. It suits failure counters: check before the attempt, take a token
// (Allow) only when the attempt fails.
func (k *Keyed) Exhausted(key string, now time.Time) (bool, time.Duration) {
	l := k.bucket(key)
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	if k.limit <= 0 {
		return true, time.Hour
	}
	return true, time.Duration((1 - tokens) / float64(k.limit) * float64(time.Second))
}

// RetryAfter formats a wait as the Retry-After header wants it: whole seconds, at least 1.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
