package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/psp/toss"
)

// config is every setting of paymentd. Each has a flag, an environment variable and a default.
type config struct {
	DatabaseURL     string
	HTTPAddr        string
	TossBaseURL     string
	TossSecretKey   string
	DataDir         string
	MerchantID      domain.MerchantID
	CheckoutTTL     time.Duration
	DatabaseWait    time.Duration
	ShutdownTimeout time.Duration
	LogLevel        slog.Level

	PSPTimeout       time.Duration // one Toss call
	PSPRetryBudget   time.Duration // all in-request retries of one confirm
	PSPRetryAttempts int

	RecoveryEnabled     bool
	RecoveryInterval    time.Duration
	RecoveryStaleAfter  time.Duration
	RecoveryMaxAttempts int
	RecoveryWorkers     int
	RecoveryBaseDelay   time.Duration
	RecoveryMaxDelay    time.Duration
	RecoveryLease       time.Duration

	WebhookWorkerEnabled bool

	SettlementImportEnabled bool
	SettlementImportAt      string // HH:MM, KST
	SettlementImportDays    int    // catch-up days at start
}

// DefaultDatabaseURL is the local database the README's start command prepares.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/paymentledger?sslmode=disable"

func parseConfig(args []string, getenv func(string) string) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	var merchant, level string
	fs := flag.NewFlagSet("paymentd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", DefaultDatabaseURL), "PostgreSQL URL (env DATABASE_URL)")
	fs.StringVar(&c.HTTPAddr, "http-addr", env("HTTP_ADDR", ":8080"), "listen address (env HTTP_ADDR)")
	fs.StringVar(&c.TossBaseURL, "toss-base-url", env("TOSS_BASE_URL", toss.DefaultBaseURL), "Toss API base URL (env TOSS_BASE_URL)")
	fs.StringVar(&c.TossSecretKey, "toss-secret-key", env("TOSS_SECRET_KEY", ""), "Toss secret key; empty serves the simulator in-process (env TOSS_SECRET_KEY)")
	fs.StringVar(&c.DataDir, "data-dir", env("DATA_DIR", "./data"), "directory for local state (env DATA_DIR)")
	fs.StringVar(&merchant, "merchant-id", env("MERCHANT_ID", "merchant-default"), "the merchant every payment belongs to until merchant API keys exist (env MERCHANT_ID)")
	fs.DurationVar(&c.CheckoutTTL, "checkout-ttl", envDuration(getenv, "CHECKOUT_TTL", domain.DefaultCheckoutTTL), "how long a checkout waits for its confirm (env CHECKOUT_TTL)")
	fs.DurationVar(&c.DatabaseWait, "database-wait", envDuration(getenv, "DATABASE_WAIT", 30*time.Second), "how long to wait for the database at start-up (env DATABASE_WAIT)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", envDuration(getenv, "SHUTDOWN_TIMEOUT", 30*time.Second), "graceful shutdown limit (env SHUTDOWN_TIMEOUT)")
	fs.StringVar(&level, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.DurationVar(&c.PSPTimeout, "psp-timeout", envDuration(getenv, "PSP_TIMEOUT", 8*time.Second), "deadline of one Toss call (env PSP_TIMEOUT)")
	fs.DurationVar(&c.PSPRetryBudget, "psp-retry-budget", envDuration(getenv, "PSP_RETRY_BUDGET", 20*time.Second), "total time for the retries of one confirm request (env PSP_RETRY_BUDGET)")
	fs.IntVar(&c.PSPRetryAttempts, "psp-retry-attempts", envInt(getenv, "PSP_RETRY_ATTEMPTS", 4), "Toss calls per confirm attempt at most (env PSP_RETRY_ATTEMPTS)")
	fs.BoolVar(&c.RecoveryEnabled, "recovery", envBool(getenv, "RECOVERY_ENABLED", true), "run the recovery sweeper (env RECOVERY_ENABLED)")
	fs.DurationVar(&c.RecoveryInterval, "recovery-interval", envDuration(getenv, "RECOVERY_INTERVAL", 30*time.Second), "how often the sweeper scans (env RECOVERY_INTERVAL)")
	fs.DurationVar(&c.RecoveryStaleAfter, "recovery-stale-after", envDuration(getenv, "RECOVERY_STALE_AFTER", time.Minute), "age at which EXECUTING counts as stuck (env RECOVERY_STALE_AFTER)")
	fs.IntVar(&c.RecoveryMaxAttempts, "recovery-max-attempts", envInt(getenv, "RECOVERY_MAX_ATTEMPTS", 10), "recovery attempts before RecoveryExhausted (env RECOVERY_MAX_ATTEMPTS)")
	fs.IntVar(&c.RecoveryWorkers, "recovery-workers", envInt(getenv, "RECOVERY_WORKERS", 4), "concurrent recoveries (env RECOVERY_WORKERS)")
	fs.DurationVar(&c.RecoveryBaseDelay, "recovery-base-delay", envDuration(getenv, "RECOVERY_BASE_DELAY", time.Minute), "delay after a payment's first unsettled recovery; doubles per attempt (env RECOVERY_BASE_DELAY)")
	fs.DurationVar(&c.RecoveryMaxDelay, "recovery-max-delay", envDuration(getenv, "RECOVERY_MAX_DELAY", 6*time.Hour), "longest delay between a payment's recoveries (env RECOVERY_MAX_DELAY)")
	fs.DurationVar(&c.RecoveryLease, "recovery-lease", envDuration(getenv, "RECOVERY_LEASE", 2*time.Minute), "how long a sweeper owns a payment it works on; must exceed one recovery (read-back + PSP_RETRY_BUDGET); after a crash the payment waits this long (env RECOVERY_LEASE)")
	fs.BoolVar(&c.SettlementImportEnabled, "settlement-import", envBool(getenv, "SETTLEMENT_IMPORT_ENABLED", true), "import Toss settlements daily (env SETTLEMENT_IMPORT_ENABLED)")
	fs.StringVar(&c.SettlementImportAt, "settlement-import-at", env("SETTLEMENT_IMPORT_AT", "06:00"), "daily settlement import time, HH:MM in KST (env SETTLEMENT_IMPORT_AT)")
	fs.IntVar(&c.SettlementImportDays, "settlement-import-days", envInt(getenv, "SETTLEMENT_IMPORT_DAYS", 3), "days every settlement import covers, up to yesterday (env SETTLEMENT_IMPORT_DAYS)")
	fs.BoolVar(&c.WebhookWorkerEnabled, "webhook-worker", envBool(getenv, "WEBHOOK_WORKER_ENABLED", true), "process the webhook inbox (env WEBHOOK_WORKER_ENABLED)")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("%w\nflags:\n%s", err, flagUsage(fs))
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.MerchantID = domain.MerchantID(merchant)
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return config{}, fmt.Errorf("log level %q: %w", level, err)
	}
	return c, c.Validate()
}

