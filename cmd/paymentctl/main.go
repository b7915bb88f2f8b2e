// Command paymentctl runs one-off operations against the payment ledger's database:
//
//	paymentctl migrate                                             apply pending migrations
//	paymentctl settlements import --from 2026-11-01 --to 2026-11-21 import Toss's settlement report
//
// Configuration comes from the environment only, as for paymentd; every command's --help lists
// the variables it reads, and a malformed value fails the command naming the variable.
//
// It exits with status 1 when a command fails, including an import in which rows were refused.
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
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/config"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/migrations"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/settlements"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "paymentctl:", err)
		os.Exit(1)
	}
}

// Config is paymentctl's environment: the settings it shares with paymentd, and the deprecated
// single-merchant Toss settings that settlements import still uses.
type Config struct {
	config.Shared

	TossSecretKey string            `env:"TOSS_SECRET_KEY" secret:"true" desc:"Toss secret key (test_sk_... or live_sk_...); required by settlements import (deprecated: replaced by per-merchant keys)"`
	MerchantID    domain.MerchantID `env:"MERCHANT_ID,default=merchant-default" desc:"the merchant settlements are recorded for, as paymentd's (deprecated: replaced by per-merchant keys)"`
}

// Validate reports every broken rule at once, each naming its variable.
func (c Config) Validate() error {
	errs := []error{c.Shared.Validate()}
	if c.MerchantID == "" {
		errs = append(errs, config.Invalid("MERCHANT_ID", "is empty"))
	}
	return errors.Join(errs...)
}

// run executes one command line. Output goes to stdout, diagnostics to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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

	root.AddCommand(commissionCommand(load, stdout))

	settle := &cobra.Command{Use: "settlements", Short: "Toss settlement reports"}
	var from, to string
	imp := &cobra.Command{
		Use:   "import --from yyyy-MM-dd --to yyyy-MM-dd",
		Short: "Record the settlement rows sold in a date range (KST), once per transactionKey",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := settlements.ValidateRange(from, to); err != nil {
				return err
			}
			cfg, err := load(cmd.Context())
			if err != nil {
				return err
			}
			if cfg.TossSecretKey == "" {
				return config.Invalid("TOSS_SECRET_KEY", "is required by settlements import")
			}
			return importSettlements(cmd.Context(), cfg, from, to, stdout, stderr)
		},
	}
	imp.Flags().StringVar(&from, "from", "", "first soldDate, yyyy-MM-dd (required)")
	imp.Flags().StringVar(&to, "to", "", "last soldDate, yyyy-MM-dd (required)")
	_ = imp.MarkFlagRequired("from")
	_ = imp.MarkFlagRequired("to")
	settle.AddCommand(imp)
	root.AddCommand(settle)

	return root.ExecuteContext(ctx)
}

func importSettlements(ctx context.Context, cfg Config, from, to string, stdout, stderr io.Writer) error {
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	client, err := toss.New(cfg.TossBaseURL, cfg.TossSecretKey)
	if err != nil {
		return err
	}
	cmds, err := commands.New(eventstore.NewPostgres(pool), client, commands.Config{Merchant: cfg.MerchantID}, time.Now, nil)
	if err != nil {
		return err
	}
	sum, err := settlements.NewImporter(client, cmds, nil).Import(ctx, from, to, func(p settlements.Progress) {
		s := p.Summary
		fmt.Fprintf(stdout, "page %d: %d rows (so far: %d recorded, %d already recorded, %d unknown orders, %d errors)\n",
			p.Page, p.PageRows, s.Recorded, s.AlreadyRecorded, s.UnknownOrders, s.Errors)
	})
	for _, p := range sum.Problems {
		fmt.Fprintf(stderr, "skipped %s of order %s: %v\n", p.TransactionKey, p.OrderID, p.Err)
	}
	fmt.Fprintf(stdout, "settlements %s..%s: %d rows in %d pages: %d recorded, %d already recorded, %d unknown orders, %d errors\n",
		sum.From, sum.To, sum.Rows, sum.Pages, sum.Recorded, sum.AlreadyRecorded, sum.UnknownOrders, sum.Errors)
	if err != nil {
		return err
	}
	if sum.Errors > 0 {
		return fmt.Errorf("%d settlement rows were refused; see above", sum.Errors)
	}
	return nil
}

// commissionCommand sets a merchant's commission rate: the platform's share of each approved
// line, posted to platform_revenue:commission. An order keeps the rate the ledger saw when its
// checkout was projected, so a change applies to new orders only.
func commissionCommand(load func(context.Context) (Config, error), stdout io.Writer) *cobra.Command {
	var merchant, rate string
	set := &cobra.Command{
		Use:   "set --merchant ID --rate 0.1",
		Short: "Set a merchant's commission rate (a fraction: 0.1 = 10%; default 0)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := decimal.NewFromString(rate)
			if err != nil || r.Sign() < 0 || !r.LessThan(decimal.NewFromInt(1)) {
				return fmt.Errorf("--rate %q must be a decimal fraction from 0 up to (not including) 1, e.g. 0.1 for 10%%", rate)
			}
			if merchant == "" {
				return errors.New("--merchant is empty")
			}
			cfg, err := load(cmd.Context())
			if err != nil {
				return err
			}
			pool, err := db.Open(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			if _, err := pool.Exec(cmd.Context(), `
				INSERT INTO merchant_commission_rates (merchant_id, rate) VALUES ($1, $2)
				ON CONFLICT (merchant_id) DO UPDATE SET rate = EXCLUDED.rate, updated_at = now()`, merchant, r); err != nil {
				return fmt.Errorf("set commission: %w", err)
			}
			fmt.Fprintf(stdout, "commission of %s set to %s (applies to orders checked out from now on)\n", merchant, r)
			return nil
		},
	}
	set.Flags().StringVar(&merchant, "merchant", "", "merchant id (required)")
	set.Flags().StringVar(&rate, "rate", "", "commission as a fraction, e.g. 0.1 (required)")
	_ = set.MarkFlagRequired("merchant")
	_ = set.MarkFlagRequired("rate")
	c := &cobra.Command{Use: "commission", Short: "Per-merchant commission rates"}
	c.AddCommand(set)
	return c
}
