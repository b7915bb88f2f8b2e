package tosssim

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/internal/pgtest"
)

// consoleCancel calls the console route as the merchant's staff would: no Authorization, no
// Idempotency-Key.
func (h *harness) consoleCancel(paymentKey string, body any) reply {
	h.t.Helper()
	return h.call("POST", "/sim/v1/console/payments/"+paymentKey+"/cancel", body, map[string]string{"Authorization": ""})
}

// wantSimError asserts that err is the *Error of code with its table status.
func wantSimError(t *testing.T, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code || e.Status != errorTable[code].status {
		t.Fatalf("error %v, want %d %s", err, errorTable[code].status, code)
	}
}

// amountsOf shows the rows of a GET /v1 list as the values of fields joined by ":", one row
// after the other, so a test can compare a whole list in one line.
func amountsOf(t *testing.T, rows []map[string]any, fields ...string) string {
	t.Helper()
	var out []string
	for _, row := range rows {
		var parts []string
		for _, f := range fields {
			switch v := row[f].(type) {
			case string:
				parts = append(parts, v)
			case interface{ String() string }:
				parts = append(parts, v.String())
			default:
				t.Fatalf("%s = %#v in %v", f, row[f], row)
			}
		}
		out = append(out, strings.Join(parts, ":"))
	}
	return strings.Join(out, ",")
}