// Validate reports every invalid setting at once.
func (c config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, errors.New("DATABASE_URL must be a postgres:// URL"))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("HTTP_ADDR is empty"))
	}
	if u, err := url.Parse(c.TossBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("TOSS_BASE_URL %q must be an absolute http(s) URL", c.TossBaseURL))
	}
	if c.MerchantID == "" {
		errs = append(errs, errors.New("MERCHANT_ID is empty"))
	}
	for name, d := range map[string]time.Duration{
		"CHECKOUT_TTL": c.CheckoutTTL, "SHUTDOWN_TIMEOUT": c.ShutdownTimeout, "PSP_TIMEOUT": c.PSPTimeout,
		"PSP_RETRY_BUDGET": c.PSPRetryBudget, "RECOVERY_INTERVAL": c.RecoveryInterval, "RECOVERY_STALE_AFTER": c.RecoveryStaleAfter,
		"RECOVERY_BASE_DELAY": c.RecoveryBaseDelay, "RECOVERY_MAX_DELAY": c.RecoveryMaxDelay, "RECOVERY_LEASE": c.RecoveryLease,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 30s", name))
		}
	}
	if _, err := time.Parse("15:04", c.SettlementImportAt); err != nil {
		errs = append(errs, fmt.Errorf("SETTLEMENT_IMPORT_AT %q must be HH:MM (KST)", c.SettlementImportAt))
	}
	if c.DatabaseWait < 0 {
		errs = append(errs, errors.New("DATABASE_WAIT must not be negative"))
	}
	for name, n := range map[string]int{"PSP_RETRY_ATTEMPTS": c.PSPRetryAttempts, "RECOVERY_MAX_ATTEMPTS": c.RecoveryMaxAttempts, "RECOVERY_WORKERS": c.RecoveryWorkers} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1", name))
		}
	}
	return errors.Join(errs...)
}

// Redacted is the configuration as logged at start-up: secrets masked.
func (c config) Redacted() map[string]any {
	dbURL := "(unparseable)"
	if u, err := url.Parse(c.DatabaseURL); err == nil {
		dbURL = u.Redacted()
	}
	key := "(empty: in-process simulator)"
	if c.TossSecretKey != "" {
		key = mask(c.TossSecretKey)
	}
	return map[string]any{
		"databaseURL": dbURL, "httpAddr": c.HTTPAddr, "tossBaseURL": c.TossBaseURL, "tossSecretKey": key,
		"dataDir": c.DataDir, "merchantId": c.MerchantID, "checkoutTTL": c.CheckoutTTL.String(),
		"pspTimeout": c.PSPTimeout.String(), "pspRetryBudget": c.PSPRetryBudget.String(), "pspRetryAttempts": c.PSPRetryAttempts,
		"recovery": c.RecoveryEnabled, "recoveryInterval": c.RecoveryInterval.String(), "recoveryStaleAfter": c.RecoveryStaleAfter.String(),
		"recoveryMaxAttempts": c.RecoveryMaxAttempts, "recoveryWorkers": c.RecoveryWorkers,
		"recoveryBaseDelay": c.RecoveryBaseDelay.String(), "recoveryMaxDelay": c.RecoveryMaxDelay.String(), "recoveryLease": c.RecoveryLease.String(),
		"webhookWorker": c.WebhookWorkerEnabled, "settlementImport": c.SettlementImportEnabled,
		"settlementImportAt": c.SettlementImportAt, "settlementImportDays": c.SettlementImportDays,
	}
}

// mask keeps a key's prefix (test_sk_ / live_sk_) and hides the rest.
func mask(s string) string {
	if len(s) <= 8 {
		return "****"
	}
	return s[:8] + "****"
}

func envDuration(getenv func(string) string, name string, def time.Duration) time.Duration {
	if v := getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		return -1 // Validate reports it
	}
	return def
}

func envInt(getenv func(string) string, name string, def int) int {
	if v := getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return -1 // Validate reports it
		}
		return n
	}
	return def
}

func envBool(getenv func(string) string, name string, def bool) bool {
	if v := getenv(name); v != "" {
		b, err := strconv.ParseBool(v)
		if err == nil {
			return b
		}
	}
	return def
}

func flagUsage(fs *flag.FlagSet) string {
	var out string
	fs.VisitAll(func(f *flag.Flag) { out += fmt.Sprintf("  -%s  %s (default %q)\n", f.Name, f.Usage, f.DefValue) })
	return out
}
