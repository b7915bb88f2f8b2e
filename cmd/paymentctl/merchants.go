package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/secrets"
)

func nowKST() time.Time { return time.Now().In(domain.KST) }

// operator runs the commands that act on merchants, keys and secrets.
type operator struct {
	load   func(context.Context) (Config, error)
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// opEnv is what a command opened: the database, the event store, the merchant service and a
// Toss client directory on TOSS_BASE_URL.
type opEnv struct {
	pool  *pgxpool.Pool
	store *eventstore.Postgres
	svc   *merchants.Service
	dir   *merchants.Directory
}

// with opens the environment, runs f and closes it.
func (o *operator) with(ctx context.Context, needKeyring bool, f func(opEnv) error) error {
	env, err := o.open(ctx, needKeyring)
	if err != nil {
		return err
	}
	defer env.pool.Close()
	return f(env)
}

// open reads the environment and connects. needKeyring: the command seals or opens Toss keys,
// so SECRETS_KEY (or the simulator's generated key file under DATA_DIR) must be there.
func (o *operator) open(ctx context.Context, needKeyring bool) (opEnv, error) {
	cfg, err := o.load(ctx)
	if err != nil {
		return opEnv{}, err
	}
	var keyring *secrets.Keyring
	if needKeyring {
		if keyring, err = keyringOf(cfg); err != nil {
			return opEnv{}, err
		}
	}
	key, err := cfg.AuditChainKey.Key()
	if err != nil {
		return opEnv{}, err
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return opEnv{}, err
	}
	store := eventstore.NewPostgres(pool, eventstore.WithChainKey(key))
	svc := merchants.New(store, pool, merchants.Config{Keyring: keyring, Now: nowKST})
	return opEnv{pool: pool, store: store, svc: svc, dir: svc.NewDirectory(cfg.TossBaseURL)}, nil
}

// keyringOf is paymentd's keyring: SECRETS_KEY and SECRETS_KEY_PREVIOUS, or the key a simulator
// run of paymentd generated under DATA_DIR. paymentctl never generates one.
func keyringOf(cfg Config) (*secrets.Keyring, error) {
	current := []byte(cfg.SecretsKey)
	if len(current) == 0 {
		path := filepath.Join(cfg.DataDir, "secrets-key")
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("SECRETS_KEY: is empty and DATA_DIR holds no secrets-key file: set it to paymentd's SECRETS_KEY")
		}
		if err != nil {
			return nil, err
		}
		if current, err = secrets.ParseKey(string(b)); err != nil {
			return nil, fmt.Errorf("%s %w", path, err)
		}
	}
	previous := make([][]byte, len(cfg.SecretsKeyPrevious))
	for i, k := range cfg.SecretsKeyPrevious {
		previous[i] = []byte(k)
	}
	return secrets.NewKeyring(current, previous...)
}

// printJSON writes v as indented JSON.
func (o *operator) printJSON(v any) error {
	enc := json.NewEncoder(o.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// tossKeyArg reads a Toss secret key given as a flag value, or from stdin when the value is "-"
// (so it stays out of the shell's history and the process list).
func (o *operator) tossKeyArg(v string) (string, error) {
	if v != "-" {
		return v, nil
	}
	line, err := bufio.NewReader(o.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the Toss secret key from stdin: %w", err)
	}
	return strings.TrimSpace(line), nil
}

func (o *operator) printIssued(k merchants.IssuedKey, asJSON bool) error {
	if asJSON {
		return o.printJSON(k)
	}
	fmt.Fprintf(o.stdout, "merchant %s: API key %s (%s; scopes %s)\n", k.MerchantID, k.KeyID, k.Mode, joinScopes(k.Scopes))
	if k.Replaces != "" && k.ReplacedUntil != nil {
		fmt.Fprintf(o.stdout, "it replaces %s, which keeps working until %s\n", k.Replaces, k.ReplacedUntil.In(domain.KST).Format(time.RFC3339))
	}
	fmt.Fprintf(o.stdout, "\n  %s\n\nshown once: store it now (it is kept only as a hash)\n", k.APIKey)
	return nil
}

func joinScopes(ss []domain.Scope) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ",")
}

