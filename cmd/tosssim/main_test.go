package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/psp/toss/tosssim"
)

func TestRunServesSessionAndConfirm(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	lines := make(chan map[string]any, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"unparsed": sc.Text()}
			}
			lines <- m
		}
	}()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-secret-key", "test_sk_cmd,live_sk_cmd"}, func(string) string { return "" }, pw)
		pw.Close()
	}()

	var addr string
	deadline := time.After(10 * time.Second)
	for addr == "" {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("run ended before serving: %v", <-done)
			}
			if s, _ := m["unparsed"].(string); s != "" {
				t.Fatalf("log line is not JSON: %s", s)
			}
			if m["msg"] == "starting tosssim" {
				if cfgLog, _ := json.Marshal(m["config"]); strings.Contains(string(cfgLog), "test_sk_cmd") {
					t.Fatalf("start-up log shows a secret key: %s", cfgLog)
				}
			}
			if m["msg"] == "serving" {
				addr, _ = m["addr"].(string)
			}
		case <-deadline:
			t.Fatal("no serving log line")
		}
	}
	base := "http://" + addr

	post := func(path, body string, auth bool) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("test_sk_cmd:")))
			req.Header.Set("Idempotency-Key", "cmd-test-1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}

	status, sess := post("/sim/v1/sessions", `{"orderId":"cmd-order-1","amount":12000,"orderName":"t"}`, false)
	key, _ := sess["paymentKey"].(string)
	if status != http.StatusCreated || !strings.HasPrefix(key, "tosss") {
		t.Fatalf("session: %d %v", status, sess)
	}
	status, pay := post("/v1/payments/confirm", `{"paymentKey":"`+key+`","orderId":"cmd-order-1","amount":12000}`, true)
	if status != http.StatusOK || pay["status"] != "DONE" || pay["totalAmount"] != float64(12000) {
		t.Fatalf("confirm: %d %v", status, pay)
	}

	resp, err := http.Get(base + "/sim/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		ConfirmsProcessed int            `json:"confirmsProcessed"`
		Confirms          map[string]int `json:"confirms"`
	}
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || stats.ConfirmsProcessed != 1 || stats.Confirms["cmd-order-1"] != 1 {
		t.Fatalf("stats %+v %v", stats, err)
	}

	cancel()
	sawRequestLog, sawStopped := false, false
	for m := range lines {
		if m["msg"] == "request" && m["path"] == "/v1/payments/confirm" && m["status"] == float64(200) {
			sawRequestLog = true
		}
		if m["msg"] == "stopped" {
			sawStopped = true
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if !sawRequestLog || !sawStopped {
		t.Fatalf("request log %v, stopped log %v", sawRequestLog, sawStopped)
	}
}

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	// withDefaults adds the fault settings' defaults; Seed is checked separately.
	withDefaults := func(c config) config {
		c.TimeScale = 1
		c.WebhookTimeout = 10 * time.Second
		c.SettlementFeeRate = decimal.RequireFromString("0.03")
		c.SettlementPayoutDays = 2
		return c
	}
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: withDefaults(config{Addr: "127.0.0.1:8090", MID: "tosssimmid01"})},
		{
			name: "env",
			env:  map[string]string{"TOSSSIM_ADDR": ":9000", "TOSSSIM_SECRET_KEYS": "test_sk_a, test_sk_b,", "TOSSSIM_MID": "tvivarepublica"},
			want: withDefaults(config{Addr: ":9000", SecretKeys: []string{"test_sk_a", "test_sk_b"}, MID: "tvivarepublica"}),
		},
		{
			name: "flags win",
			args: []string{"-addr", "127.0.0.1:1", "-secret-key", "live_sk_x", "-mid", "m1"},
			env:  map[string]string{"TOSSSIM_ADDR": ":9000", "TOSSSIM_SECRET_KEYS": "test_sk_a"},
			want: withDefaults(config{Addr: "127.0.0.1:1", SecretKeys: []string{"live_sk_x"}, MID: "m1"}),
		},
		{
			name: "fault flags",
			args: []string{
				"-latency", "5ms-200ms", "-error-rate", "0.1", "-lost-response-rate", "0.05",
				"-webhook-url", "http://127.0.0.1:8080/webhooks/toss", "-webhook-duplicate-rate", "0.2",
				"-webhook-reorder", "-webhook-timeout", "2s", "-time-scale", "0.001", "-seed", "42",
			},
			want: config{
				Addr: "127.0.0.1:8090", MID: "tosssimmid01",
				Latency:   tosssim.Latency{Min: 5 * time.Millisecond, Max: 200 * time.Millisecond},
				ErrorRate: 0.1, LostResponseRate: 0.05,
				WebhookURL: "http://127.0.0.1:8080/webhooks/toss", WebhookDuplicateRate: 0.2, WebhookReorder: true,
				WebhookTimeout: 2 * time.Second, TimeScale: 0.001, Seed: 42,
				SettlementFeeRate: decimal.RequireFromString("0.03"), SettlementPayoutDays: 2,
			},
		},
		{
			name: "fault env, flags win",
			args: []string{"-error-rate", "0.5", "-seed", "-3"},
			env: map[string]string{
				"TOSSSIM_LATENCY": "20ms", "TOSSSIM_ERROR_RATE": "0.9", "TOSSSIM_LOST_RESPONSE_RATE": "1",
				"TOSSSIM_WEBHOOK_URL": "https://hooks.example.com/toss", "TOSSSIM_WEBHOOK_DUPLICATE_RATE": "1",
				"TOSSSIM_WEBHOOK_REORDER": "true", "TOSSSIM_WEBHOOK_TIMEOUT": "1s", "TOSSSIM_TIME_SCALE": "0.5", "TOSSSIM_SEED": "7",
			},
			want: config{
				Addr: "127.0.0.1:8090", MID: "tosssimmid01",
				Latency:   tosssim.Latency{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond},
				ErrorRate: 0.5, LostResponseRate: 1,
				WebhookURL: "https://hooks.example.com/toss", WebhookDuplicateRate: 1, WebhookReorder: true,
				WebhookTimeout: time.Second, TimeScale: 0.5, Seed: -3,
				SettlementFeeRate: decimal.RequireFromString("0.03"), SettlementPayoutDays: 2,
			},
		},
		{
			name: "database URL env",
			env:  map[string]string{"TOSSSIM_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/sim?sslmode=disable"},
			want: withDefaults(config{Addr: "127.0.0.1:8090", MID: "tosssimmid01", DatabaseURL: "postgres://postgres@127.0.0.1:5432/sim?sslmode=disable"}),
		},
		{
			name: "database URL flag wins",
			args: []string{"-database-url", "postgres://127.0.0.1/flag"},
			env:  map[string]string{"TOSSSIM_DATABASE_URL": "postgres://127.0.0.1/env"},
			want: withDefaults(config{Addr: "127.0.0.1:8090", MID: "tosssimmid01", DatabaseURL: "postgres://127.0.0.1/flag"}),
		},
		{name: "database URL unparsable", args: []string{"-database-url", "postgres://u:pw@127.0.0.1/x?sslmode=sometimes"}, wantErr: "database URL"},
		{name: "rate above 1", args: []string{"-error-rate", "1.5"}, wantErr: "error-rate: rate 1.5 is outside [0, 1]"},
		{name: "rate not a number", env: map[string]string{"TOSSSIM_LOST_RESPONSE_RATE": "often"}, wantErr: "lost-response-rate: rate \"often\" is not a number"},
		{name: "negative duplicate rate", args: []string{"-webhook-url", "http://h/x", "-webhook-duplicate-rate", "-0.1"}, wantErr: "webhook-duplicate-rate"},
		{name: "latency syntax", args: []string{"-latency", "fast"}, wantErr: "latency: latency \"fast\""},
		{name: "latency range reversed", args: []string{"-latency", "200ms-5ms"}, wantErr: "max is below min"},
		{name: "webhook URL scheme", args: []string{"-webhook-url", "ftp://example.com/x"}, wantErr: "not an absolute http(s) URL"},
		{name: "webhook URL relative", args: []string{"-webhook-url", "/webhooks/toss"}, wantErr: "not an absolute http(s) URL"},
		{name: "webhook URL unparsable", args: []string{"-webhook-url", "http://[::1"}, wantErr: "webhook URL"},
		{name: "duplicates without URL", args: []string{"-webhook-duplicate-rate", "0.5"}, wantErr: "need a webhook URL"},
		{name: "reorder without URL", env: map[string]string{"TOSSSIM_WEBHOOK_REORDER": "1"}, wantErr: "need a webhook URL"},
		{name: "reorder not a bool", env: map[string]string{"TOSSSIM_WEBHOOK_REORDER": "maybe"}, wantErr: "webhook-reorder"},
		{name: "time scale zero", args: []string{"-time-scale", "0"}, wantErr: "time scale 0 is not > 0"},
		{name: "time scale negative", args: []string{"-time-scale", "-1"}, wantErr: "time scale"},
		{name: "time scale not a number", args: []string{"-time-scale", "x"}, wantErr: "time-scale"},
		{name: "webhook timeout zero", args: []string{"-webhook-timeout", "0s"}, wantErr: "webhook timeout 0s is not > 0"},
		{
			name: "settlement flags win over env",
			args: []string{"-settlement-fee-rate", "0.025", "-settlement-payout-days", "5"},
			env:  map[string]string{"TOSSSIM_SETTLEMENT_FEE_RATE": "0.5", "TOSSSIM_SETTLEMENT_PAYOUT_DAYS": "9"},
			want: func() config {
				c := withDefaults(config{Addr: "127.0.0.1:8090", MID: "tosssimmid01"})
				c.SettlementFeeRate, c.SettlementPayoutDays = decimal.RequireFromString("0.025"), 5
				return c
			}(),
		},
		{name: "settlement fee rate env", env: map[string]string{"TOSSSIM_SETTLEMENT_FEE_RATE": "1"}, wantErr: "settlement fee rate 1 is not in (0, 1)"},
		{name: "settlement fee rate zero", args: []string{"-settlement-fee-rate", "0"}, wantErr: "settlement fee rate 0"},
		{name: "settlement fee rate not a number", args: []string{"-settlement-fee-rate", "3%"}, wantErr: "settlement-fee-rate"},
		{name: "settlement payout days zero", args: []string{"-settlement-payout-days", "0"}, wantErr: "settlement payout days 0"},
		{name: "settlement payout days not a number", env: map[string]string{"TOSSSIM_SETTLEMENT_PAYOUT_DAYS": "two"}, wantErr: "settlement-payout-days"},
		{name: "seed not a number", env: map[string]string{"TOSSSIM_SEED": "abc"}, wantErr: "seed"},
		{name: "all problems at once", args: []string{"-error-rate", "2", "-latency", "x", "-seed", "y"}, wantErr: "error-rate"},
		{name: "colon in key", args: []string{"-secret-key", "test_sk_a:"}, wantErr: "contains ':'"},
		{name: "long mid", args: []string{"-mid", "abcdefghijklmno"}, wantErr: "longer than 14"},
		{name: "empty addr", args: []string{"-addr", ""}, env: map[string]string{}, wantErr: "addr is empty"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"-port", "1"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "test_sk_a:") {
					t.Fatalf("error shows the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Seed == 0 {
				if got.Seed == 0 {
					t.Fatal("no seed chosen from the clock")
				}
				got.Seed = 0
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R":   "test_sk_****",
		"test_gsk_docs_OaPz8L5KdmQXkzRz3y47BMw6": "test_gsk_****",
		"nokind":                                 "****",
		"trailing_":                              "****",
	} {
		if got := mask(in); got != want {
			t.Errorf("mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseConfigReportsEveryProblem(t *testing.T) {
	_, err := parseConfig([]string{"-error-rate", "2", "-latency", "x", "-seed", "y"}, func(string) string { return "" }, io.Discard)
	for _, want := range []string{"error-rate", "latency", "seed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "",
		"http://127.0.0.1:8080/webhooks/toss": "http://127.0.0.1:8080/webhooks/toss",
		"https://u:secret@h.example/x":        "https://u:xxxxx@h.example/x",
		"https://h.example/x?token=abc&x=1":   "https://h.example/x?****",
		"http://[::1":                         "****",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRunWithFaultsAndWebhooks runs the command with a webhook receiver and checks the
// start-up log, a webhook, a lost response and its access-log line.
func TestRunWithFaultsAndWebhooks(t *testing.T) {
	hooks := make(chan http.Header, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks <- r.Header.Clone()
	}))
	defer receiver.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	lines := make(chan map[string]any, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"unparsed": sc.Text()}
			}
			lines <- m
		}
	}()
	done := make(chan error, 1)
	args := []string{"-addr", "127.0.0.1:0", "-webhook-url", receiver.URL + "/hooks?token=s3cret", "-time-scale", "0.001", "-seed", "11", "-latency", "1ms-2ms"}
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, pw)
		pw.Close()
	}()

	var addr string
	deadline := time.After(10 * time.Second)
	for addr == "" {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("run ended before serving: %v", <-done)
			}
			if m["msg"] == "starting tosssim" {
				cfgLog, _ := json.Marshal(m["config"])
				if !bytes.Contains(cfgLog, []byte(`"seed":11`)) || !bytes.Contains(cfgLog, []byte(`"latency":"1ms-2ms"`)) ||
					bytes.Contains(cfgLog, []byte("s3cret")) {
					t.Fatalf("start-up log: %s", cfgLog)
				}
			}
			if m["msg"] == "serving" {
				addr, _ = m["addr"].(string)
			}
		case <-deadline:
			t.Fatal("no serving log line")
		}
	}
	base := "http://" + addr
	post := func(path, body string, headers map[string]string) (*http.Response, error) {
		req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("test_sk_cmd:")))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return http.DefaultClient.Do(req)
	}

	resp, err := post("/sim/v1/sessions", `{"orderId":"cmd-order-2","amount":5000,"orderName":"t"}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sess struct {
		PaymentKey string `json:"paymentKey"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()

	resp, err = post("/v1/payments/confirm", `{"paymentKey":"`+sess.PaymentKey+`","orderId":"cmd-order-2","amount":5000}`,
		map[string]string{"Idempotency-Key": "cmd-2", tosssim.HeaderLostResponseRate: "1"})
	if err == nil {
		resp.Body.Close()
		t.Fatalf("lost response answered %d", resp.StatusCode)
	}
	select {
	case h := <-hooks:
		if h.Get("Tosspayments-Webhook-Transmission-Retried-Count") != "0" || !strings.HasPrefix(h.Get("Tosspayments-Webhook-Transmission-Id"), "whtrans_") {
			t.Fatalf("webhook headers %v", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook")
	}

	// The access-log line of the dropped confirm is awaited before shutting down: the client
	// saw the connection close before the handler returned to log, and Shutdown does not wait
	// for hijacked connections, so run could end (and close the log) first.
	for dropped := false; !dropped; {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("run ended before logging the dropped confirm: %v", <-done)
			}
			dropped = m["msg"] == "request" && m["path"] == "/v1/payments/confirm" && m["dropped"] == true && m["status"] == float64(0)
		case <-time.After(10 * time.Second):
			t.Fatal("no access-log line for the dropped confirm")
		}
	}

	cancel()
	var stopped map[string]any
	for m := range lines {
		if m["msg"] == "stopped" {
			stopped, _ = m["stats"].(map[string]any)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if stopped["lostResponses"] != float64(1) || stopped["webhooksSent"] != float64(1) {
		t.Fatalf("stopped stats %v", stopped)
	}
}
