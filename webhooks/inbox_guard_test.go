package webhooks_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/webhooks"
)

// paymentBody is a well-formed PAYMENT_STATUS_CHANGED naming orderID.
func paymentBody(orderID string) []byte {
	return fmt.Appendf(nil, `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2022-01-01T00:00:00.000000","data":{"orderId":%q,"status":"DONE"}}`, orderID)
}

// TestMerchantURL: the merchant is the one path segment after the mount; a path without exactly
// one valid, registered merchant is 404 and nothing is stored. The registry is asked only about
// valid ids.
func TestMerchantURL(t *testing.T) {
	pool := pgtest.NewPool(t)
	var asked []domain.MerchantID
	var mu sync.Mutex
	inbox := newInbox(t, pool, webhooks.InboxConfig{MerchantExists: func(_ context.Context, id domain.MerchantID) (bool, error) {
		mu.Lock()
		asked = append(asked, id)
		mu.Unlock()
		return id == testenv.Merchant, nil
	}})
	for i, path := range []string{"", "/", "merchant-test", "//merchant-test", "/merchant-test/", "/merchant-test/extra",
		"/merchant test", "/merchant.test", "/" + strings.Repeat("m", 65), "/merchant-unknown"} {
		rec := serve(t, inbox, "192.0.2.1:1234", path, paymentBody("order-1"), tid(fmt.Sprint("whtrans_path_", i)))
		if rec.Code != http.StatusNotFound || errorCode(t, rec) != "NOT_FOUND" {
			t.Errorf("path %q: answer %d %s, want 404 NOT_FOUND", path, rec.Code, rec.Body)
		}
	}
	if n := countRows(t, pool); n != 0 {
		t.Fatalf("%d rows stored for paths that name no merchant", n)
	}
	if !slices.Equal(asked, []domain.MerchantID{"merchant-unknown"}) {
		t.Errorf("the registry was asked about %q; want only the valid id", asked)
	}

	rec := serve(t, inbox, "192.0.2.1:1234", "/merchant-test", paymentBody("order-1"), tid("whtrans_ok"))
	if rec.Code != http.StatusOK {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	if r := rowByKey(t, pool, "whtrans_ok"); str(r.MerchantID) != string(testenv.Merchant) || r.Status != webhooks.StatusPending {
		t.Fatalf("row merchant %s, status %s", str(r.MerchantID), r.Status)
	}

	// Over HTTP, mounted as paymentd mounts it.
	base := inboxMount(t, pool, webhooks.InboxConfig{})
	for _, u := range []string{base + "/merchant-unknown", base + "/merchant-test/extra", base + "/bad%20id"} {
		if a := post(t, u, paymentBody("order-1"), tid("whtrans_http")); a.Status != http.StatusNotFound || a.Body.Error.Code != "NOT_FOUND" {
			t.Errorf("%s: answer %d %+v", u, a.Status, a.Body)
		}
	}
	if a := post(t, base+"/"+string(otherMerchant), paymentBody("order-1"), tid("whtrans_http")); a.Status != http.StatusOK {
		t.Fatalf("registered merchant: %+v", a)
	}
	if r := rowByKey(t, pool, "whtrans_http"); str(r.MerchantID) != string(otherMerchant) {
		t.Fatalf("row merchant %s", str(r.MerchantID))
	}
}

// TestMerchantCheckFailureKeepsTheDelivery: when the registry cannot answer, a delivery is kept
// under the unverified merchant (the worker's merchant check makes that harmless) rather than
// lost or answered 500.
func TestMerchantCheckFailureKeepsTheDelivery(t *testing.T) {
	pool := pgtest.NewPool(t)
	url := inboxServer(t, pool, webhooks.InboxConfig{MerchantExists: func(context.Context, domain.MerchantID) (bool, error) {
		return false, errors.New("registry unreachable")
	}})
	if a := post(t, url, paymentBody("order-1"), tid("whtrans_1")); a.Status != http.StatusOK || a.Body.Status != "stored" {
		t.Fatalf("answer %d %+v", a.Status, a.Body)
	}
	if r := rowByKey(t, pool, "whtrans_1"); str(r.MerchantID) != string(testenv.Merchant) {
		t.Fatalf("row merchant %s", str(r.MerchantID))
	}
}

func TestNewInboxWithoutMerchantExistsPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewInbox accepted a config without MerchantExists")
		}
	}()
	webhooks.NewInbox(nil, webhooks.InboxConfig{}, nil)
}

