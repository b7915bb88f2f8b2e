package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/natsbus/natstest"
	"github.com/paymentledger/ledger/notify"
	"github.com/paymentledger/ledger/secrets"
)

var ctx = context.Background()

const shop domain.MerchantID = "shop-1"

// delivery is one request the receiver got and what it answered.
type delivery struct {
	body   []byte
	header http.Header
	status int
}

// receiver is a merchant's endpoint; answer decides each status (200 when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	answer func(eventID string, attempt int) int
	got    []delivery
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		attempt, _ := strconv.Atoi(req.Header.Get(notify.HeaderAttempt))
		r.mu.Lock()
		status := http.StatusOK
		if r.answer != nil {
			status = r.answer(req.Header.Get(notify.HeaderEventID), attempt)
		}
		r.got = append(r.got, delivery{body: body, header: req.Header.Clone(), status: status})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setAnswer(f func(eventID string, attempt int) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

// delivered lists the 2xx deliveries' event ids in the order they arrived.
func (r *receiver) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, d := range r.got {
		if d.status/100 == 2 {
			ids = append(ids, d.header.Get(notify.HeaderEventID))
		}
	}
	return ids
}

func (r *receiver) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

type fixture struct {
	svc    *merchants.Service
	js     jetstream.JetStream
	recv   *receiver
	secret string
	orders int
}

// newFixture: a merchant with an endpoint at a test receiver and a Dispatcher running.
func newFixture(t *testing.T, cfg notify.Config) *fixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := merchants.New(eventstore.NewPostgres(pool), pool, merchants.Config{Keyring: kr, CacheTTL: 50 * time.Millisecond})
	if _, err := svc.Create(ctx, merchants.CreateInput{ID: shop, Name: "Shop"}); err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	bus, err := natsbus.Open(ctx, natsbus.Config{URL: srv.URL(), Name: t.Name()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	f := &fixture{svc: svc, js: bus.JS, recv: newReceiver(t)}
	set, err := svc.SetNotificationURL(ctx, shop, f.recv.URL+"/hooks", merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	f.secret = set.SigningSecret

	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	d := notify.New(svc, bus.JS, cfg, testenv.Logger(t))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	testenv.WaitFor(t, 10*time.Second, "the merchant's consumer", func() bool {
		_, err := bus.JS.Consumer(ctx, natsbus.StreamPayments, notify.ConsumerName(shop))
		return err == nil
	})
	return f
}

// publish publishes the next event of a new order of the merchant, as the relay would, and
// returns its id.
func (f *fixture) publish(t *testing.T) string {
	t.Helper()
	f.orders++
	e := natsbus.Event{ID: uuid.New(), Type: domain.EventCheckoutCreated, SchemaVersion: 1, MerchantID: shop,
		OrderID: domain.OrderID(fmt.Sprintf("order-%04d", f.orders)), StreamVersion: 1, RecordedAt: time.Now().In(domain.KST),
		CorrelationID: uuid.New(), CausationID: uuid.New(), Actor: "merchant", Data: []byte(`{"n":` + strconv.Itoa(f.orders) + `}`)}
	msg, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	return e.ID.String()
}

func (f *fixture) waitDelivered(t *testing.T, want []string) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, fmt.Sprintf("%d deliveries", len(want)), func() bool { return len(f.recv.delivered()) >= len(want) })
	if got := f.recv.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered (2xx)\n got %v\nwant %v (each once, in order)", got, want)
	}
}

func TestDeliveriesAreSignedAndInOrder(t *testing.T) {
	f := newFixture(t, notify.Config{})
	var ids []string
	for range 5 {
		ids = append(ids, f.publish(t))
	}
	f.waitDelivered(t, ids)
	for _, d := range f.recv.all() {
		if d.header.Get("Content-Type") != "application/json" || d.header.Get(notify.HeaderEventType) != "CheckoutCreated" || d.header.Get(notify.HeaderAttempt) != "1" {
			t.Fatalf("headers: %v", d.header)
		}
		e, err := natsbus.Decode(d.body)
		if err != nil || e.ID.String() != d.header.Get(notify.HeaderEventID) {
			t.Fatalf("the body is the envelope as published: %v %s", err, d.body)
		}
		sig := d.header.Get(notify.HeaderSignature)
		if err := verify(f.secret, sig, d.body, time.Now()); err != nil {
			t.Fatalf("the documented verification refuses a delivery: %v (%s)", err, sig)
		}
		if strings.Count(sig, "v1=") != 1 {
			t.Fatalf("one secret, one signature: %s", sig)
		}
		if verify(f.secret, sig, append(slices.Clone(d.body), ' '), time.Now()) == nil {
			t.Fatal("a changed body verifies")
		}
		if verify("whsec_other", sig, d.body, time.Now()) == nil {
			t.Fatal("another secret verifies")
		}
		if verify(f.secret, sig, d.body, time.Now().Add(6*time.Minute)) == nil {
			t.Fatal("a signature older than 5 minutes verifies")
		}
	}
}

