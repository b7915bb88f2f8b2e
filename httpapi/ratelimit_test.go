package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/merchants"
)

// limiterClock is the limiters' clock: it moves only when the test says, so a bucket refills
// exactly when the test expects and never in between.
type limiterClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *limiterClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *limiterClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newLimitedEnv(t *testing.T, keyBurst, failuresPerMinute int) (*authzFixture, *limiterClock) {
	clock := &limiterClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	env := testenv.New(t, testenv.Options{Auth: &httpapi.AuthConfig{
		AdminToken: testenv.AdminToken, KeyRate: 1, KeyBurst: keyBurst, FailuresPerMinute: failuresPerMinute, Now: clock.Now,
	}})
	a := &tenant{id: testenv.Merchant, key: env.APIKey, seller: "seller-a", total: "25000", orders: map[string]bool{}}
	return &authzFixture{env: env, a: a}, clock
}

// retryAfter checks a 429 RATE_LIMITED answer and returns its Retry-After.
func retryAfter(t *testing.T, res apiResponse) time.Duration {
	t.Helper()
	secs, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("429 with Retry-After %q, want whole seconds ≥ 1", res.header.Get("Retry-After"))
	}
	return time.Duration(secs) * time.Second
}

func TestAKeyOverItsBurstIsLimitedAlone(t *testing.T) {
	const burst = 3
	f, clock := newLimitedEnv(t, burst, 100)
	other, err := f.env.Merchants.IssueKey(context.Background(), f.a.id, nil, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	list := apiRequest{method: "GET", path: "/api/v1/payments"}
	for i := range burst {
		if res := f.do(t, list, bearer(f.a.key)); res.status != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i+1, res.status, res.body)
		}
	}
	// The request past the burst would write a payment: refused before the handler runs.
	checkout := apiRequest{"POST", "/api/v1/payments/checkout", f.a.checkoutBody(), []string{"Idempotency-Key", "over-the-burst"}}
	wait := retryAfter(t, f.refused(t, checkout, bearer(f.a.key), http.StatusTooManyRequests, "RATE_LIMITED"))
	if wait != time.Second {
		t.Fatalf("Retry-After %s, want 1s at one request per second", wait)
	}
	if res := f.do(t, list, basic(other.APIKey)); res.status != http.StatusOK {
		t.Fatalf("another key of the same merchant, same address: %d %s", res.status, res.body)
	}
	clock.advance(wait - time.Millisecond)
	f.refused(t, checkout, bearer(f.a.key), http.StatusTooManyRequests, "RATE_LIMITED")
	clock.advance(time.Millisecond)
	if res := f.do(t, checkout, bearer(f.a.key)); res.status != http.StatusCreated {
		t.Fatalf("after Retry-After: %d %s", res.status, res.body)
	}
}

func TestFailedAuthenticationsBlockTheAddress(t *testing.T) {
	const failures = 3
	f, clock := newLimitedEnv(t, 100, failures)
	checkout := apiRequest{"POST", "/api/v1/payments/checkout", f.a.checkoutBody(), []string{"Idempotency-Key", "after-failures"}}
	// Three kinds of failure, one each: no key, a malformed key, a well-formed key never issued.
	for _, auth := range []string{"", bearer("sk_test_guess"), basic("sk_test_" + flip(f.a.key[8]) + f.a.key[9:])}[:failures] {
		f.refused(t, checkout, auth, http.StatusUnauthorized, "UNAUTHORIZED")
	}
	// The address has used its failures: a valid key and the admin token are refused alike, and
	// nothing is written, until a token is back.
	wait := retryAfter(t, f.refused(t, checkout, bearer(f.a.key), http.StatusTooManyRequests, "RATE_LIMITED"))
	if wait > time.Minute {
		t.Fatalf("Retry-After %s, want at most a minute at %d failures a minute", wait, failures)
	}
	admin := apiRequest{method: "POST", path: "/admin/v1/merchants", body: `{"name":"Shop D","merchantId":"merchant-d"}`}
	f.refused(t, admin, bearer(testenv.AdminToken), http.StatusTooManyRequests, "RATE_LIMITED")
	if res := f.do(t, apiRequest{method: "GET", path: "/healthz"}, ""); res.status != http.StatusOK {
		t.Fatalf("health checks are not limited: %d %s", res.status, res.body)
	}
	clock.advance(wait - time.Second)
	f.refused(t, checkout, bearer(f.a.key), http.StatusTooManyRequests, "RATE_LIMITED")
	clock.advance(time.Second)
	if res := f.do(t, checkout, bearer(f.a.key)); res.status != http.StatusCreated {
		t.Fatalf("after Retry-After: %d %s", res.status, res.body)
	}
}
