package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/config"
	"github.com/paymentledger/ledger/internal/testenv"
)

func TestAuditKeygen(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"audit", "keygen"}, envFrom(nil), nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "AUDIT_SIGNING_KEY=") || !strings.HasPrefix(lines[1], "AUDIT_PUBLIC_KEY=") {
		t.Fatalf("keygen printed %q", out.String())
	}
	env := map[string]string{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	// What it prints is what the configuration reads, and the two halves belong together.
	var cfg Config
	if err := config.Load(ctx, envFrom(env), &cfg); err != nil {
		t.Fatalf("the printed keys do not load: %v", err)
	}
	if !ed25519.PrivateKey(cfg.AuditSigningKey).Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(cfg.AuditPublicKey)) {
		t.Fatal("the public key is not the signing key's")
	}
	if !strings.Contains(errOut.String(), "keep it off the database machine") {
		t.Fatalf("no advice on keeping the key: %q", errOut.String())
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "keygen"}, envFrom(nil), nil, &out, &errOut); err != nil || strings.Contains(out.String(), env["AUDIT_SIGNING_KEY"]) {
		t.Fatalf("a second keygen printed the same key (%v)", err)
	}
}

type jsonReport struct {
	OK       bool            `json:"ok"`
	Streams  int             `json:"streams"`
	Events   int             `json:"events"`
	Problems []audit.Problem `json:"problems"`
}