// TestBodyAndHeaderLimits: a body over MaxBodyBytes (announced or not) is 413, headers over
// 16 KiB are 431; neither is stored. A body at the limit is taken.
func TestBodyAndHeaderLimits(t *testing.T) {
	pool := pgtest.NewPool(t)
	const limit = 1024
	url := inboxServer(t, pool, webhooks.InboxConfig{MaxBodyBytes: limit})
	padded := func(n int) []byte {
		b := []byte(`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1"},"pad":"`)
		b = append(b, bytes.Repeat([]byte("a"), n-len(b)-2)...)
		return append(b, `"}`...)
	}
	if a := post(t, url, padded(limit+1), tid("whtrans_big")); a.Status != http.StatusRequestEntityTooLarge || a.Body.Error.Code != "BODY_TOO_LARGE" {
		t.Errorf("body of limit+1: %d %+v", a.Status, a.Body)
	}
	// Without Content-Length (an unknown length is sent chunked): the reader stops at the limit.
	req, err := http.NewRequest(http.MethodPost, url, struct{ *bytes.Reader }{bytes.NewReader(padded(limit + 1))})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhooks.TransmissionIDHeader, "whtrans_big_chunked")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength > 0 {
		t.Errorf("chunked body of limit+1: %d (content length %d)", resp.StatusCode, req.ContentLength)
	}
	headers := tid("whtrans_headers")
	headers["X-Pad"] = strings.Repeat("h", 16<<10)
	if a := post(t, url, paymentBody("order-1"), headers); a.Status != http.StatusRequestHeaderFieldsTooLarge || a.Body.Error.Code != "HEADERS_TOO_LARGE" {
		t.Errorf("large headers: %d %+v", a.Status, a.Body)
	}
	if n := countRows(t, pool); n != 0 {
		t.Fatalf("%d rows stored for refused deliveries", n)
	}
	if a := post(t, url, padded(limit), tid("whtrans_at_limit")); a.Status != http.StatusOK {
		t.Fatalf("body at the limit: %d %+v", a.Status, a.Body)
	}
	if r := rowByKey(t, pool, "whtrans_at_limit"); len(r.Body) != limit {
		t.Fatalf("stored %d bytes, want %d", len(r.Body), limit)
	}

	// The default fits Toss's payloads: 64 KiB.
	def := inboxServer(t, pool, webhooks.InboxConfig{})
	if a := post(t, def, padded(webhooks.DefaultMaxBodyBytes+1), tid("whtrans_default_big")); a.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("body of the default limit+1: %d %+v", a.Status, a.Body)
	}
	if a := post(t, def, padded(webhooks.DefaultMaxBodyBytes), tid("whtrans_default_at_limit")); a.Status != http.StatusOK {
		t.Errorf("body at the default limit: %d %+v", a.Status, a.Body)
	}
	if n := countRows(t, pool); n != 2 {
		t.Fatalf("%d rows, want the two bodies at the limits", n)
	}
}

// TestRejectedAndIgnoredKeepAPrefix: a malformed delivery is answered 400 and stored as rejected
// with at most KeptPrefixBytes of its body, plus its full length and hash; so is the body of an
// ignored event type. A pending delivery keeps its whole body.
func TestRejectedAndIgnoredKeepAPrefix(t *testing.T) {
	pool := pgtest.NewPool(t)
	url := inboxServer(t, pool, webhooks.InboxConfig{})
	pad := strings.Repeat("x", 10_000)
	cases := []struct {
		id, body, status string
		whole            bool
	}{
		{"whtrans_junk", "junk " + pad, webhooks.StatusRejected, false},
		{"whtrans_no_order", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"pad":"` + pad + `"}}`, webhooks.StatusRejected, false},
		{"whtrans_small_junk", `[1,2,3]`, webhooks.StatusRejected, true},
		{"whtrans_ignored", `{"eventType":"SOMETHING_NEW","pad":"` + pad + `"}`, webhooks.StatusProcessed, false},
		{"whtrans_pending", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-1","pad":"` + pad + `"}}`, webhooks.StatusPending, true},
	}
	for _, c := range cases {
		a := post(t, url, []byte(c.body), tid(c.id))
		if wantCode := map[bool]int{true: http.StatusBadRequest, false: http.StatusOK}[c.status == webhooks.StatusRejected]; a.Status != wantCode {
			t.Errorf("%s: answer %d %+v, want %d", c.id, a.Status, a.Body, wantCode)
		}
		r := rowByKey(t, pool, c.id)
		want := []byte(c.body)
		if !c.whole {
			want = want[:webhooks.KeptPrefixBytes]
		}
		sum := sha256.Sum256([]byte(c.body))
		if r.Status != c.status || !bytes.Equal(r.Body, want) || r.BodyLength == nil || *r.BodyLength != len(c.body) || !bytes.Equal(r.BodySHA256, sum[:]) {
			t.Errorf("%s: row %s with %d body bytes, length %v, hash %x; want %s with %d bytes, length %d, hash %x",
				c.id, r.Status, len(r.Body), r.BodyLength, r.BodySHA256, c.status, len(want), len(c.body), sum)
		}
	}
}

