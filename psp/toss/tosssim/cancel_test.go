package tosssim

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// paid opens and confirms a payment and returns its paymentKey.
func (h *harness) paid(orderID string, amount int64) string {
	h.t.Helper()
	key := h.session(orderID, amount, nil)
	if r := h.confirm(key, orderID, amount, ""); r.status != http.StatusOK {
		h.t.Fatalf("confirm %s: %d %s", orderID, r.status, r.body)
	}
	return key
}

func TestCancelFull(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.paid("order-000101", 10000)
	h.clock.Advance(time.Hour)
	r := h.cancel(key, map[string]any{"cancelReason": "구매자가 취소를 원함"}, "c1")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	p := decode(t, r.body)
	wantString(t, p, "status", "CANCELED")
	wantNumber(t, p, "totalAmount", "10000")
	wantNumber(t, p, "balanceAmount", "0")
	wantNumber(t, p, "suppliedAmount", "0")
	wantNumber(t, p, "vat", "0")
	cancels, _ := p["cancels"].([]any)
	if len(cancels) != 1 {
		t.Fatalf("cancels %#v", p["cancels"])
	}
	c := cancels[0].(map[string]any)
	wantString(t, c, "cancelReason", "구매자가 취소를 원함")
	wantString(t, c, "canceledAt", "2025-11-21T11:20:47+09:00")
	wantNumber(t, c, "cancelAmount", "10000")
	wantNumber(t, c, "refundableAmount", "0")
	wantNumber(t, c, "taxFreeAmount", "0")
	wantString(t, c, "cancelStatus", "DONE")
	wantNull(t, c, "receiptKey")
	txKey, _ := c["transactionKey"].(string)
	if !txKeyPattern.MatchString(txKey) || p["lastTransactionKey"] != txKey {
		t.Fatalf("cancel transactionKey %q, lastTransactionKey %v", txKey, p["lastTransactionKey"])
	}

	again := h.cancel(key, map[string]any{"cancelReason": "구매자가 취소를 원함"}, "c1")
	if again.status != 200 || string(again.body) != string(r.body) {
		t.Fatalf("idempotent cancel replay: %d %s", again.status, again.body)
	}
	h.clock.Advance(time.Second)
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "again"}, "c2"), 400, "ALREADY_CANCELED_PAYMENT")

	rows := decodeList(t, h.call("GET", "/v1/transactions?startDate=2025-11-21&endDate=2025-11-22", nil, nil).body)
	if len(rows) != 2 {
		t.Fatalf("rows %v", rows)
	}
	wantString(t, rows[1], "status", "CANCELED")
	wantString(t, rows[1], "transactionKey", txKey)
	wantNumber(t, rows[1], "amount", "10000")
	if st := h.sim.Stats(); st.CancelRequests != 3 || st.CancelsProcessed != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCancelPartialThenRest(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.paid("order-000102", 10000)
	h.clock.Advance(time.Second) // keep the transaction rows in distinct seconds

	r := h.cancel(key, map[string]any{"cancelReason": "부분", "cancelAmount": 1000}, "")
	p := decode(t, r.body)
	wantString(t, p, "status", "PARTIAL_CANCELED")
	wantNumber(t, p, "balanceAmount", "9000")
	wantNumber(t, p, "totalAmount", "10000")
	wantNumber(t, p, "vat", "818")
	wantNumber(t, p, "suppliedAmount", "8182")

	// Within one second of the previous cancel.
	h.clock.Advance(999 * time.Millisecond)
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "부분", "cancelAmount": 1000}, ""), 403, "FORBIDDEN_CONSECUTIVE_REQUEST")
	h.clock.Advance(time.Millisecond)

	r = h.cancel(key, map[string]any{"cancelReason": "부분 2", "cancelAmount": 1000, "refundableAmount": 9000}, "")
	p = decode(t, r.body)
	wantString(t, p, "status", "PARTIAL_CANCELED")
	wantNumber(t, p, "balanceAmount", "8000")
	cancels := p["cancels"].([]any)
	if len(cancels) != 2 {
		t.Fatalf("cancels %v", cancels)
	}
	wantNumber(t, cancels[0].(map[string]any), "refundableAmount", "9000")
	wantNumber(t, cancels[1].(map[string]any), "refundableAmount", "8000")
	if cancels[0].(map[string]any)["transactionKey"] == cancels[1].(map[string]any)["transactionKey"] {
		t.Fatal("cancels share a transactionKey")
	}

	h.clock.Advance(time.Second)
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "초과", "cancelAmount": 8001}, ""), 403, "NOT_CANCELABLE_AMOUNT")
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "가드", "refundableAmount": 9000}, ""), 400, "NOT_MATCHES_REFUNDABLE_AMOUNT")

	r = h.cancel(key, map[string]any{"cancelReason": "나머지"}, "")
	p = decode(t, r.body)
	wantString(t, p, "status", "CANCELED")
	wantNumber(t, p, "balanceAmount", "0")
	wantNumber(t, p, "vat", "0")
	wantNumber(t, p["cancels"].([]any)[2].(map[string]any), "cancelAmount", "8000")

	v, _ := h.sim.Payment("order-000102")
	if v.Status != StatusCanceled || v.Cancels != 3 || !v.BalanceAmount.IsZero() {
		t.Fatalf("view %+v", v)
	}
	rows := decodeList(t, h.call("GET", "/v1/transactions?startDate=2025-11-21T00:00:00&endDate=2025-11-21T23:59:59.999", nil, nil).body)
	var statuses []string
	for _, row := range rows {
		statuses = append(statuses, row["status"].(string)+":"+row["amount"].(interface{ String() string }).String())
	}
	if got := strings.Join(statuses, ","); got != "DONE:10000,PARTIAL_CANCELED:1000,PARTIAL_CANCELED:1000,CANCELED:8000" {
		t.Fatalf("transactions %s", got)
	}
}

