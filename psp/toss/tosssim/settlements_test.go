package tosssim_test

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
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
)

const settleKey = "test_sk_settlements"

var kstZone = time.FixedZone("KST", 9*60*60)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type settleEnv struct {
	t      *testing.T
	sim    *tosssim.Simulator
	clock  *clock
	url    string
	client *toss.Client
}

func newSettleEnv(t *testing.T, cfg tosssim.SettlementConfig) *settleEnv {
	t.Helper()
	c := &clock{t: time.Date(2025, 11, 21, 10, 20, 47, 0, kstZone)}
	sim := tosssim.New(tosssim.Config{SecretKeys: []string{settleKey}, Now: c.Now, Settlement: cfg})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client, err := toss.New(srv.URL, settleKey)
	if err != nil {
		t.Fatal(err)
	}
	return &settleEnv{t: t, sim: sim, clock: c, url: srv.URL, client: client}
}

// approve opens a session and confirms it at the simulator's current time.
func (e *settleEnv) approve(orderID string, amount int64) *toss.Payment {
	e.t.Helper()
	key, err := e.sim.CreateSession(orderID, decimal.NewFromInt(amount), "order "+orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.client.Confirm(context.Background(), toss.ConfirmRequest{PaymentKey: key, OrderID: orderID, Amount: decimal.NewFromInt(amount)}, orderID+":confirm")
	if err != nil {
		e.t.Fatalf("confirm %s: %v", orderID, err)
	}
	return p
}

func (e *settleEnv) list(q toss.SettlementsQuery) []toss.Settlement {
	e.t.Helper()
	rows, err := e.client.ListSettlements(context.Background(), q)
	if err != nil {
		e.t.Fatalf("list settlements %+v: %v", q, err)
	}
	return rows
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func wantAmounts(t *testing.T, r toss.Settlement, amount, supply, vat, fee, payout string) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want decimal.Decimal
	}{
		{"amount", r.Amount, dec(amount)}, {"supplyAmount", r.SupplyAmount, dec(supply)}, {"vat", r.VAT, dec(vat)},
		{"fee", r.Fee, dec(fee)}, {"payOutAmount", r.PayOutAmount, dec(payout)},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s %s: %s, want %s", r.TransactionKey, c.name, c.got, c.want)
		}
	}
	if !r.SupplyAmount.Add(r.VAT).Equal(r.Fee) || !r.Amount.Sub(r.Fee).Equal(r.PayOutAmount) {
		t.Errorf("%s: supply+vat=fee and amount−fee=payout must hold: %+v", r.TransactionKey, r)
	}
	if len(r.Fees) != 1 || r.Fees[0].Type != "BASE" || !r.Fees[0].Fee.Equal(r.Fee) {
		t.Errorf("%s: fees %+v, want one BASE fee of %s", r.TransactionKey, r.Fees, r.Fee)
	}
	if !r.InterestFee.IsZero() {
		t.Errorf("%s: interestFee %s", r.TransactionKey, r.InterestFee)
	}
}

func TestSettlementsApprovalAndPartialCancel(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{})
	// 15050 × 0.03 = 451.5 → 452 (half away from zero); 45.2 → 45.
	p := e.approve("order-settle-1", 15050)
	e.clock.Advance(40 * time.Minute)
	amt := decimal.NewFromInt(1050)
	canceled, err := e.client.Cancel(context.Background(), p.PaymentKey, toss.CancelRequest{CancelReason: "부분 취소", CancelAmount: &amt}, "cancel-1")
	if err != nil {
		t.Fatal(err)
	}
	cancelTx := canceled.Cancels[0].TransactionKey

	rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})
	if len(rows) != 2 {
		t.Fatalf("%d rows, want approval and cancel: %+v", len(rows), rows)
	}
	a, c := rows[0], rows[1]
	if a.TransactionKey != p.LastTransactionKey || a.Cancel != nil || a.OrderID != "order-settle-1" || a.PaymentKey != p.PaymentKey {
		t.Errorf("approval row %+v", a)
	}
	wantAmounts(t, a, "15050", "452", "45", "497", "14553")
	// The cancel row: −1050, and −(fee of 1050): 31.5 → 32, 3.2 → 3, 35.
	if c.TransactionKey != cancelTx || c.Cancel == nil || !c.Cancel.CancelAmount.Equal(amt) || c.Cancel.TransactionKey != cancelTx {
		t.Errorf("cancel row %+v (cancel %+v), want transactionKey %s", c, c.Cancel, cancelTx)
	}
	wantAmounts(t, c, "-1050", "-32", "-3", "-35", "-1015")
	for _, r := range rows {
		if r.SoldDate != "2025-11-21" || r.PaidOutDate != "2025-11-23" || r.Currency != "KRW" || r.Method != "카드" || r.MID == "" {
			t.Errorf("row %s: soldDate %s paidOutDate %s currency %s method %s mId %q", r.TransactionKey, r.SoldDate, r.PaidOutDate, r.Currency, r.Method, r.MID)
		}
		if !r.ApprovedAt.Equal(*p.ApprovedAt) {
			t.Errorf("row %s approvedAt %s, want the payment's %s", r.TransactionKey, r.ApprovedAt, p.ApprovedAt)
		}
	}
}

