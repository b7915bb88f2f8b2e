package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/internal/config"
	"github.com/paymentledger/ledger/reconcile"
)

// Config is every setting of paymentd, each an environment variable with a default that works
// on a laptop; internal/config parses it strictly and renders `paymentd -h` from the tags.
type Config struct {
	config.Shared
	config.Audit

	HTTPAddr        string        `env:"HTTP_ADDR,default=:8080" desc:"listen address of the API"`
	CheckoutTTL     time.Duration `env:"CHECKOUT_TTL,default=40m" desc:"how long a checkout waits for its confirm (Toss: 30 min payment window + 10 min to confirm)"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT,default=30s" desc:"graceful shutdown limit after SIGTERM or SIGINT"`

	// Settings that are no longer read: setting one stops start-up with a pointer to what
	// replaced it, rather than being silently ignored.
	RemovedTossSecretKey string `env:"TOSS_SECRET_KEY" secret:"true" desc:"removed: each merchant has its own Toss secret key (paymentctl merchants set-toss-key); setting it is an error"`
	RemovedMerchantID    string `env:"MERCHANT_ID" desc:"removed: each API key belongs to a merchant (paymentctl merchants create); setting it is an error"`

	PSPTimeout       time.Duration `env:"PSP_TIMEOUT,default=8s" desc:"deadline of one Toss call"`
	PSPRetryBudget   time.Duration `env:"PSP_RETRY_BUDGET,default=20s" desc:"total time for the in-request retries of one confirm"`
	PSPRetryAttempts int           `env:"PSP_RETRY_ATTEMPTS,default=4" desc:"Toss calls per confirm attempt at most"`

	RecoveryEnabled     bool          `env:"RECOVERY_ENABLED,default=true" desc:"run the recovery sweeper"`
	RecoveryInterval    time.Duration `env:"RECOVERY_INTERVAL,default=30s" desc:"how often the sweeper scans"`
	RecoveryStaleAfter  time.Duration `env:"RECOVERY_STALE_AFTER,default=1m" desc:"age at which EXECUTING counts as stuck"`
	RecoveryMaxAttempts int           `env:"RECOVERY_MAX_ATTEMPTS,default=10" desc:"recovery attempts before RecoveryExhausted (needs review)"`
	RecoveryWorkers     int           `env:"RECOVERY_WORKERS,default=4" desc:"concurrent recoveries"`
	RecoveryBaseDelay   time.Duration `env:"RECOVERY_BASE_DELAY,default=1m" desc:"delay after a payment's first unsettled recovery; doubles per attempt"`
	RecoveryMaxDelay    time.Duration `env:"RECOVERY_MAX_DELAY,default=6h" desc:"longest delay between a payment's recoveries"`
	RecoveryLease       time.Duration `env:"RECOVERY_LEASE,default=10s" desc:"how long a sweeper owns a payment without renewing it (it renews every third of it while a recovery runs, so one may take longer); after a crash the payment waits at most this long; at least 1s"`

	WebhookWorkerEnabled bool `env:"WEBHOOK_WORKER_ENABLED,default=true" desc:"process the webhook inbox (the endpoint is always mounted)"`

	SettlementImportEnabled bool   `env:"SETTLEMENT_IMPORT_ENABLED,default=true" desc:"import Toss's settlement report daily (one instance at a time, by advisory lock)"`
	SettlementImportAt      string `env:"SETTLEMENT_IMPORT_AT,default=06:00" desc:"when the daily settlement import runs, HH:MM in KST"`
	SettlementImportDays    int    `env:"SETTLEMENT_IMPORT_DAYS,default=3" desc:"every import (at start-up and daily) covers the last N days up to yesterday, so a failed day is retried; negative skips the import at start-up"`

	ReconcileEnabled bool   `env:"RECONCILE_ENABLED,default=true" desc:"reconcile every merchant's ledger with Toss daily and keep each run's summary (one instance at a time, by advisory lock)"`
	ReconcileAt      string `env:"RECONCILE_AT,default=07:00" desc:"when the daily reconciliation runs, HH:MM in KST (after the settlement import)"`
	ReconcileDays    int    `env:"RECONCILE_DAYS,default=3" desc:"each daily reconciliation compares the last N days up to yesterday, so a day whose run failed is compared again"`
	ReconcileApply   bool   `env:"RECONCILE_APPLY,default=true" desc:"the daily reconciliation books what Toss's truth settles (approvals Toss holds, console cancels, missing settlement rows), as paymentctl reconcile --apply"`

	AdminToken          string `env:"ADMIN_TOKEN" secret:"true" desc:"bearer token of the admin API /admin/v1, at least 32 characters; empty turns the admin API off"`
	DemoMerchant        bool   `env:"DEMO_MERCHANT,default=false" desc:"seed a merchant demo and print its API key at start-up; TOSS_SIMULATOR implies it"`
	DemoTossSecretKey   string `env:"DEMO_TOSS_SECRET_KEY,default=test_sk_tosssim_demo" secret:"true" desc:"the demo merchant's Toss secret key, for a simulator run outside paymentd (e.g. docker compose)"`
	TrustForwardedProto bool   `env:"TRUST_FORWARDED_PROTO,default=false" desc:"take X-Forwarded-Proto: https as TLS (back-office cookies get Secure); set it only behind a proxy that sets the header itself"`
	DebugAddr           string `env:"DEBUG_ADDR" desc:"listen address of pprof and /metrics, separate from the API; empty turns it off"`

	APIKeyRate            float64       `env:"API_KEY_RATE,default=50" desc:"requests per second allowed per API key (token bucket rate)"`
	APIKeyBurst           int           `env:"API_KEY_BURST,default=100" desc:"requests per API key allowed in a burst"`
	AuthFailuresPerMinute int           `env:"AUTH_FAILURES_PER_MINUTE,default=10" desc:"failed authentications allowed per client address per minute before 429"`
	APIKeyRotationGrace   time.Duration `env:"API_KEY_ROTATION_GRACE,default=24h" desc:"how long a rotated API key keeps working, at most 720h; 0 revokes it at once"`
	AuthCacheTTL          time.Duration `env:"AUTH_CACHE_TTL,default=500ms" desc:"how long an instance caches an API key lookup, at most 1s: revocations take effect on every instance within this"`

	TossWebhookAllowedIPs config.Prefixes `env:"TOSS_WEBHOOK_ALLOWED_IPS" desc:"comma-separated IP addresses and CIDR blocks Toss webhooks may come from; empty accepts any address"`
	WebhookRate           float64         `env:"WEBHOOK_RATE,default=20" desc:"webhook deliveries per second allowed per client address"`
	WebhookBurst          int             `env:"WEBHOOK_BURST,default=100" desc:"webhook deliveries per client address allowed in a burst"`
	WebhookRetention      time.Duration   `env:"WEBHOOK_RETENTION,default=720h" desc:"processed and rejected webhook inbox rows older than this are deleted"`
	WebhookSyncInterval   time.Duration   `env:"WEBHOOK_SYNC_INTERVAL,default=5s" desc:"an order is read back from Toss at most once per this interval, however many webhooks name it"`

	RelayEnabled        bool          `env:"RELAY_ENABLED,default=true" desc:"publish the event store to NATS JetStream's PAYMENTS stream (one instance at a time, by advisory lock)"`
	RelayMaxInFlight    int           `env:"RELAY_MAX_IN_FLIGHT,default=256" desc:"messages the relay publishes before it waits for their acknowledgements and moves its checkpoint"`
	NATSReplicas        int           `env:"NATS_REPLICAS,default=1" desc:"replicas of each JetStream stream (3 on a NATS cluster)"`
	NATSMaxAge          time.Duration `env:"NATS_MAX_AGE,default=720h" desc:"how long the PAYMENTS stream keeps a message; 0 keeps them forever (the event store is the record either way)"`
	NATSDuplicateWindow time.Duration `env:"NATS_DUPLICATE_WINDOW,default=10m" desc:"how long JetStream drops a re-published event by its id: a relay restarted within it never stores an event twice"`

	NotifyEnabled     bool            `env:"NOTIFY_ENABLED,default=true" desc:"POST each merchant's payment events to its notification URL (every instance shares the work through JetStream consumers)"`
	NotifyMaxDeliver  int             `env:"NOTIFY_MAX_DELIVER,default=10" desc:"POSTs of one event before it becomes a dead letter (paymentctl dlq --kind notify)"`
	NotifyBackOff     []time.Duration `env:"NOTIFY_BACKOFF,default=10s,30s,1m,5m,10m,30m,1h,2h,4h" desc:"comma-separated waits after each failed POST; the last repeats"`
	NotifyHTTPTimeout time.Duration   `env:"NOTIFY_HTTP_TIMEOUT,default=10s" desc:"deadline of one notification POST, answer included"`

	SSEHeartbeat time.Duration `env:"SSE_HEARTBEAT,default=15s" desc:"how often an idle live status stream (GET /api/v1/payments/{orderId}/events) sends a comment, so that proxies keep the connection"`

	AuditSealInterval time.Duration `env:"AUDIT_SEAL_INTERVAL,default=1h" desc:"how often the history is sealed when AUDIT_SIGNING_KEY is set (one instance at a time, by advisory lock)"`
}

