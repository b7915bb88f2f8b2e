package openapi_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	yaml "github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
)

// recorder keeps every answer of an Env's API (testenv.Options.Record).
type recorder struct {
	mu   sync.Mutex
	list []testenv.Recorded
}

func (r *recorder) add(rec testenv.Recorded) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
}

func (r *recorder) all() []testenv.Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// api sends requests to an Env as a merchant's backend would.
type api struct {
	t   *testing.T
	e   *testenv.Env
	key string
}

// do sends a request with the api's key and checks the status when want is not 0.
func (a api) do(want int, method, path, body string, header ...string) []byte {
	a.t.Helper()
	return a.as(a.key, want, method, path, body, header...)
}

func (a api) as(key string, want int, method, path, body string, header ...string) []byte {
	a.t.Helper()
	status, raw := testenv.Do(a.t, key, method, a.e.API.URL+path, body, header...)
	if want != 0 && status != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, status, raw, want)
	}
	return raw
}

func (a api) admin(want int, method, path, body string) []byte {
	a.t.Helper()
	return a.as("", want, method, path, body, "Authorization", "Bearer "+testenv.AdminToken)
}

func decode[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

type checkout struct {
	OrderID   string `json:"orderId"`
	OrderName string `json:"orderName"`
	Amount    string `json:"amount"`
}

func (a api) checkout(want int, body string, header ...string) checkout {
	a.t.Helper()
	return decode[checkout](a.t, a.do(want, http.MethodPost, "/api/v1/payments/checkout", body, header...))
}

// pay opens the buyer's session at the simulator for a checkout and returns its paymentKey.
func (a api) session(c checkout) string {
	a.t.Helper()
	key, err := a.e.Sim.CreateSession(c.OrderID, decimal.RequireFromString(c.Amount), c.OrderName)
	if err != nil {
		a.t.Fatal(err)
	}
	return key
}

func (a api) confirm(want int, c checkout, paymentKey string) {
	a.t.Helper()
	a.do(want, http.MethodPost, "/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":%q}`, paymentKey, c.OrderID, c.Amount))
}

const twoLines = `{"orderName":"Two books","buyerId":"buyer-1","lines":[
	{"sellerId":"seller-a","productId":"book-1","amount":"15000"},{"sellerId":"seller-b","productId":"book-2","amount":10000}]}`

// TestRecordedResponsesMatchDocument runs the API's flows against a real server (PostgreSQL,
// NATS, the Toss simulator) and validates every answer the server gave against the schema of
// its operation and status in openapi.yaml: a field the document lacks, a missing required
// one, a wrong format (times in KST, decimal strings) or an undocumented status fails.
func TestRecordedResponsesMatchDocument(t *testing.T) {
	rec := &recorder{}
	e := testenv.New(t, testenv.Options{Record: rec.add, Relay: true,
		Live: httpapi.LiveConfig{MaxStreamsPerKey: 1, Heartbeat: 50 * time.Millisecond}})
	a := api{t: t, e: e, key: e.APIKey}

	t.Run("operations", func(t *testing.T) {
		a := a
		a.t = t
		a.do(200, http.MethodGet, "/healthz", "")
		a.do(200, http.MethodGet, "/readyz", "")
		a.do(200, http.MethodGet, "/openapi.yaml", "")
		a.do(400, http.MethodGet, "/healthz?x=%01", "")
		a.do(404, http.MethodGet, "/api/v1/no-such-route", "")
	})

	// A payment through the simulator, a second one left NOT_STARTED.
	paid := a.checkout(201, twoLines, "Idempotency-Key", "order-1")
	a.checkout(201, twoLines, "Idempotency-Key", "order-1") // a replay
	open := a.checkout(201, `{"orderName":"One pen","buyerId":"buyer-2","lines":[{"sellerId":"seller-a","productId":"pen","amount":"3000"}]}`)
	paymentKey := a.session(paid)

	t.Run("live status", func(t *testing.T) {
		// A stream opened before the confirm sees the current state, then the confirm's events.
		stream := openStream(t, e, "/api/v1/payments/"+paid.OrderID+"/events", "")
		a.do(429, http.MethodGet, "/api/v1/payments/"+paid.OrderID+"/events", "") // one stream per key here
		a.confirm(200, paid, paymentKey)
		stream.readUntil(t, `"status":"SUCCESS"`)
		stream.close(t, rec)
		stream = openStream(t, e, "/api/v1/payments/"+paid.OrderID+"/events", "1") // resumed: no payment event
		stream.readUntil(t, "event: PaymentApproved")
		stream.close(t, rec)
		a.do(400, http.MethodGet, "/api/v1/payments/"+paid.OrderID+"/events?lastEventId=x", "")
		a.do(400, http.MethodGet, "/api/v1/payments/"+paid.OrderID+"/events", "", "Last-Event-ID", "99")
		a.do(404, http.MethodGet, "/api/v1/payments/no-such-order/events", "")
	})

	t.Run("payments", func(t *testing.T) {
		a := a
		a.t = t
		a.checkout(409, `{"orderName":"Other","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"1"}]}`, "Idempotency-Key", "order-1")
		a.checkout(400, `{"orderName":"x","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"1.5"}]}`)
		a.checkout(400, `{"orderName":`)
		a.checkout(400, `{"orderName":"x","extra":1}`)
		a.checkout(415, `{}`, "Content-Type", "text/plain")
		a.checkout(413, `{"orderName":"`+strings.Repeat("x", httpapi.MaxBodyBytes)+`"}`)
		a.as("", 401, http.MethodPost, "/api/v1/payments/checkout", twoLines)
		a.as("not-a-key", 401, http.MethodPost, "/api/v1/payments/checkout", twoLines)
		a.as("", 201, http.MethodPost, "/api/v1/payments/checkout", twoLines,
			"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(e.APIKey+":")))

		a.confirm(200, paid, paymentKey) // again: the same answer
		a.confirm(404, checkout{OrderID: "no-such-order", Amount: "1000"}, paymentKey)
		a.confirm(400, checkout{OrderID: open.OrderID, Amount: "1"}, "pk_1")
		a.confirm(409, paid, "tosss_another_key")
		a.do(400, http.MethodPost, "/api/v1/payments/confirm", `{"paymentKey":"k","orderId":"x","amount":"1"}`)

		a.do(200, http.MethodGet, "/api/v1/payments/"+paid.OrderID, "")
		a.do(200, http.MethodGet, "/api/v1/payments/"+open.OrderID, "")
		a.do(404, http.MethodGet, "/api/v1/payments/no-such-order", "")

		a.do(400, http.MethodPost, "/api/v1/payments/"+paid.OrderID+"/cancel", `{"reason":"no key"}`)
		a.do(400, http.MethodPost, "/api/v1/payments/"+paid.OrderID+"/cancel", `{"amount":"999999","reason":"too much"}`, "Idempotency-Key", "c-0")
		a.do(409, http.MethodPost, "/api/v1/payments/"+open.OrderID+"/cancel", `{"reason":"not paid"}`, "Idempotency-Key", "c-1")
		a.do(404, http.MethodPost, "/api/v1/payments/no-such-order/cancel", `{"reason":"x"}`, "Idempotency-Key", "c-2")
		a.do(200, http.MethodPost, "/api/v1/payments/"+paid.OrderID+"/cancel", `{"amount":"10000","reason":"one book back"}`, "Idempotency-Key", "c-3")
		a.do(200, http.MethodPost, "/api/v1/payments/"+paid.OrderID+"/cancel", `{"amount":"10000","reason":"one book back"}`, "Idempotency-Key", "c-3")
		a.do(200, http.MethodGet, "/api/v1/payments/"+paid.OrderID, "")

		// Lists follow a read model: wait for the cancel to show.
		testenv.WaitFor(t, 5*time.Second, "the cancel in the list", func() bool {
			status, raw := testenv.Do(t, e.APIKey, http.MethodGet, e.API.URL+"/api/v1/payments?type=cancel", "")
			return status == 200 && strings.Contains(string(raw), paid.OrderID)
		})
		day := time.Now().In(time.FixedZone("KST", 9*3600)).Format(time.DateOnly)
		page := decode[struct {
			NextCursor string `json:"nextCursor"`
		}](t, a.do(200, http.MethodGet, "/api/v1/payments?limit=1", ""))
		if page.NextCursor == "" {
			t.Fatal("a page of 1 of 3 payments has no nextCursor")
		}
		a.do(200, http.MethodGet, "/api/v1/payments?limit=1&cursor="+url.QueryEscape(page.NextCursor), "")
		for _, q := range []string{"status=PARTIALLY_CANCELED", "needsReview=true", "needsReview=false", "q=" + paid.OrderID[:8],
			"q=buyer-1", "q=books", "from=" + day + "&to=" + day, "from=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)),
			"type=payment", "sellerId=seller-b", "minAmount=20000&maxAmount=30000", "status=NOT_STARTED&limit=100"} {
			a.do(200, http.MethodGet, "/api/v1/payments?"+q, "")
		}
		for _, q := range []string{"cursor=", "limit=0", "limit=101", "status=PAID", "needsReview=maybe", "from=yesterday",
			"type=refund", "minAmount=-1", "minAmount=2&maxAmount=1", "cursor=bogus"} {
			a.do(400, http.MethodGet, "/api/v1/payments?"+q, "")
		}
		a.do(400, http.MethodGet, "/api/v1/payments?q=%00", "")
		a.do(200, http.MethodGet, "/api/v1/payments?format=csv&q=buyer-1", "")
		a.do(200, http.MethodGet, "/api/v1/payments", "", "Accept", "text/csv")
		a.do(400, http.MethodGet, "/api/v1/payments?format=xml", "")
		a.do(200, http.MethodGet, "/api/v1/reports/daily?from="+day+"&to="+day, "")
		a.do(200, http.MethodGet, "/api/v1/reports/daily?from=2026-11-01&to=2026-11-30", "")
		for _, q := range []string{"", "from=" + day, "from=2026-12-02&to=2026-12-01", "from=2025-01-01&to=2026-12-31", "from=x&to=y"} {
			a.do(400, http.MethodGet, "/api/v1/reports/daily?"+q, "")
		}
	})

	t.Run("ledger", func(t *testing.T) {
		a := a
		a.t = t
		var accounts struct {
			Accounts []struct {
				Account string `json:"account"`
			} `json:"accounts"`
		}
		testenv.WaitFor(t, 5*time.Second, "the ledger", func() bool {
			accounts = decode[struct {
				Accounts []struct {
					Account string `json:"account"`
				} `json:"accounts"`
			}](t, a.do(200, http.MethodGet, "/api/v1/ledger/accounts", ""))
			return len(accounts.Accounts) > 0
		})
		a.do(200, http.MethodGet, "/api/v1/ledger/accounts?asOf="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), "")
		a.do(400, http.MethodGet, "/api/v1/ledger/accounts?asOf=now", "")
		for _, acc := range accounts.Accounts {
			p := "/api/v1/ledger/accounts/" + url.PathEscape(acc.Account) + "/postings"
			page := decode[struct {
				NextCursor string `json:"nextCursor"`
			}](t, a.do(200, http.MethodGet, p+"?limit=1", ""))
			if page.NextCursor != "" {
				a.do(200, http.MethodGet, p+"?limit=1&cursor="+url.QueryEscape(page.NextCursor), "")
			}
		}
		a.do(400, http.MethodGet, "/api/v1/ledger/accounts/no-such-account/postings", "")
		a.do(400, http.MethodGet, "/api/v1/ledger/accounts/"+url.PathEscape(accounts.Accounts[0].Account)+"/postings?cursor=bogus", "")
		a.do(200, http.MethodGet, "/api/v1/ledger/trial-balance", "")
		a.do(200, http.MethodGet, "/api/v1/ledger/trial-balance?currency=KRW&asOf="+url.QueryEscape(time.Now().Format(time.RFC3339Nano)), "")
		a.do(400, http.MethodGet, "/api/v1/ledger/trial-balance?asOf=2026-13-01", "")
		for _, seller := range []string{"seller-a", "seller-b", "nobody"} {
			a.do(200, http.MethodGet, "/api/v1/wallets/"+seller, "")
			a.do(200, http.MethodGet, "/api/v1/wallets/"+seller+"/movements", "")
		}
		a.do(400, http.MethodGet, "/api/v1/wallets/seller-a?asOf=x", "")
		a.do(400, http.MethodGet, "/api/v1/wallets/seller-a/movements?asOf=x", "")
		// A page with a nextCursor, the page after it, and cursors and limits it refuses.
		mv := "/api/v1/wallets/seller-b/movements"
		// The ledger projection follows the log within moments: wait for seller-b's movements.
		testenv.WaitFor(t, 20*time.Second, "two movements of seller-b", func() bool {
			status, raw := testenv.Do(t, a.key, http.MethodGet, a.e.API.URL+mv+"?limit=2", "")
			var p struct {
				Movements []any `json:"movements"`
			}
			return status == http.StatusOK && json.Unmarshal(raw, &p) == nil && len(p.Movements) == 2
		})
		page := decode[struct {
			NextCursor string `json:"nextCursor"`
		}](t, a.do(200, http.MethodGet, mv+"?limit=1", ""))
		if page.NextCursor == "" {
			t.Fatalf("seller-b has one movement or none: no second page to check")
		}
		a.do(200, http.MethodGet, mv+"?limit=1&cursor="+url.QueryEscape(page.NextCursor), "")
		a.do(400, http.MethodGet, "/api/v1/wallets/seller-a/movements?cursor="+url.QueryEscape(page.NextCursor), "")
		for _, q := range []string{"cursor=bogus", "cursor=", "limit=0", "limit=501"} {
			a.do(400, http.MethodGet, mv+"?"+q, "")
		}
		a.do(200, http.MethodGet, "/api/v1/reconciliation/runs", "")
		a.do(200, http.MethodGet, "/api/v1/reconciliation/runs?limit=5", "")
		a.do(400, http.MethodGet, "/api/v1/reconciliation/runs?limit=x", "")
		a.do(400, http.MethodGet, "/api/v1/reconciliation/runs?cursor=bogus", "")
	})

	t.Run("admin", func(t *testing.T) {
		a := a
		a.t = t
		const m = "/admin/v1/merchants/shop-2"
		created := decode[struct {
			KeyID  string `json:"keyId"`
			APIKey string `json:"apiKey"`
		}](t, a.admin(201, http.MethodPost, "/admin/v1/merchants", `{"name":"Shop two","merchantId":"shop-2"}`))
		a.admin(201, http.MethodPost, "/admin/v1/merchants", `{"name":"Shop three","tossSecretKey":"test_sk_three"}`)
		a.admin(409, http.MethodPost, "/admin/v1/merchants", `{"name":"Again","merchantId":"shop-2"}`)
		a.admin(400, http.MethodPost, "/admin/v1/merchants", `{"name":"x","colour":"red"}`)
		a.as("", 415, http.MethodPost, "/admin/v1/merchants", `name=x`, "Authorization", "Bearer "+testenv.AdminToken,
			"Content-Type", "application/x-www-form-urlencoded")
		a.as("", 401, http.MethodGet, "/admin/v1/merchants", "")
		a.as("", 401, http.MethodGet, "/admin/v1/merchants", "", "Authorization", "Bearer wrong")
		testenv.WaitFor(t, 5*time.Second, "the merchants list", func() bool {
			return strings.Contains(string(a.admin(200, http.MethodGet, "/admin/v1/merchants", "")), "shop-2")
		})
		a.admin(200, http.MethodGet, m, "")
		a.admin(404, http.MethodGet, "/admin/v1/merchants/nobody", "")
		a.admin(200, http.MethodPut, m+"/toss-key", `{"tossSecretKey":"test_sk_shop2"}`)
		a.admin(200, http.MethodPut, m+"/commission", `{"rate":"0.1"}`)
		a.admin(400, http.MethodPut, m+"/commission", `{"rate":"10%"}`)
		a.admin(200, http.MethodPut, m+"/fee-rate", `{"rate":"0.0341","from":"2026-01-01"}`)
		a.admin(400, http.MethodPut, m+"/fee-rate", `{"rate":"0.0341","from":"soon"}`)
		a.admin(200, http.MethodGet, m, "")
		issued := decode[struct {
			KeyID string `json:"keyId"`
		}](t, a.admin(201, http.MethodPost, m+"/keys", `{"scopes":["payments:read"]}`))
		a.admin(201, http.MethodPost, m+"/keys", "")
		a.admin(400, http.MethodPost, m+"/keys", `{"scopes":["everything"]}`)
		a.admin(200, http.MethodGet, m+"/keys", "")
		a.admin(201, http.MethodPost, m+"/keys/"+created.KeyID+"/rotate", `{"gracePeriod":"1h"}`)
		a.admin(400, http.MethodPost, m+"/keys/"+issued.KeyID+"/rotate", `{"gracePeriod":"forever"}`)
		a.admin(200, http.MethodPost, m+"/keys/"+issued.KeyID+"/revoke", "")
		a.admin(200, http.MethodPost, m+"/keys/"+issued.KeyID+"/revoke", "") // already revoked: as it is
		a.admin(409, http.MethodPost, m+"/keys/"+issued.KeyID+"/rotate", "")
		a.admin(404, http.MethodPost, m+"/keys/no-such-key/revoke", "")
		a.admin(0, http.MethodGet, m+"/keys", "")
		a.admin(200, http.MethodGet, m, "")
		a.admin(200, http.MethodDelete, m+"/notifications", "") // none set: nothing to stop
		a.admin(404, http.MethodPost, m+"/notifications/rotate-secret", "")
		a.admin(200, http.MethodPut, m+"/notifications", `{"url":"https://shop.example/payments/events"}`)
		a.admin(200, http.MethodPut, m+"/notifications", `{"url":"https://shop.example/v2/events"}`)
		a.admin(400, http.MethodPut, m+"/notifications", `{"url":"ftp://shop.example"}`)
		a.admin(200, http.MethodPost, m+"/notifications/rotate-secret", `{"gracePeriod":"2h"}`)
		a.admin(200, http.MethodPost, m+"/notifications/rotate-secret", "")
		a.admin(200, http.MethodGet, m, "")
		a.admin(200, http.MethodDelete, m+"/notifications", "")

		// A key without a route's scope.
		readOnly := decode[struct {
			APIKey string `json:"apiKey"`
		}](t, a.admin(201, http.MethodPost, "/admin/v1/merchants/"+string(testenv.Merchant)+"/keys", `{"scopes":["payments:read"]}`))
		a.as(readOnly.APIKey, 403, http.MethodPost, "/api/v1/payments/checkout", twoLines)
		a.as(readOnly.APIKey, 403, http.MethodGet, "/api/v1/ledger/trial-balance", "")
		a.as(readOnly.APIKey, 403, http.MethodPost, "/api/v1/payments/"+paid.OrderID+"/cancel", `{"reason":"x"}`, "Idempotency-Key", "c-9")
		a.as(readOnly.APIKey, 200, http.MethodGet, "/api/v1/payments/"+paid.OrderID, "")
	})

	t.Run("webhooks", func(t *testing.T) {
		a := a
		a.t = t
		body := fmt.Sprintf(`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-11-21T12:00:00.000000","data":{"orderId":%q,"status":"DONE"}}`, paid.OrderID)
		hook := "/webhooks/toss/" + string(testenv.Merchant)
		a.as("", 200, http.MethodPost, hook, body, "tosspayments-webhook-transmission-id", "tx-1")
		a.as("", 200, http.MethodPost, hook, body, "tosspayments-webhook-transmission-id", "tx-1")
		a.as("", 400, http.MethodPost, hook, `[1,2]`)
		a.as("", 404, http.MethodPost, "/webhooks/toss/nobody", body)
	})

	t.Run("rate limits", func(t *testing.T) {
		// A second Env whose limits a test can reach.
		limited := testenv.New(t, testenv.Options{Record: rec.add, Auth: &httpapi.AuthConfig{
			AdminToken: testenv.AdminToken, KeyRate: 0.001, KeyBurst: 1, FailuresPerMinute: 1}})
		b := api{t: t, e: limited, key: limited.APIKey}
		b.do(200, http.MethodGet, "/api/v1/payments", "")
		b.do(429, http.MethodGet, "/api/v1/payments", "")
		b.do(429, http.MethodGet, "/api/v1/ledger/accounts", "")
		b.as("", 401, http.MethodGet, "/admin/v1/merchants", "", "Authorization", "Bearer wrong")
		b.as("", 429, http.MethodGet, "/admin/v1/merchants", "", "Authorization", "Bearer wrong")
		b.admin(429, http.MethodPost, "/admin/v1/merchants", `{"name":"x"}`)
	})

	checkRecorded(t, rec.all())
}