func TestSettlementsWireShape(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{})
	e.approve("order-shape-1", 10000)
	status, body := rawGet(t, e.url, "/v1/settlements?startDate=2025-11-21&endDate=2025-11-21")
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("body %s: %v", body, err)
	}
	r := rows[0]
	for k, want := range map[string]string{
		"amount": "10000", "fee": "330", "supplyAmount": "300", "vat": "30", "payOutAmount": "9670",
		"interestFee": "0", "cancel": "null", "card": "null", "fees": `[{"type":"BASE","fee":330}]`,
		"soldDate": `"2025-11-21"`, "paidOutDate": `"2025-11-23"`, "currency": `"KRW"`,
	} {
		if string(r[k]) != want {
			t.Errorf("%s = %s, want %s", k, r[k], want)
		}
	}
}

func TestSettlementsSoldDateIsKSTDay(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{PayoutDays: 3})
	// 23:30 UTC on the 21st is 08:30 KST on the 22nd.
	e.clock.Set(time.Date(2025, 11, 21, 23, 30, 0, 0, time.UTC))
	e.approve("order-late-utc", 20000)
	if rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"}); len(rows) != 0 {
		t.Fatalf("the UTC day must not count: %+v", rows)
	}
	rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-22", EndDate: "2025-11-22"})
	if len(rows) != 1 || rows[0].SoldDate != "2025-11-22" || rows[0].PaidOutDate != "2025-11-25" {
		t.Fatalf("rows %+v, want one sold 2025-11-22 paid out 2025-11-25", rows)
	}
	// dateType=paidOutDate selects by the payout day instead.
	if rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-25", EndDate: "2025-11-25"}); len(rows) != 0 {
		t.Fatalf("soldDate 2025-11-25: %+v", rows)
	}
	rows = e.list(toss.SettlementsQuery{StartDate: "2025-11-25", EndDate: "2025-11-30", DateType: "paidOutDate"})
	if len(rows) != 1 || rows[0].OrderID != "order-late-utc" {
		t.Fatalf("paidOutDate rows %+v", rows)
	}
	if rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-22", EndDate: "2025-11-24", DateType: "paidOutDate"}); len(rows) != 0 {
		t.Fatalf("paidOutDate before the payout: %+v", rows)
	}
}

func TestSettlementsFeeConfig(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{FeeRate: dec("0.025"), VATRate: dec("0.1"), PayoutDays: 1})
	e.approve("order-fee-cfg", 34000) // 850 + 85 = 935
	rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	wantAmounts(t, rows[0], "34000", "850", "85", "935", "33065")
	if rows[0].PaidOutDate != "2025-11-22" {
		t.Errorf("paidOutDate %s", rows[0].PaidOutDate)
	}
}

