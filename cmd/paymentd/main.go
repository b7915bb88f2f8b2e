// Command paymentd serves the payment command and query APIs and runs the projections.
//
// Configuration comes from the environment only, each setting with a default that works on a
// laptop (see config.go; paymentd -h lists them). With TOSS_SIMULATOR=true (make run sets it) it
// serves the Toss simulator in-process under /tosssim, sends every merchant's Toss calls there
// and seeds a merchant "demo" whose API key it prints, so the service works offline.
package main

import (
	"context"
	"crypto/ed25519"
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-retry"

	"github.com/paymentledger/ledger/audit"
	"github.com/paymentledger/ledger/commands"
	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/eventstore"
	"github.com/paymentledger/ledger/httpapi"
	"github.com/paymentledger/ledger/internal/db"
	"github.com/paymentledger/ledger/internal/logging"
	"github.com/paymentledger/ledger/merchants"
	"github.com/paymentledger/ledger/metrics"
	"github.com/paymentledger/ledger/migrations"
	"github.com/paymentledger/ledger/natsbus"
	"github.com/paymentledger/ledger/notify"
	"github.com/paymentledger/ledger/openapi"
	"github.com/paymentledger/ledger/projections"
	"github.com/paymentledger/ledger/psp/toss"
	"github.com/paymentledger/ledger/psp/toss/tosssim"
	"github.com/paymentledger/ledger/queries"
	"github.com/paymentledger/ledger/reconcile"
	"github.com/paymentledger/ledger/recovery"
	"github.com/paymentledger/ledger/secrets"
	"github.com/paymentledger/ledger/settlements"
	"github.com/paymentledger/ledger/shop"
	"github.com/paymentledger/ledger/web"
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

// demoMerchant is the merchant paymentd seeds for a simulator run (TOSS_SIMULATOR) or on request
// (DEMO_MERCHANT), so the README's walk-through works at once.
const demoMerchant domain.MerchantID = "demo"

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
	logger := slog.New(logging.NewHandler(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel})))
	logger.Info("starting paymentd", "config", cfg.Redacted())
	now := func() time.Time { return time.Now().In(domain.KST) }

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
	relays := []string{}
	if cfg.RelayEnabled {
		relays = append(relays, natsbus.CheckpointName)
	}
	met := metrics.New(pool, metrics.WithProjections("payment_orders", "ledger", "merchants"), metrics.WithRelays(relays...))

	bus, err := natsbus.Open(ctx, natsbus.Config{
		URL: cfg.NATSURL, DataDir: cfg.DataDir, Replicas: cfg.NATSReplicas,
		MaxAge: cfg.NATSMaxAge, DuplicateWindow: cfg.NATSDuplicateWindow, Name: "paymentd",
	}, logger.With("component", "nats"))
	if err != nil {
		return err
	}
	defer bus.Close() // deferred before the workers' stop below, so it runs after it
	if cfg.NATSURL == "" {
		logger.Info("nats: embedded server running", "url", bus.URL())
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()

	keyring, err := openKeyring(cfg, logger)
	if err != nil {
		return err
	}
	chainKey, err := cfg.AuditChainKey.Key()
	if err != nil {
		return err
	}
	store := eventstore.NewPostgres(pool, eventstore.WithChainKey(chainKey))
	merchantSvc := merchants.New(store, pool, merchants.Config{Keyring: keyring, CacheTTL: cfg.AuthCacheTTL, Now: now, Logger: logger.With("component", "merchants")})

	var sim *tosssim.Simulator
	tossURL := cfg.TossBaseURL
	demoTossKey := cfg.DemoTossSecretKey
	if cfg.TossSimulator {
		self := "http://" + loopbackAddr(ln.Addr())
		// It accepts any test_sk_ key, so every merchant of a simulator run can take payments,
		// and keeps Toss's side in its own schema of this database, so a restart remembers it.
		sim, err = tosssim.Open(ctx, tosssim.Config{
			Faults: tosssim.Faults{WebhookURL: self + "/webhooks/toss/" + string(demoMerchant)},
			Logger: logger.With("component", "tosssim"),
		}, pool)
		if err != nil {
			return fmt.Errorf("TOSS_SIMULATOR: %w", err)
		}
		defer sim.Close()
		tossURL = self + simPrefix
		logger.Warn("TOSS_SIMULATOR: serving the Toss simulator in-process; no real payment is made",
			"tossBaseURL", tossURL, "buyerSessions", tossURL+"/sim/v1/sessions")
	}
	var demoKey string
	if cfg.SeedDemoMerchant() {
		if demoKey, err = seedDemo(ctx, merchantSvc, demoTossKey, filepath.Join(cfg.DataDir, "dev-api-key"), stdout, logger); err != nil {
			return err
		}
	}
	// Bulkheads: the API, the recovery sweeper and the settlement import each get their own
	// Toss clients (own connection pools), so a backlog in one cannot starve the others.
	directory := func() commands.PSPFor {
		dir := merchantSvc.NewDirectory(tossURL, toss.WithObserver(met.ObserveToss))
		return func(ctx context.Context, m domain.MerchantID) (commands.PSP, error) { return dir.Client(ctx, m) }
	}
	cmdCfg := commands.Config{
		CheckoutTTL: cfg.CheckoutTTL,
		PSPTimeout:  cfg.PSPTimeout,
		Retry:       commands.RetryPolicy{MaxAttempts: cfg.PSPRetryAttempts, Budget: cfg.PSPRetryBudget},
	}
	cmds, err := commands.New(store, directory(), cmdCfg, now, logger.With("component", "commands"))
	if err != nil {
		return err
	}
	reads := queries.New(pool, store)
	ledger := queries.NewLedger(pool)
	api := httpapi.New(cmds, reads, pool.Ping, logger, httpapi.AuthConfig{
		Keys:              merchantSvc,
		AdminToken:        cfg.AdminToken,
		KeyRate:           cfg.APIKeyRate,
		KeyBurst:          cfg.APIKeyBurst,
		FailuresPerMinute: cfg.AuthFailuresPerMinute,
		OnFailure:         met.AuthFailure,
		OnRateLimited:     met.RateLimited,
	}).WithLedger(ledger).WithAdmin(merchantSvc, cfg.APIKeyRotationGrace).
		// Live status streams read the PAYMENTS stream, so a change made through any instance
		// reaches a stream held by any other.
		WithLive(natsbus.NewWatcher(bus.JS), httpapi.LiveConfig{Heartbeat: cfg.SSEHeartbeat})
	api.Instrument(met.HTTPMiddleware)
	api.Handle("/metrics", met.Handler())
	api.Handle("/openapi.yaml", openapi.Handler())
	if sim != nil {
		api.Handle(simPrefix, sim.Handler())
		// The demo shop and the browser SDK: a merchant's shop on the in-process simulator, its
		// backend holding the demo merchant's key and calling this API like a merchant's server.
		demoShop, err := shop.New(shop.Config{APIKey: demoKey, LedgerURL: "http://" + loopbackAddr(ln.Addr()),
			Logger: logger.With("component", "shop")})
		if err != nil {
			return err
		}
		demoShop.Mount(api.Handle)
	}
	// The webhook inbox is always mounted (deliveries wait as pending for any instance's worker);
	// its spool, for when the database is too slow to answer Toss in time, is per process.
	spoolDir := filepath.Join(cfg.DataDir, "webhook-spool")
	inboxCfg := webhooks.InboxConfig{
		SpoolDir:       spoolDir,
		MerchantExists: merchantSvc.Exists,
		AllowedIPs:     cfg.TossWebhookAllowedIPs,
		Rate:           cfg.WebhookRate,
		Burst:          cfg.WebhookBurst,
		OnRateLimited:  func() { met.RateLimited("webhook") },
	}
	var hookWorker *webhooks.Worker
	if cfg.WebhookWorkerEnabled {
		hookWorker = webhooks.NewWorker(pool, cmds, webhooks.WorkerConfig{
			SpoolDir: spoolDir, SyncInterval: cfg.WebhookSyncInterval, Retention: cfg.WebhookRetention,
		}, logger)
		inboxCfg.Notify = hookWorker.Wake
	}
	// Toss's webhook URL of a merchant is /webhooks/toss/{merchantId}.
	api.Handle("/webhooks/toss", webhooks.NewInbox(pool, inboxCfg, logger))

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	// Whatever way run returns, the background work is stopped and waited for before the pool
	// it uses is closed.
	defer func() {
		stopWork()
		workers.Wait()
	}()
	for _, p := range []projections.Projection{projections.PaymentOrders{}, projections.Ledger{}, projections.Merchants{}} {
		workers.Go(func() { _ = projections.NewRunner(pool, store, p, logger).Run(workCtx) })
	}
	if hookWorker != nil {
		workers.Go(func() { _ = hookWorker.Run(workCtx) })
	}
	if cfg.RelayEnabled {
		relay, err := natsbus.NewRelay(pool, store, bus.Conn, natsbus.RelayConfig{MaxInFlight: cfg.RelayMaxInFlight}, logger)
		if err != nil {
			return err
		}
		workers.Go(func() { _ = relay.Run(workCtx) })
	}
	if cfg.NotifyEnabled {
		dispatcher := notify.New(merchantSvc, bus.JS, notify.Config{
			MaxDeliver: cfg.NotifyMaxDeliver, BackOff: cfg.NotifyBackOff, HTTPTimeout: cfg.NotifyHTTPTimeout,
			Replicas: cfg.NATSReplicas,
		}, logger.With("component", "notify"))
		workers.Go(func() { _ = dispatcher.Run(workCtx) })
	}
	if cfg.SettlementImportEnabled {
		settleLog := logger.With("component", "settlements")
		// Its own Toss clients: settlement lookups can take a minute (toss-api.md §4.6).
		settlePSPs := directory()
		job := settlements.AllMerchants{Rec: cmds, Logger: settleLog, Sources: func(ctx context.Context) ([]settlements.Source, error) {
			return settlementSources(ctx, merchantSvc, settlePSPs)
		}}
		sched, err := settlements.NewScheduler(pool, job,
			settlements.SchedulerConfig{At: cfg.SettlementImportAt, CatchUpDays: cfg.SettlementImportDays}, settleLog)
		if err != nil {
			return err
		}
		workers.Go(func() { _ = sched.Run(workCtx) })
	}
	if cfg.ReconcileEnabled {
		sched, err := reconcileScheduler(cfg, pool, store, merchantSvc, directory(), cmdCfg, now, logger.With("component", "reconcile"))
		if err != nil {
			return err
		}
		workers.Go(func() { _ = sched.Run(workCtx) })
	}
	if cfg.AuditSigningKey != nil {
		sealer := audit.NewSealer(pool, ed25519.PrivateKey(cfg.AuditSigningKey), cfg.SealFile(cfg.DataDir))
		sched, err := audit.NewScheduler(sealer, cfg.AuditSealInterval, logger.With("component", "audit"))
		if err != nil {
			return err
		}
		workers.Go(func() { _ = sched.Run(workCtx) })
	}
	if cfg.RecoveryEnabled {
		// Bulkhead: the sweeper has its own Toss clients and its own bounded workers, so
		// recovering a backlog cannot starve the API's calls to Toss.
		recoveryLog := logger.With("component", "recovery")
		recoveryCmds, err := commands.New(store, directory(), cmdCfg, now, recoveryLog)
		if err != nil {
			return err
		}
		sweeper := recovery.New(pool, recoveryCmds, recovery.Config{
			Interval:             cfg.RecoveryInterval,
			StaleAfter:           cfg.RecoveryStaleAfter,
			MaxAttempts:          cfg.RecoveryMaxAttempts,
			Workers:              cfg.RecoveryWorkers,
			BaseDelay:            cfg.RecoveryBaseDelay,
			MaxDelay:             cfg.RecoveryMaxDelay,
			Lease:                cfg.RecoveryLease,
			OnBreakerStateChange: met.SetBreakerState,
		}, now, recoveryLog)
		workers.Go(func() { _ = sweeper.Run(workCtx) })
	}

	// The back office owns "/"; the API, its mounts and the health checks keep their paths (an
	// unknown /api/… path stays a JSON 404).
	backOffice := web.New(web.Config{
		Keys: merchantSvc, Payments: reads, Ledger: ledger, Refunds: cmds, Reports: reads, Exporter: reads, Pool: pool,
		Logger: logger.With("component", "web"), TrustForwardedProto: cfg.TrustForwardedProto,
		FailuresPerMinute: cfg.AuthFailuresPerMinute,
	})
	root := http.NewServeMux()
	root.Handle("/", backOffice)
	for _, p := range []string{"/api/", "/admin/", "/webhooks/", "/tosssim/", "/shop/", "/sdk/", "/metrics", "/openapi.yaml", "/healthz", "/readyz"} {
		root.Handle(p, api)
	}

	srv := &http.Server{
		Handler:           logging.RequestIDMiddleware(root),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for handlers to return; live status streams return only when told to.
	srv.RegisterOnShutdown(api.EndLiveStreams)
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String())
	base := "http://" + loopbackAddr(ln.Addr())
	fmt.Fprintf(stdout, "\nback office: %s/  (sign in with an API key)\n", base)
	if sim != nil {
		fmt.Fprintf(stdout, "demo shop:   %s/shop/\n", base)
	}
	fmt.Fprintln(stdout)
	var debugSrv *http.Server
	if cfg.DebugAddr != "" {
		dln, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen DEBUG_ADDR %s: %w", cfg.DebugAddr, err)
		}
		// No write timeout: a CPU profile streams for as long as it was asked to.
		debugSrv = &http.Server{Handler: metrics.DebugHandler(met), ReadHeaderTimeout: 10 * time.Second}
		go func() { serveErr <- debugSrv.Serve(dln) }()
		logger.Info("serving pprof and /metrics", "addr", dln.Addr().String())
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if debugSrv != nil {
		_ = debugSrv.Shutdown(shutdownCtx)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("http shutdown", "error", err)
	}
	stopWork()
	workers.Wait()
	logger.Info("stopped")
	return nil
}

