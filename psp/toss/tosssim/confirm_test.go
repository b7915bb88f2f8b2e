package tosssim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var (
	paymentKeyPattern = regexp.MustCompile(`^tosss\d{14}[A-Za-z0-9]{5}$`)
	txKeyPattern      = regexp.MustCompile(`^[0-9A-F]{32}$`)
	kstTimePattern    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00$`)
)

func TestConfirmThenLookupByKeyAndOrder(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000001", 15000, nil)
	if !paymentKeyPattern.MatchString(key) || !strings.Contains(key, "20251121102047") {
		t.Fatalf("paymentKey %q: want MID prefix + KST yyyyMMddHHmmss + 5 alphanumerics", key)
	}

	h.clock.Advance(22 * time.Second)
	r := h.confirm(key, "order-000001", 15000, "")
	if r.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if r.header.Get("X-TossPayments-Trace-Id") == "" {
		t.Fatal("no X-TossPayments-Trace-Id")
	}
	p := decode(t, r.body)
	wantString(t, p, "version", "2022-11-16")
	wantString(t, p, "mId", "tosssimmid01")
	wantString(t, p, "paymentKey", key)
	wantString(t, p, "orderId", "order-000001")
	wantString(t, p, "orderName", "토스 티셔츠 외 2건")
	wantString(t, p, "status", "DONE")
	wantString(t, p, "method", "카드")
	wantString(t, p, "type", "NORMAL")
	wantString(t, p, "country", "KR")
	wantString(t, p, "currency", "KRW")
	wantString(t, p, "requestedAt", "2025-11-21T10:20:47+09:00")
	wantString(t, p, "approvedAt", "2025-11-21T10:21:09+09:00")
	wantNumber(t, p, "totalAmount", "15000")
	wantNumber(t, p, "balanceAmount", "15000")
	wantNumber(t, p, "suppliedAmount", "13636")
	wantNumber(t, p, "vat", "1364")
	wantNumber(t, p, "taxFreeAmount", "0")
	wantNumber(t, p, "taxExemptionAmount", "0")
	wantNull(t, p, "cancels")
	wantNull(t, p, "failure")
	wantNull(t, p, "virtualAccount")
	wantNull(t, p, "secret")
	if p["isPartialCancelable"] != true || p["useEscrow"] != false || p["cultureExpense"] != false {
		t.Fatalf("flags: %v %v %v", p["isPartialCancelable"], p["useEscrow"], p["cultureExpense"])
	}
	lastTx, _ := p["lastTransactionKey"].(string)
	if !txKeyPattern.MatchString(lastTx) {
		t.Fatalf("lastTransactionKey %q", lastTx)
	}
	card, ok := p["card"].(map[string]any)
	if !ok {
		t.Fatalf("card = %#v", p["card"])
	}
	wantNumber(t, card, "amount", "15000")
	wantNumber(t, card, "installmentPlanMonths", "0")
	if s, _ := card["approveNo"].(string); len(s) != 8 {
		t.Fatalf("card.approveNo %q", s)
	}
	receipt, _ := p["receipt"].(map[string]any)
	if u, _ := receipt["url"].(string); !strings.Contains(u, "transactionId="+key+"&ref=PX") {
		t.Fatalf("receipt.url %q (want a literal &)", u)
	}
	checkout, _ := p["checkout"].(map[string]any)
	wantString(t, checkout, "url", "https://api.tosspayments.com/v1/payments/"+key+"/checkout")

	byKey := h.call("GET", "/v1/payments/"+key, nil, nil)
	byOrder := h.call("GET", "/v1/payments/orders/order-000001", nil, nil)
	if byKey.status != 200 || byOrder.status != 200 {
		t.Fatalf("lookups: %d %d", byKey.status, byOrder.status)
	}
	if !bytes.Equal(byKey.body, r.body) || !bytes.Equal(byOrder.body, r.body) {
		t.Fatalf("lookups differ from the confirm answer:\n%s\n%s\n%s", r.body, byKey.body, byOrder.body)
	}

	view, ok := h.sim.Payment("order-000001")
	if !ok || view.Status != StatusDone || view.Approvals != 1 || !view.TotalAmount.Equal(decimal.NewFromInt(15000)) ||
		view.LastTransactionKey != lastTx || view.PaymentKey != key {
		t.Fatalf("view %+v", view)
	}
	if st := h.sim.Stats(); st != (Stats{ConfirmRequests: 1, ConfirmsProcessed: 1, Approvals: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestLookupUnknown(t *testing.T) {
	h := newHarness(t, Config{})
	wantError(t, h.call("GET", "/v1/payments/nope", nil, nil), 404, "NOT_FOUND_PAYMENT")
	wantError(t, h.call("GET", "/v1/payments/orders/order-nope", nil, nil), 404, "NOT_FOUND_PAYMENT")
	wantError(t, h.call("DELETE", "/v1/payments/nope", nil, nil), 404, "NOT_FOUND")
}

func TestConfirmSameIdempotencyKeyReplaysBytes(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000002", 9026, nil)
	first := h.confirm(key, "order-000002", 9026, "idem-1")
	h.clock.Advance(5 * time.Second)
	second := h.confirm(key, "order-000002", 9026, "idem-1")
	if first.status != 200 || second.status != 200 || !bytes.Equal(first.body, second.body) {
		t.Fatalf("replay differs:\n%d %s\n%d %s", first.status, first.body, second.status, second.body)
	}
	p := decode(t, first.body)
	wantNumber(t, p, "suppliedAmount", "8205")
	wantNumber(t, p, "vat", "821")
	if st := h.sim.Stats(); st.ConfirmsProcessed != 1 || st.ConfirmRequests != 2 || st.Approvals != 1 {
		t.Fatalf("stats %+v", st)
	}
	if n := h.sim.ConfirmsFor("order-000002"); n != 1 {
		t.Fatalf("ConfirmsFor = %d", n)
	}
}

func TestSameKeyDifferentBodyReplaysFirstAnswer(t *testing.T) {
	h := newHarness(t, Config{})
	keyA := h.session("order-00000A", 1000, nil)
	keyB := h.session("order-00000B", 2000, nil)
	first := h.confirm(keyA, "order-00000A", 1000, "shared")
	second := h.confirm(keyB, "order-00000B", 2000, "shared")
	if !bytes.Equal(first.body, second.body) || first.status != second.status {
		t.Fatalf("second answer is not the replay of the first:\n%s\n%s", first.body, second.body)
	}
	// As in T-1186570706016809030: the second payment was never confirmed.
	if v, _ := h.sim.Payment("order-00000B"); v.Status != StatusInProgress {
		t.Fatalf("B = %s, want IN_PROGRESS", v.Status)
	}
	if h.sim.ConfirmsFor("order-00000B") != 0 {
		t.Fatal("B's confirm executed")
	}
}

func TestIdempotencyScopeIncludesSecretKeyAndPath(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000003", 1000, nil)
	h.confirm(key, "order-000003", 1000, "k")
	// Same key under another API key is a different request: it executes.
	other := h.call("POST", "/v1/payments/confirm",
		map[string]any{"paymentKey": key, "orderId": "order-000003", "amount": 1000},
		map[string]string{"Idempotency-Key": "k", "Authorization": basicAuth("test_sk_other")})
	wantError(t, other, 400, "ALREADY_PROCESSED_PAYMENT")
	// Same key on another path executes too.
	c := h.cancel(key, map[string]any{"cancelReason": "고객 요청"}, "k")
	if c.status != 200 {
		t.Fatalf("cancel under a key used on confirm: %d %s", c.status, c.body)
	}
	if st := h.sim.Stats(); st.ConfirmsProcessed != 2 || st.CancelsProcessed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfirmDifferentKeyAfterDone(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000004", 1000, nil)
	if r := h.confirm(key, "order-000004", 1000, "a"); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	wantError(t, h.confirm(key, "order-000004", 1000, "b"), 400, "ALREADY_PROCESSED_PAYMENT")
	wantError(t, h.confirm(key, "order-000004", 1000, ""), 400, "ALREADY_PROCESSED_PAYMENT")
	if v, _ := h.sim.Payment("order-000004"); v.Approvals != 1 {
		t.Fatalf("approvals %d", v.Approvals)
	}
}

func TestConcurrentSameKeyIsInFlight(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000005", 5000, nil)
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // runs before the server closes, so a failed test cannot hang
	var once sync.Once
	h.sim.mu.Lock() // the server goroutines read the hook under mu
	h.sim.beforeConfirmCommit = func(string) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	h.sim.mu.Unlock()

	firstDone := make(chan reply, 1)
	go func() {
		// t.Fatal must not run off the test goroutine, so this goroutine does its own request.
		req, _ := http.NewRequest("POST", h.base+"/v1/payments/confirm",
			strings.NewReader(`{"paymentKey":"`+key+`","orderId":"order-000005","amount":5000}`))
		req.Header.Set("Authorization", basicAuth(testKey))
		req.Header.Set("Idempotency-Key", "dup")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			firstDone <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		firstDone <- reply{status: resp.StatusCode, body: buf.Bytes()}
	}()
	<-entered

	wantError(t, h.confirm(key, "order-000005", 5000, "dup"), 409, "IDEMPOTENT_REQUEST_PROCESSING")
	// Without the key, a concurrent confirm of the same payment is refused, not run twice.
	wantError(t, h.confirm(key, "order-000005", 5000, "other"), 400, "ALREADY_PROCESSED_PAYMENT")
	if v, _ := h.sim.Payment("order-000005"); v.Status != StatusInProgress {
		t.Fatalf("status while in flight = %s", v.Status)
	}

	releaseAll()
	first := <-firstDone
	if first.status != 200 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	again := h.confirm(key, "order-000005", 5000, "dup")
	if again.status != 200 || !bytes.Equal(again.body, first.body) {
		t.Fatalf("after the first finished, the key replays it: %d %s", again.status, again.body)
	}
	if st := h.sim.Stats(); st.ConfirmsProcessed != 2 || st.Approvals != 1 || st.ConfirmRequests != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConcurrentConfirmsApproveOnce(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000006", 3000, nil)
	const n = 16
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", h.base+"/v1/payments/confirm",
				strings.NewReader(`{"paymentKey":"`+key+`","orderId":"order-000006","amount":3000}`))
			req.Header.Set("Authorization", basicAuth(testKey))
			req.Header.Set("Idempotency-Key", "k"+string(rune('a'+i)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- -1
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for st := range statuses {
		switch st {
		case 200:
			ok++
		case 400:
		default:
			t.Fatalf("unexpected status %d", st)
		}
	}
	if ok != 1 || h.sim.Stats().Approvals != 1 {
		t.Fatalf("%d confirms succeeded, approvals %d", ok, h.sim.Stats().Approvals)
	}
}

func TestIdempotencyKeyLength(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000007", 1000, nil)
	wantError(t, h.confirm(key, "order-000007", 1000, strings.Repeat("가", 301)), 400, "INVALID_IDEMPOTENCY_KEY")
	if h.sim.Stats().ConfirmsProcessed != 0 {
		t.Fatal("a confirm with a bad key executed")
	}
	if r := h.confirm(key, "order-000007", 1000, strings.Repeat("k", 300)); r.status != 200 {
		t.Fatalf("300 chars: %d %s", r.status, r.body)
	}
	// Ignored on GET, however long.
	if r := h.call("GET", "/v1/payments/"+key, nil, map[string]string{"Idempotency-Key": strings.Repeat("k", 301)}); r.status != 200 {
		t.Fatalf("GET with long key: %d %s", r.status, r.body)
	}
}

func TestIdempotentAnswerExpiresAfterTTL(t *testing.T) {
	h := newHarness(t, Config{IdempotencyTTL: time.Hour})
	key := h.session("order-000008", 1000, nil)
	if r := h.confirm(key, "order-000008", 1000, "k"); r.status != 200 {
		t.Fatal(r.status)
	}
	h.clock.Advance(59 * time.Minute)
	if r := h.confirm(key, "order-000008", 1000, "k"); r.status != 200 {
		t.Fatalf("within TTL: %d", r.status)
	}
	h.clock.Advance(time.Minute)
	wantError(t, h.confirm(key, "order-000008", 1000, "k"), 400, "ALREADY_PROCESSED_PAYMENT")
}

func TestAuthErrors(t *testing.T) {
	h := newHarness(t, Config{})
	b64 := func(s string) string { return "Basic " + base64Std(s) }
	cases := []struct {
		name, auth string
		status     int
		code       string
	}{
		{"missing", "", 403, "INCORRECT_BASIC_AUTH_FORMAT"},
		{"bearer", "Bearer " + testKey, 403, "INCORRECT_BASIC_AUTH_FORMAT"},
		{"not base64", "Basic %%%", 403, "INCORRECT_BASIC_AUTH_FORMAT"},
		{"no colon", b64(testKey), 403, "INCORRECT_BASIC_AUTH_FORMAT"},
		{"unknown prefix", b64("test_ck_client:"), 401, "UNAUTHORIZED_KEY"},
		{"live key not configured", b64("live_sk_abc:"), 401, "UNAUTHORIZED_KEY"},
		{"BOM", b64("\ufefftest_sk_x:"), 401, "UNAUTHORIZED_KEY"},
		{"empty key", b64(":"), 401, "UNAUTHORIZED_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": tc.auth}
			wantError(t, h.call("POST", "/v1/payments/confirm", `{}`, hdr), tc.status, tc.code)
			wantError(t, h.call("GET", "/v1/payments/x", nil, hdr), tc.status, tc.code)
			wantError(t, h.call("GET", "/v1/transactions?startDate=2025-01-01&endDate=2025-01-02", nil, hdr), tc.status, tc.code)
		})
	}
	if st := h.sim.Stats(); st.ConfirmRequests != 0 {
		t.Fatalf("unauthenticated confirms counted: %+v", st)
	}
	for _, key := range []string{"test_gsk_docs_x", "test_ak_x", testKey} {
		if r := h.call("GET", "/v1/payments/x", nil, map[string]string{"Authorization": basicAuth(key)}); r.status != 404 {
			t.Fatalf("%s: %d", key, r.status)
		}
	}
}

func TestConfiguredSecretKeys(t *testing.T) {
	h := newHarness(t, Config{SecretKeys: []string{"live_sk_real", " test_sk_only "}})
	for key, want := range map[string]int{"live_sk_real": 404, "test_sk_only": 404, testKey: 401} {
		if r := h.call("GET", "/v1/payments/x", nil, map[string]string{"Authorization": basicAuth(key)}); r.status != want {
			t.Fatalf("%s: %d, want %d", key, r.status, want)
		}
	}
}

func TestTestCodeHeader(t *testing.T) {
	h := newHarness(t, Config{SecretKeys: []string{testKey, "live_sk_real"}})
	key := h.session("order-000009", 1000, nil)
	code := map[string]string{"TossPayments-Test-Code": "REJECT_CARD_COMPANY", "Idempotency-Key": "tc"}
	r := h.call("POST", "/v1/payments/confirm", map[string]any{"paymentKey": key, "orderId": "order-000009", "amount": 1000}, code)
	wantError(t, r, 403, "REJECT_CARD_COMPANY")
	if v, _ := h.sim.Payment("order-000009"); v.Status != StatusInProgress {
		t.Fatalf("test code executed: %s", v.Status)
	}
	if st := h.sim.Stats(); st.ConfirmRequests != 1 || st.ConfirmsProcessed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Not stored: the same idempotency key without the header executes.
	if r := h.confirm(key, "order-000009", 1000, "tc"); r.status != 200 {
		t.Fatalf("after test code: %d %s", r.status, r.body)
	}
	wantError(t, h.call("GET", "/v1/payments/"+key, nil, map[string]string{"TossPayments-Test-Code": "NOT_FOUND_PAYMENT"}), 404, "NOT_FOUND_PAYMENT")
	wantError(t, h.call("POST", "/v1/payments/"+key+"/cancel", `{}`, map[string]string{"TossPayments-Test-Code": "FAILED_REFUND_PROCESS"}), 500, "FAILED_REFUND_PROCESS")
	wantError(t, h.call("GET", "/v1/transactions", nil, map[string]string{"TossPayments-Test-Code": "INVALID_TRANSACTION_KEY"}), 400, "INVALID_TRANSACTION_KEY")

	unknown := h.call("GET", "/v1/payments/"+key, nil, map[string]string{"TossPayments-Test-Code": "ALREADY_PROCESSING_REQUEST"})
	if m := decode(t, unknown.body); unknown.status != 400 || m["code"] != "ALREADY_PROCESSING_REQUEST" {
		t.Fatalf("unknown code: %d %s", unknown.status, unknown.body)
	}

	live := h.call("GET", "/v1/payments/"+key, nil, map[string]string{
		"Authorization": basicAuth("live_sk_real"), "TossPayments-Test-Code": "NOT_FOUND_PAYMENT"})
	if live.status != 200 {
		t.Fatalf("live key must ignore the test code: %d %s", live.status, live.body)
	}
}

func TestConfirmWindowExpiry(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000010", 50000, nil)
	h.clock.Advance(10*time.Minute + time.Second)
	wantError(t, h.confirm(key, "order-000010", 50000, "x"), 404, "NOT_FOUND_PAYMENT_SESSION")

	p := decode(t, h.call("GET", "/v1/payments/"+key, nil, nil).body)
	wantString(t, p, "status", "EXPIRED")
	wantNull(t, p, "method")
	wantNull(t, p, "approvedAt")
	wantNull(t, p, "lastTransactionKey")
	wantNull(t, p, "receipt")
	wantNull(t, p, "useEscrow")
	wantNull(t, p, "card")
	f, _ := p["failure"].(map[string]any)
	wantString(t, f, "code", "EXPIRED_PAYMENT")
	wantString(t, f, "message", "결제가 만료되었습니다. 다시 시도해주세요.")
	wantError(t, h.confirm(key, "order-000010", 50000, ""), 404, "NOT_FOUND_PAYMENT_SESSION")
	wantError(t, h.cancel(key, map[string]any{"cancelReason": "r"}, ""), 403, "NOT_CANCELABLE_PAYMENT")
}

func TestConfirmWindowBoundaryAndLazyLookup(t *testing.T) {
	h := newHarness(t, Config{ConfirmWindow: time.Minute})
	keyA := h.session("order-000011", 1000, nil)
	h.session("order-000012", 1000, nil)
	h.clock.Advance(time.Minute)
	if r := h.confirm(keyA, "order-000011", 1000, ""); r.status != 200 {
		t.Fatalf("at exactly the window: %d %s", r.status, r.body)
	}
	h.clock.Advance(time.Nanosecond)
	p := decode(t, h.call("GET", "/v1/payments/orders/order-000012", nil, nil).body)
	wantString(t, p, "status", "EXPIRED")
	if v, _ := h.sim.Payment("order-000012"); v.Status != StatusExpired || v.FailureCode != "EXPIRED_PAYMENT" {
		t.Fatalf("view %+v", v)
	}
}

func TestConfirmMismatchAndBadBodies(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000013", 1000, nil)
	wantError(t, h.confirm(key, "order-000013", 999, ""), 400, "INVALID_REQUEST")
	wantError(t, h.confirm(key, "order-999999", 1000, ""), 400, "INVALID_REQUEST")
	for _, body := range []string{
		`{"paymentKey":`,
		`[]`,
		`{"paymentKey":"` + key + `","orderId":"order-000013","amount":"1000"}`,
		`{"paymentKey":"` + key + `","orderId":"order-000013","amount":1000.5}`,
		`{"paymentKey":"` + key + `","orderId":"order-000013"}`,
		`{"orderId":"order-000013","amount":1000}`,
	} {
		wantError(t, h.call("POST", "/v1/payments/confirm", body, nil), 400, "INVALID_REQUEST")
	}
	wantError(t, h.confirm("no-such-key", "order-000013", 1000, ""), 404, "NOT_FOUND_PAYMENT_SESSION")
	if v, _ := h.sim.Payment("order-000013"); v.Status != StatusInProgress {
		t.Fatalf("status %s", v.Status)
	}
	if r := h.confirm(key, "order-000013", 1000, ""); r.status != 200 {
		t.Fatalf("correct confirm after mismatches: %d %s", r.status, r.body)
	}
}

func TestConfirmErrorAborts(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000014", 1000, map[string]any{"confirmError": "REJECT_CARD_COMPANY"})
	wantError(t, h.confirm(key, "order-000014", 1000, ""), 403, "REJECT_CARD_COMPANY")
	p := decode(t, h.call("GET", "/v1/payments/"+key, nil, nil).body)
	wantString(t, p, "status", "ABORTED")
	wantString(t, p, "method", "카드")
	wantNull(t, p, "approvedAt")
	f, _ := p["failure"].(map[string]any)
	wantString(t, f, "code", "REJECT_CARD_COMPANY")
	wantError(t, h.confirm(key, "order-000014", 1000, ""), 400, "ALREADY_PROCESSED_PAYMENT")
	if st := h.sim.Stats(); st.Approvals != 0 || st.ConfirmsProcessed != 2 {
		t.Fatalf("stats %+v", st)
	}
	// An aborted order may be paid again under a new session.
	key2 := h.session("order-000014", 1000, nil)
	if key2 == key {
		t.Fatal("same paymentKey")
	}
	wantError(t, h.call("GET", "/v1/payments/"+key, nil, nil), 404, "NOT_FOUND_PAYMENT")
	if r := h.confirm(key2, "order-000014", 1000, ""); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestConfirmErrorUnknownOutcome(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000015", 1000, map[string]any{"confirmError": "PROVIDER_ERROR"})
	wantError(t, h.confirm(key, "order-000015", 1000, "k1"), 400, "PROVIDER_ERROR")
	if v, _ := h.sim.Payment("order-000015"); v.Status != StatusInProgress {
		t.Fatalf("status %s, want unchanged", v.Status)
	}
	// The error is stored under its key like any answer ...
	wantError(t, h.confirm(key, "order-000015", 1000, "k1"), 400, "PROVIDER_ERROR")
	// ... and a fresh key runs again; the error was due once.
	if r := h.confirm(key, "order-000015", 1000, "k2"); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}

	lost := h.session("order-000016", 1000, map[string]any{
		"confirmError": "FAILED_INTERNAL_SYSTEM_PROCESSING", "confirmErrorOutcome": "DONE"})
	wantError(t, h.confirm(lost, "order-000016", 1000, ""), 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
	if v, _ := h.sim.Payment("order-000016"); v.Status != StatusDone || v.Approvals != 1 {
		t.Fatalf("lost answer: %+v", v)
	}

	always := h.session("order-000017", 1000, map[string]any{"confirmError": "UNKNOWN_PAYMENT_ERROR", "confirmErrorTimes": -1})
	for range 3 {
		wantError(t, h.confirm(always, "order-000017", 1000, ""), 500, "UNKNOWN_PAYMENT_ERROR")
	}
}

func TestSessions(t *testing.T) {
	h := newHarness(t, Config{})
	bad := []map[string]any{
		{"orderId": "short", "amount": 1000},
		{"orderId": "order-0001!", "amount": 1000},
		{"orderId": strings.Repeat("a", 65), "amount": 1000},
		{"orderId": "order-000020", "amount": 0},
		{"orderId": "order-000020", "amount": -5},
		{"orderId": "order-000020", "amount": 10.5},
		{"orderId": "order-000020", "amount": "abc"},
		{"orderId": "order-000020"},
		{"orderId": "order-000020", "amount": 1000, "method": "가상계좌"},
		{"orderId": "order-000020", "amount": 1000, "confirmError": "NOPE"},
		{"orderId": "order-000020", "amount": 1000, "orderName": strings.Repeat("가", 101)},
	}
	for _, b := range bad {
		wantError(t, h.call("POST", "/sim/v1/sessions", b, nil), 400, "INVALID_REQUEST")
	}
	// A decimal string is accepted.
	k1 := h.session("order-000020", "1000", nil)
	k2 := h.session("order-000020", 1000, nil)
	if k1 == k2 {
		t.Fatal("replacing session kept the key")
	}
	wantError(t, h.confirm(k1, "order-000020", 1000, ""), 404, "NOT_FOUND_PAYMENT_SESSION")
	if r := h.confirm(k2, "order-000020", 1000, ""); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	wantError(t, h.call("POST", "/sim/v1/sessions", map[string]any{"orderId": "order-000020", "amount": 1000}, nil), 409, "DUPLICATED_ORDER_ID")

	easy := h.session("order-000021", 2000, map[string]any{"method": "간편결제"})
	p := decode(t, h.confirm(easy, "order-000021", 2000, "").body)
	wantString(t, p, "method", "간편결제")
	ep, _ := p["easyPay"].(map[string]any)
	wantString(t, ep, "provider", "토스페이")

	if _, err := h.sim.CreateSession("order-000020", decimal.NewFromInt(1000), ""); err == nil {
		t.Fatal("Go API accepted a duplicate order")
	} else if e, ok := err.(*Error); !ok || e.Status != 409 || e.Code != "DUPLICATED_ORDER_ID" {
		t.Fatalf("err %v", err)
	}
	goKey, err := h.sim.CreateSession("order-000022", decimal.NewFromInt(700), "")
	if err != nil || !paymentKeyPattern.MatchString(goKey) {
		t.Fatalf("%q %v", goKey, err)
	}
	if v, ok := h.sim.Payment("order-000022"); !ok || v.Status != StatusInProgress || v.PaymentKey != goKey {
		t.Fatalf("%+v", v)
	}
	if _, ok := h.sim.Payment("order-nothing"); ok {
		t.Fatal("unknown order found")
	}
}

func TestStatsEndpoint(t *testing.T) {
	h := newHarness(t, Config{})
	key := h.session("order-000030", 1000, nil)
	h.confirm(key, "order-000030", 1000, "k")
	h.confirm(key, "order-000030", 1000, "k")
	h.confirm(key, "order-000030", 1000, "")
	r := h.call("GET", "/sim/v1/stats", nil, map[string]string{"Authorization": ""})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var got struct {
		Stats
		Confirms map[string]int `json:"confirms"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := Stats{ConfirmRequests: 3, ConfirmsProcessed: 2, Approvals: 1}
	if got.Stats != want || got.Confirms["order-000030"] != 2 || len(got.Confirms) != 1 {
		t.Fatalf("stats %s", r.body)
	}
	for _, field := range []string{`"confirmRequests":3`, `"confirmsProcessed":2`, `"approvals":1`, `"cancelRequests":0`, `"confirms":{"order-000030":2}`} {
		if !bytes.Contains(r.body, []byte(field)) {
			t.Fatalf("stats body %s lacks %s", r.body, field)
		}
	}
}

func TestTimesAreKST(t *testing.T) {
	// A UTC clock must still produce +09:00 times.
	utc := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHarness(t, Config{Now: func() time.Time { return utc }})
	key := h.session("order-000040", 1000, nil)
	if !strings.Contains(key, "20250101090000") {
		t.Fatalf("paymentKey %q: want the KST time", key)
	}
	p := decode(t, h.confirm(key, "order-000040", 1000, "").body)
	for _, f := range []string{"requestedAt", "approvedAt"} {
		if s, _ := p[f].(string); !kstTimePattern.MatchString(s) || s != "2025-01-01T09:00:00+09:00" {
			t.Fatalf("%s = %q", f, s)
		}
	}
}
