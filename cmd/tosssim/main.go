// Command tosssim serves the Toss Payments simulator (package psp/toss/tosssim) on its own
// port, for local runs and out-of-process tests. Point a Toss client at http://<addr> as its
// base URL, open buyer sessions with POST /sim/v1/sessions and read the counters at
// GET /sim/v1/stats. Its truth is kept in memory, or, with -database-url, saved in the tosssim
// schema of that PostgreSQL database so a restart forgets nothing (tosssim.Open; one simulator
// per database).
//
// Flags (each with an environment variable; a flag wins over its variable):
//
//	-addr                    TOSSSIM_ADDR                    listen address; default 127.0.0.1:8090
//	-secret-key              TOSSSIM_SECRET_KEYS             comma-separated accepted secret keys;
//	                                                         default: any test_sk_/test_gsk_/test_ak_ key
//	-mid                     TOSSSIM_MID                     merchant id on payments; default tosssimmid01
//	-database-url            TOSSSIM_DATABASE_URL            PostgreSQL URL whose tosssim schema keeps
//	                                                         the simulator's state; default: memory only
//	-latency                 TOSSSIM_LATENCY                 delay per /v1 request: 20ms, or a uniform
//	                                                         range 5ms-200ms; default 0
//	-error-rate              TOSSSIM_ERROR_RATE              share (0..1) of /v1 requests answered,
//	                                                         unexecuted, with a retryable error; default 0
//	-lost-response-rate      TOSSSIM_LOST_RESPONSE_RATE      share (0..1) of executed confirms and cancels
//	                                                         whose answer is lost; default 0
//	-webhook-url             TOSSSIM_WEBHOOK_URL             http(s) receiver of PAYMENT_STATUS_CHANGED;
//	                                                         default: no webhooks
//	-webhook-duplicate-rate  TOSSSIM_WEBHOOK_DUPLICATE_RATE  share (0..1) of webhooks sent twice; default 0
//	-webhook-reorder         TOSSSIM_WEBHOOK_REORDER         hold webhooks a random 0-100ms; default false
//	-webhook-timeout         TOSSSIM_WEBHOOK_TIMEOUT         time a receiver has to answer 200; default 10s
//	-time-scale              TOSSSIM_TIME_SCALE              multiplier (> 0) of the webhook retry waits;
//	                                                         default 1 (real time)
//	-seed                    TOSSSIM_SEED                    seed of the fault decisions; default: from
//	                                                         the clock, logged at start
//	-settlement-fee-rate     TOSSSIM_SETTLEMENT_FEE_RATE     base fee rate (0 < rate < 1) of
//	                                                         GET /v1/settlements rows, VAT of 10%
//	                                                         added on top; default 0.03
//	-settlement-payout-days  TOSSSIM_SETTLEMENT_PAYOUT_DAYS  paidOutDate − soldDate in days (≥ 1);
//	                                                         default 2
//
// The fault and webhook semantics are those of tosssim.Faults. Tests can override latency,
// error rate and lost-response rate per request with the X-Sim-Latency, X-Sim-Error-Rate and
// X-Sim-Lost-Response-Rate headers. The duplicate rate and reorder need -webhook-url.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/psp/toss/tosssim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tosssim:", err)
		os.Exit(1)
	}
}

const shutdownTimeout = 10 * time.Second

// config is the whole configuration of the command.
type config struct {
	Addr        string
	SecretKeys  []string
	MID         string
	DatabaseURL string // empty: memory only

	Latency              tosssim.Latency
	ErrorRate            float64
	LostResponseRate     float64
	WebhookURL           string
	WebhookDuplicateRate float64
	WebhookReorder       bool
	WebhookTimeout       time.Duration
	TimeScale            float64
	Seed                 int64

	SettlementFeeRate    decimal.Decimal
	SettlementPayoutDays int
}

// faults is the simulator's view of the fault settings.
func (c config) faults() tosssim.Faults {
	return tosssim.Faults{
		Latency:              c.Latency,
		ErrorRate:            c.ErrorRate,
		LostResponseRate:     c.LostResponseRate,
		Seed:                 c.Seed,
		WebhookURL:           c.WebhookURL,
		WebhookDuplicateRate: c.WebhookDuplicateRate,
		WebhookReorder:       c.WebhookReorder,
		TimeScale:            c.TimeScale,
		WebhookTimeout:       c.WebhookTimeout,
	}
}

