package main

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
)

type ctlResult struct {
	code        int
	out, errOut string
}

// reconcileEnv is a test environment with two merchants, each with its own Toss account behind
// one Toss address (the key chooses: the test merchant's reaches env.Sim, shop-b's an empty
// simulator of its own), and paymentctl's environment pointing at it.
func reconcileEnv(t *testing.T) (*testenv.Env, func(args ...string) ctlResult) {
	t.Helper()
	env := testenv.New(t, testenv.Options{})
	simB := tosssim.New(tosssim.Config{})
	env.NewMerchant(t, "shop-b")
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, _, ok := r.BasicAuth(); ok && user == "test_sk_shop-b" {
			simB.Handler().ServeHTTP(w, r)
			return
		}
		env.Sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(router.Close)
	vars := map[string]string{
		"DATABASE_URL":  env.Pool.Config().ConnString(),
		"TOSS_BASE_URL": router.URL,
		"SECRETS_KEY":   base64.StdEncoding.EncodeToString(env.SecretsKey),
	}
	return env, func(args ...string) ctlResult {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(ctx, args, envFrom(vars), nil, &out, &errOut)
		code := 0
		if err != nil {
			code = exitCode(err)
		}
		return ctlResult{code: code, out: out.String(), errOut: errOut.String()}
	}
}

func TestReconcileCommand(t *testing.T) {
	env, ctl := reconcileEnv(t)
	paid, _ := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "p", Amount: decimal.RequireFromString("10000")})
	refunded, key := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "p", Amount: decimal.RequireFromString("8000")})
	three := decimal.RequireFromString("3000")
	if _, err := env.Sim.ConsoleCancel(string(key), &three, "console refund"); err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(domain.KST).Format(time.DateOnly)
	m := string(testenv.Merchant)

	// Without --apply: the console refund is a difference Toss's truth resolves, left as it is:
	// exit 1.
	res := ctl("reconcile", "--from", today, "--to", today, "--merchant", m, "--format", "json")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", res.code, res.out, res.errOut)
	}
	var got struct {
		From, To    string
		Counts      map[string]int
		Differences []struct{ Category, OrderID, PaymentKey, TransactionKey, Ours, Toss, Resolution string }
		Runs        []struct{ RunID int64 }
	}
	if err := json.Unmarshal([]byte(res.out), &got); err != nil {
		t.Fatalf("%v: %s", err, res.out)
	}
	if got.From != today || got.To != today || got.Counts["matched"] != 2 || got.Counts["status_mismatch"] != 1 || len(got.Counts) != 9 ||
		len(got.Differences) != 1 || len(got.Runs) != 1 || got.Runs[0].RunID == 0 {
		t.Fatalf("json %+v", got)
	}
	if d := got.Differences[0]; d.Category != "status_mismatch" || d.OrderID != string(refunded.OrderID) || d.Resolution != "none" ||
		d.PaymentKey != string(key) || d.TransactionKey == "" || d.Toss == "" || d.Ours == "" {
		t.Fatalf("difference %+v", d)
	}
	for _, want := range []string{"Toss transactions page 1: 3 rows so far", "Toss settlements page 1", "ledger: 2/2 payments read and verified"} {
		if !strings.Contains(res.errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, res.errOut)
		}
	}

	// --apply books it: exit 0, one CSV row, resolution applied.
	res = ctl("reconcile", "--from", today, "--to", today, "--merchant", m, "--apply", "--format", "csv")
	if res.code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", res.code, res.out, res.errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(res.out)).ReadAll()
	if err != nil || len(rows) != 2 || strings.Join(rows[0], ",") != "merchantId,category,orderId,paymentKey,transactionKey,ours,toss,resolution,detail" {
		t.Fatalf("csv %q %v", res.out, err)
	}
	if r := rows[1]; r[0] != m || r[1] != "status_mismatch" || r[2] != string(refunded.OrderID) || r[7] != "applied" {
		t.Fatalf("csv row %q", r)
	}

	// Every merchant in turn, each with its own key: the rerun has nothing left; shop-b, whose
	// Toss account is empty, has nothing either (it would see the test merchant's payments if
	// it were asked with the wrong key).
	res = ctl("reconcile", "--from", today, "--to", today)
	if res.code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", res.code, res.out, res.errOut)
	}
	flat := strings.Join(strings.Fields(res.out), " ")
	for _, want := range []string{"merchant merchant-test " + today + ".." + today, "merchant shop-b ", "matched 3 ", "unresolved 0 "} {
		if !strings.Contains(flat, want) {
			t.Errorf("table lacks %q:\n%s", want, res.out)
		}
	}
	if strings.Contains(res.out, string(paid.OrderID)) || strings.Contains(res.out, "MERCHANT  CATEGORY") {
		t.Errorf("a clean run lists no differences:\n%s", res.out)
	}

	// Errors exit 2.
	for _, args := range [][]string{
		{"reconcile", "--from", today},
		{"reconcile", "--from", today, "--to", "2026-13-01"},
		{"reconcile", "--from", today, "--to", today, "--format", "xml"},
		{"reconcile", "--from", today, "--to", today, "--merchant", "no-such-merchant"},
		{"reconcile", "--from", today, "--to", today, "--no-such-flag"},
	} {
		if res := ctl(args...); res.code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, res.code, res.errOut)
		}
	}
}

// Toss unreachable is an error (exit 2), and the run's summary says so.
func TestReconcileCommandTossDown(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	vars := map[string]string{
		"DATABASE_URL":  env.Pool.Config().ConnString(),
		"TOSS_BASE_URL": dead.URL,
		"SECRETS_KEY":   base64.StdEncoding.EncodeToString(env.SecretsKey),
	}
	today := time.Now().In(domain.KST).Format(time.DateOnly)
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"reconcile", "--from", today, "--to", today, "--format", "json"}, envFrom(vars), nil, &out, &errOut)
	if exitCode(err) != 2 || err == nil {
		t.Fatalf("exit %d (%v), want 2\n%s", exitCode(err), err, errOut.String())
	}
	var got struct {
		Runs []struct {
			RunID int64
			Error string
		}
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Runs) != 1 || got.Runs[0].Error == "" || got.Runs[0].RunID == 0 {
		t.Fatalf("json %s %v", out.String(), err)
	}
}
