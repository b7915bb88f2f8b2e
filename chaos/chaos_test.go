package chaos_test

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/natsbus/natstest"
)

const secretKey = "test_sk_chaos"

// The faults of the issue: tosssim -lost-response-rate 0.2 -error-rate 0.2 -latency 5ms-100ms,
// webhooks duplicated and reordered, on a compressed retry schedule.
var simFaults = []string{
	"-lost-response-rate", "0.2", "-error-rate", "0.2", "-latency", "5ms-100ms",
	"-webhook-duplicate-rate", "0.2", "-webhook-reorder", "-time-scale", "0.001",
}

func TestChaos(t *testing.T) {
	bin := buildBinaries(t)
	for _, tc := range []struct {
		name     string
		payments int
		kills    int
	}{
		{"without kills", 150, 0},
		{"with kills", 500, 3},
	} {
		t.Run(tc.name, func(t *testing.T) { runChaos(t, bin, tc.payments, tc.kills) })
	}
}

func runChaos(t *testing.T, bin string, payments, kills int) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("seed %d", seed)
	dbURL := pgtest.NewDatabase(t)
	simAddr, apiAddr := freeAddr(t), freeAddr(t)
	simURL, apiURL := "http://"+simAddr, "http://"+apiAddr

	logs := logDir(t)
	// Runs after the processes are stopped: the race detector and panics report in their logs.
	t.Cleanup(func() { checkLogs(t, logs) })
	sim := startProcess(t, logs, filepath.Join(bin, "tosssim"), append([]string{
		"-addr", simAddr, "-secret-key", secretKey, "-seed", fmt.Sprint(seed),
		"-webhook-url", apiURL + "/webhooks/toss/" + chaosMerchant,
	}, simFaults...), nil)
	defer sim.stop()
	waitHTTP(t, simURL+"/sim/v1/stats", 30*time.Second)

	// NATS outlives the paymentd processes it kills, like a NATS cluster would.
	natsSrv := natstest.Start(t)
	env := []string{
		"NATS_URL=" + natsSrv.URL(),
		"DATABASE_URL=" + dbURL, "HTTP_ADDR=" + apiAddr, "TOSS_BASE_URL=" + simURL, "SECRETS_KEY=" + secretsKey(t),
		"DATA_DIR=" + t.TempDir(), "LOG_LEVEL=warn",
		// One key drives everything, and the simulator sends every webhook from 127.0.0.1:
		// the limits are the production defaults' business, not this test's.
		"API_KEY_RATE=1000000", "API_KEY_BURST=1000000", "WEBHOOK_RATE=1000000", "WEBHOOK_BURST=1000000",
		"PSP_TIMEOUT=2s", "PSP_RETRY_BUDGET=4s", "PSP_RETRY_ATTEMPTS=5",
		"RECOVERY_INTERVAL=200ms", "RECOVERY_STALE_AFTER=2s", "RECOVERY_BASE_DELAY=100ms",
		"RECOVERY_MAX_DELAY=1s", "RECOVERY_MAX_ATTEMPTS=1000", "RECOVERY_LEASE=10s",
	}
	key := createMerchant(t, bin, env)
	paymentd := &daemon{start: func() *process { return startProcess(t, logs, filepath.Join(bin, "paymentd"), nil, env) }}
	paymentd.restart()
	defer paymentd.stop()
	waitHTTP(t, apiURL+"/readyz", 60*time.Second)

	// The killer: SIGKILL paymentd when the driver passes random points, restart it at once.
	var confirmed atomic.Int64
	var killsDone atomic.Int64
	killAt := make([]int64, kills)
	for i := range killAt {
		killAt[i] = int64(payments*(i+1)/(kills+1)) + rng.Int64N(int64(payments/(2*(kills+1))+1))
	}
	var killer sync.WaitGroup
	stopKiller := make(chan struct{})
	killer.Go(func() {
		for _, at := range killAt {
			for confirmed.Load() < at {
				select {
				case <-stopKiller:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
			paymentd.crashAndRestart()
			killsDone.Add(1)
		}
	})

	// The driver: checkout, the buyer's session, confirm, with retries while paymentd is down.
	client := &http.Client{Timeout: 30 * time.Second}
	orders := make([]string, payments)
	deadline := time.Now().Add(100 * time.Second)
	var next atomic.Int64
	var drivers sync.WaitGroup
	for range 16 {
		drivers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= payments || t.Failed() {
					return
				}
				orders[i] = drive(t, client, apiURL, key, simURL, i, deadline)
				confirmed.Add(1)
			}
		})
	}
	drivers.Wait()
	close(stopKiller)
	killer.Wait()
	if t.Failed() {
		return
	}
	driven := time.Now()

	// Quiescence: every payment terminal in the event store.
	pool, err := db.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := eventstore.NewPostgres(pool)
	var final map[string]domain.Payment
	var stuck []string
	for quiesce := time.Now().Add(90 * time.Second); ; {
		final, stuck = loadAll(t, store, orders), nil
		for id, p := range final {
			if !terminal(p.Status) || p.PendingCancel() != nil {
				stuck = append(stuck, id)
			}
		}
		if len(stuck) == 0 {
			break
		}
		if time.Now().After(quiesce) {
			for _, id := range stuck[:min(len(stuck), 5)] {
				recs, _ := store.ReadStream(context.Background(), domain.StreamName(domain.OrderID(id)), 1)
				var hist []string
				for _, r := range recs {
					hist = append(hist, fmt.Sprintf("%s(%s) %s", r.Type, r.Metadata.Actor, r.Data))
				}
				var sim struct{ Status string }
				simGet(t, simURL+"/v1/payments/orders/"+id, &sim)
				t.Errorf("order %s stuck %s, cancel pending %v (simulator %s):\n  %s", id, final[id].Status,
					final[id].PendingCancel() != nil, sim.Status, strings.Join(hist, "\n  "))
			}
			t.Fatalf("%d of %d payments did not reach a final status", len(stuck), len(orders))
		}
		time.Sleep(100 * time.Millisecond) // polling the store while recovery works
	}
	resolve := time.Since(driven)

	// Assertions against the simulator's truth.
	truth := simTruth(t, simURL, orders)
	approvalsAtSim, cancelsAtSim := transactionsPerOrder(t, simURL)
	var mismatches, twice, recovered, refunds int
	receivable := decimal.Zero    // what Toss owes us: approved − canceled, no settlements here
	outcomeBy := map[string]int{} // who recorded each payment's outcome: merchant (the request), recovery, webhook
	var longest time.Duration
	for _, id := range orders {
		p := final[id]
		want := map[string]domain.Status{"DONE": domain.StatusSuccess, "ABORTED": domain.StatusFailure, "EXPIRED": domain.StatusExpired,
			"PARTIAL_CANCELED": domain.StatusPartiallyCanceled, "CANCELED": domain.StatusCanceled}[truth[id].Status]
		canceled := 0
		for _, c := range p.Cancels {
			if c.State == domain.CancelDone {
				canceled++
			}
		}
		switch {
		case p.Status != want:
			mismatches++
			t.Errorf("order %s: ours %s, simulator %s", id, p.Status, truth[id].Status)
		case p.Status == domain.StatusSuccess || p.Status == domain.StatusPartiallyCanceled || p.Status == domain.StatusCanceled:
			if !p.Balance.Equal(truth[id].BalanceAmount) || canceled != cancelsAtSim[id] {
				mismatches++
				t.Errorf("order %s: our balance %s after %d cancels, simulator %s after %d", id, p.Balance, canceled, truth[id].BalanceAmount, cancelsAtSim[id])
			}
			receivable = receivable.Add(p.Balance)
		}
		refunds += canceled
		if approvalsAtSim[id] > 1 {
			twice++
			t.Errorf("order %s was approved %d times at the simulator", id, approvalsAtSim[id])
		}
		recs, err := store.ReadStream(context.Background(), domain.StreamName(domain.OrderID(id)), 1)
		if err != nil {
			t.Fatal(err)
		}
		events, err := commands.DecodeEvents(recs)
		if err != nil {
			t.Fatal(err)
		}
		if err := domain.CheckHistory(events); err != nil {
			t.Errorf("order %s breaks the state machine: %v", id, err)
		}
		for _, r := range recs {
			switch domain.EventType(r.Type) {
			case domain.EventPaymentApproved, domain.EventPaymentRejected, domain.EventPaymentExpired:
				outcomeBy[r.Metadata.Actor]++
			}
		}
		if d, ok := recoveryTime(recs); ok {
			recovered++
			longest = max(longest, d)
		}
	}
	// The ledger agrees: balanced, and psp_receivable:toss is approved − canceled.
	var tb struct {
		Accounts                  []struct{ Account, Balance string }
		TotalDebits, TotalCredits string
	}
	testenv.WaitFor(t, 30*time.Second, "the ledger to show psp_receivable:toss = "+receivable.String(), func() bool {
		req, _ := http.NewRequest("GET", apiURL+"/api/v1/ledger/trial-balance", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&tb) != nil {
			return false
		}
		for _, a := range tb.Accounts {
			if a.Account == "psp_receivable:toss" {
				return decimal.RequireFromString(a.Balance).Equal(receivable)
			}
		}
		return receivable.IsZero()
	})
	if tb.TotalDebits != tb.TotalCredits {
		t.Errorf("trial balance: debits %s, credits %s", tb.TotalDebits, tb.TotalCredits)
	}
	published := checkPublishedOnce(t, pool, store, natsSrv.URL())
	stats := simStats(t, simURL)
	fmt.Printf("chaos: published=%d payments=%d refunds=%d kills=%d injectedErrors=%d lostResponses=%d webhooksSent=%d recovered=%d outcomesBy(request/recovery/webhook)=%d/%d/%d mismatches=%d doubleApprovals=%d longestRecovery=%s resolvedAfterDriving=%s\n",
		published, payments, refunds, killsDone.Load(), stats.InjectedErrors, stats.LostResponses, stats.WebhooksSent, recovered,
		outcomeBy["merchant"], outcomeBy["recovery"], outcomeBy["webhook"], mismatches, twice,
		longest.Round(time.Millisecond), resolve.Round(time.Millisecond))
	if killsDone.Load() != int64(kills) {
		t.Errorf("%d kills, want %d", killsDone.Load(), kills)
	}
	if kills > 0 && stats.InjectedErrors+stats.LostResponses == 0 {
		t.Error("no fault was injected")
	}
}

