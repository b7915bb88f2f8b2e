package httpapi_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/queries"
)

// export GETs the payments list as CSV and parses it.
func export(t *testing.T, env *testenv.Env, params string, header ...string) (*http.Response, [][]string) {
	t.Helper()
	req, err := http.NewRequest("GET", env.API.URL+"/api/v1/payments?"+params, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(env.APIKey, "")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("?%s: reading the export: %v", params, err)
	}
	if res.StatusCode != http.StatusOK {
		return res, [][]string{{string(body)}}
	}
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatalf("?%s: not CSV: %v", params, err)
	}
	return res, recs
}

// TestExportCSV: GET /api/v1/payments as CSV streams every payment that matches the filters,
// more than one batch, each row once, with a header row, KST times and cells that a spreadsheet
// cannot run as formulas.
func TestExportCSV(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	ctx := context.Background()
	bulk := queries.ExportBatchSize + 37
	for i := range bulk {
		_, err := env.Commands.Checkout(ctx, commands.CheckoutInput{Merchant: testenv.Merchant, OrderName: fmt.Sprintf("bulk %d", i),
			BuyerID: "buyer-bulk", Lines: []domain.CheckoutLine{{SellerID: "seller-bulk", ProductID: "p", Amount: decimal.NewFromInt(1000)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	special := map[string]string{ // the order name given → the cell expected
		`=HYPERLINK("http://evil.example","click")`: `'=HYPERLINK("http://evil.example","click")`,
		"@SUM(A1:A9)":       "'@SUM(A1:A9)",
		"+82 10 1234":       "'+82 10 1234",
		"-5 off, \"today\"": "'-5 off, \"today\"",
		"Plain, with comma": "Plain, with comma",
	}
	ids := map[string]string{}
	for name := range special {
		status, co := call(t, "POST", env.API.URL+"/api/v1/payments/checkout",
			fmt.Sprintf(`{"orderName":%q,"buyerId":"=buyer","lines":[{"sellerId":"seller-odd","productId":"p","amount":"2500"}]}`, name))
		if status != http.StatusCreated {
			t.Fatalf("checkout: %d %v", status, co)
		}
		ids[co["orderId"].(string)] = name
	}
	total := bulk + len(special)
	testenv.WaitFor(t, 30*time.Second, "every payment in the read model", func() bool {
		var n int
		err := env.Pool.QueryRow(ctx, `SELECT count(*) FROM payment_orders`).Scan(&n)
		return err == nil && n == total
	})

	res, recs := export(t, env, "sellerId=seller-bulk", "Accept", "text/csv")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("export: %d %v", res.StatusCode, recs)
	}
	today := time.Now().In(domain.KST).Format(time.DateOnly)
	if ct, cd := res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"); ct != "text/csv; charset=utf-8" ||
		cd != `attachment; filename="payments-`+today+`.csv"` {
		t.Errorf("headers: Content-Type %q, Content-Disposition %q", ct, cd)
	}
	want := "orderId,createdAt,status,orderName,buyerId,amount,canceledAmount,currency,method,paymentKey,approvedAt,needsReview"
	if got := strings.Join(recs[0], ","); got != want {
		t.Fatalf("header row %q, want %q", got, want)
	}
	seen := map[string]bool{}
	prev := ""
	for _, r := range recs[1:] {
		if seen[r[0]] {
			t.Fatalf("order %s exported twice", r[0])
		}
		seen[r[0]] = true
		if !strings.HasPrefix(r[3], "bulk ") || r[5] != "1000" || r[7] != "KRW" || r[2] != "NOT_STARTED" || r[11] != "false" {
			t.Fatalf("row %v", r)
		}
		if _, err := time.Parse(time.RFC3339, r[1]); err != nil || !strings.HasSuffix(r[1], "+09:00") {
			t.Fatalf("createdAt %q is not RFC 3339 in KST", r[1])
		}
		if prev != "" && r[1] > prev {
			t.Fatalf("not newest first: %s after %s", r[1], prev)
		}
		prev = r[1]
	}
	if len(seen) != bulk {
		t.Fatalf("%d rows exported, want %d (more than one batch of %d)", len(seen), bulk, queries.ExportBatchSize)
	}

	// Another filter, asked for with ?format=csv: only the odd ones, formulas neutralized.
	_, recs = export(t, env, "format=csv&sellerId=seller-odd&minAmount=2000")
	if len(recs) != 1+len(special) {
		t.Fatalf("%d rows, want %d: %v", len(recs)-1, len(special), recs)
	}
	for _, r := range recs[1:] {
		name, ok := ids[r[0]]
		if !ok {
			t.Fatalf("row of another order: %v", r)
		}
		if r[3] != special[name] || r[4] != "'=buyer" {
			t.Errorf("order name %q exported as %q, buyer as %q; want %q, '=buyer", name, r[3], r[4], special[name])
		}
	}
	// Nothing matches: the header row alone.
	if _, recs = export(t, env, "format=csv&type=cancel"); len(recs) != 1 {
		t.Errorf("an empty export: %v", recs)
	}
	// Problems are answered before any row, as JSON.
	for params, code := range map[string]string{"format=xml": "INVALID_REQUEST", "format=csv&cursor=bogus": "INVALID_REQUEST", "format=csv&type=refund": "INVALID_REQUEST"} {
		res, recs := export(t, env, params)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(recs[0][0], code) {
			t.Errorf("?%s: %d %v", params, res.StatusCode, recs)
		}
	}
}

// failingExport is the real queries service whose export fails after rows rows: the database
// going away midway.
type failingExport struct {
	*queries.Service
	rows int
}

func (f failingExport) EachPayment(ctx context.Context, m domain.MerchantID, q queries.ListQuery, fn func(queries.Payment) error) error {
	n := 0
	return f.Service.EachPayment(ctx, m, q, func(p queries.Payment) error {
		if n == f.rows {
			return errors.New("the database went away")
		}
		n++
		return fn(p)
	})
}

// TestExportCutShortIsABrokenTransfer: an export that fails after rows were sent cuts the
// connection, so the client's read fails and a truncated file never looks complete.
func TestExportCutShortIsABrokenTransfer(t *testing.T) {
	env := newEnv(t, testenv.Options{})
	ctx := context.Background()
	for i := range 3 {
		if _, err := env.Commands.Checkout(ctx, commands.CheckoutInput{Merchant: testenv.Merchant, OrderName: fmt.Sprintf("cut %d", i),
			BuyerID: "b", Lines: []domain.CheckoutLine{{SellerID: "s", ProductID: "p", Amount: decimal.NewFromInt(1000)}}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 10*time.Second, "3 payments listed", func() bool {
		page, err := env.Queries.ListPayments(ctx, testenv.Merchant, queries.ListQuery{})
		return err == nil && len(page.Payments) == 3
	})
	srv := httpapi.New(env.Commands, failingExport{Service: env.Queries, rows: 2}, env.Pool.Ping, testenv.Logger(t),
		httpapi.AuthConfig{Keys: env.Merchants, KeyRate: 1000, KeyBurst: 1000, FailuresPerMinute: 1000})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/payments?format=csv", nil)
	req.SetBasicAuth(env.APIKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // cut before the header reached the client (the rows were still buffered): broken
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("status %d and a body that reads to its end (%q): want a broken transfer", resp.StatusCode, body)
	}
}