// stream is a live status stream as a client holds it.
type stream struct {
	resp  *http.Response
	lines *bufio.Scanner
	path  string
}

func openStream(t *testing.T, e *testenv.Env, path, lastEventID string) *stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.API.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.APIKey)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	return &stream{resp: resp, lines: bufio.NewScanner(resp.Body), path: path}
}

// readUntil reads the stream until a line holds text.
func (s *stream) readUntil(t *testing.T, text string) {
	t.Helper()
	done := make(chan bool, 1)
	go func() {
		for s.lines.Scan() {
			if strings.Contains(s.lines.Text(), text) {
				done <- true
				return
			}
		}
		done <- false
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatalf("%s ended before %q", s.path, text)
		}
	case <-time.After(30 * time.Second):
		s.resp.Body.Close()
		t.Fatalf("%s: no %q within 30s", s.path, text)
	}
}

// close hangs up and waits until the server's handler has returned, so that the stream's
// answer is recorded.
func (s *stream) close(t *testing.T, rec *recorder) {
	t.Helper()
	streams := func() int {
		n := 0
		for _, r := range rec.all() {
			if r.Route == "/api/v1/payments/{orderId}/events" && r.Status == http.StatusOK {
				n++
			}
		}
		return n
	}
	before := streams()
	s.resp.Body.Close()
	testenv.WaitFor(t, 5*time.Second, "the stream's end", func() bool { return streams() > before })
}

