package projections_test

import (
	"context"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/projections"
)

// BenchmarkReplay replays every projection over a generated history (see history) of
// REPLAY_BENCH_PAYMENTS payments (default 100,000: about 540,000 events) and reports events/s:
// every event read once and folded into the three read models, every row loaded into the
// shadow schemas. Each iteration is one whole replay; its shadows are dropped outside the
// timing. Two cases:
//
//   - compare: the shadow Compare needs (keys and lookup indexes): what paymentctl replay and
//     an audit build;
//   - complete: every index, foreign key and trigger of the live tables and the checks: what
//     paymentctl replay --swap builds before it swaps.
//
// It runs with the garbage collector setting paymentctl replay uses (ReplayGCPercent, unless
// GOGC is set). Run it without -race:
//
//	go test -run '^$' -bench BenchmarkReplay -benchtime 3x ./projections/
func BenchmarkReplay(b *testing.B) {
	ctx := context.Background()
	pool, events := benchHistory(b)

	for _, complete := range []bool{false, true} {
		name := "compare"
		if complete {
			name = "complete"
		}
		b.Run(name, func(b *testing.B) {
			var read, total time.Duration
			phases := map[projections.ReplayPhase]time.Duration{}
			for b.Loop() {
				phaseStart, last := time.Now(), projections.ReplayPhase("")
				res, err := projections.Replay(ctx, pool, nil, projections.ReplayOptions{Complete: complete, Progress: func(p projections.ReplayProgress) {
					if p.Phase != last {
						phases[last] += time.Since(phaseStart)
						phaseStart, last = time.Now(), p.Phase
					}
				}})
				phases[last] += time.Since(phaseStart)
				if err != nil {
					b.Fatal(err)
				}
				if res.Events != int64(events) {
					b.Fatalf("replayed %d events of %d", res.Events, events)
				}
				read += res.Read
				total += res.Elapsed
				b.StopTimer()
				for _, sh := range res.Shadows {
					if err := projections.DropShadow(ctx, pool, sh.Schema); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(events)*float64(b.N)/total.Seconds(), "events/s")
			b.Logf("per replay: start %s, read and fold (append-only rows loading meanwhile) %s, load the rest %s, indexes and constraints %s",
				(phases[""] / time.Duration(b.N)).Round(time.Millisecond), (phases[projections.PhaseRead] / time.Duration(b.N)).Round(time.Millisecond),
				(phases[projections.PhaseLoad] / time.Duration(b.N)).Round(time.Millisecond), (phases[projections.PhaseFinish] / time.Duration(b.N)).Round(time.Millisecond))
		})
	}
}

// BenchmarkVerify measures the projection drift check of an audit (Verify: replay every
// projection, compare each shadow with its live read model row by row, drop the shadows) over
// the same generated history, with live read models equal to it (built by a replay and a
// swap, untimed). Run it without -race:
//
//	go test -run '^$' -bench BenchmarkVerify -benchtime 2x ./projections/
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	pool, events := benchHistory(b)
	res, err := projections.Replay(ctx, pool, nil, projections.ReplayOptions{Complete: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, sh := range res.Shadows {
		if _, err := projections.Swap(ctx, pool, sh.Schema); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		comparisons, err := projections.Verify(ctx, pool, nil, projections.VerifyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range comparisons {
			if c.Differing() != 0 {
				b.Fatalf("%s: %d rows differ from a replay of the same log", c.Projection, c.Differing())
			}
		}
	}
	perRun := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(events)/perRun.Seconds(), "events/s")
	b.Logf("%d events: %s per check (replay, compare, drop)", events, perRun.Round(time.Millisecond))
}

// benchHistory writes the benchmarks' history (REPLAY_BENCH_PAYMENTS payments, default
// 100,000) into a new database, readable below the xmin horizon, and sets the garbage collector
// as paymentctl replay does (ReplayGCPercent, unless GOGC is set) until the benchmark ends.
func benchHistory(b *testing.B) (*pgxpool.Pool, int) {
	payments := 100000
	if s := os.Getenv("REPLAY_BENCH_PAYMENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("REPLAY_BENCH_PAYMENTS: %v", err)
		}
		payments = n
	}
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(projections.ReplayGCPercent)
		b.Cleanup(func() { debug.SetGCPercent(old) })
	}
	pool := pgtest.NewPool(b)
	start := time.Now()
	events := bulkAppend(b, pool, history(7, payments))
	if _, err := pool.Exec(context.Background(), `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	waitReadable(b, pool, eventstore.NewPostgres(pool))
	b.Logf("history: %d payments, %d events, written in %s", payments, events, time.Since(start).Round(time.Millisecond))
	return pool, events
}