// adminTokenMinLen keeps the admin token out of reach of guessing: 32 characters of a random
// token are well over 128 bits.
const adminTokenMinLen = 32

// authCacheTTLMax bounds how long a revoked API key can keep working on some instance.
const authCacheTTLMax = time.Second

// Validate reports every broken rule at once, each naming its variable.
func (c Config) Validate() error {
	errs := []error{c.Shared.Validate(), c.Audit.Validate()}
	// SECRETS_KEY encrypts merchants' Toss keys at rest, so outside the simulator (which keeps
	// a generated key under DATA_DIR) paymentd does not start without one.
	if !c.TossSimulator && len(c.SecretsKey) == 0 {
		errs = append(errs, config.Invalid("SECRETS_KEY",
			"is empty: set it to base64 of 32 random bytes (openssl rand -base64 32), or set TOSS_SIMULATOR=true to use the in-process Toss simulator"))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, config.Invalid("HTTP_ADDR", "%q must be host:port or :port", c.HTTPAddr))
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			errs = append(errs, config.Invalid("DEBUG_ADDR", "%q must be host:port or :port (or empty for off)", c.DebugAddr))
		}
	}
	if c.RemovedTossSecretKey != "" {
		errs = append(errs, config.Invalid("TOSS_SECRET_KEY", "is no longer read: each merchant has its own Toss secret key (paymentctl merchants set-toss-key, or PUT /admin/v1/merchants/{id}/toss-key); unset it"))
	}
	if c.RemovedMerchantID != "" {
		errs = append(errs, config.Invalid("MERCHANT_ID", "is no longer read: each API key belongs to its merchant (paymentctl merchants create --id %s adopts the payments of that id); unset it", c.RemovedMerchantID))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"CHECKOUT_TTL", c.CheckoutTTL}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout}, {"PSP_TIMEOUT", c.PSPTimeout},
		{"PSP_RETRY_BUDGET", c.PSPRetryBudget}, {"RECOVERY_INTERVAL", c.RecoveryInterval},
		{"RECOVERY_STALE_AFTER", c.RecoveryStaleAfter}, {"RECOVERY_BASE_DELAY", c.RecoveryBaseDelay},
		{"RECOVERY_MAX_DELAY", c.RecoveryMaxDelay}, {"RECOVERY_LEASE", c.RecoveryLease},
		{"AUTH_CACHE_TTL", c.AuthCacheTTL}, {"WEBHOOK_RETENTION", c.WebhookRetention},
		{"WEBHOOK_SYNC_INTERVAL", c.WebhookSyncInterval}, {"AUDIT_SEAL_INTERVAL", c.AuditSealInterval},
		{"NATS_DUPLICATE_WINDOW", c.NATSDuplicateWindow}, {"NOTIFY_HTTP_TIMEOUT", c.NotifyHTTPTimeout},
		{"SSE_HEARTBEAT", c.SSEHeartbeat},
	} {
		errs = append(errs, config.Positive(d.name, d.d))
	}
	if c.RecoveryLease > 0 && c.RecoveryLease < time.Second {
		errs = append(errs, config.Invalid("RECOVERY_LEASE", "must be at least 1s, not %s: it is renewed every third of it", c.RecoveryLease))
	}
	if c.AuthCacheTTL > authCacheTTLMax {
		errs = append(errs, config.Invalid("AUTH_CACHE_TTL", "must be at most %s, not %s: a revoked key keeps working this long", authCacheTTLMax, c.AuthCacheTTL))
	}
	if c.APIKeyRotationGrace < 0 || c.APIKeyRotationGrace > domain.MaxRotationGrace {
		errs = append(errs, config.Invalid("API_KEY_ROTATION_GRACE", "must be from 0s to %s, not %s", domain.MaxRotationGrace, c.APIKeyRotationGrace))
	}
	if _, err := time.Parse("15:04", c.SettlementImportAt); err != nil {
		errs = append(errs, config.Invalid("SETTLEMENT_IMPORT_AT", "%q must be HH:MM (KST)", c.SettlementImportAt))
	}
	if _, err := time.Parse("15:04", c.ReconcileAt); err != nil {
		errs = append(errs, config.Invalid("RECONCILE_AT", "%q must be HH:MM (KST)", c.ReconcileAt))
	}
	if c.ReconcileDays < 1 || c.ReconcileDays > reconcile.MaxDays {
		errs = append(errs, config.Invalid("RECONCILE_DAYS", "must be from 1 to %d days, not %d", reconcile.MaxDays, c.ReconcileDays))
	}
	for _, n := range []struct {
		name string
		n    int
	}{
		{"PSP_RETRY_ATTEMPTS", c.PSPRetryAttempts}, {"RECOVERY_MAX_ATTEMPTS", c.RecoveryMaxAttempts},
		{"RECOVERY_WORKERS", c.RecoveryWorkers}, {"API_KEY_BURST", c.APIKeyBurst},
		{"AUTH_FAILURES_PER_MINUTE", c.AuthFailuresPerMinute}, {"WEBHOOK_BURST", c.WebhookBurst},
		{"RELAY_MAX_IN_FLIGHT", c.RelayMaxInFlight}, {"NATS_REPLICAS", c.NATSReplicas},
		{"NOTIFY_MAX_DELIVER", c.NotifyMaxDeliver},
	} {
		errs = append(errs, config.AtLeast(n.name, n.n, 1))
	}
	// NaN fails every comparison, so !(r > 0) refuses it too.
	for _, r := range []struct {
		name string
		r    float64
	}{{"API_KEY_RATE", c.APIKeyRate}, {"WEBHOOK_RATE", c.WebhookRate}} {
		if !(r.r > 0) || math.IsInf(r.r, 0) {
			errs = append(errs, config.Invalid(r.name, "must be a positive number of requests per second, not %v", r.r))
		}
	}
	for i, d := range c.NotifyBackOff {
		if d <= 0 {
			errs = append(errs, config.Invalid("NOTIFY_BACKOFF", "entry %d must be a positive duration, not %s", i+1, d))
		}
	}
	if c.NATSMaxAge < 0 {
		errs = append(errs, config.Invalid("NATS_MAX_AGE", "must not be negative, not %s (0 keeps messages forever)", c.NATSMaxAge))
	}
	if c.AdminToken != "" && len(c.AdminToken) < adminTokenMinLen {
		errs = append(errs, config.Invalid("ADMIN_TOKEN", "must be at least %d characters (it has %d), or empty to turn the admin API off", adminTokenMinLen, len(c.AdminToken)))
	}
	return errors.Join(errs...)
}

