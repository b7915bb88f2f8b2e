package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/merchants"
)

// tenant is one merchant of the authorization test and what it owns.
type tenant struct {
	id         domain.MerchantID
	key        string // its first key: every scope
	paid       string // an approved payment
	refunded   string // approved, then partly refunded
	pending    string // checked out with the buyer's session open, not confirmed: a confirm would write
	paymentKey string // the pending order's paymentKey
	seller     string // a seller only this merchant sells for
	total      string // the amount of each of its orders
	orders     map[string]bool
}

// sharedSeller sells for both merchants: its wallet and account must still be split by merchant.
const sharedSeller = "seller-shared"

func (m *tenant) checkoutBody() string {
	return m.checkoutBodyNamed("authz order")
}

// checkoutBodyNamed is a checkout of m's seller and the shared seller; A's lines add up to
// 25000, B's to 10000, so each merchant's figures are recognisable in the other's answers.
func (m *tenant) checkoutBodyNamed(name string) string {
	own, shared := "15000", "10000"
	if m.total == "10000" {
		own, shared = "7000", "3000"
	}
	return fmt.Sprintf(`{"orderName":%q,"buyerId":"buyer-1","lines":[{"sellerId":%q,"productId":"p1","amount":%q},{"sellerId":%q,"productId":"p2","amount":%q}]}`,
		name, m.seller, own, sharedSeller, shared)
}

// apiRequest is a request with its path values filled in.
type apiRequest struct {
	method, path, body string
	header             []string // name, value pairs
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResponse) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body is not a JSON object: %q", r.status, truncateForLog(string(r.body), 300))
	}
	return m
}

// authzFixture is an Env with two merchants that both have money in the ledger.
type authzFixture struct {
	env  *testenv.Env
	a, b *tenant
	// noScope maps a scope to a key of A with every other scope.
	noScope map[domain.Scope]string
	revoked string // a key of A, revoked
	unknown string // well-formed, never issued
	// adminTarget is the merchant the admin routes act on (A and B keep their settings), with a
	// key to revoke and one to rotate.
	adminTarget              domain.MerchantID
	revokeKeyID, rotateKeyID domain.APIKeyID
}

