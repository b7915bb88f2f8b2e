package toss

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testKey is the public sample secret key of Toss's docs.
const testKey = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"

// recorded is one request as the fake server saw it.
type recorded struct {
	method, escapedPath, rawQuery string
	header                        http.Header
	body                          []byte
}

// fakeToss answers every request with status and body and records the requests.
type fakeToss struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFakeToss(t *testing.T, status int, body []byte) *fakeToss {
	t.Helper()
	f := &fakeToss{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeToss) only(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(f.reqs))
	}
	return f.reqs[0]
}

func (f *fakeToss) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func newClient(t *testing.T, baseURL string, opts ...Option) *Client {
	t.Helper()
	c, err := New(baseURL, testKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthorizationHeader(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
	if _, err := newClient(t, f.URL).GetPayment(context.Background(), "pk"); err != nil {
		t.Fatal(err)
	}
	// base64("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R:"), computed outside Go.
	const want = "Basic dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg=="
	if got := f.only(t).header.Get("Authorization"); got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
}

func TestConfirmRequestOnTheWire(t *testing.T) {
	for _, tc := range []struct{ amount, wantJSON string }{
		{"15000", `15000`},
		{"726.24", `726.24`},
	} {
		t.Run(tc.amount, func(t *testing.T) {
			f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
			p, err := newClient(t, f.URL).Confirm(context.Background(),
				ConfirmRequest{PaymentKey: "pk_1", OrderID: "order-0001", Amount: dec(tc.amount)}, "order-0001-confirm")
			if err != nil {
				t.Fatal(err)
			}
			wantEq(t, "decoded status", p.Status, StatusDone)
			r := f.only(t)
			wantEq(t, "method", r.method, http.MethodPost)
			wantEq(t, "path", r.escapedPath, "/v1/payments/confirm")
			wantEq(t, "Content-Type", r.header.Get("Content-Type"), "application/json")
			wantEq(t, "Idempotency-Key", r.header.Get("Idempotency-Key"), "order-0001-confirm")
			var body map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			wantEq(t, "amount raw JSON", string(body["amount"]), tc.wantJSON)
			wantEq(t, "paymentKey", string(body["paymentKey"]), `"pk_1"`)
			wantEq(t, "orderId", string(body["orderId"]), `"order-0001"`)
			wantEq(t, "number of fields", len(body), 3)
			if !strings.Contains(string(r.body), `"amount":`+tc.wantJSON) {
				t.Errorf("body %s does not carry amount as a bare number", r.body)
			}
		})
	}
}

func TestConfirmWithoutIdempotencyKeySendsNoHeader(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
	if _, err := newClient(t, f.URL).Confirm(context.Background(), ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1")}, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.only(t).header["Idempotency-Key"]; ok {
		t.Error("Idempotency-Key sent although the key is empty")
	}
}

func TestGetPaymentPathsAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		call     func(c *Client) (*Payment, error)
		wantPath string
	}{
		{"by key", func(c *Client) (*Payment, error) { return c.GetPayment(context.Background(), "a/b c?d%e#f") },
			"/v1/payments/a%2Fb%20c%3Fd%25e%23f"},
		{"by order id", func(c *Client) (*Payment, error) { return c.GetPaymentByOrderID(context.Background(), "order/1?x") },
			"/v1/payments/orders/order%2F1%3Fx"},
		{"by plain key", func(c *Client) (*Payment, error) {
			return c.GetPayment(context.Background(), "tviva20231208004903pIlD7")
		},
			"/v1/payments/tviva20231208004903pIlD7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeToss(t, 200, readSample(t, "payment-done-virtual-account-waiting.json"))
			p, err := tc.call(newClient(t, f.URL))
			if err != nil {
				t.Fatal(err)
			}
			wantEq(t, "decoded secret", p.Secret, "ps_eqRGgYO1r57E4Z541ZMW3QnN2Eya")
			r := f.only(t)
			wantEq(t, "method", r.method, http.MethodGet)
			wantEq(t, "path", r.escapedPath, tc.wantPath)
			wantEq(t, "query", r.rawQuery, "")
			if _, ok := r.header["Idempotency-Key"]; ok {
				t.Error("Idempotency-Key sent on a GET")
			}
			if _, ok := r.header["Content-Type"]; ok {
				t.Error("Content-Type sent on a GET")
			}
		})
	}
}