// checkPublishedOnce waits for the relay to reach the end of the log and checks that the
// PAYMENTS stream holds every payment event of the event store exactly once, each order's in
// version order, although paymentd (and its relay) was killed along the way. It returns the
// number of messages.
func checkPublishedOnce(t *testing.T, pool *pgxpool.Pool, store *eventstore.Postgres, natsURL string) int {
	t.Helper()
	ctx := context.Background()
	var all []eventstore.RecordedEvent
	testenv.WaitFor(t, 60*time.Second, "the relay's checkpoint at the end of the log", func() bool {
		all = all[:0]
		for pos := eventstore.Start; ; {
			batch, err := store.ReadAll(ctx, pos, 10_000)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			all = append(all, batch...)
			pos = batch[len(batch)-1].Position
		}
		var cp string
		_ = pool.QueryRow(ctx, `SELECT position FROM relay_checkpoints WHERE name = $1`, natsbus.CheckpointName).Scan(&cp)
		head, err := store.Head(ctx)
		return err == nil && len(all) > 0 && cp == all[len(all)-1].Position.String() && head == all[len(all)-1].Position
	})
	want := map[string]bool{}
	for _, e := range all {
		if strings.HasPrefix(e.StreamID, "payment-") {
			want[e.ID.String()] = true
		}
	}
	bus, err := natsbus.Connect(natsURL, "chaos", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	s, err := bus.JS.Stream(ctx, natsbus.StreamPayments)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	version := map[domain.OrderID]int64{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		e, err := natsbus.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		seen[e.ID.String()]++
		if e.StreamVersion != version[e.OrderID]+1 {
			t.Errorf("order %s: version %d published after %d", e.OrderID, e.StreamVersion, version[e.OrderID])
		}
		version[e.OrderID] = e.StreamVersion
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s published %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("the stream holds %d events, the event store %d payment events", len(seen), len(want))
	}
	return int(info.State.Msgs)
}

// drive takes payment i from checkout to a confirm answer, retrying while paymentd is down.
func drive(t *testing.T, c *http.Client, api, key, sim string, i int, deadline time.Time) string {
	auth := func(h map[string]string) map[string]string {
		h["Authorization"] = "Bearer " + key
		return h
	}
	body := fmt.Sprintf(`{"orderName":"chaos %d","buyerId":"buyer-%d","lines":[{"sellerId":"seller-%d","productId":"p","amount":"%d"},{"sellerId":"seller-x","productId":"q","amount":"1000"}]}`,
		i, i, i%7, 1000+i*10)
	co := retryPost(t, c, api+"/api/v1/payments/checkout", body, auth(map[string]string{"Idempotency-Key": fmt.Sprintf("chaos-%d", i)}), deadline, 201)
	orderID, amount := co["orderId"].(string), co["amount"].(string)
	s := retryPost(t, c, sim+"/sim/v1/sessions", fmt.Sprintf(`{"orderId":%q,"amount":%s,"orderName":"chaos"}`, orderID, amount), nil, deadline, 201)
	cf := retryPost(t, c, api+"/api/v1/payments/confirm",
		fmt.Sprintf(`{"paymentKey":%q,"orderId":%q,"amount":%q}`, s["paymentKey"], orderID, amount), auth(map[string]string{}), deadline, 200, 409)
	if cf["status"] == "SUCCESS" && i%3 == 0 {
		// Refund seller-x's line: a partial cancel under the same faults and kills. A retry after
		// a kill reuses the Idempotency-Key, so it is the same cancel.
		retryPost(t, c, api+"/api/v1/payments/"+orderID+"/cancel", `{"amount":"1000","reason":"chaos refund"}`,
			auth(map[string]string{"Idempotency-Key": fmt.Sprintf("chaos-refund-%d", i)}), deadline, 200)
	}
	return orderID
}

// retryPost posts until the answer has one of the wanted statuses; connection errors and 5xx
// (paymentd being killed or starting) are retried until deadline.
func retryPost(t *testing.T, c *http.Client, url, body string, header map[string]string, deadline time.Time, want ...int) map[string]any {
	for {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range want {
				if resp.StatusCode == w {
					var out map[string]any
					if err := json.Unmarshal(raw, &out); err != nil {
						t.Errorf("POST %s: %v", url, err)
					}
					return out
				}
			}
			if resp.StatusCode < 500 {
				t.Errorf("POST %s %s: %d %s", url, body, resp.StatusCode, raw)
				return map[string]any{}
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("POST %s: no answer before the deadline (last error %v)", url, err)
			return map[string]any{}
		}
		time.Sleep(50 * time.Millisecond) // paymentd is restarting; try again
	}
}

func terminal(s domain.Status) bool {
	switch s {
	case domain.StatusSuccess, domain.StatusFailure, domain.StatusExpired, domain.StatusPartiallyCanceled, domain.StatusCanceled:
		return true
	}
	return false
}

func loadAll(t *testing.T, store *eventstore.Postgres, orders []string) map[string]domain.Payment {
	out := make(map[string]domain.Payment, len(orders))
	for _, id := range orders {
		recs, err := store.ReadStream(context.Background(), domain.StreamName(domain.OrderID(id)), 1)
		if err != nil {
			t.Fatalf("order %s: %v", id, err)
		}
		events, err := commands.DecodeEvents(recs)
		if err != nil {
			t.Fatal(err)
		}
		p, err := domain.Rebuild(events)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = p
	}
	return out
}

// recoveryTime is how long a payment took from its first confirm attempt to its outcome, for the
// payments that needed more than one call (an unknown outcome, a second attempt, or an outcome
// recorded by recovery or a webhook).
func recoveryTime(recs []eventstore.RecordedEvent) (time.Duration, bool) {
	var start time.Time
	needed := false
	for _, r := range recs {
		switch r.Type {
		case string(domain.EventConfirmationStarted):
			if start.IsZero() {
				start = r.RecordedAt
			} else {
				needed = true
			}
		case string(domain.EventPaymentOutcomeUnknown):
			needed = true
		case string(domain.EventPaymentApproved), string(domain.EventPaymentRejected), string(domain.EventPaymentExpired):
			if r.Metadata.Actor != "merchant" {
				needed = true
			}
			if needed && !start.IsZero() {
				return r.RecordedAt.Sub(start), true
			}
		}
	}
	return 0, false
}

func simGet(t *testing.T, url string, v any) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(secretKey+":")))
	req.Header.Set("X-Sim-Error-Rate", "0") // the assertions read the truth without faults
	req.Header.Set("X-Sim-Latency", "0ms")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
}

