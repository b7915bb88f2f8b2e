package reconcile

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/pgtest"
)

// fakeRunner reports every request on a channel.
type fakeRunner struct{ calls chan Request }

func (f fakeRunner) Run(_ context.Context, req Request) (Report, error) {
	f.calls <- req
	return Report{Merchant: req.Merchant, From: req.From, To: req.To}, nil
}

func twoMerchants(context.Context) ([]domain.MerchantID, error) {
	return []domain.MerchantID{"shop-a", "shop-b"}, nil
}

func TestNewSchedulerRefusesBadSettings(t *testing.T) {
	for _, cfg := range []SchedulerConfig{{At: "7"}, {At: "25:00"}, {Days: -1}, {Days: MaxDays + 1}} {
		if _, err := NewScheduler(nil, nil, twoMerchants, cfg, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// Each day at At (KST) every merchant is reconciled over the Days days up to yesterday, applying
// as configured; nothing runs at start.
func TestSchedulerRunsDaily(t *testing.T) {
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC) // 08:30 KST on the 21st
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	runner := fakeRunner{calls: make(chan Request, 4)}
	s, err := NewScheduler(pool, runner, twoMerchants, SchedulerConfig{Apply: true, Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fire := make(chan time.Time)
	waits := make(chan time.Duration, 4)
	s.after = func(d time.Duration) <-chan time.Time { waits <- d; return fire }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	if d := <-waits; d != 22*time.Hour+30*time.Minute {
		t.Fatalf("first wait %s, want until 07:00 KST on the 22nd (no run at start)", d)
	}
	mu.Lock()
	now = time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC) // 07:00 KST on the 22nd
	mu.Unlock()
	fire <- now
	for _, m := range []domain.MerchantID{"shop-a", "shop-b"} {
		req := <-runner.calls
		if req.Merchant != m || req.From != "2026-11-19" || req.To != "2026-11-21" || !req.Apply || req.Trigger != TriggerDaily {
			t.Fatalf("request %+v, want %s over the 3 days up to yesterday (KST), applying, daily", req, m)
		}
	}
	if d := <-waits; d != 24*time.Hour {
		t.Fatalf("second wait %s", d)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}

func TestSchedulerSkipsWhileAnotherInstanceReconciles(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	runner := fakeRunner{calls: make(chan Request, 4)}
	newS := func() *Scheduler {
		s, err := NewScheduler(pool, runner, twoMerchants, SchedulerConfig{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newS(), newS()
	other, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, db.LockReconciliation); err != nil {
		t.Fatal(err)
	}
	if ran, _, err := a.runLocked(ctx, "2026-11-21", "2026-11-21"); ran || err != nil || len(runner.calls) != 0 {
		t.Fatalf("with the lock taken: ran %v err %v, %d runs; want a skip", ran, err, len(runner.calls))
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, db.LockReconciliation); err != nil {
		t.Fatal(err)
	}
	// Free again: each runs in turn and releases the lock for the next.
	for _, s := range []*Scheduler{a, b} {
		if ran, reports, err := s.runLocked(ctx, "2026-11-21", "2026-11-21"); !ran || err != nil || len(reports) != 2 {
			t.Fatalf("free lock: ran %v err %v, %d reports", ran, err, len(reports))
		}
		<-runner.calls
		<-runner.calls
	}
}
