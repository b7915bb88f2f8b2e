package audit_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/projections"
)

const merchant domain.MerchantID = "shop"

// fixture is a fresh database with an event store, a seal key pair and a seal file.
type fixture struct {
	t     testing.TB
	pool  *pgxpool.Pool
	store *eventstore.Postgres
	priv  ed25519.PrivateKey
	pub   ed25519.PublicKey
	file  string
	at    time.Time // the events' clock
}

func newFixture(t testing.TB, opts ...eventstore.Option) *fixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	seed, pub, err := audit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t: t, pool: pool, store: eventstore.NewPostgres(pool, opts...),
		priv: ed25519.NewKeyFromSeed(seed), pub: pub,
		file: filepath.Join(t.TempDir(), "audit-seals.jsonl"),
		at:   time.Date(2026, 3, 2, 10, 0, 0, 0, domain.KST),
	}
	f.appendEvents(domain.MerchantStreamName(merchant), eventstore.NoStream, []domain.Event{
		domain.MerchantRegistered{MerchantHeader: domain.MerchantHeader{MerchantID: merchant, At: f.at}, Name: "Shop"},
	})
	return f
}

// eventData turns domain events into what the store appends.
func eventData(t testing.TB, events []domain.Event) []eventstore.EventData {
	t.Helper()
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = eventstore.EventData{
			ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: domain.SchemaVersion, Data: data,
			Metadata: eventstore.Metadata{MerchantID: string(e.Header().MerchantID), CorrelationID: uuid.New(), CausationID: uuid.New(), Actor: "system"},
		}
	}
	return out
}

func (f *fixture) appendEvents(stream string, expected eventstore.ExpectedVersion, events []domain.Event) {
	f.t.Helper()
	if _, err := f.store.Append(context.Background(), stream, expected, eventData(f.t, events)); err != nil {
		f.t.Fatalf("append to %s: %v", stream, err)
	}
}

// paymentEvents decides a payment of amount KRW to seller with the domain's own deciders:
// checkout, then (steps ≥ 2) confirm, (≥ 3) approval, (≥ 4) a settlement row.
func paymentEvents(t testing.TB, order string, seller string, amount int64, steps int, at time.Time) []domain.Event {
	t.Helper()
	co, err := domain.Checkout(domain.CheckoutCommand{
		OrderID: domain.OrderID(order), MerchantID: merchant, BuyerID: "buyer", OrderName: "order " + order,
		Currency: domain.KRW, TTL: time.Hour,
		Lines: []domain.CheckoutLine{{SellerID: seller, ProductID: "p", Amount: decimal.NewFromInt(amount)}},
	}, at)
	if err != nil {
		t.Fatal(err)
	}
	events := []domain.Event{co}
	p, err := domain.Rebuild(events)
	if err != nil {
		t.Fatal(err)
	}
	key := domain.PaymentKey("pk-" + order)
	next := func(es []domain.Event, err error) {
		t.Helper()
		if err != nil || len(es) != 1 {
			t.Fatalf("order %s: %d events, %v", order, len(es), err)
		}
		if err := p.Apply(es[0]); err != nil {
			t.Fatal(err)
		}
		events = append(events, es[0])
	}
	if steps >= 2 {
		next(p.DecideConfirm(domain.ConfirmCommand{PaymentKey: key, OrderID: p.OrderID, Amount: p.TotalAmount}, at))
	}
	if steps >= 3 {
		next(p.DecideApproved(domain.Approval{PaymentKey: key, OrderID: p.OrderID, TotalAmount: p.TotalAmount, ApprovedAt: at,
			Method: "CARD", LastTransactionKey: "tx-" + order}, at))
	}
	if steps >= 4 {
		fee := decimal.NewFromInt(amount / 50)
		next(p.DecideSettlement(domain.SettlementInput{TransactionKey: "tx-" + order, PaymentKey: key,
			SoldDate: "2026-03-02", PaidOutDate: "2026-03-04", Amount: p.TotalAmount, Fee: fee,
			VAT: decimal.Zero, PayOutAmount: p.TotalAmount.Sub(fee)}, at))
	}
	return events
}

// pay appends a payment of steps events (see paymentEvents) to its stream.
func (f *fixture) pay(order string, steps int) {
	f.t.Helper()
	f.appendEvents(domain.StreamName(domain.OrderID(order)), eventstore.NoStream, paymentEvents(f.t, order, "seller-"+order, 10000, steps, f.at))
}

// payBulk appends n payments of 4 events each, orders prefix0..prefix(n-1), with as many
// appenders as the pool allows: how the benchmark fills a database.
func (f *fixture) payBulk(prefix string, n int) {
	f.t.Helper()
	workers := 4 * runtime.GOMAXPROCS(0)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	orders := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range orders {
				order := fmt.Sprintf("%s%06d", prefix, i)
				data := eventData(f.t, paymentEvents(f.t, order, fmt.Sprintf("seller-%d", i%50), 10000+int64(i%7)*1000, 4, f.at))
				if _, err := f.store.Append(context.Background(), domain.StreamName(domain.OrderID(order)), eventstore.NoStream, data); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		orders <- i
	}
	close(orders)
	wg.Wait()
	if first != nil {
		f.t.Fatal(first)
	}
}