// Validate reports every problem at once.
func (c config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr is empty"))
	}
	for _, k := range c.SecretKeys {
		if strings.ContainsAny(k, ": \t") {
			errs = append(errs, fmt.Errorf("secret key %q contains ':' or whitespace", mask(k)))
		}
	}
	if len(c.MID) > 14 {
		errs = append(errs, fmt.Errorf("mid %q is longer than 14 characters", c.MID))
	}
	if c.DatabaseURL != "" {
		// pgx's parse errors show the URL with its password hidden.
		if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
			errs = append(errs, fmt.Errorf("database URL: %w", err))
		}
	}
	if err := c.faults().Validate(); err != nil {
		errs = append(errs, err)
	}
	if !(c.TimeScale > 0) {
		errs = append(errs, fmt.Errorf("time scale %v is not > 0", c.TimeScale))
	}
	if c.WebhookTimeout <= 0 {
		errs = append(errs, fmt.Errorf("webhook timeout %v is not > 0", c.WebhookTimeout))
	}
	if !c.SettlementFeeRate.IsPositive() || c.SettlementFeeRate.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		errs = append(errs, fmt.Errorf("settlement fee rate %s is not in (0, 1)", c.SettlementFeeRate))
	}
	if c.SettlementPayoutDays < 1 {
		errs = append(errs, fmt.Errorf("settlement payout days %d is not ≥ 1", c.SettlementPayoutDays))
	}
	if c.WebhookURL == "" && (c.WebhookDuplicateRate > 0 || c.WebhookReorder) {
		errs = append(errs, errors.New("webhook duplicate rate and reorder need a webhook URL"))
	}
	return errors.Join(errs...)
}

// LogValue implements slog.LogValuer: the configuration as it may appear in logs, with the
// secret keys masked.
func (c config) LogValue() slog.Value {
	masked := make([]string, len(c.SecretKeys))
	for i, k := range c.SecretKeys {
		masked[i] = mask(k)
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.Any("secretKeys", masked),
		slog.String("mid", c.MID),
		slog.String("databaseURL", redactURL(c.DatabaseURL)),
		slog.Group("faults",
			slog.String("latency", c.Latency.String()),
			slog.Float64("errorRate", c.ErrorRate),
			slog.Float64("lostResponseRate", c.LostResponseRate),
			slog.String("webhookURL", redactURL(c.WebhookURL)),
			slog.Float64("webhookDuplicateRate", c.WebhookDuplicateRate),
			slog.Bool("webhookReorder", c.WebhookReorder),
			slog.String("webhookTimeout", c.WebhookTimeout.String()),
			slog.Float64("timeScale", c.TimeScale),
			slog.Int64("seed", c.Seed),
		),
		slog.Group("settlement",
			slog.String("feeRate", c.SettlementFeeRate.String()),
			slog.Int("payoutDays", c.SettlementPayoutDays),
		),
	)
}

// redactURL hides a password and the query, either of which may carry a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "****"
	}
	if u.RawQuery != "" {
		u.RawQuery = "****"
	}
	return u.Redacted()
}

// mask keeps a key's kind prefix ("test_sk_", "live_gsk_") and hides the rest.
func mask(key string) string {
	if parts := strings.SplitN(key, "_", 3); len(parts) == 3 {
		return parts[0] + "_" + parts[1] + "_****"
	}
	return "****"
}