func TestConsoleCancelPartialThenFull(t *testing.T) {
	h := newHarness(t, Config{})
	const order = "order-console-1"
	key := h.paid(order, 10000)
	h.clock.Advance(time.Hour)

	// A partial console cancel, the amount as a decimal string.
	r := h.consoleCancel(key, map[string]any{"cancelReason": "고객센터 환불", "cancelAmount": "3000"})
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("console cancel: %d %s", r.status, r.body)
	}
	p := decode(t, r.body)
	wantString(t, p, "status", "PARTIAL_CANCELED")
	wantNumber(t, p, "totalAmount", "10000")
	wantNumber(t, p, "balanceAmount", "7000")
	cancels, _ := p["cancels"].([]any)
	if len(cancels) != 1 {
		t.Fatalf("cancels %#v", p["cancels"])
	}
	c := cancels[0].(map[string]any)
	wantString(t, c, "cancelReason", "고객센터 환불")
	wantString(t, c, "canceledAt", "2025-11-21T11:20:47+09:00")
	wantNumber(t, c, "cancelAmount", "3000")
	wantNumber(t, c, "refundableAmount", "7000")
	wantString(t, c, "cancelStatus", "DONE")
	partialTx, _ := c["transactionKey"].(string)
	if !txKeyPattern.MatchString(partialTx) || p["lastTransactionKey"] != partialTx {
		t.Fatalf("cancel transactionKey %q, lastTransactionKey %v", partialTx, p["lastTransactionKey"])
	}
	// Our system sees it only by reading the payment back.
	for _, path := range []string{"/v1/payments/orders/" + order, "/v1/payments/" + key} {
		if got := h.get(path); !bytes.Equal(got, r.body) {
			t.Fatalf("GET %s after the console cancel:\n%s\nwant the console's answer:\n%s", path, got, r.body)
		}
	}

	// The 1-second rule holds for the console and is shared with the API.
	h.clock.Advance(999 * time.Millisecond)
	wantError(t, h.consoleCancel(key, map[string]any{"cancelReason": "또", "cancelAmount": 1000}), 403, "FORBIDDEN_CONSECUTIVE_REQUEST")
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "API", "cancelAmount": 1000}, "api-1"), 403, "FORBIDDEN_CONSECUTIVE_REQUEST")
	h.clock.Advance(time.Millisecond)
	wantError(t, h.consoleCancel(key, map[string]any{"cancelReason": "초과", "cancelAmount": 7001}), 403, "NOT_CANCELABLE_AMOUNT")

	// The rest, through the Go method.
	v, err := h.sim.ConsoleCancel(key, nil, "전액 환불")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != StatusCanceled || !v.BalanceAmount.IsZero() || v.Cancels != 2 || v.PaymentKey != key || v.OrderID != order {
		t.Fatalf("view after the full console cancel: %+v", v)
	}
	full := decode(t, h.get("/v1/payments/orders/"+order))
	wantString(t, full, "status", "CANCELED")
	wantNumber(t, full, "balanceAmount", "0")
	fullCancel := full["cancels"].([]any)[1].(map[string]any)
	wantNumber(t, fullCancel, "cancelAmount", "7000")
	wantString(t, fullCancel, "canceledAt", "2025-11-21T11:20:48+09:00")
	fullTx := fullCancel["transactionKey"].(string)
	if fullTx == partialTx || v.LastTransactionKey != fullTx || full["lastTransactionKey"] != fullTx {
		t.Fatalf("full cancel transactionKey %q, view's last %q, partial's %q", fullTx, v.LastTransactionKey, partialTx)
	}

	h.clock.Advance(time.Second)
	_, err = h.sim.ConsoleCancel(key, nil, "다시")
	wantSimError(t, err, "ALREADY_CANCELED_PAYMENT")
	wantError(t, h.consoleCancel(key, map[string]any{"cancelReason": "다시"}), 400, "ALREADY_CANCELED_PAYMENT")

	// The cancels are rows of both lists, as API cancels are.
	txs := decodeList(t, h.get("/v1/transactions?startDate=2025-11-21&endDate=2025-11-22"))
	if got := amountsOf(t, txs, "status", "amount"); got != "DONE:10000,PARTIAL_CANCELED:3000,CANCELED:7000" {
		t.Fatalf("transactions %s", got)
	}
	if txs[1]["transactionKey"] != partialTx || txs[2]["transactionKey"] != fullTx {
		t.Fatalf("transaction keys %v, %v; want %s, %s", txs[1]["transactionKey"], txs[2]["transactionKey"], partialTx, fullTx)
	}
	settlements := decodeList(t, h.get("/v1/settlements?startDate=2025-11-21&endDate=2025-11-21"))
	// 3000 × 0.03 = 90 + 9 VAT; 7000 × 0.03 = 210 + 21 VAT; negated on cancel rows.
	if got := amountsOf(t, settlements, "amount", "fee", "payOutAmount"); got != "10000:330:9670,-3000:-99:-2901,-7000:-231:-6769" {
		t.Fatalf("settlements %s", got)
	}
	for i, tx := range []string{partialTx, fullTx} {
		row := settlements[i+1]
		cancel, _ := row["cancel"].(map[string]any)
		if row["transactionKey"] != tx || cancel == nil || cancel["transactionKey"] != tx {
			t.Fatalf("settlement row %d: %v", i+1, row)
		}
	}

	// The console is not our API: its cancels stay out of the API counters.
	if st := h.sim.Stats(); st.ConsoleCancels != 6 || st.CancelRequests != 1 || st.CancelsProcessed != 1 {
		t.Fatalf("stats %+v, want 6 console cancels and the one refused API cancel", st)
	}
}

