package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/reconcile"
)

func (o *operator) reconcileCommand() *cobra.Command {
	var from, to, merchant, format string
	var apply bool
	c := &cobra.Command{
		Use:   "reconcile --from yyyy-MM-dd --to yyyy-MM-dd [--merchant ID] [--apply] [--format table|json|csv]",
		Short: "Compare the ledger with Toss's transactions and settlements over KST days; with --apply, book what Toss's truth settles",
		Long: `Compare each merchant's ledger with Toss's own records over the KST days from..to (both
included), with the merchant's own Toss key: the transactions Toss lists (approvals, cancels)
and its settlement rows against the payments' event streams. Every difference is named by
category: missing_internal, missing_at_psp, amount_mismatch, status_mismatch, duplicate,
settlement_missing, settlement_mismatch (and history_broken for a stream that fails
verification); agreeing transactions count as matched.

With --apply, what Toss's truth settles is booked with actor "reconciliation": an approval Toss
holds, a cancel made in Toss's console (both by reading the payment back, as the webhook worker
does) and a settlement row paid out but never recorded. A rerun applies nothing twice. The rest
is kept on the needs-review list (GET /api/v1/payments?needsReview=true).

Progress goes to stderr, the result to stdout: a table, JSON
{"from","to","counts","differences":[{"category","orderId","paymentKey","transactionKey","ours","toss","resolution",…}],…}
or CSV (one row per difference). Each merchant's run is kept (GET /api/v1/reconciliation/runs).

Exit status: 0 when nothing unresolved remains, 1 when differences remain, 2 on an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case from == "" || to == "":
				return failed(errors.New("--from and --to are required (KST days, yyyy-MM-dd)"))
			case format != "table" && format != "json" && format != "csv":
				return failed(fmt.Errorf("--format %q is not table, json or csv", format))
			}
			if _, _, err := reconcile.Window(from, to, nowKST()); err != nil {
				return failed(err)
			}
			var only domain.MerchantID
			if merchant != "" {
				id, err := domain.ParseMerchantID(merchant)
				if err != nil {
					return failed(fmt.Errorf("--merchant: %w", err))
				}
				only = id
			}
			return o.reconcile(cmd.Context(), only, from, to, apply, format)
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return failed(err) })
	c.Flags().StringVar(&from, "from", "", "first KST day, yyyy-MM-dd (required)")
	c.Flags().StringVar(&to, "to", "", "last KST day, yyyy-MM-dd, at most today (required)")
	c.Flags().StringVar(&merchant, "merchant", "", "reconcile this merchant only (default: every merchant with a Toss key, in turn)")
	c.Flags().BoolVar(&apply, "apply", false, "book what Toss's truth settles (actor reconciliation)")
	c.Flags().StringVar(&format, "format", "table", "output: table, json or csv")
	return c
}

func (o *operator) reconcile(ctx context.Context, only domain.MerchantID, from, to string, apply bool, format string) error {
	env, err := o.open(ctx, true)
	if err != nil {
		return failed(err)
	}
	defer env.pool.Close()
	if err := o.catchUp(ctx, env, projections.Merchants{}, projections.PaymentOrders{}); err != nil {
		return failed(err)
	}
	ids := []domain.MerchantID{only}
	if only != "" {
		if _, err := env.svc.Show(ctx, only); err != nil {
			return failed(err)
		}
	} else if ids, err = env.svc.WithTossKeys(ctx); err != nil {
		return failed(err)
	}
	psps := func(ctx context.Context, m domain.MerchantID) (commands.PSP, error) { return env.dir.Client(ctx, m) }
	cmds, err := commands.New(env.store, psps, commands.Config{}, nowKST, nil)
	if err != nil {
		return failed(err)
	}
	engine, err := reconcile.New(reconcile.Config{
		Pool:    env.pool,
		Streams: env.store,
		Clients: func(ctx context.Context, m domain.MerchantID) (reconcile.Lister, error) {
			return env.dir.Client(ctx, m)
		},
		Corrector: cmds,
		FeeRates:  env.svc,
		Now:       nowKST,
	})
	if err != nil {
		return failed(err)
	}
	var reports []reconcile.Report
	var errs []error
	for _, id := range ids {
		started := time.Now()
		rep, err := engine.Run(ctx, reconcile.Request{Merchant: id, From: from, To: to, Apply: apply, Trigger: reconcile.TriggerCLI, Progress: o.progress()})
		if err != nil {
			fmt.Fprintf(o.stderr, "%s: failed after %s: %v\n", id, time.Since(started).Round(time.Millisecond), err)
			errs = append(errs, fmt.Errorf("merchant %s: %w", id, err))
			if rep.RunID == 0 && rep.Err == "" {
				continue // refused before it started (a bad merchant): nothing to show
			}
		} else {
			fmt.Fprintf(o.stderr, "%s: %d payments, %d Toss transactions, %d settlement rows compared in %s (run %d)\n",
				id, rep.Payments, rep.TossTransactions, rep.TossSettlements, time.Since(started).Round(time.Millisecond), rep.RunID)
		}
		reports = append(reports, rep)
		if ctx.Err() != nil {
			break
		}
	}
	if err := o.printReconciliation(format, from, to, reports); err != nil {
		return failed(err)
	}
	if len(errs) > 0 {
		return failed(errors.Join(errs...))
	}
	unresolved := 0
	for _, r := range reports {
		unresolved += r.Unresolved
	}
	if unresolved > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d differences unresolved", unresolved)}
	}
	return nil
}

// catchUpWait bounds how long a command waits for the read models to reach the events committed
// before it started.
const catchUpWait = time.Minute

// catchUp brings the read models a command reads (reconcile: payment_orders and merchants;
// balances: the ledger and merchants) up to every event committed before it started, whether or
// not a paymentd keeps them. Events behind a transaction still open elsewhere on the server
// cannot be read yet (eventstore's xmin horizon), so CatchUp alone may stop short: it waits for
// them, at most catchUpWait, then goes on with a warning.
func (o *operator) catchUp(ctx context.Context, env opEnv, models ...projections.Projection) error {
	var last eventstore.Position
	err := env.pool.QueryRow(ctx, `SELECT transaction_id, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1`).
		Scan(&last.Transaction, &last.Sequence)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	deadline := time.Now().Add(catchUpWait)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		behind := false
		for _, p := range models {
			if err := projections.CatchUp(ctx, env.pool, env.store, p); err != nil {
				return err
			}
			pos, err := projections.Checkpoint(ctx, env.pool, p.Name())
			if err != nil {
				return err
			}
			behind = behind || pos.Less(last)
		}
		if !behind {
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(o.stderr, "warning: the read models are still behind the event log after %s (a long transaction is open on the server); what was committed meanwhile is not included\n", catchUpWait)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// progress reports a run's progress on stderr: each Toss page, every 10,000 payments folded,
// and the corrections.
func (o *operator) progress() func(reconcile.Progress) {
	return func(p reconcile.Progress) {
		switch p.Phase {
		case "transactions":
			fmt.Fprintf(o.stderr, "%s: Toss transactions page %d: %d rows so far\n", p.Merchant, p.Page, p.Done)
		case "settlements":
			fmt.Fprintf(o.stderr, "%s: Toss settlements page %d: %d rows so far\n", p.Merchant, p.Page, p.Done)
		case "ledger":
			if p.Done%10_000 == 0 || p.Done == p.Total {
				fmt.Fprintf(o.stderr, "%s: ledger: %d/%d payments read and verified\n", p.Merchant, p.Done, p.Total)
			}
		case "apply":
			if p.Done == 0 || p.Done == p.Total || p.Done%1_000 == 0 {
				fmt.Fprintf(o.stderr, "%s: corrections %d/%d\n", p.Merchant, p.Done, p.Total)
			}
		}
	}
}

// reconciliationJSON is the JSON result: the shape (from, to, counts, differences) over
// every merchant run, with each merchant's own summary beside it.
type reconciliationJSON struct {
	From        string                 `json:"from"`
	To          string                 `json:"to"`
	Counts      map[string]int         `json:"counts"`
	Differences []reconcile.Difference `json:"differences"`
	Unresolved  int                    `json:"unresolved"`
	Applied     int                    `json:"applied"`
	Runs        []runJSON              `json:"runs"`
}

type runJSON struct {
	RunID      int64          `json:"runId"`
	MerchantID string         `json:"merchantId"`
	Apply      bool           `json:"apply"`
	Payments   int            `json:"payments"`
	Counts     map[string]int `json:"counts"`
	Unresolved int            `json:"unresolved"`
	Applied    int            `json:"applied"`
	Error      string         `json:"error,omitempty"`
}

func counts(c map[reconcile.Category]int) map[string]int {
	out := make(map[string]int, len(c))
	for k, v := range c {
		out[string(k)] = v
	}
	return out
}

func (o *operator) printReconciliation(format, from, to string, reports []reconcile.Report) error {
	total := reconciliationJSON{From: from, To: to, Counts: map[string]int{}, Differences: []reconcile.Difference{}, Runs: []runJSON{}}
	for _, c := range reconcile.Categories {
		total.Counts[string(c)] = 0
	}
	for _, r := range reports {
		for c, n := range r.Counts {
			total.Counts[string(c)] += n
		}
		total.Differences = append(total.Differences, r.Differences...)
		total.Unresolved += r.Unresolved
		total.Applied += r.Applied
		total.Runs = append(total.Runs, runJSON{RunID: r.RunID, MerchantID: string(r.Merchant), Apply: r.Apply, Payments: r.Payments,
			Counts: counts(r.Counts), Unresolved: r.Unresolved, Applied: r.Applied, Error: r.Err})
	}
	switch format {
	case "json":
		return o.printJSON(total)
	case "csv":
		w := csv.NewWriter(o.stdout)
		_ = w.Write([]string{"merchantId", "category", "orderId", "paymentKey", "transactionKey", "ours", "toss", "resolution", "detail"})
		for _, d := range total.Differences {
			_ = w.Write([]string{string(d.Merchant), string(d.Category), d.OrderID, d.PaymentKey, d.TransactionKey, d.Ours, d.Toss, string(d.Resolution), d.Detail})
		}
		w.Flush()
		return w.Error()
	}
	return printTable(o.stdout, total, reports)
}

func printTable(out io.Writer, total reconciliationJSON, reports []reconcile.Report) error {
	for _, r := range reports {
		status := ""
		if r.Err != "" {
			status = "  FAILED: " + r.Err
		}
		fmt.Fprintf(out, "merchant %s  %s..%s  run %d  %d payments, %d Toss transactions, %d settlement rows%s\n",
			r.Merchant, r.From, r.To, r.RunID, r.Payments, r.TossTransactions, r.TossSettlements, status)
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCATEGORY\tCOUNT")
	for _, c := range reconcile.Categories {
		fmt.Fprintf(tw, "%s\t%d\n", c, total.Counts[string(c)])
	}
	fmt.Fprintf(tw, "unresolved\t%d\napplied\t%d\n", total.Unresolved, total.Applied)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(total.Differences) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nMERCHANT\tCATEGORY\tRESOLUTION\tORDER\tTRANSACTION\tOURS\tTOSS\tDETAIL")
	for _, d := range total.Differences {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Merchant, d.Category, d.Resolution, d.OrderID, dash(d.TransactionKey),
			oneLine(d.Ours), oneLine(d.Toss), oneLine(d.Detail))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line whatever a description holds.
func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\t", " ").Replace(s) }