func TestSettlementsPaging(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{})
	for i := range 5 {
		e.approve(fmt.Sprintf("order-page-%d", i), int64(1000*(i+1)))
		e.clock.Advance(time.Second)
	}
	seen := map[string]bool{}
	var sizes []int
	for page := 1; page <= 4; page++ {
		rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-20", EndDate: "2025-11-22", Page: page, Size: 2})
		sizes = append(sizes, len(rows))
		for _, r := range rows {
			if seen[r.TransactionKey] {
				t.Fatalf("row %s on two pages", r.TransactionKey)
			}
			seen[r.TransactionKey] = true
		}
	}
	if fmt.Sprint(sizes) != "[2 2 1 0]" || len(seen) != 5 {
		t.Fatalf("page sizes %v, %d distinct rows; want [2 2 1 0] and 5", sizes, len(seen))
	}
	// The default size (100) holds them all; rows come in transaction order.
	rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})
	for i, r := range rows {
		if r.OrderID != fmt.Sprintf("order-page-%d", i) {
			t.Fatalf("row %d is %s", i, r.OrderID)
		}
	}
	// A payment that is never approved (an open session) has no row.
	if _, err := e.sim.CreateSession("order-never-paid", decimal.NewFromInt(500), ""); err != nil {
		t.Fatal(err)
	}
	if got := len(e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})); got != 5 {
		t.Fatalf("%d rows after an unpaid session, want 5", got)
	}
}

func TestSettlementsErrors(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{})
	for _, q := range []string{
		"",
		"?startDate=2025-11-21",
		"?endDate=2025-11-21",
		"?startDate=2025-11-21T00:00:00&endDate=2025-11-21",
		"?startDate=2025-13-01&endDate=2025-11-21",
		"?startDate=2025-11-21&endDate=2025-11-21&dateType=approvedAt",
		"?startDate=2025-11-21&endDate=2025-11-21&page=0",
		"?startDate=2025-11-21&endDate=2025-11-21&page=x",
		"?startDate=2025-11-21&endDate=2025-11-21&size=5001",
		"?startDate=2025-11-21&endDate=2025-11-21&size=0",
	} {
		status, body := rawGet(t, e.url, "/v1/settlements"+q)
		var eb struct{ Code string }
		_ = json.Unmarshal(body, &eb)
		if status != http.StatusBadRequest || eb.Code != "INVALID_REQUEST" {
			t.Errorf("%q: %d %s, want 400 INVALID_REQUEST", q, status, body)
		}
	}
	status, body := rawGet(t, e.url, "/v1/settlements?startDate=2025-11-22&endDate=2025-11-21&size=5000")
	if status != http.StatusOK || string(body) != "[]" {
		t.Errorf("startDate after endDate: %d %s, want an empty array", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/settlements?startDate=2025-11-21&endDate=2025-11-21", nil)
	req.SetBasicAuth("test_sk_other", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown key: %d, want 401", resp.StatusCode)
	}
}

func rawGet(t *testing.T, base, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(settleKey+":")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// sessionOver opens a session through POST /sim/v1/sessions with body, as an out-of-process
// test would, and returns the paymentKey, or the status and body of a refusal.
func sessionOver(t *testing.T, base, body string) (string, int, []byte) {
	t.Helper()
	resp, err := http.Post(base+"/sim/v1/sessions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		PaymentKey string `json:"paymentKey"`
	}
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out.PaymentKey, resp.StatusCode, raw
}

func TestSettlementsPerPaymentFeeRate(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{})
	ctx := context.Background()
	// The session route takes the rate as a decimal string.
	own, status, body := sessionOver(t, e.url, `{"orderId":"order-own-fee","amount":10000,"orderName":"t","settlementFeeRate":"0.05"}`)
	if status != http.StatusCreated {
		t.Fatalf("session: %d %s", status, body)
	}
	if _, err := e.client.Confirm(ctx, toss.ConfirmRequest{PaymentKey: own, OrderID: "order-own-fee", Amount: dec("10000")}, "own:confirm"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second) // rows of one second come in transactionKey order, which is random
	contract := e.approve("order-contract-fee", 10000)
	e.clock.Advance(time.Second)
	amt := dec("2000")
	if _, err := e.client.Cancel(ctx, own, toss.CancelRequest{CancelReason: "부분", CancelAmount: &amt}, "own:cancel"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.sim.ConsoleCancel(own, &amt, "콘솔 부분"); err != nil {
		t.Fatal(err)
	}

	rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})
	if len(rows) != 4 {
		t.Fatalf("%d rows, want two approvals and two cancels: %+v", len(rows), rows)
	}
	// The payment's own 5 %: 500 + 50 on 10000, 100 + 10 on each cancel of 2000, API or console.
	wantAmounts(t, rows[0], "10000", "500", "50", "550", "9450")
	wantAmounts(t, rows[2], "-2000", "-100", "-10", "-110", "-1890")
	wantAmounts(t, rows[3], "-2000", "-100", "-10", "-110", "-1890")
	// The other payment keeps the contract's 3 %.
	if rows[1].PaymentKey != contract.PaymentKey {
		t.Fatalf("row 1 is %s, want %s", rows[1].PaymentKey, contract.PaymentKey)
	}
	wantAmounts(t, rows[1], "10000", "300", "30", "330", "9670")

	// Set on an existing payment, the rate applies to its rows already listed; 0 is a rate
	// (a waived fee), not the contract's default.
	if err := e.sim.SetSettlementFeeRate(contract.PaymentKey, dec("0")); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetSettlementFeeRate(own, dec("0.025")); err != nil {
		t.Fatal(err)
	}
	rows = e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})
	wantAmounts(t, rows[0], "10000", "250", "25", "275", "9725")
	wantAmounts(t, rows[1], "10000", "0", "0", "0", "10000")
	wantAmounts(t, rows[2], "-2000", "-50", "-5", "-55", "-1945")

	// SessionRequest takes it too.
	rate := dec("0.035")
	key, err := e.sim.CreateSessionWith(tosssim.SessionRequest{OrderID: "order-go-fee", Amount: dec("20000"), SettlementFeeRate: &rate})
	if err != nil {
		t.Fatal(err)
	}
	rate = dec("0.9") // the simulator keeps its own copy
	e.clock.Advance(time.Second)
	if _, err := e.client.Confirm(ctx, toss.ConfirmRequest{PaymentKey: key, OrderID: "order-go-fee", Amount: dec("20000")}, "go:confirm"); err != nil {
		t.Fatal(err)
	}
	rows = e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})
	wantAmounts(t, rows[len(rows)-1], "20000", "700", "70", "770", "19230")
}

