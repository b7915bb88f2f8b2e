package tosssim

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func windowQuery(over map[string]string) url.Values {
	v := url.Values{
		"orderId":    {"order-window-1"},
		"amount":     {"25000"},
		"orderName":  {"Two books"},
		"successUrl": {"https://shop.example/success?cart=7"},
		"failUrl":    {"http://shop.example/fail"},
	}
	for k, val := range over {
		if val == "<absent>" {
			delete(v, k)
		} else {
			v.Set(k, val)
		}
	}
	return v
}

func getWindow(t *testing.T, h *harness, q url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := noRedirect.Get(h.base + "/sim/v1/window?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// postWindow submits the window's form with action and returns the redirect target.
func postWindow(t *testing.T, h *harness, form url.Values, action string) (int, *url.URL) {
	t.Helper()
	form.Set("action", action)
	resp, err := noRedirect.PostForm(h.base+"/sim/v1/window", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, loc
}

func TestWindowShowsTheOrder(t *testing.T) {
	h := newHarness(t, Config{MerchantName: "Tea & Cups"})
	status, body, header := getWindow(t, h, windowQuery(map[string]string{"orderName": `<script>alert(1)</script>`}))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	for _, want := range []string{"Pay Tea &amp; Cups", "25,000원", "order-window-1", "&lt;script&gt;alert(1)&lt;/script&gt;",
		`value="approve"`, `value="decline"`, `value="close"`, `action="window"`, `lang="en"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("the order name reached the page unescaped")
	}
	if ct := header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestWindowRefusesBadParameters(t *testing.T) {
	h := newHarness(t, Config{})
	long := "https://shop.example/" + strings.Repeat("a", 2048)
	cases := map[string]struct {
		over map[string]string
		want string
	}{
		"no orderId":              {map[string]string{"orderId": "<absent>"}, "orderId is missing"},
		"short orderId":           {map[string]string{"orderId": "abc"}, "orderId must be"},
		"orderId with a slash":    {map[string]string{"orderId": "order/123456"}, "orderId must be"},
		"no amount":               {map[string]string{"amount": "<absent>"}, "amount is missing"},
		"zero amount":             {map[string]string{"amount": "0"}, "amount must be"},
		"negative amount":         {map[string]string{"amount": "-100"}, "amount must be"},
		"fractional amount":       {map[string]string{"amount": "100.5"}, "amount must be"},
		"exponent amount":         {map[string]string{"amount": "1e5"}, "amount must be"},
		"leading zero":            {map[string]string{"amount": "0100"}, "amount must be"},
		"huge amount":             {map[string]string{"amount": "1234567890123456"}, "amount must be"},
		"no orderName":            {map[string]string{"orderName": "<absent>"}, "orderName is missing"},
		"long orderName":          {map[string]string{"orderName": strings.Repeat("가", 101)}, "at most 100 characters"},
		"control in orderName":    {map[string]string{"orderName": "a\x07b"}, "control characters"},
		"javascript successUrl":   {map[string]string{"successUrl": "javascript:alert(1)"}, "successUrl must be an absolute http or https URL"},
		"JavaScript upper case":   {map[string]string{"successUrl": "JavaScript:alert(1)//x"}, "successUrl must be an absolute http or https URL"},
		"data failUrl":            {map[string]string{"failUrl": "data:text/html,hi"}, "failUrl must be an absolute http or https URL"},
		"relative successUrl":     {map[string]string{"successUrl": "/shop/success"}, "successUrl must be an absolute http or https URL"},
		"scheme-relative failUrl": {map[string]string{"failUrl": "//evil.example/x"}, "failUrl must be an absolute http or https URL"},
		"ftp successUrl":          {map[string]string{"successUrl": "ftp://shop.example/x"}, "successUrl must be an absolute http or https URL"},
		"user in successUrl":      {map[string]string{"successUrl": "https://shop.example@evil.example/"}, "user name or password"},
		"space in failUrl":        {map[string]string{"failUrl": "https://shop.example/a b"}, "spaces or control characters"},
		"long successUrl":         {map[string]string{"successUrl": long}, "at most 2048 bytes"},
		"no failUrl":              {map[string]string{"failUrl": "<absent>"}, "failUrl is missing"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			status, body, _ := getWindow(t, h, windowQuery(c.over))
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", status)
			}
			if !strings.Contains(body, c.want) {
				t.Errorf("page lacks %q:\n%s", c.want, body)
			}
			if strings.Contains(body, `value="approve"`) {
				t.Error("a refused window still offers Approve")
			}
		})
	}
	t.Run("repeated parameter", func(t *testing.T) {
		q := windowQuery(nil)
		q.Add("amount", "1")
		status, body, _ := getWindow(t, h, q)
		if status != http.StatusBadRequest || !strings.Contains(body, "amount is given more than once") {
			t.Errorf("status %d: %s", status, body)
		}
	})
}

func TestWindowApproveRedirectsToSuccessURL(t *testing.T) {
	h := newHarness(t, Config{})
	status, loc := postWindow(t, h, windowQuery(nil), "approve")
	if status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", status)
	}
	if loc.Scheme != "https" || loc.Host != "shop.example" || loc.Path != "/success" {
		t.Fatalf("redirected to %s", loc)
	}
	q := loc.Query()
	if q.Get("cart") != "7" {
		t.Errorf("the merchant's own parameter was lost: %s", loc)
	}
	if q.Get("orderId") != "order-window-1" || q.Get("amount") != "25000" || q.Get("paymentType") != "NORMAL" {
		t.Errorf("redirect query %v", q)
	}
	key := q.Get("paymentKey")
	p, ok := h.sim.Payment("order-window-1")
	if !ok || p.PaymentKey != key {
		t.Fatalf("payment %+v, want paymentKey %q", p, key)
	}
	if p.Status != StatusInProgress || p.OrderID != "order-window-1" || p.OrderName != "Two books" || p.TotalAmount.String() != "25000" {
		t.Errorf("payment %+v", p)
	}
	// The payment can be confirmed like any session's.
	r := h.call(http.MethodPost, "/v1/payments/confirm", map[string]any{"paymentKey": key, "orderId": "order-window-1", "amount": 25000}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	// Approving an order that is already paid goes to the failUrl, as Toss refuses it.
	_, loc = postWindow(t, h, windowQuery(nil), "approve")
	if loc.Path != "/fail" || loc.Query().Get("code") != "DUPLICATED_ORDER_ID" || loc.Query().Get("orderId") != "order-window-1" {
		t.Errorf("second approve redirected to %s", loc)
	}
}

func TestWindowDeclineAndClose(t *testing.T) {
	h := newHarness(t, Config{})
	_, loc := postWindow(t, h, windowQuery(nil), "decline")
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), "http://shop.example/fail?") ||
		q.Get("code") != "REJECT_CARD_COMPANY" || q.Get("message") != "결제 승인이 거절되었습니다." || q.Get("orderId") != "order-window-1" {
		t.Errorf("decline redirected to %s", loc)
	}
	_, loc = postWindow(t, h, windowQuery(nil), "close")
	q = loc.Query()
	if q.Get("code") != "PAY_PROCESS_CANCELED" || q.Get("message") == "" || q.Has("orderId") {
		t.Errorf("close redirected to %s (Toss sends no orderId when the buyer cancels)", loc)
	}
	if st := h.sim.Stats(); st.Approvals != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, ok := h.sim.Payment("order-window-1"); ok {
		t.Error("decline or close opened a payment")
	}
}

func TestWindowActionRevalidates(t *testing.T) {
	h := newHarness(t, Config{})
	for name, c := range map[string]struct {
		form   url.Values
		action string
	}{
		"unknown action":        {windowQuery(nil), "refund"},
		"javascript successUrl": {windowQuery(map[string]string{"successUrl": "javascript:alert(document.domain)"}), "approve"},
		"bad amount":            {windowQuery(map[string]string{"amount": "25000.0"}), "approve"},
	} {
		t.Run(name, func(t *testing.T) {
			if status, loc := postWindow(t, h, c.form, c.action); status != http.StatusBadRequest {
				t.Errorf("status %d (to %v), want 400", status, loc)
			}
		})
	}
}

func TestFormatWon(t *testing.T) {
	for in, want := range map[string]string{"1": "1원", "999": "999원", "1000": "1,000원", "25000": "25,000원",
		"1234567": "1,234,567원", "100000000": "100,000,000원"} {
		if got := formatWon(in); got != want {
			t.Errorf("formatWon(%q) = %q, want %q", in, got, want)
		}
	}
}