// TestAllowedIPs: with AllowedIPs set, only those TCP peers may deliver; X-Forwarded-For is not
// believed. Nothing from elsewhere is stored.
func TestAllowedIPs(t *testing.T) {
	pool := pgtest.NewPool(t)
	prefixes := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	inbox := newInbox(t, pool, webhooks.InboxConfig{AllowedIPs: prefixes})
	path := "/" + string(testenv.Merchant)
	for i, c := range []struct {
		remote string
		xff    string
		want   int
	}{
		{"198.51.100.7:40000", "", http.StatusForbidden},
		{"198.51.100.7:40000", "203.0.113.9", http.StatusForbidden},
		{"[2001:db9::1]:40000", "", http.StatusForbidden},
		{"not-an-address", "", http.StatusForbidden},
		{"203.0.113.9:40000", "", http.StatusOK},
		{"[::ffff:203.0.113.10]:40000", "", http.StatusOK},
		{"[2001:db8::1]:40000", "", http.StatusOK},
	} {
		h := tid(fmt.Sprint("whtrans_ip_", i))
		if c.xff != "" {
			h["X-Forwarded-For"] = c.xff
		}
		rec := serve(t, inbox, c.remote, path, paymentBody("order-1"), h)
		if rec.Code != c.want {
			t.Errorf("from %s (X-Forwarded-For %q): %d %s, want %d", c.remote, c.xff, rec.Code, rec.Body, c.want)
		}
		if c.want == http.StatusForbidden && errorCode(t, rec) != "FORBIDDEN" {
			t.Errorf("from %s: code %s", c.remote, errorCode(t, rec))
		}
	}
	if n := countRows(t, pool); n != 3 {
		t.Fatalf("%d rows, want the 3 allowed deliveries only", n)
	}
}

// TestRateLimitPerAddress: the (Burst+1)-th delivery from one address is 429 with Retry-After in
// the API's error shape and is not stored; another address is still taken. An IPv6 client
// shares one bucket across its /64. A rate of one token per ~12 days keeps the test free of
// timing: no token comes back while it runs.
func TestRateLimitPerAddress(t *testing.T) {
	pool := pgtest.NewPool(t)
	const burst = 5
	var limited atomic.Int64
	inbox := newInbox(t, pool, webhooks.InboxConfig{Rate: 1e-6, Burst: burst, OnRateLimited: func() { limited.Add(1) }})
	path := "/" + string(testenv.Merchant)
	for i := range burst {
		if rec := serve(t, inbox, "203.0.113.9:5000", path, paymentBody("order-1"), tid(fmt.Sprint("whtrans_a_", i))); rec.Code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	// A new port is the same client.
	rec := serve(t, inbox, "203.0.113.9:5001", path, paymentBody("order-1"), tid("whtrans_a_over"))
	if rec.Code != http.StatusTooManyRequests || errorCode(t, rec) != "RATE_LIMITED" {
		t.Fatalf("delivery %d: %d %s, want 429 RATE_LIMITED", burst+1, rec.Code, rec.Body)
	}
	if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	if n := countRows(t, pool); n != burst {
		t.Fatalf("%d rows, want %d: the limited delivery must not be stored", n, burst)
	}
	if rec := serve(t, inbox, "198.51.100.7:5000", path, paymentBody("order-1"), tid("whtrans_b")); rec.Code != http.StatusOK {
		t.Fatalf("another address: %d %s", rec.Code, rec.Body)
	}
	// Rate limiting comes before everything but the address check: junk and unknown merchants
	// use up the bucket too, without a query.
	for i := range burst {
		serve(t, inbox, fmt.Sprintf("[2001:db8:0:1::%x]:5000", i+1), "/merchant-unknown", []byte("junk"), nil)
	}
	if rec := serve(t, inbox, "[2001:db8:0:1:ffff::1]:5000", path, paymentBody("order-1"), tid("whtrans_v6")); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("IPv6 in the same /64: %d %s, want 429", rec.Code, rec.Body)
	}
	if rec := serve(t, inbox, "[2001:db8:0:2::1]:5000", path, paymentBody("order-1"), tid("whtrans_v6_other")); rec.Code != http.StatusOK {
		t.Fatalf("IPv6 in another /64: %d %s", rec.Code, rec.Body)
	}
	if n := countRows(t, pool); n != burst+2 {
		t.Fatalf("%d rows, want %d", n, burst+2)
	}
	if n := limited.Load(); n != 2 {
		t.Fatalf("OnRateLimited called %d times, want 2", n)
	}
}

