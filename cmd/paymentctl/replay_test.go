package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/pgtest"
	"github.com/paymentledger/ledger/internal/testenv"
	"github.com/paymentledger/ledger/projections"
)

// appendLedgerHistory writes a small, legal history the ledger books: a merchant with a
// commission rate, three payments approved, one canceled in part, two settled with their payouts.
func appendLedgerHistory(t *testing.T, store *eventstore.Postgres) {
	t.Helper()
	at := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	add := func(stream string, events ...domain.Event) {
		t.Helper()
		var data []eventstore.EventData
		for _, e := range events {
			b, err := domain.MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, eventstore.EventData{ID: uuid.New(), Type: string(e.EventType()), SchemaVersion: domain.SchemaVersion, Data: b,
				Metadata: eventstore.Metadata{MerchantID: "shop", Actor: "system"}})
		}
		if _, err := store.Append(ctx, stream, eventstore.Any, data); err != nil {
			t.Fatal(err)
		}
	}
	d := decimal.RequireFromString
	mh := domain.MerchantHeader{MerchantID: "shop", At: at}
	add(domain.MerchantStreamName("shop"), domain.MerchantRegistered{MerchantHeader: mh, Name: "Shop"}, domain.CommissionRateChanged{MerchantHeader: mh, Rate: d("0.1")})
	for i, amount := range []string{"10000", "25000", "3300"} {
		id := domain.OrderID("order-" + string(rune('a'+i)) + "-0001")
		h := domain.EventHeader{OrderID: id, MerchantID: "shop", At: at.Add(time.Duration(i) * time.Hour)}
		key := "tx-" + string(id)
		events := []domain.Event{
			domain.CheckoutCreated{EventHeader: h, BuyerID: "b", OrderName: "o", Currency: domain.KRW, TotalAmount: d(amount),
				Lines: []domain.Line{{LineID: "L1", SellerID: "s1", ProductID: "p", Amount: d(amount)}}, ExpiresAt: h.At.Add(time.Hour)},
			domain.ConfirmationStarted{EventHeader: h, PaymentKey: "pk", Amount: d(amount), Attempt: 1, PSPIdempotencyKey: "idem-" + string(id)},
			domain.PaymentApproved{EventHeader: h, PaymentKey: "pk", ApprovedAt: h.At, Method: "카드", TotalAmount: d(amount), LastTransactionKey: key},
		}
		if i == 0 {
			events = append(events, domain.CancelRequested{EventHeader: h, CancelID: "c1", Amount: d("1000"), Reason: "r", PSPIdempotencyKey: "idem-c1"},
				domain.PaymentCanceled{EventHeader: h, CancelID: "c1", Amount: d("1000"), TransactionKey: key + "-c1",
					CanceledAt: h.At, BalanceAfter: d("9000")})
		}
		if i < 2 {
			fee := d(amount).Div(d("100")).Floor()
			events = append(events, domain.SettlementRecorded{EventHeader: h, TransactionKey: key, SoldDate: "2026-11-21", PaidOutDate: "2026-11-23",
				Amount: d(amount), Fee: fee, PayOutAmount: d(amount).Sub(fee)})
		}
		add(domain.StreamName(id), events...)
	}
}