// openKeyring builds the keyring that seals merchants' Toss keys: SECRETS_KEY (and the previous
// keys of a rotation), or, for a simulator run without one, a key generated under DATA_DIR.
func openKeyring(cfg Config, logger *slog.Logger) (*secrets.Keyring, error) {
	current := []byte(cfg.SecretsKey)
	if len(current) == 0 {
		path := filepath.Join(cfg.DataDir, "secrets-key")
		key, created, err := secrets.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, err
		}
		logger.Warn("no SECRETS_KEY: merchants' Toss keys are sealed with a key kept in DATA_DIR (fine for the simulator, not for production)",
			"file", path, "created", created)
		current = key
	}
	previous := make([][]byte, len(cfg.SecretsKeyPrevious))
	for i, k := range cfg.SecretsKeyPrevious {
		previous[i] = []byte(k)
	}
	k, err := secrets.NewKeyring(current, previous...)
	if err != nil {
		return nil, fmt.Errorf("SECRETS_KEY: %w", err)
	}
	return k, nil
}

// seedDemo makes sure the demo merchant exists and that keyFile holds a working API key of it,
// and returns that key. A new key is printed once (and written to keyFile, mode 0600); a key
// already in keyFile that still works is kept, so restarts do not churn keys.
func seedDemo(ctx context.Context, svc *merchants.Service, tossKey, keyFile string, stdout io.Writer, logger *slog.Logger) (string, error) {
	if b, err := os.ReadFile(keyFile); err == nil {
		key := strings.TrimSpace(string(b))
		if p, err := svc.Authenticate(ctx, key); err == nil && p.Merchant == demoMerchant {
			logger.Info("demo merchant ready; its API key is in the key file", "merchantId", demoMerchant, "keyFile", keyFile)
			return key, nil
		}
	}
	issued, err := svc.Create(ctx, merchants.CreateInput{ID: demoMerchant, Name: "Demo shop", TossSecretKey: tossKey, Actor: merchants.ActorSystem})
	if errors.Is(err, domain.ErrMerchantExists) {
		issued, err = svc.IssueKey(ctx, demoMerchant, nil, merchants.ActorSystem)
	}
	if err != nil {
		return "", fmt.Errorf("seed the demo merchant: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(keyFile, []byte(issued.APIKey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", keyFile, err)
	}
	// Printed once, outside the JSON log, like a password shown at sign-up.
	fmt.Fprintf(stdout, "\ndemo merchant %q: API key (shown once, also in %s):\n\n  %s\n\n  KEY=$(cat %s); curl -u \"$KEY:\" ...\n\n",
		demoMerchant, keyFile, issued.APIKey, keyFile)
	logger.Info("demo merchant API key issued", "merchantId", demoMerchant, "keyId", issued.KeyID, "keyFile", keyFile)
	return issued.APIKey, nil
}

