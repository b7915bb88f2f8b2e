package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/config"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/notify"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
)

// TestRunServesThePaymentFlowWithTheInProcessSimulator starts paymentd as main would (config
// from the environment, migrations at start-up, TOSS_SIMULATOR so the simulator is mounted
// in-process and the demo merchant seeded, no SECRETS_KEY) and walks the README's curl flow with
// the printed key, then shuts it down. A restart keeps the demo key.
func TestRunServesThePaymentFlowWithTheInProcessSimulator(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{
		"DATABASE_URL":   pgtest.NewDatabase(t),
		"HTTP_ADDR":      "127.0.0.1:0",
		"DATA_DIR":       dataDir,
		"TOSS_SIMULATOR": "true",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { done <- run(ctx, nil, envFrom(env), &logs, ready) }()

	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("paymentd exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("paymentd did not start\n%s", logs.String())
	}
	base := "http://" + addr
	keyFile, err := os.ReadFile(filepath.Join(dataDir, "dev-api-key"))
	if err != nil {
		t.Fatalf("the demo key file: %v", err)
	}
	key := strings.TrimSpace(string(keyFile))
	if !strings.HasPrefix(key, "sk_test_") || !strings.Contains(logs.String(), key) {
		t.Fatalf("the demo key %q must be printed once at start-up:\n%s", key, logs.String())
	}
	// Without the key: 401 and nothing else.
	if status, _ := testenv.Do(t, "", "GET", base+"/api/v1/payments", ""); status != http.StatusUnauthorized {
		t.Fatalf("no key: %d", status)
	}
	// One listener: the back office at "/", the demo shop, the API's description, and an
	// unknown API path still a JSON 404.
	for _, c := range []struct {
		path, want string
		status     int
	}{
		{"/signin", "<form", 200},
		{"/shop/", "<html", 200},
		{"/sdk/v1/pay.js", "LedgerPay", 200},
		{"/openapi.yaml", "openapi: 3.1.0", 200},
		{"/api/v1/nothing", `"NOT_FOUND"`, 404},
	} {
		status, body := testenv.Do(t, "", "GET", base+c.path, "")
		if status != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("GET %s: %d, want %d with %q:\n%.300s", c.path, status, c.status, c.want, body)
		}
	}
	if !strings.Contains(logs.String(), "back office: http://") || !strings.Contains(logs.String(), "/shop/") {
		t.Errorf("the start-up output must print the back office's and the demo shop's URLs:\n%s", logs.String())
	}

	co := post(t, key, base+"/api/v1/payments/checkout",
		`{"orderName":"Book","buyerId":"buyer-1","lines":[{"sellerId":"seller-1","productId":"book-1","amount":"15000"}]}`, 201)
	orderID := co["orderId"].(string)
	session := post(t, "", base+"/tosssim/sim/v1/sessions", fmt.Sprintf(`{"orderId":%q,"amount":15000,"orderName":"Book"}`, orderID), 201)
	cf := post(t, key, base+"/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"15000"}`, session["paymentKey"], orderID), 200)
	if cf["status"] != "SUCCESS" {
		t.Fatalf("confirm %v", cf)
	}
	// Read your writes: the payment reads SUCCESS right after the confirm answered.
	status, body := testenv.Do(t, key, "GET", base+"/api/v1/payments/"+orderID, "")
	var p map[string]any
	if status != 200 || json.Unmarshal(body, &p) != nil || p["status"] != "SUCCESS" {
		t.Fatalf("GET right after confirm: %d %s", status, body)
	}
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

	// A restart keeps the demo key: it is in the key file and still works; nothing new is printed.
	var again syncBuffer
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ready2 := make(chan string, 1)
	done2 := make(chan error, 1)
	go func() { done2 <- run(ctx2, nil, envFrom(env), &again, ready2) }()
	select {
	case addr = <-ready2:
	case err := <-done2:
		t.Fatalf("restart: %v\n%s", err, again.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("restart did not start\n%s", again.String())
	}
	if strings.Contains(again.String(), "sk_test_") {
		t.Fatalf("a restart printed a key again:\n%s", again.String())
	}
	if status, _ := testenv.Do(t, key, "GET", "http://"+addr+"/api/v1/payments/"+orderID, ""); status != 200 {
		t.Fatalf("the demo key after a restart: %d", status)
	}
	// The defect: a restart forgot the in-process simulator's side, so Toss no longer knew the
	// payment and a refund failed. The simulator's state lives in the database now.
	status, body = testenv.Do(t, key, "POST", "http://"+addr+"/api/v1/payments/"+orderID+"/cancel", `{"amount":"5000","reason":"after a restart"}`, "Idempotency-Key", "restart-refund")
	if status != 200 || !strings.Contains(string(body), `"cancelStatus":"CANCELED"`) {
		t.Fatalf("refund after a restart: %d %s", status, body)
	}
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(context.Background(), envFrom(map[string]string{"TOSS_SIMULATOR": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Shared: config.Shared{
			DatabaseURL: config.DefaultDatabaseURL, DatabaseWait: 30 * time.Second, TossBaseURL: toss.DefaultBaseURL,
			TossSimulator: true, DataDir: "./data", LogLevel: slog.LevelInfo,
		},
		HTTPAddr: ":8080", CheckoutTTL: domain.DefaultCheckoutTTL, ShutdownTimeout: 30 * time.Second,
		PSPTimeout: 8 * time.Second, PSPRetryBudget: 20 * time.Second, PSPRetryAttempts: 4,
		RecoveryEnabled: true, RecoveryInterval: 30 * time.Second, RecoveryStaleAfter: time.Minute,
		RecoveryMaxAttempts: 10, RecoveryWorkers: 4, RecoveryBaseDelay: time.Minute, RecoveryMaxDelay: 6 * time.Hour,
		RecoveryLease: 10 * time.Second, WebhookWorkerEnabled: true,
		SettlementImportEnabled: true, SettlementImportAt: "06:00", SettlementImportDays: 3,
		ReconcileEnabled: true, ReconcileAt: "07:00", ReconcileDays: 3, ReconcileApply: true,
		DemoTossSecretKey: "test_sk_tosssim_demo",
		APIKeyRate:        50, APIKeyBurst: 100, AuthFailuresPerMinute: 10, APIKeyRotationGrace: 24 * time.Hour,
		AuthCacheTTL: 500 * time.Millisecond, WebhookRate: 20, WebhookBurst: 100,
		WebhookRetention: 720 * time.Hour, WebhookSyncInterval: 5 * time.Second,
		RelayEnabled: true, RelayMaxInFlight: 256, NATSReplicas: 1, NATSMaxAge: 720 * time.Hour, NATSDuplicateWindow: 10 * time.Minute,
		// The notify package's own defaults, so that the two never disagree.
		NotifyEnabled: true, NotifyMaxDeliver: 10, NotifyBackOff: notify.DefaultBackOff, NotifyHTTPTimeout: 10 * time.Second,
		SSEHeartbeat:      15 * time.Second,
		AuditSealInterval: time.Hour,
	}
	if fmt.Sprintf("%+v", c) != fmt.Sprintf("%+v", want) {
		t.Fatalf("defaults\n%+v\nwant\n%+v", c, want)
	}
	if !c.SeedDemoMerchant() {
		t.Fatal("TOSS_SIMULATOR implies the demo merchant")
	}
}

// TestRunRefusesABadSettingNamingIt: a malformed or out-of-range value stops start-up (before
// any connection is made) with an error naming the variable, instead of taking the default.
func TestRunRefusesABadSettingNamingIt(t *testing.T) {
	base := map[string]string{"TOSS_SIMULATOR": "true", "DATABASE_URL": "postgres://127.0.0.1:1/never-reached"}
	for _, c := range []struct {
		name, value, want string
	}{
		{"RECOVERY_ENABLED", "flase", `RECOVERY_ENABLED: "flase" is not a boolean (true or false)`},
		{"WEBHOOK_WORKER_ENABLED", "on", `WEBHOOK_WORKER_ENABLED: "on" is not a boolean`},
		{"CHECKOUT_TTL", "soon", `CHECKOUT_TTL: "soon" is not a duration`},
		{"RECOVERY_LEASE", "0s", "RECOVERY_LEASE: must be a positive duration"},
		{"RECOVERY_LEASE", "500ms", "RECOVERY_LEASE: must be at least 1s"},
		{"PSP_RETRY_ATTEMPTS", "many", `PSP_RETRY_ATTEMPTS: "many" is not a whole number`},
		{"RECOVERY_WORKERS", "0", "RECOVERY_WORKERS: must be at least 1"},
		{"TOSS_BASE_URL", "ftp://x", `TOSS_BASE_URL: "ftp://x" must be an absolute http(s) URL`},
		{"NATS_URL", "localhost:4222", "NATS_URL: each comma-separated address must be a nats://"},
		{"RELAY_MAX_IN_FLIGHT", "0", "RELAY_MAX_IN_FLIGHT: must be at least 1"},
		{"NATS_MAX_AGE", "-1h", "NATS_MAX_AGE: must not be negative"},
		{"NATS_DUPLICATE_WINDOW", "0s", "NATS_DUPLICATE_WINDOW: must be a positive duration"},
		{"DATABASE_URL", "mysql://x", `DATABASE_URL: "mysql://x" must be a postgres:// URL`},
		{"SETTLEMENT_IMPORT_AT", "6am", `SETTLEMENT_IMPORT_AT: "6am" must be HH:MM (KST)`},
		{"RECONCILE_AT", "7", `RECONCILE_AT: "7" must be HH:MM (KST)`},
		{"RECONCILE_DAYS", "0", "RECONCILE_DAYS: must be from 1 to 92 days, not 0"},
		{"RECONCILE_DAYS", "365", "RECONCILE_DAYS: must be from 1 to 92 days, not 365"},
		{"RECONCILE_ENABLED", "yes", `RECONCILE_ENABLED: "yes" is not a boolean`},
		{"HTTP_ADDR", "8080", `HTTP_ADDR: "8080" must be host:port`},
		{"LOG_LEVEL", "loud", `LOG_LEVEL: "loud" is not a log level`},
		{"ADMIN_TOKEN", "too-short", "ADMIN_TOKEN: must be at least 32 characters (it has 9)"},
		{"DEMO_MERCHANT", "ja", `DEMO_MERCHANT: "ja" is not a boolean`},
		{"DEBUG_ADDR", "localhost", `DEBUG_ADDR: "localhost" must be host:port`},
		{"API_KEY_RATE", "0", "API_KEY_RATE: must be a positive number"},
		{"API_KEY_RATE", "NaN", "API_KEY_RATE: must be a positive number"},
		{"API_KEY_BURST", "0", "API_KEY_BURST: must be at least 1"},
		{"AUTH_FAILURES_PER_MINUTE", "ten", `AUTH_FAILURES_PER_MINUTE: "ten" is not a whole number`},
		{"API_KEY_ROTATION_GRACE", "-1h", "API_KEY_ROTATION_GRACE: must be from 0s to 720h0m0s"},
		{"API_KEY_ROTATION_GRACE", "1000h", "API_KEY_ROTATION_GRACE: must be from 0s to 720h0m0s"},
		{"AUTH_CACHE_TTL", "2s", "AUTH_CACHE_TTL: must be at most 1s"},
		{"AUTH_CACHE_TTL", "0s", "AUTH_CACHE_TTL: must be a positive duration"},
		{"TOSS_WEBHOOK_ALLOWED_IPS", "10.0.0.0/8,toss", `TOSS_WEBHOOK_ALLOWED_IPS: "toss" is not an IP address or a CIDR block`},
		{"WEBHOOK_RATE", "-1", "WEBHOOK_RATE: must be a positive number"},
		{"WEBHOOK_BURST", "0", "WEBHOOK_BURST: must be at least 1"},
		{"WEBHOOK_RETENTION", "30d", `WEBHOOK_RETENTION: "30d" is not a duration`},
		{"WEBHOOK_SYNC_INTERVAL", "0s", "WEBHOOK_SYNC_INTERVAL: must be a positive duration"},
		{"AUDIT_SEAL_INTERVAL", "0s", "AUDIT_SEAL_INTERVAL: must be a positive duration"},
		{"AUDIT_SIGNING_KEY", "c2hvcnQ=", "AUDIT_SIGNING_KEY: the value (not shown) decodes to 5 bytes"},
		{"AUDIT_PUBLIC_KEY", "c2hvcnQ=", `AUDIT_PUBLIC_KEY: "c2hvcnQ=" decodes to 5 bytes, not 32`},
		{"AUDIT_CHAIN_KEY", "c2hvcnQ=", "AUDIT_CHAIN_KEY: the value (not shown) decodes to 5 bytes, fewer than 32"},
		{"SECRETS_KEY", "bm90IDMyIGJ5dGVz", "SECRETS_KEY: the value (not shown) decodes to 12 bytes, not 32"},
		{"TOSS_SIMULATOR", "", "SECRETS_KEY: is empty: set it to base64 of 32 random bytes"},
	} {
		env := maps.Clone(base)
		env[c.name] = c.value
		var out bytes.Buffer
		err := run(context.Background(), nil, envFrom(env), &out, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: error %v, want %q", c.name, c.value, err, c.want)
		}
		if out.Len() > 0 {
			t.Errorf("%s=%q: paymentd started logging before refusing its configuration: %s", c.name, c.value, out.String())
		}
	}
}

func TestSecretsKeyRule(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, c := range []struct {
		env   map[string]string
		valid bool
	}{
		{map[string]string{}, false},
		{map[string]string{"TOSS_SIMULATOR": "false"}, false},
		{map[string]string{"TOSS_SIMULATOR": "true"}, true},
		{map[string]string{"SECRETS_KEY": key}, true},
	} {
		_, err := loadConfig(context.Background(), envFrom(c.env))
		if c.valid != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), "SECRETS_KEY: ")) {
			t.Errorf("%v: error %v, valid %v", c.env, err, c.valid)
		}
	}
}

func TestConfigRedacted(t *testing.T) {
	c, err := loadConfig(context.Background(), envFrom(map[string]string{
		"DATABASE_URL":         "postgres://app:hunter2@db/ledger",
		"DEMO_TOSS_SECRET_KEY": "live_sk_abcdefghijkl",
		"ADMIN_TOKEN":          "admintoken-0123456789abcdef0123456789",
		"SECRETS_KEY":          base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'k'}, 32)),
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Redacted()
	if got["DEMO_TOSS_SECRET_KEY"] != "live_sk_****" || got["DATABASE_URL"] != "postgres://app:xxxxx@db/ledger" {
		t.Fatalf("redacted %v", got)
	}
	if all := fmt.Sprint(got); strings.Contains(all, "hunter2") || strings.Contains(all, "abcdefghijkl") ||
		strings.Contains(all, "admintoken") || strings.Contains(all, "a2tr") {
		t.Fatalf("a secret in the start-up log: %s", all)
	}
}

// TestHelp is the defect report's `paymentd -h` exiting 1: help goes to stdout, lists every
// variable, and comes back as flag.ErrHelp (main exits 0), whatever the environment holds.
func TestHelp(t *testing.T) {
	settings, err := config.Settings(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{arg}, envFrom(map[string]string{"RECOVERY_ENABLED": "flase"}), &out, nil)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: error %v, want flag.ErrHelp", arg, err)
		}
		help := out.String()
		if !strings.HasPrefix(help, "Usage: paymentd [-h]\n") || !strings.Contains(help, "\nEnvironment:\n") {
			t.Fatalf("%s: help\n%s", arg, help)
		}
		for _, s := range settings {
			if !strings.Contains(help, "\n  "+s.Name+" ") {
				t.Errorf("%s: help does not list %s", arg, s.Name)
			}
		}
	}
}