// SeedDemoMerchant reports whether paymentd seeds the demo merchant: DEMO_MERCHANT, or
// TOSS_SIMULATOR, which implies it so that a simulator run can take a payment at once.
func (c Config) SeedDemoMerchant() bool { return c.DemoMerchant || c.TossSimulator }

// Redacted is the configuration as logged at start-up: secrets masked, URL passwords hidden.
func (c Config) Redacted() map[string]any { return config.Redact(c) }

// loadConfig reads paymentd's environment.
func loadConfig(ctx context.Context, getenv func(string) string) (Config, error) {
	var c Config
	err := config.Load(ctx, getenv, &c)
	return c, err
}

// parseArgs accepts only -h, -help and --help, which print the usage to stdout and return
// flag.ErrHelp (main exits 0); paymentd is configured by its environment alone.
func parseArgs(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("paymentd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		text, err := usage()
		if err != nil {
			return err
		}
		if _, err := io.WriteString(stdout, text); err != nil {
			return err
		}
		return flag.ErrHelp
	case err != nil:
		return fmt.Errorf("%w: paymentd takes no flags; it is configured by environment variables (paymentd -h lists them)", err)
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q: paymentd takes none; it is configured by environment variables (paymentd -h lists them)", fs.Arg(0))
	}
	return nil
}

func usage() (string, error) {
	env, err := config.Help(Config{})
	if err != nil {
		return "", err
	}
	return `Usage: paymentd [-h]

paymentd serves the payment API and runs the projections, the recovery sweeper, the webhook
worker, the daily settlement import, the daily reconciliation with Toss and, with AUDIT_SIGNING_KEY,
the periodic seal of the history. It takes no arguments: every setting is an environment
variable, and a malformed value stops start-up with an error naming the variable.

Environment:
` + env, nil
}