func TestCancelRequestOnTheWire(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		f := newFakeToss(t, 200, readSample(t, "payment-canceled-full.json"))
		p, err := newClient(t, f.URL).Cancel(context.Background(), "pk/1", CancelRequest{CancelReason: "구매자가 취소를 원함"}, "cancel-1")
		if err != nil {
			t.Fatal(err)
		}
		wantEq(t, "decoded status", p.Status, StatusCanceled)
		r := f.only(t)
		wantEq(t, "method", r.method, http.MethodPost)
		wantEq(t, "path", r.escapedPath, "/v1/payments/pk%2F1/cancel")
		wantEq(t, "Idempotency-Key", r.header.Get("Idempotency-Key"), "cancel-1")
		wantEq(t, "Content-Type", r.header.Get("Content-Type"), "application/json")
		wantEq(t, "body", string(r.body), `{"cancelReason":"구매자가 취소를 원함"}`)
	})
	t.Run("partial to a refund account", func(t *testing.T) {
		f := newFakeToss(t, 200, readSample(t, "payment-canceled-virtual-account-docs.json"))
		_, err := newClient(t, f.URL).Cancel(context.Background(), "pk", CancelRequest{
			CancelReason:         "과오납부",
			CancelAmount:         ptr(dec("1000")),
			TaxFreeAmount:        ptr(dec("0")),
			RefundReceiveAccount: &RefundReceiveAccount{Bank: "88", AccountNumber: "11012345678", HolderName: "홍길동"},
		}, "cancel-2")
		if err != nil {
			t.Fatal(err)
		}
		r := f.only(t)
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		wantEq(t, "cancelAmount", string(body["cancelAmount"]), `1000`)
		wantEq(t, "taxFreeAmount", string(body["taxFreeAmount"]), `0`)
		wantEq(t, "refundReceiveAccount", string(body["refundReceiveAccount"]),
			`{"bank":"88","accountNumber":"11012345678","holderName":"홍길동"}`)
		if _, ok := body["currency"]; ok {
			t.Error("empty currency was sent")
		}
	})
	t.Run("paypal partial", func(t *testing.T) {
		f := newFakeToss(t, 200, readSample(t, "payment-partial-canceled-paypal.json"))
		p, err := newClient(t, f.URL).Cancel(context.Background(), "pk", CancelRequest{CancelReason: "x", CancelAmount: ptr(dec("181.56")), Currency: "USD"}, "cancel-3")
		if err != nil {
			t.Fatal(err)
		}
		wantDec(t, "decoded balance", p.BalanceAmount, "544.68")
		wantEq(t, "body", string(f.only(t).body), `{"cancelReason":"x","cancelAmount":181.56,"currency":"USD"}`)
	})
}

func TestListTransactionsQuery(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "transactions-list.json"))
	rows, err := newClient(t, f.URL).ListTransactions(context.Background(), TransactionsQuery{
		StartDate:     time.Date(2021, 12, 31, 15, 0, 0, 0, time.UTC), // 2022-01-01 00:00 in Korea
		EndDate:       time.Date(2022, 1, 1, 23, 59, 59, 999_000_000, kst),
		StartingAfter: "txrd_a+b/c&d=e",
		Limit:         500,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "rows", len(rows), 3)
	r := f.only(t)
	wantEq(t, "method", r.method, http.MethodGet)
	wantEq(t, "path", r.escapedPath, "/v1/transactions")
	wantEq(t, "query", r.rawQuery,
		"endDate=2022-01-01T23%3A59%3A59.999&limit=500&startDate=2022-01-01T00%3A00%3A00&startingAfter=txrd_a%2Bb%2Fc%26d%3De")
	if _, ok := r.header["Idempotency-Key"]; ok {
		t.Error("Idempotency-Key sent on a GET")
	}
}

func TestListTransactionsOmitsZeroOptions(t *testing.T) {
	f := newFakeToss(t, 200, []byte(`[]`))
	rows, err := newClient(t, f.URL).ListTransactions(context.Background(), TransactionsQuery{
		StartDate: time.Date(2022, 1, 1, 0, 0, 0, 0, kst),
		EndDate:   time.Date(2022, 1, 2, 0, 0, 0, 0, kst),
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "rows", len(rows), 0)
	wantEq(t, "query", f.only(t).rawQuery, "endDate=2022-01-02T00%3A00%3A00&startDate=2022-01-01T00%3A00%3A00")
}

func TestListSettlementsQuery(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "settlements-list-fee-and-fees.json"))
	c := newClient(t, f.URL)
	rows, err := c.ListSettlements(context.Background(), SettlementsQuery{StartDate: "2025-02-01", EndDate: "2025-02-28", DateType: "paidOutDate", Page: 2, Size: 5000})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "rows", len(rows), 1)
	wantDec(t, "fee", rows[0].Fee, "1492")
	r := f.only(t)
	wantEq(t, "path", r.escapedPath, "/v1/settlements")
	wantEq(t, "query", r.rawQuery, "dateType=paidOutDate&endDate=2025-02-28&page=2&size=5000&startDate=2025-02-01")
}

func TestNonJSONErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{502, "<html><body>502 Bad Gateway</body></html>"},
		{404, "404 page not found"},
		{401, ""},
		{400, `{"unexpected":"shape"}`},
		{503, strings.Repeat("정", 300)}, // a long body is cut at a character boundary
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			f := newFakeToss(t, tc.status, []byte(tc.body))
			_, err := newClient(t, f.URL).GetPayment(context.Background(), "pk")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			wantEq(t, "HTTPStatus", e.HTTPStatus, tc.status)
			wantEq(t, "Code", e.Code, "")
			wantEq(t, "Class", e.Class, ClassUnknownOutcome)
			wantEq(t, "IsNotFound", IsNotFound(err), false)
			if e.Err == nil {
				t.Error("Err is nil; want the reason the body was not understood")
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
				t.Errorf("Error() = %q lacks the status", err)
			}
		})
	}
}

func TestAPIErrorWithData(t *testing.T) {
	f := newFakeToss(t, 429, []byte(`{"code":"TOO_MANY_REQUESTS","message":"slow down","data":{"retryAfter":1}}`))
	_, err := newClient(t, f.URL).ListSettlements(context.Background(), SettlementsQuery{StartDate: "2025-01-01", EndDate: "2025-01-01"})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	wantEq(t, "Op", e.Op, "list settlements")
	wantEq(t, "Code", e.Code, "TOO_MANY_REQUESTS")
	wantEq(t, "Message", e.Message, "slow down")
	wantEq(t, "Class", e.Class, ClassUnknownOutcome)
}

func TestUnreadableSuccessBodyIsUnknownOutcome(t *testing.T) {
	f := newFakeToss(t, 200, []byte(`{"status":"DONE","totalAmount":`))
	_, err := newClient(t, f.URL).Confirm(context.Background(), ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1000")}, "k")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	wantEq(t, "HTTPStatus", e.HTTPStatus, 200)
	wantEq(t, "Class", e.Class, ClassUnknownOutcome)
	var syntax *json.SyntaxError
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &syntax) {
		t.Errorf("Err = %v, want the JSON error", e.Err)
	}
}

// hangingToss never answers until the test ends; if the call outlives the timeout under test it
// gets a valid 200 after 10 s, which the assertions below reject.
func hangingToss(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	late := readSample(t, "payment-done-card.json")
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(10 * time.Second):
			w.Write(late)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv, &hits
}