func TestCancelErrors(t *testing.T) {
	h := newHarness(t, Config{})
	wantError(t, h.cancel("nope", map[string]any{"cancelReason": "r"}, ""), 404, "NOT_FOUND_PAYMENT")

	inProgress := h.session("order-000103", 1000, nil)
	wantError(t, h.cancel(inProgress, map[string]any{"cancelReason": "r"}, ""), 403, "NOT_CANCELABLE_PAYMENT")

	key := h.paid("order-000104", 1000)
	for _, body := range []any{
		map[string]any{},
		map[string]any{"cancelReason": ""},
		map[string]any{"cancelReason": strings.Repeat("가", 201)},
		map[string]any{"cancelReason": "r", "cancelAmount": 0},
		map[string]any{"cancelReason": "r", "cancelAmount": -1},
		map[string]any{"cancelReason": "r", "cancelAmount": "100"},
		map[string]any{"cancelReason": "r", "cancelAmount": 10.5},
		`{"cancelReason":`,
	} {
		wantError(t, h.call("POST", "/v1/payments/"+key+"/cancel", body, nil), 400, "INVALID_REQUEST")
	}
	if r := h.cancel(key, map[string]any{"cancelReason": strings.Repeat("가", 200)}, ""); r.status != 200 {
		t.Fatalf("200-char reason: %d %s", r.status, r.body)
	}
	// Within the second, the rate guard answers before the status check.
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "r"}, ""), 403, "FORBIDDEN_CONSECUTIVE_REQUEST")
}

