package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymentledger/ledger/internal/testenv"
)

// TestListFilters: each back-office filter of GET /api/v1/payments selects what it says, they
// combine, and a bad value is a 400 naming the parameter.
func TestListFilters(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	type order struct{ name, buyer, seller, amount string }
	orders := []order{
		{"Blue pen", "buyer-a", "seller-1", "1000"},
		{"Red pen", "buyer-b", "seller-2", "25000"},
		{"Notebook 100%_off", "buyer-a", "seller-2", "50000"},
	}
	ids := map[string]string{}
	for _, o := range orders {
		status, co := call(t, "POST", env.API.URL+"/api/v1/payments/checkout",
			fmt.Sprintf(`{"orderName":%q,"buyerId":%q,"lines":[{"sellerId":%q,"productId":"p","amount":%q}]}`, o.name, o.buyer, o.seller, o.amount))
		if status != http.StatusCreated {
			t.Fatalf("checkout: %d %v", status, co)
		}
		ids[o.name] = co["orderId"].(string)
	}
	testenv.WaitFor(t, 10*time.Second, "3 payments in the read model", func() bool {
		_, l := call(t, "GET", env.API.URL+"/api/v1/payments", "")
		return len(l["payments"].([]any)) == 3
	})
	list := func(params string) []string {
		t.Helper()
		status, page := call(t, "GET", env.API.URL+"/api/v1/payments?"+params, "")
		if status != http.StatusOK {
			t.Fatalf("?%s: %d %v", params, status, page)
		}
		var names []string
		for _, p := range page["payments"].([]any) {
			names = append(names, p.(map[string]any)["orderName"].(string))
		}
		slices.Sort(names)
		return names
	}
	today := time.Now().In(time.FixedZone("KST", 9*3600)).Format(time.DateOnly)
	for params, want := range map[string][]string{
		"q=re":                          {"Red pen"}, // one or two characters: the start of the name, any case
		"q=en":                          nil,
		"q=pen":                         {"Blue pen", "Red pen"},
		"q=" + url.QueryEscape("100%_"): {"Notebook 100%_off"}, // wildcards are literal
		"q=buyer-a":                     {"Blue pen", "Notebook 100%_off"},
		"q=" + ids["Red pen"][:len(ids["Red pen"])-3]:          {"Red pen"}, // an orderId prefix
		"sellerId=seller-2":                                    {"Notebook 100%_off", "Red pen"},
		"minAmount=20000":                                      {"Notebook 100%_off", "Red pen"},
		"minAmount=20000&maxAmount=25000":                      {"Red pen"},
		"type=payment&sellerId=seller-1":                       {"Blue pen"},
		"type=cancel":                                          nil,
		"from=" + today + "&to=" + today:                       {"Blue pen", "Notebook 100%_off", "Red pen"},
		"to=2000-01-01":                                        nil,
		"status=NOT_STARTED&q=buyer-b":                         {"Red pen"},
		"from=" + url.QueryEscape("2100-01-01T00:00:00+09:00"): nil,
	} {
		if got := list(params); !slices.Equal(got, want) {
			t.Errorf("?%s: %v, want %v", params, got, want)
		}
	}
	// q and needsReview are unions of branches (queries.pageSQL): a page never repeats or skips
	// a payment matching several branches ("pen" names two payments; buyer-a's ids hold no "pen").
	var paged []string
	cursor := ""
	for range 5 {
		status, page := call(t, "GET", env.API.URL+"/api/v1/payments?limit=1&q=pen"+cursor, "")
		if status != http.StatusOK {
			t.Fatalf("q=pen page: %d %v", status, page)
		}
		for _, p := range page["payments"].([]any) {
			paged = append(paged, p.(map[string]any)["orderName"].(string))
		}
		next, _ := page["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = "&cursor=" + url.QueryEscape(next)
	}
	if slices.Sort(paged); !slices.Equal(paged, []string{"Blue pen", "Red pen"}) {
		t.Errorf("q=pen, a page at a time: %v", paged)
	}

	// needsReview: a broken history and an open difference with Toss each make a payment need
	// review, alone or with q.
	ctx := context.Background()
	if _, err := env.Pool.Exec(ctx, `INSERT INTO broken_streams (stream_id, detail) VALUES ($1, 'test')`, "payment-"+ids["Blue pen"]); err != nil {
		t.Fatal(err)
	}
	var run int64
	if err := env.Pool.QueryRow(ctx, `INSERT INTO reconciliation_runs (merchant_id, from_date, to_date, apply, trigger, started_at, finished_at,
		payments, toss_transactions, toss_settlements, counts, unresolved, applied)
		VALUES ($1, '2026-11-01', '2026-11-01', false, 'cli', now(), now(), 1, 1, 1, '{}', 1, 0) RETURNING id`, testenv.Merchant).Scan(&run); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Pool.Exec(ctx, `INSERT INTO reconciliation_differences (merchant_id, order_id, category, transaction_key, payment_key,
		ours, toss, detail, first_run_id, last_run_id, first_seen, last_seen) VALUES ($1, $2, 'amount', '', '', '1', '2', 'test', $3, $3, now(), now())`,
		testenv.Merchant, ids["Notebook 100%_off"], run); err != nil {
		t.Fatal(err)
	}
	for params, want := range map[string][]string{
		"needsReview=true":                          {"Blue pen", "Notebook 100%_off"},
		"needsReview=true&q=pen":                    {"Blue pen"},
		"needsReview=true&q=buyer-a&minAmount=2000": {"Notebook 100%_off"},
		"needsReview=false&q=Red":                   {"Red pen"},
	} {
		if got := list(params); !slices.Equal(got, want) {
			t.Errorf("?%s: %v, want %v", params, got, want)
		}
	}

	for params, wantParam := range map[string]string{
		"type=refund":                   "type",
		"from=yesterday":                "from",
		"minAmount=-1":                  "minAmount",
		"minAmount=1e3":                 "minAmount must be a whole number of won",
		"maxAmount=1.5":                 "maxAmount must be a whole number of won",
		"minAmount=5&maxAmount=1":       "minAmount",
		"from=2026-12-02&to=2026-12-01": "from",
		"needsReview=maybe":             "needsReview",
		"type=refund&from=yesterday":    "from must be a date (2026-12-01, KST) or an RFC 3339 time, got \"yesterday\"; type must be payment or cancel", // every problem at once
	} {
		status, body := call(t, "GET", env.API.URL+"/api/v1/payments?"+params, "")
		e, _ := body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != http.StatusBadRequest || !strings.Contains(msg, wantParam) {
			t.Errorf("?%s: %d %v, want 400 naming %s", params, status, body, wantParam)
		}
	}
}
