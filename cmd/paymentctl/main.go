// Command paymentctl runs one-off operations against the payment ledger's database:
//
//	paymentctl migrate                                        apply pending migrations
//	paymentctl merchants create --name NAME [--toss-secret-key KEY] [--id ID] [--json]
//	paymentctl merchants list | show ID | set-toss-key ID --toss-secret-key KEY | set-commission ID --rate 0.1
//	paymentctl merchants set-fee-rate ID --rate 0.0341 [--from yyyy-MM-dd]   the merchant's Toss contract fee rate
//	paymentctl merchants set-notification-url ID URL | rotate-notification-secret ID [--grace D] | remove-notification-url ID
//	paymentctl keys issue|list --merchant ID, keys revoke|rotate --merchant ID KEY_ID
//	paymentctl secrets rotate                                 re-seal Toss keys and notification secrets under SECRETS_KEY
//	paymentctl settlements import --merchant ID --from 2026-11-01 --to 2026-11-21
//	paymentctl reconcile --from 2026-11-01 --to 2026-11-21 [--merchant ID] [--apply] [--format table|json|csv]
//	paymentctl audit [--format table|json] [--public-key KEY] [--seal-file PATH] [--skip-replay], audit keygen | seal
//	paymentctl replay [--projection NAME|all] [--swap] [--keep] [--limit N]
//	paymentctl history ORDER_ID [--json]
//	paymentctl balances [--as-of TIME] [--merchant ID] [--json]
//	paymentctl dlq list [--projection NAME] [--stream ID] [--json] | show ID | redrive ID|--all   events a projection parked
//	paymentctl dlq list --kind notify [--merchant ID] | show ID | redrive ID|--all   notifications that ran out of deliveries
//	paymentctl dev seed --payments N [--merchant ID] [--days D] [--seed S] [--force]   fake history for a development database
//
// Configuration comes from the environment only, as for paymentd; every command's --help lists
// the variables it reads, and a malformed value fails the command naming the variable.
//
// It exits with status 1 when a command fails, including an import in which rows were refused.
// The checking commands exit 1 for what they find and 2 when they cannot check: reconcile when
// differences remain, audit when it finds a problem, replay when rows differ or a swap is
// refused over a broken history.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/config"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/migrations"
	"github.com/paymentledger/ledger/settlements"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "paymentctl:", err)
		os.Exit(exitCode(err))
	}
}

// Config is paymentctl's environment: the settings it shares with paymentd.
type Config struct {
	config.Shared
	config.Audit
}

// Validate reports every broken rule at once, each naming its variable.
func (c Config) Validate() error { return errors.Join(c.Shared.Validate(), c.Audit.Validate()) }

// run executes one command line. Output goes to stdout, diagnostics to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	// Each command loads the environment when it runs, so --help works whatever it holds.
	load := func(ctx context.Context) (Config, error) {
		var cfg Config
		err := config.Load(ctx, getenv, &cfg)
		return cfg, err
	}
	env, err := config.Help(Config{})
	if err != nil {
		return err
	}
	root := &cobra.Command{
		Use:           "paymentctl",
		Short:         "Operate the payment ledger",
		SilenceUsage:  true,
		SilenceErrors: true, // main prints the error once
	}
	// The template is inherited by every subcommand, so each --help ends with the environment.
	root.SetUsageTemplate(root.UsageTemplate() + "\nEnvironment:\n{{" + strconv.Quote(env) + "}}")
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	root.AddCommand(&cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load(cmd.Context())
			if err != nil {
				return err
			}
			pool, err := db.Open(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := migrations.Up(cmd.Context(), pool)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "migrations applied: %d\n", len(applied))
			for _, name := range applied {
				fmt.Fprintf(stdout, "  %s\n", name)
			}
			return nil
		},
	})

	o := &operator{load: load, stdin: stdin, stdout: stdout, stderr: stderr}
	root.AddCommand(o.merchantsCommand(), o.keysCommand(), o.secretsCommand(), o.historyCommand(), o.balancesCommand())
	root.AddCommand(o.reconcileCommand(), o.auditCommand(), o.replayCommand(), o.dlqCommand(), o.devCommand())

	settle := &cobra.Command{Use: "settlements", Short: "Toss settlement reports"}
	var from, to, merchant string
	imp := &cobra.Command{
		Use:   "import --merchant ID --from yyyy-MM-dd --to yyyy-MM-dd",
		Short: "Record a merchant's settlement rows sold in a date range (KST), once per transactionKey",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := settlements.ValidateRange(from, to); err != nil {
				return err
			}
			id, err := domain.ParseMerchantID(merchant)
			if err != nil {
				return fmt.Errorf("--merchant: %w", err)
			}
			return o.importSettlements(cmd.Context(), id, from, to)
		},
	}
	imp.Flags().StringVar(&merchant, "merchant", "", "the merchant whose report to import, with its Toss key (required)")
	imp.Flags().StringVar(&from, "from", "", "first soldDate, yyyy-MM-dd (required)")
	imp.Flags().StringVar(&to, "to", "", "last soldDate, yyyy-MM-dd (required)")
	_ = imp.MarkFlagRequired("merchant")
	_ = imp.MarkFlagRequired("from")
	_ = imp.MarkFlagRequired("to")
	settle.AddCommand(imp)
	root.AddCommand(settle)

	return root.ExecuteContext(ctx)
}

func (o *operator) importSettlements(ctx context.Context, merchant domain.MerchantID, from, to string) error {
	env, err := o.open(ctx, true)
	if err != nil {
		return err
	}
	defer env.pool.Close()
	client, err := env.dir.Client(ctx, merchant)
	if err != nil {
		return err
	}
	cmds, err := commands.New(env.store, commands.OnePSP(client), commands.Config{}, nowKST, nil)
	if err != nil {
		return err
	}
	sum, err := settlements.NewImporter(client, cmds, merchant, nil).Import(ctx, from, to, func(p settlements.Progress) {
		s := p.Summary
		fmt.Fprintf(o.stdout, "page %d: %d rows (so far: %d recorded, %d already recorded, %d unknown orders, %d errors)\n",
			p.Page, p.PageRows, s.Recorded, s.AlreadyRecorded, s.UnknownOrders, s.Errors)
	})
	for _, p := range sum.Problems {
		fmt.Fprintf(o.stderr, "skipped %s of order %s: %v\n", p.TransactionKey, p.OrderID, p.Err)
	}
	fmt.Fprintf(o.stdout, "settlements of %s %s..%s: %d rows in %d pages: %d recorded, %d already recorded, %d unknown orders, %d errors\n",
		merchant, sum.From, sum.To, sum.Rows, sum.Pages, sum.Recorded, sum.AlreadyRecorded, sum.UnknownOrders, sum.Errors)
	if err != nil {
		return err
	}
	if sum.Errors > 0 {
		return fmt.Errorf("%d settlement rows were refused; see above", sum.Errors)
	}
	return nil
}

// Exit statuses. A command exits 1 when it fails. The checking commands (reconcile, audit,
// replay) tell what they found from not being able to look: 1 when they found differences or
// problems, 2 when they could not check (bad flags, Toss, the database).

// exitError carries the exit status of a command that must not exit 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the status paymentctl exits with after err: the command's own, else 1.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// failed is a checking command's exit status 2: it could not check.
func failed(err error) error { return &exitError{code: 2, err: err} }

// found is a checking command's exit status 1: what it found.
func found(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}

// checked gives err a checking command's exit status: its own when it has one (found, failed),
// else 2.
func checked(err error) error {
	var e *exitError
	if err == nil || errors.As(err, &e) {
		return err
	}
	return failed(err)
}