func TestReplayCommand(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.NewPostgres(pool)
	appendLedgerHistory(t, store)
	waitLedgerBuilt(t, pool, store)

	vars := envFrom(map[string]string{"DATABASE_URL": dbURL})
	ctl := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, vars, nil, &out, &errOut)
		return out.String(), errOut.String(), err
	}

	out, progress, err := ctl("replay", "--projection", "ledger")
	if err != nil {
		t.Fatalf("replay: %v\n%s%s", err, out, progress)
	}
	// Not a terminal: plain lines, the last of each phase at its total (a history this small is
	// read in one page: one line).
	if !regexp.MustCompile(`(?m)^replay ledger: (\d+)/(\d+) events, \d+ events/s, ETA 0s$`).MatchString(progress) ||
		!regexp.MustCompile(`(?m)^replay ledger: (\d+)/(\d+) rows loaded, \d+ rows/s, ETA 0s$`).MatchString(progress) ||
		!strings.Contains(progress, "indexes and constraints") || strings.Contains(progress, "\r") ||
		strings.Count(progress, "events/s") != 1 {
		t.Errorf("progress lines:\n%s", progress)
	}
	if !strings.Contains(out, "ledger: no differences as of ") || !strings.HasPrefix(out, "replayed ") {
		t.Fatalf("output:\n%s", out)
	}

	// A row changed by hand is reported with both sides, and the exit status says so.
	if _, err := pool.Exec(ctx, `UPDATE wallet_movements SET amount = amount + 1
		WHERE id = (SELECT min(id) FROM wallet_movements WHERE kind = 'approval')`); err != nil {
		t.Fatal(err)
	}
	out, _, err = ctl("replay", "--projection", "ledger")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "1 rows differ") {
		t.Fatalf("replay of an edited ledger: err %v\n%s", err, out)
	}
	for _, want := range []string{"ledger: 1 rows differ as of ", "  wallet_movements: 1 rows differ (", `"amount": 9001`, `"amount": 9000`, "differs in: amount"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// --swap repairs it.
	out, _, err = ctl("replay", "--projection", "ledger", "--swap")
	if err != nil || !strings.Contains(out, "ledger: swapped: the live tables are the replayed ones") {
		t.Fatalf("swap: %v\n%s", err, out)
	}
	out, _, err = ctl("replay", "--projection", "ledger")
	if err != nil || !strings.Contains(out, "ledger: no differences") {
		t.Fatalf("after the swap: %v\n%s", err, out)
	}
	var amount decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT amount FROM wallet_movements WHERE kind = 'approval' ORDER BY order_id LIMIT 1`).Scan(&amount); err != nil || !amount.Equal(decimal.NewFromInt(9000)) {
		t.Fatalf("repaired movement %s (%v), want 9000", amount, err)
	}

	// Every projection at once; nothing is left behind.
	out, _, err = ctl("replay")
	if err != nil || strings.Count(out, ": no differences as of ") != 3 {
		t.Fatalf("replay of all: %v\n%s", err, out)
	}
	var shadows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'replay\_%'`).Scan(&shadows); err != nil || shadows != 0 {
		t.Fatalf("%d shadow schemas left (%v)", shadows, err)
	}
}

// waitLedgerBuilt builds the live ledger and payment_orders as paymentd's runners would, up to
// the last event appended.
func waitLedgerBuilt(t *testing.T, pool *pgxpool.Pool, store *eventstore.Postgres) {
	t.Helper()
	var head eventstore.Position
	if err := pool.QueryRow(ctx, `SELECT transaction_id, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1`).
		Scan(&head.Transaction, &head.Sequence); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "the live read models at the head of the log", func() bool {
		for _, p := range []projections.Projection{projections.Ledger{}, projections.PaymentOrders{}, projections.Merchants{}} {
			if err := projections.CatchUp(ctx, pool, store, p); err != nil {
				t.Fatal(err)
			}
			if pos, err := projections.Checkpoint(ctx, pool, p.Name()); err != nil || pos != head {
				return false
			}
		}
		return true
	})
}

func TestReplayUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"replay", "--projection", "ledgers"}, envFrom(nil), nil, &out, &errOut)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), `--projection "ledgers": want one of payment_orders, ledger, merchants or all`) {
		t.Errorf("bad projection: %v (exit %d)", err, exitCode(err))
	}
	out.Reset()
	if err := run(ctx, []string{"replay", "--help"}, envFrom(nil), nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Exit status: 0 when every replayed read model equals its live one", "1 when rows differ", "--swap", "--projection string"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
}
