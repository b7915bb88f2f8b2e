package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
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
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: config{Addr: "127.0.0.1:8090", MID: "tosssimmid01"}},
		{
			name: "env",
			env:  map[string]string{"TOSSSIM_ADDR": ":9000", "TOSSSIM_SECRET_KEYS": "test_sk_a, test_sk_b,", "TOSSSIM_MID": "tvivarepublica"},
			want: config{Addr: ":9000", SecretKeys: []string{"test_sk_a", "test_sk_b"}, MID: "tvivarepublica"},
		},
		{
			name: "flags win",
			args: []string{"-addr", "127.0.0.1:1", "-secret-key", "live_sk_x", "-mid", "m1"},
			env:  map[string]string{"TOSSSIM_ADDR": ":9000", "TOSSSIM_SECRET_KEYS": "test_sk_a"},
			want: config{Addr: "127.0.0.1:1", SecretKeys: []string{"live_sk_x"}, MID: "m1"},
		},
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
