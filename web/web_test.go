package web_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/web"
)

// site is the back office mounted at "/" next to the real API, on testenv's services.
type site struct {
	env   *testenv.Env
	url   string
	clock *clock
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// apiPrefixes are the paths paymentd gives the API; everything else is the back office's.
var apiPrefixes = []string{"/api/", "/admin/", "/healthz", "/readyz"}

func newSite(t *testing.T, cfg web.Config) *site {
	t.Helper()
	env := testenv.New(t, testenv.Options{})
	s := &site{env: env, clock: &clock{now: time.Now()}}
	cfg.Keys, cfg.Payments, cfg.Ledger, cfg.Refunds, cfg.Reports, cfg.Exporter, cfg.Pool = env.Merchants, env.Queries, queries.NewLedger(env.Pool), env.Commands, env.Queries, env.Queries, env.Pool
	cfg.Logger = testenv.Logger(t)
	if cfg.Now == nil {
		cfg.Now = s.clock.Now
	}
	h := web.New(cfg)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range apiPrefixes {
			if strings.HasPrefix(r.URL.Path, p) {
				env.Server.ServeHTTP(w, r)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// client is a browser without JavaScript: a cookie jar, no redirects followed.
type client struct {
	t    *testing.T
	site *site
	http *http.Client
}

func (s *site) client(t *testing.T) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, site: s, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path string, form url.Values, header ...string) response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.site.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil)
}

// post sends a form as a page of this site would: with its Origin.
func (c *client) post(path string, form url.Values) response {
	c.t.Helper()
	return c.do(http.MethodPost, path, form, "Origin", c.site.url)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the page at path.
func (c *client) csrf(path string) string {
	c.t.Helper()
	res := c.get(path)
	m := csrfField.FindStringSubmatch(res.body)
	if m == nil {
		c.t.Fatalf("GET %s: %d, no csrf field in %s", path, res.status, res.body)
	}
	return m[1]
}

// signIn signs in with key and returns the answer to the form.
func (c *client) signIn(key string) response {
	c.t.Helper()
	return c.post("/signin", url.Values{"csrf": {c.csrf("/signin")}, "apiKey": {key}})
}

func (c *client) mustSignIn(key string) {
	c.t.Helper()
	if res := c.signIn(key); res.status != http.StatusSeeOther || res.header.Get("Location") != "/payments" {
		c.t.Fatalf("sign in: %d %s", res.status, res.body)
	}
}

func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.site.url)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// pay makes a settled payment of the test merchant with one line per amount (sellers
// seller-a, seller-b, …) and waits for the list to show it.
func (s *site) pay(t *testing.T, amounts ...int64) domain.OrderID {
	t.Helper()
	var lines []domain.CheckoutLine
	for i, a := range amounts {
		lines = append(lines, domain.CheckoutLine{SellerID: "seller-" + string(rune('a'+i)), ProductID: "product-" + string(rune('a'+i)),
			Amount: decimal.NewFromInt(a)})
	}
	co, _ := s.env.Pay(t, lines...)
	s.waitListed(t, co.OrderID, string(domain.StatusSuccess))
	return co.OrderID
}

// waitListed waits until the payments list shows the order with status.
func (s *site) waitListed(t *testing.T, id domain.OrderID, status string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "the list to show "+string(id)+" "+status, func() bool {
		page, err := s.env.Queries.ListPayments(context.Background(), testenv.Merchant, queries.ListQuery{Q: string(id), Limit: 1})
		return err == nil && len(page.Payments) == 1 && page.Payments[0].Status == status
	})
}

