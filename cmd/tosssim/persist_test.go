package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
)

// startRun runs the command with args until stop, which waits for run to end and returns its
// error. It returns the base URL once the command serves, or run's error if it ends first.
func startRun(t *testing.T, args []string, getenv func(string) string) (base string, stop func() error, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "serving" {
				addr, _ := m["addr"].(string)
				addrs <- addr
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, getenv, pw)
		pw.Close()
	}()
	var (
		once    sync.Once
		stopErr error
	)
	stop = func() error { // also run at cleanup, so it may be called twice
		once.Do(func() {
			cancel()
			stopErr = <-done
		})
		return stopErr
	}
	select {
	case addr := <-addrs:
		t.Cleanup(func() { _ = stop() })
		return "http://" + addr, stop, nil
	case err := <-done:
		cancel()
		return "", nil, err
	case <-time.After(10 * time.Second):
		t.Fatal("no serving log line")
	}
	panic("unreachable")
}

func TestRunWithDatabaseKeepsStateAcrossRestarts(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := func(k string) string {
		if k == "TOSSSIM_DATABASE_URL" {
			return dbURL
		}
		return ""
	}
	args := []string{"-addr", "127.0.0.1:0", "-seed", "1"}
	base, stop, err := startRun(t, args, env)
	if err != nil {
		t.Fatal(err)
	}

	// A second command on the same database is refused while the first one runs.
	if _, _, err := startRun(t, args, env); err == nil || !strings.Contains(err.Error(), "another simulator owns this database's tosssim schema") {
		t.Fatalf("second command on the database: %v", err)
	}

	call := func(base, method, path, body string, headers map[string]string) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("test_sk_cmd:")))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, raw
	}

	status, raw := call(base, "POST", "/sim/v1/sessions", `{"orderId":"cmd-db-order","amount":7000,"orderName":"t"}`, nil)
	var sess struct {
		PaymentKey string `json:"paymentKey"`
	}
	if status != http.StatusCreated || json.Unmarshal(raw, &sess) != nil {
		t.Fatalf("session: %d %s", status, raw)
	}
	confirmBody := `{"paymentKey":"` + sess.PaymentKey + `","orderId":"cmd-db-order","amount":7000}`
	idem := map[string]string{"Idempotency-Key": "cmd-db-confirm"}
	status, confirmed := call(base, "POST", "/v1/payments/confirm", confirmBody, idem)
	if status != http.StatusOK {
		t.Fatalf("confirm: %d %s", status, confirmed)
	}
	_, before := call(base, "GET", "/v1/payments/orders/cmd-db-order", "", nil)
	if err := stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}

	base, stop, err = startRun(t, args, env)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if status, after := call(base, "GET", "/v1/payments/orders/cmd-db-order", "", nil); status != http.StatusOK || !bytes.Equal(after, before) {
		t.Fatalf("payment after the restart: %d %s\nbefore: %s", status, after, before)
	}
	if status, replay := call(base, "POST", "/v1/payments/confirm", confirmBody, idem); status != http.StatusOK || !bytes.Equal(replay, confirmed) {
		t.Fatalf("confirm replay after the restart: %d %s\nfirst: %s", status, replay, confirmed)
	}
	_, raw = call(base, "GET", "/sim/v1/stats", "", nil)
	var stats struct {
		tosssim.Stats
		Confirms map[string]int `json:"confirms"`
	}
	if err := json.Unmarshal(raw, &stats); err != nil || stats.Confirms["cmd-db-order"] != 1 {
		t.Fatalf("stats after the restart: %s", raw)
	}
	if err := stop(); err != nil {
		t.Fatalf("second run: %v", err)
	}
}