func newAuthzFixture(t *testing.T) *authzFixture {
	env := testenv.New(t, testenv.Options{})
	f := &authzFixture{env: env, noScope: map[domain.Scope]string{}}
	f.a = &tenant{id: testenv.Merchant, key: env.APIKey, seller: "seller-a", total: "25000", orders: map[string]bool{}}
	f.b = &tenant{id: "merchant-b", seller: "seller-b", total: "10000", orders: map[string]bool{}}
	f.b.key = env.NewMerchant(t, f.b.id)

	f.a.paid = f.pay(t, f.a)
	f.a.refunded = f.pay(t, f.a)
	if res := f.do(t, apiRequest{"POST", "/api/v1/payments/" + f.a.refunded + "/cancel", `{"amount":"5000","reason":"one item back"}`,
		[]string{"Idempotency-Key", "setup-refund"}}, bearer(f.a.key)); res.status != http.StatusOK || res.json(t)["cancelStatus"] != "CANCELED" {
		t.Fatalf("refund: %d %s", res.status, res.body)
	}
	f.a.pending, f.a.paymentKey = f.checkoutWithSession(t, f.a)
	f.b.paid = f.pay(t, f.b)

	ctx := context.Background()
	for _, s := range domain.AllScopes {
		others := slices.DeleteFunc(slices.Clone(domain.AllScopes), func(o domain.Scope) bool { return o == s })
		k, err := env.Merchants.IssueKey(ctx, f.a.id, others, merchants.ActorAdmin)
		if err != nil {
			t.Fatal(err)
		}
		f.noScope[s] = k.APIKey
	}
	k, err := env.Merchants.IssueKey(ctx, f.a.id, nil, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Merchants.RevokeKey(ctx, f.a.id, k.KeyID, merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
	f.revoked = k.APIKey
	f.unknown = "sk_test_" + strings.Repeat("a", 16) + strings.Repeat("b", 52)

	f.adminTarget = "merchant-admin-target"
	env.NewMerchant(t, f.adminTarget)
	for _, id := range []*domain.APIKeyID{&f.revokeKeyID, &f.rotateKeyID} {
		k, err := env.Merchants.IssueKey(ctx, f.adminTarget, nil, merchants.ActorAdmin)
		if err != nil {
			t.Fatal(err)
		}
		*id = k.KeyID
	}
	settle(t, env)
	return f
}

// do sends r with the Authorization header value auth (none when empty).
func (f *authzFixture) do(t testing.TB, r apiRequest, auth string) apiResponse {
	t.Helper()
	req, err := http.NewRequest(r.method, f.env.API.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(r.header); i += 2 {
		req.Header.Set(r.header[i], r.header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := readAnswer(resp)
	if err != nil {
		t.Fatal(err)
	}
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: body}
}

// checkoutWithSession checks out an order of m through the API and opens the buyer's session at
// the simulator: the order can now be confirmed with the returned paymentKey.
func (f *authzFixture) checkoutWithSession(t testing.TB, m *tenant) (orderID, paymentKey string) {
	t.Helper()
	res := f.do(t, apiRequest{method: "POST", path: "/api/v1/payments/checkout", body: m.checkoutBody()}, bearer(m.key))
	if res.status != http.StatusCreated {
		t.Fatalf("checkout for %s: %d %s", m.id, res.status, res.body)
	}
	orderID = res.json(t)["orderId"].(string)
	m.orders[orderID] = true
	key, err := f.env.Sim.CreateSession(orderID, decimal.RequireFromString(m.total), "authz order")
	if err != nil {
		t.Fatal(err)
	}
	return orderID, key
}

// pay takes an order of m to SUCCESS through the API.
func (f *authzFixture) pay(t testing.TB, m *tenant) string {
	t.Helper()
	id, key := f.checkoutWithSession(t, m)
	res := f.do(t, apiRequest{method: "POST", path: "/api/v1/payments/confirm",
		body: fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":%q}`, key, id, m.total)}, bearer(m.key))
	if res.status != http.StatusOK || res.json(t)["status"] != "SUCCESS" {
		t.Fatalf("confirm for %s: %d %s", m.id, res.status, res.body)
	}
	return id
}

// refused sends r and checks that it is answered status with the error code and that nothing
// was written anywhere: no event in any stream, no row in any read model or merchant table.
func (f *authzFixture) refused(t testing.TB, r apiRequest, auth string, status int, code string) apiResponse {
	t.Helper()
	settle(t, f.env)
	before := rowCounts(t, f.env)
	res := f.do(t, r, auth)
	if res.status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", r.method, r.path, res.status, status, truncateForLog(string(res.body), 300))
	}
	got, err := apiErrorCode(res.body)
	if err != nil || got != code {
		t.Fatalf("%s %s: error code %q (%v), want %s: %s", r.method, r.path, got, err, code, truncateForLog(string(res.body), 300))
	}
	if d := diffCounts(before, rowCounts(t, f.env)); d != "" {
		t.Fatalf("%s %s was refused with %d yet wrote: %s", r.method, r.path, status, d)
	}
	return res
}

// orderIDsIn collects every "orderId" value anywhere in a JSON body.
func orderIDsIn(t testing.TB, body []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %q", truncateForLog(string(body), 300))
	}
	var ids []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "orderId" {
					ids = append(ids, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return ids
}

// onlyOwn checks that an answer to B names only B's orders, at least want of them, and that no
// order of A appears anywhere in it, not even as text.
func (f *authzFixture) onlyOwn(t testing.TB, res apiResponse, want int) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	ids := orderIDsIn(t, res.body)
	for _, id := range ids {
		if !f.b.orders[id] {
			t.Fatalf("B's answer names order %s, which is not B's: %s", id, truncateForLog(string(res.body), 500))
		}
	}
	for id := range f.a.orders {
		if strings.Contains(string(res.body), id) {
			t.Fatalf("B's answer mentions A's order %s: %s", id, truncateForLog(string(res.body), 500))
		}
	}
	if len(ids) < want {
		t.Errorf("B's answer names %d of its orders, want at least %d: %s", len(ids), want, truncateForLog(string(res.body), 500))
	}
}

// routeCase says, for one route, who may call it and how to call it.
type routeCase struct {
	access httpapi.Access
	scope  domain.Scope
	// aim builds a request at m's resources: one that would read them, or write, if let through.
	aim func(f *authzFixture, m *tenant) apiRequest
	// ok is the owner's status for positive's request (aim at A when positive is nil).
	ok       int
	positive func(t *testing.T, f *authzFixture) apiRequest
	// check looks at the owner's successful answer: the route really shows the owner's data, so
	// that B seeing none of it means something.
	check func(t *testing.T, f *authzFixture, res apiResponse)
	// foreign checks what B's key gets of A's resources: "another merchant's resource".
	foreign func(t *testing.T, f *authzFixture)
}

func get(path string) func(*authzFixture, *tenant) apiRequest {
	return func(*authzFixture, *tenant) apiRequest { return apiRequest{method: "GET", path: path} }
}

// authzTable holds every route of the API. A route registered without an entry fails the test,
// and so does an entry whose route is gone or whose access or scope differs from the route's.
func authzTable() map[string]routeCase {
	cancelOf := func(order, idem string) apiRequest {
		return apiRequest{"POST", "/api/v1/payments/" + order + "/cancel", `{"amount":"1000","reason":"authz"}`, []string{"Idempotency-Key", idem}}
	}
	return map[string]routeCase{
		"GET /healthz": {access: httpapi.AccessPublic, aim: get("/healthz"), ok: http.StatusOK},
		"GET /readyz":  {access: httpapi.AccessPublic, aim: get("/readyz"), ok: http.StatusOK},

		"POST /api/v1/payments/checkout": {
			access: httpapi.AccessAPIKey, scope: domain.ScopePaymentsWrite, ok: http.StatusCreated,
			aim: func(_ *authzFixture, m *tenant) apiRequest {
				return apiRequest{"POST", "/api/v1/payments/checkout", m.checkoutBody(), []string{"Idempotency-Key", "authz-checkout"}}
			},
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				f.a.orders[res.json(t)["orderId"].(string)] = true
			},
			// A merchant's Idempotency-Key names its own order: B sending the key and body A
			// used gets a new order of B's, neither A's order replayed nor A's conflict.
			foreign: func(t *testing.T, f *authzFixture) {
				req := apiRequest{"POST", "/api/v1/payments/checkout", f.a.checkoutBodyNamed("same key"), []string{"Idempotency-Key", "authz-shared-key"}}
				resA := f.do(t, req, bearer(f.a.key))
				if resA.status != http.StatusCreated {
					t.Fatalf("A's checkout: %d %s", resA.status, resA.body)
				}
				orderA := resA.json(t)["orderId"].(string)
				f.a.orders[orderA] = true
				resB := f.do(t, req, bearer(f.b.key))
				if resB.status != http.StatusCreated || resB.header.Get("Idempotent-Replayed") != "" {
					t.Fatalf("B's checkout with A's Idempotency-Key: %d %v %s", resB.status, resB.header, resB.body)
				}
				orderB := resB.json(t)["orderId"].(string)
				f.b.orders[orderB] = true
				if orderB == orderA {
					t.Fatalf("B's checkout with A's Idempotency-Key answered A's order %s", orderA)
				}
				if again := f.do(t, req, bearer(f.a.key)); again.status != http.StatusCreated || again.json(t)["orderId"] != orderA || again.header.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("A's replay after B's checkout: %d %s", again.status, again.body)
				}
			},
		},
		"POST /api/v1/payments/confirm": {
			access: httpapi.AccessAPIKey, scope: domain.ScopePaymentsWrite, ok: http.StatusOK,
			aim: func(_ *authzFixture, m *tenant) apiRequest {
				return apiRequest{method: "POST", path: "/api/v1/payments/confirm",
					body: fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":%q}`, m.paymentKey, m.pending, m.total)}
			},
			check: func(t *testing.T, _ *authzFixture, res apiResponse) {
				if s := res.json(t)["status"]; s != "SUCCESS" {
					t.Fatalf("A's confirm of its pending order: status %v", s)
				}
			},
			// B confirming A's pending order (with A's paymentKey and amount) finds no such
			// payment, records nothing and never reaches Toss.
			foreign: func(t *testing.T, f *authzFixture) {
				calls := f.env.Sim.Stats().ConfirmRequests
				req := apiRequest{method: "POST", path: "/api/v1/payments/confirm",
					body: fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":%q}`, f.a.paymentKey, f.a.pending, f.a.total)}
				f.refused(t, req, bearer(f.b.key), http.StatusNotFound, "PAYMENT_NOT_FOUND")
				if got := f.env.Sim.Stats().ConfirmRequests; got != calls {
					t.Fatalf("B's confirm of A's order reached Toss (%d confirm requests, was %d)", got, calls)
				}
			},
		},
		"POST /api/v1/payments/{orderId}/cancel": {
			access: httpapi.AccessAPIKey, scope: domain.ScopeRefundsWrite, ok: http.StatusOK,
			aim: func(_ *authzFixture, m *tenant) apiRequest { return cancelOf(m.paid, "authz-cancel") },
			// A fresh payment: cancels of one payment are spaced a second apart.
			positive: func(t *testing.T, f *authzFixture) apiRequest {
				return cancelOf(f.pay(t, f.a), "authz-cancel")
			},
			check: func(t *testing.T, _ *authzFixture, res apiResponse) {
				if s := res.json(t)["cancelStatus"]; s != "CANCELED" {
					t.Fatalf("A's refund: cancelStatus %v", s)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				calls := f.env.Sim.Stats().CancelRequests
				for _, id := range []string{f.a.paid, f.a.refunded} {
					f.refused(t, cancelOf(id, "authz-cancel"), bearer(f.b.key), http.StatusNotFound, "PAYMENT_NOT_FOUND")
				}
				if got := f.env.Sim.Stats().CancelRequests; got != calls {
					t.Fatalf("B's refund of A's payment reached Toss (%d cancel requests, was %d)", got, calls)
				}
			},
		},
		"GET /api/v1/payments": {
			access: httpapi.AccessAPIKey, scope: domain.ScopePaymentsRead, ok: http.StatusOK,
			aim: get("/api/v1/payments?limit=100"),
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				ids := orderIDsIn(t, res.body)
				if !slices.Contains(ids, f.a.paid) || !slices.Contains(ids, f.a.refunded) {
					t.Fatalf("A's list lacks its payments: %v", ids)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				for _, q := range []string{"?limit=100", "?status=SUCCESS", "?status=PARTIALLY_CANCELED", "?status=NOT_STARTED", "?needsReview=false&limit=100"} {
					f.onlyOwn(t, f.do(t, apiRequest{method: "GET", path: "/api/v1/payments" + q}, bearer(f.b.key)), 0)
				}
				f.onlyOwn(t, f.do(t, apiRequest{method: "GET", path: "/api/v1/payments?limit=100"}, bearer(f.b.key)), 1)
			},
		},
		"GET /api/v1/reports/daily": {
			access: httpapi.AccessAPIKey, scope: domain.ScopePaymentsRead, ok: http.StatusOK,
			aim: func(*authzFixture, *tenant) apiRequest { return apiRequest{method: "GET", path: reportAroundToday()} },
			// A's orders are 25000 each and B's 10000: each report sums its own merchant's only.
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				tot := res.json(t)["totals"].(map[string]any)
				if n, amt := tot["approvedCount"].(float64), tot["approvedAmount"].(string); n < 2 || amt != fmt.Sprint(25000*int(n)) {
					t.Fatalf("A's report: %s", res.body)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				res := f.do(t, apiRequest{method: "GET", path: reportAroundToday()}, bearer(f.b.key))
				if res.status != http.StatusOK {
					t.Fatalf("B's report: %d %s", res.status, res.body)
				}
				tot := res.json(t)["totals"].(map[string]any)
				if n, amt := tot["approvedCount"].(float64), tot["approvedAmount"].(string); n < 1 || amt != fmt.Sprint(10000*int(n)) || tot["canceledAmount"] != "0" {
					t.Fatalf("B's report holds more than B's payments: %s", res.body)
				}
			},
		},
		"GET /api/v1/payments/{orderId}": {
			access: httpapi.AccessAPIKey, scope: domain.ScopePaymentsRead, ok: http.StatusOK,
			aim: func(_ *authzFixture, m *tenant) apiRequest {
				return apiRequest{method: "GET", path: "/api/v1/payments/" + m.paid}
			},
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				if b := res.json(t); b["orderId"] != f.a.paid || b["merchantId"] != string(f.a.id) {
					t.Fatalf("A's payment: %v", b)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				for _, id := range []string{f.a.paid, f.a.refunded, f.a.pending} {
					f.refused(t, apiRequest{method: "GET", path: "/api/v1/payments/" + id}, bearer(f.b.key), http.StatusNotFound, "PAYMENT_NOT_FOUND")
				}
			},
		},
		"GET /api/v1/payments/{orderId}/events": {
			access: httpapi.AccessAPIKey, scope: domain.ScopePaymentsRead, ok: http.StatusOK,
			aim: func(_ *authzFixture, m *tenant) apiRequest {
				return apiRequest{method: "GET", path: "/api/v1/payments/" + m.paid + "/events"}
			},
			// The stream's first event is the owner's payment (readAnswer stops there).
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				if !strings.Contains(string(res.body), "event: payment\n") || !strings.Contains(string(res.body), `"orderId":"`+f.a.paid+`"`) {
					t.Fatalf("A's stream: %q", truncateForLog(string(res.body), 300))
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				for _, id := range []string{f.a.paid, f.a.refunded, f.a.pending} {
					f.refused(t, apiRequest{method: "GET", path: "/api/v1/payments/" + id + "/events"}, bearer(f.b.key), http.StatusNotFound, "PAYMENT_NOT_FOUND")
				}
			},
		},
		"GET /api/v1/ledger/accounts": {
			access: httpapi.AccessAPIKey, scope: domain.ScopeLedgerRead, ok: http.StatusOK,
			aim: get("/api/v1/ledger/accounts"),
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				if _, ok := accountBalances(t, res)["seller_payable:seller-a"]; !ok {
					t.Fatalf("A's accounts lack its seller: %s", res.body)
				}
			},
			// B's books: its approval of 10000 and nothing of A's 25000s or A's seller.
			foreign: func(t *testing.T, f *authzFixture) {
				res := f.do(t, apiRequest{method: "GET", path: "/api/v1/ledger/accounts"}, bearer(f.b.key))
				f.onlyOwn(t, res, 0)
				assertBalances(t, "B's accounts", accountBalances(t, res), bBooks)
			},
		},
		"GET /api/v1/ledger/accounts/{account}/postings": {
			access: httpapi.AccessAPIKey, scope: domain.ScopeLedgerRead, ok: http.StatusOK,
			aim: func(_ *authzFixture, m *tenant) apiRequest {
				return apiRequest{method: "GET", path: "/api/v1/ledger/accounts/seller_payable:" + m.seller + "/postings?limit=100"}
			},
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				if ids := orderIDsIn(t, res.body); !slices.Contains(ids, f.a.paid) {
					t.Fatalf("A's seller postings lack its payment: %s", res.body)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				postings := func(account string) apiResponse {
					return f.do(t, apiRequest{method: "GET", path: "/api/v1/ledger/accounts/" + account + "/postings?limit=100"}, bearer(f.b.key))
				}
				res := postings("seller_payable:" + f.a.seller)
				f.onlyOwn(t, res, 0)
				if n := len(res.json(t)["postings"].([]any)); n != 0 {
					t.Errorf("B sees %d postings of A's seller", n)
				}
				f.onlyOwn(t, postings(domain.AccountPSPReceivable), 1)
				f.onlyOwn(t, postings("seller_payable:"+sharedSeller), 1)
			},
		},
		"GET /api/v1/ledger/trial-balance": {
			access: httpapi.AccessAPIKey, scope: domain.ScopeLedgerRead, ok: http.StatusOK,
			aim: get("/api/v1/ledger/trial-balance"),
			check: func(t *testing.T, _ *authzFixture, res apiResponse) {
				b := res.json(t)
				if b["totalDebits"] != b["totalCredits"] || b["totalDebits"] == "0" {
					t.Fatalf("A's trial balance: %v", b)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				res := f.do(t, apiRequest{method: "GET", path: "/api/v1/ledger/trial-balance"}, bearer(f.b.key))
				f.onlyOwn(t, res, 0)
				b := res.json(t)
				if b["totalDebits"] != "10000" || b["totalCredits"] != "10000" {
					t.Errorf("B's trial balance totals %v / %v, want only B's 10000", b["totalDebits"], b["totalCredits"])
				}
				assertBalances(t, "B's trial balance", accountBalances(t, res), bBooks)
			},
		},
		"GET /api/v1/wallets/{sellerId}": {
			access: httpapi.AccessAPIKey, scope: domain.ScopeLedgerRead, ok: http.StatusOK,
			aim: func(_ *authzFixture, m *tenant) apiRequest {
				return apiRequest{method: "GET", path: "/api/v1/wallets/" + m.seller}
			},
			check: func(t *testing.T, _ *authzFixture, res apiResponse) {
				if b := res.json(t); b["pending"] == "0" {
					t.Fatalf("A's seller has no money pending: %v", b)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				wallet := func(seller string) map[string]any {
					res := f.do(t, apiRequest{method: "GET", path: "/api/v1/wallets/" + seller}, bearer(f.b.key))
					f.onlyOwn(t, res, 0)
					return res.json(t)
				}
				if w := wallet(f.a.seller); w["pending"] != "0" || w["available"] != "0" {
					t.Errorf("B sees A's seller's money: %v", w)
				}
				if w := wallet(sharedSeller); w["pending"] != "3000" || w["available"] != "0" {
					t.Errorf("B's wallet of the shared seller %v, want only B's 3000 pending", w)
				}
			},
		},
		"GET /api/v1/wallets/{sellerId}/movements": {
			access: httpapi.AccessAPIKey, scope: domain.ScopeLedgerRead, ok: http.StatusOK,
			aim: func(_ *authzFixture, m *tenant) apiRequest {
				return apiRequest{method: "GET", path: "/api/v1/wallets/" + m.seller + "/movements"}
			},
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				if ids := orderIDsIn(t, res.body); !slices.Contains(ids, f.a.refunded) {
					t.Fatalf("A's seller's movements lack its payment: %s", res.body)
				}
			},
			foreign: func(t *testing.T, f *authzFixture) {
				res := f.do(t, apiRequest{method: "GET", path: "/api/v1/wallets/" + f.a.seller + "/movements"}, bearer(f.b.key))
				f.onlyOwn(t, res, 0)
				if n := len(res.json(t)["movements"].([]any)); n != 0 {
					t.Errorf("B sees %d movements of A's seller", n)
				}
				f.onlyOwn(t, f.do(t, apiRequest{method: "GET", path: "/api/v1/wallets/" + sharedSeller + "/movements"}, bearer(f.b.key)), 1)
			},
		},

		"GET /api/v1/reconciliation/runs": {
			access: httpapi.AccessAPIKey, scope: domain.ScopeLedgerRead, ok: http.StatusOK,
			aim: get("/api/v1/reconciliation/runs"),
			positive: func(t *testing.T, f *authzFixture) apiRequest {
				recordRun(t, f.env, f.a.id, "2026-11-01")
				return apiRequest{method: "GET", path: "/api/v1/reconciliation/runs"}
			},
			check: func(t *testing.T, f *authzFixture, res apiResponse) {
				runs := res.json(t)["runs"].([]any)
				if len(runs) == 0 {
					t.Fatalf("A's runs are missing: %s", res.body)
				}
				for _, r := range runs {
					if r.(map[string]any)["from"] != "2026-11-01" {
						t.Fatalf("A's runs list a run that is not A's: %s", res.body)
					}
				}
			},
			// Each merchant's runs are its own: B sees B's run and none of A's.
			foreign: func(t *testing.T, f *authzFixture) {
				recordRun(t, f.env, f.a.id, "2026-11-01")
				recordRun(t, f.env, f.b.id, "2026-10-01")
				res := f.do(t, apiRequest{method: "GET", path: "/api/v1/reconciliation/runs"}, bearer(f.b.key))
				if res.status != http.StatusOK {
					t.Fatalf("B's runs: %d %s", res.status, res.body)
				}
				runs := res.json(t)["runs"].([]any)
				if len(runs) == 0 {
					t.Fatalf("B's own run is missing: %s", res.body)
				}
				for _, r := range runs {
					if r.(map[string]any)["from"] != "2026-10-01" {
						t.Fatalf("B sees a run of A: %s", res.body)
					}
				}
			},
		},

		"POST /admin/v1/merchants": {
			access: httpapi.AccessAdmin, ok: http.StatusCreated,
			aim: func(*authzFixture, *tenant) apiRequest {
				return apiRequest{method: "POST", path: "/admin/v1/merchants", body: `{"name":"Shop C","merchantId":"merchant-c","tossSecretKey":"test_sk_c"}`}
			},
		},
		"GET /admin/v1/merchants":              {access: httpapi.AccessAdmin, ok: http.StatusOK, aim: get("/admin/v1/merchants")},
		"GET /admin/v1/merchants/{merchantId}": {access: httpapi.AccessAdmin, ok: http.StatusOK, aim: adminGet("")},
		"PUT /admin/v1/merchants/{merchantId}/toss-key": {
			access: httpapi.AccessAdmin, ok: http.StatusOK,
			aim: adminReq("PUT", "/toss-key", `{"tossSecretKey":"test_sk_replaced"}`),
		},
		"PUT /admin/v1/merchants/{merchantId}/commission": {
			access: httpapi.AccessAdmin, ok: http.StatusOK,
			aim: adminReq("PUT", "/commission", `{"rate":"0.1"}`),
		},
		"PUT /admin/v1/merchants/{merchantId}/fee-rate": {
			access: httpapi.AccessAdmin, ok: http.StatusOK,
			aim: adminReq("PUT", "/fee-rate", `{"rate":"0.0341","from":"2026-01-01"}`),
			check: func(t *testing.T, _ *authzFixture, res apiResponse) {
				if r := res.json(t)["tossFeeRate"]; r != "0.0341" {
					t.Fatalf("the merchant after setting its fee rate shows tossFeeRate %v", r)
				}
			},
		},
		"POST /admin/v1/merchants/{merchantId}/keys": {
			access: httpapi.AccessAdmin, ok: http.StatusCreated,
			aim: adminReq("POST", "/keys", `{"scopes":["payments:read"]}`),
		},
		"GET /admin/v1/merchants/{merchantId}/keys": {access: httpapi.AccessAdmin, ok: http.StatusOK, aim: adminGet("/keys")},
		"POST /admin/v1/merchants/{merchantId}/keys/{keyId}/revoke": {
			access: httpapi.AccessAdmin, ok: http.StatusOK,
			aim: func(f *authzFixture, _ *tenant) apiRequest {
				return apiRequest{method: "POST", path: fmt.Sprintf("/admin/v1/merchants/%s/keys/%s/revoke", f.adminTarget, f.revokeKeyID)}
			},
		},
		"POST /admin/v1/merchants/{merchantId}/keys/{keyId}/rotate": {
			access: httpapi.AccessAdmin, ok: http.StatusCreated,
			aim: func(f *authzFixture, _ *tenant) apiRequest {
				return apiRequest{method: "POST", path: fmt.Sprintf("/admin/v1/merchants/%s/keys/%s/rotate", f.adminTarget, f.rotateKeyID),
					body: `{"gracePeriod":"1h"}`}
			},
		},
		"PUT /admin/v1/merchants/{merchantId}/notifications": {
			access: httpapi.AccessAdmin, ok: http.StatusOK,
			aim: adminReq("PUT", "/notifications", `{"url":"https://shop.example/hooks"}`),
			check: func(t *testing.T, _ *authzFixture, res apiResponse) {
				if b := res.json(t); b["url"] != "https://shop.example/hooks" || !strings.HasPrefix(fmt.Sprint(b["signingSecret"]), "whsec_") {
					t.Fatalf("a new notification URL answers its signing secret: %v", b)
				}
			},
		},
		"POST /admin/v1/merchants/{merchantId}/notifications/rotate-secret": {
			access: httpapi.AccessAdmin, ok: http.StatusOK,
			aim: adminReq("POST", "/notifications/rotate-secret", `{"gracePeriod":"1h"}`),
			positive: func(t *testing.T, f *authzFixture) apiRequest {
				if _, err := f.env.Merchants.SetNotificationURL(context.Background(), f.adminTarget, "https://shop.example/hooks", merchants.ActorAdmin); err != nil {
					t.Fatal(err)
				}
				return adminReq("POST", "/notifications/rotate-secret", `{"gracePeriod":"1h"}`)(f, nil)
			},
			check: func(t *testing.T, _ *authzFixture, res apiResponse) {
				if b := res.json(t); !strings.HasPrefix(fmt.Sprint(b["signingSecret"]), "whsec_") || b["previousSecretValidUntil"] == nil {
					t.Fatalf("a rotation answers the new secret and the old one's end: %v", b)
				}
			},
		},
		"DELETE /admin/v1/merchants/{merchantId}/notifications": {
			access: httpapi.AccessAdmin, ok: http.StatusOK,
			aim: adminReq("DELETE", "/notifications", ""),
		},
	}
}

func adminGet(suffix string) func(*authzFixture, *tenant) apiRequest {
	return adminReq("GET", suffix, "")
}

func adminReq(method, suffix, body string) func(*authzFixture, *tenant) apiRequest {
	return func(f *authzFixture, _ *tenant) apiRequest {
		return apiRequest{method: method, path: "/admin/v1/merchants/" + string(f.adminTarget) + suffix, body: body}
	}
}

// bBooks is B's ledger: one approval of 10000 split between its seller and the shared one.
var bBooks = map[string]string{
	domain.AccountPSPReceivable:      "10000",
	"seller_payable:seller-b":        "-7000",
	"seller_payable:" + sharedSeller: "-3000",
}

func accountBalances(t testing.TB, res apiResponse) map[string]string {
	t.Helper()
	out := map[string]string{}
	accounts, _ := res.json(t)["accounts"].([]any)
	for _, a := range accounts {
		a := a.(map[string]any)
		out[a["account"].(string)] = a["balance"].(string)
	}
	return out
}

func assertBalances(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	for acct, bal := range got {
		if want[acct] != bal {
			t.Errorf("%s: %s = %s, want %q (B's books only)", what, acct, bal, want[acct])
		}
	}
	for acct, bal := range want {
		if _, ok := got[acct]; !ok {
			t.Errorf("%s: %s missing, want %s", what, acct, bal)
		}
	}
}

func TestEveryRouteIsAuthorized(t *testing.T) {
	f := newAuthzFixture(t)
	table := authzTable()
	routes := f.env.Server.Routes()
	registered := map[string]bool{}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		registered[key] = true
		c, ok := table[key]
		switch {
		case !ok:
			t.Errorf("route %s (%s %s) has no entry in authzTable: add one saying how to call it and what another merchant's resource is for it", key, r.Access, r.Scope)
		case c.access != r.Access || c.scope != r.Scope:
			t.Errorf("route %s is registered as %s %q, the table says %s %q", key, r.Access, r.Scope, c.access, c.scope)
		}
	}
	for key := range table {
		if !registered[key] {
			t.Errorf("authzTable has an entry for %s, which is no registered route", key)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, r := range routes {
		c := table[r.Method+" "+r.Path]
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			req := c.aim(f, f.a)
			switch r.Access {
			case httpapi.AccessPublic:
				if res := f.do(t, req, ""); res.status != c.ok {
					t.Fatalf("without a key: %d %s, want %d", res.status, res.body, c.ok)
				}
			case httpapi.AccessAdmin:
				for _, auth := range []struct{ name, value string }{
					{"no token", ""},
					{"wrong token", bearer(testenv.AdminToken + "x")},
					{"token without Bearer", testenv.AdminToken},
					{"token over Basic", basic(testenv.AdminToken)},
					{"an API key as token", bearer(f.a.key)},
				} {
					t.Run(auth.name, func(t *testing.T) { f.refused(t, req, auth.value, http.StatusUnauthorized, "UNAUTHORIZED") })
				}
			case httpapi.AccessAPIKey:
				for _, auth := range []struct {
					name, value string
					status      int
				}{
					{"no key", "", http.StatusUnauthorized},
					{"empty Bearer", "Bearer ", http.StatusUnauthorized},
					{"malformed key", bearer("sk_test_tooshort"), http.StatusUnauthorized},
					{"malformed Basic", "Basic %%%", http.StatusUnauthorized},
					{"the admin token as key", bearer(testenv.AdminToken), http.StatusUnauthorized},
					{"unknown key", bearer(f.unknown), http.StatusUnauthorized},
					{"key with a wrong secret", bearer(f.a.key[:len(f.a.key)-1] + flip(f.a.key[len(f.a.key)-1])), http.StatusUnauthorized},
					{"revoked key", bearer(f.revoked), http.StatusUnauthorized},
					{"revoked key over Basic", basic(f.revoked), http.StatusUnauthorized},
					{"key without the scope", bearer(f.noScope[r.Scope]), http.StatusForbidden},
					{"key without the scope over Basic", basic(f.noScope[r.Scope]), http.StatusForbidden},
				} {
					t.Run(auth.name, func(t *testing.T) {
						code := "UNAUTHORIZED"
						if auth.status == http.StatusForbidden {
							code = "FORBIDDEN"
						}
						res := f.refused(t, req, auth.value, auth.status, code)
						if auth.status == http.StatusUnauthorized && res.header.Get("WWW-Authenticate") == "" {
							t.Fatal("401 without WWW-Authenticate")
						}
					})
				}
				t.Run("another merchant's resource", func(t *testing.T) { c.foreign(t, f) })
			}
		})
	}

	// Last, because they change what A owns: every route works for its owner, with the key sent
	// as HTTP Basic's user name for the API and the admin token for the admin API.
	for _, r := range routes {
		c := table[r.Method+" "+r.Path]
		t.Run("owner/"+r.Method+" "+r.Path, func(t *testing.T) {
			req := c.aim(f, f.a)
			if c.positive != nil {
				req = c.positive(t, f)
			}
			auth := ""
			switch r.Access {
			case httpapi.AccessAPIKey:
				auth = basic(f.a.key)
			case httpapi.AccessAdmin:
				auth = bearer(testenv.AdminToken)
			}
			res := f.do(t, req, auth)
			if res.status != c.ok {
				t.Fatalf("%s %s: %d %s, want %d", req.method, req.path, res.status, truncateForLog(string(res.body), 500), c.ok)
			}
			if c.check != nil {
				c.check(t, f, res)
			}
		})
	}
}

// recordRun stores a finished reconciliation run of merchant over from..from, as the reconcile
// package writes one; the route only reads them.
func recordRun(t testing.TB, env *testenv.Env, merchant domain.MerchantID, from string) {
	t.Helper()
	if _, err := env.Pool.Exec(context.Background(), `
		INSERT INTO reconciliation_runs (merchant_id, from_date, to_date, apply, trigger, started_at, finished_at,
		                                 payments, toss_transactions, toss_settlements, counts, unresolved, applied)
		VALUES ($1, $2, $2, false, 'cli', now(), now(), 1, 1, 1, '{"matched":1}', 0, 0)`, merchant, from); err != nil {
		t.Fatal(err)
	}
}

// reportAroundToday is the daily report from yesterday to tomorrow in KST: today's payments
// whatever the hour.
func reportAroundToday() string {
	today := time.Now().In(domain.KST)
	return "/api/v1/reports/daily?from=" + today.AddDate(0, 0, -1).Format(time.DateOnly) + "&to=" + today.AddDate(0, 0, 1).Format(time.DateOnly)
}

// flip changes a base32 character into another, so the key keeps its shape.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}