func assertDeadline(t *testing.T, err error, wantOp string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	wantEq(t, "Op", e.Op, wantOp)
	wantEq(t, "HTTPStatus", e.HTTPStatus, 0)
	wantEq(t, "Class", e.Class, ClassUnknownOutcome)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestPaymentTimeout(t *testing.T) {
	srv, hits := hangingToss(t)
	c := newClient(t, srv.URL, WithTimeouts(50*time.Millisecond, time.Hour))
	_, err := c.Confirm(context.Background(), ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1000")}, "k")
	assertDeadline(t, err, "confirm")
	wantEq(t, "requests (no retry)", hits.Load(), int32(1))
	_, err = c.GetPayment(context.Background(), "pk")
	assertDeadline(t, err, "get payment")
}

func TestLookupTimeout(t *testing.T) {
	srv, _ := hangingToss(t)
	c := newClient(t, srv.URL, WithTimeouts(time.Hour, 50*time.Millisecond))
	_, err := c.ListSettlements(context.Background(), SettlementsQuery{StartDate: "2025-01-01", EndDate: "2025-01-31"})
	assertDeadline(t, err, "list settlements")
	_, err = c.ListTransactions(context.Background(), TransactionsQuery{StartDate: time.Now().Add(-time.Hour), EndDate: time.Now()})
	assertDeadline(t, err, "list transactions")
}

func TestCallerContextShortensDeadline(t *testing.T) {
	srv, _ := hangingToss(t)
	c := newClient(t, srv.URL) // defaults: 30 s and 65 s
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Cancel(ctx, "pk", CancelRequest{CancelReason: "x"}, "k")
	assertDeadline(t, err, "cancel")
}

func TestTransportErrorIsUnknownOutcome(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	_, err := newClient(t, url).Confirm(context.Background(), ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1000")}, "k")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	wantEq(t, "HTTPStatus", e.HTTPStatus, 0)
	wantEq(t, "Class", e.Class, ClassUnknownOutcome)
	if e.Err == nil {
		t.Error("Err is nil; want the transport error")
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	_, err := newClient(t, srv.URL).Confirm(context.Background(), ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1000")}, "k")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	wantEq(t, "HTTPStatus", e.HTTPStatus, http.StatusFound)
	wantEq(t, "Class", e.Class, ClassUnknownOutcome)
}

func TestIdempotencyKeyLength(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
	c := newClient(t, f.URL)
	req := ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1000")}

	_, err := c.Confirm(context.Background(), req, strings.Repeat("k", 301))
	wantEq(t, "class of a 301-character key", ClassOf(err), ClassMerchantConfig)
	wantEq(t, "errors.Is ErrInvalidArgument", errors.Is(err, ErrInvalidArgument), true)
	_, err = c.Cancel(context.Background(), "pk", CancelRequest{CancelReason: "x"}, strings.Repeat("가", 301))
	wantEq(t, "class of a 301-character Korean key", ClassOf(err), ClassMerchantConfig)
	wantEq(t, "requests sent for refused keys", f.count(), 0)

	if _, err := c.Confirm(context.Background(), req, strings.Repeat("k", 300)); err != nil {
		t.Fatalf("300-character key refused: %v", err)
	}
	wantEq(t, "300-character key sent", len(f.only(t).header.Get("Idempotency-Key")), 300)
}

func TestInvalidArgumentsSendNothing(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
	c := newClient(t, f.URL)
	ctx := context.Background()
	now := time.Now()
	for name, call := range map[string]func() error{
		"confirm empty paymentKey": func() error {
			_, err := c.Confirm(ctx, ConfirmRequest{OrderID: "order-1", Amount: dec("1")}, "")
			return err
		},
		"confirm empty orderId": func() error {
			_, err := c.Confirm(ctx, ConfirmRequest{PaymentKey: "pk", Amount: dec("1")}, "")
			return err
		},
		"confirm zero amount": func() error {
			_, err := c.Confirm(ctx, ConfirmRequest{PaymentKey: "pk", OrderID: "order-1"}, "")
			return err
		},
		"confirm key with newline": func() error {
			_, err := c.Confirm(ctx, ConfirmRequest{PaymentKey: "pk", OrderID: "order-1", Amount: dec("1")}, "a\nb")
			return err
		},
		"get payment empty key":      func() error { _, err := c.GetPayment(ctx, ""); return err },
		"get payment dot-dot":        func() error { _, err := c.GetPayment(ctx, ".."); return err },
		"get payment by empty order": func() error { _, err := c.GetPaymentByOrderID(ctx, ""); return err },
		"cancel empty reason":        func() error { _, err := c.Cancel(ctx, "pk", CancelRequest{}, ""); return err },
		"cancel negative amount": func() error {
			_, err := c.Cancel(ctx, "pk", CancelRequest{CancelReason: "x", CancelAmount: ptr(dec("-1"))}, "")
			return err
		},
		"cancel negative tax free": func() error {
			_, err := c.Cancel(ctx, "pk", CancelRequest{CancelReason: "x", TaxFreeAmount: ptr(dec("-1"))}, "")
			return err
		},
		"transactions no dates": func() error { _, err := c.ListTransactions(ctx, TransactionsQuery{}); return err },
		"transactions end before start": func() error {
			_, err := c.ListTransactions(ctx, TransactionsQuery{StartDate: now, EndDate: now.Add(-time.Second)})
			return err
		},
		"transactions negative limit": func() error {
			_, err := c.ListTransactions(ctx, TransactionsQuery{StartDate: now, EndDate: now, Limit: -1})
			return err
		},
		"settlements date-time": func() error {
			_, err := c.ListSettlements(ctx, SettlementsQuery{StartDate: "2025-01-01T00:00:00", EndDate: "2025-01-02"})
			return err
		},
		"settlements bad dateType": func() error {
			_, err := c.ListSettlements(ctx, SettlementsQuery{StartDate: "2025-01-01", EndDate: "2025-01-02", DateType: "approvedDate"})
			return err
		},
		"settlements end before start": func() error {
			_, err := c.ListSettlements(ctx, SettlementsQuery{StartDate: "2025-01-02", EndDate: "2025-01-01"})
			return err
		},
	} {
		err := call()
		if ClassOf(err) != ClassMerchantConfig || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want an invalid argument of class merchant config", name, err)
		}
	}
	wantEq(t, "requests sent", f.count(), 0)
}

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct{ name, baseURL, key string }{
		{"relative URL", "api.tosspayments.com", testKey},
		{"ftp scheme", "ftp://api.tosspayments.com", testKey},
		{"no host", "https://", testKey},
		{"credentials in URL", "https://user:pw@api.tosspayments.com", testKey},
		{"query in URL", "https://api.tosspayments.com?x=1", testKey},
		{"empty key", DefaultBaseURL, ""},
		{"key with trailing newline", DefaultBaseURL, testKey + "\n"},
		{"key with BOM", DefaultBaseURL, "\uFEFF" + testKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.baseURL, tc.key)
			if err == nil {
				t.Fatalf("New accepted it: %v", c)
			}
			wantEq(t, "class", ClassOf(err), ClassMerchantConfig)
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
	for _, base := range []string{DefaultBaseURL, DefaultBaseURL + "/", "http://127.0.0.1:8080/toss/"} {
		if _, err := New(base, testKey); err != nil {
			t.Errorf("New(%q) = %v", base, err)
		}
	}
}

func TestBaseURLPathPrefix(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
	if _, err := newClient(t, f.URL+"/toss/").GetPayment(context.Background(), "pk"); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "path", f.only(t).escapedPath, "/toss/v1/payments/pk")
}

// TestSecretNeverShown checks error texts and the printed client for the key and its base64.
func TestSecretNeverShown(t *testing.T) {
	encoded := base64.StdEncoding.EncodeToString([]byte(testKey + ":"))
	f := newFakeToss(t, 401, readSample(t, "error-unauthorized-key.json"))
	c := newClient(t, f.URL)
	_, apiErr := c.GetPayment(context.Background(), "pk")

	srv := httptest.NewServer(http.NotFoundHandler())
	down := srv.URL
	srv.Close()
	_, transportErr := newClient(t, down).GetPayment(context.Background(), "pk")

	for _, s := range []string{
		apiErr.Error(), fmt.Sprintf("%+v", apiErr), transportErr.Error(), fmt.Sprintf("%#v", transportErr),
		fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", *c),
	} {
		if strings.Contains(s, testKey) || strings.Contains(s, encoded) {
			t.Errorf("secret visible in %q", s)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	f := newFakeToss(t, 200, readSample(t, "payment-done-card.json"))
	c := newClient(t, f.URL)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := c.GetPayment(context.Background(), fmt.Sprintf("pk-%d", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	wantEq(t, "requests", f.count(), 8)
}

// A NUL in what Toss sends never reaches the caller (PostgreSQL refuses it in text), an escaped
// backslash before "u0000" is text, not a NUL, and an error's code and message are bounded.
func TestResponsesCarryNoNUL(t *testing.T) {
	f := newFakeToss(t, 200, []byte(`{"paymentKey":"pk\u0000","orderId":"order-1","status":"DONE","method":"카드\u0000","totalAmount":1000,"balanceAmount":1000,"lastTransactionKey":"a\\u0000b"}`))
	p, err := newClient(t, f.URL).GetPaymentByOrderID(context.Background(), "order-1")
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "PaymentKey", p.PaymentKey, "pk\uFFFD")
	wantEq(t, "Method", p.Method, "카드\uFFFD")
	wantEq(t, "LastTransactionKey", p.LastTransactionKey, `a\u0000b`)

	long := strings.Repeat("가", maxMessageRunes+10)
	f = newFakeToss(t, 400, []byte(`{"code":"REJECT\u0000CARD","message":"`+long+`"}`))
	_, err = newClient(t, f.URL).GetPaymentByOrderID(context.Background(), "order-1")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	wantEq(t, "Code", e.Code, "REJECT\uFFFDCARD")
	wantEq(t, "Message", e.Message, long[:len("가")*maxMessageRunes])
}