func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	fs := flag.NewFlagSet("tosssim", flag.ContinueOnError)
	fs.SetOutput(output)
	addr := fs.String("addr", envOr(getenv, "TOSSSIM_ADDR", "127.0.0.1:8090"), "listen address (env TOSSSIM_ADDR)")
	keys := fs.String("secret-key", getenv("TOSSSIM_SECRET_KEYS"), "comma-separated accepted secret keys; empty accepts any test_sk_/test_gsk_/test_ak_ key (env TOSSSIM_SECRET_KEYS)")
	mid := fs.String("mid", envOr(getenv, "TOSSSIM_MID", "tosssimmid01"), "merchant id (env TOSSSIM_MID)")
	databaseURL := fs.String("database-url", getenv("TOSSSIM_DATABASE_URL"), "PostgreSQL URL whose tosssim schema keeps the simulator's state across restarts; empty keeps it in memory only (env TOSSSIM_DATABASE_URL)")
	// The fault settings are read as text so a flag and its variable share one parser and
	// one error message.
	latency := fs.String("latency", envOr(getenv, "TOSSSIM_LATENCY", "0"), "delay before each /v1 request: a duration (20ms) or a uniform range (5ms-200ms) (env TOSSSIM_LATENCY)")
	errorRate := fs.String("error-rate", envOr(getenv, "TOSSSIM_ERROR_RATE", "0"), "share (0..1) of /v1 requests answered, unexecuted, with 500 FAILED_INTERNAL_SYSTEM_PROCESSING, 400 PROVIDER_ERROR or 429 TOO_MANY_REQUESTS (env TOSSSIM_ERROR_RATE)")
	lostRate := fs.String("lost-response-rate", envOr(getenv, "TOSSSIM_LOST_RESPONSE_RATE", "0"), "share (0..1) of executed confirms and cancels whose connection breaks before the answer (env TOSSSIM_LOST_RESPONSE_RATE)")
	webhookURL := fs.String("webhook-url", getenv("TOSSSIM_WEBHOOK_URL"), "http(s) URL that receives PAYMENT_STATUS_CHANGED webhooks; empty sends none (env TOSSSIM_WEBHOOK_URL)")
	dupRate := fs.String("webhook-duplicate-rate", envOr(getenv, "TOSSSIM_WEBHOOK_DUPLICATE_RATE", "0"), "share (0..1) of webhooks also sent as a second copy with the same transmission id (env TOSSSIM_WEBHOOK_DUPLICATE_RATE)")
	var errs []error
	reorderEnv, err := parseBoolEnv(getenv("TOSSSIM_WEBHOOK_REORDER"))
	if err != nil {
		errs = append(errs, fmt.Errorf("webhook-reorder: TOSSSIM_WEBHOOK_REORDER: %w", err))
	}
	reorder := fs.Bool("webhook-reorder", reorderEnv, "hold each webhook a random 0-100ms so a payment's webhooks may arrive out of order (env TOSSSIM_WEBHOOK_REORDER)")
	webhookTimeout := fs.String("webhook-timeout", envOr(getenv, "TOSSSIM_WEBHOOK_TIMEOUT", "10s"), "how long a webhook receiver has to answer 200 (env TOSSSIM_WEBHOOK_TIMEOUT)")
	timeScale := fs.String("time-scale", envOr(getenv, "TOSSSIM_TIME_SCALE", "1"), "multiplier of the webhook retry waits of 1, 4, 16, 64, 256, 1024 and 4096 minutes; 0.001 retries first after 60ms (env TOSSSIM_TIME_SCALE)")
	feeRate := fs.String("settlement-fee-rate", envOr(getenv, "TOSSSIM_SETTLEMENT_FEE_RATE", "0.03"), "base fee rate (0 < rate < 1) of GET /v1/settlements rows; 10% VAT is added on top (env TOSSSIM_SETTLEMENT_FEE_RATE)")
	payoutDays := fs.String("settlement-payout-days", envOr(getenv, "TOSSSIM_SETTLEMENT_PAYOUT_DAYS", "2"), "days from a settlement row's soldDate to its paidOutDate, at least 1 (env TOSSSIM_SETTLEMENT_PAYOUT_DAYS)")
	seed := fs.String("seed", getenv("TOSSSIM_SEED"), "seed of the fault decisions; empty chooses one from the clock, logged at start (env TOSSSIM_SEED)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg := config{Addr: *addr, MID: *mid, DatabaseURL: strings.TrimSpace(*databaseURL), WebhookURL: strings.TrimSpace(*webhookURL), WebhookReorder: *reorder}
	for k := range strings.SplitSeq(*keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.SecretKeys = append(cfg.SecretKeys, k)
		}
	}

	parse := func(name string, f func() error) {
		if err := f(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	parse("latency", func() (err error) { cfg.Latency, err = tosssim.ParseLatency(*latency); return err })
	parse("error-rate", func() (err error) { cfg.ErrorRate, err = tosssim.ParseRate(*errorRate); return err })
	parse("lost-response-rate", func() (err error) { cfg.LostResponseRate, err = tosssim.ParseRate(*lostRate); return err })
	parse("webhook-duplicate-rate", func() (err error) { cfg.WebhookDuplicateRate, err = tosssim.ParseRate(*dupRate); return err })
	parse("webhook-timeout", func() (err error) {
		cfg.WebhookTimeout, err = time.ParseDuration(strings.TrimSpace(*webhookTimeout))
		return err
	})
	parse("time-scale", func() (err error) {
		cfg.TimeScale, err = strconv.ParseFloat(strings.TrimSpace(*timeScale), 64)
		return err
	})
	parse("settlement-fee-rate", func() (err error) {
		cfg.SettlementFeeRate, err = decimal.NewFromString(strings.TrimSpace(*feeRate))
		return err
	})
	parse("settlement-payout-days", func() (err error) {
		cfg.SettlementPayoutDays, err = strconv.Atoi(strings.TrimSpace(*payoutDays))
		return err
	})
	parse("seed", func() (err error) {
		if strings.TrimSpace(*seed) == "" {
			cfg.Seed = time.Now().UnixNano()
			return nil
		}
		cfg.Seed, err = strconv.ParseInt(strings.TrimSpace(*seed), 10, 64)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return config{}, err
	}
	return cfg, cfg.Validate()
}

// parseBoolEnv reads a boolean variable; empty is false.
func parseBoolEnv(v string) (bool, error) {
	if v = strings.TrimSpace(v); v == "" {
		return false, nil
	}
	return strconv.ParseBool(v)
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// run parses the configuration, listens and serves until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	logger.Info("starting tosssim", "config", cfg)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	return serve(ctx, ln, cfg, logger)
}

// newSimulator builds the simulator cfg asks for: in memory, or saved to cfg.DatabaseURL.
func newSimulator(ctx context.Context, cfg config, logger *slog.Logger) (*tosssim.Simulator, error) {
	simCfg := tosssim.Config{
		SecretKeys: cfg.SecretKeys, MID: cfg.MID, Faults: cfg.faults(),
		Settlement: tosssim.SettlementConfig{FeeRate: cfg.SettlementFeeRate, PayoutDays: cfg.SettlementPayoutDays},
		Logger:     logger,
	}
	if cfg.DatabaseURL == "" {
		return tosssim.New(simCfg), nil
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	// Open needs the pool only to migrate; the simulator keeps a connection of its own.
	defer pool.Close()
	sim, err := tosssim.Open(ctx, simCfg, pool)
	if err != nil {
		return nil, err
	}
	logger.Info("simulator state is saved in the database's tosssim schema")
	return sim, nil
}

// serve runs the simulator on ln until ctx is done, then shuts down gracefully. It closes ln.
func serve(ctx context.Context, ln net.Listener, cfg config, logger *slog.Logger) error {
	sim, err := newSimulator(ctx, cfg, logger)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer sim.Close() // after the server: the last changes' webhooks stop only once nothing can make more
	srv := &http.Server{
		Handler:           accessLog(logger, sim.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String())

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	sim.Close()
	logger.Info("stopped", "stats", sim.Stats())
	return nil
}

type statusRecorder struct {
	http.ResponseWriter
	status  int
	dropped bool // the handler took the connection over (a lost response)
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Hijack lets the simulator drop a connection through the recorder and lets the log say so.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.dropped = true
	}
	return conn, rw, err
}

// Unwrap gives http.ResponseController the underlying writer for its other methods.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog logs one line per request. It never logs headers: they carry the secret key.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		status := rec.status
		if rec.dropped {
			status = 0 // no answer reached the client
		}
		logger.Info("request",
			"method", r.Method,
			"path", r.URL.Path,
			"status", status,
			"dropped", rec.dropped,
			"duration", time.Since(start).String(),
		)
	})
}
