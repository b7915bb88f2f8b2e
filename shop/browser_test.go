package shop_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/paymentledger/ledger/internal/browsertest"
)

// The shop end to end in headless Chromium, as a buyer uses it: one ledger, one browser, a
// tab per story. Every wait is on a condition in the page (chromedp's WaitVisible and Poll),
// never a sleep; every step leaves a screenshot under artifacts/screenshots.
func TestInBrowser(t *testing.T) {
	s := newShopEnv(t)
	b := browsertest.New(t)

	t.Run("buy to SUCCESS, status live", func(t *testing.T) {
		tab := b.Tab(t)
		browsertest.Do(t, tab, "open the shop", chromedp.Navigate(s.srv.URL+"/shop/"), chromedp.WaitVisible(chromedp.CSS("#buy-celadon-cup")))
		browsertest.Screenshot(t, tab, "1-products")
		browsertest.CheckAccessibility(t, tab, "shop page")

		browsertest.Do(t, tab, "buy the cup", chromedp.Click(chromedp.CSS("#buy-celadon-cup")),
			chromedp.WaitVisible(chromedp.CSS("#pay")), chromedp.WaitVisible(chromedp.CSS("svg.qr")))
		if got := browsertest.Get(t, tab, "amount", chromedp.Text(chromedp.CSS("#amount"))); got != "25,000원" {
			t.Errorf("paying page amount %q", got)
		}
		// The QR code and its link hold the window's absolute address with this order.
		link := browsertest.Get(t, tab, "phone link", chromedp.AttributeValue(chromedp.CSS("#phone-link"), "href"))
		orderID := browsertest.Get(t, tab, "order id", chromedp.Text(chromedp.CSS("#order-id")))
		if !strings.HasPrefix(link.Value, s.srv.URL+"/tosssim/sim/v1/window?") || !strings.Contains(link.Value, "orderId="+orderID) {
			t.Errorf("phone link %q", link.Value)
		}
		browsertest.Screenshot(t, tab, "2-paying-with-qr")
		browsertest.CheckAccessibility(t, tab, "paying page")

		browsertest.Do(t, tab, "open the window", chromedp.Click(chromedp.CSS("#pay")), chromedp.WaitVisible(chromedp.CSS("#approve")))
		if got := browsertest.Get(t, tab, "window amount", chromedp.Text(chromedp.CSS("#amount"))); got != "25,000원" {
			t.Errorf("window amount %q", got)
		}
		browsertest.Screenshot(t, tab, "3-window")
		browsertest.CheckAccessibility(t, tab, "payment window")

		browsertest.Do(t, tab, "approve", chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS(`main[data-page="success"]`)))
		// The document that loaded is the one that ends at SUCCESS: its status text, served as
		// "waiting for the ledger…", is changed by the status stream only.
		origin := browsertest.Get(t, tab, "time origin", chromedp.Evaluate[float64]("performance.timeOrigin"))
		browsertest.Get(t, tab, "status becomes SUCCESS",
			chromedp.Poll[bool](`document.getElementById('status').textContent === 'SUCCESS'`, chromedp.WithPollingMutation()))
		if again := browsertest.Get(t, tab, "time origin", chromedp.Evaluate[float64]("performance.timeOrigin")); again != origin {
			t.Error("the success page reloaded")
		}
		browsertest.Get(t, tab, "approval time shown",
			chromedp.Poll[bool](`/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d KST$/.test(document.getElementById('approved-at').textContent)`, chromedp.WithPollingMutation()))
		if problem := browsertest.Get(t, tab, "problem", chromedp.Evaluate[bool]("document.getElementById('problem').hidden")); !problem {
			t.Error("the success page shows a problem")
		}
		html := browsertest.Get(t, tab, "page", chromedp.OuterHTML(chromedp.CSS("html")))
		if strings.Contains(html, s.env.APIKey) {
			t.Error("the API key reached the browser")
		}
		browsertest.Screenshot(t, tab, "4-success")
		browsertest.CheckAccessibility(t, tab, "success page")
	})

	t.Run("decline shows the failure", func(t *testing.T) {
		tab := b.Tab(t)
		toWindow(t, tab, s.srv.URL, "#buy-linen-towel")
		browsertest.Do(t, tab, "decline", chromedp.Click(chromedp.CSS("#decline")), chromedp.WaitVisible(chromedp.CSS("#fail-code")))
		if got := browsertest.Get(t, tab, "code", chromedp.Text(chromedp.CSS("#fail-code"))); got != "REJECT_CARD_COMPANY" {
			t.Errorf("code %q", got)
		}
		if got := browsertest.Get(t, tab, "message", chromedp.Text(chromedp.CSS("#fail-message"))); got != "결제 승인이 거절되었습니다." {
			t.Errorf("message %q", got)
		}
		browsertest.Do(t, tab, "order id", chromedp.WaitVisible(chromedp.CSS("#fail-order")))
		browsertest.Screenshot(t, tab, "fail-declined")
		browsertest.CheckAccessibility(t, tab, "fail page")
	})

	t.Run("close shows the failure", func(t *testing.T) {
		tab := b.Tab(t)
		toWindow(t, tab, s.srv.URL, "#buy-tea-set")
		browsertest.Do(t, tab, "close", chromedp.Click(chromedp.CSS("#close")), chromedp.WaitVisible(chromedp.CSS("#fail-code")))
		if got := browsertest.Get(t, tab, "code", chromedp.Text(chromedp.CSS("#fail-code"))); got != "PAY_PROCESS_CANCELED" {
			t.Errorf("code %q", got)
		}
		browsertest.Screenshot(t, tab, "fail-closed")
		browsertest.CheckAccessibility(t, tab, "fail page after close")
	})

	t.Run("SDK example page", func(t *testing.T) {
		tab := b.Tab(t)
		browsertest.Do(t, tab, "open the example", chromedp.Navigate(s.srv.URL+"/sdk/v1/example.html"), chromedp.WaitVisible(chromedp.CSS("#pay")))
		browsertest.CheckAccessibility(t, tab, "SDK example")
		browsertest.Screenshot(t, tab, "1-example")
		browsertest.Do(t, tab, "pay", chromedp.Click(chromedp.CSS("#pay")), chromedp.WaitVisible(chromedp.CSS("#approve")))
		if got := browsertest.Get(t, tab, "window amount", chromedp.Text(chromedp.CSS("#amount"))); got != "12,000원" {
			t.Errorf("window amount %q", got)
		}
		browsertest.Do(t, tab, "approve", chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#result")))
		browsertest.Get(t, tab, "status becomes SUCCESS",
			chromedp.Poll[bool](`document.getElementById('status').textContent === 'SUCCESS'`, chromedp.WithPollingMutation()))
		browsertest.Get(t, tab, "approval time shown",
			chromedp.Poll[bool](`document.getElementById('approved-at').textContent.endsWith(' KST')`, chromedp.WithPollingMutation()))
		browsertest.Screenshot(t, tab, "2-example-success")
	})

	t.Run("window with bad parameters is a 400 page", func(t *testing.T) {
		tab := b.Tab(t)
		q := url.Values{"orderId": {"order-bad-1"}, "amount": {"-5"}, "orderName": {"x"},
			"successUrl": {"javascript:alert(document.cookie)"}, "failUrl": {s.srv.URL + "/shop/fail"}}
		resp := browsertest.Get(t, tab, "open", chromedp.NavigateResponse(s.srv.URL+"/tosssim/sim/v1/window?"+q.Encode()))
		if resp.Status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.Status)
		}
		text := browsertest.Get(t, tab, "problems", chromedp.Text(chromedp.CSS("#problems")))
		for _, want := range []string{"amount must be", "successUrl must be an absolute http or https URL"} {
			if !strings.Contains(text, want) {
				t.Errorf("problems %q lack %q", text, want)
			}
		}
		browsertest.Screenshot(t, tab, "window-400")
		browsertest.CheckAccessibility(t, tab, "window 400 page")
	})
}

// toWindow buys the product behind the button buy and opens its payment window.
func toWindow(t *testing.T, tab context.Context, base, buy string) {
	t.Helper()
	browsertest.Do(t, tab, "buy", chromedp.Navigate(base+"/shop/"), chromedp.Click(chromedp.CSS(buy)),
		chromedp.WaitVisible(chromedp.CSS("#pay")), chromedp.Click(chromedp.CSS("#pay")),
		chromedp.WaitVisible(chromedp.CSS("#decline")))
}
