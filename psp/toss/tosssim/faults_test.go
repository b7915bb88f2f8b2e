package tosssim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// injectedBodies are the exact answers Faults.ErrorRate may give, keyed by code.
func injectedBodies(t *testing.T) map[string]int {
	t.Helper()
	return map[string]int{
		"FAILED_INTERNAL_SYSTEM_PROCESSING": http.StatusInternalServerError,
		"PROVIDER_ERROR":                    http.StatusBadRequest,
		"TOO_MANY_REQUESTS":                 http.StatusTooManyRequests,
	}
}

// wantInjected asserts r is one of the three injected errors and returns its code.
func wantInjected(t *testing.T, r reply) string {
	t.Helper()
	var e wireError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	status, ok := injectedBodies(t)[e.Code]
	if !ok {
		t.Fatalf("answer %d %s is not an injected error", r.status, r.body)
	}
	wantError(t, r, status, e.Code)
	return e.Code
}

// pooledClient keeps connections alive, as production clients do.
func pooledClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// wantLost asserts err is the transport error of a lost answer.
func wantLost(t *testing.T, r reply, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got an answer %d %s, want a transport error", r.status, r.body)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("transport error %v, want an unexpected EOF", err)
	}
}

// try sends one request with client and returns the transport error instead of failing.
func (h *harness) try(client *http.Client, method, path string, body any, headers map[string]string) (reply, error) {
	h.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", basicAuth(testKey))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func TestInjectedErrorsNeverExecuteNorBurnTheKey(t *testing.T) {
	h := newHarness(t, Config{Faults: Faults{ErrorRate: 1, Seed: 1}})
	key := h.session("order-fault1", 15000, nil)

	const n = 30
	seen := map[string]int{}
	for range n {
		seen[wantInjected(t, h.confirm(key, "order-fault1", 15000, "fault1:confirm:1"))]++
	}
	if len(seen) != 3 {
		t.Fatalf("injected codes over %d calls: %v, want all three", n, seen)
	}
	if v, _ := h.sim.Payment("order-fault1"); v.Status != StatusInProgress {
		t.Fatalf("status after injected errors = %s", v.Status)
	}
	if st := h.sim.Stats(); st.ConfirmsProcessed != 0 || st.ConfirmRequests != n || st.InjectedErrors != n ||
		h.sim.ConfirmsFor("order-fault1") != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Every /v1 route is affected; /sim routes never are.
	wantInjected(t, h.call("GET", "/v1/payments/"+key, nil, nil))
	wantInjected(t, h.call("GET", "/v1/payments/orders/order-fault1", nil, nil))
	wantInjected(t, h.call("GET", "/v1/transactions?startDate=2025-11-21&endDate=2025-11-22", nil, nil))
	wantInjected(t, h.cancel(key, map[string]any{"cancelReason": "x"}, "fault1:cancel:1"))
	if r := h.call("GET", "/sim/v1/stats", nil, nil); r.status != http.StatusOK {
		t.Fatalf("/sim/v1/stats under ErrorRate 1: %d %s", r.status, r.body)
	}
	h.session("order-fault2", 1000, nil) // fails the test unless answered 201

	// The key was never stored: with the rate turned off for this request, it executes.
	off := map[string]string{"Idempotency-Key": "fault1:confirm:1", HeaderErrorRate: "0"}
	body := map[string]any{"paymentKey": key, "orderId": "order-fault1", "amount": 15000}
	first := h.call("POST", "/v1/payments/confirm", body, off)
	if first.status != http.StatusOK {
		t.Fatalf("confirm with the rate off: %d %s", first.status, first.body)
	}
	wantString(t, decode(t, first.body), "status", "DONE")
	replay := h.call("POST", "/v1/payments/confirm", body, off)
	if !bytes.Equal(replay.body, first.body) {
		t.Fatalf("replay differs:\n%s\n%s", first.body, replay.body)
	}
	if st := h.sim.Stats(); st.ConfirmsProcessed != 1 || st.Approvals != 1 || st.InjectedErrors != n+4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInjectedErrorsAreDeterministicForASeed(t *testing.T) {
	run := func(seed int64) string {
		h := newHarness(t, Config{Faults: Faults{ErrorRate: 0.5, Seed: seed}})
		var out strings.Builder
		for range 40 {
			r := h.call("GET", "/v1/payments/orders/order-none1", nil, nil)
			var e wireError
			_ = json.Unmarshal(r.body, &e)
			out.WriteString(e.Code[:3])
			out.WriteByte(' ')
		}
		return out.String()
	}
	a, b, c := run(42), run(42), run(43)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if a == c {
		t.Fatalf("seeds 42 and 43 gave the same 40 decisions: %s", a)
	}
	if !strings.Contains(a, "NOT") || strings.Count(a, "NOT") == 40 {
		t.Fatalf("rate 0.5 gave %s", a)
	}
}

func TestLostConfirmExecutesStoresAndDrops(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-lost01", 15000, nil)
	body := map[string]any{"paymentKey": key, "orderId": "order-lost01", "amount": 15000}
	client := pooledClient(t)
	// Warm a pooled connection: a loss on a reused connection must not be resent silently by
	// the transport (it would be, were the connection closed before any response byte).
	if r, err := h.try(client, "GET", "/v1/payments/"+key, nil, nil); err != nil || r.status != 200 {
		t.Fatalf("warm-up: %v %d", err, r.status)
	}

	r, err := h.try(client, "POST", "/v1/payments/confirm", body,
		map[string]string{"Idempotency-Key": "lost01:confirm:1", HeaderLostResponseRate: "1"})
	wantLost(t, r, err)
	if st := h.sim.Stats(); st.ConfirmRequests != 1 || st.ConfirmsProcessed != 1 || st.LostResponses != 1 {
		t.Fatalf("stats after the lost confirm (a transparent resend would show 2 requests): %+v", st)
	}

	// Toss did approve it: the lookup tells the truth.
	look := h.call("GET", "/v1/payments/orders/order-lost01", nil, nil)
	wantString(t, decode(t, look.body), "status", "DONE")

	// A retry under the same key replays the stored success, byte for byte the truth.
	retry := h.confirm(key, "order-lost01", 15000, "lost01:confirm:1")
	if retry.status != http.StatusOK || !bytes.Equal(retry.body, look.body) {
		t.Fatalf("retry: %d %s\nlookup: %s", retry.status, retry.body, look.body)
	}
	if st := h.sim.Stats(); st.ConfirmsProcessed != 1 || st.Approvals != 1 || st.LostResponses != 1 {
		t.Fatalf("stats %+v", st)
	}

	// The same for a cancel: it runs, its answer is lost, the retry replays it.
	r, err = h.try(client, "POST", "/v1/payments/"+key+"/cancel", map[string]any{"cancelReason": "변심"},
		map[string]string{"Idempotency-Key": "lost01:cancel:1", HeaderLostResponseRate: "1"})
	wantLost(t, r, err)
	if v, _ := h.sim.Payment("order-lost01"); v.Status != StatusCanceled || v.Cancels != 1 {
		t.Fatalf("after lost cancel: %+v", v)
	}
	h.clock.Advance(2 * time.Second) // past the one-second rule, which a replay must not meet
	again := h.cancel(key, map[string]any{"cancelReason": "변심"}, "lost01:cancel:1")
	wantString(t, decode(t, again.body), "status", "CANCELED")
	if st := h.sim.Stats(); st.CancelsProcessed != 1 || st.CancelRequests != 2 || st.LostResponses != 2 {
		t.Fatalf("stats %+v", st)
	}
	if v, _ := h.sim.Payment("order-lost01"); v.Cancels != 1 {
		t.Fatalf("cancels after replay: %+v", v)
	}
}

func TestLostResponsesSpareReadsReplaysAndRefusals(t *testing.T) {
	h := newHarness(t, Config{Faults: Faults{LostResponseRate: 1}})
	key := h.session("order-lost02", 1000, nil)
	client := pooledClient(t)
	body := map[string]any{"paymentKey": key, "orderId": "order-lost02", "amount": 1000}

	r, err := h.try(client, "POST", "/v1/payments/confirm", body, map[string]string{"Idempotency-Key": "k2"})
	wantLost(t, r, err)
	// Without a key it still executes, and its answer (ALREADY_PROCESSED_PAYMENT) is lost too.
	r, err = h.try(client, "POST", "/v1/payments/confirm", body, nil)
	wantLost(t, r, err)
	// Replays, Test-Code answers and reads are answered.
	if r, err := h.try(client, "POST", "/v1/payments/confirm", body, map[string]string{"Idempotency-Key": "k2"}); err != nil || r.status != 200 {
		t.Fatalf("replay: %v %d %s", err, r.status, r.body)
	}
	r, err = h.try(client, "POST", "/v1/payments/confirm", body, map[string]string{"TossPayments-Test-Code": "REJECT_CARD_COMPANY"})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, r, http.StatusForbidden, "REJECT_CARD_COMPANY")
	if r := h.call("GET", "/v1/payments/"+key, nil, nil); r.status != 200 {
		t.Fatalf("lookup: %d", r.status)
	}
	if st := h.sim.Stats(); st.ConfirmsProcessed != 2 || st.LostResponses != 2 || st.Approvals != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLatencyIsRespected(t *testing.T) {
	h := newHarness(t, Config{Faults: Faults{Latency: Latency{Min: 30 * time.Millisecond, Max: 60 * time.Millisecond}}})
	start := time.Now()
	h.call("GET", "/v1/payments/orders/order-none1", nil, nil)
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Fatalf("request took %v, want at least the 30ms minimum", took)
	}

	plain := newHarness(t, Config{})
	start = time.Now()
	r := plain.call("GET", "/v1/payments/orders/order-none1", nil, map[string]string{HeaderLatency: "40ms-45ms"})
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Fatalf("request with %s: 40ms-45ms took %v", HeaderLatency, took)
	}
	wantError(t, r, http.StatusNotFound, "NOT_FOUND_PAYMENT")
}