// TestArgumentsAreRefusedNamingThem: the flags paymentd had are gone (the environment is the
// one way to configure it), and an argument is an error, not ignored.
func TestArgumentsAreRefusedNamingThem(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-http-addr", ":9000"}, "flag provided but not defined: -http-addr"},
		{[]string{"--recovery=false"}, "flag provided but not defined: -recovery"},
		{[]string{"serve"}, `unexpected argument "serve"`},
	} {
		var out bytes.Buffer
		err := run(context.Background(), c.args, envFrom(map[string]string{"TOSS_SIMULATOR": "true"}), &out, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "paymentd -h") {
			t.Errorf("%v: error %v, want %q and a pointer to paymentd -h", c.args, err, c.want)
		}
	}
}

func envFrom(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func post(t *testing.T, apiKey, url, body string, want int) map[string]any {
	t.Helper()
	status, raw := testenv.Do(t, apiKey, "POST", url, body, "Idempotency-Key", fmt.Sprint(time.Now().UnixNano()))
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || status != want {
		t.Fatalf("POST %s: %d %s, want %d", url, status, raw, want)
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

// TestRemovedSettingsAreRefused: the single-merchant settings stop start-up with a pointer to
// what replaced them, instead of being silently ignored.
func TestRemovedSettingsAreRefused(t *testing.T) {
	for name, want := range map[string]string{
		"TOSS_SECRET_KEY": "TOSS_SECRET_KEY: is no longer read: each merchant has its own Toss secret key",
		"MERCHANT_ID":     "MERCHANT_ID: is no longer read",
	} {
		_, err := loadConfig(context.Background(), envFrom(map[string]string{"TOSS_SIMULATOR": "true", name: "test_sk_x"}))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "test_sk_x") && name == "TOSS_SECRET_KEY" {
			t.Errorf("%s set: %v", name, err)
		}
	}
}

// startPaymentd runs paymentd with env until the test ends and returns its base URL.
func startPaymentd(t *testing.T, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { done <- run(ctx, nil, envFrom(env), &logs, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("paymentd: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("paymentd exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("paymentd did not start\n%s", logs.String())
	}
	return ""
}

// TestKeysAcrossTwoInstances runs two paymentd instances on one database and one Toss (the
// simulator as a separate server): a merchant created through instance A's admin API pays
// through instance B; a rotation made on A leaves the old key working on B for the grace
// period; a revocation made on A is refused by B (within AUTH_CACHE_TTL).
func TestKeysAcrossTwoInstances(t *testing.T) {
	sim := tosssim.New(tosssim.Config{})
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	env := map[string]string{
		"DATABASE_URL":              pgtest.NewDatabase(t),
		"HTTP_ADDR":                 "127.0.0.1:0",
		"TOSS_BASE_URL":             simSrv.URL,
		"SECRETS_KEY":               base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"ADMIN_TOKEN":               "two-instances-admin-token-0123456789abcdef",
		"AUTH_CACHE_TTL":            "200ms",
		"RECOVERY_ENABLED":          "false",
		"SETTLEMENT_IMPORT_ENABLED": "false",
	}
	a := startPaymentd(t, withEnv(env, "DATA_DIR", t.TempDir()))
	b := startPaymentd(t, withEnv(env, "DATA_DIR", t.TempDir()))
	admin := func(method, url, body string, want int) map[string]any {
		t.Helper()
		status, raw := testenv.Do(t, "", method, url, body, "Authorization", "Bearer "+env["ADMIN_TOKEN"])
		var out map[string]any
		if json.Unmarshal(raw, &out) != nil || status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, url, status, raw, want)
		}
		return out
	}
	created := admin("POST", a+"/admin/v1/merchants", `{"name":"Two instances","tossSecretKey":"test_sk_twoinstances"}`, 201)
	id, key, keyID := created["merchantId"].(string), created["apiKey"].(string), created["keyId"].(string)

	co := post(t, key, b+"/api/v1/payments/checkout", `{"orderName":"Book","buyerId":"b","lines":[{"sellerId":"s","productId":"p","amount":"5000"}]}`, 201)
	orderID := co["orderId"].(string)
	pk, err := sim.CreateSession(orderID, decimal.NewFromInt(5000), "Book")
	if err != nil {
		t.Fatal(err)
	}
	if cf := post(t, key, b+"/api/v1/payments/confirm", fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":"5000"}`, pk, orderID), 200); cf["status"] != "SUCCESS" {
		t.Fatalf("confirm through B with the merchant's own Toss key: %v", cf)
	}

	rotated := admin("POST", a+"/admin/v1/merchants/"+id+"/keys/"+keyID+"/rotate", `{"gracePeriod":"1h"}`, 201)
	next := rotated["apiKey"].(string)
	for _, k := range []string{key, next} {
		if status, body := testenv.Do(t, k, "GET", b+"/api/v1/payments/"+orderID, ""); status != 200 {
			t.Fatalf("during the grace period B must take both keys: %d %s", status, body)
		}
	}
	admin("POST", a+"/admin/v1/merchants/"+id+"/keys/"+keyID+"/revoke", "", 200)
	testenv.WaitFor(t, 10*time.Second, "instance B to refuse the revoked key", func() bool {
		status, _ := testenv.Do(t, key, "GET", b+"/api/v1/payments/"+orderID, "")
		return status == http.StatusUnauthorized
	})
	if status, _ := testenv.Do(t, next, "GET", b+"/api/v1/payments/"+orderID, ""); status != 200 {
		t.Fatalf("the rotated key after the old one's revocation: %d", status)
	}
}

func withEnv(env map[string]string, k, v string) map[string]string {
	out := maps.Clone(env)
	out[k] = v
	return out
}

// TestSealsAndKeyedChain: with AUDIT_SIGNING_KEY and AUDIT_CHAIN_KEY, paymentd keys every event
// it appends and seals the history at start (then every AUDIT_SEAL_INTERVAL), in the database
// and in AUDIT_SEAL_FILE; the audit, with the public key and the same chain key, passes.
func TestSealsAndKeyedChain(t *testing.T) {
	seed, pub, err := audit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	chainKey := bytes.Repeat([]byte{9}, 32)
	dataDir := t.TempDir()
	dbURL := pgtest.NewDatabase(t)
	startPaymentd(t, map[string]string{
		"DATABASE_URL":              dbURL,
		"HTTP_ADDR":                 "127.0.0.1:0",
		"DATA_DIR":                  dataDir,
		"TOSS_SIMULATOR":            "true",
		"RECOVERY_ENABLED":          "false",
		"SETTLEMENT_IMPORT_ENABLED": "false",
		"AUDIT_SIGNING_KEY":         base64.StdEncoding.EncodeToString(seed),
		"AUDIT_PUBLIC_KEY":          base64.StdEncoding.EncodeToString(pub),
		"AUDIT_CHAIN_KEY":           base64.StdEncoding.EncodeToString(chainKey),
	})
	pool, err := db.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// The seal is stored, then appended to the file: wait for both.
	testenv.WaitFor(t, 30*time.Second, "the seal made at start, in the database and the file", func() bool {
		var n int
		if pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_seals`).Scan(&n) != nil || n == 0 {
			return false
		}
		seals, err := audit.ReadSealFile(filepath.Join(dataDir, "audit-seals.jsonl"))
		return err == nil && len(seals) > 0
	})
	seals, err := audit.ReadSealFile(filepath.Join(dataDir, "audit-seals.jsonl"))
	if err != nil || len(seals) != 1 || seals[0].Err != nil || seals[0].Seal.Verify(pub) != nil || seals[0].Seal.Streams != 1 {
		t.Fatalf("the seal file: %+v, %v", seals, err)
	}
	var plain int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE hash_alg <> 'hmac-sha256'`).Scan(&plain); err != nil || plain != 0 {
		t.Fatalf("%d events hashed without the chain key (%v)", plain, err)
	}
	key, err := eventstore.NewChainKey(chainKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.New(pool, eventstore.NewPostgres(pool, eventstore.WithChainKey(key)), audit.Options{
		PublicKey: pub, SealFile: filepath.Join(dataDir, "audit-seals.jsonl"),
	}).Run(context.Background())
	if err != nil || !rep.OK {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}
