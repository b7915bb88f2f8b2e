package natsbus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/natsbus/natstest"
)

// The crash test runs a relay in a child process (this test binary again) and kills it.
const childEnv = "NATSBUS_RELAY_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		runChild(spec)
		return
	}
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, domain.KST)

// appendPayment writes a checkout, a confirm and an approval of order n of merchant m.
func appendPayment(t testing.TB, store eventstore.Store, m domain.MerchantID, n int) domain.OrderID {
	t.Helper()
	id := domain.OrderID(fmt.Sprintf("order-%s-%04d", m, n))
	h := domain.EventHeader{OrderID: id, MerchantID: m, At: t0.Add(time.Duration(n) * time.Second)}
	amount := decimal.NewFromInt(int64(1000 + n))
	events := []domain.Event{
		domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: amount,
			Lines:     []domain.Line{{LineID: "L1", SellerID: "s", ProductID: "p", Amount: amount}},
			ExpiresAt: h.At.Add(time.Hour)},
		domain.ConfirmationStarted{EventHeader: h, PaymentKey: "k", Amount: amount, Attempt: 1, PSPIdempotencyKey: "x"},
		domain.PaymentApproved{EventHeader: h, PaymentKey: "k", ApprovedAt: h.At, Method: "카드", TotalAmount: amount, LastTransactionKey: "tx"},
	}
	var data []eventstore.EventData
	for _, e := range events {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b,
			Metadata: eventstore.Metadata{MerchantID: string(m), Actor: "merchant", CorrelationID: uuid.New()}})
	}
	if _, err := store.Append(context.Background(), domain.StreamName(id), eventstore.NoStream, data); err != nil {
		t.Fatal(err)
	}
	return id
}

// appendMerchant writes a merchant's registration: configuration, never published.
func appendMerchant(t testing.TB, store eventstore.Store, m domain.MerchantID) {
	t.Helper()
	b, err := domain.MarshalEvent(domain.MerchantRegistered{MerchantHeader: domain.MerchantHeader{MerchantID: m, At: t0}, Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), domain.MerchantStreamName(m), eventstore.NoStream, []eventstore.EventData{{
		ID: uuid.New(), Type: string(domain.EventMerchantRegistered), SchemaVersion: 1, Data: b,
		Metadata: eventstore.Metadata{MerchantID: string(m), Actor: "system"},
	}}); err != nil {
		t.Fatal(err)
	}
}

func openBus(t testing.TB, url string) *natsbus.Bus {
	t.Helper()
	bus, err := natsbus.Open(context.Background(), natsbus.Config{URL: url, Name: t.Name()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	return bus
}

// startRelay runs a relay until the test ends.
func startRelay(t testing.TB, pool *pgxpool.Pool, bus *natsbus.Bus, cfg natsbus.RelayConfig) {
	t.Helper()
	relay, err := natsbus.NewRelay(pool, eventstore.NewPostgres(pool), bus.Conn, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// streamMessages reads every message of the PAYMENTS stream.
func streamMessages(t testing.TB, js jetstream.JetStream) []jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, natsbus.StreamPayments)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *m)
	}
	return out
}

func msgCount(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), natsbus.StreamPayments)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestRelayPublishesEveryPaymentEventOnceInOrder(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	srv := natstest.Start(t)
	bus := openBus(t, srv.URL())

	appendMerchant(t, store, "m1")
	var orders []domain.OrderID
	for n := range 40 {
		m := domain.MerchantID([]string{"m1", "m2"}[n%2])
		orders = append(orders, appendPayment(t, store, m, n))
	}
	// Two relays, as on two instances: one publishes, the other waits on the lock.
	startRelay(t, pool, bus, natsbus.RelayConfig{MaxInFlight: 16})
	startRelay(t, pool, openBus(t, srv.URL()), natsbus.RelayConfig{MaxInFlight: 16})

	want := uint64(3 * len(orders))
	testenv.WaitFor(t, 20*time.Second, "every payment event in the stream", func() bool { return msgCount(t, bus.JS) >= want })
	msgs := streamMessages(t, bus.JS)
	if uint64(len(msgs)) != want {
		t.Fatalf("stream holds %d messages, want %d (the merchant's registration is not published)", len(msgs), want)
	}
	seen := map[uuid.UUID]bool{}
	lastVersion := map[domain.OrderID]int64{}
	for _, m := range msgs {
		e, err := natsbus.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.ID] {
			t.Fatalf("event %s published twice", e.ID)
		}
		seen[e.ID] = true
		if m.Subject != natsbus.Subject(e.MerchantID, e.OrderID, e.Type) || !strings.Contains(m.Subject, "."+string(e.MerchantID)+".") {
			t.Errorf("subject %q for %s of %s/%s", m.Subject, e.Type, e.MerchantID, e.OrderID)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != e.ID.String() {
			t.Errorf("Nats-Msg-Id %q, want the event id %s", got, e.ID)
		}
		if e.StreamVersion != lastVersion[e.OrderID]+1 {
			t.Errorf("order %s: version %d after %d", e.OrderID, e.StreamVersion, lastVersion[e.OrderID])
		}
		lastVersion[e.OrderID] = e.StreamVersion
		if _, off := e.RecordedAt.Zone(); off != 9*3600 {
			t.Errorf("recordedAt %s is not KST", e.RecordedAt)
		}
	}
	// The checkpoint ends at the last event, the merchant's included.
	waitCheckpointAtEnd(t, pool, store, int(want)+1)
}

