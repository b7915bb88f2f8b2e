package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-retry"
	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/projections"
)

// devCommand is paymentctl dev: tools for development databases, never for production ones.
func (o *operator) devCommand() *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Development tools (fake data); they refuse a database with live merchants"}
	var opts seedOptions
	seed := &cobra.Command{
		Use:   "seed --payments N [--merchant ID] [--days D] [--seed S] [--until yyyy-MM-dd] [--force]",
		Short: "Append a realistic payment history for one merchant through the event store, then rebuild the read models",
		Long: `Generate N payments of one merchant spread over D days (KST) before --until, with a
fixed-seed random generator (the same flags give the same payments), decided by the domain's
own rules and appended to the event store as a live system would have: checkouts, confirms,
approvals, rejections, expiries, partial and full refunds (some made in Toss's console,
some approvals learned by recovery), payments left for review, and Toss settlement rows for
the transactions of days already settled. The merchant is created (test mode, no Toss key) if
missing. Then the read models are rebuilt from the log (as paymentctl replay --swap does, which
is faster than applying millions of events one by one).

It refuses to run when the database holds a merchant in live mode (a live Toss key): a dev tool
must not pollute production. --force overrides that.

Progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			return o.seed(cmd.Context(), opts)
		},
	}
	f := seed.Flags()
	f.IntVar(&opts.payments, "payments", 0, "number of payments to generate (required)")
	f.StringVar(&opts.merchant, "merchant", "seed-shop", "the merchant they belong to; created if missing")
	f.IntVar(&opts.days, "days", 365, "days of history, ending the day before --until")
	f.Uint64Var(&opts.seed, "seed", 1, "random seed: the same seed and flags give the same payments")
	f.StringVar(&opts.until, "until", "", "the first KST day after the history, yyyy-MM-dd (default today)")
	f.IntVar(&opts.workers, "workers", 8, "concurrent appends")
	f.BoolVar(&opts.force, "force", false, "run even when the database holds a live merchant")
	_ = seed.MarkFlagRequired("payments")
	dev.AddCommand(seed)
	return dev
}

type seedOptions struct {
	payments, days, workers int
	merchant, until         string
	seed                    uint64
	force                   bool

	id  domain.MerchantID
	end time.Time // midnight KST of --until
}

func (s *seedOptions) validate() error {
	var errs []error
	if s.payments < 1 {
		errs = append(errs, fmt.Errorf("--payments %d: must be at least 1", s.payments))
	}
	if s.days < 1 || s.days > 3660 {
		errs = append(errs, fmt.Errorf("--days %d: must be 1 to 3660", s.days))
	}
	if s.workers < 1 || s.workers > 64 {
		errs = append(errs, fmt.Errorf("--workers %d: must be 1 to 64", s.workers))
	}
	id, err := domain.ParseMerchantID(s.merchant)
	if err != nil {
		errs = append(errs, fmt.Errorf("--merchant: %w", err))
	}
	s.id = id
	now := nowKST()
	s.end = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, domain.KST)
	if s.until != "" {
		if s.end, err = time.ParseInLocation(time.DateOnly, s.until, domain.KST); err != nil {
			errs = append(errs, fmt.Errorf("--until %q: want yyyy-MM-dd", s.until))
		}
	}
	return errors.Join(errs...)
}

// seedActor is the actor of every event the seed appends, so that seeded history is recognisable.
const seedActor = "paymentctl dev seed"

func (o *operator) seed(ctx context.Context, opts seedOptions) error {
	env, err := o.open(ctx, false)
	if err != nil {
		return err
	}
	defer env.pool.Close()
	if err := refuseLive(ctx, env, opts); err != nil {
		return err
	}
	exists, err := env.svc.Exists(ctx, opts.id)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := env.svc.Create(ctx, merchants.CreateInput{ID: opts.id, Name: "Seed shop " + string(opts.id), Actor: seedActor}); err != nil {
			return fmt.Errorf("create merchant %s: %w", opts.id, err)
		}
		if _, err := env.svc.SetCommission(ctx, opts.id, decimal.RequireFromString("0.05"), seedActor); err != nil {
			return err
		}
		fmt.Fprintf(o.stderr, "seed: created merchant %s (test mode, commission 5%%)\n", opts.id)
	}

	start := time.Now()
	var done, events atomic.Int64
	stop := make(chan struct{})
	ticker := time.NewTicker(progressEvery)
	defer ticker.Stop()
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				n := done.Load()
				rate := float64(n) / time.Since(start).Seconds()
				eta := time.Duration(float64(int64(opts.payments)-n) / max(rate, 1e-9) * float64(time.Second))
				fmt.Fprintf(o.stderr, "seed: %d/%d payments appended (%d events), %.0f payments/s, ETA %s\n",
					n, opts.payments, events.Load(), rate, eta.Round(time.Second))
			}
		}
	}()
	// Payments are handed out in batches of consecutive numbers; each payment is one append
	// (one transaction) of its whole stream, and batches run concurrently.
	const batch = 500
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.workers)
	for first := 0; first < opts.payments; first += batch {
		last := min(first+batch, opts.payments)
		g.Go(func() error {
			for i := first; i < last; i++ {
				evs, err := seedPayment(opts, i)
				if err != nil {
					return fmt.Errorf("payment %d: %w", i, err)
				}
				data, err := commands.Encode(evs, eventstore.Metadata{CorrelationID: uuid.New(), Actor: seedActor})
				if err != nil {
					return err
				}
				stream := domain.StreamName(evs[0].Header().OrderID)
				if _, err := env.store.Append(gctx, stream, eventstore.NoStream, data); err != nil {
					return fmt.Errorf("append %s: %w (a seed with these flags ran already? change --seed)", stream, err)
				}
				done.Add(1)
				events.Add(int64(len(evs)))
			}
			return nil
		})
	}
	err = g.Wait()
	close(stop)
	if err != nil {
		return err
	}
	appended := time.Since(start)
	fmt.Fprintf(o.stdout, "appended %d payments (%d events) in %s: %.0f payments/s, %.0f events/s\n",
		opts.payments, events.Load(), appended.Round(time.Millisecond),
		float64(opts.payments)/appended.Seconds(), float64(events.Load())/appended.Seconds())

	// Readers of the log stop at the oldest transaction running on the server (anybody's): the
	// replay would end before the last appends while one is open. Wait until all are readable.
	if err := waitReadable(ctx, env.pool, o.stderr); err != nil {
		return err
	}

	// The read models, rebuilt from the log and swapped in.
	rebuild := time.Now()
	prog := newProgress(o.stderr, time.Now)
	res, err := projections.Replay(ctx, env.pool, []string{"all"}, projections.ReplayOptions{Complete: true, Progress: prog.report})
	prog.finish()
	if err != nil {
		return err
	}
	for _, sh := range res.Shadows {
		if _, err := projections.Swap(ctx, env.pool, sh.Schema); err != nil {
			return errors.Join(err, projections.DropShadow(context.WithoutCancel(ctx), env.pool, sh.Schema))
		}
	}
	if _, err := env.pool.Exec(ctx, `ANALYZE`); err != nil {
		return err
	}
	fmt.Fprintf(o.stdout, "read models rebuilt from %d events in %s; total %s\n",
		res.Events, time.Since(rebuild).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

// refuseLive refuses a database that holds a live merchant (the target or any other), unless
// forced: live keys mean real money, so this is no development database. Each merchant is read
// from its own stream (the merchants read model may trail, and no runner runs here).
func refuseLive(ctx context.Context, env opEnv, opts seedOptions) error {
	if opts.force {
		return nil
	}
	rows, err := env.pool.Query(ctx, `SELECT substr(stream_id, 10) FROM event_streams WHERE stream_id LIKE 'merchant-%' ORDER BY 1`)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var live []string
	for _, id := range ids {
		d, err := env.svc.Show(ctx, domain.MerchantID(id))
		if err != nil {
			return fmt.Errorf("merchant %s: %w", id, err)
		}
		isLive := d.Mode == domain.ModeLive
		for _, k := range d.Keys {
			isLive = isLive || k.Mode == domain.ModeLive && k.Status != "revoked"
		}
		if isLive {
			live = append(live, id)
		}
	}
	if len(live) > 0 {
		return fmt.Errorf("refusing to seed: merchant %s has live keys, so this looks like a production database (--force to seed anyway)",
			strings.Join(live, ", "))
	}
	return nil
}

// Fake data. Every payment i comes from its own generator seeded with (seed, i), so the result
// does not depend on the order in which the workers run.
var (
	seedAdjectives = []string{"Blue", "Red", "Organic", "Premium", "Classic", "Mini", "Large", "Wireless", "Handmade", "Vintage",
		"유기농", "프리미엄", "국내산", "수제", "무선"}
	seedProducts = []string{"pen", "notebook", "coffee beans", "green tea", "t-shirt", "sneakers", "backpack", "headphones",
		"phone case", "desk lamp", "kimchi", "rice cake", "skincare set", "keyboard", "mug", "사과", "한우 세트", "김", "텀블러", "운동화"}
	seedMethods   = []string{"카드", "카드", "카드", "카드", "간편결제", "간편결제", "계좌이체", "가상계좌", "휴대폰"}
	seedRejection = []struct{ code, msg string }{
		{"REJECT_CARD_COMPANY", "카드사에서 결제를 거절했습니다"},
		{"EXCEED_MAX_DAILY_PAYMENT_COUNT", "하루 결제 가능 횟수를 초과했습니다"},
		{"INVALID_CARD_EXPIRATION", "카드 유효기간을 다시 확인해주세요"},
		{"NOT_ENOUGH_BALANCE", "잔액이 부족합니다"},
	}
	seedFeeRate = decimal.RequireFromString("0.0341") // Toss's card fee rate, VAT excluded
	seedVATRate = decimal.RequireFromString("1.1")
)

const (
	seedSellers = 50
	// How long after the sale Toss's settlement rows are imported and paid out.
	seedSettleAfter = 2 * 24 * time.Hour
)

// seedPayment decides payment i's whole history with the domain's rules.
func seedPayment(opts seedOptions, i int) ([]domain.Event, error) {
	rng := rand.New(rand.NewPCG(opts.seed, uint64(i)))
	// Creation time: a uniform day, busier in the evening (KST).
	day := opts.end.AddDate(0, 0, -opts.days+rng.IntN(opts.days))
	hour := []int{0, 1, 7, 8, 9, 10, 11, 12, 12, 13, 14, 15, 16, 17, 18, 19, 20, 20, 21, 21, 22, 22, 23}[rng.IntN(23)]
	created := day.Add(time.Duration(hour)*time.Hour + time.Duration(rng.IntN(3600*1e3))*time.Millisecond)

	nLines := 1
	if r := rng.IntN(10); r >= 7 {
		nLines = 2 + rng.IntN(2)
	}
	lines := make([]domain.CheckoutLine, nLines)
	for k := range lines {
		// Log-uniform prices from 1,000 to 500,000 won, in hundreds.
		price := int64(math.Exp(math.Log(1000)+rng.Float64()*(math.Log(500000)-math.Log(1000)))) / 100 * 100
		// A few sellers sell a lot (Zipf-like): seller-1 most.
		seller := 1 + int(math.Floor(math.Pow(rng.Float64(), 2.5)*seedSellers))
		lines[k] = domain.CheckoutLine{SellerID: fmt.Sprintf("seller-%d", seller), ProductID: fmt.Sprintf("prd-%d", rng.IntN(5000)),
			Amount: decimal.NewFromInt(max(price, 1000))}
	}
	name := seedAdjectives[rng.IntN(len(seedAdjectives))] + " " + seedProducts[rng.IntN(len(seedProducts))]
	if nLines > 1 {
		name += fmt.Sprintf(" 외 %d건", nLines-1)
	}
	orderID := domain.OrderID(fmt.Sprintf("ord_%08x%08x", rng.Uint32(), uint32(i)))
	buyer := fmt.Sprintf("buyer-%d", rng.IntN(max(opts.payments/4, 10)))

	h := &seedHistory{}
	co, err := domain.Checkout(domain.CheckoutCommand{OrderID: orderID, MerchantID: opts.id, BuyerID: buyer, OrderName: name,
		Currency: domain.KRW, Lines: lines}, created)
	h.add([]domain.Event{co}, err)
	key := domain.PaymentKey(fmt.Sprintf("tgen_%s%012x", created.Format("20060102"), rng.Uint64()&0xffffffffffff))
	confirmAt := created.Add(time.Duration(20+rng.IntN(300)) * time.Second)
	approvedAt := confirmAt.Add(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
	approval := domain.Approval{PaymentKey: key, OrderID: orderID, TotalAmount: co.TotalAmount, ApprovedAt: approvedAt,
		Method: seedMethods[rng.IntN(len(seedMethods))], LastTransactionKey: "txa_" + string(key)}
	confirm := func() {
		h.add(h.p.DecideConfirm(domain.ConfirmCommand{PaymentKey: key, OrderID: orderID, Amount: co.TotalAmount}, confirmAt))
	}
	doneRB := domain.ReadBack{Status: domain.PSPDone, PaymentKey: key, OrderID: orderID, TotalAmount: co.TotalAmount,
		BalanceAmount: co.TotalAmount, ApprovedAt: approvedAt, Method: approval.Method, LastTransactionKey: approval.LastTransactionKey}

	switch r := rng.IntN(1000); {
	case r < 70: // abandoned in Toss's window: expired by the sweeper
		h.add(h.p.DecideExpired("checkout expired before a confirm", co.ExpiresAt.Add(time.Duration(rng.IntN(300))*time.Second)))
	case r < 130: // refused by the card company
		confirm()
		rej := seedRejection[rng.IntN(len(seedRejection))]
		h.add(h.p.DecideRejected(rej.code, rej.msg, approvedAt))
	case r < 133: // recovery gave up: a person checks with Toss
		confirm()
		h.add(h.p.DecideUnknown("TIMEOUT", "no answer from Toss", approvedAt.Add(10*time.Second)))
		h.add(h.p.DecideRecoveryExhausted(8, "TIMEOUT", approvedAt.Add(2*time.Hour)))
	case r < 143: // expired here, yet approved at Toss: found by reconciliation
		confirm()
		h.add(h.p.DecideExpired("Toss's session expired", co.ExpiresAt))
		h.add(h.p.DecideReadBack(doneRB, created.Add(26*time.Hour), domain.ReadBackOptions{Reason: "reconciliation run (seed)"}))
	case r < 163: // outcome unknown, then recovery read the approval back
		confirm()
		h.add(h.p.DecideUnknown("TIMEOUT", "no answer from Toss", approvedAt.Add(10*time.Second)))
		h.add(h.p.DecideReadBack(doneRB, approvedAt.Add(time.Minute), domain.ReadBackOptions{Reason: "recovery (seed)"}))
	default:
		confirm()
		h.add(h.p.DecideApproved(approval, approvedAt.Add(50*time.Millisecond)))
	}
	if h.err != nil || (h.p.Status != domain.StatusSuccess) {
		return h.events, h.err
	}

	// Refunds: 8% partial, 6% full, 1% made in Toss's console.
	type step struct {
		at time.Time
		do func(at time.Time)
	}
	var steps []step
	settle := func(txKey string, sold time.Time, amount decimal.Decimal) {
		soldDay := sold.In(domain.KST)
		soldDay = time.Date(soldDay.Year(), soldDay.Month(), soldDay.Day(), 0, 0, 0, 0, domain.KST)
		importAt := soldDay.Add(seedSettleAfter + 6*time.Hour)
		if !importAt.Before(opts.end) {
			return // not settled yet
		}
		fee := amount.Abs().Mul(seedFeeRate).Mul(seedVATRate).Round(0)
		if amount.IsNegative() {
			fee = fee.Neg()
		}
		steps = append(steps, step{importAt, func(at time.Time) {
			h.add(h.p.DecideSettlement(domain.SettlementInput{TransactionKey: txKey, PaymentKey: key,
				SoldDate: soldDay.Format(time.DateOnly), PaidOutDate: soldDay.Add(seedSettleAfter).Format(time.DateOnly),
				Amount: amount, Fee: fee, VAT: fee.Div(decimal.NewFromInt(11)).Round(0), PayOutAmount: amount.Sub(fee)}, at))
		}})
	}
	settle(approval.LastTransactionKey, approvedAt, co.TotalAmount)
	cancelAt := approvedAt.Add(time.Duration(1+rng.IntN(14*24)) * time.Hour)
	if cancelAt.Before(opts.end) {
		var amount decimal.Decimal
		console := false
		switch r := rng.IntN(100); {
		case r < 8:
			amount = co.TotalAmount.Mul(decimal.NewFromFloat(0.1 + 0.6*rng.Float64())).Div(decimal.NewFromInt(100)).Floor().Mul(decimal.NewFromInt(100))
		case r < 14:
			amount = co.TotalAmount
		case r < 15:
			amount, console = co.TotalAmount, true
		}
		if amount.IsPositive() {
			txKey := fmt.Sprintf("txc_%s_1", key)
			steps = append(steps, step{cancelAt, func(at time.Time) {
				if console {
					rb := doneRB
					rb.Status, rb.BalanceAmount, rb.LastTransactionKey = domain.PSPCanceled, decimal.Zero, txKey
					rb.Cancels = []domain.PSPCancel{{TransactionKey: txKey, Amount: amount, CanceledAt: at, Reason: "고객 변심"}}
					h.add(h.p.DecideReadBack(rb, at.Add(time.Hour), domain.ReadBackOptions{Reason: "webhook read-back (seed)"}))
					return
				}
				id := domain.CancelID(fmt.Sprintf("cnl_%s_1", orderID))
				h.add(h.p.DecideCancel(domain.CancelCommand{CancelID: id, Amount: &amount, Reason: "고객 요청"}, at))
				h.add(h.p.DecideCanceled(id, amount, txKey, at.Add(time.Second), at.Add(time.Second)))
			}})
			settle(txKey, cancelAt, amount.Neg())
		}
	}
	slices.SortStableFunc(steps, func(a, b step) int { return a.at.Compare(b.at) })
	for _, s := range steps {
		s.do(s.at)
	}
	return h.events, h.err
}

// seedHistory folds the events it is given, keeping the first error.
type seedHistory struct {
	p      domain.Payment
	events []domain.Event
	err    error
}

func (h *seedHistory) add(events []domain.Event, err error) {
	if h.err != nil {
		return
	}
	if err != nil {
		h.err = err
		return
	}
	for _, e := range events {
		if err := h.p.Apply(e); err != nil {
			h.err = err
			return
		}
		h.events = append(h.events, e)
	}
}

// waitReadable waits until every committed event is older than the oldest transaction running
// on the server, so that the global log's readers see them all; it says so while it waits.
func waitReadable(ctx context.Context, pool *pgxpool.Pool, stderr io.Writer) error {
	const q = `SELECT coalesce((SELECT max(transaction_id) FROM events) < pg_snapshot_xmin(pg_current_snapshot()), true)`
	said := false
	b := retry.WithCappedDuration(time.Second, retry.NewExponential(10*time.Millisecond))
	for {
		var readable bool
		if err := pool.QueryRow(ctx, q).Scan(&readable); err != nil {
			return fmt.Errorf("wait for the log to be readable: %w", err)
		}
		if readable {
			return nil
		}
		if !said {
			fmt.Fprintln(stderr, "seed: waiting for another transaction on the server to end, so that the log is readable to its end")
			said = true
		}
		wait, _ := b.Next()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
