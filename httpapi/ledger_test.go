package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

func TestLedgerRoutes(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := eventstore.NewPostgres(pool)
	at := time.Date(2025, 1, 1, 3, 0, 0, 0, time.UTC)
	h := func(dt time.Duration) domain.EventHeader {
		return domain.EventHeader{OrderID: "order-http-1", MerchantID: "m", At: at.Add(dt)}
	}
	amt := decimal.NewFromInt(10000)
	var data []eventstore.EventData
	for _, e := range []domain.Event{
		domain.CheckoutCreated{EventHeader: h(0), BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: amt,
			Lines: []domain.Line{{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: amt}}, ExpiresAt: at.Add(time.Hour)},
		domain.PaymentApproved{EventHeader: h(time.Minute), PaymentKey: "pk", ApprovedAt: at.Add(time.Minute), TotalAmount: amt, LastTransactionKey: "tx1"},
		domain.SettlementRecorded{EventHeader: h(24 * time.Hour), TransactionKey: "tx1", Amount: amt, Fee: decimal.NewFromInt(300), PayOutAmount: decimal.NewFromInt(9700)},
	} {
		b, _ := domain.MarshalEvent(e)
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: 1, Data: b, Metadata: eventstore.Metadata{Actor: "system"}})
	}
	if _, err := store.Append(ctx, domain.StreamName("order-http-1"), eventstore.NoStream, data); err != nil {
		t.Fatal(err)
	}
	// ReadAll holds events back while any transaction on the server is open: wait for all three.
	var evs []eventstore.RecordedEvent
	for deadline := time.Now().Add(15 * time.Second); len(evs) < 3; time.Sleep(5 * time.Millisecond) {
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
	srv := httptest.NewServer(httpapi.New(nil, nil, pool.Ping, slog.New(slog.DiscardHandler), httpapi.AuthConfig{Keys: anyKey{}}).WithLedger(queries.NewLedger(pool)))
	t.Cleanup(srv.Close)
	apiKeys.Store(srv.URL, "any")
	base := srv.URL + "/api/v1"

	// Now: settled.
	code, body := call(t, http.MethodGet, base+"/ledger/trial-balance", "")
	if code != 200 || body["currency"] != "KRW" || body["totalDebits"] != "20000" || body["totalCredits"] != "20000" {
		t.Fatalf("trial balance: %d %v", code, body)
	}
	for _, a := range body["accounts"].([]any) {
		a := a.(map[string]any)
		want := map[string]string{"bank:operating": "9700", "psp_fees:toss": "300", "psp_receivable:toss": "0", "seller_payable:s1": "-10000"}[a["account"].(string)]
		if a["balance"] != want || a["type"] == "" {
			t.Errorf("account %v: want balance %s", a, want)
		}
	}
	// In the past: approved, not settled.
	past := "2025-01-01T04:00:00Z"
	code, body = call(t, http.MethodGet, base+"/ledger/trial-balance?asOf="+past, "")
	if code != 200 || body["totalDebits"] != "10000" || len(body["accounts"].([]any)) != 2 {
		t.Fatalf("trial balance asOf %s: %d %v", past, code, body)
	}
	code, body = call(t, http.MethodGet, base+"/ledger/accounts?asOf="+past, "")
	if code != 200 || len(body["accounts"].([]any)) != 2 {
		t.Fatalf("accounts asOf: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/wallets/s1?asOf="+past, "")
	if code != 200 || body["pending"] != "10000" || body["available"] != "0" || body["sellerId"] != "s1" || body["currency"] != "KRW" || body["asOf"] != past {
		t.Fatalf("wallet asOf: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/wallets/s1", "")
	if code != 200 || body["pending"] != "0" || body["available"] != "10000" {
		t.Fatalf("wallet now: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/ledger/accounts/psp_receivable:toss/postings?limit=1", "")
	if code != 200 || len(body["postings"].([]any)) != 1 || body["nextCursor"] == nil {
		t.Fatalf("postings page 1: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/ledger/accounts/psp_receivable:toss/postings?limit=1&cursor="+body["nextCursor"].(string), "")
	if code != 200 || len(body["postings"].([]any)) != 1 || body["nextCursor"] != nil || body["postings"].([]any)[0].(map[string]any)["credit"] != "10000" {
		t.Fatalf("postings page 2: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/ledger/accounts/seller_payable:nobody/postings", "")
	if code != 200 || len(body["postings"].([]any)) != 0 {
		t.Fatalf("unused account: %d %v", code, body)
	}
	code, body = call(t, http.MethodGet, base+"/ledger/accounts/cash/postings", "")
	if code != 400 {
		t.Fatalf("not a ledger account: %d %v", code, body)
	}
	for _, u := range []string{"/ledger/trial-balance?asOf=yesterday", "/ledger/accounts?asOf=2026-11-21", "/wallets/s1?asOf=x"} {
		code, body = call(t, http.MethodGet, base+u, "")
		if code != 400 || body["error"].(map[string]any)["code"] != "INVALID_REQUEST" {
			t.Fatalf("%s: %d %v", u, code, body)
		}
	}
}

// anyKey accepts every key as the ledger's merchant with every scope.
type anyKey struct{}

func (anyKey) Authenticate(context.Context, string) (merchants.Principal, error) {
	return merchants.Principal{Merchant: "m-ledger", KeyID: "k", Scopes: domain.AllScopes}, nil
}