func TestLatencyGivesUpWithTheClient(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-slow01", 1000, nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 50 * time.Millisecond}
	_, err := h.try(client, "POST", "/v1/payments/confirm",
		map[string]any{"paymentKey": key, "orderId": "order-slow01", "amount": 1000},
		map[string]string{HeaderLatency: "1h"})
	if err == nil {
		t.Fatal("answered despite an hour of latency")
	}

	// delay itself returns false as soon as the context ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- delay(ctx, time.Hour) }()
	cancel()
	select {
	case full := <-done:
		if full {
			t.Fatal("delay reported the full hour")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("delay ignored the canceled context")
	}
}

func TestFaultHeadersAreValidated(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-hdr001", 1000, nil)
	for _, hdr := range []map[string]string{
		{HeaderErrorRate: "1.5"},
		{HeaderErrorRate: "-0.1"},
		{HeaderErrorRate: "NaN"},
		{HeaderLostResponseRate: "half"},
		{HeaderLatency: "fast"},
		{HeaderLatency: "200ms-5ms"},
		{HeaderLatency: "-5ms"},
		{HeaderLatency: "5ms-"},
	} {
		hdr["Idempotency-Key"] = "hdr"
		r := h.call("POST", "/v1/payments/confirm", map[string]any{"paymentKey": key, "orderId": "order-hdr001", "amount": 1000}, hdr)
		wantError(t, r, http.StatusBadRequest, "INVALID_REQUEST")
	}
	if st := h.sim.Stats(); st.ConfirmRequests != 0 || st.ConfirmsProcessed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Nothing ran and nothing was stored under "hdr".
	r := h.confirm(key, "order-hdr001", 1000, "hdr")
	wantString(t, decode(t, r.body), "status", "DONE")
}

func TestParseLatencyAndRate(t *testing.T) {
	for in, want := range map[string]Latency{
		"20ms":        {20 * time.Millisecond, 20 * time.Millisecond},
		"0":           {},
		"5ms-200ms":   {5 * time.Millisecond, 200 * time.Millisecond},
		" 1s - 1.5s ": {time.Second, 1500 * time.Millisecond},
	} {
		got, err := ParseLatency(in)
		if err != nil || got != want {
			t.Errorf("ParseLatency(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseLatency(got.String()); err != nil || back != got {
			t.Errorf("round trip of %v: %v %v", got, back, err)
		}
	}
	for _, in := range []string{"", "fast", "5", "-1ms", "10ms-5ms", "1ms-2ms-3ms", "1ms-"} {
		if _, err := ParseLatency(in); err == nil {
			t.Errorf("ParseLatency(%q) accepted", in)
		}
	}
	for in, want := range map[string]float64{"0": 0, "1": 1, "0.25": 0.25, " .5 ": 0.5} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x", "1.01", "-1", "NaN", "Inf", "1e9"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestFaultsValidate(t *testing.T) {
	if err := (Faults{}).Validate(); err != nil {
		t.Fatalf("zero Faults: %v", err)
	}
	bad := Faults{
		Latency:              Latency{Min: time.Second, Max: time.Millisecond},
		ErrorRate:            2,
		LostResponseRate:     -1,
		WebhookDuplicateRate: 1.5,
		WebhookURL:           "ftp://example.com/x",
		TimeScale:            -1,
		WebhookTimeout:       -time.Second,
	}
	err := bad.Validate()
	for _, want := range []string{"max is below min", "error rate", "lost response rate", "webhook duplicate rate", "webhook URL", "time scale", "webhook timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	// New clamps instead of failing.
	s := New(Config{Faults: bad})
	defer s.Close()
	if f := s.cfg.Faults; f.ErrorRate != 1 || f.LostResponseRate != 0 || f.WebhookDuplicateRate != 1 ||
		f.Latency.Max != time.Second || f.TimeScale != 1 || f.WebhookTimeout != defaultWebhookTimeout {
		t.Fatalf("normalized %+v", f)
	}
}

func TestStatsRouteShowsFaultCounters(t *testing.T) {
	h := newHarness(t, Config{Faults: Faults{ErrorRate: 1}})
	h.call("GET", "/v1/payments/x", nil, nil)
	var got map[string]any
	if err := json.Unmarshal(h.call("GET", "/sim/v1/stats", nil, nil).body, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"injectedErrors", "lostResponses", "webhooksSent", "webhookDeliveries", "webhookFailures", "webhooksPending"} {
		if _, ok := got[k]; !ok {
			t.Errorf("stats has no %q: %v", k, got)
		}
	}
	if got["injectedErrors"] != float64(1) {
		t.Fatalf("injectedErrors = %v", got["injectedErrors"])
	}
}
