package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
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
	if c.CheckoutTTL <= 0 || c.DatabaseWait < 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
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

func flagUsage(fs *flag.FlagSet) string {
	var out string
	fs.VisitAll(func(f *flag.Flag) { out += fmt.Sprintf("  -%s  %s (default %q)\n", f.Name, f.Usage, f.DefValue) })
	return out
}
