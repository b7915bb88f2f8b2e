package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/natsbus/natstest"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
)

// TestLiveStatusAcrossInstances runs two paymentd instances on one database and one NATS: a
// live status stream held on instance B shows a confirm made through instance A, since streams
// read the PAYMENTS stream (whichever instance relays) rather than their own process.
func TestLiveStatusAcrossInstances(t *testing.T) {
	sim := tosssim.New(tosssim.Config{})
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	nats := natstest.Start(t)
	env := map[string]string{
		"DATABASE_URL":              pgtest.NewDatabase(t),
		"NATS_URL":                  nats.URL(),
		"HTTP_ADDR":                 "127.0.0.1:0",
		"TOSS_BASE_URL":             simSrv.URL,
		"SECRETS_KEY":               base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"ADMIN_TOKEN":               "two-instances-admin-token-0123456789abcdef",
		"RECOVERY_ENABLED":          "false",
		"SETTLEMENT_IMPORT_ENABLED": "false",
		"RECONCILE_ENABLED":         "false",
	}
	a := startPaymentd(t, withEnv(env, "DATA_DIR", t.TempDir()))
	b := startPaymentd(t, withEnv(env, "DATA_DIR", t.TempDir()))

	status, raw := testenv.Do(t, "", "POST", a+"/admin/v1/merchants", `{"name":"Live","tossSecretKey":"test_sk_live"}`,
		"Authorization", "Bearer "+env["ADMIN_TOKEN"])
	var created map[string]any
	if json.Unmarshal(raw, &created) != nil || status != http.StatusCreated {
		t.Fatalf("create merchant: %d %s", status, raw)
	}
	key := created["apiKey"].(string)
	co := post(t, key, a+"/api/v1/payments/checkout", `{"orderName":"Book","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"5000"}]}`, 201)
	orderID := co["orderId"].(string)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the instances stop: they wait for no stream
	req, err := http.NewRequestWithContext(ctx, "GET", b+"/api/v1/payments/"+orderID+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream on B: %d %s", resp.StatusCode, body)
	}
	events := make(chan [2]string, 16) // event name, data
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && data != "":
				events <- [2]string{name, data}
				name, data = "", ""
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	next := func() (string, map[string]any) {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("B's stream ended")
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(e[1]), &m); err != nil {
				t.Fatalf("event %s: %q", e[0], e[1])
			}
			return e[0], m
		case <-time.After(30 * time.Second):
			t.Fatal("no event on B's stream within 30s")
		}
		return "", nil
	}
	if name, m := next(); name != "payment" || m["status"] != "NOT_STARTED" {
		t.Fatalf("first event on B: %s %v", name, m)
	}

	pk, err := sim.CreateSession(orderID, decimal.NewFromInt(5000), "Book")
	if err != nil {
		t.Fatal(err)
	}
	if cf := post(t, key, a+"/api/v1/payments/confirm", fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"5000"}`, pk, orderID), 200); cf["status"] != "SUCCESS" {
		t.Fatalf("confirm through A: %v", cf)
	}
	for _, want := range []struct{ name, status string }{{"ConfirmationStarted", "EXECUTING"}, {"PaymentApproved", "SUCCESS"}} {
		if name, m := next(); name != want.name || m["status"] != want.status {
			t.Fatalf("on B: %s %v, want %s with status %s", name, m, want.name, want.status)
		}
	}
}
