package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/paymentledger/ledger/internal/browsertest"
)

const good = `<!doctype html><html lang="en"><head><title>Good</title></head><body><main>
<h1>Payments</h1><label for="q">Search</label><input id="q" name="q">
<button id="go" onclick="document.getElementById('out').textContent='clicked ' + document.getElementById('q').value">Go</button>
<p id="out"></p></main></body></html>`

const bad = `<!doctype html><html lang="en"><head><title>Bad</title></head><body><main>
<input id="q"><p style="color:#ccc;background:#fff">faint</p></main></body></html>`

// The harness drives a real Chromium: type, click, read, screenshot; axe-core passes a page
// with labels and contrast and finds the missing label and the faint text of another.
func TestHarness(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, map[string]string{"/good": good, "/bad": bad}[r.URL.Path])
	}))
	t.Cleanup(srv.Close)
	b := browsertest.New(t)
	tab := b.Tab(t)
	browsertest.Do(t, tab, "search", chromedp.Navigate(srv.URL+"/good"),
		chromedp.SendKeys(chromedp.CSS("#q"), "order-1"), chromedp.Click(chromedp.CSS("#go")))
	if got := browsertest.Get(t, tab, "result", chromedp.Text(chromedp.CSS("#out"))); got != "clicked order-1" {
		t.Fatalf("after the click: %q", got)
	}
	if path := browsertest.Screenshot(t, tab, "good"); path == "" {
		t.Fatal("no screenshot")
	} else if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	browsertest.CheckAccessibility(t, tab, "good")

	browsertest.Do(t, tab, "bad page", chromedp.Navigate(srv.URL+"/bad"))
	var ids []string
	for _, v := range browsertest.Violations(t, tab, "bad") {
		ids = append(ids, v.ID)
	}
	for _, want := range []string{"label", "color-contrast"} {
		if !slices.Contains(ids, want) {
			t.Errorf("axe found %v on the bad page, want %s among them", ids, want)
		}
	}
}