// reconcileScheduler builds the daily reconciliation. It has its own Toss clients (psps), since
// the transactions and settlements lookups can take a minute each (toss-api.md §4.5), and its
// own command service on them for the read-backs it books.
func reconcileScheduler(cfg Config, pool *pgxpool.Pool, store *eventstore.Postgres, svc *merchants.Service, psps commands.PSPFor,
	cmdCfg commands.Config, now func() time.Time, logger *slog.Logger) (*reconcile.Scheduler, error) {
	cmds, err := commands.New(store, psps, cmdCfg, now, logger)
	if err != nil {
		return nil, err
	}
	engine, err := reconcile.New(reconcile.Config{
		Pool:    pool,
		Streams: store,
		Clients: func(ctx context.Context, m domain.MerchantID) (reconcile.Lister, error) {
			psp, err := psps(ctx, m)
			if err != nil {
				return nil, err
			}
			lister, ok := psp.(reconcile.Lister)
			if !ok {
				return nil, fmt.Errorf("merchant %s: its PSP client cannot list transactions and settlements", m)
			}
			return lister, nil
		},
		Corrector: cmds,
		FeeRates:  svc,
		Now:       now,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	return reconcile.NewScheduler(pool, engine, svc.WithTossKeys,
		reconcile.SchedulerConfig{At: cfg.ReconcileAt, Days: cfg.ReconcileDays, Apply: cfg.ReconcileApply}, logger)
}

// settlementSources lists the merchants with a Toss key, each with its Toss client.
func settlementSources(ctx context.Context, svc *merchants.Service, psps commands.PSPFor) ([]settlements.Source, error) {
	ids, err := svc.WithTossKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]settlements.Source, 0, len(ids))
	for _, id := range ids {
		psp, err := psps(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("merchant %s: %w", id, err)
		}
		lister, ok := psp.(settlements.Lister)
		if !ok {
			return nil, fmt.Errorf("merchant %s: its PSP client cannot list settlements", id)
		}
		out = append(out, settlements.Source{Merchant: id, Client: lister})
	}
	return out, nil
}

// waitForDatabase pings until the database answers or wait passes, so paymentd can start
// alongside its database (docker compose, a fresh cluster).
func waitForDatabase(ctx context.Context, ping func(context.Context) error, wait time.Duration, logger *slog.Logger) error {
	// From 100ms doubling to 2s between pings, until wait has passed.
	b := retry.WithMaxDuration(wait, retry.WithCappedDuration(2*time.Second, retry.NewExponential(100*time.Millisecond)))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := ping(pctx); err != nil {
			logger.Warn("waiting for the database", "error", err)
			return retry.RetryableError(err)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("database not reachable after %s: %w", wait, err)
	}
	return err
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