// The endpoint answers 503 to the first 4 requests: deliveries resume in order, and each event
// is delivered (2xx) exactly once.
func TestEndpointDownForAWhile(t *testing.T) {
	f := newFixture(t, notify.Config{MaxDeliver: 10, BackOff: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond}})
	failures := 4
	f.recv.setAnswer(func(string, int) int {
		if failures > 0 {
			failures--
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	var ids []string
	for range 3 {
		ids = append(ids, f.publish(t))
	}
	f.waitDelivered(t, ids)
	all := f.recv.all()
	if all[0].header.Get(notify.HeaderEventID) != ids[0] || all[4].header.Get(notify.HeaderAttempt) != "5" {
		t.Fatalf("the first event is retried until it goes through: %d requests", len(all))
	}
	// Nothing else is delivered later (the duplicate would come after the waits above).
	f.publish(t)
	testenv.WaitFor(t, 20*time.Second, "a fourth delivery", func() bool { return len(f.recv.delivered()) == 4 })
	if got := f.recv.delivered(); !slices.Equal(got[:3], ids) {
		t.Fatalf("delivered %v", got)
	}
}

// The endpoint refuses one event for good: after MaxDeliver it is a dead letter, later events
// flow, and a redrive delivers it exactly once when the endpoint takes it.
func TestDeadLetterAndRedrive(t *testing.T) {
	f := newFixture(t, notify.Config{MaxDeliver: 3, BackOff: []time.Duration{20 * time.Millisecond}})
	var mu sync.Mutex
	poison, recovered := "", false
	f.recv.setAnswer(func(id string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if id == poison && !recovered {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	first := f.publish(t)
	f.waitDelivered(t, []string{first})
	// The poison's id is known to the endpoint before the message exists.
	bad := f.publishWith(t, func(id string) { mu.Lock(); poison = id; mu.Unlock() })

	var dl notify.DeadLetterEntry
	testenv.WaitFor(t, 20*time.Second, "the dead letter", func() bool {
		list, err := notify.ListDeadLetters(ctx, f.js, shop)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 {
			dl = list[0]
		}
		return len(list) == 1
	})
	if dl.MerchantID != shop || dl.Deliveries != 3 || dl.Consumer != notify.ConsumerName(shop) {
		t.Fatalf("dead letter %+v", dl)
	}
	if other, err := notify.ListDeadLetters(ctx, f.js, "shop-2"); err != nil || len(other) != 0 {
		t.Fatalf("another merchant's dead letters: %v %v", other, err)
	}
	shown, err := notify.DeadLetter(ctx, f.js, dl.ID)
	if err != nil || shown.EventID != bad || shown.EventType != "CheckoutCreated" {
		t.Fatalf("show: %+v %v", shown, err)
	}
	var original []byte
	for _, d := range f.recv.all() {
		if d.header.Get(notify.HeaderEventID) == bad {
			original = d.body
		}
	}
	if string(shown.Body) != string(original) {
		t.Fatalf("show's body\n%s\nis not what was delivered\n%s", shown.Body, original)
	}

	// MaxAckPending 1 let the consumer move past it.
	later := f.publish(t)
	f.waitDelivered(t, []string{first, later})

	if err := notify.Redrive(ctx, f.js, dl.ID); err != nil {
		t.Fatal(err)
	}
	if err := notify.Redrive(ctx, f.js, dl.ID); !errors.Is(err, notify.ErrAlreadyRedriven) {
		t.Fatalf("a second redrive while the first is pending: %v", err)
	}
	mu.Lock()
	recovered = true
	mu.Unlock()
	f.waitDelivered(t, []string{first, later, bad})
	testenv.WaitFor(t, 10*time.Second, "the dead letter removed", func() bool {
		list, err := notify.ListDeadLetters(ctx, f.js, "")
		return err == nil && len(list) == 0
	})
	if err := notify.Redrive(ctx, f.js, dl.ID); !errors.Is(err, notify.ErrDeadLetterNotFound) {
		t.Fatalf("a redrive of a delivered dead letter: %v", err)
	}
	if err := notify.Redrive(ctx, f.js, 9999); !errors.Is(err, notify.ErrDeadLetterNotFound) {
		t.Fatalf("an unknown dead letter: %v", err)
	}
	// Exactly once: one more event goes through, and the redriven one is still there once.
	last := f.publish(t)
	f.waitDelivered(t, []string{first, later, bad, last})
}

// publishWith publishes an event and tells before whose id it has.
func (f *fixture) publishWith(t *testing.T, before func(id string)) string {
	t.Helper()
	f.orders++
	e := natsbus.Event{ID: uuid.New(), Type: domain.EventCheckoutCreated, SchemaVersion: 1, MerchantID: shop,
		OrderID: domain.OrderID(fmt.Sprintf("order-%04d", f.orders)), StreamVersion: 1, RecordedAt: time.Now().In(domain.KST),
		CorrelationID: uuid.New(), CausationID: uuid.New(), Actor: "merchant", Data: []byte(`{}`)}
	before(e.ID.String())
	msg, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	return e.ID.String()
}

// After a rotation, deliveries carry a signature with each secret until the grace ends.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rotated, err := f.svc.RotateNotificationSecret(ctx, shop, time.Hour, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	var both delivery
	var sent []string
	testenv.WaitFor(t, 20*time.Second, "a delivery signed with both secrets", func() bool {
		sent = append(sent, f.publish(t))
		testenv.WaitFor(t, 10*time.Second, "the delivery", func() bool { return len(f.recv.delivered()) == len(sent) })
		all := f.recv.all()
		both = all[len(all)-1]
		return strings.Count(both.header.Get(notify.HeaderSignature), "v1=") == 2
	})
	sig := both.header.Get(notify.HeaderSignature)
	for _, secret := range []string{f.secret, rotated.SigningSecret} {
		if err := verify(secret, sig, both.body, time.Now()); err != nil {
			t.Fatalf("during the grace each secret verifies: %v", err)
		}
	}
}
