package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
)

// A generated history for replay tests and the replay benchmark: what the log of a busy
// deployment holds, with every kind of event the projections read.
//
// Three merchants (registered, with Toss credentials and API keys, one key revoked, commission
// rates set and changed as the history goes) take payments of one to three lines over four
// sellers. Each payment follows one scenario: left at checkout, approved (some after an unknown
// outcome), rejected, expired, given up by recovery, canceled in part or in full (with cancels
// that were unknown and retried, rejected, or given up), and settled by Toss rows paid out zero
// to three days later (zero payouts and the negative rows of cancels included). The steps of
// different payments interleave, so a payment's settlement comes long after its approval in the
// log.

// historyStep is one append: events of one stream.
type historyStep struct {
	stream string
	events []domain.Event
}

var historyMerchants = []domain.MerchantID{"m-a", "m-b", "m-c"}

type historyGen struct {
	rng   *rand.Rand
	now   time.Time
	steps []historyStep
}

func (g *historyGen) tick() time.Time {
	g.now = g.now.Add(time.Duration(1+g.rng.IntN(600)) * time.Second)
	return g.now
}

func (g *historyGen) merchant(id domain.MerchantID, events ...domain.Event) {
	g.steps = append(g.steps, historyStep{stream: domain.MerchantStreamName(id), events: events})
}

func (g *historyGen) setRate(id domain.MerchantID) {
	rate := []string{"0", "0.05", "0.1", "0.033", "0.25"}[g.rng.IntN(5)]
	g.merchant(id, domain.CommissionRateChanged{MerchantHeader: domain.MerchantHeader{MerchantID: id, At: g.tick()}, Rate: decimal.RequireFromString(rate)})
}

// history returns the steps of a history of n payments.
func history(seed uint64, n int) []historyStep {
	g := &historyGen{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), now: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)}
	for i, m := range historyMerchants {
		h := domain.MerchantHeader{MerchantID: m, At: g.tick()}
		g.merchant(m,
			domain.MerchantRegistered{MerchantHeader: h, Name: "Shop " + string(m)},
			domain.TossCredentialsSet{MerchantHeader: h, CredentialID: "cred-" + string(m), KeyHint: "test_sk…000" + fmt.Sprint(i), Mode: domain.ModeTest},
			domain.APIKeyIssued{MerchantHeader: h, KeyID: domain.APIKeyID("key-" + string(m)), Mode: domain.ModeTest,
				SecretHash: fmt.Sprintf("%064x", i), Scopes: domain.AllScopes})
		if i > 0 {
			g.setRate(m)
		}
	}
	// Each payment is a queue of steps; the history takes the next step of a random payment.
	var active [][][]domain.Event
	var streams []string
	for made := 0; made < n || len(active) > 0; {
		switch k := g.rng.IntN(10); {
		case k == 0 && g.rng.IntN(20) == 0:
			g.setRate(historyMerchants[g.rng.IntN(len(historyMerchants))])
		case k == 1 && g.rng.IntN(50) == 0:
			m := historyMerchants[g.rng.IntN(len(historyMerchants))]
			g.merchant(m, domain.APIKeyRevoked{MerchantHeader: domain.MerchantHeader{MerchantID: m, At: g.tick()},
				KeyID: domain.APIKeyID("key-" + string(m)), EffectiveAt: g.now, Reason: domain.RevokedByRequest})
		case made < n && (len(active) < 50 || k < 3):
			id := domain.OrderID(fmt.Sprintf("order-%07d", made))
			active = append(active, g.payment(id, made))
			streams = append(streams, domain.StreamName(id))
			made++
		default:
			if len(active) == 0 {
				continue
			}
			i := g.rng.IntN(len(active))
			g.steps = append(g.steps, historyStep{stream: streams[i], events: active[i][0]})
			if active[i] = active[i][1:]; len(active[i]) == 0 {
				active = append(active[:i], active[i+1:]...)
				streams = append(streams[:i], streams[i+1:]...)
			}
		}
	}
	return g.steps
}

