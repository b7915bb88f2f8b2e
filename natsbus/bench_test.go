package natsbus_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/natsbus/natstest"
)

// BenchmarkRelay measures sustained relay throughput: each iteration publishes the whole log
// (RELAY_BENCH_PAYMENTS payments × 3 events, default 10,000 × 3) from the start into a fresh
// PAYMENTS stream on an in-process nats-server with file storage, and reports events/s, per
// in-flight limit. Run: go test -run '^$' -bench Relay -benchtime 2x ./natsbus/
func BenchmarkRelay(b *testing.B) {
	payments := 10_000
	if s := os.Getenv("RELAY_BENCH_PAYMENTS"); s != "" {
		payments, _ = strconv.Atoi(s)
	}
	pool := pgtest.NewPool(b)
	store := eventstore.NewPostgres(pool)
	var g errgroup.Group
	g.SetLimit(4)
	for n := range payments {
		g.Go(func() error { appendPayment(b, store, domain.MerchantID(fmt.Sprintf("m%d", n%4)), n); return nil })
	}
	_ = g.Wait()
	// Readers stop at the oldest transaction running on the server; wait for all to be readable.
	var events []eventstore.RecordedEvent
	testenv.WaitFor(b, 30*time.Second, "every event readable", func() bool {
		var err error
		events, err = store.ReadAll(context.Background(), eventstore.Start, 3*payments+1)
		return err == nil && len(events) == 3*payments
	})
	last := events[len(events)-1].Position.String()
	srv := natstest.Start(b)
	bus := openBus(b, srv.URL())

	for _, inFlight := range []int{64, 256, 1024} {
		b.Run(fmt.Sprintf("inFlight=%d", inFlight), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				ctx := context.Background()
				_ = bus.JS.DeleteStream(ctx, natsbus.StreamPayments)
				if err := natsbus.EnsurePaymentsStream(ctx, bus.JS, natsbus.Config{}); err != nil {
					b.Fatal(err)
				}
				if _, err := pool.Exec(ctx, `DELETE FROM relay_checkpoints`); err != nil {
					b.Fatal(err)
				}
				relay, err := natsbus.NewRelay(pool, store, bus.Conn, natsbus.RelayConfig{MaxInFlight: inFlight}, nil)
				if err != nil {
					b.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				b.StartTimer()
				start := time.Now()
				go func() { defer close(done); _ = relay.Run(rctx) }()
				for {
					var pos string
					_ = pool.QueryRow(ctx, `SELECT position FROM relay_checkpoints WHERE name = 'nats'`).Scan(&pos)
					if pos == last {
						break
					}
					time.Sleep(2 * time.Millisecond) // polling the checkpoint; not part of what is measured
				}
				total += time.Since(start)
				b.StopTimer()
				cancel()
				<-done
				if n := msgCount(b, bus.JS); n != uint64(len(events)) {
					b.Fatalf("stream holds %d messages, want %d", n, len(events))
				}
			}
			b.ReportMetric(float64(len(events)*b.N)/total.Seconds(), "events/s")
		})
	}
}
