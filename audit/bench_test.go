package audit_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/paymentledger/ledger/audit"
)

var (
	benchPayments = flag.Int("audit.payments", 100_000, "payments (4 events each) BenchmarkAudit fills the database with")
	benchReplay   = flag.Bool("audit.replay", true, "BenchmarkAudit compares the read models with a replay, as paymentctl audit does without --skip-replay")
)

// BenchmarkAudit measures a whole audit of a database of -audit.payments settled payments (4
// events each: checkout, confirm, approval, settlement), appended through the event store by
// concurrent appenders, with the read models built and the history sealed, including the
// projection drift check (a replay of every projection; -audit.replay=false leaves it out).
// Filling the database is not timed. Run with:
//
//	go test -run '^$' -bench Audit -benchtime 1x -timeout 60m ./audit/
func BenchmarkAudit(b *testing.B) {
	f := newFixture(b)
	start := time.Now()
	f.payBulk("bench", *benchPayments)
	b.Logf("appended %d payments in %s", *benchPayments, time.Since(start).Round(time.Second))
	start = time.Now()
	f.project()
	b.Logf("built the read models in %s", time.Since(start).Round(time.Second))
	start = time.Now()
	f.seal()
	b.Logf("sealed in %s", time.Since(start).Round(time.Millisecond))

	var rep audit.Report
	var historyDone time.Duration
	for b.Loop() {
		opts := audit.Options{PublicKey: f.pub, SealFile: f.file, Progress: func(p audit.Progress) {
			if p.Streams >= p.TotalStreams {
				historyDone = p.Elapsed
			}
		}}
		if *benchReplay {
			opts.Drift = audit.ReplayDrift{Pool: f.pool}
		}
		a := audit.New(f.pool, f.store, opts)
		var err error
		if rep, err = a.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if !rep.OK {
		b.Fatalf("the benchmark's history does not pass its audit:\n%s", describe(rep))
	}
	perAudit := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(rep.Events)/perAudit.Seconds(), "events/s")
	b.ReportMetric(perAudit.Seconds(), "s/audit")
	b.Logf("audit of %d streams, %d events: %s (the stream pass %s)", rep.Streams, rep.Events, perAudit.Round(time.Millisecond), historyDone.Round(time.Millisecond))
}
