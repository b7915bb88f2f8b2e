package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
)

// apiKeys maps the base URL of each test's API to its merchant's API key: call sends it to that
// API unless the request sets its own Authorization header.
var apiKeys sync.Map

// newEnv starts a test environment whose API call authenticates to with the test merchant's key.
func newEnv(t testing.TB, opts testenv.Options) *testenv.Env {
	env := testenv.New(t, opts)
	apiKeys.Store(env.API.URL, env.APIKey)
	t.Cleanup(func() { apiKeys.Delete(env.API.URL) })
	return env
}

// call sends a JSON request and decodes the JSON answer into a map.
func call(t testing.TB, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	key := ""
	apiKeys.Range(func(base, k any) bool {
		if strings.HasPrefix(url, base.(string)+"/") {
			key = k.(string)
		}
		return true
	})
	status, raw := testenv.Do(t, key, method, url, body, header...)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: status %d, body is not JSON: %q", method, url, status, raw)
	}
	return status, out
}

const checkoutBody = `{"orderName":"Two books","buyerId":"buyer-1","lines":[
	{"sellerId":"seller-a","productId":"book-1","amount":"15000"},
	{"sellerId":"seller-b","productId":"book-2","amount":10000}]}`

// openSession is the buyer's payment window: it returns the paymentKey Toss would hand back.
func openSession(t testing.TB, env *testenv.Env, orderID, amount string) string {
	t.Helper()
	status, body := call(t, "POST", env.SimURL+"/sim/v1/sessions",
		fmt.Sprintf(`{"orderId":%q,"amount":%s,"orderName":"Two books"}`, orderID, amount))
	if status != http.StatusCreated {
		t.Fatalf("session: %d %v", status, body)
	}
	return body["paymentKey"].(string)
}

