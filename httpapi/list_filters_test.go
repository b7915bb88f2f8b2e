package httpapi_test

import (
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
	for params, wantParam := range map[string]string{
		"type=refund":                   "type",
		"from=yesterday":                "from",
		"minAmount=-1":                  "minAmount",
		"minAmount=5&maxAmount=1":       "minAmount",
		"from=2026-12-02&to=2026-12-01": "from",
		"needsReview=maybe":             "needsReview",
	} {
		status, body := call(t, "GET", env.API.URL+"/api/v1/payments?"+params, "")
		e, _ := body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != http.StatusBadRequest || !strings.Contains(msg, wantParam) {
			t.Errorf("?%s: %d %v, want 400 naming %s", params, status, body, wantParam)
		}
	}
}