func TestSessionCookieAndStoredHash(t *testing.T) {
	s := newSite(t, web.Config{TrustForwardedProto: true})
	c := s.client(t)
	res := c.signIn(s.env.APIKey)
	if res.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", res.status, res.body)
	}
	var set *http.Cookie
	for _, ck := range (&http.Response{Header: res.header}).Cookies() {
		if ck.Name == "pl_session" {
			set = ck
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/" || set.Secure || len(set.Value) < 43 {
		t.Fatalf("session cookie over plain http: %+v", set)
	}
	// Only the token's SHA-256 is stored, with the key's id and scopes.
	sum := sha256.Sum256([]byte(set.Value))
	var merchant, keyID string
	var scopes []string
	var idle time.Duration
	err := s.env.Pool.QueryRow(context.Background(), `SELECT merchant_id, key_id, scopes, expires_at - created_at FROM web_sessions WHERE token_hash = $1`, sum[:]).
		Scan(&merchant, &keyID, &scopes, &idle)
	if err != nil || merchant != string(testenv.Merchant) || len(scopes) != len(domain.AllScopes) || idle != 24*time.Hour {
		t.Fatalf("stored session: %s %s %v %s %v", merchant, keyID, scopes, idle, err)
	}
	var leaked bool
	if err := s.env.Pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM web_sessions WHERE position($1::bytea in token_hash) > 0 OR key_id = $2)`,
		[]byte(set.Value), s.env.APIKey).Scan(&leaked); err != nil || leaked {
		t.Fatalf("the token or the key is stored: %v %v", leaked, err)
	}
	if res := c.get("/payments"); res.status != http.StatusOK || !strings.Contains(res.body, `id="merchant">merchant-test<`) {
		t.Fatalf("signed in: %d", res.status)
	} else if !strings.HasPrefix(res.header.Get("Server-Timing"), "app;dur=") || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", res.header)
	}

	// Behind a proxy that says https (TrustForwardedProto), the cookie is Secure and the origin
	// checked is https.
	tls := s.client(t)
	token := tls.csrf("/signin")
	res = tls.do(http.MethodPost, "/signin", url.Values{"csrf": {token}, "apiKey": {s.env.APIKey}},
		"X-Forwarded-Proto", "https", "Origin", strings.Replace(s.url, "http://", "https://", 1))
	if !strings.Contains(res.header.Get("Set-Cookie"), "Secure") || res.status != http.StatusSeeOther {
		t.Fatalf("over https: %d %v", res.status, res.header)
	}
}

func TestSessionsEndWhenIdleAndAtTheirMaximumAge(t *testing.T) {
	s := newSite(t, web.Config{IdleTimeout: time.Hour, MaxAge: 3 * time.Hour})
	c := s.client(t)
	c.mustSignIn(s.env.APIKey)
	// Active every 50 minutes: alive until the maximum age.
	for range 3 {
		s.clock.Add(50 * time.Minute)
		if res := c.get("/payments"); res.status != http.StatusOK {
			t.Fatalf("after %v of activity: %d", 50*time.Minute, res.status)
		}
	}
	s.clock.Add(40 * time.Minute) // 3h10 after sign-in, 40 min idle
	if res := c.get("/payments"); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin?next=%2Fpayments") {
		t.Fatalf("past the maximum age: %d %v", res.status, res.header.Get("Location"))
	}

	c.mustSignIn(s.env.APIKey)
	s.clock.Add(61 * time.Minute)
	if res := c.get("/payments"); res.status != http.StatusSeeOther {
		t.Fatalf("idle for 61 minutes: %d", res.status)
	}
}

func TestRevokingTheKeyEndsItsSessions(t *testing.T) {
	s := newSite(t, web.Config{})
	ctx := context.Background()
	k, err := s.env.Merchants.IssueKey(ctx, testenv.Merchant, nil, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.mustSignIn(k.APIKey)
	other := s.client(t)
	other.mustSignIn(s.env.APIKey)
	if _, err := s.env.Merchants.RevokeKey(ctx, testenv.Merchant, k.KeyID, merchants.ActorAdmin); err != nil {
		t.Fatal(err)
	}
	res := c.get("/payments")
	if res.status != http.StatusSeeOther || !strings.Contains(res.header.Get("Location"), "why=revoked") {
		t.Fatalf("after the revocation: %d %s", res.status, res.header.Get("Location"))
	}
	var n int
	if err := s.env.Pool.QueryRow(ctx, `SELECT count(*) FROM web_sessions WHERE key_id = $1`, k.KeyID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("sessions of the revoked key: %d %v", n, err)
	}
	if res := c.get("/signin?why=revoked"); !strings.Contains(res.body, "no longer works") {
		t.Fatalf("sign-in page after revocation: %s", res.body)
	}
	if res := other.get("/payments"); res.status != http.StatusOK {
		t.Fatalf("another key's session: %d", res.status)
	}
}

func TestWrongKeyIsRefusedAndLimited(t *testing.T) {
	s := newSite(t, web.Config{FailuresPerMinute: 3})
	c := s.client(t)
	for i := range 3 {
		res := c.signIn("sk_test_" + strings.Repeat("a", 68))
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, `id="signin-error"`) || c.cookie("pl_session") != "" {
			t.Fatalf("wrong key %d: %d %s", i, res.status, res.body)
		}
	}
	if res := c.signIn(s.env.APIKey); res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: %d", res.status)
	}
}

func TestPostsWithoutCSRFAreRefusedAndChangeNothing(t *testing.T) {
	s := newSite(t, web.Config{})
	id := s.pay(t, 10000)
	c := s.client(t)
	c.mustSignIn(s.env.APIKey)
	page := "/payments/" + string(id)
	token := c.csrf(page)
	refund := func(csrf string) url.Values {
		v := url.Values{"amount": {"1000"}, "reason": {"test"}, "idempotencyKey": {"web-test-" + csrf}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v
	}
	before := s.env.CountEvents(t)
	for name, res := range map[string]response{
		"no token":      c.post(page+"/refund", refund("")),
		"wrong token":   c.post(page+"/refund", refund(strings.Repeat("x", len(token)))),
		"other origin":  c.do(http.MethodPost, page+"/refund", refund(token), "Origin", "http://evil.example"),
		"no origin":     c.do(http.MethodPost, page+"/refund", refund(token)),
		"cross referer": c.do(http.MethodPost, page+"/refund", refund(token), "Referer", "http://evil.example/x"),
		"sign out":      c.post("/signout", url.Values{}),
	} {
		if res.status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.status)
		}
	}
	if after := s.env.CountEvents(t); after != before {
		t.Fatalf("refused posts appended %d events", after-before)
	}
	if res := c.get(page); res.status != http.StatusOK {
		t.Fatalf("still signed in: %d", res.status)
	}
	// Another session's token is no token for this one.
	other := s.client(t)
	other.mustSignIn(s.env.APIKey)
	if res := c.post(page+"/refund", refund(other.csrf(page))); res.status != http.StatusForbidden {
		t.Fatalf("another session's token: %d", res.status)
	}
	// The sign-in form's own token must match its cookie.
	fresh := s.client(t)
	fresh.csrf("/signin")
	if res := fresh.post("/signin", url.Values{"csrf": {"forged"}, "apiKey": {s.env.APIKey}}); res.status != http.StatusForbidden {
		t.Fatalf("sign-in with a forged token: %d", res.status)
	}
	// With the token and the origin, the refund goes through, once for a repeated form.
	for range 2 {
		if res := c.post(page+"/refund", refund(token)); res.status != http.StatusOK || !strings.Contains(res.body, "PARTIALLY_CANCELED") {
			t.Fatalf("refund with the token: %d %s", res.status, res.body)
		}
	}
	p, err := s.env.Queries.Payment(context.Background(), testenv.Merchant, string(id))
	if err != nil || !p.CanceledAmount.Equal(decimal.NewFromInt(1000)) {
		t.Fatalf("after the same form twice: %v %v", p.CanceledAmount, err)
	}
}

func TestAnotherMerchantsPaymentIsNotFound(t *testing.T) {
	s := newSite(t, web.Config{})
	s.env.NewMerchant(t, "merchant-other")
	co, err := s.env.Commands.Checkout(context.Background(), commandsCheckout("merchant-other"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.mustSignIn(s.env.APIKey)
	theirs := c.get("/payments/" + string(co.OrderID))
	missing := c.get("/payments/" + strings.Repeat("0", len(co.OrderID)))
	if theirs.status != http.StatusNotFound || missing.status != http.StatusNotFound {
		t.Fatalf("statuses %d %d", theirs.status, missing.status)
	}
	norm := func(s string) string {
		return regexp.MustCompile(`no payment with orderId \S+`).ReplaceAllString(s, "")
	}
	if norm(theirs.body) != norm(missing.body) {
		t.Fatalf("another merchant's order reads differently from a missing one:\n%s\n---\n%s", theirs.body, missing.body)
	}
}

func commandsCheckout(m domain.MerchantID) commands.CheckoutInput {
	return commands.CheckoutInput{Merchant: m, OrderName: "their order", BuyerID: "buyer-9",
		Lines: []domain.CheckoutLine{{SellerID: "seller-z", ProductID: "p", Amount: decimal.NewFromInt(5000)}}}
}

// The list pages by keyset links that keep the filters; invalid filters are a 400 with the
// problem; the export holds the whole filtered set, formulas quoted.
func TestListPagesFiltersAndExport(t *testing.T) {
	s := newSite(t, web.Config{})
	ctx := context.Background()
	var last domain.OrderID
	for i := range 51 {
		in := commandsCheckout(testenv.Merchant)
		in.OrderName = "=HYPERLINK(\"x\") " + string(rune('a'+i%26))
		co, err := s.env.Commands.Checkout(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		last = co.OrderID
	}
	s.waitListed(t, last, string(domain.StatusNotStarted))
	testenv.WaitFor(t, 10*time.Second, "51 payments listed", func() bool {
		page, err := s.env.Queries.ListPayments(ctx, testenv.Merchant, queries.ListQuery{Limit: 100})
		return err == nil && len(page.Payments) == 51
	})
	c := s.client(t)
	c.mustSignIn(s.env.APIKey)
	rows := regexp.MustCompile(`<tr>\s*<td><a href="/payments/`)
	first := c.get("/payments?status=NOT_STARTED&sellerId=seller-z")
	next := regexp.MustCompile(`href="(/payments\?[^"]*cursor=[^"]*)" id="next-page"`).FindStringSubmatch(first.body)
	if first.status != http.StatusOK || len(rows.FindAllString(first.body, -1)) != 50 || next == nil {
		t.Fatalf("first page: %d, %d rows, next %v", first.status, len(rows.FindAllString(first.body, -1)), next)
	}
	link := strings.ReplaceAll(next[1], "&amp;", "&")
	if !strings.Contains(link, "sellerId=seller-z") || !strings.Contains(link, "status=NOT_STARTED") {
		t.Fatalf("the next link drops the filters: %s", link)
	}
	second := c.get(link)
	if second.status != http.StatusOK || len(rows.FindAllString(second.body, -1)) != 1 || strings.Contains(second.body, `id="next-page"`) ||
		!strings.Contains(second.body, "First page") {
		t.Fatalf("second page: %d %s", second.status, second.body)
	}
	if res := c.get("/payments?minAmount=abc&status=NOPE"); res.status != http.StatusBadRequest ||
		!strings.Contains(res.body, "minAmount must be a whole number of won") || !strings.Contains(res.body, `value="abc"`) {
		t.Fatalf("invalid filters: %d %s", res.status, res.body)
	}
	csv := c.get("/payments/export.csv?sellerId=seller-z")
	lines := strings.Split(strings.TrimSpace(csv.body), "\n")
	if csv.status != http.StatusOK || len(lines) != 52 || !strings.HasPrefix(lines[0], "orderId,createdAt,status,orderName") ||
		!strings.Contains(lines[1], `'=HYPERLINK`) {
		t.Fatalf("export: %d, %d lines, %q", csv.status, len(lines), lines[:2])
	}
	if res := c.get("/payments/export.csv?sellerId=nobody"); strings.TrimSpace(res.body) != strings.Join(strings.Split(lines[0], ","), ",") {
		t.Fatalf("an empty export: %q", res.body)
	}
}