func TestTransactionsList(t *testing.T) {
	h := newHarness(t, Config{})
	// Day 1: three approvals at distinct seconds; day 2: one approval and one cancel.
	k1 := h.paid("order-000201", 1000)
	h.clock.Advance(time.Second)
	h.paid("order-000202", 2000)
	h.clock.Advance(time.Second)
	h.paid("order-000203", 3000)
	h.clock.Advance(24 * time.Hour)
	h.paid("order-000204", 4000)
	h.clock.Advance(time.Second)
	h.cancel(k1, map[string]any{"cancelReason": "r", "cancelAmount": 500}, "")

	list := func(query string) reply { return h.call("GET", "/v1/transactions?"+query, nil, nil) }
	orderIDs := func(r reply) string {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var ids []string
		for _, row := range decodeList(t, r.body) {
			ids = append(ids, row["orderId"].(string))
		}
		return strings.Join(ids, ",")
	}

	day1 := list("startDate=2025-11-21T00:00:00&endDate=2025-11-21T23:59:59")
	if got := orderIDs(day1); got != "order-000201,order-000202,order-000203" {
		t.Fatalf("day 1: %s", got)
	}
	row := decodeList(t, day1.body)[0]
	wantString(t, row, "mId", "tosssimmid01")
	wantString(t, row, "paymentKey", k1)
	wantString(t, row, "method", "카드")
	wantString(t, row, "status", "DONE")
	wantString(t, row, "currency", "KRW")
	wantString(t, row, "transactionAt", "2025-11-21T10:20:47+09:00")
	wantNumber(t, row, "amount", "1000")
	wantNull(t, row, "customerKey")
	if row["useEscrow"] != false || !strings.HasPrefix(row["receiptUrl"].(string), "https://") || !txKeyPattern.MatchString(row["transactionKey"].(string)) {
		t.Fatalf("row %v", row)
	}

	// The window edges are inclusive and read as KST.
	if got := orderIDs(list("startDate=2025-11-21T10:20:48.000&endDate=2025-11-21T10:20:49")); got != "order-000202,order-000203" {
		t.Fatalf("edges: %s", got)
	}
	if got := orderIDs(list("startDate=2025-11-22&endDate=2025-11-23")); got != "order-000204,order-000201" {
		t.Fatalf("day 2: %s", got)
	}
	if r := list("startDate=2025-11-25&endDate=2025-11-26"); r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("empty: %d %s", r.status, r.body)
	}

	// Paging: limit 2, then startingAfter the last key.
	all := "startDate=2025-11-01&endDate=2025-12-01"
	page1 := decodeList(t, list(all+"&limit=2").body)
	if len(page1) != 2 {
		t.Fatalf("page 1 has %d rows", len(page1))
	}
	last := page1[1]["transactionKey"].(string)
	if got := orderIDs(list(all + "&limit=2&startingAfter=" + last)); got != "order-000203,order-000204" {
		t.Fatalf("page 2: %s", got)
	}
	page3 := list(all + "&limit=2&startingAfter=" + decodeList(t, list(all+"&limit=4").body)[3]["transactionKey"].(string))
	if got := orderIDs(page3); got != "order-000201" {
		t.Fatalf("page 3: %s", got)
	}

	wantError(t, list(all+"&startingAfter=42B9BB5ECF555F940E064C5D18CBE3BE"), 400, "INVALID_TRANSACTION_KEY")
	for _, q := range []string{
		"endDate=2025-11-22",
		"startDate=2025-11-21",
		"startDate=2025-11-21T10:20:47%2B09:00&endDate=2025-11-22",
		"startDate=yesterday&endDate=2025-11-22",
		all + "&limit=0",
		all + "&limit=5001",
		all + "&limit=ten",
	} {
		wantError(t, list(q), 400, "INVALID_REQUEST")
	}
	if r := list(all + "&limit=5000"); r.status != 200 {
		t.Fatalf("limit 5000: %d", r.status)
	}
}

func TestBehindStripPrefix(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{Now: clock.Now, MID: "tvivarepublica4"})
	mux := http.NewServeMux()
	mux.Handle("/tosssim/", http.StripPrefix("/tosssim", sim.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h := &harness{t: t, sim: sim, clock: clock, base: srv.URL + "/tosssim"}

	key := h.session("order-000301", 163020, nil)
	if !strings.HasPrefix(key, "tviva") {
		t.Fatalf("paymentKey %q", key)
	}
	p := decode(t, h.confirm(key, "order-000301", 163020, "k").body)
	wantString(t, p, "status", "DONE")
	wantNumber(t, p, "suppliedAmount", "148200")
	wantNumber(t, p, "vat", "14820")
	if r := h.confirm(key, "order-000301", 163020, "k"); r.status != 200 {
		t.Fatalf("replay behind prefix: %d", r.status)
	}
	for _, path := range []string{"/v1/payments/" + key, "/v1/payments/orders/order-000301", "/v1/transactions?startDate=2025-11-21&endDate=2025-11-22", "/sim/v1/stats"} {
		if r := h.call("GET", path, nil, nil); r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	h.clock.Advance(time.Second)
	if r := h.cancel(key, map[string]any{"cancelReason": "r"}, ""); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if sim.ConfirmsFor("order-000301") != 1 {
		t.Fatalf("ConfirmsFor = %d", sim.ConfirmsFor("order-000301"))
	}
}
