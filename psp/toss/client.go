package toss

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// DefaultBaseURL serves both test and live; the secret key decides which one a call hits.
const DefaultBaseURL = "https://api.tosspayments.com"

const (
	defaultPaymentTimeout = 30 * time.Second
	// Toss documents that the transactions and settlements lookups can take up to 60 s.
	defaultLookupTimeout = 65 * time.Second

	// maxIdempotencyKeyLen is Toss's limit; a longer key is answered 400 INVALID_IDEMPOTENCY_KEY.
	maxIdempotencyKeyLen = 300

	// maxResponseBytes bounds a response body. A settlements page of 5000 rows is a few MB.
	maxResponseBytes = 64 << 20
)

// Client calls the Toss Payments core API with one secret key. It is safe for concurrent use.
type Client struct {
	baseURL        string // no trailing slash
	cred           *credential
	http           *http.Client
	paymentTimeout time.Duration
	lookupTimeout  time.Duration
	observe        func(CallInfo) // nil: nobody watches
}

// credential sits behind a pointer so that printing a Client (%v, %+v) shows an address and
// never the Authorization value, which is the secret key in base64.
type credential struct {
	authorization string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the default HTTP client (which has connect and TLS timeouts, refuses
// redirects and needs TLS 1.2). The client is used as is; a nil h keeps the default. Per-call
// deadlines come from WithTimeouts either way, so h needs no overall Timeout.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// WithTimeouts sets the deadline of each call: payment for Confirm, Cancel, GetPayment and
// GetPaymentByOrderID (default 30 s), lookup for ListTransactions and ListSettlements (default
// 65 s). A value <= 0 keeps the default. The caller's context can only shorten them.
func WithTimeouts(payment, lookup time.Duration) Option {
	return func(c *Client) {
		if payment > 0 {
			c.paymentTimeout = payment
		}
		if lookup > 0 {
			c.lookupTimeout = lookup
		}
	}
}

// CallInfo describes one HTTP call to Toss, for an observer (WithObserver). It carries nothing
// of the request, so never the secret key; Err is the same error the caller gets.
type CallInfo struct {
	Op string // as in Error.Op: "confirm", "cancel", "get payment", ...
	// Duration runs from sending the request to the answer read and decoded, or to the failure.
	Duration time.Duration
	// HTTPStatus is the answer's status, 0 when no answer arrived.
	HTTPStatus int
	// Err is nil on success, else the *Error the method returns (classify it with ClassOf).
	Err error
}

// WithObserver has f called once per HTTP call, after the call and before the method returns,
// on the caller's goroutine: metrics hang here without this package knowing about them. Calls
// refused before anything is sent (ErrInvalidArgument) are not HTTP calls and are not reported.
// f must be safe for concurrent use and quick, since the caller waits for it. A nil f reports
// nothing.
func WithObserver(f func(CallInfo)) Option {
	return func(c *Client) { c.observe = f }
}

// New returns a Client for baseURL (normally DefaultBaseURL; an http(s) URL, possibly with a
// path prefix) and a secret key (test_sk_..., live_sk_..., test_gsk_...). Configuration errors
// are *Error with ClassMerchantConfig; they never contain the key.
func New(baseURL, secretKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		return nil, invalidArgument("new client", "base URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, invalidArgument("new client", "base URL %q: scheme must be http or https", baseURL)
	case u.Host == "":
		return nil, invalidArgument("new client", "base URL %q: no host", baseURL)
	case u.User != nil:
		return nil, invalidArgument("new client", "base URL must not carry credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, invalidArgument("new client", "base URL %q: no query or fragment allowed", baseURL)
	}
	if err := checkSecretKey(secretKey); err != nil {
		return nil, invalidArgument("new client", "secret key: %v", err)
	}
	c := &Client{
		baseURL: strings.TrimRight(u.String(), "/"),
		cred: &credential{
			// The username is the key and the password is empty: base64("<key>:").
			authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(secretKey+":")),
		},
		http:           defaultHTTPClient(),
		paymentTimeout: defaultPaymentTimeout,
		lookupTimeout:  defaultLookupTimeout,
	}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

// checkSecretKey rejects keys that would authenticate wrongly in silence. Its messages never
// quote the key.
func checkSecretKey(k string) error {
	if k == "" {
		return errors.New("empty")
	}
	if strings.HasPrefix(k, "\uFEFF") {
		return errors.New("starts with a UTF-8 byte order mark")
	}
	if strings.TrimSpace(k) != k {
		return errors.New("has leading or trailing white space")
	}
	for _, r := range k {
		if r < 0x21 || r > 0x7e {
			return errors.New("has a character outside printable ASCII")
		}
	}
	return nil
}

func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16,
		},
		// Toss does not redirect. Following one would turn a POST into a GET, and a 3xx is
		// better reported as what it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// String describes the client without its key.
func (c *Client) String() string { return "toss.Client{" + c.baseURL + "}" }

// GoString describes the client without its key.
func (c *Client) GoString() string { return c.String() }

type confirmBody struct {
	PaymentKey string      `json:"paymentKey"`
	OrderID    string      `json:"orderId"`
	Amount     json.Number `json:"amount"`
}

// Confirm approves an authenticated payment: POST /v1/payments/confirm. idempotencyKey, when not
// empty, is sent as Idempotency-Key; Toss then replays the first answer for a repeat with the
// same key, so a retry after ClassUnknownOutcome must reuse it.
//
// ALREADY_PROCESSED_PAYMENT comes back as ClassUnknownOutcome: the caller must read the payment
// back and compare orderId, paymentKey and amount before calling it a success.
func (c *Client) Confirm(ctx context.Context, req ConfirmRequest, idempotencyKey string) (*Payment, error) {
	const op = "confirm"
	switch {
	case req.PaymentKey == "":
		return nil, invalidArgument(op, "empty paymentKey")
	case req.OrderID == "":
		return nil, invalidArgument(op, "empty orderId")
	case !req.Amount.IsPositive():
		return nil, invalidArgument(op, "amount %s is not positive", req.Amount)
	}
	body := confirmBody{PaymentKey: req.PaymentKey, OrderID: req.OrderID, Amount: number(req.Amount)}
	var p Payment
	if err := c.do(ctx, call{op: op, method: http.MethodPost, path: "/v1/payments/confirm", body: body, idempotencyKey: idempotencyKey, timeout: c.paymentTimeout}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetPayment reads a payment by its key: GET /v1/payments/{paymentKey}. See IsNotFound.
func (c *Client) GetPayment(ctx context.Context, paymentKey string) (*Payment, error) {
	const op = "get payment"
	seg, err := pathSegment(op, "paymentKey", paymentKey)
	if err != nil {
		return nil, err
	}
	var p Payment
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/v1/payments/" + seg, timeout: c.paymentTimeout}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetPaymentByOrderID reads a payment by the merchant's order id: GET
// /v1/payments/orders/{orderId}. See IsNotFound.
func (c *Client) GetPaymentByOrderID(ctx context.Context, orderID string) (*Payment, error) {
	const op = "get payment by order id"
	seg, err := pathSegment(op, "orderId", orderID)
	if err != nil {
		return nil, err
	}
	var p Payment
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/v1/payments/orders/" + seg, timeout: c.paymentTimeout}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

type cancelBody struct {
	CancelReason         string                `json:"cancelReason"`
	CancelAmount         json.Number           `json:"cancelAmount,omitempty"`
	TaxFreeAmount        json.Number           `json:"taxFreeAmount,omitempty"`
	Currency             string                `json:"currency,omitempty"`
	RefundReceiveAccount *RefundReceiveAccount `json:"refundReceiveAccount,omitempty"`
}

// Cancel cancels a payment in full (CancelAmount nil) or in part: POST
// /v1/payments/{paymentKey}/cancel. The idempotency key works as for Confirm; without one, a
// retry may cancel twice.
func (c *Client) Cancel(ctx context.Context, paymentKey string, req CancelRequest, idempotencyKey string) (*Payment, error) {
	const op = "cancel"
	seg, err := pathSegment(op, "paymentKey", paymentKey)
	if err != nil {
		return nil, err
	}
	if req.CancelReason == "" {
		return nil, invalidArgument(op, "empty cancelReason")
	}
	body := cancelBody{CancelReason: req.CancelReason, Currency: req.Currency, RefundReceiveAccount: req.RefundReceiveAccount}
	if req.CancelAmount != nil {
		if !req.CancelAmount.IsPositive() {
			return nil, invalidArgument(op, "cancelAmount %s is not positive", req.CancelAmount)
		}
		body.CancelAmount = number(*req.CancelAmount)
	}
	if req.TaxFreeAmount != nil {
		if req.TaxFreeAmount.IsNegative() {
			return nil, invalidArgument(op, "taxFreeAmount %s is negative", req.TaxFreeAmount)
		}
		body.TaxFreeAmount = number(*req.TaxFreeAmount)
	}
	var p Payment
	if err := c.do(ctx, call{op: op, method: http.MethodPost, path: "/v1/payments/" + seg + "/cancel", body: body, idempotencyKey: idempotencyKey, timeout: c.paymentTimeout}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListTransactions returns one page of GET /v1/transactions, in Toss's order. An empty page
// means there are no more rows.
func (c *Client) ListTransactions(ctx context.Context, q TransactionsQuery) ([]Transaction, error) {
	const op = "list transactions"
	switch {
	case q.StartDate.IsZero() || q.EndDate.IsZero():
		return nil, invalidArgument(op, "startDate and endDate are required")
	case q.EndDate.Before(q.StartDate):
		return nil, invalidArgument(op, "endDate is before startDate")
	case q.Limit < 0:
		return nil, invalidArgument(op, "negative limit")
	}
	v := url.Values{}
	v.Set("startDate", localDateTime(q.StartDate))
	v.Set("endDate", localDateTime(q.EndDate))
	if q.StartingAfter != "" {
		v.Set("startingAfter", q.StartingAfter)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var rows []Transaction
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/v1/transactions", query: v, timeout: c.lookupTimeout}, &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// ListSettlements returns one page of GET /v1/settlements.
func (c *Client) ListSettlements(ctx context.Context, q SettlementsQuery) ([]Settlement, error) {
	const op = "list settlements"
	for _, d := range []struct{ name, value string }{{"startDate", q.StartDate}, {"endDate", q.EndDate}} {
		if _, err := time.Parse(time.DateOnly, d.value); err != nil {
			return nil, invalidArgument(op, "%s %q is not a yyyy-MM-dd date", d.name, d.value)
		}
	}
	switch {
	case q.EndDate < q.StartDate: // yyyy-MM-dd sorts as text
		return nil, invalidArgument(op, "endDate is before startDate")
	case q.DateType != "" && q.DateType != "soldDate" && q.DateType != "paidOutDate":
		return nil, invalidArgument(op, "dateType %q is not soldDate or paidOutDate", q.DateType)
	case q.Page < 0 || q.Size < 0:
		return nil, invalidArgument(op, "negative page or size")
	}
	v := url.Values{}
	v.Set("startDate", q.StartDate)
	v.Set("endDate", q.EndDate)
	if q.DateType != "" {
		v.Set("dateType", q.DateType)
	}
	if q.Page > 0 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if q.Size > 0 {
		v.Set("size", strconv.Itoa(q.Size))
	}
	var rows []Settlement
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/v1/settlements", query: v, timeout: c.lookupTimeout}, &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// number writes a decimal as a JSON number from its exact text ("15000", "726.24").
func number(d decimal.Decimal) json.Number { return json.Number(d.String()) }

// localDateTime writes t as KST wall time without an offset, with milliseconds only when t has
// a fraction of a second (for an end bound such as 23:59:59.999).
func localDateTime(t time.Time) string {
	t = t.In(kst)
	if t.Nanosecond() >= int(time.Millisecond) {
		return t.Format("2006-01-02T15:04:05.000")
	}
	return t.Format("2006-01-02T15:04:05")
}

// pathSegment escapes one path segment. "." and ".." are refused because a server or proxy
// may resolve them as relative paths and reach another endpoint.
func pathSegment(op, name, value string) (string, error) {
	if value == "" || value == "." || value == ".." {
		return "", invalidArgument(op, "%s %q is not usable in a path", name, value)
	}
	return url.PathEscape(value), nil
}

type call struct {
	op             string
	method         string
	path           string // already escaped
	query          url.Values
	body           any
	idempotencyKey string
	timeout        time.Duration
}

// do sends one request and decodes a 2xx JSON answer into out. Every error it returns is *Error.
func (c *Client) do(ctx context.Context, k call, out any) error {
	var payload []byte
	if k.body != nil {
		b, err := json.Marshal(k.body)
		if err != nil {
			return &Error{Op: k.op, Class: ClassMerchantConfig, Err: fmt.Errorf("encode request: %w", err)}
		}
		payload = b
	}
	if k.idempotencyKey != "" {
		if err := checkIdempotencyKey(k.idempotencyKey); err != nil {
			return invalidArgument(k.op, "idempotency key: %v", err)
		}
	}
	target := c.baseURL + k.path
	if len(k.query) > 0 {
		target += "?" + k.query.Encode()
	}

	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, target, body)
	if err != nil {
		return &Error{Op: k.op, Class: ClassMerchantConfig, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Authorization", c.cred.authorization)
	req.Header.Set("Accept", "application/json")
	if k.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		if k.idempotencyKey != "" {
			req.Header.Set("Idempotency-Key", k.idempotencyKey)
		}
	}

	start := time.Now()
	status, err := c.send(req, k.op, out)
	if c.observe != nil {
		c.observe(CallInfo{Op: k.op, Duration: time.Since(start), HTTPStatus: status, Err: err})
	}
	return err
}

// send sends req and decodes a 2xx JSON answer into out. It returns the answer's status (0 when
// none arrived) and nil or an *Error.
func (c *Client) send(req *http.Request, op string, out any) (int, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		// The request may have reached Toss: a timeout says nothing about the outcome.
		return 0, &Error{Op: op, Class: ClassUnknownOutcome, Err: err}
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	traceID := resp.Header.Get("X-TossPayments-Trace-Id")
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err == nil && len(raw) > maxResponseBytes {
		err = fmt.Errorf("response body over %d bytes", maxResponseBytes)
	}
	if err != nil {
		return status, &Error{Op: op, HTTPStatus: status, Class: ClassUnknownOutcome, TraceID: traceID, Err: fmt.Errorf("read response: %w", err)}
	}
	raw = withoutNUL(raw)
	if status < 200 || status > 299 {
		return status, decodeError(op, status, traceID, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		// A 2xx we cannot read may still be an approval or a cancel.
		return status, &Error{Op: op, HTTPStatus: status, Class: ClassUnknownOutcome, TraceID: traceID, Err: fmt.Errorf("decode response: %w", err)}
	}
	return status, nil
}

func checkIdempotencyKey(key string) error {
	if n := utf8.RuneCountInString(key); n > maxIdempotencyKeyLen {
		return fmt.Errorf("%d characters, Toss accepts at most %d", n, maxIdempotencyKeyLen)
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return errors.New("has a character outside printable ASCII")
		}
	}
	return nil
}

// decodeError turns a non-2xx answer into an *Error. A body that is not Toss's {code, message,
// data?} leaves Code empty, so the class follows the HTTP status alone.
func decodeError(op string, status int, traceID string, raw []byte) *Error {
	e := &Error{Op: op, HTTPStatus: status, TraceID: traceID}
	var body struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Code == "" {
		e.Err = fmt.Errorf("error body is not Toss JSON: %q", snippet(raw))
	} else {
		e.Code, e.Message = clipText(body.Code, maxCodeRunes), clipText(body.Message, maxMessageRunes)
	}
	e.Class = Classify(op, status, e.Code)
	return e
}

// snippet keeps the start of an unexpected body (a proxy's HTML page) for the error text.
func snippet(raw []byte) string {
	const limit = 200
	if len(raw) <= limit {
		return string(raw)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	return string(raw[:cut]) + "..."
}

// Toss's error codes are short upper-case names and its messages a sentence; what a response
// holds beyond these bounds is cut, so that a rejection recorded from it stays a line.
const (
	maxCodeRunes    = 100
	maxMessageRunes = 1000
)

// clipText keeps the first n characters of s.
func clipText(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// withoutNUL replaces every \u0000 escape of a JSON text by \ufffd. A NUL in a string Toss sent
// would reach events and read models, and PostgreSQL refuses it in text and jsonb columns (the
// projection would stop at that event). Raw control bytes are not valid JSON, so the escape is
// the only way a NUL can come; invalid UTF-8 is already replaced by encoding/json.
func withoutNUL(raw []byte) []byte {
	if !bytes.Contains(raw, []byte(`\u0000`)) {
		return raw
	}
	out := bytes.Clone(raw)
	for i := 0; i+1 < len(out); i++ {
		if out[i] != '\\' {
			continue
		}
		if out[i+1] == 'u' && i+5 < len(out) && string(out[i+2:i+6]) == "0000" {
			copy(out[i+2:i+6], "fffd")
		}
		i++ // the escaped character: after \\ it is not an escape
	}
	return out
}