// TestRelayKilledBetweenPublishAndCheckpoint kills a relay process after JetStream acknowledged
// a batch and before its checkpoint moved; the relay that takes over publishes the batch again
// and the stream still holds every event exactly once.
func TestRelayKilledBetweenPublishAndCheckpoint(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.NewPostgres(pool)
	srv := natstest.Start(t)
	bus := openBus(t, srv.URL())
	for n := range 10 {
		appendPayment(t, store, "m1", n)
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+dbURL+" "+srv.URL())
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = child.Process.Signal(syscall.SIGKILL); _ = child.Wait() }) }
	t.Cleanup(kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "acked" {
		t.Fatalf("child relay said %q, %v; want acked", line, err)
	}
	kill()

	// Its first batch: all 30 events, or fewer if another transaction on the server held the
	// readable horizon back.
	if n := msgCount(t, bus.JS); n == 0 || n > 30 {
		t.Fatalf("the killed relay left %d messages, want its acknowledged batch (1 to 30)", n)
	}
	var checkpoints int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM relay_checkpoints`).Scan(&checkpoints); err != nil || checkpoints != 0 {
		t.Fatalf("checkpoint rows after the kill: %d, %v; want none", checkpoints, err)
	}

	// Another relay takes over at once (the killed session's lock died with it).
	for n := 10; n < 15; n++ {
		appendPayment(t, store, "m1", n)
	}
	startRelay(t, pool, bus, natsbus.RelayConfig{MaxInFlight: 64})
	waitCheckpointAtEnd(t, pool, store, 45)
	msgs := streamMessages(t, bus.JS)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	if len(msgs) != 45 || len(seen) != 45 {
		t.Fatalf("stream holds %d messages of %d events, want 45 of 45", len(msgs), len(seen))
	}
}

// waitCheckpointAtEnd waits for the relay's checkpoint to reach the last of the log's n events.
// Readers stop at the oldest transaction running anywhere on the server (other tests' too), so
// the log's end is known only once all n events are readable.
func waitCheckpointAtEnd(t testing.TB, pool *pgxpool.Pool, store eventstore.Store, n int) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, "the relay's checkpoint at the end of the log", func() bool {
		all, err := store.ReadAll(context.Background(), eventstore.Start, n+1)
		if err != nil || len(all) != n {
			return false
		}
		var pos string
		_ = pool.QueryRow(context.Background(), `SELECT position FROM relay_checkpoints WHERE name = 'nats'`).Scan(&pos)
		return pos == all[n-1].Position.String()
	})
}

// runChild relays with a batch as big as the log, says "acked" once JetStream acknowledged it,
// and then hangs before the checkpoint until it is killed.
func runChild(spec string) {
	dbURL, natsURL, _ := strings.Cut(spec, " ")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bus, err := natsbus.Open(ctx, natsbus.Config{URL: natsURL, Name: "child"}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	relay, err := natsbus.NewRelay(pool, eventstore.NewPostgres(pool), bus.Conn, natsbus.RelayConfig{MaxInFlight: 100}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	relay.SetAfterAck(func([]eventstore.RecordedEvent) {
		fmt.Println("acked")
		select {} // killed here
	})
	_ = relay.Run(ctx)
	os.Exit(3)
}

// TestRelayNeverPublishesAChangedHistory edits a stored event: the relay publishes nothing of
// that stream from the edited event on (the events after it link to it), lists the stream as
// broken, and goes on with the others.
func TestRelayNeverPublishesAChangedHistory(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	srv := natstest.Start(t)
	bus := openBus(t, srv.URL())
	tampered := appendPayment(t, store, "m1", 1)
	appendPayment(t, store, "m1", 2)
	ctx := context.Background()
	for _, stmt := range []string{
		`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = jsonb_set(data::jsonb, '{amount}', '"1"')::json WHERE stream_id = '` + domain.StreamName(tampered) + `' AND version = 2`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	startRelay(t, pool, bus, natsbus.RelayConfig{})
	waitCheckpointAtEnd(t, pool, store, 6)
	msgs := streamMessages(t, bus.JS)
	var got []string
	for _, m := range msgs {
		e, err := natsbus.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s v%d", e.OrderID, e.StreamVersion))
	}
	want := []string{"order-m1-0001 v1", "order-m1-0002 v1", "order-m1-0002 v2", "order-m1-0002 v3"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("published %v, want %v", got, want)
	}
	var detail string
	if err := pool.QueryRow(ctx, `SELECT detail FROM broken_streams WHERE stream_id = $1`, domain.StreamName(tampered)).Scan(&detail); err != nil {
		t.Fatalf("the changed stream is not listed as broken: %v", err)
	}
}
