package shop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/shop"
)

// shopEnv is the ledger's real API (testenv: PostgreSQL, NATS with the relay, the simulator)
// with the shop and the simulator mounted next to it on one server, as paymentd serves them.
type shopEnv struct {
	env *testenv.Env
	srv *httptest.Server
}

func newShopEnv(t *testing.T) *shopEnv {
	t.Helper()
	e := testenv.New(t, testenv.Options{Relay: true})
	h, err := shop.New(shop.Config{APIKey: e.APIKey, LedgerURL: e.API.URL, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/shop/", h)
	mux.Handle("/sdk/", h)
	mux.Handle("/tosssim/", http.StripPrefix("/tosssim", e.Sim.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return &shopEnv{env: e, srv: srv}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (s *shopEnv) do(t *testing.T, method, path, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(raw)
}

func (s *shopEnv) checkout(t *testing.T, product string) (orderID, amount string) {
	t.Helper()
	resp, body := s.do(t, http.MethodPost, "/shop/api/checkout", "application/json", `{"productId":"`+product+`"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("checkout: %d %s", resp.StatusCode, body)
	}
	var co struct{ OrderID, OrderName, Amount, Currency string }
	if err := json.Unmarshal([]byte(body), &co); err != nil {
		t.Fatal(err)
	}
	return co.OrderID, co.Amount
}

// approve goes through the simulator's window as a browser would and returns the successUrl's
// query.
func (s *shopEnv) approve(t *testing.T, orderID, amount, orderName string) url.Values {
	t.Helper()
	form := url.Values{"orderId": {orderID}, "amount": {amount}, "orderName": {orderName},
		"successUrl": {s.srv.URL + "/shop/success"}, "failUrl": {s.srv.URL + "/shop/fail"}, "action": {"approve"}}
	resp, body := s.do(t, http.MethodPost, "/tosssim/sim/v1/window", "application/x-www-form-urlencoded", form.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("window: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != "/shop/success" {
		t.Fatalf("window redirected to %s", resp.Header.Get("Location"))
	}
	return loc.Query()
}

func TestCheckoutConfirmAndStatusStream(t *testing.T) {
	s := newShopEnv(t)
	orderID, amount := s.checkout(t, "tea-set")
	if amount != "37000" {
		t.Fatalf("amount %s: the catalogue's two lines make 37000", amount)
	}
	// The stream is open before the confirm, so it shows the change.
	events := s.openEvents(t, orderID, "")
	if got := events.next(t); got.Status != "NOT_STARTED" || got.Event != "" {
		t.Fatalf("first event %+v", got)
	}
	back := s.approve(t, orderID, amount, "Tea set: the cup and the towel")
	resp, body := s.do(t, http.MethodPost, "/shop/api/confirm", "application/json",
		`{"paymentKey":"`+back.Get("paymentKey")+`","orderId":"`+orderID+`","amount":"`+back.Get("amount")+`"}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"status":"SUCCESS"`) || !strings.Contains(body, `"approvedAt":"`) {
		t.Fatalf("confirm: %d %s", resp.StatusCode, body)
	}
	for {
		ev := events.next(t)
		if ev.Status == "SUCCESS" {
			if ev.Event != "PaymentApproved" || ev.ID == "" {
				t.Errorf("success event %+v", ev)
			}
			break
		}
	}
	// A resumed stream (Last-Event-ID, as EventSource sends) sends nothing it already sent.
	resumed := s.openEvents(t, orderID, "1")
	if ev := resumed.next(t); ev.Status == "NOT_STARTED" {
		t.Errorf("resumed stream repeated the first event: %+v", ev)
	}
}

func TestConfirmRefusals(t *testing.T) {
	s := newShopEnv(t)
	orderID, amount := s.checkout(t, "linen-towel")
	back := s.approve(t, orderID, amount, "Linen tea towel")
	// An amount changed in the browser is refused by the ledger; the buyer sees its code.
	resp, body := s.do(t, http.MethodPost, "/shop/api/confirm", "application/json",
		`{"paymentKey":"`+back.Get("paymentKey")+`","orderId":"`+orderID+`","amount":"100"}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "AMOUNT_MISMATCH") {
		t.Errorf("changed amount: %d %s", resp.StatusCode, body)
	}
	for name, c := range map[string]struct {
		contentType, body string
		status            int
		code              string
	}{
		"form body":         {"application/x-www-form-urlencoded", "paymentKey=x", http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"},
		"unknown field":     {"application/json", `{"paymentKey":"k","orderId":"order-123","amount":"1","apiKey":"x"}`, http.StatusBadRequest, "INVALID_JSON"},
		"number amount":     {"application/json", `{"paymentKey":"k","orderId":"order-123","amount":100}`, http.StatusBadRequest, "INVALID_JSON"},
		"fractional amount": {"application/json", `{"paymentKey":"k","orderId":"order-123","amount":"1.5"}`, http.StatusBadRequest, "INVALID_REQUEST"},
		"bad orderId":       {"application/json", `{"paymentKey":"k","orderId":"../admin","amount":"1"}`, http.StatusBadRequest, "INVALID_REQUEST"},
		"no paymentKey":     {"application/json", `{"orderId":"order-123","amount":"1"}`, http.StatusBadRequest, "INVALID_REQUEST"},
		"two values":        {"application/json", `{"paymentKey":"k","orderId":"order-123","amount":"1"}{}`, http.StatusBadRequest, "INVALID_JSON"},
		"unknown order":     {"application/json", `{"paymentKey":"k","orderId":"00000000-0000-0000-0000-000000000000","amount":"1"}`, http.StatusNotFound, ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := s.do(t, http.MethodPost, "/shop/api/confirm", c.contentType, c.body)
			if resp.StatusCode != c.status || !strings.Contains(body, c.code) {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
		})
	}
	resp, body = s.do(t, http.MethodPost, "/shop/api/checkout", "application/json", `{"productId":"gold-bar"}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "UNKNOWN_PRODUCT") {
		t.Errorf("unknown product: %d %s", resp.StatusCode, body)
	}
	resp, body = s.do(t, http.MethodPost, "/shop/api/checkout", "application/json", `{"productId":"tea-set","amount":"1"}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a price from the browser: %d %s", resp.StatusCode, body)
	}
}

func TestCrossSitePostsAreRefused(t *testing.T) {
	s := newShopEnv(t)
	for _, path := range []string{"/shop/checkout", "/shop/api/checkout"} {
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+path, strings.NewReader(`{"productId":"tea-set"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s cross-site: %d, want 403", path, resp.StatusCode)
		}
	}
}

func TestPagesAndAssetsNeverHoldTheKey(t *testing.T) {
	s := newShopEnv(t)
	// The form checkout, as the product page's Buy button does it.
	resp, body := s.do(t, http.MethodPost, "/shop/checkout", "application/x-www-form-urlencoded", "product=celadon-cup")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/shop/pay/") {
		t.Fatalf("form checkout: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	payPath := resp.Header.Get("Location")
	orderID := strings.TrimPrefix(payPath, "/shop/pay/")
	back := s.approve(t, orderID, "25000", "Celadon tea cup")
	successPath := "/shop/success?" + back.Encode()

	pages := map[string]struct {
		status int
		want   []string
	}{
		"/shop/":    {200, []string{"Celadon tea cup", "25,000원", "12,000원", "37,000원", `action="/shop/checkout"`}},
		payPath:     {200, []string{"25,000원", orderID, "<svg", "qr-title", "/tosssim/sim/v1/window?", "KST", "NOT_STARTED"}},
		successPath: {200, []string{orderID, "25,000원", `data-payment-key="` + back.Get("paymentKey")}},
		"/shop/fail?code=REJECT_CARD_COMPANY&message=%EA%B2%B0%EC%A0%9C&orderId=" + orderID: {200, []string{"REJECT_CARD_COMPANY", "결제", "Try this order again"}},
		"/shop/fail?code=%3Cscript%3E&message=%3Cb%3Ehi%3C%2Fb%3E":                          {200, []string{"UNKNOWN", "&lt;b&gt;hi&lt;/b&gt;"}},
		"/shop/success?orderId=x":                        {400, []string{"cannot be confirmed"}},
		"/shop/pay/00000000-0000-0000-0000-000000000000": {404, []string{"Page not found"}},
		"/shop/nothing":                                  {404, []string{"Page not found"}},
		"/sdk/v1/pay.js":                                 {200, []string{"function LedgerPay", "requestPayment", "confirm", "watch"}},
		"/sdk/v1/example.html":                           {200, []string{"/sdk/v1/pay.js", "checkoutUrl"}},
		"/shop/assets/shop.js":                           {200, []string{"LedgerPay("}},
	}
	for path, c := range pages {
		resp, body := s.do(t, http.MethodGet, path, "", "")
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, c.status)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", path, w)
			}
		}
		if strings.Contains(body, s.env.APIKey) || strings.Contains(body, "Bearer") {
			t.Errorf("GET %s leaks the API key", path)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>hi") {
			t.Errorf("GET %s renders its query unescaped", path)
		}
	}
	// The status stream carries no key either, and only the fields the page needs.
	events := s.openEvents(t, orderID, "")
	ev := events.next(t)
	if strings.Contains(ev.Raw, s.env.APIKey) || strings.Contains(ev.Raw, "history") || strings.Contains(ev.Raw, "merchantId") {
		t.Errorf("status event carries more than the status: %s", ev.Raw)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for name, cfg := range map[string]shop.Config{
		"no key":            {LedgerURL: "http://127.0.0.1:1"},
		"no ledger":         {APIKey: "k"},
		"relative ledger":   {APIKey: "k", LedgerURL: "/api"},
		"javascript window": {APIKey: "k", LedgerURL: "http://127.0.0.1:1", WindowURL: "javascript:alert(1)"},
		"protocol-relative": {APIKey: "k", LedgerURL: "http://127.0.0.1:1", WindowURL: "//evil.example/w"},
		"public with path":  {APIKey: "k", LedgerURL: "http://127.0.0.1:1", PublicURL: "http://shop.example/x"},
	} {
		if _, err := shop.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := shop.New(shop.Config{APIKey: "k", LedgerURL: "http://127.0.0.1:1", WindowURL: "https://pay.example/window"}); err != nil {
		t.Errorf("absolute window: %v", err)
	}
}

func TestMountPutsThePrefixBack(t *testing.T) {
	h, err := shop.New(shop.Config{APIKey: "k", LedgerURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// A mounter that strips its prefix, as httpapi.Server.Handle does.
	h.Mount(func(prefix string, h http.Handler) { mux.Handle(prefix+"/", http.StripPrefix(prefix, h)) })
	for path, want := range map[string]string{"/sdk/v1/pay.js": "function LedgerPay", "/shop/": "Tea things"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d", path, rec.Code)
		}
	}
}

func TestLedgerTroubleIsNotShownToBuyers(t *testing.T) {
	ledger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"code":"UNAUTHORIZED","message":"key sk_live_secret revoked"}}`)
	}))
	t.Cleanup(ledger.Close)
	h, err := shop.New(shop.Config{APIKey: "k", LedgerURL: ledger.URL})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/shop/api/checkout", strings.NewReader(`{"productId":"tea-set"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadGateway || strings.Contains(rec.Body.String(), "sk_live") || !strings.Contains(rec.Body.String(), "SHOP_UNAVAILABLE") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

// eventStream reads the shop's status stream.
type eventStream struct {
	sc *bufio.Scanner
}

type statusEvent struct {
	ID, Raw string
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Event   string `json:"event"`
}

func (s *shopEnv) openEvents(t *testing.T, orderID, lastEventID string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/shop/api/orders/"+orderID+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &eventStream{sc: bufio.NewScanner(resp.Body)}
}

// next returns the next status event, failing the test after 10 s.
func (e *eventStream) next(t *testing.T) statusEvent {
	t.Helper()
	got := make(chan statusEvent, 1)
	go func() {
		var ev statusEvent
		name := ""
		for e.sc.Scan() {
			line := e.sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.Raw = strings.TrimPrefix(line, "data: ")
				_ = json.Unmarshal([]byte(ev.Raw), &ev)
			case line == "" && name == "status":
				got <- ev
				return
			}
		}
		close(got)
	}()
	select {
	case ev, ok := <-got:
		if !ok {
			t.Fatal("the status stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no status event within 10s")
	}
	return statusEvent{}
}
