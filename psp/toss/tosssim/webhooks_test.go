package tosssim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	transmissionIDPattern = regexp.MustCompile(`^whtrans_[A-Za-z0-9]{24}$`)
	createdAtPattern      = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)
)

// hookDelivery is one POST the receiver got.
type hookDelivery struct {
	n      int // arrival number, from 1
	header http.Header
	body   []byte
}

func (d hookDelivery) id() string      { return d.header.Get(headerTransmissionID) }
func (d hookDelivery) retried() string { return d.header.Get(headerTransmissionRetried) }

// data returns the webhook's data object after checking the envelope has exactly the three
// documented fields.
func (d hookDelivery) data(t *testing.T) []byte {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(d.body, &env); err != nil {
		t.Fatalf("webhook body %s: %v", d.body, err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range env {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"createdAt", "data", "eventType"}) {
		t.Fatalf("webhook fields %v, want createdAt, data, eventType", keys)
	}
	if string(env["eventType"]) != `"PAYMENT_STATUS_CHANGED"` {
		t.Fatalf("eventType %s", env["eventType"])
	}
	return env["data"]
}

func (d hookDelivery) status(t *testing.T) string {
	t.Helper()
	var p struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(d.data(t), &p); err != nil {
		t.Fatal(err)
	}
	return p.Status
}

func (d hookDelivery) paymentKey(t *testing.T) string {
	t.Helper()
	var p struct {
		PaymentKey string `json:"paymentKey"`
	}
	if err := json.Unmarshal(d.data(t), &p); err != nil {
		t.Fatal(err)
	}
	return p.PaymentKey
}

// hookReceiver is a webhook endpoint that hands every delivery to the test.
type hookReceiver struct {
	url string
	got chan hookDelivery
}

// newHookReceiver answers the n-th delivery with answer(n, r), or 200 when answer is nil.
func newHookReceiver(t *testing.T, answer func(n int, r *http.Request) int) *hookReceiver {
	t.Helper()
	var mu sync.Mutex
	count := 0
	got := make(chan hookDelivery, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		count++
		n := count
		mu.Unlock()
		got <- hookDelivery{n: n, header: r.Header.Clone(), body: body}
		status := http.StatusOK
		if answer != nil {
			status = answer(n, r)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return &hookReceiver{url: srv.URL + "/webhooks/toss", got: got}
}

func (rc *hookReceiver) next(t *testing.T) hookDelivery {
	t.Helper()
	select {
	case d := <-rc.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery within 10s")
		return hookDelivery{}
	}
}

// newHookHarness is a harness whose simulator sends webhooks to rc; the simulator is closed
// before rc's server.
func newHookHarness(t *testing.T, rc *hookReceiver, f Faults) *harness {
	t.Helper()
	f.WebhookURL = rc.url
	h := newHarness(t, Config{Faults: f})
	t.Cleanup(h.sim.Close)
	return h
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWebhookOnEveryStatusChangeWithASnapshot(t *testing.T) {
	rc := newHookReceiver(t, nil)
	h := newHookHarness(t, rc, Faults{})
	key := h.session("order-hook01", 15000, nil)
	if st := h.sim.Stats(); st.WebhooksSent != 0 {
		t.Fatalf("a session (IN_PROGRESS) sent a webhook: %+v", st)
	}

	h.clock.Advance(1234567 * time.Microsecond)
	confirmed := h.confirm(key, "order-hook01", 15000, "")
	done := rc.next(t)
	if ct := done.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !transmissionIDPattern.MatchString(done.id()) {
		t.Fatalf("transmission id %q", done.id())
	}
	if got := done.header.Get(headerTransmissionTime); got != "2025-11-21T10:20:48+09:00" {
		t.Fatalf("transmission time %q", got)
	}
	if done.retried() != "0" {
		t.Fatalf("retried count %q", done.retried())
	}
	var env struct {
		CreatedAt string `json:"createdAt"`
	}
	_ = json.Unmarshal(done.body, &env)
	if !createdAtPattern.MatchString(env.CreatedAt) || env.CreatedAt != "2025-11-21T10:20:48.234567" {
		t.Fatalf("createdAt %q, want KST local microseconds with no offset", env.CreatedAt)
	}
	if data := done.data(t); !bytes.Equal(data, confirmed.body) {
		t.Fatalf("DONE webhook data is not the payment as confirmed:\n%s\n%s", data, confirmed.body)
	}

	h.clock.Advance(time.Minute)
	partial := h.cancel(key, map[string]any{"cancelReason": "부분", "cancelAmount": 5000}, "")
	h.clock.Advance(time.Minute)
	h.cancel(key, map[string]any{"cancelReason": "나머지"}, "")
	pc, full := rc.next(t), rc.next(t)
	if pc.status(t) != "PARTIAL_CANCELED" || full.status(t) != "CANCELED" {
		t.Fatalf("cancel webhooks: %s then %s", pc.status(t), full.status(t))
	}
	if !bytes.Equal(pc.data(t), partial.body) {
		t.Fatalf("PARTIAL_CANCELED webhook is not the snapshot at that change:\n%s\n%s", pc.data(t), partial.body)
	}
	if done.id() == pc.id() || pc.id() == full.id() {
		t.Fatal("two webhooks share a transmission id")
	}

	// ABORTED (a refused confirm) and EXPIRED (the window passed, seen by a lookup).
	rejected := h.session("order-hook02", 1000, map[string]any{"confirmError": "REJECT_CARD_COMPANY"})
	h.confirm(rejected, "order-hook02", 1000, "")
	if d := rc.next(t); d.status(t) != "ABORTED" || d.paymentKey(t) != rejected {
		t.Fatalf("want ABORTED of %s, got %s", rejected, d.body)
	}
	stale := h.session("order-hook03", 1000, nil)
	h.clock.Advance(11 * time.Minute)
	h.call("GET", "/v1/payments/"+stale, nil, nil)
	if d := rc.next(t); d.status(t) != "EXPIRED" || d.paymentKey(t) != stale {
		t.Fatalf("want EXPIRED of %s, got %s", stale, d.body)
	}

	waitFor(t, "all webhooks delivered", func() bool { return h.sim.Stats().WebhooksPending == 0 })
	if st := h.sim.Stats(); st.WebhooksSent != 5 || st.WebhookDeliveries != 5 || st.WebhookFailures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWebhookRetriesWithTheSameTransmissionID(t *testing.T) {
	rc := newHookReceiver(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	h := newHookHarness(t, rc, Faults{TimeScale: 1e-4}) // retries after 6ms and 24ms
	key := h.session("order-hook11", 1000, nil)
	h.confirm(key, "order-hook11", 1000, "")

	var got []hookDelivery
	for range 3 {
		got = append(got, rc.next(t))
	}
	for i, d := range got {
		if d.retried() != []string{"0", "1", "2"}[i] || d.id() != got[0].id() || d.status(t) != "DONE" {
			t.Fatalf("delivery %d: retried %q id %q (first %q)", i, d.retried(), d.id(), got[0].id())
		}
	}
	waitFor(t, "the webhook to settle", func() bool { return h.sim.Stats().WebhooksPending == 0 })
	if st := h.sim.Stats(); st.WebhooksSent != 1 || st.WebhookDeliveries != 3 || st.WebhookFailures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWebhookTimeoutCountsAsAFailedAttempt(t *testing.T) {
	rc := newHookReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			<-r.Context().Done() // never answers: the sender's timeout must end it
		}
		return http.StatusOK
	})
	h := newHookHarness(t, rc, Faults{TimeScale: 1e-4, WebhookTimeout: 50 * time.Millisecond})
	key := h.session("order-hook12", 1000, nil)
	h.confirm(key, "order-hook12", 1000, "")
	first, second := rc.next(t), rc.next(t)
	if first.retried() != "0" || second.retried() != "1" || first.id() != second.id() {
		t.Fatalf("retried %q then %q, ids %q %q", first.retried(), second.retried(), first.id(), second.id())
	}
	waitFor(t, "the webhook to settle", func() bool { return h.sim.Stats().WebhooksPending == 0 })
}

func TestWebhookDuplicateCopy(t *testing.T) {
	rc := newHookReceiver(t, nil)
	h := newHookHarness(t, rc, Faults{WebhookDuplicateRate: 1})
	key := h.session("order-hook21", 1000, nil)
	h.confirm(key, "order-hook21", 1000, "")
	a, b := rc.next(t), rc.next(t)
	if a.id() != b.id() || a.retried() != "0" || b.retried() != "0" || !bytes.Equal(a.body, b.body) {
		t.Fatalf("copies differ:\n%v %s\n%v %s", a.header, a.body, b.header, b.body)
	}
	waitFor(t, "both copies counted", func() bool {
		st := h.sim.Stats()
		return st.WebhooksPending == 0 && st.WebhookDeliveries == 2
	})
	if st := h.sim.Stats(); st.WebhooksSent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWebhookGivesUpAfterSevenRetries(t *testing.T) {
	rc := newHookReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	// 5461 minutes of §10.4 waits in about a third of a second.
	h := newHookHarness(t, rc, Faults{TimeScale: 1e-6})
	key := h.session("order-hook31", 1000, nil)
	h.confirm(key, "order-hook31", 1000, "")
	var id string
	for i := range 8 {
		d := rc.next(t)
		if i == 0 {
			id = d.id()
		}
		if d.id() != id || d.retried() != []string{"0", "1", "2", "3", "4", "5", "6", "7"}[i] {
			t.Fatalf("attempt %d: id %q retried %q", i, d.id(), d.retried())
		}
	}
	waitFor(t, "the webhook to be given up", func() bool { return h.sim.Stats().WebhookFailures == 1 })
	if st := h.sim.Stats(); st.WebhooksPending != 0 || st.WebhookDeliveries != 8 || st.WebhooksSent != 1 {
		t.Fatalf("stats %+v", st)
	}
	select {
	case d := <-rc.got:
		t.Fatalf("a ninth delivery after giving up: retried %q", d.retried())
	default:
	}
}

func TestWebhookRetryWaitsFollowTheSchedule(t *testing.T) {
	want := []time.Duration{1, 4, 16, 64, 256, 1024, 4096}
	for i, w := range webhookRetryWaits {
		if w != want[i]*time.Minute {
			t.Fatalf("wait %d = %v, want %v minutes", i, w, want[i])
		}
	}
	if len(webhookRetryWaits) != 7 {
		t.Fatalf("%d retries, want 7", len(webhookRetryWaits))
	}
}

// confirmAndCancel runs n orders through confirm then full cancel and returns, per
// paymentKey, the statuses in arrival order.
func confirmAndCancel(t *testing.T, h *harness, rc *hookReceiver, n int) map[string][]string {
	t.Helper()
	for i := range n {
		order := "order-ord" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		key := h.session(order, 1000, nil)
		if r := h.confirm(key, order, 1000, ""); r.status != 200 {
			t.Fatalf("confirm: %d %s", r.status, r.body)
		}
		if r := h.cancel(key, map[string]any{"cancelReason": "x"}, ""); r.status != 200 {
			t.Fatalf("cancel: %d %s", r.status, r.body)
		}
	}
	arrived := map[string][]string{}
	for range 2 * n {
		d := rc.next(t)
		arrived[d.paymentKey(t)] = append(arrived[d.paymentKey(t)], d.status(t))
	}
	return arrived
}

func TestWebhooksOfAPaymentKeepTheirOrderWithoutReorder(t *testing.T) {
	rc := newHookReceiver(t, nil)
	h := newHookHarness(t, rc, Faults{})
	for key, statuses := range confirmAndCancel(t, h, rc, 20) {
		if !slices.Equal(statuses, []string{"DONE", "CANCELED"}) {
			t.Fatalf("%s: webhooks arrived as %v", key, statuses)
		}
	}
}

func TestWebhookReorder(t *testing.T) {
	rc := newHookReceiver(t, nil)
	h := newHookHarness(t, rc, Faults{WebhookReorder: true, Seed: 7})
	// A wider window than the default makes a swap independent of scheduling noise.
	h.sim.hooks.mu.Lock()
	h.sim.hooks.reorderWindow = 300 * time.Millisecond
	h.sim.hooks.mu.Unlock()

	swapped := 0
	for key, statuses := range confirmAndCancel(t, h, rc, 20) {
		switch {
		case slices.Equal(statuses, []string{"CANCELED", "DONE"}):
			swapped++
		case slices.Equal(statuses, []string{"DONE", "CANCELED"}):
		default:
			t.Fatalf("%s: webhooks %v", key, statuses)
		}
	}
	if swapped == 0 {
		t.Fatal("no payment's webhooks arrived out of order in 20 tries")
	}
	t.Logf("%d of 20 payments saw CANCELED before DONE", swapped)
}

func TestCloseStopsTheSender(t *testing.T) {
	rc := newHookReceiver(t, func(int, *http.Request) int { return http.StatusInternalServerError })
	h := newHookHarness(t, rc, Faults{}) // real time: the first retry would come in a minute
	key := h.session("order-hook41", 1000, nil)
	h.confirm(key, "order-hook41", 1000, "")
	rc.next(t)
	waitFor(t, "the first attempt to be counted", func() bool { return h.sim.Stats().WebhookDeliveries == 1 })

	closed := make(chan struct{})
	go func() {
		h.sim.Close()
		h.sim.Close() // twice is fine
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the pending retry")
	}
	h.cancel(key, map[string]any{"cancelReason": "x"}, "")
	if st := h.sim.Stats(); st.WebhooksSent != 1 || st.WebhooksPending != 1 {
		t.Fatalf("after Close: %+v", st)
	}

	New(Config{}).Close() // no webhook URL: a no-op
}
