package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/browsertest"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
)

// TestAPersonBuysFindsAndRefunds is the "done when", in a real browser against
// paymentd started as the README says (TOSS_SIMULATOR): buy in the demo shop to SUCCESS, sign
// in to the back office with the printed key, find the order, refund part of it and see the
// ledger move.
func TestAPersonBuysFindsAndRefunds(t *testing.T) {
	dataDir := t.TempDir()
	base := startPaymentd(t, map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "HTTP_ADDR": "127.0.0.1:0", "DATA_DIR": dataDir, "TOSS_SIMULATOR": "true",
	})
	raw, err := os.ReadFile(filepath.Join(dataDir, "dev-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(raw))
	b := browsertest.New(t)
	tab := b.Tab(t)
	text := func(what, sel string) string { return browsertest.Get(t, tab, what, chromedp.Text(chromedp.CSS(sel))) }

	// The buyer: the shop, the simulator's window, the success page going live to SUCCESS.
	browsertest.Do(t, tab, "buy the cup", chromedp.Navigate(base+"/shop/"), chromedp.Click(chromedp.CSS("#buy-celadon-cup")),
		chromedp.WaitVisible(chromedp.CSS("#pay")))
	orderID := text("order id", "#order-id")
	browsertest.Do(t, tab, "pay", chromedp.Click(chromedp.CSS("#pay")), chromedp.WaitVisible(chromedp.CSS("#approve")),
		chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS(`main[data-page="success"]`)))
	browsertest.Get(t, tab, "SUCCESS, live",
		chromedp.Poll[bool](`document.getElementById('status').textContent === 'SUCCESS'`, chromedp.WithPollingMutation()))
	browsertest.Screenshot(t, tab, "1-bought")

	// The merchant's staff: sign in with the printed key, find the order by its id.
	browsertest.Do(t, tab, "sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("apiKey")),
		chromedp.SetValue(chromedp.ID("apiKey"), key), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("payments")))
	browsertest.Do(t, tab, "find the order", chromedp.SetValue(chromedp.ID("q"), orderID), chromedp.Click(chromedp.ID("apply-filters")),
		chromedp.WaitVisible(chromedp.CSS(`#payments a[href="/payments/`+orderID+`"]`)))
	browsertest.Screenshot(t, tab, "2-found")
	browsertest.Do(t, tab, "open it", chromedp.Click(chromedp.CSS(`#payments a[href="/payments/`+orderID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("timeline")))
	if st, amount := text("status", "#status"), text("amount", "#amount"); st != "SUCCESS" || amount != "25,000원" {
		t.Fatalf("the order in the back office: %s %s", st, amount)
	}

	// Refund part of it; the books show the refund.
	browsertest.Do(t, tab, "refund", chromedp.SendKeys(chromedp.ID("refund-amount"), "5000"),
		chromedp.SendKeys(chromedp.ID("refund-reason"), "chipped"), chromedp.Click(chromedp.ID("refund-submit")),
		chromedp.WaitVisible(chromedp.ID("refund-result")))
	if st, bal := text("result", "#result-status"), text("balance", "#result-balance"); st != "PARTIALLY_CANCELED" || bal != "20,000원" {
		t.Fatalf("after the refund: %s %s", st, bal)
	}
	browsertest.Screenshot(t, tab, "3-refunded")
	// The ledger projection follows the log within moments: wait for it through the API, then
	// look at the page once.
	testenv.WaitFor(t, 20*time.Second, "the refund in the ledger", func() bool {
		status, raw := testenv.Do(t, key, "GET", base+"/api/v1/ledger/trial-balance", "")
		var tb struct {
			Accounts []struct{ Account, Credits string }
		}
		if status != 200 || json.Unmarshal(raw, &tb) != nil {
			return false
		}
		for _, a := range tb.Accounts {
			if a.Account == domain.AccountPSPReceivable {
				return a.Credits == "5000"
			}
		}
		return false
	})
	browsertest.Do(t, tab, "trial balance", chromedp.Navigate(base+"/ledger"), chromedp.WaitVisible(chromedp.ID("trial-balance")))
	row := browsertest.Get(t, tab, "receivable", chromedp.Evaluate[string](
		`[...document.querySelectorAll("#trial-balance tbody tr")].map(r => r.innerText).find(t => t.startsWith("`+domain.AccountPSPReceivable+`")) || ""`))
	if !strings.Contains(row, "25,000원") || !strings.Contains(row, "5,000원") {
		t.Fatalf("the trial balance's %s row: %q, want the approval and the refund", domain.AccountPSPReceivable, row)
	}
	browsertest.Screenshot(t, tab, "4-ledger")
}