func TestCheckoutConfirmStatusEndToEnd(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	api := env.API.URL

	status, co := call(t, "POST", api+"/api/v1/payments/checkout", checkoutBody, "Idempotency-Key", "e2e-1")
	if status != http.StatusCreated {
		t.Fatalf("checkout: %d %v", status, co)
	}
	if co["amount"] != "25000" || co["currency"] != "KRW" || co["status"] != "NOT_STARTED" || co["orderName"] != "Two books" {
		t.Fatalf("checkout answer %v", co)
	}
	orderID := co["orderId"].(string)

	status, again := call(t, "POST", api+"/api/v1/payments/checkout", checkoutBody, "Idempotency-Key", "e2e-1")
	if status != http.StatusCreated || again["orderId"] != orderID {
		t.Fatalf("replayed checkout: %d %v", status, again)
	}
	status, conflict := call(t, "POST", api+"/api/v1/payments/checkout",
		strings.Replace(checkoutBody, "10000", "9000", 1), "Idempotency-Key", "e2e-1")
	if status != http.StatusConflict || errCode(conflict) != "IDEMPOTENCY_KEY_REUSED" {
		t.Fatalf("same key, other body: %d %v", status, conflict)
	}

	key := openSession(t, env, orderID, "25000")
	status, cf := call(t, "POST", api+"/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"25000"}`, key, orderID))
	if status != http.StatusOK || cf["status"] != "SUCCESS" || cf["paymentKey"] != key || cf["approvedAt"] == nil {
		t.Fatalf("confirm: %d %v", status, cf)
	}

	// Read your writes: the payment reads SUCCESS as soon as the confirm has answered (it is
	// folded from its own stream; only lists come from the read model, which may trail).
	status, p := call(t, "GET", api+"/api/v1/payments/"+orderID, "")
	if status != http.StatusOK || p["status"] != "SUCCESS" {
		t.Fatalf("GET right after confirm: %d %v", status, p)
	}
	if p["amount"] != "25000" || p["method"] != "카드" || p["paymentKey"] != key {
		t.Fatalf("payment %v", p)
	}
	lines := p["lines"].([]any)
	if len(lines) != 2 || lines[0].(map[string]any)["sellerId"] != "seller-a" || lines[1].(map[string]any)["amount"] != "10000" ||
		lines[0].(map[string]any)["status"] != "SUCCESS" {
		t.Fatalf("lines %v", lines)
	}
	var history []string
	for _, h := range p["history"].([]any) {
		history = append(history, h.(map[string]any)["type"].(string))
	}
	if strings.Join(history, ",") != "CheckoutCreated,ConfirmationStarted,PaymentApproved" {
		t.Fatalf("history %v", history)
	}

	testenv.WaitFor(t, 10*time.Second, "the list to show the payment SUCCESS", func() bool {
		status, list := call(t, "GET", api+"/api/v1/payments", "")
		ps, _ := list["payments"].([]any)
		return status == http.StatusOK && len(ps) == 1 && ps[0].(map[string]any)["status"] == "SUCCESS"
	})
}

func TestTamperedAmountOverHTTPIsRefusedWithoutCallingToss(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	_, co := call(t, "POST", env.API.URL+"/api/v1/payments/checkout", checkoutBody)
	orderID := co["orderId"].(string)
	key := openSession(t, env, orderID, "25000")
	status, body := call(t, "POST", env.API.URL+"/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":100}`, key, orderID))
	if status != http.StatusBadRequest || errCode(body) != "AMOUNT_MISMATCH" {
		t.Fatalf("tampered confirm: %d %v", status, body)
	}
	if n := env.Sim.Stats().ConfirmRequests; n != 0 {
		t.Fatalf("simulator saw %d confirms, want 0", n)
	}
	testenv.WaitFor(t, 10*time.Second, "the read model to show FAILURE", func() bool {
		_, p := call(t, "GET", env.API.URL+"/api/v1/payments/"+orderID, "")
		f, _ := p["failure"].(map[string]any)
		return p["status"] == "FAILURE" && f["code"] == "AMOUNT_MISMATCH" && f["source"] == "validation"
	})
}

func TestFiftyConcurrentConfirmsOverHTTP(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	_, co := call(t, "POST", env.API.URL+"/api/v1/payments/checkout", checkoutBody)
	orderID := co["orderId"].(string)
	key := openSession(t, env, orderID, "25000")
	body := fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"25000"}`, key, orderID)

	const n = 50
	statuses := make([]string, n)
	codes := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			code, out := call(t, "POST", env.API.URL+"/api/v1/payments/confirm", body)
			codes[i], statuses[i] = code, fmt.Sprint(out["status"])
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if codes[i] != http.StatusOK || (statuses[i] != "SUCCESS" && statuses[i] != "EXECUTING") {
			t.Fatalf("caller %d: %d %s", i, codes[i], statuses[i])
		}
	}
	if got := env.Sim.ConfirmsFor(orderID); got != 1 {
		t.Fatalf("simulator executed %d confirms, want 1", got)
	}
	if got := env.Sim.Stats().ConfirmRequests; got != 1 {
		t.Fatalf("simulator received %d confirm requests, want 1", got)
	}
	var approved int
	if err := env.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'PaymentApproved'`, "payment-"+orderID).Scan(&approved); err != nil {
		t.Fatal(err)
	}
	if approved != 1 {
		t.Fatalf("%d PaymentApproved events, want 1", approved)
	}
}

// TestBadInputIsRefusedAndNothingIsWritten sends malformed requests: each gets a 4xx with a code
// and a message, never a 500, and the event store stays empty.
func TestBadInputIsRefusedAndNothingIsWritten(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	checkout := env.API.URL + "/api/v1/payments/checkout"
	confirm := env.API.URL + "/api/v1/payments/confirm"
	line := func(amount string) string {
		return `{"orderName":"n","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":` + amount + `}]}`
	}
	huge := `{"orderName":"` + strings.Repeat("x", 1<<20) + `","buyerId":"b","lines":[]}`
	cases := []struct {
		name, url, body string
		status          int
		code            string
	}{
		{"malformed JSON", checkout, `{"orderName":`, 400, "MALFORMED_JSON"},
		{"not an object", checkout, `[1,2]`, 400, "INVALID_REQUEST"},
		{"empty body", checkout, ``, 400, "INVALID_REQUEST"},
		{"two objects", checkout, line(`"1000"`) + line(`"1000"`), 400, "INVALID_REQUEST"},
		{"unknown field", checkout, `{"orderName":"n","buyerId":"b","lines":[],"total":"5"}`, 400, "UNKNOWN_FIELD"},
		{"wrong type", checkout, `{"orderName":5,"buyerId":"b","lines":[]}`, 400, "INVALID_REQUEST"},
		{"lines not an array", checkout, `{"orderName":"n","buyerId":"b","lines":{}}`, 400, "INVALID_REQUEST"},
		{"missing lines", checkout, `{"orderName":"n","buyerId":"b"}`, 400, "INVALID_REQUEST"},
		{"missing order name", checkout, `{"buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"1"}]}`, 400, "INVALID_REQUEST"},
		{"missing amount", checkout, `{"orderName":"n","buyerId":"b","lines":[{"sellerId":"s","productId":"p"}]}`, 400, "INVALID_REQUEST"},
		{"zero", checkout, line(`"0"`), 400, "INVALID_AMOUNT"},
		{"negative", checkout, line(`-1000`), 400, "INVALID_AMOUNT"},
		{"fractional won", checkout, line(`"10.5"`), 400, "INVALID_AMOUNT"},
		{"fractional number", checkout, line(`10.5`), 400, "INVALID_AMOUNT"},
		{"exponent string", checkout, line(`"1e3"`), 400, "INVALID_AMOUNT"},
		{"exponent number", checkout, line(`1e3`), 400, "INVALID_AMOUNT"},
		{"NaN", checkout, line(`"NaN"`), 400, "INVALID_AMOUNT"},
		{"non-numeric", checkout, line(`"abc"`), 400, "INVALID_AMOUNT"},
		{"boolean amount", checkout, line(`true`), 400, "INVALID_AMOUNT"},
		{"null amount", checkout, line(`null`), 400, "INVALID_AMOUNT"},
		{"too large", checkout, line(`"99999999999999999999"`), 400, "INVALID_AMOUNT"},
		{"body over 1 MiB", checkout, huge, 413, "BODY_TOO_LARGE"},
		{"confirm malformed", confirm, `{`, 400, "MALFORMED_JSON"},
		{"confirm missing amount", confirm, `{"paymentKey":"k","orderId":"order-123"}`, 400, "INVALID_REQUEST"},
		{"confirm missing paymentKey", confirm, `{"orderId":"order-123","amount":"1000"}`, 400, "INVALID_REQUEST"},
		{"confirm bad orderId", confirm, `{"paymentKey":"k","orderId":"a/b","amount":"1000"}`, 400, "INVALID_REQUEST"},
		{"confirm unknown order", confirm, `{"paymentKey":"k","orderId":"order-123","amount":"1000"}`, 404, "PAYMENT_NOT_FOUND"},
		{"confirm unknown field", confirm, `{"paymentKey":"k","orderId":"order-123","amount":"1000","x":1}`, 400, "UNKNOWN_FIELD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, "POST", tc.url, tc.body)
			if status != tc.status || errCode(body) != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if msg, _ := body["error"].(map[string]any)["message"].(string); msg == "" {
				t.Fatalf("no message in %v", body)
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest("POST", checkout, strings.NewReader(line(`"1000"`)))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+env.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d, want 415", resp.StatusCode)
		}
	})
	t.Run("long idempotency key", func(t *testing.T) {
		status, body := call(t, "POST", checkout, line(`"1000"`), "Idempotency-Key", strings.Repeat("k", 256))
		if status != 400 || errCode(body) != "INVALID_REQUEST" {
			t.Fatalf("got %d %v", status, body)
		}
	})
	if n := env.CountEvents(t); n != 0 {
		t.Fatalf("%d events were written by refused requests, want 0", n)
	}
	for _, path := range []string{"/api/v1/payments/nope", "/api/v1/payments?limit=0", "/api/v1/payments?limit=abc", "/api/v1/payments?cursor=not-a-cursor", "/api/v1/payments?status=BOGUS", "/nowhere"} {
		status, body := call(t, "GET", env.API.URL+path, "")
		if status != 400 && status != 404 {
			t.Fatalf("GET %s: %d %v", path, status, body)
		}
	}
	if status, body := call(t, "DELETE", checkout, ""); status != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d %v", status, body)
	}
}

