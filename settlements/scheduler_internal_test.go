package settlements

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/pgtest"
)

type importCall struct{ from, to string }

// fakeImporter reports every call on a channel.
type fakeImporter struct{ calls chan importCall }

func (f fakeImporter) Import(_ context.Context, from, to string, _ func(Progress)) (Summary, error) {
	f.calls <- importCall{from, to}
	return Summary{From: from, To: to}, nil
}

func TestNewSchedulerRejectsABadTime(t *testing.T) {
	for _, at := range []string{"6", "25:00", "06:60", "six"} {
		if _, err := NewScheduler(nil, nil, SchedulerConfig{At: at}, nil); err == nil {
			t.Errorf("At %q accepted", at)
		}
	}
}

func TestSchedulerCatchesUpThenRunsDaily(t *testing.T) {
	pool := pgtest.NewPool(t)
	// 23:30 UTC on the 20th is 08:30 KST on the 21st: "today" is the 21st in Korea.
	now := time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := NewScheduler(pool, nil, SchedulerConfig{At: "06:00", Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	imp := fakeImporter{calls: make(chan importCall, 4)}
	s.imp = imp
	fire := make(chan time.Time)
	waits := make(chan time.Duration, 4)
	s.after = func(d time.Duration) <-chan time.Time { waits <- d; return fire }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	if c := <-imp.calls; c != (importCall{"2026-11-18", "2026-11-20"}) {
		t.Fatalf("catch-up %+v, want the 3 days before the KST day", c)
	}
	if d := <-waits; d != 21*time.Hour+30*time.Minute {
		t.Fatalf("first wait %s, want until 06:00 KST on the 22nd", d)
	}
	mu.Lock()
	now = time.Date(2026, 11, 21, 21, 0, 0, 0, time.UTC) // 06:00 KST on the 22nd
	mu.Unlock()
	fire <- now
	if c := <-imp.calls; c != (importCall{"2026-11-19", "2026-11-21"}) {
		t.Fatalf("daily import %+v, want the 3 days up to yesterday (KST): a failed day is tried again", c)
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

func TestSchedulerSkipsWhileAnotherInstanceImports(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	imp := fakeImporter{calls: make(chan importCall, 4)}
	newS := func() *Scheduler {
		s, err := NewScheduler(pool, nil, SchedulerConfig{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.imp = imp
		return s
	}
	a, b := newS(), newS()

	// Another instance holds the lock on its own connection.
	other, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, db.LockSettlementImport); err != nil {
		t.Fatal(err)
	}
	if ran, _, err := a.runLocked(ctx, "2026-11-21", "2026-11-21"); ran || err != nil {
		t.Fatalf("with the lock taken: ran %v err %v, want a skip", ran, err)
	}
	if len(imp.calls) != 0 {
		t.Fatal("imported without the lock")
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, db.LockSettlementImport); err != nil {
		t.Fatal(err)
	}
	// Free again: one runs, and releases the lock for the next.
	for _, s := range []*Scheduler{a, b} {
		if ran, _, err := s.runLocked(ctx, "2026-11-21", "2026-11-21"); !ran || err != nil {
			t.Fatalf("free lock: ran %v err %v", ran, err)
		}
		<-imp.calls
	}
}