// A key without refunds:write sees no refund form and cannot post one; without ledger:read the
// ledger pages are refused and not offered.
func TestPagesFollowTheKeysScopes(t *testing.T) {
	s := newSite(t, web.Config{})
	id := s.pay(t, 10000)
	k, err := s.env.Merchants.IssueKey(context.Background(), testenv.Merchant, []domain.Scope{domain.ScopePaymentsRead}, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.mustSignIn(k.APIKey)
	page := "/payments/" + string(id)
	res := c.get(page)
	if res.status != http.StatusOK || strings.Contains(res.body, `id="refund-submit"`) || !strings.Contains(res.body, `id="no-refund-scope"`) ||
		strings.Contains(res.body, `href="/ledger"`) {
		t.Fatalf("payment page for payments:read: %d %s", res.status, res.body)
	}
	before := s.env.CountEvents(t)
	token := csrfField.FindStringSubmatch(res.body)[1]
	if res := c.post(page+"/refund", url.Values{"csrf": {token}, "amount": {"1000"}, "reason": {"x"}, "idempotencyKey": {"web-scope"}}); res.status != http.StatusForbidden {
		t.Fatalf("refund without refunds:write: %d", res.status)
	}
	if s.env.CountEvents(t) != before {
		t.Fatal("a refund without the scope appended events")
	}
	for _, p := range []string{"/ledger", "/wallets?sellerId=seller-a", "/reconciliation"} {
		if res := c.get(p); res.status != http.StatusForbidden || !strings.Contains(res.body, "ledger:read") {
			t.Errorf("%s without ledger:read: %d", p, res.status)
		}
	}
}

// TestWalletPageShowsTheNewestMovementsAndLinksToOlder: 52 movements of seller-a; the page
// shows the newest 50 with the totals, its "Older movements" link keeps sellerId and asOf and
// shows the last 2; a cursor of another seller is a 400 page.
func TestWalletPageShowsTheNewestMovementsAndLinksToOlder(t *testing.T) {
	s := newSite(t, web.Config{})
	ctx := context.Background()
	var lines []domain.CheckoutLine
	for i := range 26 {
		lines = append(lines, domain.CheckoutLine{SellerID: "seller-a", ProductID: fmt.Sprintf("product-%d", i), Amount: decimal.NewFromInt(100)})
	}
	s.env.Pay(t, lines...)
	s.env.Pay(t, append(lines[:0:0], lines...)...)
	ledger := queries.NewLedger(s.env.Pool)
	testenv.WaitFor(t, 10*time.Second, "52 movements of seller-a", func() bool {
		page, err := ledger.WalletMovements(ctx, testenv.Merchant, "seller-a", time.Now().Add(time.Minute), "", queries.MovementsQuery{Limit: 100})
		return err == nil && len(page.Movements) == 52
	})
	s.clock.Add(time.Minute)
	c := s.client(t)
	c.mustSignIn(s.env.APIKey)
	rows := regexp.MustCompile(`<tr><td>[^<]*</td><td><a href="/payments/`)
	older := regexp.MustCompile(`href="(/wallets\?[^"]*)" id="older-movements"`)
	for _, asOf := range []string{"", "&asOf=" + s.clock.Now().In(domain.KST).Format(time.DateOnly)} {
		first := c.get("/wallets?sellerId=seller-a" + asOf)
		next := older.FindStringSubmatch(first.body)
		if first.status != http.StatusOK || len(rows.FindAllString(first.body, -1)) != 50 || next == nil || !strings.Contains(first.body, "5,200원") {
			t.Fatalf("first page (%q): %d, %d rows, older %v", asOf, first.status, len(rows.FindAllString(first.body, -1)), next)
		}
		link := strings.ReplaceAll(next[1], "&amp;", "&")
		if !strings.Contains(link, "sellerId=seller-a") || !strings.Contains(link, "cursor=") || strings.Contains(link, "asOf=") != (asOf != "") {
			t.Fatalf("the older link (%q) drops the seller or asOf: %s", asOf, link)
		}
		second := c.get(link)
		if second.status != http.StatusOK || len(rows.FindAllString(second.body, -1)) != 2 || strings.Contains(second.body, `id="older-movements"`) ||
			!strings.Contains(second.body, `id="newest-movements"`) || !strings.Contains(second.body, "5,200원") {
			t.Fatalf("second page (%q): %d %s", asOf, second.status, second.body)
		}
		cursor, _ := url.ParseQuery(link[strings.Index(link, "?")+1:])
		if res := c.get("/wallets?sellerId=seller-b&cursor=" + url.QueryEscape(cursor.Get("cursor"))); res.status != http.StatusBadRequest || !strings.Contains(res.body, "is not one this API returned") {
			t.Fatalf("another seller's cursor: %d %s", res.status, res.body)
		}
	}
}

// Text no page takes (NUL, invalid UTF-8, control characters) in the address is a 400 page,
// never a database error's 500; a long seller id in a page's field is the page's 400 too.
func TestBadTextInTheAddressIs400(t *testing.T) {
	s := newSite(t, web.Config{})
	c := s.client(t)
	c.mustSignIn(s.env.APIKey)
	for _, path := range []string{"/wallets?sellerId=%00", "/wallets?sellerId=%ff", "/payments?q=a%01b", "/payments/%00",
		"/wallets?sellerId=" + strings.Repeat("x", 65), "/payments?sellerId=" + strings.Repeat("x", 65)} {
		if r := c.get(path); r.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", path, r.status)
		}
	}
	// Characters, not bytes: a Korean seller id of 30 characters (90 bytes) is a fine filter.
	korean := url.QueryEscape(strings.Repeat("판", 30))
	for _, path := range []string{"/wallets?sellerId=" + korean, "/payments?sellerId=" + korean} {
		if r := c.get(path); r.status != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, r.status)
		}
	}
}
