package tosssim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const testKey = "test_sk_simulator"

// fakeClock is an injectable clock that only moves when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 11, 21, 10, 20, 47, 0, kst)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t     *testing.T
	sim   *Simulator
	clock *fakeClock
	base  string // server URL plus any mount prefix
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	clock := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, sim: sim, clock: clock, base: srv.URL}
}

func basicAuth(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request. headers may override or delete ("" value) the default Authorization.
func (h *harness) call(method, path string, body any, headers map[string]string) reply {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", basicAuth(testKey))
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (h *harness) session(orderID string, amount any, extra map[string]any) string {
	h.t.Helper()
	body := map[string]any{"orderId": orderID, "amount": amount, "orderName": "토스 티셔츠 외 2건"}
	for k, v := range extra {
		body[k] = v
	}
	r := h.call("POST", "/sim/v1/sessions", body, map[string]string{"Authorization": ""})
	if r.status != http.StatusCreated {
		h.t.Fatalf("session %s: %d %s", orderID, r.status, r.body)
	}
	var out struct {
		PaymentKey string `json:"paymentKey"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || out.PaymentKey == "" {
		h.t.Fatalf("session body %s: %v", r.body, err)
	}
	return out.PaymentKey
}

func (h *harness) confirm(paymentKey, orderID string, amount int64, idemKey string) reply {
	h.t.Helper()
	headers := map[string]string{}
	if idemKey != "" {
		headers["Idempotency-Key"] = idemKey
	}
	return h.call("POST", "/v1/payments/confirm",
		map[string]any{"paymentKey": paymentKey, "orderId": orderID, "amount": amount}, headers)
}

func (h *harness) cancel(paymentKey string, body map[string]any, idemKey string) reply {
	h.t.Helper()
	headers := map[string]string{}
	if idemKey != "" {
		headers["Idempotency-Key"] = idemKey
	}
	return h.call("POST", "/v1/payments/"+paymentKey+"/cancel", body, headers)
}

// decode parses a JSON body keeping numbers as json.Number, so tests can tell numbers from
// strings.
func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return m
}

func decodeList(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m []map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return m
}

// wantError asserts an exact Toss error answer: status, and a body of exactly code and message.
func wantError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	want, err := marshal(wireError{Code: code, Message: errorTable[code].message})
	if err != nil {
		t.Fatal(err)
	}
	if code == "" || errorTable[code].message == "" {
		t.Fatalf("test bug: %q not in errorTable", code)
	}
	if !bytes.Equal(r.body, want) {
		t.Fatalf("body = %s, want %s", r.body, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
}

func wantNumber(t *testing.T, m map[string]any, field, want string) {
	t.Helper()
	n, ok := m[field].(json.Number)
	if !ok {
		t.Fatalf("%s = %#v, want JSON number %s", field, m[field], want)
	}
	if n.String() != want {
		t.Fatalf("%s = %s, want %s", field, n, want)
	}
}

func wantString(t *testing.T, m map[string]any, field, want string) {
	t.Helper()
	if s, ok := m[field].(string); !ok || s != want {
		t.Fatalf("%s = %#v, want %q", field, m[field], want)
	}
}

func wantNull(t *testing.T, m map[string]any, field string) {
	t.Helper()
	v, present := m[field]
	if !present || v != nil {
		t.Fatalf("%s = %#v (present %v), want null", field, v, present)
	}
}
