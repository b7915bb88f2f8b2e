package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/browsertest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/web"
)

// A member of staff's day in a real Chromium: sign in (a wrong key first), filter the list,
// export it, open a payment and its timeline, refund part of it, see the books move, find
// another merchant's order missing, sign out. Every page passes axe-core; each step leaves a
// screenshot.
func TestBackOfficeInABrowser(t *testing.T) {
	s := newSite(t, web.Config{Now: time.Now}) // pages "as of now" must see the refund
	ctx := context.Background()
	books := s.pay(t, 15000, 10000) // seller-a 15,000원, seller-b 10,000원
	other := s.pay(t, 7000)
	s.env.NewMerchant(t, "merchant-other")
	theirs, err := s.env.Commands.Checkout(ctx, commandsCheckout("merchant-other"))
	if err != nil {
		t.Fatal(err)
	}
	// A reconciliation run that left a difference for a person, as reconcile records them.
	var runID int64
	if err := s.env.Pool.QueryRow(ctx, `
		INSERT INTO reconciliation_runs (merchant_id, from_date, to_date, apply, trigger, started_at, finished_at, payments,
			toss_transactions, toss_settlements, counts, unresolved, applied)
		VALUES ($1, current_date, current_date, true, 'daily', now(), now(), 3, 2, 0, '{"amount_mismatch": 1}', 1, 0) RETURNING id`,
		testenv.Merchant).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.env.Pool.Exec(ctx, `
		INSERT INTO reconciliation_differences (merchant_id, order_id, category, transaction_key, payment_key, ours, toss, detail,
			first_run_id, last_run_id, first_seen, last_seen)
		VALUES ($1, $2, 'amount_mismatch', '', '', '7000', '7500', 'Toss approved 7,500 for this order', $3, $3, now(), now())`,
		testenv.Merchant, other, runID); err != nil {
		t.Fatal(err)
	}

	b := browsertest.New(t)
	tab := b.Tab(t)
	text := func(what, sel string) string {
		t.Helper()
		return browsertest.Get(t, tab, what, chromedp.Text(chromedp.CSS(sel)))
	}
	check := func(step, page string) {
		t.Helper()
		browsertest.Screenshot(t, tab, step)
		browsertest.CheckAccessibility(t, tab, page)
	}

	// Any page sends a stranger to sign in; a wrong key is refused there.
	browsertest.Do(t, tab, "open the back office", chromedp.Navigate(s.url+"/payments"), chromedp.WaitVisible(chromedp.ID("apiKey")))
	check("01-sign-in", "sign-in")
	browsertest.Do(t, tab, "sign in with a wrong key",
		chromedp.SendKeys(chromedp.ID("apiKey"), "sk_test_"+strings.Repeat("x", 68)),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("signin-error")))
	check("02-sign-in-wrong-key", "sign-in error")

	browsertest.Do(t, tab, "sign in",
		chromedp.SetValue(chromedp.ID("apiKey"), s.env.APIKey),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("payments")))
	if got := text("merchant", "#merchant"); got != string(testenv.Merchant) {
		t.Fatalf("signed in as %q", got)
	}
	if body := text("list", "#payments"); !strings.Contains(body, string(books)) || !strings.Contains(body, "25,000원") {
		t.Fatalf("the list: %s", body)
	}
	check("03-payments", "payments list")

	// Filter by seller: the bookmarkable URL carries the filter, the list only that order.
	browsertest.Do(t, tab, "filter by seller",
		chromedp.SendKeys(chromedp.ID("sellerId"), "seller-b"),
		chromedp.Click(chromedp.ID("apply-filters")), chromedp.WaitVisible(chromedp.CSS(`#sellerId[value="seller-b"]`)))
	if loc := browsertest.Get(t, tab, "location", chromedp.Location()); !strings.Contains(loc, "sellerId=seller-b") {
		t.Fatalf("filtered URL %s", loc)
	}
	if body := text("filtered list", "#payments tbody"); !strings.Contains(body, string(books)) || strings.Contains(body, string(other)) {
		t.Fatalf("filtered by seller-b: %s", body)
	}
	check("04-payments-filtered", "filtered payments list")

	// The export of the filtered set, fetched with the browser's session cookie.
	href := browsertest.Get(t, tab, "export link", chromedp.Evaluate[string](`document.getElementById("export-csv").href`))
	csv := browsertest.Get(t, tab, "export body", chromedp.Evaluate[string](`(async () => { const r = await fetch(`+jsString(href)+`); return r.status + "\n" + r.headers.get("content-type") + "\n" + await r.text(); })()`,
		chromedp.EvalAwaitPromise))
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != 4 || lines[0] != "200" || !strings.HasPrefix(lines[1], "text/csv") || !strings.HasPrefix(lines[2], "orderId,") ||
		!strings.HasPrefix(lines[3], string(books)+",") {
		t.Fatalf("CSV export of seller-b:\n%s", csv)
	}

	// The payment: lines, amounts, a verified timeline.
	browsertest.Do(t, tab, "open the payment", chromedp.Click(chromedp.CSS(`#payments a[href="/payments/`+string(books)+`"]`)),
		chromedp.WaitVisible(chromedp.ID("timeline")))
	if got := text("chain status", "#chain-status"); !strings.Contains(got, "Hash chain verified") {
		t.Fatalf("chain status %q", got)
	}
	if got := text("timeline", "#timeline"); !strings.Contains(got, "PaymentApproved") || !strings.Contains(got, "CheckoutCreated") {
		t.Fatalf("timeline %q", got)
	}
	if got := text("amount", "#amount"); got != "25,000원" {
		t.Fatalf("amount %q", got)
	}
	check("05-payment", "payment detail")

	// Refund 10,000원 of it.
	browsertest.Do(t, tab, "refund",
		chromedp.SendKeys(chromedp.ID("refund-amount"), "10,000"),
		chromedp.SendKeys(chromedp.ID("refund-reason"), "one item returned"),
		chromedp.Click(chromedp.ID("refund-submit")), chromedp.WaitVisible(chromedp.ID("refund-result")))
	if st, bal := text("result status", "#result-status"), text("result balance", "#result-balance"); st != "PARTIALLY_CANCELED" || bal != "15,000원" {
		t.Fatalf("after the refund: %s %s", st, bal)
	}
	if st, bal := text("status", "#status"), text("balance", "#balance"); st != "PARTIALLY_CANCELED" || bal != "15,000원" {
		t.Fatalf("the payment after the refund: %s %s", st, bal)
	}
	check("06-refunded", "payment after a refund")

	// The books move: the ledger projection records the cancel for seller-b and the receivable.
	ledger := queries.NewLedger(s.env.Pool)
	testenv.WaitFor(t, 10*time.Second, "the cancel in seller-b's wallet", func() bool {
		page, err := ledger.WalletMovements(ctx, testenv.Merchant, "seller-b", time.Now().Add(time.Minute), "", queries.MovementsQuery{})
		return err == nil && len(page.Movements) > 0 && page.Movements[0].Kind == "cancel"
	})
	browsertest.Do(t, tab, "seller-b's wallet", chromedp.Navigate(s.url+"/wallets?sellerId=seller-b"), chromedp.WaitVisible(chromedp.ID("movements")))
	if got := text("movements", "#movements"); !strings.Contains(got, "cancel") || !strings.Contains(got, "approval") {
		t.Fatalf("movements %q", got)
	}
	check("07-wallet", "seller wallet")
	browsertest.Do(t, tab, "trial balance", chromedp.Navigate(s.url+"/ledger"), chromedp.WaitVisible(chromedp.ID("trial-balance")))
	receivable := browsertest.Get(t, tab, "receivable row", chromedp.Evaluate[string](
		`[...document.querySelectorAll("#trial-balance tbody tr")].map(r => r.innerText).find(t => t.startsWith("`+domain.AccountPSPReceivable+`")) || ""`))
	if !strings.Contains(receivable, "32,000원") || !strings.Contains(receivable, "10,000원") || !strings.Contains(text("balanced", "#balanced"), "Balanced") {
		t.Fatalf("trial balance receivable %q", receivable)
	}
	check("08-trial-balance", "trial balance")

	browsertest.Do(t, tab, "reconciliation", chromedp.Navigate(s.url+"/reconciliation"), chromedp.WaitVisible(chromedp.ID("runs")))
	if got := text("runs", "#runs"); !strings.Contains(got, "amount_mismatch: 1") {
		t.Fatalf("runs %q", got)
	}
	if got := text("differences", "#differences"); !strings.Contains(got, string(other)) || !strings.Contains(got, "amount_mismatch") {
		t.Fatalf("open differences %q", got)
	}
	check("09-reconciliation", "reconciliation")
	browsertest.Do(t, tab, "review queue", chromedp.Navigate(s.url+"/review"), chromedp.WaitVisible(chromedp.ID("review")))
	if got := text("review", "#review"); !strings.Contains(got, string(other)) || !strings.Contains(got, "Toss approved 7,500") {
		t.Fatalf("review queue %q", got)
	}
	check("10-needs-review", "needs review")

	browsertest.Do(t, tab, "daily chart", chromedp.Navigate(s.url+"/reports/daily"), chromedp.WaitVisible(chromedp.ID("daily-chart")))
	testenv.WaitFor(t, 10*time.Second, "the chart to show the refund", func() bool {
		browsertest.Do(t, tab, "reload the chart", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("total-canceled")))
		return text("canceled total", "#total-canceled") == "10,000원"
	})
	if got := text("approved total", "#total-approved"); got != "32,000원" {
		t.Fatalf("approved total %q", got)
	}
	check("11-daily-chart", "daily chart")

	// Another merchant's order reads exactly like a missing one.
	resp := browsertest.Get(t, tab, "their order", chromedp.NavigateResponse(s.url+"/payments/"+string(theirs.OrderID)))
	if resp.Status != http.StatusNotFound {
		t.Fatalf("another merchant's order: %d", resp.Status)
	}
	check("12-other-merchants-order-404", "not found")

	// A payment whose stored history was edited behind the event store's back: its events are not
	// shown as history, the page says the chain is broken.
	ctxTamper := context.Background()
	for _, sql := range []string{`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = '{"edited": true}' WHERE stream_id = 'payment-` + string(other) + `' AND version = 1`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`} {
		if _, err := s.env.Pool.Exec(ctxTamper, sql); err != nil {
			t.Fatal(err)
		}
	}
	resp = browsertest.Get(t, tab, "broken payment", chromedp.NavigateResponse(s.url+"/payments/"+string(other)))
	if got := text("broken state", "#chain-status"); resp.Status != http.StatusConflict || !strings.Contains(got, "History failed verification") {
		t.Fatalf("broken history: %d %q", resp.Status, got)
	}
	if browsertest.Get(t, tab, "no timeline", chromedp.Evaluate[bool](`document.getElementById("timeline") === null`)) != true {
		t.Fatal("a broken history is shown as a timeline")
	}
	check("13-history-failed-verification", "broken history")

	browsertest.Do(t, tab, "sign out", chromedp.Navigate(s.url+"/payments"), chromedp.WaitVisible(chromedp.ID("signout")),
		chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin-notice")))
	check("14-signed-out", "signed out")
	browsertest.Do(t, tab, "after sign-out", chromedp.Navigate(s.url+"/payments"), chromedp.WaitVisible(chromedp.ID("apiKey")))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