// payment returns the steps of one payment; the scenario is chosen by n.
func (g *historyGen) payment(id domain.OrderID, n int) [][]domain.Event {
	m := historyMerchants[g.rng.IntN(len(historyMerchants))]
	h := func() domain.EventHeader { return domain.EventHeader{OrderID: id, MerchantID: m, At: g.tick()} }
	var lines []domain.Line
	total := decimal.Zero
	for i := range 1 + g.rng.IntN(3) {
		amount := decimal.NewFromInt(int64(100 + g.rng.IntN(50000)))
		lines = append(lines, domain.Line{LineID: domain.LineID(fmt.Sprintf("L%d", i+1)), SellerID: domain.SellerID(fmt.Sprintf("s%d", g.rng.IntN(4))),
			ProductID: "p", Amount: amount})
		total = total.Add(amount)
	}
	co := h()
	steps := [][]domain.Event{{domain.CheckoutCreated{EventHeader: co, BuyerID: "b", OrderName: "order " + string(id), Currency: domain.KRW,
		TotalAmount: total, Lines: lines, ExpiresAt: co.At.Add(30 * time.Minute)}}}
	add := func(events ...domain.Event) { steps = append(steps, events) }
	pk := domain.PaymentKey("pk-" + string(id))
	confirm := func(attempt int) {
		add(domain.ConfirmationStarted{EventHeader: h(), PaymentKey: pk, Amount: total, Attempt: attempt, PSPIdempotencyKey: domain.ConfirmIdempotencyKey(id, attempt)})
	}
	balance := total
	var settle []domain.Event // settlement rows, appended at the end
	row := func(key string, gross decimal.Decimal, at time.Time) {
		fee := gross.Abs().Mul(decimal.RequireFromString("0.0319")).Floor()
		if g.rng.IntN(10) == 0 {
			fee = gross.Abs() // the fee takes it all: a zero payout
		}
		if gross.Sign() < 0 {
			fee = fee.Neg()
		}
		sold := at.In(domain.KST)
		paid := sold.AddDate(0, 0, g.rng.IntN(4))
		settle = append(settle, domain.SettlementRecorded{EventHeader: h(), TransactionKey: key, PaymentKey: pk,
			SoldDate: sold.Format(time.DateOnly), PaidOutDate: paid.Format(time.DateOnly), Amount: gross, Fee: fee,
			VAT: fee.Div(decimal.NewFromInt(11)).Floor(), PayOutAmount: gross.Sub(fee)})
	}
	approve := func() {
		a := h()
		add(domain.PaymentApproved{EventHeader: a, PaymentKey: pk, ApprovedAt: a.At, Method: "카드", TotalAmount: total, LastTransactionKey: "tx-" + string(id)})
		if g.rng.IntN(4) > 0 {
			row("tx-"+string(id), total, a.At)
		}
	}
	cancels := 0
	cancel := func(amount decimal.Decimal, outcome string) {
		cancels++
		cid := domain.CancelID(fmt.Sprintf("c%d", cancels))
		add(domain.CancelRequested{EventHeader: h(), CancelID: cid, Amount: amount, Reason: "buyer asked", PSPIdempotencyKey: string(id) + ":cancel:" + string(cid)})
		switch outcome {
		case "unknown-retried":
			add(domain.CancelOutcomeUnknown{EventHeader: h(), CancelID: cid, Code: "TIMEOUT", Message: "no answer"})
			add(domain.CancelRetried{EventHeader: h(), CancelID: cid, Attempt: 2, PSPIdempotencyKey: string(id) + ":cancel:" + string(cid) + ":2", Code: "PROVIDER_ERROR", Message: "try again"})
		case "rejected":
			add(domain.CancelRejected{EventHeader: h(), CancelID: cid, Code: "NOT_CANCELABLE_AMOUNT", Message: "no"})
			return
		case "given-up":
			add(domain.CancelOutcomeUnknown{EventHeader: h(), CancelID: cid, Code: "TIMEOUT", Message: "no answer"})
			add(domain.CancelRecoveryExhausted{EventHeader: h(), CancelID: cid, Attempts: 5, LastError: "timeout"})
			return
		}
		balance = balance.Sub(amount)
		c := h()
		key := fmt.Sprintf("tx-%s-%s", id, cid)
		add(domain.PaymentCanceled{EventHeader: c, CancelID: cid, Amount: amount, TransactionKey: key, CanceledAt: c.At, BalanceAfter: balance})
		if g.rng.IntN(2) == 0 {
			row(key, amount.Neg(), c.At)
		}
	}
	part := func() decimal.Decimal { // less than the balance, unless only one won is left
		if balance.IntPart() < 2 {
			return balance
		}
		return decimal.NewFromInt(1 + g.rng.Int64N(balance.IntPart()-1))
	}
	approveAtPSP := func(previous domain.Status) { // found approved at Toss by a read-back
		a := h()
		add(domain.PaymentApprovedAtPSP{EventHeader: a, PaymentKey: pk, ApprovedAt: a.At, Method: "카드", TotalAmount: total,
			LastTransactionKey: "tx-" + string(id), PreviousStatus: previous, Reason: "reconciliation"})
		row("tx-"+string(id), total, a.At)
	}
	consoleCancel := func(amount decimal.Decimal) { // a refund made in Toss's console
		balance = balance.Sub(amount)
		c := h()
		key := fmt.Sprintf("tx-%s-console-%d", id, c.At.UnixNano())
		add(domain.PaymentCanceledAtPSP{EventHeader: c, TransactionKey: key, Amount: amount, CanceledAt: c.At, BalanceAfter: balance,
			CancelReason: "console", Reason: "webhook"})
		row(key, amount.Neg(), c.At)
	}
	switch n % 14 {
	case 0: // left at checkout, or while Toss is being called
		if n/12%2 == 1 {
			confirm(1)
		}
	case 1:
		confirm(1)
		approve()
	case 2:
		confirm(1)
		add(domain.PaymentRejected{EventHeader: h(), PaymentKey: pk, Code: "REJECT_CARD_PAYMENT", Message: "한도초과", Source: domain.SourcePSP})
	case 3:
		confirm(1)
		add(domain.PaymentOutcomeUnknown{EventHeader: h(), PaymentKey: pk, Code: "TIMEOUT", Message: "no answer", Attempt: 1})
		confirm(2)
		approve()
	case 4:
		add(domain.PaymentExpired{EventHeader: h(), Reason: "never confirmed"})
	case 5:
		confirm(1)
		add(domain.PaymentOutcomeUnknown{EventHeader: h(), PaymentKey: pk, Code: "TIMEOUT", Message: "no answer", Attempt: 1})
		add(domain.RecoveryExhausted{EventHeader: h(), Attempts: 8, LastError: "PROVIDER_ERROR"})
	case 6:
		confirm(1)
		approve()
		cancel(part(), "canceled")
	case 7:
		confirm(1)
		approve()
		cancel(balance, "canceled")
	case 8:
		confirm(1)
		approve()
		cancel(part(), "unknown-retried")
		cancel(balance, "canceled")
	case 9:
		confirm(1)
		approve()
		cancel(part(), "rejected")
	case 10:
		confirm(1)
		approve()
		cancel(part(), "given-up")
	case 11:
		confirm(1)
		approve()
		cancel(part(), "canceled")
		cancel(part(), "canceled")
	case 12:
		confirm(1)
		add(domain.PaymentRejected{EventHeader: h(), PaymentKey: pk, Code: "PROVIDER_ERROR", Message: "later approved", Source: domain.SourcePSP})
		approveAtPSP(domain.StatusFailure)
	case 13:
		confirm(1)
		approve()
		consoleCancel(part())
		cancel(balance, "canceled")
	}
	for _, s := range settle {
		add(s)
	}
	return steps
}

