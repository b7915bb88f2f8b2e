package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/merchants"
)

// fuzzTarget is an Env whose every route can be aimed at real resources: a paid order (cancel,
// lookups), an order waiting for its confirm, a seller with money in the ledger and a merchant
// for the admin routes. Requests are written over raw TCP connections, so that any byte can be
// put in the request line, the headers and the body: the Go client refuses to send some.
type fuzzTarget struct {
	env    *testenv.Env
	addr   string
	routes []httpapi.Route
	vars   map[string]string // path variable → a valid value
	bodies map[string]string // "METHOD path" → a valid body ("" for none)
}

// The limits are out of reach: a fuzz run sends thousands of requests from one address, and a
// 429 would hide what the handlers do with them.
func newFuzzTarget(t testing.TB) *fuzzTarget {
	t.Helper()
	env := testenv.New(t, testenv.Options{Auth: &httpapi.AuthConfig{
		AdminToken: testenv.AdminToken, KeyRate: 1e9, KeyBurst: 1 << 30, FailuresPerMinute: 1 << 30,
	}})
	ctx := context.Background()
	paid, _ := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "p1", Amount: decimal.NewFromInt(25000)})
	pending, err := env.Commands.Checkout(ctx, commands.CheckoutInput{Merchant: testenv.Merchant, OrderName: "fuzz", BuyerID: "buyer-1",
		Lines: []domain.CheckoutLine{{SellerID: "seller-a", ProductID: "p1", Amount: decimal.NewFromInt(25000)}}})
	if err != nil {
		t.Fatal(err)
	}
	paymentKey, err := env.Sim.CreateSession(string(pending.OrderID), pending.Amount, pending.OrderName)
	if err != nil {
		t.Fatal(err)
	}
	const adminTarget = "merchant-fuzz-admin"
	env.NewMerchant(t, adminTarget)
	k, err := env.Merchants.IssueKey(ctx, adminTarget, nil, merchants.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	settle(t, env)
	return &fuzzTarget{
		env: env, addr: strings.TrimPrefix(env.API.URL, "http://"), routes: env.Server.Routes(),
		vars: map[string]string{
			"orderId": string(paid.OrderID), "account": domain.AccountPSPReceivable, "sellerId": "seller-a",
			"merchantId": adminTarget, "keyId": string(k.KeyID),
		},
		bodies: map[string]string{
			"POST /api/v1/payments/checkout":                            `{"orderName":"fuzz","buyerId":"b","lines":[{"sellerId":"seller-a","productId":"p","amount":"1000"}]}`,
			"POST /api/v1/payments/confirm":                             fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"25000"}`, paymentKey, pending.OrderID),
			"POST /api/v1/payments/{orderId}/cancel":                    `{"amount":"100","reason":"fuzz"}`,
			"POST /admin/v1/merchants":                                  `{"name":"Fuzz shop","merchantId":"merchant-fuzz-new"}`,
			"PUT /admin/v1/merchants/{merchantId}/toss-key":             `{"tossSecretKey":"test_sk_fuzz"}`,
			"PUT /admin/v1/merchants/{merchantId}/commission":           `{"rate":"0.05"}`,
			"PUT /admin/v1/merchants/{merchantId}/fee-rate":             `{"rate":"0.0341"}`,
			"POST /admin/v1/merchants/{merchantId}/keys":                `{"scopes":["payments:read"]}`,
			"POST /admin/v1/merchants/{merchantId}/keys/{keyId}/rotate": `{"gracePeriod":"1h"}`,
			"PUT /admin/v1/merchants/{merchantId}/notifications":        `{"url":"https://shop.example/hooks"}`,
		},
	}
}

// rawRequest is one HTTP/1.1 request, every part as sent.
type rawRequest struct {
	method string
	target string // path and query, any bytes
	header [][2]string
	body   []byte
}

func (r rawRequest) bytes(host string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.method, r.target, host)
	for _, h := range r.header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(r.body))
	b.Write(r.body)
	return b.Bytes()
}

// reachesHandler says whether Go's server hands raw to the API at all: its head must fit in
// http.DefaultMaxHeaderBytes, parse as a request and hold no control character in a header
// value. net/http refuses anything else itself, with a plain-text 400 or 431 before any handler
// runs, so only requests that reach the API can be held to its JSON error shape.
func reachesHandler(raw []byte) bool {
	if bytes.Index(raw, []byte("\r\n\r\n")) > http.DefaultMaxHeaderBytes {
		return false
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return false
	}
	for _, vs := range req.Header {
		for _, v := range vs {
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				return false
			}
		}
	}
	return true
}

// send writes raw on a new connection and reads the answer. The write runs beside the read: the
// server may answer (413) before it has read a large body, and stops reading it then. A
// connection closed without a whole answer is an error, with whatever status came first.
func (ft *fuzzTarget) send(t testing.TB, raw []byte) (status int, body []byte, err error) {
	t.Helper()
	conn, err := net.Dial("tcp", ft.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A guard against a hung server, not a timing assertion: it fails the test, never passes it.
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = conn.Write(raw) // a server that answered early may close before the body is in
	}()
	defer func() { <-written }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = readAnswer(resp)
	// A live status stream never ends: closing the connection ends it (the server sees its
	// request's context end), and the deferred Close of the body then has nothing to drain.
	conn.Close()
	return resp.StatusCode, body, err
}

// check sends r and holds the answer to the rules: never a 5xx; every 4xx from the API is
// {"error":{"code","message"}}; and a refused request appends no event to any stream.
//
// A request that net/http refuses before any handler (see reachesHandler) gets its plain-text
// 400, or only a closed connection: the server stops reading at the bad header line and closes,
// and the unread rest of the head can turn the close into a reset that takes the answer with it.
// Either way it must append nothing; status 0 stands for the closed connection.
func (ft *fuzzTarget) check(t testing.TB, r rawRequest, what string) (status int, ok bool) {
	t.Helper()
	raw := r.bytes(ft.addr)
	reaches := reachesHandler(raw)
	sent := raw
	if !reaches {
		// The body plays no part in the refusal; it would only make the reset likelier.
		sent = raw[:bytes.Index(raw, []byte("\r\n\r\n"))+4]
	}
	before := countAllEvents(t, ft.env)
	status, body, err := ft.send(t, sent)
	describe := func() string {
		return fmt.Sprintf("%s\nrequest %q\nanswer %d %q", what, truncateForLog(string(raw), 400), status, truncateForLog(string(body), 300))
	}
	switch {
	case err != nil && reaches:
		t.Errorf("no whole answer (%v): %s", err, describe())
		return status, false
	case err != nil:
		status = 0
	}
	if status >= 500 {
		t.Errorf("5xx: %s", describe())
		return status, false
	}
	if status < 400 && status != 0 {
		return status, true
	}
	ok = true
	if reaches {
		if _, err := apiErrorCode(body); err != nil {
			t.Errorf("%v: %s", err, describe())
			ok = false
		}
	}
	if after := countAllEvents(t, ft.env); after != before {
		t.Errorf("refused with %d yet %d events were appended: %s", status, after-before, describe())
		ok = false
	}
	return status, ok
}

// countAllEvents is the number of events of every stream (payments and merchants alike), unlike
// Env.CountEvents, which counts payments only.
func countAllEvents(t testing.TB, env *testenv.Env) int64 {
	t.Helper()
	var n int64
	if err := env.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var pathVar = regexp.MustCompile(`\{([^}]+)\}`)

// request is the valid request of route i, with path values from vars and overrides.
func (ft *fuzzTarget) request(i int, override map[string]string) rawRequest {
	r := ft.routes[i]
	key := r.Method + " " + r.Path
	path := pathVar.ReplaceAllStringFunc(r.Path, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := override[name]; ok {
			return v
		}
		return ft.vars[name]
	})
	req := rawRequest{method: r.Method, target: path}
	switch r.Access {
	case httpapi.AccessAPIKey:
		req.header = append(req.header, [2]string{"Authorization", bearer(ft.env.APIKey)})
	case httpapi.AccessAdmin:
		req.header = append(req.header, [2]string{"Authorization", bearer(testenv.AdminToken)})
	}
	// One key per route: a valid request repeated is a replay, not another payment or refund.
	req.header = append(req.header, [2]string{"Idempotency-Key", "fuzz-" + strconv.Itoa(i)})
	if b := ft.bodies[key]; b != "" {
		req.body = []byte(b)
		req.header = append(req.header, [2]string{"Content-Type", "application/json"})
	}
	return req
}

// setHeader replaces (or adds) a header; an empty value removes it.
func (r *rawRequest) setHeader(name, value string) {
	out := r.header[:0:0]
	for _, h := range r.header {
		if !strings.EqualFold(h[0], name) {
			out = append(out, h)
		}
	}
	if value != "" {
		out = append(out, [2]string{name, value})
	}
	r.header = out
}

// Bad text, as it appears in a URL: percent-encoded NUL, invalid UTF-8, an encoded surrogate,
// control characters, and raw bytes net/http itself must refuse or pass on.
var badSegments = []string{
	"%00", "a%00b", "%ff%fe", "%c3%28", "%ed%a0%80", "%c0%af", "%01", "%1f", "%7f", "%0a", "%0d%0a", "%09",
	"\xff", "\xfe\xff", "\x00", "\x01", "\x7f", "%2f", "..", "%2e%2e", "%20", "%", "%zz", "%e2%80%ae",
	"%ec%a3%bc%eb%ac%b8", "\xec\xa3\xbc", "null", "-1", "0", "order-does-not-exist",
	strings.Repeat("a", 65), strings.Repeat("x", 10_000), strings.Repeat("%ff", 5_000),
}

var badQueryValues = []string{
	"-1", "0", "1", "101", "99999999999999999999", "1e400", "NaN", "true", "maybe", "",
	"9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2026-13-45T99:99:99Z", "2026-12-01T00:00:00+99:99",
	"2026-12-01T00:00:00.999999999999Z", "SUCCESS", "success", "KRW", "usd", "!!!",
	strings.Repeat("9", 100_000),
}

// craftedCursors pass the cursor codec's checksum (makeCursor forges it the way queries does:
// the checksum is unkeyed) but hold values no API answer could have produced: NUL and invalid
// UTF-8 in the order id, times out of every range, a huge id, the fields of another list. The
// query string itself is clean, so they get past the request guard; old-format cursors are in too.
var craftedCursors = func() []string {
	var out []string
	for _, id := range []string{"\x00", "a\x00b", "\xff\xfe", "\xed\xa0\x80", "\x01", "", strings.Repeat("a", 900)} {
		out = append(out, makeCursor("payments", "", "false", "1", id))
	}
	// -3e17 µs is within int64 and pgx's range but outside PostgreSQL's timestamps.
	for _, micros := range []string{"9223372036854775807", "-9223372036854775808", "253402300800000000", "-300000000000000000", "x", ""} {
		out = append(out, makeCursor("payments", "", "false", micros, "order-1"), makeCursor("runs", micros, "1"))
	}
	out = append(out, makeCursor("psp_receivable:toss", "1", "1"), makeCursor("psp_receivable:toss", "-300000000000000000", "1"), makeCursor("payments", "\x00", "false", "1", "order-1"))
	for _, s := range []string{"1|\x00", "1|\xff\xfe", "9223372036854775807|order-1", "|"} {
		out = append(out, base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	return out
}()

var rawQueries = []string{"%zz", "a=%", ";", "a=1;b=2", "&&&", "=", "limit=1&limit=abc", "limit", "%00=1", "\xff=1",
	"cursor=%00", "status=%ff", "asOf=%0a", "currency=%00", "needsReview=%01", "limit=%7f"}

var queryParams = []string{"cursor", "limit", "status", "asOf", "needsReview", "currency", "lastEventId", "unknown"}

// The JSON values a field may wrongly get, and the numbers that overflow every type.
var wrongJSON = []string{`123`, `-1`, `1.5`, `true`, `false`, `null`, `[]`, `[1,"a"]`, `{}`, `{"x":1}`, `""`,
	`1e400`, `-1e400`, `99999999999999999999999`, `1e-400`, `-0`, `0.0000000000000000000001`, `123456789012345678901234567890.5`,
	`"1e400"`, `"99999999999999999999999"`, `"-0"`, `"NaN"`, `"Infinity"`, `" 1000"`, `"1,000"`, `"１０００"`}

var malformedJSON = []string{`{`, `}`, `{"a":}`, `{"a" 1}`, `[1,2`, `{"x":1,}`, `nul`, `tru`, `"unterminated`,
	`{'single':1}`, `{"a":01}`, `{"a":.5}`, `{"a":NaN}`, "\xef\xbb\xbf{}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":1}}`,
	`{"a":1}{"a":1}`, `/* comment */ {}`, `{"a":"` + "\x01" + `"}`, "{\"a\":\"tab\there\"}", `{"":1}`, ` `, "\x00"}

// badStrings are JSON string contents (between the quotes, as sent) that must never be stored:
// raw invalid UTF-8, NUL, lone surrogates, control characters.
var badStrings = []string{"\xff\xfe", "a\xc3\x28b", "\xed\xa0\x80", "\xc0\xaf", `\u0000`, `a\u0000b`, `\ud800`, `\udc00`,
	`\ud800\u0041`, `\ud800x`, `\udbff\udbff`, `\u0001`, `\u001f`, `\u007f`, `\u2028`, `\ud83d\ude00`, `\\u0000`,
	"\xe2\x80\xae", strings.Repeat("x", 100_000), strings.Repeat(`\u0000`, 1000)}

var badIdempotencyKeys = []string{"키-한글", strings.Repeat("k", 256), strings.Repeat("k", 100_000), "\xff\xfe", "a\tb",
	" spaced ", "\x80", "\x00", "\x01", "k\x7f"}

var badContentTypes = []string{"text/plain", "application/xml", "application/json; charset=utf-16", ";;;", "application/",
	"/json", "application/json; =", "multipart/form-data; boundary=", strings.Repeat("a", 10_000),
	"application/problem+json", "\xff\xfe", "application/json;;", "APPLICATION/JSON", "application/json\x00"}

func badAuthorizations(key string) []string {
	return []string{"Bearer", "Bearer ", "Bearer " + key + "x", "Bearer  " + key, "Basic ", "Basic ====",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("\xff:")), "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+key)),
		"Digest x", strings.Repeat("A", 100_000), "bearer " + key, "\xff", "Bearer " + key + "\x00", "Bearer \x01"}
}

// fuzzReq is a request of one route being made bad: the path, query and method parts are used
// when the route's valid request is built, edits change its body and headers afterwards.
type fuzzReq struct {
	route    httpapi.Route
	override map[string]string // path variable → value, as sent
	suffix   string            // after the path of a route without variables
	query    []string
	method   string
	edits    []func(*rawRequest)
	what     []string
}

// mutation is one kind of bad input. apply draws every random choice from rng when it runs, so
// a seed always makes the same requests.
type mutation struct {
	name  string
	apply func(rng *rand.Rand, key string, m *fuzzReq)
}

// field picks one of the body's fields by a number drawn beforehand.
func field(fields map[string]json.RawMessage, n int) string {
	names := fieldNames(fields)
	return names[n%len(names)]
}

// bodyEdit is a mutation of the body: f gets the valid body's fields and a field picked by n.
func bodyEdit(name string, f func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, field string) string) mutation {
	return mutation{name, func(rng *rand.Rand, _ string, m *fuzzReq) {
		n, sub := rng.Int(), rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		m.edits = append(m.edits, func(r *rawRequest) {
			fields := jsonFields(r.body)
			m.what = append(m.what, f(sub, r, fields, field(fields, n)))
			r.setHeader("Content-Type", "application/json")
		})
	}}
}

func headerEdit(name string, values func(key string) []string) mutation {
	return mutation{name, func(rng *rand.Rand, key string, m *fuzzReq) {
		v := pick(rng, values(key))
		m.edits = append(m.edits, func(r *rawRequest) { r.setHeader(name, v) })
		m.what = append(m.what, name)
	}}
}

// mutations are the kinds of bad input. Every route gets each kind at least once.
var mutations = []mutation{
	{"path value", func(rng *rand.Rand, _ string, m *fuzzReq) {
		v := pick(rng, badSegments)
		if names := pathVar.FindAllStringSubmatch(m.route.Path, -1); len(names) > 0 {
			m.override[pick(rng, names)[1]] = v
		} else {
			m.suffix = pick(rng, []string{"/", ""}) + v
		}
		m.what = append(m.what, "path value")
	}},
	{"query parameter", func(rng *rand.Rand, _ string, m *fuzzReq) {
		vals := append(append([]string{}, badQueryValues...), badSegments...)
		m.query = append(m.query, pick(rng, queryParams)+"="+pick(rng, vals))
		m.what = append(m.what, "query parameter")
	}},
	{"crafted cursor", func(rng *rand.Rand, _ string, m *fuzzReq) {
		m.query = append(m.query, "cursor="+pick(rng, craftedCursors))
		m.what = append(m.what, "crafted cursor")
	}},
	{"malformed query", func(rng *rand.Rand, _ string, m *fuzzReq) {
		m.query = append(m.query, pick(rng, rawQueries))
		m.what = append(m.what, "malformed query")
	}},
	bodyEdit("truncated body", func(rng *rand.Rand, r *rawRequest, _ map[string]json.RawMessage, _ string) string {
		if len(r.body) < 2 {
			r.body = []byte(pick(rng, malformedJSON))
			return "malformed JSON"
		}
		r.body = r.body[:1+rng.IntN(len(r.body)-1)]
		return "truncated body"
	}),
	bodyEdit("malformed JSON", func(rng *rand.Rand, r *rawRequest, _ map[string]json.RawMessage, _ string) string {
		r.body = []byte(pick(rng, malformedJSON))
		return "malformed JSON"
	}),
	bodyEdit("wrong type", func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, f string) string {
		r.body = withField(fields, f, pick(rng, wrongJSON))
		return "wrong type in " + f
	}),
	bodyEdit("wrong top-level value", func(rng *rand.Rand, r *rawRequest, _ map[string]json.RawMessage, _ string) string {
		r.body = []byte(pick(rng, []string{`null`, `[]`, `[{}]`, `123`, `"s"`, `true`, `{}`, string(r.body) + string(r.body), ``, ` `}))
		return "wrong top-level value"
	}),
	bodyEdit("unknown field", func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, _ string) string {
		fields[pick(rng, []string{"unexpected", "OrderName", "orderid", "merchantId", "__proto__"})] = json.RawMessage(pick(rng, wrongJSON))
		r.body = withField(fields, "", "")
		return "unknown field"
	}),
	bodyEdit("body over 1 MiB", func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, f string) string {
		r.body = withField(fields, f, `"`+strings.Repeat("x", httpapi.MaxBodyBytes+rng.IntN(4096))+`"`)
		return "body over 1 MiB"
	}),
	bodyEdit("huge string", func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, f string) string {
		r.body = withField(fields, f, `"`+strings.Repeat(pick(rng, []string{"x", "가", `\u00e9`}), 100_000)+`"`)
		return "100k characters in " + f
	}),
	bodyEdit("huge number", func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, f string) string {
		r.body = withField(fields, f, pick(rng, []string{`1e400`, `-1e400`, `99999999999999999999999`, `1e-400`,
			`"99999999999999999999999"`, `"1e400"`, strings.Repeat("9", 10_000), `"` + strings.Repeat("9", 10_000) + `"`}))
		return "huge number in " + f
	}),
	bodyEdit("deep nesting", func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, f string) string {
		depth := pick(rng, []int{100, 1000, 10_001, 100_000})
		open, close := "[", "]"
		if rng.IntN(2) == 0 {
			open, close = `{"a":`, "}"
		}
		r.body = withField(fields, f, strings.Repeat(open, depth)+"1"+strings.Repeat(close, depth))
		return fmt.Sprintf("nesting %d deep in %s", depth, f)
	}),
	bodyEdit("bad text", func(rng *rand.Rand, r *rawRequest, fields map[string]json.RawMessage, f string) string {
		r.body = withField(fields, f, `"`+pick(rng, badStrings)+`"`)
		return "bad text in " + f
	}),
	headerEdit("Idempotency-Key", func(string) []string { return badIdempotencyKeys }),
	headerEdit("Content-Type", func(string) []string { return badContentTypes }),
	headerEdit("Authorization", badAuthorizations),
	{"method", func(rng *rand.Rand, _ string, m *fuzzReq) {
		m.method = pick(rng, []string{"PATCH", "DELETE", "OPTIONS", "PUT", "GET", "POST"})
		m.what = append(m.what, "method "+m.method)
	}},
}

// fuzzGen makes the bad requests of TestSeededFuzzOfEveryRoute.
type fuzzGen struct {
	ft  *fuzzTarget
	rng *rand.Rand
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// request makes the n-th bad request of route i: mutation n first (so that every route gets
// every kind), then up to two more drawn at random. The extra ones never change the method,
// which would hide the others behind a 405.
func (g *fuzzGen) request(i, n int) (rawRequest, string) {
	m := &fuzzReq{route: g.ft.routes[i], override: map[string]string{}, method: g.ft.routes[i].Method}
	first := mutations[n%len(mutations)]
	if n >= len(mutations) {
		first = pick(g.rng, mutations)
	}
	first.apply(g.rng, g.ft.env.APIKey, m)
	for extra := g.rng.IntN(3); extra > 0; extra-- {
		pick(g.rng, mutations[:len(mutations)-1]).apply(g.rng, g.ft.env.APIKey, m)
	}
	req := g.ft.request(i, m.override)
	req.method = m.method
	req.target += m.suffix
	if len(m.query) > 0 {
		req.target += "?" + strings.Join(m.query, "&")
	}
	req.target = framingSafe(req.target)
	for _, e := range m.edits {
		e(&req)
	}
	return req, m.route.Method + " " + m.route.Path + " [" + strings.Join(m.what, ", ") + "]"
}

// framingSafe encodes what would end the request line (a space, CR, LF); every other byte is
// sent raw, for the server to accept or refuse.
func framingSafe(target string) string {
	return strings.NewReplacer(" ", "%20", "\r", "%0D", "\n", "%0A").Replace(target)
}

// jsonFields returns a valid body's object, or a one-field object when the route has no body.
func jsonFields(body []byte) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if json.Unmarshal(body, &m) != nil || len(m) == 0 {
		m = map[string]json.RawMessage{"orderName": json.RawMessage(`"x"`)}
	}
	return m
}

// withField re-encodes the object with key's value replaced by raw, as sent.
func withField(m map[string]json.RawMessage, key, raw string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for k, v := range m {
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:", k)
		if k == key {
			b.WriteString(raw)
		} else {
			b.Write(v)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// fieldNames is sorted: map order is random, and a seed must always pick the same field.
func fieldNames(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }

// fuzzSeed is the seed of TestSeededFuzzOfEveryRoute; FUZZ_SEED replaces it to replay a run.
func fuzzSeed(t *testing.T) uint64 {
	seed := uint64(20261201)
	if s := os.Getenv("FUZZ_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FUZZ_SEED=%q: %v", s, err)
		}
		seed = n
	}
	return seed
}

// requestsPerRoute makes a few hundred requests over all routes.
const requestsPerRoute = 24

// TestSeededFuzzOfEveryRoute sends malformed requests to every route with valid credentials,
// so they get past authentication, one at a time: never a 5xx, every 4xx in the API's error
// shape (unless net/http refused the bytes before any handler), and nothing appended by a
// refused request.
func TestSeededFuzzOfEveryRoute(t *testing.T) {
	seed := fuzzSeed(t)
	t.Logf("seed %d (FUZZ_SEED=%d replays it)", seed, seed)
	ft := newFuzzTarget(t)
	g := &fuzzGen{ft: ft, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
	statuses := map[int]int{}
	sent, findings := 0, 0
	for i := range ft.routes {
		for n := range requestsPerRoute {
			req, what := g.request(i, n)
			status, ok := ft.check(t, req, fmt.Sprintf("seed %d, route %d request %d: %s", seed, i, n, what))
			statuses[status]++
			sent++
			if !ok {
				if findings++; findings == 20 {
					t.Fatalf("stopping at 20 findings (seed %d)", seed)
				}
			}
		}
	}
	t.Logf("%d requests over %d routes; statuses %v", sent, len(ft.routes), statuses)
}

// FuzzAPIRequest sends a request to the route numbered route (modulo the number of routes)
// with the fuzzer's body, a path value (the route's last, or a suffix for a route without
// one) and a raw query. The seed corpus covers each kind of bad input; `go test` runs it.
func FuzzAPIRequest(f *testing.F) {
	ft := newFuzzTarget(f)
	index := map[string]uint8{}
	for i, r := range ft.routes {
		index[r.Method+" "+r.Path] = uint8(i)
	}
	checkout, confirm, cancel := index["POST /api/v1/payments/checkout"], index["POST /api/v1/payments/confirm"], index["POST /api/v1/payments/{orderId}/cancel"]
	list, payment, postings := index["GET /api/v1/payments"], index["GET /api/v1/payments/{orderId}"], index["GET /api/v1/ledger/accounts/{account}/postings"]
	wallet, trial, commission := index["GET /api/v1/wallets/{sellerId}"], index["GET /api/v1/ledger/trial-balance"], index["PUT /admin/v1/merchants/{merchantId}/commission"]
	for i := range ft.routes { // every route as it is
		f.Add(uint8(i), []byte(ft.bodies[ft.routes[i].Method+" "+ft.routes[i].Path]), "", "")
	}
	for _, c := range []struct {
		route       uint8
		body        string
		path, query string
	}{
		{checkout, `{"orderName":`, "", ""},                                                                       // malformed JSON
		{checkout, `{"orderName":5,"buyerId":[],"lines":{}}`, "", ""},                                             // wrong types
		{checkout, `[{"orderName":"n"}]`, "", ""},                                                                 // an array for the object
		{checkout, `null`, "", ""},                                                                                // null
		{checkout, `{"orderName":"n","buyerId":"b","lines":[],"total":1}`, "", ""},                                // unknown field
		{checkout, `{"orderName":"` + strings.Repeat("x", 100_000) + `"}`, "", ""},                                // a 100k string
		{checkout, `{"orderName":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, "", ""},                   // a body over 1 MiB
		{checkout, `{"lines":[{"amount":1e400}]}`, "", ""},                                                        // a number out of range
		{checkout, `{"lines":[{"amount":99999999999999999999999}]}`, "", ""},                                      // a number past int64
		{checkout, `{"lines":` + strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001) + `}`, "", ""},         // deep nesting
		{checkout, "{\"orderName\":\"\xff\xfe\"}", "", ""},                                                        // invalid UTF-8 in a string
		{checkout, `{"orderName":"a\u0000b"}`, "", ""},                                                            // NUL escaped
		{checkout, `{"orderName":"\ud800"}`, "", ""},                                                              // a lone surrogate
		{confirm, `{"paymentKey":"k","orderId":"\udc00abcdef","amount":"1"}`, "", ""},                             // a lone low surrogate
		{confirm, `{"paymentKey":"` + strings.Repeat("k", 1_000) + `","orderId":"order-1","amount":"1"}`, "", ""}, // a paymentKey too long
		{cancel, `{"amount":"1e400","reason":"r"}`, "", ""},                                                       // an amount out of range
		{cancel, `{"reason":"r"}`, "%00", ""},                                                                     // NUL in the path
		{cancel, `{"reason":"r"}`, "%ff%fe", ""},                                                                  // invalid UTF-8 in the path
		{payment, "", "%01%1f", ""},                                                                               // control characters in the path
		{payment, "", strings.Repeat("a", 100_000), ""},                                                           // a very long id
		{payment, "", "\xff\xfe", ""},                                                                             // raw invalid UTF-8 in the path
		{payment, "", "\x00", ""},                                                                                 // a raw NUL: net/http refuses it
		{postings, "", "seller_payable:%00", "limit=%00"},                                                         // NUL in the path and the query
		{postings, "", "", "cursor=-1&limit=99999999999999999999"},                                                // numbers out of range
		{list, "", "", "cursor=%ff%fe"},                                                                           // invalid UTF-8 in a query value
		{list, "", "", "status=%00&needsReview=maybe&limit=1e400"},                                                // every filter wrong
		{list, "", "", "%zz"},                                                                                     // a malformed query
		{trial, "", "", "asOf=0000-01-01T00:00:00Z&currency=%ff"},                                                 // the first instant and bad text
		{trial, "", "", "asOf=9999-12-31T23:59:59.999999999Z"},                                                    // the last one
		{wallet, "", "%ec%a3%bc%eb%ac%b8", "currency=" + strings.Repeat("X", 100_000)},                            // non-ASCII id, huge value
		{commission, `{"rate":99999999999999999999999}`, "", ""},                                                  // admin: a number for a string
		{commission, `{"rate":"0.1"}`, "%00", ""},                                                                 // admin: NUL in the merchant id
	} {
		f.Add(c.route, []byte(c.body), c.path, c.query)
	}
	// Regressions: a cursor whose order id held NUL or invalid UTF-8 was passed to PostgreSQL,
	// which failed the query: 500 instead of 400. Every crafted cursor stays in the corpus.
	for _, c := range craftedCursors {
		f.Add(list, []byte(nil), "", "cursor="+c)
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte, path, query string) {
		i := int(route) % len(ft.routes)
		override := map[string]string{}
		suffix := ""
		if names := pathVar.FindAllStringSubmatch(ft.routes[i].Path, -1); len(names) > 0 {
			if path != "" {
				override[names[len(names)-1][1]] = path
			}
		} else {
			suffix = path
		}
		req := ft.request(i, override)
		req.target += suffix
		if query != "" {
			req.target += "?" + query
		}
		req.target = framingSafe(req.target)
		req.body = body
		req.setHeader("Content-Type", "application/json")
		ft.check(t, req, fmt.Sprintf("route %d (%s %s)", i, ft.routes[i].Method, ft.routes[i].Path))
	})
}
