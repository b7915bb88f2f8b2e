package eventstore_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/eventstore/eventstoretest"
)

// Run with: go test -run '^$' -bench Append -benchtime 3s ./eventstore/
// Each benchmark reports events/s: what one PostgreSQL primary can take through this store.

func reportEventsPerSecond(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend: one event per append, a new stream each time, one caller.
func BenchmarkAppend(b *testing.B) {
	s, _ := newPostgres(b)
	ctx := b.Context()
	var n int64
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i), eventstore.NoStream, eventstoretest.NewEvents(1)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportEventsPerSecond(b, n)
}

// BenchmarkAppendParallel: one event per append, a new stream each time, 8×GOMAXPROCS callers
// (the pool has as many connections, so the database, not the pool, is measured).
func BenchmarkAppendParallel(b *testing.B) {
	const perProc = 8
	s, _ := newPostgresWithConns(b, int32(perProc*runtime.GOMAXPROCS(0)))
	ctx := b.Context()
	var stream atomic.Int64
	b.SetParallelism(perProc)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := stream.Add(1)
			if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", id), eventstore.NoStream, eventstoretest.NewEvents(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportEventsPerSecond(b, stream.Load())
}

// BenchmarkAppendBatch10: ten events per append, a new stream each time, one caller.
func BenchmarkAppendBatch10(b *testing.B) {
	s, _ := newPostgres(b)
	ctx := b.Context()
	var n int64
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i), eventstore.NoStream, eventstoretest.NewEvents(10)); err != nil {
			b.Fatal(err)
		}
		n += 10
	}
	reportEventsPerSecond(b, n)
}
