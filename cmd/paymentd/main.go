// Command paymentd serves the payment command and query APIs and runs the projections.
//
// Configuration comes from the environment only, each setting with a default that works on a
// laptop (see config.go; paymentd -h lists them). With no TOSS_SECRET_KEY it serves the Toss
// simulator in-process under /tosssim and talks to that, so the service works offline; such a
// run needs TOSS_SIMULATOR=true (or a SECRETS_KEY), see Config.Validate.
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
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/migrations"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/recovery"
	"github.com/paymentledger/ledger/settlements"
	"github.com/paymentledger/ledger/webhooks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // the help asked for is printed
		}
		fmt.Fprintln(os.Stderr, "paymentd:", err)
		os.Exit(1)
	}
}

// simPrefix is where the in-process simulator is mounted.
const simPrefix = "/tosssim"

// simSecretKey is the key paymentd and its in-process simulator share.
const simSecretKey = "test_sk_tosssim_inprocess"

// run starts the service and blocks until ctx is done, then shuts down in reverse order of
// start. If ready is not nil it receives the listening address once the service serves. With
// -h it prints the usage to stdout and returns flag.ErrHelp.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	if err := parseArgs(args, stdout); err != nil {
		return err
	}
	cfg, err := loadConfig(ctx, getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	logger.Info("starting paymentd", "config", cfg.Redacted())

	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := waitForDatabase(ctx, pool.Ping, cfg.DatabaseWait, logger); err != nil {
		return err
	}
	applied, err := migrations.Up(ctx, pool)
	if err != nil {
		return err
	}
	logger.Info("migrations applied", "new", applied)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()

	var sim *tosssim.Simulator
	tossURL, tossKey := cfg.TossBaseURL, cfg.TossSecretKey
	if tossKey == "" {
		self := "http://" + loopbackAddr(ln.Addr())
		sim = tosssim.New(tosssim.Config{SecretKeys: []string{simSecretKey}, Faults: tosssim.Faults{WebhookURL: self + "/webhooks/toss"}})
		defer sim.Close()
		tossURL, tossKey = self+simPrefix, simSecretKey
		logger.Warn("no TOSS_SECRET_KEY: serving the Toss simulator in-process; no real payment is made",
			"tossBaseURL", tossURL, "buyerSessions", tossURL+"/sim/v1/sessions")
	}
	psp, err := toss.New(tossURL, tossKey)
	if err != nil {
		return err
	}

	store := eventstore.NewPostgres(pool)
	cmdCfg := commands.Config{
		Merchant:    cfg.MerchantID,
		CheckoutTTL: cfg.CheckoutTTL,
		PSPTimeout:  cfg.PSPTimeout,
		Retry:       commands.RetryPolicy{MaxAttempts: cfg.PSPRetryAttempts, Budget: cfg.PSPRetryBudget},
	}
	cmds, err := commands.New(store, psp, cmdCfg, time.Now, logger)
	if err != nil {
		return err
	}
	api := httpapi.New(cmds, queries.New(pool, store, cfg.MerchantID), pool.Ping, logger).WithLedger(queries.NewLedger(pool)).ActingFor(cfg.MerchantID)
	if sim != nil {
		api.Handle(simPrefix, sim.Handler())
	}
	// The webhook inbox is always mounted (deliveries wait as pending for any instance's worker);
	// its spool, for when the database is too slow to answer Toss in time, is per process.
	spoolDir := filepath.Join(cfg.DataDir, "webhook-spool")
	inboxCfg := webhooks.InboxConfig{SpoolDir: spoolDir}
	var hookWorker *webhooks.Worker
	if cfg.WebhookWorkerEnabled {
		hookWorker = webhooks.NewWorker(pool, cmds, webhooks.WorkerConfig{SpoolDir: spoolDir}, logger)
		inboxCfg.Notify = hookWorker.Wake
	}
	api.Handle("/webhooks/toss", webhooks.NewInbox(pool, inboxCfg, logger.With("component", "webhooks")))

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	for _, p := range []projections.Projection{projections.PaymentOrders{}, projections.Ledger{}} {
		workers.Go(func() { _ = projections.NewRunner(pool, store, p, logger).Run(workCtx) })
	}
	if hookWorker != nil {
		workers.Go(func() { _ = hookWorker.Run(workCtx) })
	}
	if cfg.SettlementImportEnabled {
		// Its own Toss client: settlement lookups can take a minute (toss-api.md §4.6).
		settlePSP, err := toss.New(tossURL, tossKey)
		if err != nil {
			stopWork()
			return err
		}
		settleLog := logger.With("component", "settlements")
		sched, err := settlements.NewScheduler(pool, settlements.NewImporter(settlePSP, cmds, settleLog),
			settlements.SchedulerConfig{At: cfg.SettlementImportAt, CatchUpDays: cfg.SettlementImportDays}, settleLog)
		if err != nil {
			stopWork()
			return err
		}
		workers.Go(func() { _ = sched.Run(workCtx) })
	}
	if cfg.RecoveryEnabled {
		// Bulkhead: the sweeper has its own Toss client (own connection pool) and its own
		// bounded workers, so recovering a backlog cannot starve the API's calls to Toss.
		recoveryPSP, err := toss.New(tossURL, tossKey)
		if err != nil {
			stopWork()
			return err
		}
		recoveryCmds, err := commands.New(store, recoveryPSP, cmdCfg, time.Now, logger.With("component", "recovery"))
		if err != nil {
			stopWork()
			return err
		}
		sweeper := recovery.New(pool, recoveryCmds, recovery.Config{
			Interval:    cfg.RecoveryInterval,
			StaleAfter:  cfg.RecoveryStaleAfter,
			MaxAttempts: cfg.RecoveryMaxAttempts,
			Workers:     cfg.RecoveryWorkers,
			BaseDelay:   cfg.RecoveryBaseDelay,
			MaxDelay:    cfg.RecoveryMaxDelay,
			Lease:       cfg.RecoveryLease,
		}, time.Now, logger.With("component", "recovery"))
		workers.Go(func() { _ = sweeper.Run(workCtx) })
	}

	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopWork()
		workers.Wait()
		return fmt.Errorf("http server: %w", err)
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("http shutdown", "error", err)
	}
	stopWork()
	workers.Wait()
	logger.Info("stopped")
	return nil
}

// waitForDatabase pings until the database answers or wait passes, so paymentd can start
// alongside its database (docker compose, a fresh cluster).
func waitForDatabase(ctx context.Context, ping func(context.Context) error, wait time.Duration, logger *slog.Logger) error {
	deadline := time.Now().Add(wait)
	delay := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("database not reachable after %s: %w", wait, err)
		}
		logger.Warn("waiting for the database", "error", err, "retryIn", delay.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// loopbackAddr turns a listening address into one this process can call: an unspecified host
// (":8080", "[::]:8080") becomes 127.0.0.1.
func loopbackAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		_, port, _ := net.SplitHostPort(a.String())
		return net.JoinHostPort("127.0.0.1", port)
	}
	return tcp.String()
}