type simPayment struct {
	Status        string
	BalanceAmount decimal.Decimal
}

func simTruth(t *testing.T, simURL string, orders []string) map[string]simPayment {
	out := make(map[string]simPayment, len(orders))
	for _, id := range orders {
		var p simPayment
		simGet(t, simURL+"/v1/payments/orders/"+id, &p)
		out[id] = p
	}
	return out
}

// transactionsPerOrder counts the simulator's approvals (DONE rows) and cancels per order: its
// own record of every approval and refund it made.
func transactionsPerOrder(t *testing.T, simURL string) (approvals, cancels map[string]int) {
	approvals, cancels = map[string]int{}, map[string]int{}
	start := time.Now().Add(-24 * time.Hour).In(time.FixedZone("KST", 9*3600)).Format("2006-01-02T15:04:05")
	end := time.Now().Add(24 * time.Hour).In(time.FixedZone("KST", 9*3600)).Format("2006-01-02T15:04:05")
	after := ""
	for {
		var page []struct{ TransactionKey, OrderID, Status string }
		url := fmt.Sprintf("%s/v1/transactions?startDate=%s&endDate=%s&limit=5000", simURL, start, end)
		if after != "" {
			url += "&startingAfter=" + after
		}
		simGet(t, url, &page)
		for _, tx := range page {
			switch tx.Status {
			case "DONE":
				approvals[tx.OrderID]++
			case "CANCELED", "PARTIAL_CANCELED":
				cancels[tx.OrderID]++
			}
		}
		if len(page) < 5000 {
			return approvals, cancels
		}
		after = page[len(page)-1].TransactionKey
	}
}