func TestConsoleCancelRefusals(t *testing.T) {
	h := newHarness(t, Config{})
	wantError(t, h.consoleCancel("no-such-key", map[string]any{"cancelReason": "r"}), 404, "NOT_FOUND_PAYMENT")
	_, err := h.sim.ConsoleCancel("no-such-key", nil, "r")
	wantSimError(t, err, "NOT_FOUND_PAYMENT")

	aborted := h.session("order-console-2", 1000, map[string]any{"confirmError": "REJECT_CARD_COMPANY"})
	wantError(t, h.confirm(aborted, "order-console-2", 1000, ""), 403, "REJECT_CARD_COMPANY")
	wantError(t, h.consoleCancel(aborted, map[string]any{"cancelReason": "r"}), 403, "NOT_CANCELABLE_PAYMENT")
	_, err = h.sim.ConsoleCancel(aborted, nil, "r")
	wantSimError(t, err, "NOT_CANCELABLE_PAYMENT")
	inProgress := h.session("order-console-3", 1000, nil)
	wantError(t, h.consoleCancel(inProgress, map[string]any{"cancelReason": "r"}), 403, "NOT_CANCELABLE_PAYMENT")

	key := h.paid("order-console-4", 5000)
	for _, body := range []any{
		map[string]any{},
		map[string]any{"cancelReason": " "},
		map[string]any{"cancelReason": strings.Repeat("가", 201)},
		map[string]any{"cancelReason": "r", "cancelAmount": 0},
		map[string]any{"cancelReason": "r", "cancelAmount": "-1"},
		map[string]any{"cancelReason": "r", "cancelAmount": 10.5},
		map[string]any{"cancelReason": "r", "cancelAmount": "ten"},
		`{"cancelReason":`,
	} {
		wantError(t, h.consoleCancel(key, body), 400, "INVALID_REQUEST")
	}
	half := decimal.RequireFromString("2500.5")
	_, err = h.sim.ConsoleCancel(key, &half, "r")
	wantSimError(t, err, "INVALID_REQUEST")
	wantError(t, h.consoleCancel(key, map[string]any{"cancelReason": "r", "cancelAmount": 5001}), 403, "NOT_CANCELABLE_AMOUNT")
	over := decimal.NewFromInt(5001)
	_, err = h.sim.ConsoleCancel(key, &over, "r")
	wantSimError(t, err, "NOT_CANCELABLE_AMOUNT")

	// No refusal changed anything.
	p := decode(t, h.get("/v1/payments/"+key))
	wantString(t, p, "status", "DONE")
	wantNumber(t, p, "balanceAmount", "5000")
	wantNull(t, p, "cancels")
	if rows := decodeList(t, h.get("/v1/transactions?startDate=2025-11-21&endDate=2025-11-22")); len(rows) != 1 {
		t.Fatalf("transactions after refusals: %v", rows)
	}
}

func TestConsoleCancelSendsWebhook(t *testing.T) {
	rc := newHookReceiver(t, nil)
	h := newHookHarness(t, rc, Faults{})
	key := h.paid("order-console-5", 8000)
	if d := rc.next(t); d.status(t) != "DONE" {
		t.Fatalf("first webhook: %s", d.body)
	}

	h.clock.Advance(time.Minute)
	partial := h.consoleCancel(key, map[string]any{"cancelReason": "콘솔 부분 환불", "cancelAmount": 3000})
	if partial.status != http.StatusOK {
		t.Fatalf("console cancel: %d %s", partial.status, partial.body)
	}
	d := rc.next(t)
	if d.status(t) != "PARTIAL_CANCELED" || !bytes.Equal(d.data(t), partial.body) {
		t.Fatalf("webhook of the console cancel:\n%s\nwant data:\n%s", d.body, partial.body)
	}
	if !transmissionIDPattern.MatchString(d.id()) || d.retried() != "0" {
		t.Fatalf("headers %v", d.header)
	}

	h.clock.Advance(time.Minute)
	if _, err := h.sim.ConsoleCancel(key, nil, "콘솔 전액 환불"); err != nil {
		t.Fatal(err)
	}
	if d := rc.next(t); d.status(t) != "CANCELED" || !bytes.Equal(d.data(t), h.get("/v1/payments/"+key)) {
		t.Fatalf("webhook of the full console cancel: %s", d.body)
	}

	// A refusal sends nothing.
	h.clock.Advance(time.Minute)
	if _, err := h.sim.ConsoleCancel(key, nil, "또"); err == nil {
		t.Fatal("a canceled payment was canceled again")
	}
	waitFor(t, "all webhooks delivered", func() bool { return h.sim.Stats().WebhooksPending == 0 })
	if st := h.sim.Stats(); st.WebhooksSent != 3 {
		t.Fatalf("stats %+v, want the DONE and two cancel webhooks", st)
	}
}