func TestListPaymentsNewestFirstWithCursor(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	var created []string
	for i := range 7 {
		status, co := call(t, "POST", env.API.URL+"/api/v1/payments/checkout",
			fmt.Sprintf(`{"orderName":"order %d","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"%d"}]}`, i, 1000+i))
		if status != http.StatusCreated {
			t.Fatalf("checkout %d: %d %v", i, status, co)
		}
		created = append(created, co["orderId"].(string))
	}
	testenv.WaitFor(t, 10*time.Second, "7 payments in the read model", func() bool {
		_, l := call(t, "GET", env.API.URL+"/api/v1/payments?limit=100", "")
		return len(l["payments"].([]any)) == 7
	})
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 4 {
			t.Fatal("too many pages")
		}
		url := env.API.URL + "/api/v1/payments?limit=3"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		status, page := call(t, "GET", url, "")
		if status != http.StatusOK {
			t.Fatalf("page: %d %v", status, page)
		}
		for _, p := range page["payments"].([]any) {
			seen = append(seen, p.(map[string]any)["orderId"].(string))
		}
		next, _ := page["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 7 {
		t.Fatalf("saw %d payments over the pages, want 7: %v", len(seen), seen)
	}
	// An empty cursor is not one the API returned: a client that lost its cursor is told, not
	// sent back to the first page.
	if status, body := call(t, "GET", env.API.URL+"/api/v1/payments?limit=3&cursor=", ""); status != http.StatusBadRequest {
		t.Fatalf("cursor=: %d %v, want 400", status, body)
	}
	for i := range seen { // newest first: the reverse of creation order
		if seen[i] != created[len(created)-1-i] {
			t.Fatalf("order %v, want the reverse of %v", seen, created)
		}
	}
	// The defect: a garbage cursor returned the first page. Anything the API did not return,
	// or returned for another list, is 400.
	_, first := call(t, "GET", env.API.URL+"/api/v1/payments?limit=3", "")
	good := first["nextCursor"].(string)
	for _, bad := range []string{"abc", "0", "MHxh", "%00", good[:len(good)-2], good + "A", "=" + good} {
		status, body := call(t, "GET", env.API.URL+"/api/v1/payments?limit=3&cursor="+bad, "")
		if status != http.StatusBadRequest || errCode(body) != "INVALID_REQUEST" {
			t.Errorf("cursor %q: %d %v, want 400", bad, status, body)
		}
	}
	if status, body := call(t, "GET", env.API.URL+"/api/v1/payments?limit=3&status=SUCCESS&cursor="+good, ""); status != http.StatusBadRequest {
		t.Errorf("a cursor of another filter: %d %v, want 400", status, body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := call(t, "GET", env.API.URL+path, ""); status != http.StatusOK {
			t.Fatalf("%s: %d %v", path, status, body)
		}
	}
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// BenchmarkCheckoutConfirm measures a checkout, the buyer's session and a confirm, all through
// HTTP against real PostgreSQL and the simulator.
func BenchmarkCheckoutConfirm(b *testing.B) {
	env := newEnv(b, testenv.Options{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(url, body string) map[string]any {
		req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+env.APIKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
			b.Fatalf("%s: %d %v", url, resp.StatusCode, out)
		}
		return out
	}
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			co := post(env.API.URL+"/api/v1/payments/checkout", checkoutBody)
			id := co["orderId"].(string)
			s := post(env.SimURL+"/sim/v1/sessions", fmt.Sprintf(`{"orderId":%q,"amount":25000,"orderName":"b"}`, id))
			cf := post(env.API.URL+"/api/v1/payments/confirm",
				fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"25000"}`, s["paymentKey"], id))
			if cf["status"] != "SUCCESS" {
				b.Fatalf("confirm %v", cf)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "payments/s")
}

func TestCancelOverHTTP(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	api := env.API.URL
	_, co := call(t, "POST", api+"/api/v1/payments/checkout", checkoutBody)
	orderID := co["orderId"].(string)
	key := openSession(t, env, orderID, "25000")
	if status, cf := call(t, "POST", api+"/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"25000"}`, key, orderID)); status != 200 || cf["status"] != "SUCCESS" {
		t.Fatalf("confirm: %d %v", status, cf)
	}
	cancelURL := api + "/api/v1/payments/" + orderID + "/cancel"
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"amount":"0","reason":"r"}`, 400, "INVALID_AMOUNT"},
		{`{"amount":"10.5","reason":"r"}`, 400, "INVALID_AMOUNT"},
		{`{"amount":"30000","reason":"r"}`, 400, "CANCEL_AMOUNT_EXCEEDS_BALANCE"},
		{`{"amount":"1000"}`, 400, "INVALID_REQUEST"},
		{`{"amount":"1000","reason":"r","extra":1}`, 400, "UNKNOWN_FIELD"},
		{`{`, 400, "MALFORMED_JSON"},
	} {
		if status, body := call(t, "POST", cancelURL, tc.body, "Idempotency-Key", "refused"); status != tc.status || errCode(body) != tc.code {
			t.Fatalf("%s: %d %v, want %d %s", tc.body, status, body, tc.status, tc.code)
		}
	}
	// Without an Idempotency-Key a client's retry could refund twice: refused, nothing written.
	before := env.CountEvents(t)
	if status, body := call(t, "POST", cancelURL, `{"amount":"1000","reason":"r"}`); status != 400 || errCode(body) != "IDEMPOTENCY_KEY_REQUIRED" {
		t.Fatalf("cancel without an Idempotency-Key: %d %v", status, body)
	}
	if n := env.CountEvents(t); n != before {
		t.Fatalf("a refused cancel wrote %d events", n-before)
	}
	if status, body := call(t, "POST", api+"/api/v1/payments/no-such-order/cancel", `{"reason":"r"}`, "Idempotency-Key", "k"); status != 404 {
		t.Fatalf("unknown order: %d %v", status, body)
	}
	status, res := call(t, "POST", cancelURL, `{"amount":10000,"reason":"one book back"}`, "Idempotency-Key", "refund-1")
	if status != 200 || res["cancelStatus"] != "CANCELED" || res["paymentStatus"] != "PARTIALLY_CANCELED" || res["balance"] != "15000" || res["amount"] != "10000" {
		t.Fatalf("partial cancel: %d %v", status, res)
	}
	status, again := call(t, "POST", cancelURL, `{"amount":10000,"reason":"one book back"}`, "Idempotency-Key", "refund-1")
	if status != 200 || again["cancelId"] != res["cancelId"] || env.Sim.Stats().CancelRequests != 1 {
		t.Fatalf("repeated cancel: %d %v (simulator cancels %d)", status, again, env.Sim.Stats().CancelRequests)
	}
	testenv.WaitFor(t, 10*time.Second, "the read model to show PARTIALLY_CANCELED", func() bool {
		_, p := call(t, "GET", api+"/api/v1/payments/"+orderID, "")
		return p["status"] == "PARTIALLY_CANCELED"
	})
}

// rawGet sends a request line as given (the Go client refuses some of these URLs), with the
// key, and returns the status and body.
func rawGet(t *testing.T, env *testenv.Env, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.API.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", target, env.APIKey)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The defect: a NUL byte or invalid UTF-8 in a path or query value answered 500. Every such
// request is 400 with the error shape, and bytes that JSON would silently replace are refused.
func TestBytesNoFieldCanHoldAre400(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	for _, target := range []string{
		"/api/v1/payments/%00", "/api/v1/payments/order%00x1", "/api/v1/payments/%ff%fe", "/api/v1/payments/a%0Ab",
		"/api/v1/payments?status=%00", "/api/v1/payments?cursor=%ff", "/api/v1/payments?needsReview=tr%00ue",
		"/api/v1/ledger/trial-balance?asOf=%ff", "/api/v1/wallets/s%00/movements", "/api/v1/payments?%ff=1",
		"/api/v1/payments?a=%zz",
	} {
		status, body := rawGet(t, env, target)
		if status != http.StatusBadRequest || !strings.Contains(body, `"code":"INVALID_REQUEST"`) {
			t.Errorf("GET %s: %d %s, want 400 INVALID_REQUEST", target, status, body)
		}
	}
	before := env.CountEvents(t)
	checkout := env.API.URL + "/api/v1/payments/checkout"
	for _, tc := range []struct{ body, code string }{
		{"{\"orderName\":\"bad \xff\xfe\",\"buyerId\":\"b\",\"lines\":[{\"sellerId\":\"s\",\"productId\":\"p\",\"amount\":\"1000\"}]}", "INVALID_UTF8"},
		{`{"orderName":"lone \ud800 surrogate","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"1000"}]}`, "INVALID_UTF8"},
		{`{"orderName":"lone \udc00 low","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"1000"}]}`, "INVALID_UTF8"},
		{`{"orderName":"nul \u0000","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"1000"}]}`, "INVALID_REQUEST"},
	} {
		status, body := call(t, "POST", checkout, tc.body)
		if status != http.StatusBadRequest || errCode(body) != tc.code {
			t.Errorf("%q: %d %v, want 400 %s", tc.body, status, body, tc.code)
		}
	}
	// A well-formed surrogate pair is text like any other.
	if status, body := call(t, "POST", checkout, `{"orderName":"emoji \ud83d\ude00","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"1000"}]}`); status != http.StatusCreated {
		t.Errorf("a surrogate pair: %d %v", status, body)
	}
	if n := env.CountEvents(t); n != before+1 {
		t.Errorf("%d events written, want only the valid checkout's", n-before)
	}
}

// timeLike finds RFC 3339 timestamps in a JSON body.
var timeLike = regexp.MustCompile(`"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"`)

// The defect: the same instant was written in KST in command answers and in UTC in queries. Every
// time in every answer, the stored events shown in a payment's history included, is RFC 3339
// with +09:00, as Toss writes.
func TestEveryTimeIsKST(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	co, _ := env.Pay(t, domain.CheckoutLine{SellerID: "seller-k", ProductID: "p", Amount: decimal.NewFromInt(3000)})
	id := string(co.OrderID)
	status, body := env.Request(t, "POST", "/api/v1/payments/"+id+"/cancel", `{"amount":"1000","reason":"r"}`, "Idempotency-Key", "kst-1")
	if status != http.StatusOK {
		t.Fatalf("cancel: %d %s", status, body)
	}
	testenv.WaitFor(t, 10*time.Second, "the ledger to hold the cancel", func() bool {
		_, b := env.Request(t, "GET", "/api/v1/wallets/seller-k", "")
		return strings.Contains(string(b), `"pending":"2000"`)
	})
	seen := 0
	for _, path := range []string{
		"/api/v1/payments/" + id, "/api/v1/payments", "/api/v1/ledger/accounts", "/api/v1/ledger/trial-balance",
		"/api/v1/ledger/accounts/psp_receivable:toss/postings", "/api/v1/wallets/seller-k", "/api/v1/wallets/seller-k/movements",
		"/api/v1/ledger/trial-balance?asOf=2026-11-21T03:00:00Z",
	} {
		status, b := env.Request(t, "GET", path, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, b)
		}
		for _, m := range timeLike.FindAllStringSubmatch(string(b), -1) {
			seen++
			if !strings.HasSuffix(m[1], "+09:00") {
				t.Errorf("GET %s: %s is not in KST", path, m[1])
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d times found: the check saw too little", seen)
	}
}

// The defect: a failed confirm's log line lacked the orderId. Every line logged for a request
// that names an order carries it: the access line of a refused confirm included.
func TestFailedConfirmLogNamesTheOrder(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	srv := httptest.NewServer(httpapi.New(env.Commands, env.Queries, env.Pool.Ping, logger, httpapi.AuthConfig{Keys: env.Merchants}))
	t.Cleanup(srv.Close)
	status, _ := testenv.Do(t, env.APIKey, "POST", srv.URL+"/api/v1/payments/confirm", `{"paymentKey":"pk","orderId":"order-missing-1","amount":"1000"}`)
	if status != http.StatusNotFound {
		t.Fatalf("confirm of an unknown order: %d", status)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, `"msg":"http"`) && strings.Contains(line, "/payments/confirm") {
			if !strings.Contains(line, `"orderId":"order-missing-1"`) {
				t.Fatalf("the access line of a failed confirm lacks the orderId: %s", line)
			}
			return
		}
	}
	t.Fatalf("no access line for the confirm:\n%s", logs.String())
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A failing readiness check answers 503 in general terms: the error's text, which can name
// addresses and credentials, stays in the log.
func TestReadinessDoesNotLeakTheError(t *testing.T) {
	srv := httpapi.New(nil, nil, func(context.Context) error {
		return errors.New("dial tcp 10.9.8.7:5432: password authentication failed for user hunter2")
	}, slog.New(slog.DiscardHandler), httpapi.AuthConfig{})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "10.9.8.7") || strings.Contains(rec.Body.String(), "hunter2") {
		t.Fatalf("/readyz: %d %s", rec.Code, rec.Body)
	}
}
