package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/config"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
)

var ctx = context.Background()

func envFrom(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// emptyDatabase creates a database with no tables and returns its URL; it is dropped after t.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	admin, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatalf("PostgreSQL is needed: %v", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t_ctl_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.ServerURL())
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestMigrate(t *testing.T) {
	dbURL := emptyDatabase(t)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"migrate"}, envFrom(map[string]string{"DATABASE_URL": dbURL}), nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "migrations applied: ") || strings.HasPrefix(out.String(), "migrations applied: 0\n") {
		t.Fatalf("output %q", out.String())
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatalf("events table after migrate: %v", err)
	}
	out.Reset()
	if err := run(ctx, []string{"migrate"}, envFrom(map[string]string{"DATABASE_URL": dbURL}), nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "migrations applied: 0\n" {
		t.Fatalf("second migrate: %q", out.String())
	}
}

func TestSettlementsImport(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, _ := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-1", Amount: decimal.RequireFromString("12000")})
	getenv := envFrom(map[string]string{
		"DATABASE_URL":  env.Pool.Config().ConnString(),
		"TOSS_BASE_URL": env.SimURL,
		"SECRETS_KEY":   base64.StdEncoding.EncodeToString(env.SecretsKey),
	})
	today := time.Now().In(time.FixedZone("KST", 9*60*60)).Format(time.DateOnly)
	args := []string{"settlements", "import", "--merchant", string(testenv.Merchant), "--from", today, "--to", today}

	var out, errOut bytes.Buffer
	if err := run(ctx, args, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("import: %v\n%s", err, errOut.String())
	}
	want := fmt.Sprintf("page 1: 1 rows (so far: 1 recorded, 0 already recorded, 0 unknown orders, 0 errors)\n"+
		"settlements of %s %s..%s: 1 rows in 1 pages: 1 recorded, 0 already recorded, 0 unknown orders, 0 errors\n", testenv.Merchant, today, today)
	if out.String() != want {
		t.Fatalf("output\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := run(ctx, args, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 rows in 1 pages: 0 recorded, 1 already recorded") {
		t.Fatalf("second import output %q", out.String())
	}
	n := 0
	for _, e := range env.Events(t, co.OrderID) {
		if _, ok := e.(domain.SettlementRecorded); ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d SettlementRecorded events, want 1", n)
	}
	// Another merchant's report never touches this merchant's payments: the row is an unknown
	// order for it.
	env.NewMerchant(t, "other-shop")
	out.Reset()
	other := []string{"settlements", "import", "--merchant", "other-shop", "--from", today, "--to", today}
	if err := run(ctx, other, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 recorded, 0 already recorded, 1 unknown orders") {
		t.Fatalf("another merchant's import: %q", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	full := map[string]string{"TOSS_BASE_URL": "http://127.0.0.1:1"}
	imp := []string{"settlements", "import", "--merchant", "m-1", "--from", "2026-11-01", "--to", "2026-11-21"}
	for _, c := range []struct {
		args    []string
		env     map[string]string
		wantErr string
	}{
		{[]string{"settlements", "import", "--merchant", "m-1", "--from", "2026-11-21", "--to", "2026-11-01"}, full, "from 2026-11-21 is after to 2026-11-01"},
		{[]string{"settlements", "import", "--merchant", "m-1", "--from", "2026/11/01", "--to", "2026-11-21"}, full, `from date "2026/11/01" is not yyyy-MM-dd`},
		{[]string{"settlements", "import", "--merchant", "m-1", "--from", "2026-11-01", "--to", "2026-11-31"}, full, `to date "2026-11-31" is not yyyy-MM-dd`},
		{[]string{"settlements", "import", "--merchant", "m-1", "--from", "2026-11-01"}, full, `required flag(s) "to" not set`},
		{[]string{"settlements", "import", "--from", "2026-11-01", "--to", "2026-11-21"}, full, `required flag(s) "merchant" not set`},
		{[]string{"settlements", "import", "--merchant", "a b", "--from", "2026-11-01", "--to", "2026-11-21"}, full, "--merchant: INVALID_REQUEST"},
		{imp, map[string]string{"DATA_DIR": t.TempDir()}, "SECRETS_KEY: is empty and DATA_DIR holds no secrets-key file"},
		{imp, map[string]string{"DATABASE_URL": "mysql://x"}, `DATABASE_URL: "mysql://x" must be a postgres:// URL`},
		{imp, map[string]string{"TOSS_BASE_URL": "tosspayments"}, `TOSS_BASE_URL: "tosspayments" must be an absolute http(s) URL`},
		// A malformed shared setting fails every command, naming it, rather than taking the default.
		{[]string{"migrate"}, map[string]string{"DATABASE_WAIT": "soon"}, `DATABASE_WAIT: "soon" is not a duration`},
		{[]string{"migrate"}, map[string]string{"TOSS_SIMULATOR": "flase"}, `TOSS_SIMULATOR: "flase" is not a boolean (true or false)`},
		{[]string{"merchants", "set-commission", "m-1", "--rate", "0.1"}, map[string]string{"LOG_LEVEL": "chatty"}, `LOG_LEVEL: "chatty" is not a log level`},
		{[]string{"merchants", "list"}, map[string]string{"SECRETS_KEY": "c2hvcnQ="}, "SECRETS_KEY: the value (not shown) decodes to 5 bytes"},
		{[]string{"merchants", "set-commission", "m-1", "--rate", "1"}, nil, "--rate"},
		{[]string{"merchants", "set-commission", "m-1", "--rate", "1e-1"}, nil, "--rate"},
		{[]string{"merchants", "show", "a.b"}, nil, "merchant id: INVALID_REQUEST"},
		{[]string{"keys", "issue", "--merchant", "m-1", "--scope", "payments:delete"}, nil, `unknown scope "payments:delete"`},
		{[]string{"keys", "rotate", "--merchant", "m-1", "k", "--grace", "-1h"}, nil, "--grace -1h0m0s must be from 0s to 720h0m0s"},
		{[]string{"keys", "rotate", "--merchant", "m-1", "k", "--grace", "721h"}, nil, "--grace 721h0m0s must be from 0s to 720h0m0s"},
		{[]string{"migrate", "now"}, nil, "unknown command"},
		{[]string{"frobnicate"}, nil, "unknown command"},
	} {
		var out, errOut bytes.Buffer
		err := run(ctx, c.args, envFrom(c.env), nil, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.wantErr)
		}
	}
}

// TestMerchantsAndKeys walks an operator through a merchant's life: create it (JSON for
// scripts), list and show it, set its commission and Toss key (from stdin), issue, rotate and
// revoke keys, and re-seal the Toss keys under a new SECRETS_KEY.
func TestMerchantsAndKeys(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	oldKey := base64.StdEncoding.EncodeToString(randomKey(t))
	vars := map[string]string{"DATABASE_URL": dbURL, "SECRETS_KEY": oldKey}
	ctl := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(ctx, args, envFrom(vars), strings.NewReader(stdin), &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	var created struct {
		MerchantID, APIKey, KeyID, Mode string
		Scopes                          []string
	}
	if err := json.Unmarshal([]byte(ctl("", "merchants", "create", "--name", "Book shop", "--toss-secret-key", "test_sk_bookshop0001", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.MerchantID, "mch_") || !strings.HasPrefix(created.APIKey, "sk_test_") || len(created.Scopes) != 4 || created.Mode != "test" {
		t.Fatalf("create --json: %+v", created)
	}
	id := created.MerchantID
	if out := ctl("", "merchants", "show", id); !strings.Contains(out, "test_sk_…0001") || strings.Contains(out, "test_sk_bookshop0001") || !strings.Contains(out, created.KeyID) {
		t.Fatalf("show must name the Toss key by its hint only and list the key:\n%s", out)
	}
	if out := ctl("", "merchants", "set-commission", id, "--rate", "0.125"); !strings.Contains(out, "set to 0.125") {
		t.Fatalf("set-commission: %q", out)
	}
	if out := ctl("", "merchants", "set-fee-rate", id, "--rate", "0.0341"); !strings.Contains(out, "set to 0.0341 from now") {
		t.Fatalf("set-fee-rate: %q", out)
	}
	if out := ctl("", "merchants", "set-fee-rate", id, "--rate", "0.05", "--from", "2099-01-01"); !strings.Contains(out, "from the start of 2099-01-01") {
		t.Fatalf("set-fee-rate --from: %q", out)
	}
	if out := ctl("", "merchants", "show", id); !strings.Contains(out, "fee rate:    0.0341") {
		t.Fatalf("show lacks the fee rate:\n%s", out)
	}
	for _, bad := range []string{"1", "-0.1", "3.41%", "0.0000001", "1e-2", "0.03 --from 2026-13-01"} {
		var out, errOut bytes.Buffer
		args := append([]string{"merchants", "set-fee-rate", id, "--rate"}, strings.Fields(bad)...)
		if err := run(ctx, args, envFrom(vars), nil, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("set-fee-rate --rate %s: %v", bad, err)
		}
	}
	if out := ctl("live_sk_bookshop0002\n", "merchants", "set-toss-key", id, "--toss-secret-key", "-"); !strings.Contains(out, "live_sk_…0002 (live)") {
		t.Fatalf("set-toss-key from stdin: %q", out)
	}
	var issued struct{ APIKey, KeyID string }
	if err := json.Unmarshal([]byte(ctl("", "keys", "issue", "--merchant", id, "--scope", "payments:read", "--json")), &issued); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(issued.APIKey, "sk_live_") {
		t.Fatalf("a key issued after a live Toss key is a live key: %q", issued.APIKey)
	}
	if out := ctl("", "keys", "rotate", "--merchant", id, created.KeyID, "--grace", "1h"); !strings.Contains(out, "replaces "+created.KeyID) {
		t.Fatalf("rotate: %q", out)
	}
	if out := ctl("", "keys", "revoke", "--merchant", id, issued.KeyID); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q", out)
	}
	out := ctl("", "keys", "list", "--merchant", id)
	for _, want := range []string{created.KeyID + "  expiring", issued.KeyID + "  revoked", "active"} {
		if !strings.Contains(out, want) {
			t.Fatalf("keys list lacks %q:\n%s", want, out)
		}
	}
	testenv.WaitFor(t, 10*time.Second, "the merchant listed", func() bool {
		return strings.Contains(ctl("", "merchants", "list"), id)
	})
	// Rotate the key-encryption key: both Toss keys are re-sealed; the old key can then go.
	newKey := base64.StdEncoding.EncodeToString(randomKey(t))
	vars["SECRETS_KEY"], vars["SECRETS_KEY_PREVIOUS"] = newKey, oldKey
	if out := ctl("", "secrets", "rotate"); !strings.Contains(out, "2 re-sealed, 0 already under it") {
		t.Fatalf("secrets rotate: %q", out)
	}
	if out := ctl("", "secrets", "rotate"); !strings.Contains(out, "0 re-sealed, 2 already under it") {
		t.Fatalf("secrets rotate again: %q", out)
	}
}

func randomKey(t *testing.T) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHelpListsTheEnvironment: every command's --help ends with the variables paymentctl reads,
// and works whatever the environment holds (it is loaded only when a command runs).
func TestHelpListsTheEnvironment(t *testing.T) {
	settings, err := config.Settings(Config{})
	if err != nil {
		t.Fatal(err)
	}
	broken := envFrom(map[string]string{"DATABASE_WAIT": "soon", "DATABASE_URL": "mysql://x"})
	for _, args := range [][]string{
		{"--help"}, {"migrate", "--help"}, {"settlements", "import", "--help"}, {"merchants", "create", "-h"}, {"keys", "rotate", "--help"}, {"help", "migrate"},
		{"audit", "--help"}, {"audit", "seal", "--help"},
	} {
		var out, errOut bytes.Buffer
		if err := run(ctx, args, broken, nil, &out, &errOut); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		help := out.String()
		_, env, ok := strings.Cut(help, "\nEnvironment:\n")
		if !ok || !strings.Contains(help, "Usage:") {
			t.Fatalf("%v: no Environment section:\n%s", args, help)
		}
		for _, s := range settings {
			if !strings.Contains(env, "  "+s.Name+" ") {
				t.Errorf("%v: Environment does not list %s", args, s.Name)
			}
		}
		if !strings.Contains(strings.Join(strings.Fields(env), " "), "TOSS_BASE_URL Toss Payments API base URL (default https://api.tosspayments.com)") {
			t.Errorf("%v: Environment lacks defaults and descriptions:\n%s", args, env)
		}
	}
}

// history shows a payment's timeline with keys and hash prefixes, and warns about (and exits 1
// for) a history that fails verification; balances shows each merchant's books at a moment.
func TestHistoryAndBalances(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, _ := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-1", Amount: decimal.RequireFromString("12000")})
	getenv := envFrom(map[string]string{"DATABASE_URL": env.Pool.Config().ConnString()})
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"history", string(co.OrderID)}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("history: %v", err)
	}
	for _, want := range []string{"CheckoutCreated", "ConfirmationStarted", string(co.OrderID) + ":confirm:1", "PaymentApproved", "12000", "merchant"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("history lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(ctx, []string{"history", string(co.OrderID), "--json"}, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var h struct {
		Verified bool
		Events   []struct{ Event, Hash, At string }
	}
	if err := json.Unmarshal(out.Bytes(), &h); err != nil || !h.Verified || len(h.Events) != 3 || len(h.Events[0].Hash) != 12 || !strings.HasSuffix(h.Events[0].At, "+09:00") {
		t.Fatalf("history --json: %+v %v\n%s", h, err, out.String())
	}
	testenv.WaitFor(t, 10*time.Second, "the ledger to book the payment", func() bool {
		out.Reset()
		return run(ctx, []string{"balances", "--merchant", string(testenv.Merchant)}, getenv, nil, &out, &errOut) == nil &&
			strings.Contains(out.String(), "psp_receivable:toss") && strings.Contains(out.String(), "12000")
	})
	out.Reset()
	if err := run(ctx, []string{"balances", "--as-of", "2020-01-01"}, getenv, nil, &out, &errOut); err != nil || strings.Contains(out.String(), "psp_receivable") {
		t.Fatalf("balances before anything happened: %v\n%s", err, out.String())
	}
	if err := run(ctx, []string{"balances", "--as-of", "yesterday"}, getenv, nil, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--as-of") {
		t.Fatalf("a bad --as-of: %v", err)
	}
	// An unknown merchant is an error, not empty books.
	if err := run(ctx, []string{"balances", "--merchant", "merchant-nobody"}, getenv, nil, &out, &errOut); !errors.Is(err, domain.ErrMerchantNotFound) {
		t.Fatalf("balances of an unknown merchant: %v", err)
	}
	// Edited history is shown, under a warning, with exit status 1.
	for _, stmt := range []string{`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = jsonb_set(data::jsonb, '{totalAmount}', '"99999"')::text::json WHERE stream_id = '` + domain.StreamName(co.OrderID) + `' AND version = 3`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`} {
		if _, err := env.Pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	err := run(ctx, []string{"history", string(co.OrderID)}, getenv, nil, &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "WARNING: this history failed verification") || !strings.Contains(out.String(), "version 3") {
		t.Fatalf("history of an edited payment: %v\n%s", err, out.String())
	}
}