func eventData(t testing.TB, step historyStep) []eventstore.EventData {
	t.Helper()
	data := make([]eventstore.EventData, len(step.events))
	for i, e := range step.events {
		b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: domain.SchemaVersion, Data: b,
			Metadata: eventstore.Metadata{MerchantID: string(e.Header().MerchantID), Actor: "system"}}
	}
	return data
}

// appendHistory appends the steps through the event store, one append per step.
func appendHistory(t testing.TB, store eventstore.Store, steps []historyStep) {
	t.Helper()
	for _, s := range steps {
		if _, err := store.Append(context.Background(), s.stream, eventstore.Any, eventData(t, s)); err != nil {
			t.Fatalf("append to %s: %v", s.stream, err)
		}
	}
}

// bulkAppend writes the steps straight into the event store's tables with COPY, many streams
// per transaction: the benchmark's history of hundreds of thousands of events would take
// minutes through Append. The rows are what Append writes, in the same log order, except that
// the hash chain is not computed (every hash is zero): nothing a replay reads depends on it.
func bulkAppend(t testing.TB, pool *pgxpool.Pool, steps []historyStep) int {
	t.Helper()
	ctx := context.Background()
	versions := map[string]int64{}
	var streams []string
	type row struct {
		stream  string
		version int64
		data    eventstore.EventData
	}
	var rows []row
	for _, s := range steps {
		if _, ok := versions[s.stream]; !ok {
			streams = append(streams, s.stream)
		}
		for _, d := range eventData(t, s) {
			versions[s.stream]++
			rows = append(rows, row{s.stream, versions[s.stream], d})
		}
	}
	zero := make([]byte, 32)
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"event_streams"}, []string{"stream_id", "version", "last_hash"},
		pgx.CopyFromSlice(len(streams), func(i int) ([]any, error) {
			return []any{streams[i], versions[streams[i]], zero}, nil
		})); err != nil {
		t.Fatal(err)
	}
	recorded := time.Now().UTC()
	const chunk = 50000
	for from := 0; from < len(rows); from += chunk {
		part := rows[from:min(from+chunk, len(rows))]
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"events"},
			[]string{"stream_id", "version", "event_id", "event_type", "schema_version", "data", "metadata", "recorded_at", "prev_hash", "hash"},
			pgx.CopyFromSlice(len(part), func(i int) ([]any, error) {
				r := part[i]
				meta := fmt.Sprintf(`{"merchantId":%q,"actor":"system"}`, r.data.Metadata.MerchantID)
				return []any{r.stream, r.version, r.data.ID, r.data.Type, r.data.SchemaVersion, string(r.data.Data), meta, recorded, zero, zero}, nil
			})); err != nil {
			t.Fatal(err)
		}
	}
	return len(rows)
}
