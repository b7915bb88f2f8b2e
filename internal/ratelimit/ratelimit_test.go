package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestKeyedBucketsAreIndependentAndRefill(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k := New(1, 3, 0) // 1/s, bursts of 3
	for i := range 3 {
		if ok, _ := k.Allow("a", now); !ok {
			t.Fatalf("token %d of the burst refused", i+1)
		}
	}
	ok, wait := k.Allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("the 4th at once: ok=%v wait=%s; want refused with a wait up to 1s", ok, wait)
	}
	if ok, _ := k.Allow("b", now); !ok {
		t.Fatal("another key has its own bucket")
	}
	if ok, _ := k.Allow("a", now.Add(wait)); !ok {
		t.Fatalf("a token is back after the announced wait %s", wait)
	}
}

func TestExhaustedDoesNotTakeTokens(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k := New(1.0/60, 2, 0) // 2 failures, then one a minute
	for range 5 {
		if ex, _ := k.Exhausted("ip", now); ex {
			t.Fatal("Exhausted must not take tokens")
		}
	}
	k.Allow("ip", now)
	k.Allow("ip", now)
	ex, wait := k.Exhausted("ip", now)
	if !ex || wait < 59*time.Second || wait > time.Minute {
		t.Fatalf("after 2 failures: exhausted=%v wait=%s", ex, wait)
	}
	if RetryAfter(wait) != "60" || RetryAfter(time.Millisecond) != "1" {
		t.Fatalf("RetryAfter %s / %s", RetryAfter(wait), RetryAfter(time.Millisecond))
	}
}

func TestMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k := New(1, 1, 10)
	for i := range 1000 {
		k.Allow(fmt.Sprint("key-", i), now)
	}
	if n := k.cache.Len(); n != 10 {
		t.Fatalf("%d buckets kept, want the bound 10", n)
	}
}
