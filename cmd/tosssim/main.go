// Command tosssim serves the in-memory Toss Payments simulator (package psp/toss/tosssim) on
// its own port, for local runs and out-of-process tests. Point a Toss client at
// http://<addr> as its base URL, open buyer sessions with POST /sim/v1/sessions and read the
// counters at GET /sim/v1/stats.
//
// Flags (each with an environment variable; a flag wins over its variable):
//
//	-addr        listen address                       TOSSSIM_ADDR         default 127.0.0.1:8090
//	-secret-key  comma-separated accepted secret keys TOSSSIM_SECRET_KEYS  default: any test_sk_/test_gsk_/test_ak_ key
//	-mid         merchant id on payments              TOSSSIM_MID          default tosssimmid01
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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
	Addr       string
	SecretKeys []string
	MID        string
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
	)
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
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg := config{Addr: *addr, MID: *mid}
	for k := range strings.SplitSeq(*keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.SecretKeys = append(cfg.SecretKeys, k)
		}
	}
	return cfg, cfg.Validate()
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

// serve runs the simulator on ln until ctx is done, then shuts down gracefully. It closes ln.
func serve(ctx context.Context, ln net.Listener, cfg config, logger *slog.Logger) error {
	sim := tosssim.New(tosssim.Config{SecretKeys: cfg.SecretKeys, MID: cfg.MID})
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
	logger.Info("stopped", "stats", sim.Stats())
	return nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// accessLog logs one line per request. It never logs headers: they carry the secret key.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Info("request",
			"method", r.Method,
			"path", r.URL.Path,
			"status", rec.status,
			"duration", time.Since(start).String(),
		)
	})
}