// project brings the read models up to date with every committed event. It applies them
// stream by stream, in pages, from one snapshot, rather than through a runner: a runner reads
// the log only below the oldest transaction running anywhere on the server, which tests of
// other packages may hold back for as long as they like. Streams are independent for every read
// model, and "merchant-" sorts before "payment-", so a merchant's commission rate is applied
// before its checkouts, as in the log.
func (f *fixture) project() {
	f.t.Helper()
	ctx := context.Background()
	err := pgx.BeginTxFunc(ctx, f.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(snap pgx.Tx) error {
		var after *string
		for {
			heads, err := eventstore.ReadHeads(ctx, snap, after, 5000)
			if err != nil {
				return err
			}
			var through *string
			if len(heads) == 5000 {
				through = &heads[len(heads)-1].Stream
			}
			events, err := eventstore.ReadRange(ctx, snap, after, through)
			if err != nil {
				return err
			}
			for _, p := range []projections.Projection{projections.PaymentOrders{}, projections.Ledger{}, projections.Merchants{}} {
				err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
					for _, e := range events {
						if err := p.Apply(ctx, tx, e); err != nil {
							return fmt.Errorf("%s: %s version %d: %w", p.Name(), e.StreamID, e.Version, err)
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			if through == nil {
				break
			}
			after = through
		}
		// The read models are now at the snapshot's end of the log, as paymentd's runners leave
		// them: a replay compares at that position rather than catching them up.
		var head eventstore.Position
		err := snap.QueryRow(ctx, `SELECT transaction_id, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1`).
			Scan(&head.Transaction, &head.Sequence)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range []projections.Projection{projections.PaymentOrders{}, projections.Ledger{}, projections.Merchants{}} {
			if _, err := f.pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position`, p.Name(), head.String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sealer() *audit.Sealer { return audit.NewSealer(f.pool, f.priv, f.file) }

func (f *fixture) seal() audit.Seal {
	f.t.Helper()
	s, err := f.sealer().Seal(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// audit runs an audit with the fixture's public key and the given seal file ("": none).
func (f *fixture) audit(sealFile string) audit.Report {
	f.t.Helper()
	rep, err := audit.New(f.pool, f.store, audit.Options{PublicKey: f.pub, SealFile: sealFile}).Run(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// tamper runs statements as a database superuser can: with every trigger off (the append-only
// triggers, the deferred balance check, foreign keys), in one transaction.
func (f *fixture) tamper(sql string, args ...any) {
	f.t.Helper()
	err := pgx.BeginFunc(context.Background(), f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), sql, args...)
		return err
	})
	if err != nil {
		f.t.Fatalf("tamper %q: %v", sql, err)
	}
}

// events reads a stream as stored.
func (f *fixture) events(stream string) []eventstore.RecordedEvent {
	f.t.Helper()
	events, err := f.store.ReadStream(context.Background(), stream, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	return events
}

// has reports whether rep has a problem of kind at stream and version whose detail contains
// every one of details.
func has(rep audit.Report, kind audit.Kind, stream string, version int64, details ...string) bool {
	for _, p := range rep.Problems {
		if p.Kind != kind || p.Stream != stream || p.Version != version {
			continue
		}
		ok := true
		for _, d := range details {
			ok = ok && strings.Contains(p.Detail, d)
		}
		if ok {
			return true
		}
	}
	return false
}

func wantProblem(t testing.TB, rep audit.Report, kind audit.Kind, stream string, version int64, details ...string) {
	t.Helper()
	if rep.OK || !has(rep, kind, stream, version, details...) {
		t.Fatalf("want %s at %q version %d (detail with %q); report:\n%s", kind, stream, version, details, describe(rep))
	}
}

func describe(rep audit.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ok %t, %d streams, %d events\n", rep.OK, rep.Streams, rep.Events)
	for _, p := range rep.Problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}

func wantOK(t testing.TB, rep audit.Report) {
	t.Helper()
	if !rep.OK || len(rep.Problems) != 0 {
		t.Fatalf("want a clean audit; report:\n%s", describe(rep))
	}
}

// onlyKinds fails unless every problem of rep is of one of kinds.
func onlyKinds(t testing.TB, rep audit.Report, kinds ...audit.Kind) {
	t.Helper()
	for _, p := range rep.Problems {
		found := false
		for _, k := range kinds {
			found = found || p.Kind == k
		}
		if !found {
			t.Fatalf("unexpected %s; report:\n%s", p, describe(rep))
		}
	}
}
