package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	if err := run(ctx, []string{"migrate"}, envFrom(map[string]string{"DATABASE_URL": dbURL}), &out, &errOut); err != nil {
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
	if err := run(ctx, []string{"migrate"}, envFrom(map[string]string{"DATABASE_URL": dbURL}), &out, &errOut); err != nil {
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
		"DATABASE_URL":    env.Pool.Config().ConnString(),
		"TOSS_BASE_URL":   env.SimURL,
		"TOSS_SECRET_KEY": testenv.SecretKey,
	})
	today := time.Now().In(time.FixedZone("KST", 9*60*60)).Format(time.DateOnly)
	args := []string{"settlements", "import", "--from", today, "--to", today}

	var out, errOut bytes.Buffer
	if err := run(ctx, args, getenv, &out, &errOut); err != nil {
		t.Fatalf("import: %v\n%s", err, errOut.String())
	}
	want := fmt.Sprintf("page 1: 1 rows (so far: 1 recorded, 0 already recorded, 0 unknown orders, 0 errors)\n"+
		"settlements %s..%s: 1 rows in 1 pages: 1 recorded, 0 already recorded, 0 unknown orders, 0 errors\n", today, today)
	if out.String() != want {
		t.Fatalf("output\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := run(ctx, args, getenv, &out, &errOut); err != nil {
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
}

func TestUsageErrors(t *testing.T) {
	full := map[string]string{"TOSS_SECRET_KEY": "test_sk_x", "TOSS_BASE_URL": "http://127.0.0.1:1"}
	for _, c := range []struct {
		args    []string
		env     map[string]string
		wantErr string
	}{
		{[]string{"settlements", "import", "--from", "2026-11-21", "--to", "2026-11-01"}, full, "from 2026-11-21 is after to 2026-11-01"},
		{[]string{"settlements", "import", "--from", "2026/11/01", "--to", "2026-11-21"}, full, `from date "2026/11/01" is not yyyy-MM-dd`},
		{[]string{"settlements", "import", "--from", "2026-11-01", "--to", "2026-11-31"}, full, `to date "2026-11-31" is not yyyy-MM-dd`},
		{[]string{"settlements", "import", "--from", "2026-11-01"}, full, `required flag(s) "to" not set`},
		{[]string{"settlements", "import", "--from", "2026-11-01", "--to", "2026-11-21"}, nil, "TOSS_SECRET_KEY: is required by settlements import"},
		{[]string{"settlements", "import", "--from", "2026-11-01", "--to", "2026-11-21"}, map[string]string{"TOSS_SECRET_KEY": "test_sk_x", "DATABASE_URL": "mysql://x"}, `DATABASE_URL: "mysql://x" must be a postgres:// URL`},
		{[]string{"settlements", "import", "--from", "2026-11-01", "--to", "2026-11-21"}, map[string]string{"TOSS_SECRET_KEY": "test_sk_x", "TOSS_BASE_URL": "tosspayments"}, `TOSS_BASE_URL: "tosspayments" must be an absolute http(s) URL`},
		// A malformed shared setting fails every command, naming it, rather than taking the default.
		{[]string{"migrate"}, map[string]string{"DATABASE_WAIT": "soon"}, `DATABASE_WAIT: "soon" is not a duration`},
		{[]string{"migrate"}, map[string]string{"TOSS_SIMULATOR": "flase"}, `TOSS_SIMULATOR: "flase" is not a boolean (true or false)`},
		{[]string{"commission", "set", "--merchant", "m-1", "--rate", "0.1"}, map[string]string{"LOG_LEVEL": "chatty"}, `LOG_LEVEL: "chatty" is not a log level`},
		{[]string{"commission", "set", "--merchant", "m-1", "--rate", "0.1"}, map[string]string{"SECRETS_KEY": "c2hvcnQ="}, "SECRETS_KEY: the value (not shown) decodes to 5 bytes"},
		{[]string{"migrate", "now"}, nil, "unknown command"},
		{[]string{"frobnicate"}, nil, "unknown command"},
	} {
		var out, errOut bytes.Buffer
		err := run(ctx, c.args, envFrom(c.env), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.wantErr)
		}
	}
}

func TestCommissionSet(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := envFrom(map[string]string{"DATABASE_URL": dbURL})
	var out, errOut bytes.Buffer
	for _, rate := range []string{"0.1", "0.125"} {
		out.Reset()
		if err := run(ctx, []string{"commission", "set", "--merchant", "m-1", "--rate", rate}, env, &out, &errOut); err != nil {
			t.Fatalf("commission set %s: %v", rate, err)
		}
		if !strings.Contains(out.String(), "commission of m-1 set to "+rate) {
			t.Fatalf("output %q", out.String())
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rate string
	if err := conn.QueryRow(ctx, `SELECT rate::text FROM merchant_commission_rates WHERE merchant_id = 'm-1'`).Scan(&rate); err != nil || rate != "0.125" {
		t.Fatalf("stored rate %q (%v), want 0.125", rate, err)
	}
	for _, bad := range []string{"1", "-0.1", "ten", "1e-1x"} {
		if err := run(ctx, []string{"commission", "set", "--merchant", "m-1", "--rate", bad}, env, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--rate") {
			t.Errorf("rate %q: error %v", bad, err)
		}
	}
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
		{"--help"}, {"migrate", "--help"}, {"settlements", "import", "--help"}, {"commission", "set", "-h"}, {"help", "migrate"},
	} {
		var out, errOut bytes.Buffer
		if err := run(ctx, args, broken, &out, &errOut); err != nil {
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
