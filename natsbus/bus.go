package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says which NATS to use and how the PAYMENTS stream is kept.
type Config struct {
	// URL is the NATS server or cluster (NATS_URL). Empty: Open starts nats-server in this
	// process, JetStream on, storing under DataDir/nats and listening on a random loopback
	// port written to DataDir/nats.url (so paymentctl on the same machine finds it).
	URL     string
	DataDir string
	// Replicas of each stream (1 for a single server; 3 on a cluster).
	Replicas int
	// MaxAge drops messages older than this from PAYMENTS; 0 keeps them forever. The event
	// store stays the record: the stream can always be published again from it.
	MaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id to drop a repeat.
	DuplicateWindow time.Duration
	// Name tells the server who is connecting (paymentd, paymentctl).
	Name string
}

// Bus is a connection to NATS with JetStream and the PAYMENTS stream in place.
type Bus struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	url      string
	embedded *server.Server
	urlFile  string // the embedded server's address file, removed on Close
}

// URLFile is where an embedded server's address is written, under the data directory.
const URLFile = "nats.url"

// Open connects to cfg.URL, or starts the embedded server first, and creates or updates the
// PAYMENTS stream. Close releases both.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{url: cfg.URL}
	if cfg.URL == "" {
		srv, err := startEmbedded(cfg.DataDir, logger)
		if err != nil {
			return nil, err
		}
		b.embedded, b.url, b.urlFile = srv, srv.ClientURL(), filepath.Join(cfg.DataDir, URLFile)
	}
	conn, err := connect(b.url, cfg.Name, logger)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Conn = conn
	if b.JS, err = jetstream.New(conn); err != nil {
		b.Close()
		return nil, fmt.Errorf("natsbus: jetstream: %w", err)
	}
	if err := EnsurePaymentsStream(ctx, b.JS, cfg); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Connect connects a client (paymentctl) to url without touching the streams' configuration,
// which is paymentd's. Close releases it.
func Connect(url, name string, logger *slog.Logger) (*Bus, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conn, err := connect(url, name, logger)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("natsbus: jetstream: %w", err)
	}
	return &Bus{Conn: conn, JS: js, url: url}, nil
}

// ResolveURL is the NATS a client on this machine uses: natsURL (NATS_URL) when set, else the
// embedded server's address that paymentd wrote under dataDir.
func ResolveURL(natsURL, dataDir string) (string, error) {
	if natsURL != "" {
		return natsURL, nil
	}
	path := filepath.Join(dataDir, URLFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("natsbus: NATS_URL is empty and %s cannot be read (%w): set NATS_URL, or DATA_DIR to the directory of a paymentd running embedded NATS", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func connect(url, name string, logger *slog.Logger) (*nats.Conn, error) {
	conn, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("nats error", "subject", subject, "error", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect %s: %w", redact(url), err)
	}
	return conn, nil
}

// URL is the address clients use: NATS_URL, or the embedded server's.
func (b *Bus) URL() string { return b.url }

// Close drains the connection and stops the embedded server, if any.
func (b *Bus) Close() {
	if b.Conn != nil {
		_ = b.Conn.Drain()
		for b.Conn.IsDraining() {
			time.Sleep(5 * time.Millisecond) // Drain is asynchronous; it ends within its timeout
		}
		b.Conn.Close()
	}
	if b.embedded != nil {
		_ = os.Remove(b.urlFile)
		b.embedded.Shutdown()
		b.embedded.WaitForShutdown()
	}
}

// EnsurePaymentsStream creates the PAYMENTS stream or updates it to cfg.
func EnsurePaymentsStream(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamPayments,
		Description: "integration events of the payment ledger (docs/events.md)",
		Subjects:    []string{SubjectRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    max(cfg.Replicas, 1),
		MaxAge:      cfg.MaxAge,
		Duplicates:  orDefault(cfg.DuplicateWindow, 2*time.Minute),
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("natsbus: stream %s: %w", StreamPayments, err)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// startEmbedded runs nats-server in this process with JetStream under dataDir/nats.
func startEmbedded(dataDir string, logger *slog.Logger) (*server.Server, error) {
	if dataDir == "" {
		return nil, errors.New("natsbus: an embedded server needs a data directory")
	}
	store := filepath.Join(dataDir, "nats")
	if err := os.MkdirAll(store, 0o700); err != nil {
		return nil, fmt.Errorf("natsbus: embedded server: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "paymentd-embedded",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   store,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{logger.With("component", "nats-server")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("natsbus: embedded server did not start within 10s")
	}
	if err := os.WriteFile(filepath.Join(dataDir, URLFile), []byte(srv.ClientURL()+"\n"), 0o600); err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("natsbus: embedded server: %w", err)
	}
	return srv, nil
}

// serverLogger sends nats-server's log to slog: notices at debug (it is chatty at start),
// warnings and errors as such.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  {}

// redact hides passwords in a NATS URL list for messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			return "(NATS_URL)"
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}