func TestAuditSealAndExitCodes(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, _ := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-1", Amount: decimal.RequireFromString("12000")})
	seed, pub, err := audit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	vars := map[string]string{
		"DATABASE_URL":      env.Pool.Config().ConnString(),
		"DATA_DIR":          dataDir,
		"AUDIT_SIGNING_KEY": base64.StdEncoding.EncodeToString(seed),
		"AUDIT_PUBLIC_KEY":  base64.StdEncoding.EncodeToString(pub),
	}
	getenv := envFrom(vars)
	runCtl := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, getenv, nil, &out, &errOut)
		return out.String(), errOut.String(), err
	}

	out, _, err := runCtl("audit", "seal")
	if err != nil || !strings.HasPrefix(out, "seal 1: position ") || !strings.Contains(out, filepath.Join(dataDir, "audit-seals.jsonl")) {
		t.Fatalf("seal: %v\n%s", err, out)
	}
	sealFile := filepath.Join(dataDir, "audit-seals.jsonl")

	out, stderr, err := runCtl("audit", "--format", "json", "--seal-file", sealFile)
	var rep jsonReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Problems == nil || len(rep.Problems) != 0 || rep.Events == 0 {
		t.Fatalf("audit of a clean history: %v\n%s", err, out)
	}
	if !strings.Contains(stderr, "streams") || !strings.Contains(stderr, "events/s") {
		t.Fatalf("no progress on stderr: %q", stderr)
	}
	if out, _, err := runCtl("audit"); err != nil || !strings.HasPrefix(out, "audit: ok: ") {
		t.Fatalf("table audit of a clean history: %v\n%s", err, out)
	}

	// An event edited behind the trigger's back: exit 1, the stream and version named.
	stream := domain.StreamName(co.OrderID)
	for _, sql := range []string{
		`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = replace(data::text, '12000', '1200')::json WHERE stream_id = '` + stream + `' AND version = 1`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`,
	} {
		if _, err := env.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err = runCtl("audit", "--format", "json", "--seal-file", sealFile)
	rep = jsonReport{}
	if err == nil || exitCode(err) != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK {
		t.Fatalf("audit of an edited history: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || p.Kind == audit.KindHashMismatch && p.Stream == stream && p.Version == 1
	}
	if !found {
		t.Fatalf("no hash_mismatch at %s version 1:\n%s", stream, out)
	}
	out, _, err = runCtl("audit")
	if err == nil || !strings.Contains(out, "KIND") || !strings.Contains(out, "hash_mismatch") || !strings.Contains(out, stream) {
		t.Fatalf("table audit of an edited history: %v\n%s", err, out)
	}

	// Usage and configuration mistakes fail before any check.
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"audit", "--format", "xml"}, vars, "--format must be table or json"},
		{[]string{"audit", "--public-key", "bm9wZQ=="}, vars, "--public-key"},
		{[]string{"audit", "seal"}, map[string]string{"DATABASE_URL": vars["DATABASE_URL"]}, "AUDIT_SIGNING_KEY is not set"},
		{[]string{"audit"}, map[string]string{"DATABASE_URL": vars["DATABASE_URL"]}, "no public key"},
		{[]string{"audit"}, map[string]string{"DATABASE_URL": vars["DATABASE_URL"], "AUDIT_PUBLIC_KEY": vars["AUDIT_PUBLIC_KEY"],
			"AUDIT_SIGNING_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))}, "AUDIT_PUBLIC_KEY: is not the public key of AUDIT_SIGNING_KEY"},
	} {
		var out, errOut bytes.Buffer
		if err := run(ctx, c.args, envFrom(c.env), nil, &out, &errOut); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		} else if c.args[len(c.args)-1] != "seal" && exitCode(err) != 2 {
			t.Errorf("%v: exit %d, want 2 (the audit could not check)", c.args, exitCode(err))
		}
	}
}

// A read-model row changed by hand is projection drift to the audit; replay --swap, which
// first proves the history, puts the replayed rows back; and a swap over an edited history is
// refused with nothing changed.
func TestAuditFindsProjectionDriftAndReplaySwapRepairsIt(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	co, _ := env.Pay(t, domain.CheckoutLine{SellerID: "seller-a", ProductID: "book-1", Amount: decimal.RequireFromString("12000")})
	status := func() string {
		var s string
		if err := env.Pool.QueryRow(ctx, `SELECT status FROM payment_orders WHERE order_id = $1`, co.OrderID).Scan(&s); err != nil {
			return err.Error()
		}
		return s
	}
	testenv.WaitFor(t, 30*time.Second, "the payment's row at SUCCESS", func() bool { return status() == string(domain.StatusSuccess) })
	runCtl := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, envFrom(map[string]string{"DATABASE_URL": env.Pool.Config().ConnString()}), nil, &out, &errOut)
		return out.String(), err
	}
	runAudit := func() (jsonReport, string, error) {
		out, err := runCtl("audit", "--format", "json")
		var rep jsonReport
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
			t.Fatalf("audit printed no report (%v, %v):\n%s", err, jerr, out)
		}
		return rep, out, err
	}
	if rep, out, err := runAudit(); err != nil || !rep.OK {
		t.Fatalf("audit before the edit: %v\n%s", err, out)
	}

	if _, err := env.Pool.Exec(ctx, `UPDATE payment_orders SET status = 'FAILURE' WHERE order_id = $1`, co.OrderID); err != nil {
		t.Fatal(err)
	}
	rep, out, err := runAudit()
	if err == nil || exitCode(err) != 1 || rep.OK || len(rep.Problems) != 1 {
		t.Fatalf("audit of an edited read model: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	if p := rep.Problems[0]; p.Kind != audit.KindProjectionDrift || !strings.Contains(p.Detail, "payment_orders row ("+string(co.OrderID)+") differs in status") {
		t.Fatalf("want projection_drift naming the row and column, got %+v", p)
	}

	out, err = runCtl("replay", "--swap")
	if err != nil || !strings.Contains(out, "history verified: ") || !strings.Contains(out, "payment_orders: swapped") {
		t.Fatalf("replay --swap: %v\n%s", err, out)
	}
	if s := status(); s != string(domain.StatusSuccess) {
		t.Fatalf("after the swap the row is %s, want SUCCESS", s)
	}
	if rep, out, err := runAudit(); err != nil || !rep.OK {
		t.Fatalf("audit after the swap: %v\n%s", err, out)
	}

	// Edited history is never rebuilt into live tables.
	for _, sql := range []string{
		`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = replace(data::text, '12000', '12001')::json WHERE stream_id = '` + domain.StreamName(co.OrderID) + `' AND version = 1`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`,
	} {
		if _, err := env.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var swaps int
	if err := env.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'replay\_%'`).Scan(&swaps); err != nil {
		t.Fatal(err)
	}
	out, err = runCtl("replay", "--swap")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "the event history has") || !strings.Contains(out, "hash_mismatch") || strings.Contains(out, "swapped") {
		t.Fatalf("replay --swap over an edited history: %v\n%s", err, out)
	}
	var after int
	if err := env.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'replay\_%'`).Scan(&after); err != nil || after != swaps {
		t.Fatalf("shadow schemas %d before, %d after a refused swap (%v)", swaps, after, err)
	}
}
