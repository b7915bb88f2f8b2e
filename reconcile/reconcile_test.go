package reconcile_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/reconcile"
)

var ctx = context.Background()

func won(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func today() time.Time { return time.Now().In(domain.KST) }

func day(t time.Time) string { return t.Format(time.DateOnly) }

// fixture is a testenv whose simulator clock can be moved (simShift), with an Engine on it.
type fixture struct {
	env      *testenv.Env
	simShift atomic.Int64 // added to the simulator's clock, in nanoseconds
	engine   *reconcile.Engine
	ledger   *queries.Ledger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	f.env = testenv.New(t, testenv.Options{SimNow: func() time.Time { return time.Now().Add(time.Duration(f.simShift.Load())) }})
	dir := f.env.Merchants.NewDirectory(f.env.SimURL)
	var err error
	f.engine, err = reconcile.New(reconcile.Config{
		Pool:      f.env.Pool,
		Streams:   f.env.Store,
		Clients:   func(ctx context.Context, m domain.MerchantID) (reconcile.Lister, error) { return dir.Client(ctx, m) },
		Corrector: f.env.Commands,
		FeeRates:  f.env.Merchants,
		Logger:    testenv.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ledger = queries.NewLedger(f.env.Pool)
	return f
}

func line(seller, amount string) domain.CheckoutLine {
	return domain.CheckoutLine{SellerID: seller, ProductID: "p-" + seller, Amount: won(amount)}
}

// checkout creates an order of the test merchant and nothing else.
func (f *fixture) checkout(t *testing.T, lines ...domain.CheckoutLine) commands.CheckoutResult {
	t.Helper()
	co, err := f.env.Commands.Checkout(ctx, commands.CheckoutInput{Merchant: testenv.Merchant, OrderName: "reconcile order", BuyerID: "buyer-1", Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	return co
}

// confirmAtToss confirms a session at the simulator directly, never through the ledger: as if
// the merchant's staff, or another system, had confirmed it.
func (f *fixture) confirmAtToss(t *testing.T, orderID string, amount decimal.Decimal) string {
	t.Helper()
	key, err := f.env.Sim.CreateSession(orderID, amount, "confirmed at Toss")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Toss.Confirm(ctx, toss.ConfirmRequest{PaymentKey: key, OrderID: orderID, Amount: amount}, "direct-"+orderID); err != nil {
		t.Fatal(err)
	}
	return key
}

// appendEvents appends events to the order's stream as they are, bypassing every decider: a
// record the ledger holds that Toss never had.
func (f *fixture) appendEvents(t *testing.T, id domain.OrderID, events ...domain.Event) {
	t.Helper()
	recs, err := f.env.Store.ReadStream(ctx, domain.StreamName(id), 1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := commands.Encode(events, eventstore.Metadata{CorrelationID: uuid.New(), CausationID: uuid.New(), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Store.Append(ctx, domain.StreamName(id), eventstore.Exact(int64(len(recs))), data); err != nil {
		t.Fatal(err)
	}
}

// tossRow is the simulator's settlement row of a transaction, sold from..to.
func (f *fixture) tossRow(t *testing.T, from, to, txKey string) toss.Settlement {
	t.Helper()
	rows, err := f.env.Toss.ListSettlements(ctx, toss.SettlementsQuery{StartDate: from, EndDate: to, Size: 5000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.TransactionKey == txKey {
			return r
		}
	}
	t.Fatalf("the simulator has no settlement row of %s", txKey)
	return toss.Settlement{}
}

// caughtUp waits until every projection has applied the last event: reconciliation selects the
// merchant's payments from payment_orders, and the ledger checks read the ledger.
func caughtUp(t *testing.T, f *fixture) {
	t.Helper()
	var head eventstore.Position
	if err := f.env.Pool.QueryRow(ctx, `SELECT transaction_id, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1`).
		Scan(&head.Transaction, &head.Sequence); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the projections to reach the head of the log", func() bool {
		for _, name := range []string{"payment_orders", projections.LedgerName} {
			if pos, err := projections.Checkpoint(ctx, f.env.Pool, name); err != nil || pos != head {
				return false
			}
		}
		return true
	})
}

func (f *fixture) run(t *testing.T, from, to string, apply bool) reconcile.Report {
	t.Helper()
	caughtUp(t, f)
	rep, err := f.engine.Run(ctx, reconcile.Request{Merchant: testenv.Merchant, From: from, To: to, Apply: apply})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

func (f *fixture) wallet(t *testing.T, seller string) queries.Wallet {
	t.Helper()
	w, err := f.ledger.Wallet(ctx, testenv.Merchant, domain.SellerID(seller), time.Now(), "KRW")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// find returns the report's difference of category for order (and transaction, when given).
func find(rep reconcile.Report, c reconcile.Category, order, tx string) (reconcile.Difference, bool) {
	for _, d := range rep.Differences {
		if d.Category == c && d.OrderID == order && (tx == "" || d.TransactionKey == tx) {
			return d, true
		}
	}
	return reconcile.Difference{}, false
}

func describe(rep reconcile.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "counts %v\n", rep.Counts)
	for _, d := range rep.Differences {
		fmt.Fprintf(&b, "  %s %s %s %s | ours %s | toss %s | %s\n", d.Category, d.Resolution, d.OrderID, d.TransactionKey, d.Ours, d.Toss, d.Detail)
	}
	return b.String()
}

// scenario is every category produced through real actions on the ledger and the simulator.
type scenario struct {
	plain, refunded, settled                    commands.CheckoutResult // matched
	confirmedAtToss, failedHere                 commands.CheckoutResult // missing_internal, resolvable
	strayOrder                                  string                  // missing_internal, no stream
	approvedHereOnly, canceledHereOnly          commands.CheckoutResult // missing_at_psp
	otherAmount                                 commands.CheckoutResult // amount_mismatch
	consoleCanceled                             commands.CheckoutResult // status_mismatch, resolvable
	consoleKey                                  domain.PaymentKey
	twice                                       commands.CheckoutResult // duplicate (and missing_at_psp)
	unimported                                  commands.CheckoutResult // settlement_missing, resolvable
	unimportedTx                                string
	ownFeeRate, misrecorded                     commands.CheckoutResult // settlement_mismatch
	from, to                                    string
	sellerInternal, sellerConsole, sellerSettle string
}

func setUp(t *testing.T, f *fixture) scenario {
	t.Helper()
	env := f.env
	s := scenario{sellerInternal: "seller-internal", sellerConsole: "seller-console", sellerSettle: "seller-settle"}
	// The contract rate is the simulator's default fee rate: ordinary rows are within it. It
	// applies from before the first payment (Toss's times are whole seconds).
	if _, err := env.Merchants.SetTossFeeRate(ctx, testenv.Merchant, won("0.03"), today().AddDate(0, 0, -10), merchants.ActorOperator); err != nil {
		t.Fatal(err)
	}

	// settlement_missing: a payment approved five days ago (the simulator's clock), whose row
	// was paid out three days ago and never imported.
	f.simShift.Store(int64(-5 * 24 * time.Hour))
	s.unimported, _ = env.Pay(t, line(s.sellerSettle, "40000"))
	f.simShift.Store(0)
	view, _ := env.Sim.Payment(string(s.unimported.OrderID))
	s.unimportedTx = view.LastTransactionKey

	// matched: a payment, a payment partly refunded through the API, a payment whose row was
	// imported.
	s.plain, _ = env.Pay(t, line("seller-plain", "10000"))
	s.refunded, _ = env.Pay(t, line("seller-plain", "20000"))
	five := won("5000")
	if res, err := env.Commands.Cancel(ctx, commands.CancelInput{Merchant: testenv.Merchant, OrderID: s.refunded.OrderID,
		IdempotencyKey: "refund-1", Amount: &five, Reason: "one item back"}); err != nil || res.CancelStatus != "CANCELED" {
		t.Fatalf("refund: %+v %v", res, err)
	}
	s.settled, _ = env.Pay(t, line("seller-plain", "15000"))
	sv, _ := env.Sim.Payment(string(s.settled.OrderID))
	if _, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, f.tossRow(t, day(today()), day(today()), sv.LastTransactionKey)); err != nil {
		t.Fatal(err)
	}

	// missing_internal: confirmed at Toss, only checked out here; refused here (a final code)
	// while Toss approved it; and an order this merchant never had.
	s.confirmedAtToss = f.checkout(t, line(s.sellerInternal, "11000"))
	f.confirmAtToss(t, string(s.confirmedAtToss.OrderID), s.confirmedAtToss.Amount)
	s.failedHere = f.checkout(t, line(s.sellerInternal, "12000"))
	key, err := env.Sim.CreateSessionWith(tosssim.SessionRequest{OrderID: string(s.failedHere.OrderID), Amount: s.failedHere.Amount,
		ConfirmError: "REJECT_CARD_COMPANY", ConfirmErrorOutcome: tosssim.StatusDone})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: domain.PaymentKey(key),
		OrderID: s.failedHere.OrderID, Amount: s.failedHere.Amount}); err != nil || res.Status != domain.StatusFailure {
		t.Fatalf("the confirm must be recorded as failed: %+v %v", res, err)
	}
	s.strayOrder = "stray-" + uuid.NewString()[:8]
	f.confirmAtToss(t, s.strayOrder, won("7000"))

	// missing_at_psp: an approval and a cancel in our streams that the simulator never had.
	now := today()
	s.approvedHereOnly = f.checkout(t, line("seller-ghost", "13000"))
	h := domain.EventHeader{OrderID: s.approvedHereOnly.OrderID, MerchantID: testenv.Merchant, At: now}
	f.appendEvents(t, s.approvedHereOnly.OrderID,
		domain.ConfirmationStarted{EventHeader: h, PaymentKey: "ghostkey0001", Amount: won("13000"), Attempt: 1, PSPIdempotencyKey: "ghost:1"},
		domain.PaymentApproved{EventHeader: h, PaymentKey: "ghostkey0001", ApprovedAt: now.Truncate(time.Second), Method: "카드",
			TotalAmount: won("13000"), LastTransactionKey: "GHOST-APPROVAL"})
	s.canceledHereOnly, _ = env.Pay(t, line("seller-ghost", "14000"))
	h = domain.EventHeader{OrderID: s.canceledHereOnly.OrderID, MerchantID: testenv.Merchant, At: now}
	f.appendEvents(t, s.canceledHereOnly.OrderID,
		domain.CancelRequested{EventHeader: h, CancelID: "ghost-cancel", Amount: won("1000"), Reason: "ghost", PSPIdempotencyKey: "ghost:c"},
		domain.PaymentCanceled{EventHeader: h, CancelID: "ghost-cancel", Amount: won("1000"), TransactionKey: "GHOST-CANCEL",
			CanceledAt: now.Truncate(time.Second), BalanceAfter: won("13000")})

	// amount_mismatch: Toss approved 16000 for an order checked out here for 15000.
	s.otherAmount = f.checkout(t, line("seller-amount", "15000"))
	f.confirmAtToss(t, string(s.otherAmount.OrderID), won("16000"))

	// status_mismatch: refunded in Toss's console.
	s.consoleCanceled, s.consoleKey = env.Pay(t, line(s.sellerConsole, "30000"))
	four := won("4000")
	if _, err := env.Sim.ConsoleCancel(string(s.consoleKey), &four, "고객 요청 (콘솔)"); err != nil {
		t.Fatal(err)
	}

	// duplicate: Toss approved the order under one paymentKey, the ledger holds an approval
	// under another.
	s.twice = f.checkout(t, line("seller-twice", "17000"))
	f.confirmAtToss(t, string(s.twice.OrderID), s.twice.Amount)
	h = domain.EventHeader{OrderID: s.twice.OrderID, MerchantID: testenv.Merchant, At: now}
	f.appendEvents(t, s.twice.OrderID,
		domain.ConfirmationStarted{EventHeader: h, PaymentKey: "otherkey0001", Amount: s.twice.Amount, Attempt: 1, PSPIdempotencyKey: "twice:1"},
		domain.PaymentApproved{EventHeader: h, PaymentKey: "otherkey0001", ApprovedAt: now.Truncate(time.Second), Method: "카드",
			TotalAmount: s.twice.Amount, LastTransactionKey: "OTHER-APPROVAL"})

	// settlement_mismatch: a payment Toss charges its own fee rate for (3.5% against the
	// contract's 3%), and a settlement recorded with figures that differ from Toss's row.
	s.ownFeeRate = f.checkout(t, line("seller-fee", "20000"))
	rate := won("0.035")
	key, err = env.Sim.CreateSessionWith(tosssim.SessionRequest{OrderID: string(s.ownFeeRate.OrderID), Amount: s.ownFeeRate.Amount, SettlementFeeRate: &rate})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := env.Commands.Confirm(ctx, commands.ConfirmInput{Merchant: testenv.Merchant, PaymentKey: domain.PaymentKey(key),
		OrderID: s.ownFeeRate.OrderID, Amount: s.ownFeeRate.Amount}); err != nil || res.Status != domain.StatusSuccess {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	s.misrecorded, _ = env.Pay(t, line("seller-fee", "21000"))
	mv, _ := env.Sim.Payment(string(s.misrecorded.OrderID))
	bad := f.tossRow(t, day(today()), day(today()), mv.LastTransactionKey)
	bad.Fee, bad.PayOutAmount = bad.Fee.Add(won("100")), bad.PayOutAmount.Sub(won("100"))
	if _, err := env.Commands.RecordSettlement(ctx, testenv.Merchant, bad); err != nil {
		t.Fatal(err)
	}

	s.from, s.to = day(today().AddDate(0, 0, -6)), day(today())
	return s
}

func TestEveryCategoryAndApply(t *testing.T) {
	f := newFixture(t)
	s := setUp(t, f)
	o := func(co commands.CheckoutResult) string { return string(co.OrderID) }

	// The dry run names every difference and corrects nothing.
	events := f.env.CountEvents(t)
	dry := f.run(t, s.from, s.to, false)
	t.Log(describe(dry))
	for _, w := range []struct {
		c          reconcile.Category
		order, tx  string
		resolution reconcile.Resolution
	}{
		{reconcile.MissingInternal, o(s.confirmedAtToss), "", reconcile.None},
		{reconcile.MissingInternal, o(s.failedHere), "", reconcile.None},
		{reconcile.MissingInternal, s.strayOrder, "", reconcile.NeedsReview},
		{reconcile.MissingAtPSP, o(s.approvedHereOnly), "GHOST-APPROVAL", reconcile.NeedsReview},
		{reconcile.MissingAtPSP, o(s.canceledHereOnly), "GHOST-CANCEL", reconcile.NeedsReview},
		{reconcile.AmountMismatch, o(s.otherAmount), "", reconcile.NeedsReview},
		{reconcile.StatusMismatch, o(s.consoleCanceled), "", reconcile.None},
		{reconcile.Duplicate, o(s.twice), "", reconcile.NeedsReview},
		{reconcile.MissingAtPSP, o(s.twice), "OTHER-APPROVAL", reconcile.NeedsReview},
		{reconcile.SettlementMissing, o(s.unimported), s.unimportedTx, reconcile.None},
		{reconcile.SettlementMismatch, o(s.ownFeeRate), "", reconcile.NeedsReview},
		{reconcile.SettlementMismatch, o(s.misrecorded), "", reconcile.NeedsReview},
	} {
		d, ok := find(dry, w.c, w.order, w.tx)
		if !ok {
			t.Errorf("no %s for %s %s", w.c, w.order, w.tx)
			continue
		}
		if d.Resolution != w.resolution {
			t.Errorf("%s of %s: resolution %s, want %s", w.c, w.order, d.Resolution, w.resolution)
		}
	}
	wantCounts := map[reconcile.Category]int{
		// plain 1, refunded 2, settled 1, unimported 1, canceledHereOnly 1, consoleCanceled 1,
		// ownFeeRate 1, misrecorded 1: approvals and the API's refund.
		reconcile.Matched: 9, reconcile.MissingInternal: 3, reconcile.MissingAtPSP: 3, reconcile.AmountMismatch: 1,
		reconcile.StatusMismatch: 1, reconcile.Duplicate: 1, reconcile.SettlementMissing: 1, reconcile.SettlementMismatch: 2,
		reconcile.HistoryBroken: 0,
	}
	for c, n := range wantCounts {
		if dry.Counts[c] != n {
			t.Errorf("count of %s: %d, want %d", c, dry.Counts[c], n)
		}
	}
	if dry.Applied != 0 || dry.Unresolved != 12 || f.env.CountEvents(t) != events {
		t.Fatalf("the dry run applied %d, left %d unresolved, events %d → %d", dry.Applied, dry.Unresolved, events, f.env.CountEvents(t))
	}
	if p := f.wallet(t, s.sellerInternal); !p.Pending.IsZero() {
		t.Fatalf("before apply the approvals Toss holds are not booked: %+v", p)
	}

	// --apply books what Toss's truth settles, with actor reconciliation; the rest needs review.
	applied := f.run(t, s.from, s.to, true)
	t.Log(describe(applied))
	for _, w := range []struct {
		c     reconcile.Category
		order string
	}{
		{reconcile.MissingInternal, o(s.confirmedAtToss)}, {reconcile.MissingInternal, o(s.failedHere)},
		{reconcile.StatusMismatch, o(s.consoleCanceled)}, {reconcile.SettlementMissing, o(s.unimported)},
	} {
		if d, ok := find(applied, w.c, w.order, ""); !ok || d.Resolution != reconcile.Applied {
			t.Errorf("%s of %s: %+v, want applied", w.c, w.order, d)
		}
	}
	if applied.Applied != 4 || applied.Unresolved != 8 {
		t.Fatalf("applied %d unresolved %d, want 4 and 8", applied.Applied, applied.Unresolved)
	}
	for _, d := range applied.Differences {
		if d.Resolution == reconcile.None {
			t.Errorf("an applying run leaves nothing unattempted: %+v", d)
		}
	}
	for _, c := range []commands.CheckoutResult{s.confirmedAtToss, s.failedHere, s.consoleCanceled, s.unimported} {
		recs, err := f.env.Store.ReadStream(ctx, domain.StreamName(c.OrderID), 1)
		if err != nil {
			t.Fatal(err)
		}
		last := recs[len(recs)-1]
		if last.Metadata.Actor != reconcile.Actor {
			t.Errorf("order %s: the correction %s is by %q, want %q", c.OrderID, last.Type, last.Metadata.Actor, reconcile.Actor)
		}
	}
	var approvedAtPSP domain.PaymentApprovedAtPSP
	for _, e := range f.env.Events(t, s.failedHere.OrderID) {
		if a, ok := e.(domain.PaymentApprovedAtPSP); ok {
			approvedAtPSP = a
		}
	}
	if approvedAtPSP.PreviousStatus != domain.StatusFailure || approvedAtPSP.Reason != "reconciliation read-back" {
		t.Fatalf("the approval of the order that failed here: %+v", approvedAtPSP)
	}
	var consoleCancel domain.PaymentCanceledAtPSP
	for _, e := range f.env.Events(t, s.consoleCanceled.OrderID) {
		if c, ok := e.(domain.PaymentCanceledAtPSP); ok {
			consoleCancel = c
		}
	}
	if !consoleCancel.Amount.Equal(won("4000")) || consoleCancel.CancelReason != "고객 요청 (콘솔)" || consoleCancel.Reason != "reconciliation read-back" {
		t.Fatalf("the console cancel: %+v", consoleCancel)
	}

	// The ledger and the sellers' wallets follow the corrections.
	caughtUp(t, f)
	if w := f.wallet(t, s.sellerInternal); !w.Pending.Equal(won("23000")) {
		t.Errorf("seller of the approvals Toss held: pending %s, want 23000 (11000 + 12000)", w.Pending)
	}
	if w := f.wallet(t, s.sellerConsole); !w.Pending.Equal(won("26000")) {
		t.Errorf("seller of the console refund: pending %s, want 26000 (30000 − 4000)", w.Pending)
	}
	if w := f.wallet(t, s.sellerSettle); !w.Pending.IsZero() || !w.Available.Equal(won("40000")) {
		t.Errorf("seller of the settled payment: pending %s available %s, want 0 and 40000 (paid out)", w.Pending, w.Available)
	}
	tb, err := f.ledger.TrialBalance(ctx, testenv.Merchant, time.Now(), "KRW")
	if err != nil || !tb.TotalDebits.Equal(tb.TotalCredits) {
		t.Fatalf("trial balance %s / %s %v", tb.TotalDebits, tb.TotalCredits, err)
	}

	// The needs-review list: the payments with a difference Toss's truth cannot resolve.
	status, body := f.env.Request(t, "GET", "/api/v1/payments?needsReview=true&limit=100", "")
	if status != http.StatusOK {
		t.Fatalf("needsReview list: %d %s", status, body)
	}
	for _, c := range []commands.CheckoutResult{s.approvedHereOnly, s.canceledHereOnly, s.otherAmount, s.twice, s.ownFeeRate, s.misrecorded} {
		if !strings.Contains(string(body), string(c.OrderID)) {
			t.Errorf("the needs-review list lacks %s: %s", c.OrderID, body)
		}
	}
	for _, c := range []commands.CheckoutResult{s.plain, s.confirmedAtToss, s.consoleCanceled, s.unimported} {
		if strings.Contains(string(body), string(c.OrderID)) {
			t.Errorf("the needs-review list holds %s, which is resolved", c.OrderID)
		}
	}
	status, body = f.env.Request(t, "GET", "/api/v1/payments/"+o(s.otherAmount), "")
	if status != http.StatusOK || !strings.Contains(string(body), `"needsReview":true`) || !strings.Contains(string(body), `"category":"amount_mismatch"`) {
		t.Fatalf("the payment names its difference: %d %s", status, body)
	}

	// A rerun applies nothing: what was applied is matched, the rest is as before.
	events = f.env.CountEvents(t)
	again := f.run(t, s.from, s.to, true)
	t.Log(describe(again))
	if again.Applied != 0 || again.Unresolved != 8 || f.env.CountEvents(t) != events {
		t.Fatalf("rerun: applied %d unresolved %d, events %d → %d", again.Applied, again.Unresolved, events, f.env.CountEvents(t))
	}
	if again.Counts[reconcile.Matched] != 12 || again.Counts[reconcile.SettlementMissing] != 0 || again.Counts[reconcile.StatusMismatch] != 0 ||
		again.Counts[reconcile.MissingInternal] != 1 {
		t.Fatalf("rerun counts %v: the applied corrections must now match (9 + 2 approvals + the console cancel)", again.Counts)
	}

	// Every run's summary is kept, newest first.
	page, err := f.env.Queries.ReconciliationRuns(ctx, testenv.Merchant, queries.RunsQuery{})
	if err != nil || len(page.Runs) != 3 {
		t.Fatalf("runs %+v %v", page.Runs, err)
	}
	if r := page.Runs[0]; r.ID != again.RunID || r.Applied != 0 || r.Unresolved != 8 || r.Counts["matched"] != 12 || !r.Apply || r.From != s.from {
		t.Fatalf("newest run %+v", r)
	}
	if r := page.Runs[1]; r.ID != applied.RunID || r.Applied != 4 {
		t.Fatalf("second run %+v", r)
	}
}

// The needs-review list follows the ledger: a difference stays open while runs that compare its
// order find it, a run that does not compare the order leaves it, and the first run that no
// longer finds it closes it. Here the contract rate was entered wrongly; the operator corrects
// it from the same day on.
func TestNeedsReviewFollowsTheLedger(t *testing.T) {
	f := newFixture(t)
	from := today().Add(-time.Hour)
	if _, err := f.env.Merchants.SetTossFeeRate(ctx, testenv.Merchant, won("0.025"), from, merchants.ActorOperator); err != nil {
		t.Fatal(err)
	}
	co, _ := f.env.Pay(t, line("seller-1", "10000"))
	open := func() int {
		var n int
		if err := f.env.Pool.QueryRow(ctx, `SELECT count(*) FROM reconciliation_differences WHERE order_id = $1 AND resolved_at IS NULL`, co.OrderID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	d := day(today())
	rep := f.run(t, d, d, false)
	if diff, ok := find(rep, reconcile.SettlementMismatch, string(co.OrderID), ""); !ok || diff.Resolution != reconcile.NeedsReview ||
		!strings.Contains(diff.Detail, "contract rate 0.025") {
		t.Fatalf("%s", describe(rep))
	}
	if open() != 1 {
		t.Fatal("the difference is not on the needs-review list")
	}
	f.run(t, d, d, false)
	if open() != 1 {
		t.Fatal("a run that found the difference again closed it")
	}
	yesterday := day(today().AddDate(0, 0, -1))
	f.run(t, yesterday, yesterday, false)
	if open() != 1 {
		t.Fatal("a run that did not compare the order closed its difference")
	}
	if _, err := f.env.Merchants.SetTossFeeRate(ctx, testenv.Merchant, won("0.03"), from, merchants.ActorOperator); err != nil {
		t.Fatal(err)
	}
	rep = f.run(t, d, d, false)
	if len(rep.Differences) != 0 || open() != 0 {
		t.Fatalf("after the correction: %d open\n%s", open(), describe(rep))
	}
	var resolvedBy int64
	if err := f.env.Pool.QueryRow(ctx, `SELECT resolved_run_id FROM reconciliation_differences WHERE order_id = $1`, co.OrderID).Scan(&resolvedBy); err != nil || resolvedBy != rep.RunID {
		t.Fatalf("resolved by run %d (%v), want %d", resolvedBy, err, rep.RunID)
	}
}

// A stream whose history fails verification is not compared: it is reported, recorded in
// broken_streams, and nothing is booked on it even with --apply.
func TestBrokenHistoryIsNotCompared(t *testing.T) {
	f := newFixture(t)
	co, key := f.env.Pay(t, line("seller-1", "10000"))
	four := won("4000")
	if _, err := f.env.Sim.ConsoleCancel(string(key), &four, "console"); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, f)
	// Cut the stream's head back by one event, as a deleted last event would leave it.
	if _, err := f.env.Pool.Exec(ctx, `UPDATE event_streams SET version = version - 1 WHERE stream_id = $1`, domain.StreamName(co.OrderID)); err != nil {
		t.Fatal(err)
	}
	events := f.env.CountEvents(t)
	d := day(today())
	rep := f.run(t, d, d, true)
	if diff, ok := find(rep, reconcile.HistoryBroken, string(co.OrderID), ""); !ok || diff.Resolution != reconcile.NeedsReview || len(rep.Differences) != 1 {
		t.Fatalf("%s", describe(rep))
	}
	if f.env.CountEvents(t) != events {
		t.Fatal("something was booked on a broken stream")
	}
	var n int
	if err := f.env.Pool.QueryRow(ctx, `SELECT count(*) FROM broken_streams WHERE stream_id = $1`, domain.StreamName(co.OrderID)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("broken_streams rows %d %v", n, err)
	}
}

// A stream that verifies but is not a legal history (here a second checkout, appended through
// the store with its hash) is that order's history_broken, and the rest of the merchant's run
// goes on.
func TestAnIllegalHistoryIsOneOrdersProblem(t *testing.T) {
	f := newFixture(t)
	bad, _ := f.env.Pay(t, line("seller-1", "10000"))
	good, _ := f.env.Pay(t, line("seller-2", "20000"))
	first := f.env.Events(t, bad.OrderID)[0]
	f.appendEvents(t, bad.OrderID, first)
	d := day(today())
	rep := f.run(t, d, d, false)
	if diff, ok := find(rep, reconcile.HistoryBroken, string(bad.OrderID), ""); !ok || !strings.Contains(diff.Detail, "not a history the state machine allows") {
		t.Fatalf("the unfoldable order: %s", describe(rep))
	}
	if _, ok := find(rep, reconcile.HistoryBroken, string(good.OrderID), ""); ok || rep.Counts[reconcile.Matched] == 0 {
		t.Fatalf("the other order was not compared: %s", describe(rep))
	}
}

// Two merchants, each reconciled with its own Toss key against its own Toss account: neither
// run sees the other's payments. Each key reaches its own simulator through one Toss address,
// as each key reaches its own MID at Toss.
func TestEachMerchantWithItsOwnKey(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	simB := tosssim.New(tosssim.Config{})
	const merchantB domain.MerchantID = "shop-b"
	keyB := "test_sk_" + string(merchantB)
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, _, ok := r.BasicAuth(); ok && user == keyB {
			simB.Handler().ServeHTTP(w, r)
			return
		}
		env.Sim.Handler().ServeHTTP(w, r)
	})
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	env.NewMerchant(t, merchantB)
	dir := env.Merchants.NewDirectory(srv.URL)
	cmds, err := commands.New(env.Store, func(ctx context.Context, m domain.MerchantID) (commands.PSP, error) { return dir.Client(ctx, m) },
		commands.Config{}, today, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	engine, err := reconcile.New(reconcile.Config{
		Pool:    env.Pool,
		Streams: env.Store,
		Clients: func(ctx context.Context, m domain.MerchantID) (reconcile.Lister, error) {
			calls.Add(1)
			return dir.Client(ctx, m)
		},
		Corrector: cmds, FeeRates: env.Merchants,
	})
	if err != nil {
		t.Fatal(err)
	}
	pay := func(m domain.MerchantID, sim *tosssim.Simulator, amount string) domain.OrderID {
		co, err := cmds.Checkout(ctx, commands.CheckoutInput{Merchant: m, OrderName: "o", BuyerID: "b", Lines: []domain.CheckoutLine{line("s", amount)}})
		if err != nil {
			t.Fatal(err)
		}
		key, err := sim.CreateSession(string(co.OrderID), co.Amount, "o")
		if err != nil {
			t.Fatal(err)
		}
		if res, err := cmds.Confirm(ctx, commands.ConfirmInput{Merchant: m, PaymentKey: domain.PaymentKey(key), OrderID: co.OrderID, Amount: co.Amount}); err != nil || res.Status != domain.StatusSuccess {
			t.Fatalf("confirm for %s: %+v %v", m, res, err)
		}
		return co.OrderID
	}
	a1, a2 := pay(testenv.Merchant, env.Sim, "1000"), pay(testenv.Merchant, env.Sim, "2000")
	b1 := pay(merchantB, simB, "3000")
	f := &fixture{env: env}
	caughtUp(t, f)
	d := day(today())
	for _, tc := range []struct {
		m      domain.MerchantID
		own    []domain.OrderID
		others []domain.OrderID
	}{{testenv.Merchant, []domain.OrderID{a1, a2}, []domain.OrderID{b1}}, {merchantB, []domain.OrderID{b1}, []domain.OrderID{a1, a2}}} {
		rep, err := engine.Run(ctx, reconcile.Request{Merchant: tc.m, From: d, To: d})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Counts[reconcile.Matched] != len(tc.own) || len(rep.Differences) != 0 || rep.Payments != len(tc.own) || rep.TossTransactions != len(tc.own) {
			t.Fatalf("merchant %s: %d payments, %d Toss transactions\n%s", tc.m, rep.Payments, rep.TossTransactions, describe(rep))
		}
		for _, other := range tc.others {
			if slices.ContainsFunc(rep.Differences, func(d reconcile.Difference) bool { return d.OrderID == string(other) }) {
				t.Fatalf("merchant %s's run names another merchant's order %s", tc.m, other)
			}
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d Toss clients asked for, want one per merchant", calls.Load())
	}
}
