package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/queries"
)

// TestLedgerRoutes: merchant m's order (10000 for seller s1, sold 2025-01-01, paid out
// 2025-01-03) and another merchant's order for a seller also called s1. The API acts for m and
// shows m's books only, at the rows' own dates, with every time in KST.
func TestLedgerRoutes(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	at := time.Date(2025, 1, 1, 3, 0, 0, 0, time.UTC) // 12:00 KST
	appendOrder := func(m domain.MerchantID, id domain.OrderID, amount int64, settle bool) {
		h := func(dt time.Duration) domain.EventHeader {
			return domain.EventHeader{OrderID: id, MerchantID: m, At: at.Add(dt)}
		}
		amt := decimal.NewFromInt(amount)
		events := []domain.Event{
			domain.CheckoutCreated{EventHeader: h(0), BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: amt,
				Lines: []domain.Line{{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: amt}}, ExpiresAt: at.Add(time.Hour)},
			domain.PaymentApproved{EventHeader: h(time.Minute), PaymentKey: "pk", ApprovedAt: at.Add(time.Minute), TotalAmount: amt, LastTransactionKey: "tx-" + string(id)},
		}
		if settle {
			events = append(events, domain.SettlementRecorded{EventHeader: h(24 * time.Hour), TransactionKey: "tx-" + string(id),
				SoldDate: "2025-01-01", PaidOutDate: "2025-01-03", Amount: amt, Fee: decimal.NewFromInt(300), PayOutAmount: amt.Sub(decimal.NewFromInt(300))})
		}
		var data []eventstore.EventData
		for _, e := range events {
			b, _ := domain.MarshalEvent(e)
			data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b, Metadata: eventstore.Metadata{Actor: "system"}})
		}
		if _, err := store.Append(ctx, domain.StreamName(id), eventstore.NoStream, data); err != nil {
			t.Fatal(err)
		}
	}
	appendOrder("m", "order-http-1", 10000, true)
	appendOrder("other", "order-other-1", 5000, true)
	// ReadAll holds events back while any transaction on the server is open: wait for all six.
	var evs []eventstore.RecordedEvent
	for deadline := time.Now().Add(15 * time.Second); len(evs) < 6; time.Sleep(5 * time.Millisecond) {
		var err error
		if evs, err = store.ReadAll(ctx, eventstore.Start, 100); err != nil || time.Now().After(deadline) {
			t.Fatalf("read %d events: %v", len(evs), err)
		}
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, e := range evs {
			if err := (projections.Ledger{}).Apply(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(nil, nil, pool.Ping, slog.New(slog.DiscardHandler), httpapi.AuthConfig{Keys: anyKey{"m"}}).WithLedger(queries.NewLedger(pool)))
	t.Cleanup(srv.Close)
	apiKeys.Store(srv.URL, "any")
	base := srv.URL + "/api/v1"

	// Now: settled and paid out. Debits: approval 10000, settlement 9700 + 300, payout 9700.
	code, body := call(t, http.MethodGet, base+"/ledger/trial-balance", "")
	if code != 200 || body["currency"] != "KRW" || body["totalDebits"] != "29700" || body["totalCredits"] != "29700" {
		t.Fatalf("trial balance: %d %v", code, body)
	}
	for _, a := range body["accounts"].([]any) {
		a := a.(map[string]any)
		want := map[string]string{"bank:operating": "9700", "psp_fees:toss": "300", "psp_receivable:toss": "0", "psp_payout_due:toss": "0", "seller_payable:s1": "-10000"}[a["account"].(string)]
		if a["balance"] != want || a["type"] == "" {
			t.Errorf("account %v: want balance %s", a, want)
		}
	}
	// In the past: approved, not settled. asOf may be given in any offset; answers are in KST.
	for _, past := range []string{"2025-01-01T04:00:00Z", "2025-01-01T13:00:00+09:00"} {
		code, body = call(t, http.MethodGet, base+"/ledger/trial-balance?asOf="+url.QueryEscape(past), "")
		if code != 200 || body["totalDebits"] != "10000" || len(body["accounts"].([]any)) != 2 || body["asOf"] != "2025-01-01T13:00:00+09:00" {
			t.Fatalf("trial balance asOf %s: %d %v", past, code, body)
		}
	}
	past := url.QueryEscape("2025-01-01T13:00:00+09:00")
	code, body = call(t, http.MethodGet, base+"/ledger/accounts?asOf="+past, "")
	if code != 200 || len(body["accounts"].([]any)) != 2 || body["asOf"] != "2025-01-01T13:00:00+09:00" {
		t.Fatalf("accounts asOf: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/wallets/s1?asOf="+past, "")
	if code != 200 || body["pending"] != "10000" || body["available"] != "0" || body["sellerId"] != "s1" || body["currency"] != "KRW" || body["asOf"] != "2025-01-01T13:00:00+09:00" {
		t.Fatalf("wallet asOf: %d %v", code, body)
	}
	// Settled (end of the sold day) but not paid out: Toss owes it, the bank does not have it,
	// and the seller's money is still pending.
	between := url.QueryEscape("2025-01-02T23:59:59.999999+09:00")
	code, body = call(t, http.MethodGet, base+"/ledger/accounts?asOf="+between, "")
	balances := map[string]any{}
	for _, a := range body["accounts"].([]any) {
		balances[a.(map[string]any)["account"].(string)] = a.(map[string]any)["balance"]
	}
	if code != 200 || balances["psp_payout_due:toss"] != "9700" || balances["bank:operating"] != nil || balances["psp_receivable:toss"] != "0" {
		t.Fatalf("accounts between settlement and payout: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/wallets/s1?asOf="+between, "")
	if code != 200 || body["pending"] != "10000" || body["available"] != "0" {
		t.Fatalf("wallet before the payout day: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/wallets/s1?asOf="+url.QueryEscape("2025-01-03T00:00:00+09:00"), "")
	if code != 200 || body["pending"] != "0" || body["available"] != "10000" {
		t.Fatalf("wallet on the payout day: %d %v", code, body)
	}
	// Now: m's s1 only, not the other merchant's s1.
	code, body = call(t, http.MethodGet, base+"/wallets/s1", "")
	if code != 200 || body["pending"] != "0" || body["available"] != "10000" {
		t.Fatalf("wallet now: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/wallets/s1/movements", "")
	if mv := body["movements"].([]any); code != 200 || len(mv) != 3 {
		t.Fatalf("movements: %d %v", code, body)
	}
	for _, mv := range body["movements"].([]any) {
		mv := mv.(map[string]any)
		if mv["orderId"] != "order-http-1" {
			t.Fatalf("another merchant's movement: %v", mv)
		}
		if mv["kind"] == "payout" && mv["occurredAt"] != "2025-01-03T00:00:00+09:00" {
			t.Fatalf("payout movement %v: want the start of the payout day in KST", mv)
		}
	}

	// Newest first, a page at a time: the payout's two movements (one moment), then the approval.
	movements := base + "/wallets/s1/movements"
	code, body = call(t, http.MethodGet, movements+"?limit=2", "")
	if code != 200 || len(body["movements"].([]any)) != 2 || body["nextCursor"] == nil || body["sellerId"] != "s1" {
		t.Fatalf("movements page 1: %d %v", code, body)
	}
	for _, mv := range body["movements"].([]any) {
		if mv.(map[string]any)["kind"] != "payout" {
			t.Fatalf("movements page 1: %v, want the payout first", body)
		}
	}
	pageAsOf, mvCursor := body["asOf"].(string), body["nextCursor"].(string)
	// Without asOf the next page is as of the first's; with it, the same moment is accepted.
	for _, q := range []string{"", "&asOf=" + url.QueryEscape(pageAsOf)} {
		code, body = call(t, http.MethodGet, movements+"?limit=2&cursor="+url.QueryEscape(mvCursor)+q, "")
		mv := body["movements"].([]any)
		if code != 200 || len(mv) != 1 || mv[0].(map[string]any)["kind"] != "approval" || body["nextCursor"] != nil || body["asOf"] != pageAsOf {
			t.Fatalf("movements page 2 (%q): %d %v", q, code, body)
		}
	}
	mvFields := cursorFields(t, mvCursor)
	for name, u := range map[string]string{
		"limit 0":            movements + "?limit=0",
		"limit 501":          movements + "?limit=501",
		"limit x":            movements + "?limit=x",
		"an empty cursor":    movements + "?cursor=",
		"junk":               movements + "?cursor=abc",
		"another seller's":   base + "/wallets/s2/movements?cursor=" + url.QueryEscape(mvCursor),
		"another asOf":       movements + "?asOf=" + url.QueryEscape("2025-01-02T00:00:00+09:00") + "&cursor=" + url.QueryEscape(mvCursor),
		"another currency":   movements + "?currency=USD&cursor=" + url.QueryEscape(mvCursor),
		"edited to s2":       base + "/wallets/s2/movements?cursor=" + url.QueryEscape(editedCursor(t, mvCursor, "s1", "s2")),
		"a postings cursor":  movements + "?cursor=" + url.QueryEscape(makeCursor("psp_receivable:toss", mvFields[4], mvFields[5])),
		"an asOf of no year": movements + "?cursor=" + url.QueryEscape(makeCursor(append(append([]string{}, mvFields[:3]...), "-9000000000000000000", mvFields[4], mvFields[5])...)),
	} {
		code, body = call(t, http.MethodGet, u, "")
		if code != 400 || body["error"].(map[string]any)["code"] != "INVALID_REQUEST" {
			t.Errorf("movements, %s: %d %v, want 400 INVALID_REQUEST", name, code, body)
		}
	}
	if code, body = call(t, http.MethodGet, movements+"?limit=500", ""); code != 200 || len(body["movements"].([]any)) != 3 {
		t.Fatalf("movements, limit 500: %d %v", code, body)
	}

	// Postings, oldest first, one per page; m's only.
	postings := base + "/ledger/accounts/psp_receivable:toss/postings"
	code, body = call(t, http.MethodGet, postings+"?limit=1", "")
	if code != 200 || len(body["postings"].([]any)) != 1 || body["nextCursor"] == nil {
		t.Fatalf("postings page 1: %d %v", code, body)
	}
	first := body["postings"].([]any)[0].(map[string]any)
	cursor := body["nextCursor"].(string)
	code, body = call(t, http.MethodGet, postings+"?limit=1&cursor="+cursor, "")
	if code != 200 || len(body["postings"].([]any)) != 1 || body["nextCursor"] != nil {
		t.Fatalf("postings page 2: %d %v", code, body)
	}
	second := body["postings"].([]any)[0].(map[string]any)
	if first["orderId"] != "order-http-1" || first["occurredAt"] != "2025-01-01T12:01:00+09:00" || first["debit"] != "10000" ||
		second["orderId"] != "order-http-1" || second["occurredAt"] != "2025-01-01T23:59:59.999999+09:00" || second["credit"] != "10000" || second["kind"] != "settlement" {
		t.Fatalf("postings %v then %v", first, second)
	}
	code, body = call(t, http.MethodGet, base+"/ledger/accounts/seller_payable:nobody/postings", "")
	if code != 200 || len(body["postings"].([]any)) != 0 {
		t.Fatalf("unused account: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/ledger/accounts/cash/postings", "")
	if code != 400 {
		t.Fatalf("not a ledger account: %d %v", code, body)
	}

	// Cursors the API did not return are refused, never read as "from the start".
	id := int64(first["id"].(float64))
	firstAt, err := time.Parse(time.RFC3339Nano, first["occurredAt"].(string))
	if err != nil {
		t.Fatal(err)
	}
	fields := []string{"psp_receivable:toss", strconv.FormatInt(firstAt.UnixMicro(), 10), strconv.FormatInt(id, 10)}
	if made := makeCursor(fields...); made != cursor {
		t.Fatalf("the test's cursor maker gives %q for the API's %q: keep makeCursor in step with queries/cursor.go", made, cursor)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(cursor)
	raw[len(raw)-1] ^= 0x01
	garbage := map[string]string{
		"a bare posting id":         "0",
		"a number":                  "42",
		"not a cursor":              "abc",
		"empty":                     "",
		"valid base64 of junk":      base64.RawURLEncoding.EncodeToString([]byte("12345|psp_receivable:toss")),
		"checksum flipped":          base64.RawURLEncoding.EncodeToString(raw),
		"an extra field":            makeCursor(append(fields, "1")...),
		"a field missing":           makeCursor(fields[:2]...),
		"another account's":         makeCursor("bank:operating", fields[1], fields[2]),
		"an id of zero":             makeCursor(fields[0], fields[1], "0"),
		"a time PostgreSQL has not": makeCursor(fields[0], "-300000000000000000", fields[2]),
	}
	for name, c := range garbage {
		code, body = call(t, http.MethodGet, postings+"?limit=1&cursor="+url.QueryEscape(c), "")
		if code != 400 || body["error"].(map[string]any)["code"] != "INVALID_REQUEST" {
			t.Errorf("cursor %s (%q): %d %v, want 400 INVALID_REQUEST", name, c, code, body)
		}
	}

	for _, u := range []string{"/ledger/trial-balance?asOf=yesterday", "/ledger/accounts?asOf=2026-11-21", "/wallets/s1?asOf=x"} {
		code, body = call(t, http.MethodGet, base+u, "")
		if code != 400 || body["error"].(map[string]any)["code"] != "INVALID_REQUEST" {
			t.Fatalf("%s: %d %v", u, code, body)
		}
	}
}

// anyKey accepts every key as merchant m with every scope.
type anyKey struct{ m domain.MerchantID }

func (k anyKey) Authenticate(context.Context, string) (merchants.Principal, error) {
	return merchants.Principal{Merchant: k.m, KeyID: "k", Scopes: domain.AllScopes}, nil
}

// TestLedgerRoutesWithoutAMerchantAnswerNothing: a request that acts for no merchant gets no
// books at all (a 500: the server was wired wrong), never every merchant's.
func TestLedgerRoutesWithoutAMerchantAnswerNothing(t *testing.T) {
	pool := pgtest.NewPool(t)
	srv := httptest.NewServer(httpapi.New(nil, nil, pool.Ping, slog.New(slog.DiscardHandler), httpapi.AuthConfig{Keys: anyKey{""}}).WithLedger(queries.NewLedger(pool)))
	t.Cleanup(srv.Close)
	apiKeys.Store(srv.URL, "any")
	for _, u := range []string{"/ledger/trial-balance", "/ledger/accounts", "/ledger/accounts/bank:operating/postings", "/wallets/s1", "/wallets/s1/movements"} {
		code, body := call(t, http.MethodGet, srv.URL+"/api/v1"+u, "")
		if code != http.StatusInternalServerError {
			t.Errorf("%s without a merchant: %d %v", u, code, body)
		}
	}
}

// makeCursor builds a cursor the way queries/cursor.go does (version, length-prefixed fields,
// 6 bytes of SHA-256, base64url), so that the test can make well-formed cursors the API never
// returned. TestLedgerRoutes checks that it reproduces a real cursor exactly.
func makeCursor(fields ...string) string {
	payload := []byte{1}
	for _, f := range fields {
		payload = binary.AppendUvarint(payload, uint64(len(f)))
		payload = append(payload, f...)
	}
	h := sha256.New()
	h.Write([]byte("paymentledger/queries cursor\x00"))
	h.Write(payload)
	return base64.RawURLEncoding.EncodeToString(append(payload, h.Sum(nil)[:6]...))
}

// cursorFields reads the fields of a cursor the API returned (makeCursor's inverse), so that the
// test can forge one that differs in a single field.
func cursorFields(t *testing.T, c string) []string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) < 7 {
		t.Fatalf("cursor %q: %v", c, err)
	}
	rest := raw[1 : len(raw)-6]
	var fields []string
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			t.Fatalf("cursor %q is not framed as queries/cursor.go frames it", c)
		}
		fields = append(fields, string(rest[k:k+int(n)]))
		rest = rest[k+int(n):]
	}
	return fields
}

// editedCursor is c with from replaced by to and its checksum left as it was.
func editedCursor(t *testing.T, c, from, to string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.Contains(string(raw), from) {
		t.Fatalf("cursor %q holds no %q: %v", c, from, err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), from, to, 1)))
}