func (o *operator) printDetail(d merchants.Detail, asJSON bool) error {
	if asJSON {
		return o.printJSON(d)
	}
	tossKey := d.TossKey
	if tossKey == "" {
		tossKey = "(none: confirm and refunds refused until set)"
	}
	feeRate := "(none: settlement fees are not checked)"
	if d.TossFeeRate != nil {
		feeRate = d.TossFeeRate.String()
	}
	fmt.Fprintf(o.stdout, "merchant:    %s\nname:        %s\nmode:        %s\ntoss key:    %s\ncommission:  %s\nfee rate:    %s\nregistered:  %s\n",
		d.MerchantID, d.Name, d.Mode, tossKey, d.CommissionRate, feeRate, d.RegisteredAt.Format(time.RFC3339))
	if n := d.Notification; n != nil {
		fmt.Fprintf(o.stdout, "notify:      %s (signing secret %s)\n", n.URL, n.SecretHint)
	}
	return o.printKeys(d.Keys)
}

func (o *operator) printKeys(keys []merchants.KeyInfo) error {
	tw := tabwriter.NewWriter(o.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tSTATUS\tMODE\tSCOPES\tISSUED\tSTOPS")
	for _, k := range keys {
		stops := ""
		if k.RevokedAt != nil {
			stops = k.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Status, k.Mode, joinScopes(k.Scopes), k.IssuedAt.Format(time.RFC3339), stops)
	}
	return tw.Flush()
}

func merchantArg(args []string) (domain.MerchantID, error) {
	id, err := domain.ParseMerchantID(args[0])
	if err != nil {
		return "", fmt.Errorf("merchant id: %w", err)
	}
	return id, nil
}

func (o *operator) merchantsCommand() *cobra.Command {
	c := &cobra.Command{Use: "merchants", Short: "Merchants: create, list, show, set their Toss key, commission and Toss fee rate"}

	var name, id, tossKey string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --name NAME [--toss-secret-key KEY|-] [--id ID] [--json]",
		Short: "Register a merchant and issue its first API key (every scope), shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := o.tossKeyArg(tossKey)
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), key != "", func(env opEnv) error {
				issued, err := env.svc.Create(cmd.Context(), merchants.CreateInput{ID: domain.MerchantID(id), Name: name, TossSecretKey: key, Actor: merchants.ActorOperator})
				if err != nil {
					return err
				}
				return o.printIssued(issued, asJSON)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name (required)")
	create.Flags().StringVar(&tossKey, "toss-secret-key", "", "the merchant's Toss secret key (test_sk_… or live_sk_…); - reads it from stdin")
	create.Flags().StringVar(&id, "id", "", "merchant id (default: a new mch_… id); an existing id's payments become this merchant's")
	create.Flags().BoolVar(&asJSON, "json", false, `print {"merchantId","apiKey",…} as JSON`)
	_ = create.MarkFlagRequired("name")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List merchants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.with(cmd.Context(), false, func(env opEnv) error {
				// The list is a read model paymentd keeps; bring it up to date in case none runs.
				if err := projections.CatchUp(cmd.Context(), env.pool, env.store, projections.Merchants{}); err != nil {
					return err
				}
				ms, err := env.svc.List(cmd.Context())
				if err != nil {
					return err
				}
				if listJSON {
					return o.printJSON(map[string]any{"merchants": ms})
				}
				tw := tabwriter.NewWriter(o.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "MERCHANT\tNAME\tMODE\tTOSS KEY\tCOMMISSION\tREGISTERED")
				for _, m := range ms {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.MerchantID, m.Name, m.Mode, m.TossKey, m.CommissionRate, m.RegisteredAt.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "Show a merchant and its API keys (never a secret)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantArg(args)
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				d, err := env.svc.Show(cmd.Context(), id)
				if err != nil {
					return err
				}
				return o.printDetail(d, showJSON)
			})
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var setKey string
	setToss := &cobra.Command{
		Use:   "set-toss-key ID --toss-secret-key KEY|-",
		Short: "Set a merchant's Toss secret key (stored sealed under SECRETS_KEY)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantArg(args)
			if err != nil {
				return err
			}
			key, err := o.tossKeyArg(setKey)
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), true, func(env opEnv) error {
				d, err := env.svc.SetTossKey(cmd.Context(), id, key, merchants.ActorOperator)
				if err != nil {
					return err
				}
				fmt.Fprintf(o.stdout, "Toss key of %s set: %s (%s)\n", d.MerchantID, d.TossKey, d.Mode)
				return nil
			})
		},
	}
	setToss.Flags().StringVar(&setKey, "toss-secret-key", "", "the Toss secret key; - reads it from stdin (required)")
	_ = setToss.MarkFlagRequired("toss-secret-key")

	var rate string
	setCommission := &cobra.Command{
		Use:   "set-commission ID --rate 0.1",
		Short: "Set a merchant's commission rate (a fraction: 0.1 = 10%); orders checked out from now on use it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantArg(args)
			if err != nil {
				return err
			}
			r, err := domain.ParseFraction(rate)
			if err != nil || domain.CheckCommissionRate(r) != nil {
				return fmt.Errorf("--rate %q must be a decimal fraction from 0 up to (not including) 1, e.g. 0.1 for 10%%", rate)
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				d, err := env.svc.SetCommission(cmd.Context(), id, r, merchants.ActorOperator)
				if err != nil {
					return err
				}
				fmt.Fprintf(o.stdout, "commission of %s set to %s (applies to orders checked out from now on)\n", d.MerchantID, d.CommissionRate)
				return nil
			})
		},
	}
	setCommission.Flags().StringVar(&rate, "rate", "", "commission as a fraction, e.g. 0.1 (required)")
	_ = setCommission.MarkFlagRequired("rate")

	var feeRate, feeFrom string
	setFeeRate := &cobra.Command{
		Use:   "set-fee-rate ID --rate 0.0341 [--from yyyy-MM-dd]",
		Short: "Set the fee rate of a merchant's contract with Toss (a fraction, VAT excluded: 0.0341 = 3.41%); reconcile checks settlement fees against it",
		Long: `Set the fee rate of a merchant's contract with Toss: a fraction of the amount, VAT excluded
(0.0341 = 3.41%). reconcile checks each settlement row's fee against the rate in force when its
transaction happened. The rate applies from now, or from the start of --from (a KST day): an
earlier day corrects a rate entered wrongly from that day on, a later one schedules a contract
change.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantArg(args)
			if err != nil {
				return err
			}
			r, err := domain.ParseFraction(feeRate)
			if err != nil || domain.CheckTossFeeRate(r) != nil {
				return fmt.Errorf("--rate %q must be a decimal fraction from 0 up to (not including) 1 with at most %d decimal places, e.g. 0.0341 for 3.41%%", feeRate, domain.MaxFeeRateScale)
			}
			var from time.Time
			if feeFrom != "" {
				if from, err = time.ParseInLocation(time.DateOnly, feeFrom, domain.KST); err != nil {
					return fmt.Errorf("--from %q must be a KST day, yyyy-MM-dd", feeFrom)
				}
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				if _, err := env.svc.SetTossFeeRate(cmd.Context(), id, r, from, merchants.ActorOperator); err != nil {
					return err
				}
				since := "now"
				if !from.IsZero() {
					since = "the start of " + feeFrom + " (KST)"
				}
				fmt.Fprintf(o.stdout, "Toss fee rate of %s set to %s from %s; settlement rows of transactions since then are checked against it\n", id, r, since)
				return nil
			})
		},
	}
	setFeeRate.Flags().StringVar(&feeRate, "rate", "", "Toss fee rate as a fraction of the amount, VAT excluded, e.g. 0.0341 (required)")
	setFeeRate.Flags().StringVar(&feeFrom, "from", "", "the KST day from whose start the rate applies, yyyy-MM-dd (default: now)")
	_ = setFeeRate.MarkFlagRequired("rate")

	c.AddCommand(create, list, show, setToss, setCommission, setFeeRate)
	c.AddCommand(o.notificationCommands()...)
	return c
}

// notificationCommands set, rotate and remove where a merchant's payment events are POSTed.
func (o *operator) notificationCommands() []*cobra.Command {
	var setJSON bool
	set := &cobra.Command{
		Use:   "set-notification-url ID URL [--json]",
		Short: "POST the merchant's payment events to URL (https; http only in test mode or to loopback); a new endpoint's signing secret is shown once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantArg(args)
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), true, func(env opEnv) error {
				n, err := env.svc.SetNotificationURL(cmd.Context(), id, args[1], merchants.ActorOperator)
				if err != nil {
					return err
				}
				return o.printNotification(n, setJSON)
			})
		},
	}
	set.Flags().BoolVar(&setJSON, "json", false, `print {"merchantId","url","secretHint","signingSecret"?} as JSON`)

	var grace time.Duration
	var rotateJSON bool
	rotate := &cobra.Command{
		Use:   "rotate-notification-secret ID [--grace 24h] [--json]",
		Short: "Make a new signing secret, shown once; deliveries carry a signature with the old one too for the grace period",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantArg(args)
			if err != nil {
				return err
			}
			if grace < 0 || grace > domain.MaxRotationGrace {
				return fmt.Errorf("--grace %s must be from 0s to %s", grace, domain.MaxRotationGrace)
			}
			return o.with(cmd.Context(), true, func(env opEnv) error {
				n, err := env.svc.RotateNotificationSecret(cmd.Context(), id, grace, merchants.ActorOperator)
				if err != nil {
					return err
				}
				return o.printNotification(n, rotateJSON)
			})
		},
	}
	rotate.Flags().DurationVar(&grace, "grace", merchants.DefaultNotificationGrace, "how long the old secret keeps signing")
	rotate.Flags().BoolVar(&rotateJSON, "json", false, "print JSON")

	var removeJSON bool
	remove := &cobra.Command{
		Use:   "remove-notification-url ID [--json]",
		Short: "Stop POSTing the merchant's payment events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantArg(args)
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				n, err := env.svc.RemoveNotificationURL(cmd.Context(), id, merchants.ActorOperator)
				if err != nil {
					return err
				}
				if removeJSON {
					return o.printJSON(n)
				}
				fmt.Fprintf(o.stdout, "notifications of %s removed\n", id)
				return nil
			})
		},
	}
	remove.Flags().BoolVar(&removeJSON, "json", false, "print JSON")
	return []*cobra.Command{set, rotate, remove}
}

func (o *operator) printNotification(n merchants.NotificationSetting, asJSON bool) error {
	if asJSON {
		return o.printJSON(n)
	}
	fmt.Fprintf(o.stdout, "merchant %s: payment events are POSTed to %s (signing secret %s)\n", n.MerchantID, n.URL, n.SecretHint)
	if n.PreviousSecretValidUntil != nil {
		fmt.Fprintf(o.stdout, "the previous secret also signs until %s\n", n.PreviousSecretValidUntil.Format(time.RFC3339))
	}
	if n.SigningSecret != "" {
		fmt.Fprintf(o.stdout, "\n  %s\n\nshown once: store it now (verify each delivery's Ledger-Signature with it)\n", n.SigningSecret)
	}
	return nil
}

func (o *operator) keysCommand() *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "A merchant's API keys: issue, list, revoke, rotate"}
	var merchant string
	merchantFlag := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&merchant, "merchant", "", "merchant id (required)")
		_ = cmd.MarkFlagRequired("merchant")
	}
	merchantID := func() (domain.MerchantID, error) {
		id, err := domain.ParseMerchantID(merchant)
		if err != nil {
			return "", fmt.Errorf("--merchant: %w", err)
		}
		return id, nil
	}

	var scopes []string
	var issueJSON bool
	issue := &cobra.Command{
		Use:   "issue --merchant ID [--scope SCOPE]... [--json]",
		Short: "Issue an API key, shown once (scopes: payments:write, payments:read, refunds:write, ledger:read; default all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := merchantID()
			if err != nil {
				return err
			}
			var ss []domain.Scope
			if len(scopes) > 0 {
				if ss, err = domain.ParseScopes(scopes); err != nil {
					return err
				}
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				k, err := env.svc.IssueKey(cmd.Context(), id, ss, merchants.ActorOperator)
				if err != nil {
					return err
				}
				return o.printIssued(k, issueJSON)
			})
		},
	}
	merchantFlag(issue)
	issue.Flags().StringSliceVar(&scopes, "scope", nil, "a scope the key carries (repeat or comma-separate); default every scope")
	issue.Flags().BoolVar(&issueJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list --merchant ID [--json]",
		Short: "List a merchant's API keys (never a secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := merchantID()
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				d, err := env.svc.Show(cmd.Context(), id)
				if err != nil {
					return err
				}
				if listJSON {
					return o.printJSON(map[string]any{"merchantId": d.MerchantID, "keys": d.Keys})
				}
				return o.printKeys(d.Keys)
			})
		},
	}
	merchantFlag(list)
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke --merchant ID KEY_ID",
		Short: "Revoke an API key now (every paymentd refuses it within AUTH_CACHE_TTL)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantID()
			if err != nil {
				return err
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				k, err := env.svc.RevokeKey(cmd.Context(), id, domain.APIKeyID(args[0]), merchants.ActorOperator)
				if err != nil {
					return err
				}
				fmt.Fprintf(o.stdout, "API key %s of %s revoked at %s\n", k.KeyID, id, k.RevokedAt.Format(time.RFC3339))
				return nil
			})
		},
	}
	merchantFlag(revoke)

	var grace time.Duration
	var rotateJSON bool
	rotate := &cobra.Command{
		Use:   "rotate --merchant ID KEY_ID [--grace 24h] [--json]",
		Short: "Issue a new key with the same scopes; the old one keeps working for the grace period",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchantID()
			if err != nil {
				return err
			}
			if grace < 0 || grace > domain.MaxRotationGrace {
				return fmt.Errorf("--grace %s must be from 0s to %s", grace, domain.MaxRotationGrace)
			}
			return o.with(cmd.Context(), false, func(env opEnv) error {
				k, err := env.svc.RotateKey(cmd.Context(), id, domain.APIKeyID(args[0]), grace, merchants.ActorOperator)
				if err != nil {
					return err
				}
				return o.printIssued(k, rotateJSON)
			})
		},
	}
	merchantFlag(rotate)
	rotate.Flags().DurationVar(&grace, "grace", 24*time.Hour, "how long the old key keeps working")
	rotate.Flags().BoolVar(&rotateJSON, "json", false, "print JSON")

	c.AddCommand(issue, list, revoke, rotate)
	return c
}

func (o *operator) secretsCommand() *cobra.Command {
	c := &cobra.Command{Use: "secrets", Short: "The sealed Toss secret keys"}
	c.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every stored Toss key under SECRETS_KEY (after moving the old key to SECRETS_KEY_PREVIOUS)",
		Long: `Re-seal every merchant's stored Toss secret key under the current key-encryption key.

To rotate SECRETS_KEY: set the new key as SECRETS_KEY and the old one in SECRETS_KEY_PREVIOUS
on every paymentd (they then read keys sealed under either), run this command, and once it
reports every key under the new one, drop the old key from SECRETS_KEY_PREVIOUS. It is safe to
run while paymentd serves, and to run again after an interruption.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.with(cmd.Context(), true, func(env opEnv) error {
				res, err := env.svc.ResealSecrets(cmd.Context(), func(done, total int) {
					if done == total || done%100 == 0 {
						fmt.Fprintf(o.stderr, "re-sealed %d/%d\n", done, total)
					}
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(o.stdout, "secrets (Toss keys, notification signing secrets) under key %s: %d re-sealed, %d already under it\n", res.KeyID, res.Resealed, res.Current)
				return nil
			})
		},
	})
	return c
}
