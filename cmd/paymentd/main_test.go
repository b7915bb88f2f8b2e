package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
)

// TestRunServesThePaymentFlowWithTheInProcessSimulator starts paymentd as main would (config
// from the environment, migrations at start-up, no TOSS_SECRET_KEY so the simulator is mounted
// in-process) and walks the README's curl flow, then shuts it down.
func TestRunServesThePaymentFlowWithTheInProcessSimulator(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t),
		"HTTP_ADDR":    "127.0.0.1:0",
		"DATA_DIR":     t.TempDir(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, &logs, ready) }()

	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("paymentd exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("paymentd did not start\n%s", logs.String())
	}
	base := "http://" + addr

	co := post(t, base+"/api/v1/payments/checkout",
		`{"orderName":"Book","buyerId":"buyer-1","lines":[{"sellerId":"seller-1","productId":"book-1","amount":"15000"}]}`, 201)
	orderID := co["orderId"].(string)
	session := post(t, base+"/tosssim/sim/v1/sessions", fmt.Sprintf(`{"orderId":%q,"amount":15000,"orderName":"Book"}`, orderID), 201)
	cf := post(t, base+"/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"15000"}`, session["paymentKey"], orderID), 200)
	if cf["status"] != "SUCCESS" {
		t.Fatalf("confirm %v", cf)
	}
	testenv.WaitFor(t, 10*time.Second, "GET to show SUCCESS", func() bool {
		resp, err := http.Get(base + "/api/v1/payments/" + orderID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var p map[string]any
		return json.NewDecoder(resp.Body).Decode(&p) == nil && p["status"] == "SUCCESS"
	})
	if !strings.Contains(logs.String(), "serving the Toss simulator in-process") {
		t.Fatalf("the start-up log does not say the simulator is in-process:\n%s", logs.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("paymentd did not stop")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", logs.String())
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.DatabaseURL != DefaultDatabaseURL || c.TossBaseURL != "https://api.tosspayments.com" || c.TossSecretKey != "" {
		t.Fatalf("defaults %+v", c)
	}
	c, err = parseConfig([]string{"-http-addr", ":9000"}, func(k string) string {
		return map[string]string{"HTTP_ADDR": ":7000", "TOSS_SECRET_KEY": "test_sk_abcdefghijkl"}[k]
	})
	if err != nil || c.HTTPAddr != ":9000" {
		t.Fatalf("flag must win over env: %+v %v", c, err)
	}
	if got := fmt.Sprint(c.Redacted()); strings.Contains(got, "abcdefghijkl") {
		t.Fatalf("secret in the start-up log: %s", got)
	}
	_, err = parseConfig(nil, func(k string) string {
		return map[string]string{"DATABASE_URL": "mysql://x", "TOSS_BASE_URL": "ftp://x", "CHECKOUT_TTL": "soon"}[k]
	})
	for _, want := range []string{"DATABASE_URL", "TOSS_BASE_URL", "CHECKOUT_TTL must be a positive duration"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not mention %s", err, want)
		}
	}
}

func post(t *testing.T, url, body string, want int) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s, want %d", url, resp.StatusCode, raw, want)
	}
	return out
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
