package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/natsbus/natstest"
	"github.com/paymentledger/ledger/notify"
	"github.com/paymentledger/ledger/secrets"
)

// TestDLQNotifyKind: a notification the merchant's endpoint refused until it ran out of
// deliveries is listed and shown by paymentctl dlq --kind notify, and its redrive delivers it
// exactly once when the endpoint is back.
func TestDLQNotifyKind(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	key := bytes.Repeat([]byte{9}, 32)
	kr, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := merchants.New(eventstore.NewPostgres(pool), pool, merchants.Config{Keyring: kr, CacheTTL: 50 * time.Millisecond})
	if _, err := svc.Create(ctx, merchants.CreateInput{ID: "shop", Name: "Shop"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	up, delivered := false, map[string]int{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered[r.Header.Get(notify.HeaderEventID)]++
	}))
	t.Cleanup(recv.Close)
	if _, err := svc.SetNotificationURL(ctx, "shop", recv.URL, merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	bus, err := natsbus.Open(ctx, natsbus.Config{URL: srv.URL(), Name: t.Name()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	d := notify.New(svc, bus.JS, notify.Config{MaxDeliver: 2, BackOff: []time.Duration{time.Millisecond}, PollInterval: 50 * time.Millisecond}, testenv.Logger(t))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitFor(t, 10*time.Second, "the merchant's consumer", func() bool {
		_, err := bus.JS.Consumer(ctx, natsbus.StreamPayments, notify.ConsumerName("shop"))
		return err == nil
	})
	e := natsbus.Event{ID: uuid.New(), Type: domain.EventCheckoutCreated, SchemaVersion: 1, MerchantID: "shop", OrderID: "order-0001",
		StreamVersion: 1, RecordedAt: time.Now().In(domain.KST), Actor: "merchant", Data: []byte(`{"n":1}`)}
	msg, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the dead letter", func() bool {
		ds, err := notify.ListDeadLetters(ctx, bus.JS, "")
		return err == nil && len(ds) == 1
	})

	vars := envFrom(map[string]string{"DATABASE_URL": dbURL, "NATS_URL": srv.URL(),
		"SECRETS_KEY": base64.StdEncoding.EncodeToString(key)})
	ctl := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, vars, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := ctl("dlq", "list", "--kind", "notify", "--json")
	var ds []notify.DeadLetterEntry
	if err != nil || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 1 || ds[0].MerchantID != "shop" || ds[0].Deliveries != 2 {
		t.Fatalf("dlq list --kind notify: %v\n%s", err, out)
	}
	id := strconv.FormatUint(ds[0].ID, 10)
	if out, err = ctl("dlq", "list", "--kind", "notify", "--merchant", "other"); err != nil || !strings.Contains(out, "no dead letters") {
		t.Fatalf("another merchant's dead letters: %v\n%s", err, out)
	}
	out, err = ctl("dlq", "show", id, "--kind", "notify")
	if err != nil || !strings.Contains(out, "event:            "+e.ID.String()) || !strings.Contains(out, `"data":{"n":1}`) {
		t.Fatalf("dlq show --kind notify: %v\n%s", err, out)
	}
	if _, err := ctl("dlq", "show", "999", "--kind", "notify"); err == nil || exitCode(err) != 1 {
		t.Fatalf("an unknown dead letter: %v", err)
	}

	mu.Lock()
	up = true
	mu.Unlock()
	if out, err = ctl("dlq", "redrive", id, "--kind", "notify"); err != nil || !strings.Contains(out, "dead letter "+id+": redriven") {
		t.Fatalf("dlq redrive --kind notify: %v\n%s", err, out)
	}
	testenv.WaitFor(t, 20*time.Second, "the redriven delivery and the dead letter removed", func() bool {
		ds, err := notify.ListDeadLetters(ctx, bus.JS, "")
		return err == nil && len(ds) == 0
	})
	if out, err = ctl("dlq", "redrive", "--all", "--kind", "notify"); err != nil || !strings.Contains(out, "nothing redriven") {
		t.Fatalf("redrive --all with nothing left: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if delivered[e.ID.String()] != 1 || len(delivered) != 1 {
		t.Fatalf("deliveries %v, want the event once", delivered)
	}
}