type stats struct{ InjectedErrors, LostResponses, WebhooksSent int }

func simStats(t *testing.T, simURL string) stats {
	var s stats
	resp, err := http.Get(simURL + "/sim/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// chaosMerchant is the merchant every chaos payment belongs to.
const chaosMerchant = "chaos"

// secretsKey is a new key-encryption key for paymentd's SECRETS_KEY.
func secretsKey(t *testing.T) string {
	k := make([]byte, 32)
	if _, err := cryptorand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// createMerchant registers the chaos merchant with the simulator's key the way an operator
// would (paymentctl migrate, merchants create --json) and returns its API key.
func createMerchant(t *testing.T, bin string, env []string) string {
	run := func(args ...string) []byte {
		cmd := exec.Command(filepath.Join(bin, "paymentctl"), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("paymentctl %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("migrate")
	var created struct{ APIKey string }
	if err := json.Unmarshal(run("merchants", "create", "--id", chaosMerchant, "--name", "Chaos", "--toss-secret-key", secretKey, "--json"), &created); err != nil || created.APIKey == "" {
		t.Fatalf("merchants create: %v", err)
	}
	return created.APIKey
}

// buildBinaries builds paymentd, paymentctl and tosssim once for the test.
func buildBinaries(t *testing.T) string {
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled { // the processes under test get the race detector too
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/paymentd", "./cmd/paymentctl", "./cmd/tosssim")...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// daemon is paymentd across its restarts.
type daemon struct {
	mu    sync.Mutex
	p     *process
	start func() *process
}

func (d *daemon) restart() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.p = d.start()
}

func (d *daemon) crashAndRestart() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.p.kill()
	d.p = d.start()
}

func (d *daemon) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.p.stop()
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// checkLogs fails the test if any process log holds a race report or a panic.
func checkLogs(t *testing.T, dir string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
			if i := strings.Index(string(b), bad); i >= 0 {
				t.Errorf("%s: %s\n%s", filepath.Base(p), bad, string(b[i:min(len(b), i+3000)]))
			}
		}
	}
}

// logDir is where the processes' logs go: CHAOS_LOGS to keep them, else the test's temp dir.
func logDir(t *testing.T) string {
	if d := os.Getenv("CHAOS_LOGS"); d != "" {
		return d
	}
	return t.TempDir()
}

func startProcess(t *testing.T, logs, path string, args, env []string) *process {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.CreateTemp(logs, filepath.Base(path)+"-*.log")
	if err != nil {
		t.Error(err)
		logf = os.Stderr
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Errorf("start %s: %v", path, err)
		p := &process{cmd: cmd, done: make(chan struct{})}
		close(p.done)
		return p
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		if logf != os.Stderr {
			logf.Close()
		}
		close(p.done)
	}()
	return p
}

// kill is a crash: SIGKILL, no shutdown.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	testenv.WaitFor(t, timeout, url+" to answer", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