// componentCounter is a slog handler that records, per log line, every value of the component
// key, from the logger's attributes and the line's own.
type componentCounter struct {
	attrs []slog.Attr
	lines *atomic.Pointer[[][]string]
	mu    *sync.Mutex
}

func newComponentCounter() componentCounter {
	c := componentCounter{lines: &atomic.Pointer[[][]string]{}, mu: &sync.Mutex{}}
	c.lines.Store(&[][]string{})
	return c
}

func (c componentCounter) Enabled(context.Context, slog.Level) bool { return true }

func (c componentCounter) Handle(_ context.Context, r slog.Record) error {
	var comps []string
	for _, a := range c.attrs {
		if a.Key == "component" {
			comps = append(comps, a.Value.String())
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" {
			comps = append(comps, a.Value.String())
		}
		return true
	})
	c.mu.Lock()
	lines := append(slices.Clone(*c.lines.Load()), comps)
	c.lines.Store(&lines)
	c.mu.Unlock()
	return nil
}

func (c componentCounter) WithAttrs(as []slog.Attr) slog.Handler {
	c.attrs = append(slices.Clone(c.attrs), as...)
	return c
}

func (c componentCounter) WithGroup(string) slog.Handler { return c }

func (c componentCounter) all() [][]string { return *c.lines.Load() }

// TestEachComponentNamesItselfOnce: given a plain logger, every line of the inbox carries
// component=webhook-inbox once, and every line of the worker component=webhook-worker once.
func TestEachComponentNamesItselfOnce(t *testing.T) {
	pool := pgtest.NewPool(t)
	inboxLog, workerLog := newComponentCounter(), newComponentCounter()
	inbox := webhooks.NewInbox(pool, webhooks.InboxConfig{MerchantExists: knownMerchants(testenv.Merchant)}, slog.New(inboxLog))
	path := "/" + string(testenv.Merchant)
	for _, b := range [][]byte{paymentBody("order-1"), paymentBody("order-1"), []byte("junk")} {
		serve(t, inbox, "192.0.2.1:1", path, b, nil)
	}
	serve(t, inbox, "192.0.2.1:1", "/merchant-unknown", paymentBody("order-1"), nil)
	w := webhooks.NewWorker(pool, &fakeSyncer{status: domain.StatusSuccess}, webhooks.WorkerConfig{}, slog.New(workerLog))
	drain(t, w)
	for name, c := range map[string]struct {
		lines [][]string
		want  string
	}{"inbox": {inboxLog.all(), "webhook-inbox"}, "worker": {workerLog.all(), "webhook-worker"}} {
		if len(c.lines) == 0 {
			t.Errorf("%s logged nothing", name)
		}
		for i, comps := range c.lines {
			if !slices.Equal(comps, []string{c.want}) {
				t.Errorf("%s line %d: component %q, want exactly [%s]", name, i, comps, c.want)
			}
		}
	}
}