// checkRecorded validates every recorded answer against the document and reports the count
// per operation and status.
func checkRecorded(t *testing.T, recs []testenv.Recorded) {
	t.Helper()
	doc := model(t)
	v := newValidator(t)
	opts := config.NewValidationOptions(config.WithFormatAssertions())
	schemas := schema_validation.NewSchemaValidator(config.WithFormatAssertions())
	counts := map[string]map[int]int{}
	succeeded := map[operation]bool{}
	for _, r := range recs {
		req, err := http.NewRequest(r.Method, "http://api.test"+r.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("%s %s → %d", r.Method, r.URL, r.Status)
		if r.Route == "" && r.Status == http.StatusNotFound {
			// No route matched: the router's own answer, the common error shape.
			checkSchema(t, schemas, what, "Error", r.Body)
			count(counts, "(no route)", r.Status)
			continue
		}
		_, errs, found := paths.FindPath(req, doc, opts)
		if len(errs) > 0 {
			t.Errorf("%s: %s", what, errs[0].Message)
			continue
		}
		op := operation{r.Method, found}
		if want := documentedPath(r); want != "" && want != found {
			t.Errorf("%s: served by route %s, matched to the document's %s", what, want, found)
		}
		resp := &http.Response{StatusCode: r.Status, Header: r.Header, Body: io.NopCloser(bytes.NewReader(r.Body)), Request: req}
		if ok, verrs := v.ValidateHttpResponse(req, resp); !ok {
			for _, e := range verrs {
				t.Errorf("%s: %s: %s\n\t%s", what, e.Message, e.Reason, r.Body)
				for _, f := range e.SchemaValidationErrors {
					t.Errorf("\t%s at %s", f.Reason, f.FieldPath)
				}
			}
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
			checkEvents(t, schemas, what, doc.Paths.PathItems.GetOrZero(found).Get.Responses.Codes.GetOrZero("200").
				Content.GetOrZero("text/event-stream").Extensions.GetOrZero("x-sse-data").Content, r.Body)
		}
		count(counts, op.String(), r.Status)
		if r.Status < 300 {
			succeeded[op] = true
		}
	}
	for o, op := range documented(t) {
		if !succeeded[o] && extension(op, "x-pending-route") != "true" {
			t.Errorf("%s: no successful answer was recorded; add it to the flows", o)
		}
	}
	var report []string
	for op, byStatus := range counts {
		var parts []string
		for status, n := range byStatus {
			parts = append(parts, fmt.Sprintf("%d×%d", status, n))
		}
		slices.Sort(parts)
		report = append(report, op+": "+strings.Join(parts, " "))
	}
	slices.Sort(report)
	t.Logf("%d answers validated:\n%s", len(recs), strings.Join(report, "\n"))
}

func count(counts map[string]map[int]int, op string, status int) {
	if counts[op] == nil {
		counts[op] = map[int]int{}
	}
	counts[op][status]++
}

// documentedPath is the document's path of the route that served r: its mux template, or the
// path of a mount's operation.
func documentedPath(r testenv.Recorded) string {
	for _, o := range mounts[r.Route] {
		if o.method == r.Method {
			return o.path
		}
	}
	return r.Route
}

// checkSchema validates a JSON body against a component schema.
func checkSchema(t *testing.T, v schema_validation.SchemaValidator, what, name string, body []byte) {
	t.Helper()
	proxy := model(t).Components.Schemas.GetOrZero(name)
	if proxy == nil {
		t.Fatalf("no component schema %s", name)
	}
	if ok, errs := v.ValidateSchemaBytes(proxy.Schema(), body); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s: %s: %s\n\t%s", what, name, e.Message, e.Reason, body)
			for _, f := range e.SchemaValidationErrors {
				t.Errorf("\t%s at %s", f.Reason, f.FieldPath)
			}
		}
	}
}

// checkEvents validates the data of each event of a recorded stream against the schema its
// operation's x-sse-data names for the event (default: for any other event). dataSchemas is
// the extension's mapping node: name, schema, name, schema…
func checkEvents(t *testing.T, v schema_validation.SchemaValidator, what string, dataSchemas []*yaml.Node, body []byte) {
	t.Helper()
	names := map[string]string{}
	for i := 0; i+1 < len(dataSchemas); i += 2 {
		names[dataSchemas[i].Value] = dataSchemas[i+1].Value
	}
	if names["default"] == "" {
		t.Fatalf("%s: x-sse-data names no default schema", what)
	}
	events := 0
	for frame := range strings.SplitSeq(string(body), "\n\n") {
		var event, data string
		for line := range strings.SplitSeq(frame, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
		if data == "" {
			continue // retry: or a ping
		}
		name := names[event]
		if name == "" {
			name = names["default"]
		}
		checkSchema(t, v, what+" event "+event, name, []byte(data))
		events++
	}
	if events == 0 {
		t.Errorf("%s: a stream without events", what)
	}
}
