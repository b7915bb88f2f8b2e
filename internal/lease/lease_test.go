package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/internal/lease"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
)

var jobs = lease.Table{Name: "jobs", Key: "id", Holder: "leased_by", Until: "leased_until", Held: "NOT done"}

// newJobs returns a pool on a database of its own with one job row, "j1", not leased.
func newJobs(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if _, err := pool.Exec(context.Background(), `
		CREATE TABLE jobs (id text PRIMARY KEY, leased_by text, leased_until timestamptz NOT NULL DEFAULT '-infinity',
			done boolean NOT NULL DEFAULT false, result text);
		INSERT INTO jobs (id) VALUES ('j1')`); err != nil {
		t.Fatal(err)
	}
	return pool
}

// claim is a queue's own claim: the row if its lease has run out by now, for holder.
func claim(t *testing.T, pool *pgxpool.Pool, holder string, now time.Time, ttl time.Duration) (lease.Token, bool) {
	t.Helper()
	tok := lease.Token{Key: "j1", Holder: holder}
	err := pool.QueryRow(context.Background(), `
		UPDATE jobs SET leased_by = $1, leased_until = $2
		WHERE id = 'j1' AND NOT done AND leased_until < $3
		RETURNING leased_until`, holder, now.Add(ttl), now).Scan(&tok.Until)
	if errors.Is(err, pgx.ErrNoRows) {
		return lease.Token{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return tok, true
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func row(t *testing.T, pool *pgxpool.Pool) (holder *string, until time.Time, result *string) {
	t.Helper()
	if err := pool.QueryRow(context.Background(), `SELECT leased_by, leased_until, result FROM jobs WHERE id = 'j1'`).
		Scan(&holder, &until, &result); err != nil {
		t.Fatal(err)
	}
	return holder, until, result
}

func TestRenewalKeepsTheLeasePastItsTTLWhileWorkRuns(t *testing.T) {
	pool := newJobs(t)
	const ttl = 2 * time.Second
	q := lease.New(pool, jobs, ttl, time.Now)
	tok, ok := claim(t, pool, "a", time.Now(), ttl)
	if !ok {
		t.Fatal("first claim found nothing")
	}
	ctx, held, err := q.Keep(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Stop()

	// Well past the TTL of the claim, and of Keep's first renewal, the lease is still a's.
	firstEnd := held.Token().Until
	testenv.WaitFor(t, 20*time.Second, "the first lease has run out", func() bool { return time.Now().After(firstEnd.Add(ttl / 2)) })
	if _, ok := claim(t, pool, "b", time.Now(), ttl); ok {
		t.Fatal("another holder claimed a lease that is being renewed")
	}
	if ctx.Err() != nil {
		t.Fatalf("work canceled: %v", context.Cause(ctx))
	}
	if h, until, _ := row(t, pool); h == nil || *h != "a" || !until.After(firstEnd) {
		t.Fatalf("row held by %v until %s, want a after %s", h, until, firstEnd)
	}
	if err := held.End(context.Background(), "done = true, result = $4", "a's"); err != nil {
		t.Fatalf("end: %v", err)
	}
	if h, _, res := row(t, pool); h != nil || res == nil || *res != "a's" {
		t.Fatalf("after end: holder %v, result %v; want none and a's", h, res)
	}
}

func TestLostLeaseCancelsTheWork(t *testing.T) {
	pool := newJobs(t)
	const ttl = 600 * time.Millisecond
	q := lease.New(pool, jobs, ttl, nil) // the database's clock
	tok, ok := claim(t, pool, "a", time.Now(), ttl)
	if !ok {
		t.Fatal("first claim found nothing")
	}
	ctx, held, err := q.Keep(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Stop()
	// Another holder takes the row over (as after a's lease ran out unrenewed).
	if _, err := pool.Exec(context.Background(), `UPDATE jobs SET leased_by = 'b', leased_until = now() + interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the work's context was not canceled after the lease was lost")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, lease.ErrLost) {
		t.Fatalf("cause %v, want ErrLost", cause)
	}
	if err := held.End(context.Background(), "result = $4", "a's"); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("end after losing the lease: %v, want ErrLost", err)
	}
}

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestEndAfterATakeoverFailsAndWritesNothing(t *testing.T) {
	pool := newJobs(t)
	clk := &clock{t: time.Now()}
	const ttl = 10 * time.Second
	qa := lease.New(pool, jobs, ttl, clk.Now)
	a, ok := claim(t, pool, "a", clk.Now(), ttl)
	if !ok {
		t.Fatal("first claim found nothing")
	}
	// a stalls past its lease without renewing; b claims the row.
	clk.Add(ttl + time.Second)
	b, ok := claim(t, pool, "b", clk.Now(), ttl)
	if !ok {
		t.Fatal("b could not claim a lease that had run out")
	}
	if err := qa.End(context.Background(), a, "done = true, result = $4", "a's"); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a's end: %v, want ErrLost", err)
	}
	if _, err := qa.Renew(context.Background(), a); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a's renewal: %v, want ErrLost", err)
	}
	if h, until, res := row(t, pool); h == nil || *h != "b" || !until.Equal(b.Until) || res != nil {
		t.Fatalf("row %v until %s result %v; want b's lease untouched", h, until, res)
	}
	if err := qa.End(context.Background(), b, "done = true, result = $4", "b's"); err != nil {
		t.Fatalf("b's end: %v", err)
	}
	// Done rows are no longer held (Table.Held), whoever holds the token.
	if err := qa.End(context.Background(), b, "result = $4", "again"); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("end of a finished row: %v, want ErrLost", err)
	}
}

func TestAbandonedLeaseIsClaimableAfterItsTTL(t *testing.T) {
	pool := newJobs(t)
	const ttl = time.Second
	q := lease.New(pool, jobs, ttl, time.Now)
	a, ok := claim(t, pool, "a", time.Now(), ttl)
	if !ok {
		t.Fatal("first claim found nothing")
	}
	_, held, err := q.Keep(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	// a's process dies: renewal stops and nothing gives the row back.
	last := held.Stop()
	if _, ok := claim(t, pool, "b", time.Now(), ttl); ok && time.Now().Before(last.Until) {
		t.Fatal("b claimed the row before a's lease ran out")
	}
	var b lease.Token
	testenv.WaitFor(t, 20*time.Second, "b claims the abandoned row", func() bool {
		b, ok = claim(t, pool, "b", time.Now(), ttl)
		return ok
	})
	if h, _, _ := row(t, pool); h == nil || *h != "b" {
		t.Fatalf("row held by %v, want b", h)
	}
	if err := q.End(context.Background(), b, "done = true, result = $4", "b's"); err != nil {
		t.Fatalf("b's end: %v", err)
	}
}

func TestBackoffDoublesWithinEqualJitterAndIsCapped(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		full     time.Duration
	}{
		{0, time.Minute},
		{1, time.Minute},
		{2, 2 * time.Minute},
		{3, 4 * time.Minute},
		{9, 256 * time.Minute},
		{10, 6 * time.Hour}, // 512m capped
		{1000, 6 * time.Hour},
	} {
		for range 200 {
			got := lease.Backoff(time.Minute, 6*time.Hour, tc.attempts)
			if got < tc.full-tc.full/2 || got > tc.full {
				t.Fatalf("attempt %d: delay %s, want within [%s, %s]", tc.attempts, got, tc.full-tc.full/2, tc.full)
			}
		}
	}
}

// EndAll ends several leases in one round trip and says, per row, whether it was still held.
func TestEndAllReportsEachRow(t *testing.T) {
	pool := newJobs(t)
	ctx := context.Background()
	now := time.Now()
	if _, err := pool.Exec(ctx, `INSERT INTO jobs (id, leased_by, leased_until) VALUES ('j2', 'a', $1), ('j3', 'b', $1)`, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var until time.Time
	if err := pool.QueryRow(ctx, `SELECT leased_until FROM jobs WHERE id = 'j2'`).Scan(&until); err != nil {
		t.Fatal(err)
	}
	q := lease.New(pool, jobs, time.Minute, nil)
	errs := q.EndAll(ctx, []lease.Token{{Key: "j2", Holder: "a", Until: until}, {Key: "j3", Holder: "a", Until: until}},
		`result = $4`, "released")
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], lease.ErrLost) {
		t.Fatalf("EndAll: %v; want nil for j2 (held by a), ErrLost for j3 (held by b)", errs)
	}
	var j2, j3 *string
	if err := pool.QueryRow(ctx, `SELECT (SELECT result FROM jobs WHERE id = 'j2' AND leased_by IS NULL), (SELECT result FROM jobs WHERE id = 'j3')`).Scan(&j2, &j3); err != nil {
		t.Fatal(err)
	}
	if j2 == nil || *j2 != "released" || j3 != nil {
		t.Fatalf("j2 %v, j3 %v: want j2 released and unheld, j3 untouched", j2, j3)
	}
}
