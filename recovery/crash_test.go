package recovery_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/recovery"
)

// crashDBEnv, set, makes TestCrashingSweeperProcess a sweeper process that the test kills.
const crashDBEnv = "RECOVERY_TEST_CRASHING_SWEEPER_DB"

// crashLease is the lease of the sweeper that crashes: short, as in production, and long enough
// that a loaded test machine renews it in time (every third of it).
const crashLease = 2 * time.Second

// TestCrashingSweeperProcess is not a test: run by TestPaymentOfAKilledSweeperIsRecoveredWithinSeconds
// in a child process, it leases every due payment and works on them forever, until SIGKILL.
func TestCrashingSweeperProcess(t *testing.T) {
	url := os.Getenv(crashDBEnv)
	if url == "" {
		return // only as a child process
	}
	pool, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	s := recovery.New(pool, stuck{}, recovery.Config{Lease: crashLease, InstanceID: "crashing"}, time.Now, nil)
	_, err = s.Sweep(context.Background())
	t.Fatalf("the stuck sweep returned (%v); it should have been killed", err)
}

// stuck is a Recoverer whose calls never end on their own: Toss hangs.
type stuck struct{}

func (stuck) ResolveConfirm(ctx context.Context, _ domain.OrderID, _ commands.ResolveOptions) (commands.ConfirmResult, error) {
	<-ctx.Done()
	return commands.ConfirmResult{}, ctx.Err()
}

func (stuck) ResolveCancel(ctx context.Context, _ domain.OrderID, _ commands.ResolveOptions) (commands.CancelResult, error) {
	<-ctx.Done()
	return commands.CancelResult{}, ctx.Err()
}

func (stuck) MarkExhausted(context.Context, domain.OrderID, int, string) error { return nil }

func TestPaymentOfAKilledSweeperIsRecoveredWithinSeconds(t *testing.T) {
	f := newFixture(t)
	id := f.unknownPayments(t, 1, approvedButErrored)[0]

	// Another paymentd leases the payment, and is SIGKILLed while its call to Toss hangs.
	var out bytes.Buffer
	child := exec.Command(os.Args[0], "-test.run=^TestCrashingSweeperProcess$", "-test.count=1")
	child.Env = append(os.Environ(), crashDBEnv+"="+f.Pool.Config().ConnString())
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
		t.Logf("crashing sweeper's output:\n%s", out.String())
	})
	leaseEnd := func() (holder string, until time.Time) {
		var h *string
		if err := f.Pool.QueryRow(ctx, `SELECT leased_by, leased_until FROM recovery_state WHERE order_id = $1`, id).Scan(&h, &until); err != nil {
			return "", time.Time{}
		}
		if h != nil {
			holder = *h
		}
		return holder, until
	}
	var first time.Time
	testenv.WaitFor(t, 30*time.Second, "the child sweeper leases the payment", func() bool {
		h, until := leaseEnd()
		first = until
		return h == "crashing"
	})

	// While it lives, it renews: past its first lease, a live sweeper still finds nothing.
	live := recovery.New(f.Pool, f.svc, recovery.Config{Lease: crashLease, InstanceID: "live"}, time.Now, testenv.Logger(t))
	testenv.WaitFor(t, 30*time.Second, "the child's first lease has run out", func() bool { return time.Now().After(first) })
	if res := sweep(t, live); res.Leased != 0 {
		t.Fatalf("sweep while the holder lives %+v, want nothing leased", res)
	}
	if h, until := leaseEnd(); h != "crashing" || !until.After(first) {
		t.Fatalf("lease %s until %s, want the child's, renewed after %s", h, until, first)
	}

	if err := child.Process.Kill(); err != nil { // SIGKILL: no release, no last write
		t.Fatal(err)
	}
	_ = child.Wait()
	killed = true
	if h, _ := leaseEnd(); h != "crashing" {
		t.Fatalf("lease held by %q after the kill, want the dead child's", h)
	}

	// The live sweeper resolves the payment once the dead one's lease runs out: seconds, not
	// minutes. The deadline is generous for a loaded machine; it is far below the old 2-minute lease.
	var res recovery.Result
	testenv.WaitFor(t, 20*time.Second, "the live sweeper resolves the payment", func() bool {
		res = sweep(t, live)
		return res.Leased > 0
	})
	if res != (recovery.Result{Leased: 1, Resolved: 1}) {
		t.Fatalf("sweep %+v, want the payment resolved", res)
	}
	if st := f.status(t, id); st != domain.StatusSuccess {
		t.Fatalf("status %s, want SUCCESS", st)
	}
}
