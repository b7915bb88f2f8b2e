package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/internal/db"
)

// auditCommand is `paymentctl audit` (the checks) with its subcommands keygen and seal.
func (o *operator) auditCommand() *cobra.Command {
	var format, publicKey, sealFile string
	var skipReplay bool
	cmd := &cobra.Command{
		Use:   "audit [--format table|json] [--public-key KEY] [--seal-file PATH] [--skip-replay]",
		Short: "Check every stream's hash chain, history and seals, and the books; exit 1 naming each problem",
		Long: `Check the whole history and the books:
  - every stream's hash chain, its recorded head and, with AUDIT_CHAIN_KEY, its keyed hashes;
  - every stream's events are a legal history of its payment or merchant;
  - every seal's signature (with the public key only), and history against every seal;
  - every journal entry balances, every merchant's trial balance is zero and every seller's
    wallet equals its seller_payable balance, as of now;
  - every read model equals a fresh replay of the log (projection_drift), unless --skip-replay.
    The replay writes only shadow schemas, which it drops.
Progress goes to stderr, the report to stdout. It exits 1 when it finds a problem and 2 when
it cannot check (the database, the seal file, seals without a public key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return checked(o.audit(cmd, format, publicKey, sealFile, skipReplay))
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table (for people) or json")
	cmd.Flags().StringVar(&publicKey, "public-key", "", "the seals' ed25519 public key, base64 (default AUDIT_PUBLIC_KEY)")
	cmd.Flags().StringVar(&sealFile, "seal-file", "", "a copy of the seal file (the off-machine copy) whose seals are verified too")
	cmd.Flags().BoolVar(&skipReplay, "skip-replay", false, "do not compare the read models with a replay (the slowest check)")

	cmd.AddCommand(&cobra.Command{
		Use:   "keygen",
		Short: "Make an ed25519 key pair for seals: AUDIT_SIGNING_KEY and AUDIT_PUBLIC_KEY",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			seed, pub, err := audit.GenerateKey()
			if err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "AUDIT_SIGNING_KEY=%s\nAUDIT_PUBLIC_KEY=%s\n",
				base64.StdEncoding.EncodeToString(seed), base64.StdEncoding.EncodeToString(pub))
			fmt.Fprintf(o.stderr, "key %s: give AUDIT_SIGNING_KEY to the sealer only (paymentd or paymentctl audit seal) and keep it off the database machine's disks; AUDIT_PUBLIC_KEY is enough to verify seals.\n", audit.KeyID(pub))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "seal",
		Short: "Sign a checkpoint of the history now, store it and append it to AUDIT_SEAL_FILE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.load(cmd.Context())
			if err != nil {
				return err
			}
			if cfg.AuditSigningKey == nil {
				return errors.New("AUDIT_SIGNING_KEY is not set: make a key pair with paymentctl audit keygen")
			}
			pool, err := db.Open(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			file := cfg.SealFile(cfg.DataDir)
			seal, err := audit.NewSealer(pool, []byte(cfg.AuditSigningKey), file).Seal(cmd.Context())
			if err != nil && seal.Seq == 0 {
				return err
			}
			fmt.Fprintf(o.stdout, "seal %d: position %s, %d streams, %d events, root %x, key %s\n",
				seal.Seq, seal.Position, seal.Streams, seal.Events, seal.Root, seal.KeyID)
			if err != nil {
				return fmt.Errorf("seal %d is in the database, but: %w", seal.Seq, err)
			}
			fmt.Fprintf(o.stdout, "stored in the database and appended to %s\n", file)
			return nil
		},
	})
	return cmd
}

// progressPrinter writes the audit's progress to w at most every two seconds, and once at the
// end of the stream pass.
func progressPrinter(w io.Writer) func(audit.Progress) {
	var last time.Time
	return func(p audit.Progress) {
		done := p.Streams >= p.TotalStreams
		if !done && time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		rate := 0.0
		if s := p.Elapsed.Seconds(); s > 0 {
			rate = float64(p.Events) / s
		}
		fmt.Fprintf(w, "audit: %d/%d streams, %d events, %.0f events/s\n", p.Streams, p.TotalStreams, p.Events, rate)
	}
}

func printReport(w io.Writer, format string, rep audit.Report) error {
	if format == "json" {
		return json.NewEncoder(w).Encode(rep)
	}
	if rep.OK {
		_, err := fmt.Fprintf(w, "audit: ok: %d streams, %d events, no problems\n", rep.Streams, rep.Events)
		return err
	}
	fmt.Fprintf(w, "audit: %d streams, %d events, %d problems\n\n", rep.Streams, rep.Events, len(rep.Problems))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTREAM\tVERSION\tDETAIL")
	for _, p := range rep.Problems {
		version := "-"
		if p.Version > 0 {
			version = fmt.Sprint(p.Version)
		}
		stream := p.Stream
		if stream == "" {
			stream = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Kind, stream, version, strings.ReplaceAll(p.Detail, "\n", " "))
	}
	return tw.Flush()
}

// audit runs the checks of paymentctl audit and prints the report.
func (o *operator) audit(cmd *cobra.Command, format, publicKey, sealFile string, skipReplay bool) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("--format must be table or json, not %q", format)
	}
	cfg, err := o.load(cmd.Context())
	if err != nil {
		return err
	}
	pub := cfg.AuditPublicKey
	if publicKey != "" {
		if err := pub.EnvDecode(cmd.Context(), publicKey); err != nil {
			return fmt.Errorf("--public-key: %w", err)
		}
	}
	return o.with(cmd.Context(), false, func(env opEnv) error {
		opts := audit.Options{
			PublicKey: []byte(pub),
			SealFile:  sealFile,
			Progress:  progressPrinter(o.stderr),
		}
		if !skipReplay {
			prog := newProgress(o.stderr, time.Now)
			defer prog.finish()
			opts.Drift = audit.ReplayDrift{Pool: env.pool, Progress: prog.report}
		}
		rep, err := audit.New(env.pool, env.store, opts).Run(cmd.Context())
		if err != nil {
			return err
		}
		if err := printReport(o.stdout, format, rep); err != nil {
			return err
		}
		if !rep.OK {
			return found("audit: %d problems", len(rep.Problems))
		}
		return nil
	})
}