func TestSettlementFeeRateRefusals(t *testing.T) {
	e := newSettleEnv(t, tosssim.SettlementConfig{})
	for _, rate := range []string{`"1"`, `"-0.01"`, `"abc"`, `""`, `true`} {
		_, status, body := sessionOver(t, e.url, `{"orderId":"order-bad-fee","amount":1000,"settlementFeeRate":`+rate+`}`)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"INVALID_REQUEST"`) {
			t.Errorf("settlementFeeRate %s: %d %s, want 400 INVALID_REQUEST", rate, status, body)
		}
	}
	// A JSON number is read from its text, as exactly as a string.
	if _, status, body := sessionOver(t, e.url, `{"orderId":"order-num-fee","amount":1000,"settlementFeeRate":0.05}`); status != http.StatusCreated {
		t.Errorf("a number rate: %d %s", status, body)
	}

	wantCode := func(err error, status int, code string) {
		t.Helper()
		var se *tosssim.Error
		if !errors.As(err, &se) || se.Status != status || se.Code != code {
			t.Errorf("error %v, want %d %s", err, status, code)
		}
	}
	over := dec("1")
	_, err := e.sim.CreateSessionWith(tosssim.SessionRequest{OrderID: "order-bad-fee", Amount: dec("1000"), SettlementFeeRate: &over})
	wantCode(err, http.StatusBadRequest, "INVALID_REQUEST")
	wantCode(e.sim.SetSettlementFeeRate("no-such-key", dec("0.05")), http.StatusNotFound, "NOT_FOUND_PAYMENT")
	p := e.approve("order-set-fee", 1000)
	wantCode(e.sim.SetSettlementFeeRate(p.PaymentKey, dec("-0.5")), http.StatusBadRequest, "INVALID_REQUEST")
	rows := e.list(toss.SettlementsQuery{StartDate: "2025-11-21", EndDate: "2025-11-21"})
	wantAmounts(t, rows[0], "1000", "30", "3", "33", "967") // a refused rate changes nothing
}