func TestConsoleCancelSurvivesRestart(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := newFakeClock()
	h, stop := openHarness(t, pool, clock, Config{})
	const order = "order-console-6"
	key := h.paid(order, 20000)
	clock.Advance(2 * time.Second)
	partial := h.consoleCancel(key, map[string]any{"cancelReason": "콘솔 부분 환불", "cancelAmount": 5000})
	if partial.status != http.StatusOK {
		t.Fatalf("console cancel: %d %s", partial.status, partial.body)
	}
	clock.Advance(300 * time.Millisecond) // still inside the 1-second rule after the restart

	keys := map[string]string{order: key}
	before := h.snapshot(keys)
	stop()
	h, stop = openHarness(t, pool, clock, Config{})
	after := h.snapshot(keys)
	if after.byOrder[order] != before.byOrder[order] || after.byOrder[order] != string(partial.body) ||
		after.transactions != before.transactions || after.settlmts != before.settlmts ||
		!sameView(after.views[order], before.views[order]) {
		t.Fatalf("after the restart:\n%+v\nbefore:\n%+v", after, before)
	}
	if n := len(decodeList(t, []byte(after.settlmts))); n != 2 {
		t.Fatalf("%d settlement rows, want the approval and the console cancel", n)
	}

	// The console cancel's time was saved: the 1-second rule spans the restart.
	_, err := h.sim.ConsoleCancel(key, nil, "너무 빨리")
	wantSimError(t, err, "FORBIDDEN_CONSECUTIVE_REQUEST")
	clock.Advance(time.Second)
	v, err := h.sim.ConsoleCancel(key, nil, "콘솔 전액 환불")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != StatusCanceled || v.Cancels != 2 {
		t.Fatalf("view %+v", v)
	}

	before = h.snapshot(keys)
	stop()
	h, _ = openHarness(t, pool, clock, Config{})
	after = h.snapshot(keys)
	if after.byKey[order] != before.byKey[order] || after.transactions != before.transactions || after.settlmts != before.settlmts {
		t.Fatalf("after the second restart:\n%+v\nbefore:\n%+v", after, before)
	}
	p := decode(t, []byte(after.byKey[order]))
	wantString(t, p, "status", "CANCELED")
	if got := amountsOf(t, decodeList(t, []byte(after.transactions)), "status", "amount"); got != "DONE:20000,PARTIAL_CANCELED:5000,CANCELED:15000" {
		t.Fatalf("transactions %s", got)
	}
	clock.Advance(time.Second)
	wantError(t, h.consoleCancel(key, map[string]any{"cancelReason": "또"}), 400, "ALREADY_CANCELED_PAYMENT")
}

func TestConsoleCancelAndFeeRateTheStoreRefuses(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := newFakeClock()
	h, _ := openHarness(t, pool, clock, Config{})
	const order = "order-console-7"
	key := h.paid(order, 9000)
	clock.Advance(2 * time.Second)

	allow := refuseWrites(t, pool, "cancels")
	_, err := h.sim.ConsoleCancel(key, nil, "콘솔 환불")
	wantSimError(t, err, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	wantError(t, h.consoleCancel(key, map[string]any{"cancelReason": "콘솔 환불"}), 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	allow()
	if v, _ := h.sim.Payment(order); v.Status != StatusDone || v.Cancels != 0 || !v.BalanceAmount.Equal(decimal.NewFromInt(9000)) {
		t.Fatalf("after refused console cancels: %+v", v)
	}

	allow = refuseWrites(t, pool, "payments")
	wantSimError(t, h.sim.SetSettlementFeeRate(key, decimal.RequireFromString("0.05")), "FAILED_INTERNAL_SYSTEM_PROCESSING")
	allow()
	rows := decodeList(t, h.get("/v1/settlements?startDate=2025-11-21&endDate=2025-11-21"))
	if got := amountsOf(t, rows, "amount", "fee"); got != "9000:297" { // the contract's 270 + 27
		t.Fatalf("settlements after a refused rate: %s", got)
	}

	// No clock advance: the refused cancels did not start the 1-second rule.
	if _, err := h.sim.ConsoleCancel(key, nil, "콘솔 환불"); err != nil {
		t.Fatal(err)
	}
}
